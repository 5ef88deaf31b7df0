"""Running graphql-todos beyond one process: nginx in front of several instances (`make cluster`)."""
