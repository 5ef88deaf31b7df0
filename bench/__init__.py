"""make bench: graphql-todos beside PostGraphile 5 and 4 and a raw psycopg floor, in one sitting."""
