#!/usr/bin/env python
"""Runtime profiles: build time, size, and the first import of their heavy libraries in a sandbox.

What each profile costs to build and to store, and how long its heavy libraries
take to import in a sandboxed kernel, with and without preloading, beside the host.

Run it as root (pytest does not collect it)::

    python tests/benchmarks/bench_runtime.py [--profiles base,data] [--runs 3]
        [--path-prefix DIR [--keep]] [--reuse RUNTIME_DIR ...]

For each profile:

1. the build (``kernel_images.runtime.build(path, profile=p, force=True)``): its wall
   time, and the size of the runtime folder (file sizes, links not followed);
2. the first import of the profile's heavy modules (base: numpy, pandas,
   matplotlib.pyplot; data: its ``# preload:`` list and seaborn), each module in a
   fresh interpreter, and all of them in one: on the host (``runtime/bin/python -c``,
   the baseline: what the same code costs outside a sandbox), and in a fresh sandbox
   per execution through the service's own path (``ExecutionService``, pool size 0)
   without preloading (``preload_modules=[]``), with the profile's preload on a
   plain start, and with it restored from the zygote image (built first). The code
   times the import the same way in both places and prints the figure;
3. per sandbox configuration, the start (acquire to the first execution possible)
   and the cgroup peak memory of a kernel as it is handed out and with all the
   heavy modules imported: preloading moves import time into the start, and its
   memory into every kernel, against ``memory_limit``.

Target: with preloading, the in-sandbox first import of all the heavy modules
(p50 over the runs) is at most 1.5x the host's. Sandboxes get ``cpu_limit`` CPUs;
the host's interpreter is not limited.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from traitlets.config import Config

from kernel_gateway_ext.execution import ExecutionRequest, ExecutionResult, ExecutionService
from kernel_gateway_ext.pool import KernelPool
from kernel_gateway_ext.sandboxed import SandboxedKernelSpecManager
from kernel_images import runtime
from provisioner import GVisorProvisioner
from provisioner.runsc import runsc_version

TARGET = 1.5  # in-sandbox first import with preloading vs the host's
ALL = "all of them, one interpreter"
BASE_MODULES = ["numpy", "pandas", "matplotlib.pyplot"]
TIMEOUT_S = 300.0  # an execution, and a sandbox's start
ZYGOTE_WAIT_S = 600.0
MiB = 1 << 20
# name: (GVisorProvisioner settings, whether the profile's modules are preloaded)
MODES: dict[str, tuple[dict[str, Any], bool]] = {
    "no preload": ({"preload_modules": [], "restore_from_zygote": False}, False),
    "preload, plain start": ({"preload_modules": None, "restore_from_zygote": False}, True),
    "preload, zygote": ({"preload_modules": None, "restore_from_zygote": True}, True),
}


def heavy_modules(profile: str) -> list[str]:
    if profile == runtime.DEFAULT_PROFILE:
        return list(BASE_MODULES)
    modules = runtime.profile_preload(profile)
    return modules + [m for m in ("seaborn",) if m not in modules]


def import_code(modules: list[str]) -> str:
    return f"import time\nt = time.perf_counter()\nimport {', '.join(modules)}\nprint(time.perf_counter() - t)"


def folder_bytes(root: Path) -> int:
    """The sizes of the regular files under ``root`` (a hard-linked file once; links not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


@contextmanager
def output_to(log: Path) -> Any:
    """This process's stdout and stderr (file descriptors 1 and 2: pip's too) go to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "wb") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def host_import(rt: runtime.Runtime, modules: list[str]) -> float:
    """``import_code(modules)`` in a fresh runtime interpreter on the host, with the font cache the
    sandbox's launcher copies (and the headless Agg backend: no kernel to draw inline into)."""
    prebuilt = rt.path / "share" / "coderemote" / "matplotlib"
    with tempfile.TemporaryDirectory() as home:
        if prebuilt.is_dir():
            shutil.copytree(prebuilt, Path(home) / "matplotlib")
        env = {"PATH": f"{rt.path}/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
        env.update(MPLCONFIGDIR=f"{home}/matplotlib", MPLBACKEND="agg")
        done = subprocess.run(
            [str(rt.python), "-c", import_code(modules)], env=env, cwd=home, capture_output=True, text=True
        )
    if done.returncode != 0:
        raise RuntimeError(f"import {', '.join(modules)} failed on the host: {done.stderr.strip()[-800:]}")
    return float(done.stdout.split()[-1])


@dataclass
class Figures:
    imports: dict[str, list[float]] = field(default_factory=dict)  # module (or ALL): s
    start: list[float] = field(default_factory=list)  # s
    loaded: list[float] = field(default_factory=list)  # heavy modules already imported when handed out
    peak_start: list[int] = field(default_factory=list)  # bytes, a kernel as handed out
    peak_all: list[int] = field(default_factory=list)  # bytes, with all the heavy modules imported
    restored: list[bool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def service(runtime_dir: Path, zygote_dir: Path, settings: dict[str, Any], memory: int | None) -> ExecutionService:
    provisioner = {"runtime_dir": str(runtime_dir), "zygote_dir": str(zygote_dir), **settings}
    provisioner.update({"memory_limit": memory} if memory else {})
    timeouts = {"KernelPool": {"start_timeout": TIMEOUT_S}, "ExecutionService": {"max_timeout": TIMEOUT_S}}
    config = Config({"GVisorProvisioner": provisioner, **timeouts})
    manager = AsyncMultiKernelManager(config=config, kernel_spec_manager=SandboxedKernelSpecManager())
    return ExecutionService(pool=KernelPool(kernel_manager=manager, size=0, config=config), config=config)


def was_restored(execution: ExecutionService, kernel_id: str) -> bool:
    # The sandbox is destroyed after the answer, in a task that has not run yet: its kernel is still there.
    try:
        return bool(execution.pool.kernel_manager.get_kernel(kernel_id).provisioner.restored)
    except KeyError:
        return False


async def fresh(execution: ExecutionService, code: str, figures: Figures) -> ExecutionResult:
    """``code`` in a fresh sandbox; its start (wall time less the execution's own) is recorded."""
    started = time.perf_counter()
    result = await execution.execute(ExecutionRequest(code=code, timeout_s=TIMEOUT_S))
    elapsed = time.perf_counter() - started
    figures.restored.append(was_restored(execution, result.kernel_id))
    if result.status != "ok":
        error = result.error or {}
        raise RuntimeError(f"{result.status}: {error.get('ename', '')} {error.get('evalue', '')}".strip())
    figures.start.append(elapsed - result.duration_ms / 1000)
    return result


async def zygote_ready(execution: ExecutionService) -> bool:
    """The first start builds the zygote image behind it: start kernels until one is a restore."""
    deadline = time.monotonic() + ZYGOTE_WAIT_S
    while time.monotonic() < deadline:
        result = await execution.execute(ExecutionRequest(code="pass", timeout_s=TIMEOUT_S))
        if was_restored(execution, result.kernel_id):
            return True
        await asyncio.sleep(2)
    return False


async def sandboxed(execution: ExecutionService, modules: list[str], runs: int, zygote: bool) -> Figures:
    figures = Figures(imports={key: [] for key in [*modules, ALL]})
    if zygote and not await zygote_ready(execution):
        figures.errors.append(f"the zygote image was not ready within {ZYGOTE_WAIT_S:.0f} s")
        return figures
    failures = 0
    for _ in range(runs):
        for key in ["loaded", *modules, ALL]:
            if key == "loaded":  # a kernel as handed out: which of the modules it has imported already
                code = f"import sys\nprint(sum(m in sys.modules for m in {modules!r}))"
            else:
                code = import_code(modules if key == ALL else [key])
            try:
                result = await fresh(execution, code, figures)
            except Exception as e:  # the next ones may fit (a memory limit reached by one import only)
                figures.errors.append(f"{key}: {type(e).__name__}: {e}")
                failures += 1
                if failures >= 3 and not figures.start:
                    return figures
                continue
            figure, peak = float(result.stdout.split()[-1]), result.usage.get("peak_memory_bytes")
            (figures.loaded if key == "loaded" else figures.imports[key]).append(figure)
            if key in ("loaded", ALL) and peak is not None:
                (figures.peak_start if key == "loaded" else figures.peak_all).append(int(peak))
    return figures


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """'p50 (min-max)', or '-' without samples."""
    if not values:
        return "-"
    p50, low, high = harness.percentile(values, 50) / scale, min(values) / scale, max(values) / scale
    return f"{p50:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def report(profile: str, modules: list[str], host: dict[str, list[float]], modes: dict[str, Figures]) -> None:
    print("first import, s, p50 (min-max) of each module in a fresh interpreter (host) or a fresh sandbox:")
    rows = [[key, spread(host[key]), *(spread(f.imports[key]) for f in modes.values())] for key in host]
    print(harness.table(["module", "host", *modes], rows, indent="  "))
    print("sandboxes, p50 (min-max):")
    rows = []
    for name, f in modes.items():
        restored = f"{sum(f.restored)} of {len(f.restored)}"
        loaded = f"{spread(f.loaded, digits=0)} of {len(modules)}"
        rows.append([name, spread(f.start), loaded, spread(f.peak_start, MiB, 0), spread(f.peak_all, MiB, 0), restored])
    header = ["", "start s", "modules loaded at start", "peak MiB, as started", "peak MiB, all imported", "restored"]
    print(harness.table(header, rows, indent="  "))
    host_p50 = harness.percentile(host[ALL], 50)
    for name, f in modes.items():
        if f.imports[ALL]:
            p50 = harness.percentile(f.imports[ALL], 50)
            preloaded = MODES[name][1]
            subject = f"{'with' if preloaded else 'without'} preloading ({name}): in-sandbox first import of "
            subject += f"{', '.join(modules)} p50 {p50:.2f} s"
            value = harness.ratio(p50, host_p50)
            if value is not None:
                print(harness.ratio_line(subject, value, f"the host's {host_p50:.2f} s", TARGET if preloaded else None))
        for error in dict.fromkeys(f.errors):
            print(f"  error ({profile}, {name}): {error}")


def prepare(profile: str, args: argparse.Namespace, reused: dict[str, Path]) -> tuple[Path, str] | None:
    """The runtime (built now, into ``args.built``, unless reused) and how it came; None if the build failed."""
    if profile in reused:
        return reused[profile], "reused (not built)"
    if args.path_prefix:
        Path(args.path_prefix).mkdir(parents=True, exist_ok=True)
        path, log = Path(args.path_prefix) / profile, Path(args.path_prefix) / f"{profile}-build.log"
        args.built += [path, log]
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-runtime-{profile}-"))
        folder.chmod(0o755)  # the sandbox's user reads the runtime
        path, log = folder / "runtime", folder / "build.log"
        args.built.append(folder)
    started = time.perf_counter()
    try:
        with output_to(log):
            runtime.build(path, profile=profile, force=True)
    except Exception as e:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        print(f"\n== profile {profile}: the build failed ({e}); the end of {log}:\n{tail}")
        return None
    return path, f"built in {time.perf_counter() - started:.1f} s (log: {log})"


def remove_built(args: argparse.Namespace) -> None:
    for path in args.built:
        if args.keep:
            print(f"kept: {path}")
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


async def bench_profile(profile: str, args: argparse.Namespace, reused: dict[str, Path], zygotes: Path) -> bool:
    """Build (or reuse) the profile's runtime and print its figures; False if it could not be built."""
    modules = heavy_modules(profile)
    prepared = prepare(profile, args, reused)
    if prepared is None:
        return False
    path, built = prepared
    rt = runtime.Runtime.load(path)
    print(f"\n== profile {profile}: runtime {path}, {built}, {folder_bytes(path) / 1e6:.0f} MB")
    print(f"heavy modules: {', '.join(modules)}; the profile preloads: {', '.join(rt.preload) or 'nothing'}")
    host = {
        key: [host_import(rt, modules if key == ALL else [key]) for _ in range(args.runs)] for key in [*modules, ALL]
    }
    modes: dict[str, Figures] = {}
    for name, (settings, preloaded) in MODES.items():
        if preloaded and not settings["restore_from_zygote"] and not rt.preload:
            continue  # nothing to preload: the same kernels as without
        execution = service(path, zygotes, settings, args.memory_mib * MiB if args.memory_mib else None)
        try:
            modes[name] = await sandboxed(execution, modules, args.runs, settings["restore_from_zygote"])
        finally:
            await execution.shutdown()
    report(profile, modules, host, modes)
    return True


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="base,data", help="comma-separated, of: " + ", ".join(runtime.profiles()))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--path-prefix", help="build each profile's runtime in PREFIX/PROFILE (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the runtimes built (default: removed at the end)")
    parser.add_argument(
        "--reuse", action="append", default=[], metavar="RUNTIME_DIR", help="use this built runtime for its profile"
    )
    parser.add_argument("--memory-mib", type=int, help="GVisorProvisioner.memory_limit (default: its default)")
    args = parser.parse_args()
    args.built = []
    profiles = [p for p in args.profiles.split(",") if p]
    unknown = set(profiles) - set(runtime.profiles())
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(sorted(unknown))}: one of {', '.join(runtime.profiles())}")
    reused = {runtime.Runtime.load(d).profile: Path(d) for d in args.reuse}
    defaults = GVisorProvisioner()
    memory = args.memory_mib or defaults.memory_limit // MiB
    runsc = runsc_version(shutil.which(defaults.runsc_path) or defaults.runsc_path)
    print(f"runsc {runsc}, {args.runs} runs, memory_limit {memory} MiB, cpu_limit {defaults.cpu_limit:g}")
    print(f"python {sys.version.split()[0]}, project packages from {Path(runtime.__file__).parents[1]}")
    print(harness.machine_load())
    started = time.perf_counter()
    zygotes = Path(tempfile.mkdtemp(prefix="bench-runtime-zygotes-"))
    ok = True
    try:
        for profile in profiles:
            ok = await bench_profile(profile, args, reused, zygotes) and ok
    finally:
        shutil.rmtree(zygotes, ignore_errors=True)
        remove_built(args)
        harness.destroy_leftover_sandboxes({os.getpid()})
        print(harness.finished_line(time.perf_counter() - started))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
