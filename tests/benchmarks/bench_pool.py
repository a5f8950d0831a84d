#!/usr/bin/env python
"""Warm-pool and load benchmark of Code Remote, each figure beside a baseline from the same run.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/bench_pool.py            # full run, about 5 minutes
    python tests/benchmarks/bench_pool.py --quick    # 15 s of load and fewer requests

What is measured, and why:

1. ``POST api/coderemote/execute`` of ``print(1)`` without a session, i.e. a
   fresh sandbox per request, with the warm pool full against with no pool at
   all (a cold start per request). Two ``jupyter coderemote`` servers run side
   by side, one with ``KernelPool.size=2`` and one with ``size=0``, and the
   requests alternate between them. Before each request both servers are left
   to settle (the warm pool back to 2 idle kernels, used sandboxes destroyed;
   at most 30 s): what is timed is a pool hit against a cold start, not a
   pool refill competing for the machine's cores. The sandbox start time is
   also read from the server's own histogram ``coderemote_sandbox_start_seconds``
   (sum/count mean, and a p50 interpolated in its buckets) and compared with
   the p50 of the cold requests' total time measured here. The baseline of a
   cold request, measured in each round after it: a plain unsandboxed local
   ipykernel (``python3``), from its start to its first reply. Targets:
   warm-pool execute p50 <= 60 ms; sandbox cold start p50 <= 1 s, and <= that
   baseline's p50.
2. Throughput and correctness under load: 8 clients for 60 s, each POSTing in
   a loop a fresh-sandbox execute of ``print(a * b)`` with random ``a`` and
   ``b``, checking that stdout is the product. Counted: completed (answered
   200), wrong (stdout is not the product, or status is not ``ok``), lost
   (connection error, timeout, any status but 200 and 503) and rejected with
   503 (the client then sleeps for Retry-After before its next request).
   Server: pool size 4, at most 12 kernels (12 per user; all clients are one
   user), queue timeout 30 s. A monitor reads the health endpoint every 0.5 s
   to show whether the pool kept up, and the pool hit/miss counters say how
   many requests had to wait for a sandbox started on demand.
3. The same load against Jupyter Kernel Gateway, the unsandboxed peer: its
   default ``jupyter-websocket`` API, a fresh ``python3`` kernel per request
   (POST api/kernels, websocket, kernel_info, execute, DELETE api/kernels/ID),
   checked the same way. KG is pip-installed into a throw-away virtualenv in
   the run's temporary folder (it is not a project dependency), with an
   ipykernel and a ``python3`` kernelspec of the virtualenv's own; if that
   fails this part is skipped. In this mode KG has no equivalent of our warm pool:
   ``prespawn_count`` kernels are started at launch, but POST api/kernels
   starts a new kernel all the same. The run starts KG with one prespawned
   kernel, checks exactly that and prints what it found; so the peer pays a
   kernel start per request. Its latency is timed up to the result; the
   DELETE, which KG does before answering, is timed apart (our server
   destroys a sandbox after answering, off the request's path).

Servers run as subprocesses on free ports, only on 127.0.0.1, and are
stopped (shutdown request, then SIGTERM, then SIGKILL) with all their kernels
even on error; load loops are bounded in count and in time. The run ends by
checking that no sandbox of this run is left in ``runsc list`` (its owner pid,
in the kernel's ``owner.json``, is one of our servers) and no Kernel Gateway
kernel is left running. The last line of output is one JSON object with every
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import harness
import websocket
from harness import PLAIN, START_TIMEOUT, LocalKernels, Server, machine_load, summarize

FULL = {"warm_runs": 20, "cold_runs": 10, "duration": 60.0}
QUICK = {"warm_runs": 5, "cold_runs": 3, "duration": 15.0}
CLIENTS = 8
MAX_REQUESTS_PER_CLIENT = 5000  # a bound on each load loop besides its duration
WARM_POOL_SIZE = 2
SETTLE_TIMEOUT = 30.0  # s, for the pool to refill and used sandboxes to go between requests
REQUEST_TIMEOUT = 90.0  # s, one POST execute under load: queue timeout 30 s + a sandbox start + the code
KG_STEP_TIMEOUT = 60.0  # s, each step of a Kernel Gateway request (start, websocket, execute, delete)
DRAIN_TIMEOUT = 300.0  # s after the load's end, for the clients' last requests
MONITOR_INTERVAL = 0.5  # s
LOAD_POOL_FLAGS = [
    "--KernelPool.size=4",
    "--KernelPool.max_kernels=12",
    "--KernelPool.max_kernels_per_user=12",
    "--KernelPool.queue_timeout=30",
]
WARM_TARGET_MS = 60.0
COLD_START_TARGET_S = 1.0
METRIC_LINE = re.compile(r"^(coderemote_[a-z_]+(?:\{[^}]*\})?) (\S+)$")
START_HISTOGRAM = "coderemote_sandbox_start_seconds"


class LostError(RuntimeError):
    """A request that got no usable answer (counted as lost under load)."""


@dataclass
class Report:
    """Every figure of the run (for the JSON line), the printed tables and notes."""

    figures: dict[str, Any] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


# --------------------------------------------------------------------------- our server: health and metrics


def health(server: Server) -> dict[str, Any]:
    _, body = server.api("GET", "/api/coderemote/health")
    return body if isinstance(body, dict) else {}


def settle(server: Server, idle: int, timeout: float = SETTLE_TIMEOUT) -> bool:
    """Wait until the pool holds ``idle`` kernels and no other kernel exists (refilled, used ones gone)."""

    def settled() -> bool:
        h = health(server)
        return h.get("pool", {}).get("idle") == idle and h.get("kernels") == idle

    return harness.wait_until(settled, timeout, interval=0.1)


def scrape(server: Server) -> dict[str, float]:
    """The server's coderemote_* samples, keyed by name and labels as printed."""
    status, text = server.api("GET", "/api/coderemote/metrics")
    if status != 200 or not isinstance(text, str):
        raise RuntimeError(f"{server.label}: GET api/coderemote/metrics answered {status}")
    values = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def start_histogram(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Sandbox starts between two scrapes: count, mean and bucket-interpolated p50, in seconds."""
    count = delta(before, after, f"{START_HISTOGRAM}_count")
    total = delta(before, after, f"{START_HISTOGRAM}_sum")
    buckets = sorted(
        (float(m.group(1)), delta(before, after, name))
        for name in after
        if (m := re.fullmatch(START_HISTOGRAM + r'_bucket\{le="([^"]+)"\}', name))
    )
    return {
        "count": int(count),
        "mean_s": round(total / count, 3) if count else None,
        "p50_s": bucket_quantile(buckets, count, 0.5),
    }


def bucket_quantile(buckets: list[tuple[float, float]], count: float, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank."""
    if not count:
        return None
    rank, lower, below = q * count, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return round(lower, 3)
            return round(lower + (upper - lower) * (rank - below) / max(cumulative - below, 1e-9), 3)
        lower, below = upper, cumulative
    return None


# --------------------------------------------------------------------------- 1. fresh sandbox: warm pool vs none


def execute_print(conn: http.client.HTTPConnection, server: Server) -> tuple[float, float]:
    """POST execute of print(1) without a session; its total time and the server's own duration, s."""
    started = time.perf_counter()
    conn.request("POST", "/api/coderemote/execute", json.dumps({"code": "print(1)"}), server.headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{server.label}: POST execute answered {response.status}: {data[:300]!r}")
    result = json.loads(data)
    if result["status"] != "ok" or result["stdout"] != "1\n":
        raise RuntimeError(f"{server.label}: print(1) gave {result}")
    return elapsed, result["duration_ms"] / 1000.0


def plain_kernel_start(workdir: Path) -> float:
    """The cold start's baseline: a plain unsandboxed local ipykernel, from its start to its first reply, s."""

    async def once() -> float:
        kernels = LocalKernels(workdir)
        try:
            return (await kernels.start(PLAIN))[2]
        finally:
            await kernels.close()

    return asyncio.run(once())


def measure_fresh(args: argparse.Namespace, workdir: Path, servers: list[Any], report: Report) -> None:
    print(f"[1] POST execute print(1), no session: {args.warm_runs} warm-pool, {args.cold_runs} cold; {machine_load()}")
    # The cold server first: a server reaps ownerless sandboxes as it starts,
    # so none should be half-way through being made by the other one.
    cold = harness.coderemote_server("cold", workdir, "--KernelPool.size=0")
    warm = harness.coderemote_server("warm", workdir, f"--KernelPool.size={WARM_POOL_SIZE}")
    servers += [cold, warm]
    runs = {"warm": (warm, args.warm_runs), "cold": (cold, args.cold_runs)}
    total: dict[str, list[float]] = {"warm": [], "cold": [], "plain": []}
    inside: dict[str, list[float]] = {"warm": [], "cold": []}
    unsettled = 0
    with harness.started(cold.start, warm.start):  # stopped at the end: part 2 has its own server
        if not settle(warm, WARM_POOL_SIZE, START_TIMEOUT):
            raise RuntimeError(f"the warm pool did not fill within {START_TIMEOUT:.0f} s: {health(warm)}")
        before = {s.label: scrape(s) for s in (warm, cold)}
        conns = {
            label: http.client.HTTPConnection("127.0.0.1", s.port, timeout=REQUEST_TIMEOUT)
            for label, (s, _) in runs.items()
        }
        try:
            for i in range(max(args.warm_runs, args.cold_runs)):
                for label, (server, n) in runs.items():
                    if i >= n:
                        continue
                    if not (settle(warm, WARM_POOL_SIZE) and settle(cold, 0)):
                        unsettled += 1
                        if unsettled == 1:
                            seen = {s.label: {k: health(s).get(k) for k in ("kernels", "pool")} for s in (warm, cold)}
                            report.notes.append(
                                f"servers not settled after {SETTLE_TIMEOUT:.0f} s (round {i + 1}): {seen}"
                            )
                    elapsed, duration = execute_print(conns[label], server)
                    total[label].append(elapsed)
                    inside[label].append(duration)
                if i < args.cold_runs:
                    total["plain"].append(plain_kernel_start(workdir))
                rounds = ", ".join(f"{k} {ms(v[-1]):.0f} ms" for k, v in total.items() if len(v) > i)
                print(f"    round {i + 1}: {rounds}")
        finally:
            for conn in conns.values():
                conn.close()
        after = {s.label: scrape(s) for s in (warm, cold)}
    record_fresh(report, total, inside, before, after, unsettled)


def record_fresh(
    report: Report,
    total: dict[str, list[float]],
    inside: dict[str, list[float]],
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]],
    unsettled: int,
) -> None:
    warm, cold, plain = summarize(total["warm"]), summarize(total["cold"]), summarize(total["plain"])
    start = start_histogram(before["cold"], after["cold"])
    refill = start_histogram(before["warm"], after["warm"])
    hits = int(delta(before["warm"], after["warm"], "coderemote_pool_hits_total"))
    misses = int(delta(before["warm"], after["warm"], "coderemote_pool_misses_total"))
    warm_inside, cold_inside = summarize(inside["warm"]), summarize(inside["cold"])
    figures: dict[str, Any] = {
        "warm_ms": warm,
        "cold_ms": cold,
        "plain_ipykernel_start_ms": plain,
        "cold_vs_plain_ipykernel_start": round(cold["p50"] / plain["p50"], 3),
        "warm_server_duration_ms": warm_inside,
        "cold_server_duration_ms": cold_inside,
        "warm_pool_hits": hits,
        "warm_pool_misses": misses,
        "sandbox_start_metric_cold_server": start,
        "sandbox_start_metric_warm_server_refills": refill,
        "sandbox_cold_start_p50_s_measured": round(cold["p50"] / 1000, 3),
        "cold_minus_warm_p50_s": round((cold["p50"] - warm["p50"]) / 1000, 3),
        "rounds_not_settled_in_time": unsettled,
    }
    report.figures["fresh_sandbox"] = figures
    warm_met = warm["p50"] <= WARM_TARGET_MS
    cold_met = cold["p50"] / 1000 <= COLD_START_TARGET_S
    plain_met = cold["p50"] <= plain["p50"]
    verdict = harness.verdict
    report.figures["targets"] = {
        "warm_execute_p50_le_60ms": warm_met,
        "sandbox_cold_start_p50_le_1s": cold_met,
        "cold_execute_p50_le_plain_ipykernel_start": plain_met,
    }
    rows = [
        ("warm pool (size=2, 2 idle before each)", warm, f"{warm_inside['p50']:.1f}"),
        ("empty pool (size=0, cold start each)", cold, f"{cold_inside['p50']:.1f}"),
        ("plain local ipykernel: start to first reply", plain, "(unsandboxed, no server)"),
    ]
    header = ["", "n", "p50", "p99", "max", "server-side run p50"]
    cells = [
        [name, f"{f['n']:.0f}", f"{f['p50']:.1f}", f"{f['p99']:.1f}", f"{f['max']:.1f}", run] for name, f, run in rows
    ]
    lines = [
        "[1] POST api/coderemote/execute, print(1), no session (a fresh sandbox each); times in ms",
        harness.table(header, cells, align="<>>>><", indent="    "),
        f"    warm server: pool hits {hits}, misses {misses} (of {warm['n']:.0f} requests)",
        f"    sandbox cold start, server metric {START_HISTOGRAM} on the cold server:"
        f" mean {start['mean_s']} s, p50 ~{start['p50_s']} s (buckets), n={start['count']}",
        f"    sandbox cold start, measured here: cold request p50 {cold['p50'] / 1000:.3f} s"
        f" (cold - warm p50: {figures['cold_minus_warm_p50_s']:.3f} s)",
        f"    (the warm server's background refills: mean {refill['mean_s']} s, n={refill['count']})",
        f"    target warm-pool execute p50 <= {WARM_TARGET_MS:.0f} ms: {warm['p50']:.1f} ms, {verdict(warm_met)}",
        f"    target sandbox cold start p50 <= {COLD_START_TARGET_S:.0f} s: {cold['p50'] / 1000:.2f} s measured, "
        f"{start['mean_s']} s server mean: {verdict(cold_met)}",
        f"    target cold POST execute p50 <= a plain ipykernel's start: {cold['p50']:.0f} vs {plain['p50']:.0f} ms"
        f" ({figures['cold_vs_plain_ipykernel_start']:.2f}x): {verdict(plain_met)}",
    ]
    if unsettled:
        report.notes.append(f"{unsettled} round(s) started before both servers settled within {SETTLE_TIMEOUT:.0f} s")
    if misses:
        report.notes.append(f"the warm pool missed {misses} of {warm['n']:.0f} requests despite waiting for it")
    report.tables.append("\n".join(lines))


# --------------------------------------------------------------------------- load: clients and their tallies


@dataclass
class Reply:
    kind: str  # ok | wrong | rejected
    latency: float = 0.0
    retry_after: float = 0.0
    detail: str = ""
    delete: float | None = None  # Kernel Gateway: time of the DELETE after the result
    steps: str = ""  # Kernel Gateway: time of each step, shown for the slowest requests


class LoadClient(Protocol):
    def run(self, a: int, b: int) -> Reply: ...

    def close(self) -> None: ...


@dataclass
class Tally:
    completed: int = 0
    wrong: int = 0
    lost: int = 0
    rejected: int = 0
    latencies: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # monotonic time each completed request ended
    deletes: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    slowest: list[tuple[float, str]] = field(default_factory=list)  # (latency, steps), longest 3

    def example(self, text: str) -> None:
        if len(self.examples) < 3:
            self.examples.append(text[:300])

    def add(self, reply: Reply) -> None:
        self.completed += 1
        self.latencies.append(reply.latency)
        self.finished.append(time.monotonic())
        if reply.delete is not None:
            self.deletes.append(reply.delete)
        if reply.steps:
            self.slowest = sorted([*self.slowest, (reply.latency, reply.steps)], reverse=True)[:3]
        if reply.kind == "wrong":
            self.wrong += 1
            self.example(f"wrong: {reply.detail}")


def client_loop(client: LoadClient, seed: str, deadline: float, max_requests: int, tally: Tally) -> None:
    """One client: requests back to back until the deadline (or max_requests), each checked."""
    rng = random.Random(seed)
    try:
        for _ in range(max_requests):
            if time.monotonic() >= deadline:
                return
            a, b = rng.randrange(10**8, 10**9), rng.randrange(10**8, 10**9)
            try:
                reply = client.run(a, b)
            except Exception as e:
                tally.lost += 1
                tally.example(f"lost: {e!r}")
                time.sleep(0.1)  # no tight loop against a server that is gone
                continue
            if reply.kind == "rejected":
                tally.rejected += 1
                time.sleep(max(0.0, min(reply.retry_after, deadline - time.monotonic())))
                continue
            tally.add(reply)
    finally:
        client.close()


class Monitor:
    """Calls ``sample`` every MONITOR_INTERVAL in a thread; keeps what it returns."""

    def __init__(self, sample: Any) -> None:
        self.sample = sample
        self.samples: list[dict[str, int]] = []
        self.failures: list[str] = []  # a sample that failed is skipped, not fatal
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop_event.wait(MONITOR_INTERVAL):
            try:
                self.samples.append(self.sample())
            except Exception as e:
                self.failures.append(repr(e)[:300])

    def __enter__(self) -> Monitor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)


def run_load(label: str, make_client: Any, args: argparse.Namespace, monitor: Monitor) -> dict[str, Any]:
    """args.clients clients for args.duration seconds; the summed tallies and figures."""
    print(f"    {label}: {args.clients} clients for {args.duration:.0f} s; {machine_load()}", flush=True)
    tallies = [Tally() for _ in range(args.clients)]
    began = time.monotonic()
    deadline = began + args.duration
    threads = [
        threading.Thread(
            target=client_loop,
            args=(make_client(), f"{args.seed}-{label}-{i}", deadline, args.max_requests, tally),
            daemon=True,
        )
        for i, tally in enumerate(tallies)
    ]
    with monitor:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline + DRAIN_TIMEOUT - time.monotonic()))
    elapsed = time.monotonic() - began
    stuck = sum(thread.is_alive() for thread in threads)
    return summarize_load(tallies, deadline, elapsed, stuck, args)


def summarize_load(
    tallies: list[Tally], deadline: float, elapsed: float, stuck: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The rate counts requests completed within the load's duration; the ones in flight at its end
    finish afterwards (counted in ``completed``, and in the latencies) but not in the rate."""
    latencies = [x for t in tallies for x in t.latencies]
    deletes = [x for t in tallies for x in t.deletes]
    completed = sum(t.completed for t in tallies)
    in_window = sum(end <= deadline for t in tallies for end in t.finished)
    slowest = sorted((x for t in tallies for x in t.slowest), reverse=True)[:3]
    return {
        "clients": args.clients,
        "duration_s": args.duration,
        "elapsed_s": round(elapsed, 1),
        "completed": completed,
        "completed_in_duration": in_window,
        "completed_per_s": round(in_window / args.duration, 2),
        "wrong": sum(t.wrong for t in tallies),
        "lost": sum(t.lost for t in tallies),
        "rejected_503": sum(t.rejected for t in tallies),
        "latency_ms": summarize(latencies) if latencies else None,
        "delete_ms": summarize(deletes) if deletes else None,
        "clients_not_finished": stuck,
        "examples": [e for t in tallies for e in t.examples][:6],
        "slowest": [f"{latency:.1f} s: {steps}" for latency, steps in slowest],
    }


# --------------------------------------------------------------------------- 2. load on our server


class CodeRemoteClient:
    """POST execute without a session on one keep-alive connection (re-opened after an error)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: http.client.HTTPConnection | None = None

    def run(self, a: int, b: int) -> Reply:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=REQUEST_TIMEOUT)
        body = json.dumps({"code": f"print({a} * {b})"})
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/api/coderemote/execute", body, self.server.headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        latency = time.perf_counter() - started
        if response.status == 503:
            return Reply("rejected", retry_after=float(response.getheader("Retry-After") or 1))
        if response.status != 200:
            raise LostError(f"HTTP {response.status}: {data[:200]!r}")
        result = json.loads(data)
        if result.get("status") == "ok" and result.get("stdout") == f"{a * b}\n":
            return Reply("ok", latency)
        detail = (
            f"{a} * {b}: status {result.get('status')}, stdout {result.get('stdout')!r}, error {result.get('error')}"
        )
        return Reply("wrong", latency, detail=detail)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def pool_sample(server: Server) -> dict[str, int]:
    h = health(server)
    return {"idle": h["pool"]["idle"], "kernels": h["kernels"]}


def measure_load_ours(args: argparse.Namespace, workdir: Path, servers: list[Any], report: Report) -> None:
    print("[2] load on `jupyter coderemote`, fresh sandbox per request", flush=True)
    server = harness.coderemote_server("load", workdir, *LOAD_POOL_FLAGS)
    servers.append(server)
    with server:
        if not settle(server, 4, START_TIMEOUT):
            raise RuntimeError(f"the pool did not fill to 4 within {START_TIMEOUT:.0f} s: {health(server)}")
        before = scrape(server)
        monitor = Monitor(lambda: pool_sample(server))
        figures = run_load("coderemote", lambda: CodeRemoteClient(server), args, monitor)
        after = scrape(server)
    samples = monitor.samples
    figures["pool"] = {
        "hits": int(delta(before, after, "coderemote_pool_hits_total")),
        "misses": int(delta(before, after, "coderemote_pool_misses_total")),
        "rejected_by_server": int(
            sum(delta(before, after, k) for k in after if k.startswith("coderemote_rejected_requests_total"))
        ),
        "sandbox_start": start_histogram(before, after),
        "samples": len(samples),
        "samples_idle_0": sum(s["idle"] == 0 for s in samples),
        "mean_idle": round(sum(s["idle"] for s in samples) / len(samples), 2) if samples else None,
        "max_kernels": max((s["kernels"] for s in samples), default=None),
        "monitor_failed": len(monitor.failures),
    }
    if monitor.failures:
        report.notes.append(f"coderemote: {len(monitor.failures)} health samples failed, e.g. {monitor.failures[0]}")
    report.figures.setdefault("load", {})["coderemote"] = figures


# --------------------------------------------------------------------------- 3. load on Jupyter Kernel Gateway


# Run by the virtualenv's Python: ipykernel and the python3 kernelspec that KG will use must be the virtualenv's own.
CHECK_KERNEL = """
import sys, ipykernel, kernel_gateway
from jupyter_client.kernelspec import KernelSpecManager
spec = KernelSpecManager().get_kernel_spec("python3")
for what, path in (("ipykernel", ipykernel.__file__), ("the python3 kernelspec", spec.resource_dir)):
    if not path.startswith(sys.prefix + "/"):
        sys.exit(f"{what} is not the virtualenv's own: {path}")
print(f"Kernel Gateway {kernel_gateway.__version__}, ipykernel {ipykernel.__version__} and its kernelspec"
      f" in the virtualenv ({spec.argv[0]})")
"""


def install_kernel_gateway(workdir: Path) -> Path | None:
    """A virtualenv with jupyter_kernel_gateway, ipykernel and its ``python3`` kernelspec; None if that fails.

    The virtualenv sees this environment's packages (Kernel Gateway reuses its
    Jupyter Server), but ipykernel is installed into the virtualenv itself,
    with its dependencies, from the package index (``--ignore-installed``: a
    copy in this environment does not count), and so is its kernelspec: KG's
    kernels then depend on nothing that this environment may lack ("No such
    kernel named python3"). The last step checks that KG's kernelspec manager
    finds that kernelspec and that it runs the virtualenv's ipykernel.
    """
    venv = workdir / "kg-venv"
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    steps = {
        "virtualenv": [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        "pip install jupyter_kernel_gateway": [*pip, "jupyter_kernel_gateway"],
        "pip install ipykernel": [*pip, "--ignore-installed", "ipykernel"],
        "ipykernel install": [python, "-m", "ipykernel", "install", "--prefix", str(venv), "--name", "python3"],
        "kernelspec check": [python, "-c", CHECK_KERNEL],
    }
    for name, step in steps.items():
        try:
            done = subprocess.run(step, check=True, capture_output=True, text=True, timeout=600)
        except subprocess.CalledProcessError as e:
            print(f"    could not install Kernel Gateway ({name}): {(e.stderr or e.stdout).strip()[-500:]}")
            return None
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"    could not install Kernel Gateway ({name}): {e}")
            return None
    print(f"    {done.stdout.strip()}", flush=True)
    return venv


class KernelGateway(Server):
    """``jupyter kernelgateway`` (jupyter-websocket mode) on a free port, token auth, its own runtime dir."""

    status_path = "/api"
    request_timeout = KG_STEP_TIMEOUT

    def __init__(self, venv: Path, workdir: Path, prespawn: int) -> None:
        self.prespawn = prespawn
        super().__init__("kernelgateway", [str(venv / "bin" / "jupyter-kernelgateway")], workdir)
        self.runtime_dir = workdir / "kg-runtime"  # kernel connection files: marks this run's KG kernels
        self.env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.runtime_dir)}

    def server_flags(self) -> list[str]:
        return [
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={self.port}",
            f"--KernelGatewayApp.auth_token={self.token}",
            f"--KernelGatewayApp.prespawn_count={self.prespawn}",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ]

    def kernels(self, tries: int = 5) -> list[dict[str, Any]]:
        """Its kernels. KG answers 500 while a kernel is starting (no last_activity yet): retried."""
        for _ in range(tries):
            status, kernels = self.api("GET", "/api/kernels")
            if status == 200:
                return list(kernels)
            time.sleep(0.2)
        raise RuntimeError(f"Kernel Gateway: GET api/kernels answered {status}: {str(kernels)[:300]}")

    def stop(self) -> None:
        """Delete its kernels, then SIGTERM (KG shuts its kernels down), SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            try:
                for kernel in self.kernels():
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except (OSError, http.client.HTTPException, RuntimeError) as e:
                print(f"  warning: could not delete Kernel Gateway kernels: {e!r}", file=sys.stderr)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout=20)
                    break
                except subprocess.TimeoutExpired:
                    print(f"  warning: Kernel Gateway still running after {sig.name}", file=sys.stderr)

    def leftover_kernel_pids(self) -> list[int]:
        """Processes whose command line names this run's KG runtime dir: its kernels."""
        marker = str(self.runtime_dir).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids


class KernelGatewayClient:
    """A fresh python3 kernel per request: POST api/kernels, websocket, kernel_info, execute, DELETE."""

    def __init__(self, gateway: KernelGateway) -> None:
        self.gateway = gateway

    def run(self, a: int, b: int) -> Reply:
        started = time.perf_counter()
        status, kernel = self.gateway.api("POST", "/api/kernels", {"name": "python3"})
        if status != 201:
            raise LostError(f"POST api/kernels answered {status}: {str(kernel)[:200]}")
        posted = time.perf_counter() - started
        try:
            stdout, reply_status, timings = self._execute(kernel["id"], f"print({a} * {b})")
            latency = time.perf_counter() - started
        finally:
            deleting = time.perf_counter()
            status, answer = self.gateway.api("DELETE", f"/api/kernels/{kernel['id']}")
        if status != 204:
            raise LostError(f"DELETE api/kernels/{kernel['id']} answered {status}: {str(answer)[:200]}")
        delete = time.perf_counter() - deleting
        steps = f"POST api/kernels {posted:.2f} s, " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        if reply_status == "ok" and stdout == f"{a * b}\n":
            return Reply("ok", latency, delete=delete, steps=steps)
        detail = f"{a} * {b}: status {reply_status}, stdout {stdout!r}"
        return Reply("wrong", latency, detail=detail, delete=delete, steps=steps)

    def _execute(self, kernel_id: str, code: str) -> tuple[str, str, dict[str, float]]:
        """Run ``code`` on the kernel over a new websocket: its stdout, reply status and step times."""
        url = f"ws://127.0.0.1:{self.gateway.port}/api/kernels/{kernel_id}/channels"
        steps: dict[str, float] = {}
        mark = time.perf_counter()
        ws = websocket.create_connection(
            url, timeout=KG_STEP_TIMEOUT, header=[f"Authorization: token {self.gateway.token}"]
        )
        try:
            steps["websocket"], mark = time.perf_counter() - mark, time.perf_counter()
            session = uuid.uuid4().hex
            info_id, message = harness.jupyter_message("kernel_info_request", {}, session)
            ws.send(message)
            self._receive(ws, info_id, lambda m: m["msg_type"] == "kernel_info_reply")
            steps["kernel_info"], mark = time.perf_counter() - mark, time.perf_counter()
            content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
            exec_id, message = harness.jupyter_message("execute_request", {**content, "allow_stdin": False}, session)
            ws.send(message)
            stdout: list[str] = []
            state = {"idle": False, "reply": ""}

            def done(msg: dict[str, Any]) -> bool:
                kind, body = msg["msg_type"], msg["content"]
                if kind == "stream" and body["name"] == "stdout":
                    stdout.append(body["text"])
                elif kind == "status":
                    state["idle"] = body["execution_state"] == "idle"
                elif kind == "execute_reply":
                    state["reply"] = body["status"]
                return bool(state["idle"] and state["reply"])

            self._receive(ws, exec_id, done)
            steps["execute"] = time.perf_counter() - mark
            return "".join(stdout), str(state["reply"]), steps
        finally:
            ws.close()

    @staticmethod
    def _receive(ws: websocket.WebSocket, msg_id: str, done: Any) -> None:
        """Read messages until ``done`` is true for one answering ``msg_id`` (bounded in time)."""
        deadline = time.monotonic() + KG_STEP_TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and done(msg):
                return
        raise LostError(f"no answer to {msg_id} within {KG_STEP_TIMEOUT:.0f} s")

    def close(self) -> None:
        pass


def check_prespawn(gateway: KernelGateway) -> dict[str, Any]:
    """Does POST api/kernels hand out a prespawned kernel (a warm pool), or start a new one?"""
    deadline = time.monotonic() + START_TIMEOUT  # KG prespawns once its loop runs, after it answers HTTP
    listed: list[dict[str, Any]] = []
    while not listed and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            listed = gateway.kernels(tries=1)
        except RuntimeError:  # the 500 of a kernel still starting
            continue
    prespawned = {k["id"]: k["name"] for k in listed}
    status, kernel = gateway.api("POST", "/api/kernels", {"name": "python3"})
    if status != 201:
        raise RuntimeError(f"Kernel Gateway: POST api/kernels answered {status}: {kernel}")
    gateway.api("DELETE", f"/api/kernels/{kernel['id']}")
    remaining = {k["id"] for k in gateway.kernels()}
    finding = {
        "prespawned": sorted(prespawned.values()),
        "post_took_a_prespawned_kernel": kernel["id"] in prespawned,
        "prespawned_still_idle": set(prespawned) <= remaining,
    }
    if not prespawned:
        verdict = f"started a kernel (none was prespawned within {START_TIMEOUT:.0f} s)"
    elif finding["post_took_a_prespawned_kernel"]:
        verdict = "handed out a prespawned kernel"
    else:
        verdict = "started a new kernel; the prespawned one stayed unused (no warm pool in this mode)"
    print(
        f"    KG prespawn_count=1 gave {len(prespawned)} kernel(s) {finding['prespawned']}; POST api/kernels {verdict}"
    )
    return finding


def measure_load_kernel_gateway(args: argparse.Namespace, workdir: Path, servers: list[Any], report: Report) -> None:
    print("[3] load on Jupyter Kernel Gateway (unsandboxed python3), fresh kernel per request", flush=True)
    print("    installing jupyter_kernel_gateway into a temporary virtualenv", flush=True)
    venv = install_kernel_gateway(workdir)
    if venv is None:
        report.notes.append("Kernel Gateway could not be installed: its part was skipped")
        return
    gateway = KernelGateway(venv, workdir, prespawn=1)
    servers.append(gateway)
    with gateway:
        finding = check_prespawn(gateway)
        baseline_kernels = len(gateway.kernels())  # the prespawned one, idle throughout
        monitor = Monitor(lambda: {"kernels": len(gateway.kernels(tries=1)) - baseline_kernels})
        figures = run_load("kernelgateway", lambda: KernelGatewayClient(gateway), args, monitor)
    figures["prespawn_check"] = finding
    figures["max_kernels"] = max((s["kernels"] for s in monitor.samples), default=None)
    figures["monitor"] = {"samples": len(monitor.samples), "failed": len(monitor.failures)}
    if monitor.failures:
        report.notes.append(
            f"Kernel Gateway: {len(monitor.failures)} of {len(monitor.failures) + len(monitor.samples)} monitor"
            f" samples (GET api/kernels) failed under load, e.g. {monitor.failures[0][:160]}"
        )
    report.figures.setdefault("load", {})["kernel_gateway"] = figures


# --------------------------------------------------------------------------- load table


def load_table(report: Report, args: argparse.Namespace) -> None:
    load = report.figures.get("load", {})
    ours, peer = load.get("coderemote"), load.get("kernel_gateway")
    if ours is None:
        return

    def cell(side: dict[str, Any] | None, get: Any) -> str:
        if side is None:
            return "skipped"
        value = get(side)
        return "-" if value is None else str(value)

    rows = [
        ("completed within the duration", lambda s: s["completed_in_duration"]),
        ("completed/s (within the duration)", lambda s: f"{s['completed_per_s']:.2f}"),
        ("completed incl. those in flight", lambda s: s["completed"]),
        ("latency p50, ms", lambda s: s["latency_ms"] and f"{s['latency_ms']['p50']:.0f}"),
        ("latency p99, ms", lambda s: s["latency_ms"] and f"{s['latency_ms']['p99']:.0f}"),
        ("latency max, ms", lambda s: s["latency_ms"] and f"{s['latency_ms']['max']:.0f}"),
        ("wrong", lambda s: s["wrong"]),
        ("lost", lambda s: s["lost"]),
        ("503-rejected", lambda s: s["rejected_503"]),
        ("wall time incl. last requests, s", lambda s: s["elapsed_s"]),
    ]
    header = ["", "coderemote (gVisor, pool 4)", "kernel gateway (python3)"]
    lines = [
        f"[2]/[3] {args.clients} clients x {args.duration:.0f} s, fresh kernel per request, print(a * b) checked",
        harness.table(header, [[name, cell(ours, get), cell(peer, get)] for name, get in rows], indent="    "),
    ]
    pool = ours["pool"]
    start = pool["sandbox_start"]
    lines.append(
        f"    coderemote pool: {pool['hits']} hits, {pool['misses']} misses (started on demand);"
        f" idle 0 in {pool['samples_idle_0']}/{pool['samples']} samples, mean idle {pool['mean_idle']},"
        f" at most {pool['max_kernels']} kernels; sandbox starts during load: mean {start['mean_s']} s,"
        f" p50 ~{start['p50_s']} s, n={start['count']}"
    )
    if peer is not None:
        delete = f"{peer['delete_ms']['p50']:.0f}" if peer["delete_ms"] else "-"
        lines.append(
            f"    kernel gateway: at most {peer['max_kernels']} kernels besides the prespawned one;"
            f" DELETE (not in latency) p50 {delete} ms"
        )
    for side, figures in (("coderemote", ours), ("kernel gateway", peer)):
        if figures is None:
            continue
        clean = figures["lost"] == 0 and figures["wrong"] == 0 and figures["clients_not_finished"] == 0
        verdict = (
            "lost=0 and wrong=0"
            if clean
            else (
                f"NOT clean: lost={figures['lost']}, wrong={figures['wrong']},"
                f" clients not finished={figures['clients_not_finished']}"
            )
        )
        lines.append(f"    {side}: {verdict}")
        for example in figures["examples"]:
            lines.append(f"      e.g. {example}")
    if peer is not None and peer["slowest"]:
        lines.append("    kernel gateway, slowest requests: " + "; ".join(peer["slowest"]))
    report.tables.append("\n".join(lines))


# --------------------------------------------------------------------------- what is left behind


def clean_up(servers: list[Any], report: Report) -> None:
    """Stop every server, then check (and clear) sandboxes and Kernel Gateway kernels left behind."""
    for server in servers:
        try:
            server.stop()
        except Exception as e:  # keep stopping the others
            print(f"  warning: could not stop the {server.label} server: {e!r}", file=sys.stderr)
    pids = {server.process.pid for server in servers if server.process is not None}
    left = harness.destroy_leftover_sandboxes(pids)
    report.figures["sandboxes_left"] = left
    if left:
        report.notes.append(f"sandboxes of this run were left running and were destroyed: {left}")
    for server in servers:
        if isinstance(server, KernelGateway):
            pids_left = server.leftover_kernel_pids()
            report.figures["kernel_gateway_kernels_left"] = len(pids_left)
            for pid in pids_left:
                os.kill(pid, signal.SIGKILL)
            if pids_left:
                report.notes.append(f"Kernel Gateway kernels were left running and were killed: pids {pids_left}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller run: {QUICK}")
    parser.add_argument("--warm-runs", type=int, help=f"POST execute with the pool warm (default {FULL['warm_runs']})")
    parser.add_argument("--cold-runs", type=int, help=f"POST execute with no pool (default {FULL['cold_runs']})")
    parser.add_argument("--duration", type=float, help=f"seconds of load per server (default {FULL['duration']:.0f})")
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"concurrent load clients (default {CLIENTS})")
    parser.add_argument(
        "--max-requests", type=int, default=MAX_REQUESTS_PER_CLIENT, help="bound on requests per load client"
    )
    parser.add_argument("--no-kernel-gateway", action="store_true", help="skip part 3 (Kernel Gateway)")
    parser.add_argument("--seed", default="bench-pool", help="seed of the load's random operands")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("warm_runs", "cold_runs", "clients", "max_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in ("warm_runs", "cold_runs", "duration", "clients", "quick")}
    print(f"Code Remote pool and load benchmark: {settings}; {machine_load()}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the servers are stopped on a kill too
    report = Report()
    began = time.monotonic()
    complete = False
    with tempfile.TemporaryDirectory(prefix="coderemote-bench-pool-") as tmp:
        workdir = Path(tmp)
        servers: list[Any] = []
        try:
            measure_fresh(args, workdir, servers, report)
            measure_load_ours(args, workdir, servers, report)
            if args.no_kernel_gateway:
                report.notes.append("Kernel Gateway part skipped (--no-kernel-gateway)")
            else:
                measure_load_kernel_gateway(args, workdir, servers, report)
            complete = True
        except BaseException:
            harness.print_log_tails(servers)
            raise
        finally:
            clean_up(servers, report)
            elapsed = time.monotonic() - began
            load_table(report, args)
            print()
            print("\n\n".join(report.tables))
            for note in report.notes:
                print(f"note: {note}")
            print(harness.finished_line(elapsed))
            summary = {"complete": complete, "settings": settings, "elapsed_s": round(elapsed, 1), **report.figures}
            print(json.dumps({**summary, "notes": report.notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
