"""graphql/persisted.py with trusted documents: a document a client sends in
full is put in its canonical form (spacing, definitions and selections in
one order) to be looked up among the manifest's, before any limit is
checked. Sorting each selection set by its selections printed anew printed
every subtree again at each level above it: 22 KB of 60 sibling fields each
120 levels deep took 3.7 s of the one event loop. Bound on growth, as in
tests/edge/test_slowparse_headers.py; and a document is read within
MAX_TOKENS, as the intake reads it after."""

from __future__ import annotations

from graphql_todos.graphql.persisted import PersistedQueries
from tests.edge.test_slowparse_headers import GROWTH, growth

TRUSTED = {"sha256:0": "query Todos { todos { id title completed } }"}


def _deep(depth: int, siblings: int = 1) -> str:
    branch = "a{" * depth + "b" + "}" * depth
    return "{" + " ".join(f"x{i}:{branch}" for i in range(siblings)) + "}"


def test_a_document_is_looked_up_in_time_linear_in_its_depth() -> None:
    # A store of its own each time: one store's verdicts, kept by hash, would answer
    # growth()'s repeats in microseconds, and the ratio of two such was noise (12x once).
    assert growth(lambda depth: PersistedQueries(8, TRUSTED).allows(_deep(depth, 4)), 40) < GROWTH


def test_a_document_is_looked_up_within_max_tokens() -> None:
    # Parsed whole, 60 KB of fields took 0.7 s; the intake reads it within MAX_TOKENS after.
    store = PersistedQueries(8, TRUSTED, max_tokens=1000)
    assert growth(lambda n: store.allows("{" + "a " * n + "}"), 4096) < 2.5
    assert not store.allows("query Todos { todos { id title completed " + "id " * 1000 + "} }")


def test_trusted_documents_are_found_whatever_their_spacing_and_order() -> None:
    store = PersistedQueries(8, {**TRUSTED, "sha256:1": "query B { todos { title id } } query A { todos { id } }"})
    assert store.allows("query   Todos{todos{completed title id}}")
    assert store.allows("query A { todos { id } }\nquery B { todos { id, title } }")
    assert not store.allows("query Todos { todos { id title } }")
    assert not store.allows("query A { todos { id } }")
    assert not store.allows(_deep(100))
    assert not store.allows("{")
