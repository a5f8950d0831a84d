"""GVisorProvisioner lifecycle with jupyter_client, on real runsc: what exists
while a kernel runs, and that nothing is left after shutdown, a crash or a kill."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from provisioner import GVisorProvisioner
from provisioner.cgroup import MemoryCgroup, group_for
from provisioner.runsc import Runsc, RunscMissingError, RunscTooOldError
from tests.conftest import running_sandboxes


async def run(kc: Any, code: str, timeout: float = 30) -> tuple[str, str]:
    """Execute code; return (stdout, reply status)."""
    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: outputs.append(m))
    return "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream"), reply["content"][
        "status"
    ]


outputs: list[dict[str, Any]] = []


@asynccontextmanager
async def sandboxed_kernel() -> AsyncIterator[tuple[AsyncKernelManager, Any]]:
    outputs.clear()
    km = AsyncKernelManager(kernel_name="python3-sandboxed")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)


def leftovers(provisioner: GVisorProvisioner, container_id: str) -> list[str]:
    found = []
    if container_id in running_sandboxes():
        found.append("container")
    if (Path(provisioner.state_dir) / "kernels" / container_id).exists():
        found.append("folder")
    if MemoryCgroup(container_id, group_for(provisioner.state_dir)).path.exists():
        found.append("cgroup")
    return found


async def test_kernel_lives_in_its_own_sandbox_and_shutdown_removes_it() -> None:
    async with sandboxed_kernel() as (km, kc):
        provisioner = km.provisioner
        cid = provisioner.container_id
        assert isinstance(provisioner, GVisorProvisioner)
        assert cid in running_sandboxes()
        conn = provisioner.connection_dir
        assert (conn.stat().st_mode & 0o777, conn.stat().st_uid) == (0o700, provisioner.sandbox_uid)
        cgroup = MemoryCgroup(cid, group_for(provisioner.state_dir))
        assert int((cgroup.path / "memory.limit_in_bytes").read_text()) == provisioner.memory_limit

        stdout, status = await run(kc, "import os\nprint(os.getuid(), os.getcwd(), sorted(os.listdir('/')))")
        assert status == "ok"
        uid, cwd, *_ = stdout.split(" ", 2)
        assert (uid, cwd) == ("1000", "/workspace")

        await km.shutdown_kernel(now=False)
        assert leftovers(provisioner, cid) == []


async def test_interrupt_reaches_the_kernel() -> None:
    async with sandboxed_kernel() as (km, kc):
        msg_id = kc.execute("import time\ntime.sleep(30)")
        await asyncio.sleep(1)
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = await kc.get_shell_msg(timeout=10)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert await km.is_alive()


async def test_crash_inside_is_seen_and_cleaned_up() -> None:
    async with sandboxed_kernel() as (km, kc):
        cid = km.provisioner.container_id
        kc.execute("import os\nos._exit(3)")
        for _ in range(100):
            if not await km.is_alive():
                break
            await asyncio.sleep(0.1)
        assert not await km.is_alive()
        assert await km.provisioner.poll() is not None
        await km.shutdown_kernel(now=True)
        assert leftovers(km.provisioner, cid) == []


async def test_kill_from_outside() -> None:
    async with sandboxed_kernel() as (km, _):
        provisioner = km.provisioner
        await asyncio.to_thread(
            subprocess.run,
            ["runsc", f"--root={provisioner.state_dir}/runsc", "kill", provisioner.container_id, "KILL"],
            check=True,
        )
        for _ in range(100):
            if not await km.is_alive():
                break
            await asyncio.sleep(0.1)
        assert not await km.is_alive()
        assert not provisioner.oom_killed
        cid = provisioner.container_id
        await km.shutdown_kernel(now=True)
        assert leftovers(provisioner, cid) == []


async def test_restart_gives_a_new_sandbox() -> None:
    async with sandboxed_kernel() as (km, kc):
        await run(kc, "marker = 1")
        await km.restart_kernel(now=True)
        await kc.wait_for_ready(timeout=60)
        outputs.clear()
        _, status = await run(kc, "marker")
        assert status == "error"  # a fresh interpreter: nothing survives a restart
        assert km.provisioner.container_id in running_sandboxes()


async def test_missing_runsc_fails_clearly_and_leaves_nothing() -> None:
    config = Config({"GVisorProvisioner": {"runsc_path": "runsc-not-installed"}})
    km = AsyncKernelManager(kernel_name="python3-sandboxed", config=config)
    before = set(os.listdir(Path(GVisorProvisioner().state_dir) / "kernels"))
    with pytest.raises(RunscMissingError, match=r"install-runsc"):
        await km.start_kernel()
    assert set(os.listdir(Path(GVisorProvisioner().state_dir) / "kernels")) <= before


async def test_environment_is_an_allow_list() -> None:
    async with sandboxed_kernel() as (km, kc):
        stdout, _ = await run(kc, "import os\nprint(sorted(os.environ))")
        names = set(eval(stdout))  # a printed list of str
        assert not {n for n in names if any(w in n for w in ("KEY", "TOKEN", "SECRET", "DATABASE", "PASSWORD"))}
        assert "JPY_PARENT_PID" not in names and "JUPYTER_RUNTIME_DIR" not in names
        assert names <= {
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "LC_CTYPE",
            "TZ",
            "PYTHONPATH",
            "PYTHONDONTWRITEBYTECODE",
            "MPLCONFIGDIR",
            "MPLBACKEND",
            "IPYTHONDIR",
            "CODEREMOTE_OUTPUT_LIMIT",
            "CODEREMOTE_BLOCKED_MODULES",
            # set by ipykernel itself inside the sandbox
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "FORCE_COLOR",
            "GIT_PAGER",
            "PAGER",
            "TERM",
            "PYDEVD_USE_FRAME_EVAL",
        }


def _stub_runsc(folder: Path, version_line: str) -> Path:
    """A stand-in for an installed runsc that only answers ``--version`` (no sandbox is ever run by it)."""
    stub = folder / "runsc"
    stub.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    stub.chmod(0o755)
    return stub


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("runsc version 0.0~20221219.0", True),
        ("runsc version 0.0~20240729.0", False),
        ("runsc version release-20250512.0", False),
        ("runsc version custom-build", False),
    ],
)
def test_an_older_runsc_is_refused(tmp_path: Path, line: str, refused: bool) -> None:
    stub = _stub_runsc(tmp_path, line)
    if refused:
        with pytest.raises(RunscTooOldError, match=r"20221219, older than the oldest supported, 20240729"):
            Runsc.find(str(stub), tmp_path, "systrap")
    else:
        assert Runsc.find(str(stub), tmp_path, "systrap").executable == str(stub)


def test_the_service_does_not_start_on_an_older_runsc(tmp_path: Path) -> None:
    stub = _stub_runsc(tmp_path, "runsc version 0.0~20221219.0")
    result = subprocess.run(
        ["jupyter", "coderemote", f"--GVisorProvisioner.runsc_path={stub}", "--port=0", "--no-browser",
         f"--SnippetStore.data_dir={tmp_path / 'data'}", "--KernelPool.size=0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "older than the oldest supported" in result.stderr and "bookworm-backports" in result.stderr
