"""psycopg, with a statement run on every request (the writes) sent the short
way: prepared once per connection and parameter types, its parameters
adapted by a PostgresQuery kept for it, its result read by libpq's own
generator, on the connection's lock and wait. A cursor's execute does the
same through its bookkeeping for every case (a new PostgresQuery and query
conversion per call, the prepared-statement cache's lookup, entry and
check, generators three deep per wait, the results' and the fetch's checks):
a third of a write's Python calls went there (docs/bench-ab-writes.md).

Assumes (tests/internals/test_psycopg.py pins each):
- `PostgresQuery(Transformer(conn))` converts a statement with named
  parameters once (`convert`), and `dump(params)` adapts each new set of
  values for it, leaving `params`, `types` and `formats` as libpq takes them
  (the way psycopg's executemany runs one statement again);
- `psycopg.generators.execute(pgconn)` flushes what was sent and returns
  every result of it, run by the connection's `wait`;
- `errors.error_from_result` is the exception a cursor raises for a failed
  result (the same class and diagnostics: a unique violation's constraint);
- the connection's notice handlers see the NOTICEs of a statement sent on
  its `pgconn` (psycopg sets libpq's notice receiver per connection);
- a connection in autocommit starts no transaction of its own before a
  statement (the only case taken here: `runs_short`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection, errors, pq
from psycopg._encodings import conn_encoding
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer
from psycopg.generators import execute
from psycopg.rows import RowMaker

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR


def runs_short(conn: AsyncConnection[Any]) -> bool:
    """Whether a Prepared may run on `conn`: in autocommit and outside a
    pipeline, where a cursor's execute sends the statement alone too."""
    return conn.autocommit and conn._pipeline is None


class Prepared:
    """One statement on one connection, run again and again; names of
    its own for the server's prepared statements (psycopg's are `_pg3_N`),
    one per set of parameter types (None has a type of its own), as
    psycopg's cache keys them."""

    __slots__ = ("adapting", "conn", "converted", "names", "prefix", "query", "statement")

    def __init__(self, conn: AsyncConnection[Any], statement: str, number: int) -> None:
        self.conn = conn
        self.statement = statement
        self.adapting = Transformer(conn)
        self.query = PostgresQuery(self.adapting)
        self.converted = False
        self.names: dict[tuple[int, ...], bytes] = {}
        self.prefix = f"graphql_todos_{number}_"

    async def rows(self, params: Mapping[str, Any] | None, make_row: RowMaker[Any]) -> list[Any]:
        """The statement's rows for `params`, each made by `make_row` from a
        tuple of its values; a failure raises what a cursor would."""
        conn, query = self.conn, self.query
        pgconn = conn.pgconn
        async with conn.lock:
            if self.converted:
                query.dump(params)
            else:
                query.convert(self.statement, params)
                self.converted = True
            name = self.names.get(query.types)
            if name is None:
                name = f"{self.prefix}{len(self.names)}".encode()
                pgconn.send_prepare(name, query.query, param_types=query.types)
                self._checked(await conn.wait(execute(pgconn)))
                self.names[query.types] = name
            pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
            result = self._checked(await conn.wait(execute(pgconn)))
        adapting = self.adapting
        adapting.set_pgresult(result)
        return adapting.load_rows(0, result.ntuples, make_row)

    def _checked(self, results: list[pq.abc.PGresult]) -> pq.abc.PGresult:
        """The statement's one result; a failed one raised as psycopg would."""
        for result in results:
            status = result.status
            if status == _FATAL_ERROR:
                raise errors.error_from_result(result, encoding=conn_encoding(self.conn))
            if status != _TUPLES_OK and status != _COMMAND_OK:
                raise errors.InternalError(f"unexpected result status: {pq.ExecStatus(status).name}")
        if len(results) != 1:
            raise errors.InternalError(f"{len(results)} results from one statement")
        return results[0]
