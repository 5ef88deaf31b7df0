"""Persisted queries, for every GraphQL transport (HTTP GET and POST, SSE,
WebSockets: internals.strawberry.OneResultSchema and strawberry_transport_ws.GatedTransportWs.handle_subscribe
ask this store for the document to run).

- Automatic persisted queries, as Apollo clients send them: a request may
  carry `extensions.persistedQuery.sha256Hash` instead of its document; an
  unknown hash gets PERSISTED_QUERY_NOT_FOUND ("PersistedQueryNotFound"), and
  the client sends the document with its hash, which is checked and kept in a
  bounded in-memory store (least recently used out first).
- Trusted documents: given a manifest of the documents the web client may
  send (`{"<sha256>": "<document>"}`, as the codegen client preset writes
  it), only those run, by hash or in full; anything else is refused with
  DOCUMENT_NOT_TRUSTED, and nothing is learnt from requests.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from operator import itemgetter
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

from graphql_todos.core.bounded import LRU
from graphql_todos.core.errors import ErrorCode, RequestError

# Verdicts kept: on the last texts judged, and on documents that parsed, by hash.
JUDGED = 4
VERDICTS = 256


# The store, text and verdict last judged for the request being served (HTTP):
# the fast path, the view's choice of media type and Strawberry's path each
# decode a POST's body anew (an equal text, another string), and a document
# that does not parse within MAX_TOKENS has no verdict kept by hash.
_REQUEST: ContextVar[list[tuple[PersistedQueries, str, bool]] | None] = ContextVar("persisted_request", default=None)


def judging() -> None:
    """A request starts (in the task serving it, whose context ends with it): a
    text equal to one judged in it is not judged again."""
    _REQUEST.set([])


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class _Sorted(Visitor):
    """Each selection set's selections in the order of their canonical text:
    a selection's own (printed without its selection set) and its selection
    set's, made once from its children's, bottom up. (Sorted by each
    selection printed anew, every subtree was printed again at each level
    above it: 22 KB of 60 fields 120 levels deep took 3.7 s, before any
    limit is checked.)"""

    def __init__(self) -> None:
        super().__init__()
        # A sorted selection set's canonical text, by id (the tree holds each).
        self._texts: dict[int, str] = {}

    def leave_selection_set(self, node: SelectionSetNode, *_: Any) -> SelectionSetNode:
        keyed = sorted(((self._text(selection), selection) for selection in node.selections), key=itemgetter(0))
        ordered = SelectionSetNode(selections=tuple(selection for _, selection in keyed))
        self._texts[id(ordered)] = "{" + " ".join(text for text, _ in keyed) + "}"
        return ordered

    def _text(self, selection: SelectionNode) -> str:
        if isinstance(selection, FieldNode) and selection.selection_set is not None:
            own = print_ast(dataclasses.replace(selection, selection_set=None))
        elif isinstance(selection, InlineFragmentNode):
            own = print_ast(dataclasses.replace(selection, selection_set=None))  # type: ignore[arg-type]
        else:
            return print_ast(selection)
        return own + self._texts[id(selection.selection_set)]

    def leave_document(self, node: DocumentNode, *_: Any) -> DocumentNode:
        return DocumentNode(definitions=tuple(sorted(node.definitions, key=print_ast)))


def _normalized(document: str, max_tokens: int | None = None) -> str | None:
    """The document with its spacing, definitions and selections in one
    canonical order: the client's copy of a document and the manifest's
    (which codegen prints sorted) compare equal. None: it does not parse
    (within `max_tokens`)."""
    try:
        return print_ast(visit(parse(document, no_location=True, max_tokens=max_tokens), _Sorted()))
    except GraphQLSyntaxError:
        return None


class PersistedQueries:
    def __init__(self, size: int, trusted: Mapping[str, str] | None = None, max_tokens: int | None = None) -> None:
        # The client preset writes its keys as "sha256:<hex>"; clients send the hex.
        self.trusted = None if trusted is None else {k.removeprefix("sha256:"): v for k, v in trusted.items()}
        # A client's document is read within MAX_TOKENS, as the intake reads
        # it after (60 KB of fields took 0.7 s to put in order before it).
        self.max_tokens = max_tokens
        self._trusted_texts = {_normalized(doc) for doc in (trusted or {}).values()} - {None}
        # A request's document is asked of by the intake and by Strawberry's
        # path (a refusal 3 or 4 times a request), and putting it in order is
        # what costs (60 ms for 400 fields): kept by the text's identity (each
        # held, so its id is not reused), at no cost whatever its length, for
        # the intake's asking; for Strawberry's own copy of the text, by the
        # text within the request the view serves (`judging`), and by hash
        # for a document that parsed. (Outside a request, one that does not
        # parse within MAX_TOKENS is judged anew: a hash is what its parse
        # stopped at the limit is not, linear in its length.)
        self._judged: LRU[int, tuple[str, bool]] = LRU(JUDGED)
        self._verdicts: LRU[str, bool] = LRU(VERDICTS)
        self._learnt: LRU[str, str] = LRU(size)

    def __len__(self) -> int:
        return len(self._learnt)

    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run; RequestError when there is none we may run."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if query is not None and self.trusted is not None:
                self._check_trusted(query)
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(digest, str):
            raise RequestError(
                ErrorCode.BAD_REQUEST, "extensions.persistedQuery must be {version: 1, sha256Hash}"
            )
        if query is None:
            return self._known(digest)
        if sha256(query) != digest:
            raise RequestError(ErrorCode.BAD_REQUEST, "provided sha does not match query")
        if self.trusted is not None:
            self._check_trusted(query)
        else:
            self._learnt.put(digest, query)
        return query

    def _known(self, digest: str) -> str:
        if self.trusted is not None:
            if digest not in self.trusted:
                raise RequestError(ErrorCode.DOCUMENT_NOT_TRUSTED, "no trusted document has this hash")
            return self.trusted[digest]
        learnt = self._learnt.get(digest)
        if learnt is None:
            # Apollo's links match this message (or the code) to send the document.
            raise RequestError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        return learnt

    def allows(self, query: str) -> bool:
        """Whether a request sending this document in full may run it."""
        if self.trusted is None:
            return True
        judged = self._judged.get(id(query))
        if judged is not None and judged[0] is query:
            return judged[1]
        request = _REQUEST.get()
        if request and request[0][0] is self and request[0][1] == query:
            return request[0][2]
        digest = sha256(query)
        verdict = digest in self.trusted or self._verdicts.get(digest)
        if verdict is None:
            text = _normalized(query, self.max_tokens)
            verdict = text in self._trusted_texts
            if text is not None:
                self._verdicts.put(digest, verdict)
        self._judged.put(id(query), (query, verdict))
        if request is not None:
            request[:] = [(self, query, verdict)]
        return verdict

    def _check_trusted(self, query: str) -> None:
        if not self.allows(query):
            raise RequestError(ErrorCode.DOCUMENT_NOT_TRUSTED, "this server runs only its trusted documents")
