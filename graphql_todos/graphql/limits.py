"""How much a GraphQL document asks for, measured with its fragments
expanded: fields selected, aliases, and depth; and the validation rule that
refuses a document over MAX_FIELDS, MAX_ALIASES or MAX_DEPTH.

Each fragment is measured once and its size reused wherever it is spread, so
measuring takes time linear in the document's length, however much it
expands to. (Strawberry's depth and alias limiters walk every spread again:
800 bytes of fragments that each spread the previous one twice kept them
busy for seconds, a denial of service in the check meant to prevent one.)

Fields sharing a response name are checked to merge by graphql-core's rule
in pairs: 247 copies of `me{id}` (within MAX_TOKENS) took 0.35 s. That rule
stops after OVERLAP_BUDGET units of work (a pair compared costs 2), refusing
the document with OverlapsExceeded. The web client's documents and GraphiQL's
cost none (they select each field once), but fragments spread side by side,
as Relay and codegen write them, do: 23 fragments of 6 fields on one field
cost 5,001, 46 about 20,000 (tests/graphql/test_slowparse_overlaps.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation.validate import ValidationAbortedError

from graphql_todos.internals.graphql_core import bound_overlap_checks, print_values_once

# Room for ~46 fragments spread side by side, at ~25 ms of this machine's CPU at
# most (about a 1,000-token document's parsing and other rules together);
# graphql-core's own budget, 500,000, is ~1 s, its unbounded rule more.
OVERLAP_BUDGET = 20_000


@dataclass(frozen=True, slots=True)
class Size:
    """fields: fields selected (each spread of a fragment counts its fields
    again); aliases: aliased fields among them; depth: levels of selections
    below a root field, introspection fields (`__schema`...) and what they
    select not counted (GraphiQL's own query nests `ofType` a dozen deep)."""

    fields: int = 0
    aliases: int = 0
    depth: int = 0


_NOTHING = Size()


class _Measure:
    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.sizes: dict[str, Size] = {}
        # A spread inside its own fragment (a cycle, which validation
        # reports anyway) counts nothing.
        self.open: set[str] = set()

    def selections(self, selection_set: SelectionSetNode) -> Size:
        fields = aliases = depth = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = _NOTHING if selection.selection_set is None else self.selections(selection.selection_set)
                fields += 1 + inner.fields
                aliases += (selection.alias is not None) + inner.aliases
                if selection.selection_set is not None and not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selections(selection.selection_set)
            else:
                assert isinstance(selection, FragmentSpreadNode)
                inner = self.fragment(selection.name.value)
            fields, aliases, depth = fields + inner.fields, aliases + inner.aliases, max(depth, inner.depth)
        return Size(fields, aliases, depth)

    def fragment(self, name: str) -> Size:
        size = self.sizes.get(name)
        if size is not None:
            return size
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return _NOTHING  # unknown fragments are reported by graphql-core's rules
        self.open.add(name)
        size = self.sizes[name] = self.selections(definition.selection_set)
        self.open.discard(name)
        return size


def measure(document: DocumentNode) -> Size:
    """The document's size: fields and aliases summed over its operations,
    the depth of the deepest."""
    measuring = _Measure(document)
    sizes = [
        measuring.selections(d.selection_set) for d in document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    return Size(sum(s.fields for s in sizes), sum(s.aliases for s in sizes), max((s.depth for s in sizes), default=0))


class LimitExceeded(GraphQLError):
    """A document over one of the limits; `limit` names it (depth, aliases,
    fields), for the metrics of refusals."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def limits_rule(max_depth: int, max_aliases: int, max_fields: int) -> type[ValidationRule]:
    """A validation rule refusing documents deeper than max_depth, with more
    than max_aliases aliases or selecting more than max_fields fields."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            size = measure(context.document)
            for limit, value, most, message in (
                ("depth", size.depth, max_depth, "the document is {} levels deep; at most {} (MAX_DEPTH)"),
                ("aliases", size.aliases, max_aliases, "the document has {} aliases; at most {} (MAX_ALIASES)"),
                (
                    "fields",
                    size.fields,
                    max_fields,
                    "the document selects {} fields, its fragments expanded; at most {} (MAX_FIELDS)",
                ),
            ):
                if value > most:
                    context.report_error(LimitExceeded(limit, message.format(value, most)))

    return DocumentLimits


class OverlapsExceeded(LimitExceeded, ValidationAbortedError):
    """A document whose fields sharing a response name take more than
    OVERLAP_BUDGET to check (counted as the fields limit)."""

    def __init__(self) -> None:
        super().__init__(
            "fields",
            f"the document's fields and fragments sharing a response name take more than"
            f" {OVERLAP_BUDGET // 2:,} comparisons to check that they merge; select each field once,"
            " and spread fewer fragments side by side",
        )


bound_overlap_checks(OVERLAP_BUDGET, OverlapsExceeded)
# An input value's errors (100 at most) each print it: printed once, not walked for each.
print_values_once()
