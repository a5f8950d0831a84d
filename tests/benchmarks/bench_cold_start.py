#!/usr/bin/env python
"""Where a sandboxed kernel's cold start goes, step by step, beside the same steps unsandboxed.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/bench_cold_start.py [--runs 7]

Each step runs through the real provisioner (same OCI bundle, mounts, cgroup
and limits as a kernel) with the kernelspec's argv swapped for a small
program, timed from ``start_kernel`` until the sandbox exits:

1. ``python -c pass``: runsc boots a sandbox and the interpreter starts;
2. ``import ipykernel.kernelapp``: plus the kernel's imports;
3. the full launcher to its ``kernel_info`` reply (what a user waits for).

The baseline of each step is the same program run directly on the host with
the same runtime interpreter (no sandbox), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import harness
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from kernel_images import KERNELSPECS_DIR, SANDBOX_PACKAGE_DIR
from kernel_images.runtime import Runtime, default_runtime_dir

STEPS = {
    "runsc + python start": "pass",
    "+ import ipykernel": "import ipykernel.kernelapp",
    "+ the launcher's own modules": "import coderemote_kernel.guard, coderemote_kernel.kernel, ipykernel.kernelapp",
}


def spec_dirs(tmp: Path, python: str) -> Path:
    """A kernelspec per sandboxed step, the sandboxed kernel's own, and the same
    runtime's ipykernel run on the host (``host``)."""
    base = json.loads((KERNELSPECS_DIR / "python3-sandboxed" / "kernel.json").read_text())
    specs = {
        f"step{i}": {**base, "argv": ["python", "-c", code, "{connection_file}"]}
        for i, code in enumerate(STEPS.values())
    }
    specs["python3-sandboxed"] = base
    specs["host"] = {**base, "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "metadata": {}}
    for name, spec in specs.items():
        (tmp / name).mkdir()
        (tmp / name / "kernel.json").write_text(json.dumps(spec))
    return tmp


async def sandboxed_step(ksm: KernelSpecManager, name: str) -> float:
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    start = time.perf_counter()
    await km.start_kernel()
    provisioner = km.provisioner
    while (status := await provisioner.poll()) is None:  # type: ignore[union-attr]  # noqa: ASYNC110 (polling is the API)
        await asyncio.sleep(0.002)
    took = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"step {name} failed in the sandbox: {provisioner.log_tail()}")  # type: ignore[union-attr]
    await km.cleanup_resources()
    return took


async def kernel_ready(ksm: KernelSpecManager, name: str) -> float:
    """Seconds from starting kernel ``name`` to its kernel_info reply."""
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    start = time.perf_counter()
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    took = time.perf_counter() - start
    client.stop_channels()
    await km.shutdown_kernel(now=True)
    return took


def host_step(python: str, code: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, env={"PYTHONPATH": str(SANDBOX_PACKAGE_DIR)})
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = str(Runtime.load(default_runtime_dir()).python)
    rows: list[tuple[str, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ksm = KernelSpecManager(kernel_dirs=[str(spec_dirs(Path(tmp), python))])
        for i, (label, code) in enumerate(STEPS.items()):
            sandboxed = [await sandboxed_step(ksm, f"step{i}") for _ in range(args.runs)]
            host = [host_step(python, code) for _ in range(args.runs)]
            rows.append((label, sandboxed, host))
        sandboxed = [await kernel_ready(ksm, "python3-sandboxed") for _ in range(args.runs)]
        host = [await kernel_ready(ksm, "host") for _ in range(args.runs)]
        rows.append(("full kernel to kernel_info", sandboxed, host))
    cells = []
    for label, s, h in rows:
        s50, h50 = statistics.median(s) * 1000, statistics.median(h) * 1000
        cells.append(
            [label, f"{s50:.0f} / {max(s) * 1000:.0f}", f"{h50:.0f} / {max(h) * 1000:.0f}", f"{s50 - h50:.0f}"]
        )
    print(f"cold start, {args.runs} runs each, ms (p50 / max)")
    print(harness.table(["step", "sandboxed", "host, no sandbox", "sandbox cost"], cells, indent="  "))


if __name__ == "__main__":
    asyncio.run(main())
