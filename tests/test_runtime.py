"""Runtime profiles and timeouts that say why: the profile files, the command line, and
real sandboxes (tests/test_data_profile.py runs the data profile)."""

from __future__ import annotations

from typing import Any

import pytest

from kernel_gateway_ext.cli import main as cli_main
from kernel_gateway_ext.execution import timeout_hint
from kernel_images import runtime
from tests.conftest import Execute

SLOW_IMPORT = (
    "import pathlib, sys\n"
    "pathlib.Path('/tmp/slowmod.py').write_text('import time\\ntime.sleep(60)\\n')\n"
    "sys.path.insert(0, '/tmp')\n"
    "import slowmod\n"
)


def test_the_profiles_and_what_they_preload() -> None:
    """base is today's set and preloads nothing more; data adds the data stack on top of base."""
    assert runtime.profiles() == ["base", "data"]
    assert runtime.profile_files("base") == [runtime.REQUIREMENTS.resolve()]
    assert runtime.profile_files("data")[1:] == [runtime.REQUIREMENTS.resolve()]
    data = runtime.profile_requirements("data").read_text()
    for package in ("scipy", "scikit-learn", "statsmodels", "seaborn", "sympy", "networkx", "pyarrow"):
        assert f"\n{package}\n" in data
    assert runtime.profile_preload("base") == []
    assert {"sklearn", "scipy", "statsmodels.api", "seaborn"} <= set(runtime.profile_preload("data"))
    with pytest.raises(ValueError, match="unknown runtime profile 'gpu'"):
        runtime.profile_requirements("gpu")


def test_the_command_line_refuses_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    """`coderemote runtime build --profile` takes the profiles' names only."""
    with pytest.raises(SystemExit) as refused:
        cli_main(["runtime", "build", "--profile", "../../etc", "--path", "/nonexistent"])
    assert refused.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "error,timeout,expected",
    [
        ({"ename": "KeyboardInterrupt", "evalue": "interrupted while importing sklearn"}, 10.0,
         "still importing sklearn after 10 s; raise timeout_s (up to 30 s) to give its first import time"),
        ({"ename": "KeyboardInterrupt", "evalue": "interrupted while importing scipy.stats"}, 30.0,
         "still importing scipy.stats after 30 s, the longest run allowed (ExecutionService.max_timeout); "
         "its first import takes longer"),
        ({"ename": "KeyboardInterrupt", "evalue": ""}, 10.0, None),
        ({"ename": "ValueError", "evalue": "interrupted while importing sklearn"}, 10.0, None),
        ({"ename": "KeyboardInterrupt", "evalue": "interrupted while importing a; import os"}, 10.0, None),
        (None, 10.0, None),
    ],
)  # fmt: skip
def test_timeout_hint(error: dict[str, Any] | None, timeout: float, expected: str | None) -> None:
    """Only a KeyboardInterrupt the sandbox's import guard named becomes a hint, and only a module name."""
    assert timeout_hint(error, timeout, 30.0) == expected


async def test_a_timeout_during_an_import_says_which(execute: Execute) -> None:
    """A run cut while the user's code imports a module says so; a plain timeout has no hint."""
    result = await execute(SLOW_IMPORT, timeout_s=3)
    assert result["status"] == "timeout"
    assert result["hint"].startswith("still importing slowmod after 3 s; raise timeout_s (up to 30 s)")
    assert result["error"]["evalue"] == "interrupted while importing slowmod"
    plain = await execute("import time\ntime.sleep(60)", timeout_s=2)
    assert plain["status"] == "timeout" and "hint" not in plain
