"""The import contracts in pyproject.toml hold, and each fails on a copy of the
package given one import that breaks it: a broken floor fails make test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# contract id -> (module given the import, what it imports)
VIOLATIONS = {
    "transports": ("graphql/http.py", "graphql_todos.rest.openapi"),
    "core": ("core/models.py", "graphql_todos.edge.negotiation"),
    "edge": ("edge/logs.py", "graphql_todos.rest.openapi"),
    "live": ("live/retention.py", "graphql_todos.graphql.http"),
    "doors": ("internals/uvicorn_server.py", "graphql_todos.core.settings"),
    "leaves": ("core/errors.py", "graphql_todos.core.models"),
}


def _lint(tmp_path: Path, contract: str | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports over the copy in tmp_path (the copy's own package, found first on the path)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    only = ["--contract", contract] if contract else []
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *only],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    ignored = shutil.ignore_patterns("__pycache__", "web")
    shutil.copytree(ROOT / "graphql_todos", tmp_path / "graphql_todos", ignore=ignored)
    return tmp_path


def test_the_untouched_package_keeps_every_contract(copy: Path) -> None:
    done = _lint(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(VIOLATIONS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize("contract", VIOLATIONS)
def test_one_import_breaks_its_contract(copy: Path, contract: str) -> None:
    module, imported = VIOLATIONS[contract]
    with (copy / "graphql_todos" / module).open("a") as source:
        source.write(f"\nimport {imported}\n")
    done = _lint(copy, contract)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout and imported in done.stdout
