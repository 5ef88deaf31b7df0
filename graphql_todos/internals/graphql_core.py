"""graphql-core's internals we lean on, behind one door. Each override says
what it assumes; tests/internals/test_graphql_core.py pins each, so an
upgrade that breaks one fails a test by name.

Variable signatures, kept: graphql-core coerces a request's variables
(`coerce_variable_values`, for the intake and for Strawberry's executor
alike) by working out each variable's signature afresh on every request
(`get_variable_signature`: the type from the AST, a GraphQLNonNull made for
each `!`, a NamedTuple), about 1% of a write's instructions. A signature
depends on the schema and the definition node alone, so it is kept per
node, for every caller, by replacing the module global that
`coerce_variable_values` calls through.
"""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSchema, VariableDefinitionNode
from graphql.execution import values
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature

from graphql_todos.core.bounded import LRU

# Definitions kept (a document's variables, for as many documents as the
# intake and Strawberry's parse cache hold together, about).
SIGNATURES = 1024

# By the node's identity: graphql-core's nodes hash and compare by their
# whole subtree. The entry holds the node, so its id is not reused while kept.
_kept: LRU[int, tuple[VariableDefinitionNode, GraphQLSchema, GraphQLVariableSignature]] = LRU(SIGNATURES)


def kept_signature(schema: GraphQLSchema, node: VariableDefinitionNode) -> GraphQLVariableSignature | GraphQLError:
    """get_variable_signature(schema, node), made once per node and schema.
    An error (a variable of an output type, which validation refuses first)
    is made afresh each time: a request's errors are its own to change."""
    kept = _kept.get(id(node))
    if kept is not None and kept[1] is schema:
        return kept[2]
    signature = get_variable_signature(schema, node)
    if not isinstance(signature, GraphQLError):
        _kept.put(id(node), (node, schema, signature))
    return signature


def keep_variable_signatures() -> None:
    """From now on, coerce_variable_values takes each signature from kept_signature."""
    values.get_variable_signature = kept_signature  # type: ignore[assignment]
