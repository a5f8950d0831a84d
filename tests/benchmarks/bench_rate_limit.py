"""Latency the rate limiter adds to a warm-session ``POST api/coderemote/execute``.

Three real servers in one run: no limiter (executions_per_minute=0), counters
in memory, counters in PostgreSQL (the embedded one). Each does the same warm
executions in turn; p50 and p99 are printed with their ratio to no limiter.

    python tests/benchmarks/bench_rate_limit.py [runs]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

import harness
from harness import rank_percentile

from tests.servers import CodeRemoteServer

CONFIGS = {
    "none": ("--RateLimiter.executions_per_minute=0",),
    "memory": ("--RateLimiter.executions_per_minute=1000000", "--RateLimiter.storage=memory"),
    "postgresql": ("--RateLimiter.executions_per_minute=1000000", "--RateLimiter.storage=database"),
}


def timed_execute(server: CodeRemoteServer, body: bytes) -> float:
    req = urllib.request.Request(
        server.url + "api/coderemote/execute",
        data=body,
        method="POST",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as response:
        response.read()
        assert response.status == 200
    return (time.perf_counter() - started) * 1000


def main(runs: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    starts = [
        partial(CodeRemoteServer, workdir, "--KernelPool.size=1", *flags, token="t") for flags in CONFIGS.values()
    ]
    body = json.dumps({"code": "1", "session_id": "bench"}).encode()
    samples: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with harness.started(*starts) as started:
        servers = dict(zip(CONFIGS, started, strict=True))
        for server in servers.values():
            for _ in range(20):  # warm: the session's kernel, connections, caches
                timed_execute(server, body)
        for _ in range(runs):  # interleaved, so that load on the machine hits every config alike
            for name, server in servers.items():
                samples[name].append(timed_execute(server, body))
    base50, base99 = rank_percentile(samples["none"], 50), rank_percentile(samples["none"], 99)
    rows = []
    for name, values in samples.items():
        p50, p99 = rank_percentile(values, 50), rank_percentile(values, 99)
        rows.append([name, p50, p99, statistics.mean(values), p50 / base50, p99 / base99, p50 - base50])
    print(f"warm POST execute, {runs} runs each (ms)")
    print(harness.table(["limiter", "p50", "p99", "mean", "p50 x", "p99 x", "+p50"], rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
