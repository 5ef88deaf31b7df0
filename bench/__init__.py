"""make bench: graphql-todos beside PostGraphile 4 and a raw psycopg floor, in one sitting."""
