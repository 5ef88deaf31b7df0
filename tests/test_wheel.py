"""The wheel as a user installs it: built from the sources, installed with its
dependencies into a fresh venv outside the checkout, it migrates an empty
database and serves the API and the web client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from graphql_todos.core.migrations import migration_files
from graphql_todos.core.settings import documented
from tests.helpers import Serve

ROOT = Path(__file__).resolve().parent.parent
PACKAGED_WEB = ROOT / "graphql_todos" / "web"
# Each build and install step may take run()'s 300 s on a loaded machine (the
# clean clone at a789db9 beside four other checkouts' setups ran out of
# pytest-timeout's default 120 s in pip install); the module's steps in all.
pytestmark = pytest.mark.timeout(900)


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv with the wheel installed."""
    assert (PACKAGED_WEB / "index.html").exists(), "needs the web client (make web builds it)"
    work = tmp_path_factory.mktemp("wheel")
    # Built from the checkout itself, which it leaves as it was: no build/
    # folder a later build could ship stale files from.
    before = _untracked()
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT)
    assert _untracked() == before
    (wheel,) = (work / "dist").glob("graphql_todos-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    # With its dependencies (pip's cache makes that quick), as a user would.
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return venv / "bin"


def _untracked() -> set[str]:
    """What stands in the checkout's top folder (where a build would stage),
    less what the suite's other processes may make there meanwhile."""
    return set(os.listdir(ROOT)) - {".data", ".hypothesis", ".pytest_cache"}


@pytest.fixture
def empty_database(admin_dsn: str) -> Iterator[str]:
    name = f"gt_wheel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield make_conninfo(admin_dsn, dbname=name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def test_the_installed_wheel_migrates_and_serves(
    installed: Path, empty_database: str, tmp_path: Path
) -> None:
    # Nothing from this checkout: no setting from the caller, no PYTHONPATH,
    # and a working directory without sql/ or web/.
    settings = {variable for variable, *_ in documented()}
    env = {k: v for k, v in os.environ.items() if k not in settings and k != "PYTHONPATH"}
    env["DATABASE_URL"] = empty_database
    program = installed / "graphql-todos"

    every = ", ".join(path.name for path in migration_files())
    assert run(program, "migrate", cwd=tmp_path, env=env).strip() == f"applied: {every}"
    serve = Serve(env, program=[program], cwd=tmp_path)
    try:
        with httpx.Client(base_url=serve.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            created = client.post(
                "/graphql", json={"query": 'mutation { createTodo(input: {title: "w"}) { title } }'}
            )
            # The cursor of its change: the database's first.
            assert created.json() == {"data": {"createTodo": {"title": "w"}}, "extensions": {"cursor": "1"}}
            page = client.get("/")
            assert page.status_code == 200
            assert page.text == (PACKAGED_WEB / "index.html").read_text()
            graphiql = client.get("/graphql", headers={"accept": "text/html"})
            assert graphiql.text == (PACKAGED_WEB / "graphiql.html").read_text()
    finally:
        assert serve.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
