"""bench.cursorwait's throwaway copies: its patch (the decoded journal's
write path, docs/design/journal-decoding.md) still applies to the package
as it is, so the measurement can be made again; a change to the files it
touches must carry the patch along."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.helpers import ROOT

PATCH = ROOT / "bench" / "cursorwait.patch"  # bench.cursorwait.PATCH, whose imports need the bench extra


def test_the_cursor_wait_patch_applies_to_the_package(tmp_path: Path) -> None:
    package = tmp_path / "graphql_todos"
    shutil.copytree(ROOT / "graphql_todos", package, ignore=shutil.ignore_patterns("__pycache__", "web"))
    applied = subprocess.run(
        ["git", "apply", "--check", str(PATCH)], check=False, cwd=tmp_path, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
