"""graphql-todos: live GraphQL todos on PostgreSQL."""
