"""The URL paths more than one room must match, spelled once."""

from __future__ import annotations

GRAPHQL = "/graphql"
