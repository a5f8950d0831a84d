"""What the submission queue costs, against ``POST api/coderemote/execute`` on the
same server in the same run.

1. Latency of ``print(1)``: POST execute; a submission polled until done (every
   20 ms); a submission with ``?wait=true``. p50 and p90 of each, and the ratio
   of each submission's p50 to execute's.
2. Load: 200 submissions from 8 clients (8 users, 25 each, sent as fast as the
   server takes them, then polled): completed per second, the deepest queue seen
   (sampled every 0.2 s), and that every one is done with its own output.

    python tests/benchmarks/bench_submissions.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import harness

from tests.jwt_helpers import TEST_SECRET, claims, hs256_token
from tests.servers import CodeRemoteServer

CLIENTS, PER_CLIENT = 8, 25


def bearer(user: str) -> str:
    return hs256_token(claims(user, exp_in=3600))


def done(server: CodeRemoteServer, token: str, submission_id: str, every: float) -> dict[str, Any]:
    while True:
        status, submission = server.request("GET", f"api/coderemote/submissions/{submission_id}", bearer=token)
        assert status == 200, submission
        if submission["status"] in ("done", "cancelled"):
            return submission
        time.sleep(every)


def latency(server: CodeRemoteServer, runs: int) -> dict[str, list[float]]:
    token = bearer("latency")
    body = {"code": "print(1)"}
    samples: dict[str, list[float]] = {"POST execute": [], "submission, polled": [], "submission, ?wait=true": []}
    for _ in range(runs):
        started = time.perf_counter()
        status, result = server.request("POST", "api/coderemote/execute", body, bearer=token)
        assert status == 200 and result["stdout"] == "1\n", result
        samples["POST execute"].append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        status, queued = server.request("POST", "api/coderemote/submissions", body, bearer=token)
        assert status == 202, queued
        assert done(server, token, queued["id"], 0.02)["result"]["stdout"] == "1\n"
        samples["submission, polled"].append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        status, result = server.request("POST", "api/coderemote/submissions?wait=true", body, bearer=token)
        assert status == 200 and result["stdout"] == "1\n", result
        samples["submission, ?wait=true"].append((time.perf_counter() - started) * 1000)
    return samples


def load(server: CodeRemoteServer) -> None:
    tokens = [bearer(f"client{i}") for i in range(CLIENTS)]
    deepest, stop = [0], threading.Event()

    def watch() -> None:  # the queue's depth: the sum of every client's queued submissions
        while not stop.is_set():
            depth = sum(
                server.request("GET", "api/coderemote/submissions?status=queued&limit=1", bearer=t)[1]["total"]
                for t in tokens
            )
            deepest[0] = max(deepest[0], depth)
            time.sleep(0.2)

    def client(i: int) -> list[tuple[str, str]]:
        sent = []
        for j in range(PER_CLIENT):
            status, queued = server.request(
                "POST", "api/coderemote/submissions", {"code": f"print({i} * 1000 + {j})"}, bearer=tokens[i]
            )
            assert status == 202, queued
            sent.append((queued["id"], f"{i * 1000 + j}\n"))
        return [(done(server, tokens[i], s, 0.2)["result"]["stdout"], want) for s, want in sent]

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [o for got in pool.map(client, range(CLIENTS)) for o in got]
    elapsed = time.perf_counter() - started
    stop.set()
    watcher.join()
    right = sum(got == want for got, want in outcomes)
    total = CLIENTS * PER_CLIENT
    print(f"\nload: {total} submissions from {CLIENTS} clients in {elapsed:.1f} s")
    print(f"  completed: {total / elapsed:.2f} /s; deepest queue seen: {deepest[0]}")
    print(f"  done with their own output: {right} of {total}; lost: {total - len(outcomes)}")


def main(runs: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-submissions-"))

    def start() -> CodeRemoteServer:
        return CodeRemoteServer(
            workdir, f"--JWTIdentityProvider.secret={TEST_SECRET}", "--KernelPool.size=2", token="unused"
        )

    with harness.started(start) as (server,):
        # The queue answers 503 until the server has opened it.
        if not harness.wait_until(
            lambda: server.request("GET", "api/coderemote/submissions", bearer=bearer("x"))[0] != 503, 60
        ):
            raise RuntimeError("the submission queue did not open within 60 s")
        latency(server, 3)  # warm: the pool, connections
        samples = latency(server, runs)
        base = statistics.median(samples["POST execute"])
        rows = []
        for name, values in samples.items():
            p50 = statistics.median(values)
            rows.append([name, f"{p50:.1f}", f"{harness.rank_percentile(values, 90):.1f}", f"{p50 / base:.2f}x"])
        print(f"print(1), {runs} runs each (ms):")
        print(harness.table(["", "p50", "p90", "vs execute"], rows, indent="  "))
        load(server)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
