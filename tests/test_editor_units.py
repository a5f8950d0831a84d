"""The TypeScript's own unit tests (ANSI, output rendering, banners) and its
type check, run with node from labextension/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"


@pytest.fixture(scope="module")
def npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required to build and test the editor (Node 20)")
    if not (LABEXTENSION / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LABEXTENSION, check=True)
    return npm


@pytest.mark.parametrize("script", ["test", "typecheck"])
def test_typescript(npm: str, script: str) -> None:
    result = subprocess.run([npm, "run", script], cwd=LABEXTENSION, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    if script == "test":
        assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
