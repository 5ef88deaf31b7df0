"""The npm clients of tests/js, run with node against the live server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.helpers import ROOT

JS = ROOT / "tests" / "js"


def node(script: str, *args: str, timeout: float = 60) -> list[Any]:
    """Run tests/js/<script> to its end; each line it prints is one JSON value."""
    done = subprocess.run(
        ["node", str(JS / script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
