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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.servers import CodeRemoteServer  # noqa: E402

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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(runs: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    servers = {
        name: CodeRemoteServer(workdir, "--KernelPool.size=1", *flags, token="t") for name, flags in CONFIGS.items()
    }
    body = json.dumps({"code": "1", "session_id": "bench"}).encode()
    samples: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            for _ in range(20):  # warm: the session's kernel, connections, caches
                timed_execute(server, body)
        for _ in range(runs):  # interleaved, so that load on the machine hits every config alike
            for name, server in servers.items():
                samples[name].append(timed_execute(server, body))
    finally:
        for server in servers.values():
            server.stop()
    base50, base99 = percentile(samples["none"], 0.5), percentile(samples["none"], 0.99)
    print(f"warm POST execute, {runs} runs each (ms)")
    print(f"{'limiter':<12}{'p50':>8}{'p99':>8}{'mean':>8}{'p50 x':>8}{'p99 x':>8}{'+p50':>8}")
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(
            f"{name:<12}{p50:8.2f}{p99:8.2f}{statistics.mean(values):8.2f}"
            f"{p50 / base50:8.2f}{p99 / base99:8.2f}{p50 - base50:8.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
