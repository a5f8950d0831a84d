"""Kernels restored from the zygote image are as fresh and as confined as started ones:
real runsc checkpoint/restore, real kernels, started by jupyter_client through the
kernelspec's provisioner."""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from tests.conftest import running_sandboxes

FRESHNESS = (
    "import json, os, random, secrets, uuid, numpy, tempfile\n"
    "seen = {p: os.path.exists(p) for p in ('/tmp/left-behind', '/workspace/left-behind')}\n"
    "for p in seen:\n    open(p, 'w').write('x')\n"
    "print(json.dumps({'random': random.random(), 'numpy': float(numpy.random.rand()), 'secrets': secrets.token_hex(8),"
    " 'uuid': str(uuid.uuid4()), 'temp': tempfile.mkstemp()[1], 'seen': seen}))"
)


@asynccontextmanager
async def kernel(**settings: Any) -> AsyncIterator[tuple[AsyncKernelManager, Any]]:
    km = AsyncKernelManager(kernel_name="python3-sandboxed", config=Config({"GVisorProvisioner": settings}))
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def run(kc: Any, code: str, timeout: float = 30) -> tuple[str, dict[str, Any]]:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]


async def zygote_ready(timeout: float = 120) -> None:
    """The default configuration's image exists: a start builds it in the background; wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        async with kernel() as (km, _):
            if km.provisioner.restored:
                return
        assert time.monotonic() < deadline, "the zygote image was not built"
        await asyncio.sleep(2)


async def test_restored_kernels_are_fresh_and_their_own() -> None:
    await zygote_ready()
    seen = []
    keys = []
    sessions = []  # the kernel's own session id, in the header of what it sends
    for _ in range(2):
        async with kernel() as (km, kc):
            assert km.provisioner.restored
            stdout, reply = await run(kc, FRESHNESS)
            assert reply["status"] == "ok", reply
            seen.append(json.loads(stdout))
            keys.append(km.session.key)
            info = await kc.kernel_info(reply=True, timeout=10)
            sessions.append(info["header"]["session"])
    first, second = seen
    for name in ("random", "numpy", "secrets", "uuid", "temp"):
        assert first[name] != second[name], name
    assert not any(first["seen"].values()) and not any(second["seen"].values())  # no file of another kernel's life
    assert keys[0] != keys[1]  # each has its own HMAC key, from its own connection file
    assert sessions[0] != sessions[1]  # and its own session, made after the restore


async def test_restored_kernel_is_interrupted_killed_and_removed() -> None:
    await zygote_ready()
    async with kernel() as (km, kc):
        assert km.provisioner.restored
        container = km.provisioner.container_id
        assert container in running_sandboxes()
        kc.execute("import time\ntime.sleep(60)")
        await asyncio.sleep(1)
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=20)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        kernel_dir = km.provisioner.kernel_dir
    assert container not in running_sandboxes()
    assert not kernel_dir.exists()


async def test_an_interrupt_before_the_kernel_answers_leaves_it_running() -> None:
    """An interrupt sent as soon as the start returns (the restored zygote still becoming the kernel) is ignored."""
    await zygote_ready()
    km = AsyncKernelManager(kernel_name="python3-sandboxed")
    await km.start_kernel()
    kc = km.client()
    try:
        assert km.provisioner.restored
        for _ in range(10):
            await km.interrupt_kernel()
            await asyncio.sleep(0.05)
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        stdout, reply = await run(kc, "print(6 * 7)")
        assert reply["status"] == "ok" and stdout == "42\n"
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def test_restored_kernel_keeps_its_limits() -> None:
    """The memory cgroup of its own bundle holds: a run past the limit kills it, reported as OOM."""
    await zygote_ready()
    async with kernel() as (km, kc):
        assert km.provisioner.restored
        kc.execute("block = bytearray(700 * 1024 * 1024)\nblock[::4096] = b'x' * len(block[::4096])")
        deadline = time.monotonic() + 60
        while await km.is_alive():
            assert time.monotonic() < deadline, "the kernel outlived its memory limit"
            await asyncio.sleep(0.2)
        assert km.provisioner.oom_killed


def break_images(folder: Path) -> None:
    for part in folder.glob("*/image/*"):
        part.write_bytes(b"not a checkpoint")


async def test_a_failed_restore_falls_back_to_a_plain_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An image that cannot be restored (here: one broken on disk) costs a log line, not the kernel."""
    async with kernel(zygote_dir=str(tmp_path)) as (km, _):
        assert not km.provisioner.restored  # no image yet: started plainly, the image is built behind it
    deadline = time.monotonic() + 120
    while not glob.glob(f"{tmp_path}/*/complete"):
        assert time.monotonic() < deadline, "the zygote image was not built"
        await asyncio.sleep(0.5)
    await asyncio.to_thread(break_images, tmp_path)
    caplog.set_level(logging.WARNING)
    async with kernel(zygote_dir=str(tmp_path)) as (km, kc):
        assert not km.provisioner.restored
        stdout, reply = await run(kc, "print(6 * 7)")
        assert reply["status"] == "ok" and stdout == "42\n"
        assert km.provisioner.container_id in running_sandboxes()
    assert any("starting it plainly" in r.getMessage() for r in caplog.records)
