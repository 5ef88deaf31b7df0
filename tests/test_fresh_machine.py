"""What a fresh machine needs is Python: the Node.js the builds and tests run
comes from PyPI into the venv (the Makefile links it), so the web client
builds with no node of the machine's in sight, old or new."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.js_clients import NODE


# Vite's build is given 300 s below (a loaded machine has taken over 120 s,
# pytest-timeout's default); the test, its two steps and the build.
@pytest.mark.timeout(420)
def test_the_web_client_builds_with_the_systems_node_hidden(tmp_path: Path) -> None:
    # A PATH with the venv's bin and a shell (npm runs scripts with `sh`),
    # and no directory of the machine's that holds a node or an npm.
    shell = tmp_path / "bin"
    shell.mkdir()
    (shell / "sh").symlink_to("/bin/sh")
    # The user config make hands npm (the Makefile says why): no warning either.
    userconfig = os.environ.get("NPM_CONFIG_USERCONFIG", str(ROOT / ".venv" / "npmrc"))
    env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{shell}", "NPM_CONFIG_USERCONFIG": userconfig}
    ours = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    found = subprocess.run(
        ["npm", "exec", "--", "node", "--version"], cwd=ROOT / "web", env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout == ours
    assert "npm warn" not in found.stderr.lower(), found.stderr
    # Vite's bundling, the step that needs a recent Node (^20.19 || >=22.12).
    built = subprocess.run(
        ["npm", "exec", "--", "vite", "build", "--outDir", str(tmp_path / "dist"), "--logLevel", "error"],
        cwd=ROOT / "web", env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stderr
    assert "npm warn" not in built.stderr.lower(), built.stderr
    assert (tmp_path / "dist" / "index.html").exists()
    assert (tmp_path / "dist" / "graphiql.html").exists()
