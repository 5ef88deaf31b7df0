"""The URL paths more than one room must match, spelled once."""

from __future__ import annotations

GRAPHQL = "/graphql"
# The REST collection (the /api mount's /todos/ route).
TODOS = "/api/todos/"
# The web client's service worker: at the root, so its scope is the whole page.
SERVICE_WORKER = "/sw.js"
# What one posts to become somebody: no credential asked (AUTH=open answers them 404).
SIGN_IN = ("/api/auth/sign-up", "/api/auth/sign-in")
