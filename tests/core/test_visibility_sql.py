"""Every statement that reads todos carries the membership condition, or is
the variant for the service principal (docs/design/people.md section 4)."""

from __future__ import annotations

import re

from graphql_todos.core import list_statements, repository, verdicts, writes


def _reads_todos(statement: str) -> bool:
    return re.search(r"\bFROM todos\b", statement) is not None and not re.match(
        r"\s*(WITH (changed|deleted)|INSERT|UPDATE|DELETE)", statement
    )


def test_each_read_of_todos_names_list_members_unless_it_reads_every_list() -> None:
    reads = {
        **{f"SELECT_TODOS{key}": s for key, s in repository.SELECT_TODOS.items()},
        **{f"SELECT_SNAPSHOT{key}": s for key, s in repository.SELECT_SNAPSHOT.items()},
        **{f"SELECT_DECODED_SNAPSHOT{key}": s for key, s in repository.SELECT_DECODED_SNAPSHOT.items()},
        **{f"SELECT_TODO[{key}]": s for key, s in repository.SELECT_TODO.items()},
        **{f"SELECT_TODOS_SNAPSHOT{key}": s for key, s in repository.SELECT_TODOS_SNAPSHOT.items()},
    }
    for name, statement in reads.items():
        everything = name.endswith(("True)", "[True]"))
        assert ("list_members" in statement) is not everything, name
    # Nothing else in these modules reads todos (a new statement must be added above).
    constants = {
        name: value
        for module in (repository, list_statements, writes, verdicts)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and _reads_todos(value)
    }
    assert set(constants) <= {"SELECT_ROLE_OF_TODO", "SETTLE_UNCHANGED", "RECORD_REJECTION"}, constants
    for name, statement in constants.items():
        assert "list_members" in statement, name
