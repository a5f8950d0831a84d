#!/usr/bin/env python
"""gVisor platforms side by side, in the same run: which one the sandbox should use.

Run it as root (pytest does not collect it)::

    python tests/benchmarks/bench_platform.py [--platforms ptrace systrap] [--runs 7]

For each platform, through the service's own execution path (fresh sandbox per
request, no warm pool): the cold start of ``print(1)`` (a sandbox started for
the request; with systrap also restored from the zygote image), a syscall-heavy
cell (20,000 ``os.getppid()``), a pure-Python loop (no syscalls: the platform
should not matter) and the warm round trip of ``print(1)`` in a session. The baseline is the same cells in a plain local
ipykernel, unsandboxed, started and timed the same way in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import statistics
import time
from typing import Any

import harness
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from traitlets.config import Config

from kernel_gateway_ext.execution import ExecutionRequest, ExecutionService
from kernel_gateway_ext.pool import KernelPool
from kernel_gateway_ext.sandboxed import SandboxedKernelSpecManager
from provisioner import GVisorProvisioner
from provisioner.runsc import runsc_version

SYSCALLS = (
    "import os, time\nt = time.perf_counter()\nfor _ in range(20000):\n    os.getppid()\nprint(time.perf_counter() - t)"
)
KEYS = ("cold print(1) s", "20k getppid s", "python loop s", "warm print(1) ms")
PYTHON = "import time\nt = time.perf_counter()\nsum(i * i for i in range(300000))\nprint(time.perf_counter() - t)"


def service(platform: str, restore: bool) -> ExecutionService:
    config = Config({"GVisorProvisioner": {"platform": platform, "restore_from_zygote": restore}})
    manager = AsyncMultiKernelManager(config=config, kernel_spec_manager=SandboxedKernelSpecManager())
    return ExecutionService(pool=KernelPool(kernel_manager=manager, size=0, config=config), config=config)


async def sandboxed(platform: str, runs: int, restore: bool) -> dict[str, list[float]]:
    execution = service(platform, restore)
    figures: dict[str, list[float]] = {key: [] for key in KEYS}
    try:
        if restore:  # the first start builds the zygote image behind it: wait until starts are restores
            for _ in range(60):
                await execution.execute(ExecutionRequest(code="print(1)"))
                await asyncio.sleep(2)
                if glob.glob(f"{GVisorProvisioner().zygote_dir}/*/complete"):
                    break
        for _ in range(runs):
            started = time.perf_counter()
            result = await execution.execute(ExecutionRequest(code="print(1)"))
            assert result.status == "ok", result
            figures["cold print(1) s"].append(time.perf_counter() - started)
        session = "bench-platform"
        for code, key in ((SYSCALLS, "20k getppid s"), (PYTHON, "python loop s")):
            for _ in range(runs):
                result = await execution.execute(ExecutionRequest(code=code, session_id=session))
                assert result.status == "ok", result
                figures[key].append(float(result.stdout.strip()))
        await execution.execute(ExecutionRequest(code="print(1)", session_id=session))
        for _ in range(runs * 4):
            started = time.perf_counter()
            await execution.execute(ExecutionRequest(code="print(1)", session_id=session))
            figures["warm print(1) ms"].append((time.perf_counter() - started) * 1000)
    finally:
        await execution.shutdown()
    return figures


async def unsandboxed(runs: int) -> dict[str, list[float]]:
    """The same cells in a plain local ipykernel (this Python), timed the same way."""
    figures: dict[str, list[float]] = {key: [] for key in KEYS}

    async def run(kc: Any, code: str) -> str:
        """Run ``code``; its stream output (this cell's only)."""
        out: list[Any] = []
        reply = await kc.execute_interactive(code, timeout=60, output_hook=out.append)
        assert reply["content"]["status"] == "ok"
        return "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")

    for _ in range(runs):
        started = time.perf_counter()
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        await run(kc, "print(1)")
        figures["cold print(1) s"].append(time.perf_counter() - started)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    try:
        for code, key in ((SYSCALLS, "20k getppid s"), (PYTHON, "python loop s")):
            for _ in range(runs):
                figures[key].append(float((await run(kc, code)).strip()))
        for _ in range(runs * 4):
            started = time.perf_counter()
            await run(kc, "print(1)")
            figures["warm print(1) ms"].append((time.perf_counter() - started) * 1000)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", nargs="+", default=["ptrace", "systrap"])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--restore",
        choices=["both", "on", "off"],
        default="both",
        help="kernels restored from the zygote image, started plainly, or both (systrap only)",
    )
    args = parser.parse_args()
    import shutil

    print(f"runsc {runsc_version(shutil.which('runsc') or 'runsc')}, {args.runs} runs each, p50 (min-max)")
    results = {"unsandboxed ipykernel (baseline)": await unsandboxed(args.runs)}
    for platform in args.platforms:
        results[f"runsc --platform={platform}"] = await sandboxed(platform, args.runs, restore=False)
        if platform == "systrap" and args.restore != "off":
            results[f"runsc --platform={platform}, restored"] = await sandboxed(platform, args.runs, restore=True)
    keys = list(next(iter(results.values())))
    base = results["unsandboxed ipykernel (baseline)"]
    rows = []
    for name, figures in results.items():
        cells = [name]
        for key in keys:
            values = figures[key]
            p50 = statistics.median(values)
            ratio = p50 / statistics.median(base[key])
            cells.append(f"{p50:.3f} ({min(values):.3f}-{max(values):.3f}) {ratio:.1f}x")
        rows.append(cells)
    print(harness.table(["", *keys], rows))


if __name__ == "__main__":
    asyncio.run(main())
