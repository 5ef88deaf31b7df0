"""The files and tests the README, docs/security.md and docs/reliability.md
name exist: a module or test moved or renamed takes its mentions along.
(docs/design/ records plans, some never built as named; docs/benchmarks.md
and docs/bench-ab-*.md are dated records.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCS = ("README.md", "docs/security.md", "docs/reliability.md")
# Built or installed, not committed: the venv, npm's packages, the embedded databases.
NOT_SOURCE = {".git", ".venv", "node_modules", ".data", "dist", "__pycache__"}
# What a name in backticks looks like when it is a file: `core/write_batch.py`, `tests/leaks.py`.
FILE = re.compile(r"[\w.-]+(/[\w.-]+)*\.(py|sql|md|json|conf|dot|svg|png|c|mjs|lua|toml|ts|tsx)")
# The README's example of running one test (`tests/test_stalled.py::test_name`).
PLACEHOLDERS = {"test_name"}


def _files() -> set[str]:
    found: set[str] = set()
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [s for s in subfolders if s not in NOT_SOURCE]
        found.update(Path(folder, name).relative_to(ROOT).as_posix() for name in names)
    return found


FILES = _files()
# A test function, or a test module named without its folder (`test_outage`).
TESTS = {Path(path).stem for path in FILES if path.startswith("tests/")} | {
    name
    for path in FILES
    if path.startswith("tests/") and path.endswith(".py")
    for name in re.findall(r"^\s*(?:async )?def (test_\w+)", (ROOT / path).read_text(), re.MULTILINE)
}


def _quoted(doc: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", (ROOT / doc).read_text())


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_named_exists(doc: str) -> None:
    # A name may be given from its room (`rest/feed.py`) or alone (`limits.py`).
    named = {quoted.split("::")[0] for quoted in _quoted(doc) if FILE.fullmatch(quoted.split("::")[0])}
    assert named, doc
    missing = [name for name in sorted(named) if not any(f == name or f.endswith("/" + name) for f in FILES)]
    assert missing == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_test_named_exists(doc: str) -> None:
    # Not a glob's stem (`tests/**/test_slowparse_*.py`).
    named = {name for quoted in _quoted(doc) for name in re.findall(r"(?<![\w.])test_\w+(?![\w.*])", quoted)}
    assert named, doc
    assert sorted(named - TESTS - PLACEHOLDERS) == []


def _anchors(doc: Path) -> set[str]:
    """Its headings as GitHub links them: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_leads_to_a_file_and_heading(doc: str) -> None:
    source = ROOT / doc
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", source.read_text()):
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        target = (source.parent / path) if path else source
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in _anchors(target)):
            broken.append(link)
    assert broken == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_migration_named_by_number_exists(doc: str) -> None:
    # `sql/024` in prose, not backticked: the file check above does not see it.
    named = set(re.findall(r"(?<![\w/])sql/(\d{3})(?!\d)", (ROOT / doc).read_text()))
    made = {Path(path).name[:3] for path in FILES if path.startswith("graphql_todos/core/sql/")}
    assert sorted(named - made) == []
