#!/usr/bin/env python
"""What JWT sign-in adds to a warm-session ``POST api/coderemote/execute``.

Run it as a script from the repository root (pytest does not collect it)::

    python tests/benchmarks/bench_auth.py            # full run
    python tests/benchmarks/bench_auth.py --quick    # small counts, to check it works

Two real ``jupyter coderemote`` servers are started in the same run: one with
Jupyter's own token (single-user), one in JWT mode accepting HS256 tokens
(``secret``) and RS256 tokens whose key comes from a JWKS served on loopback
(``jwks_url``), with the per-user rate limiter on and the owner checks of
every request: all that JWT mode adds. Each caller runs ``print(1)`` in a session of its own
(``session_id``, so the sandbox is started once and reused) over one
keep-alive HTTP connection. Requests alternate between token, HS256 and RS256
so that load from other processes hits all three alike. The figure that
matters is the p50 difference against the token run (target: under 1 ms).

Also measured: ``JWTIdentityProvider.verify`` alone, per call, with the keys
cached (HS256, RS256, ES256). The last line of output is one JSON object with
every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import tempfile
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import harness

from kernel_gateway_ext.identity import JWTIdentityProvider
from tests.jwt_helpers import TEST_SECRET, JWKSServer, claims, ec_key, hs256_token, rsa_key
from tests.servers import CodeRemoteServer

TOKEN = "bench-auth-jupyter-token"
CODE = "print(1)"
WARMUP_RUNS = 5
FULL = {"runs": 300, "verify_calls": 3000}
QUICK = {"runs": 30, "verify_calls": 300}


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": harness.percentile(ms, 50), "p99_ms": harness.percentile(ms, 99), "n": len(ms)}


class Caller:
    """One keep-alive connection to a server, with one Authorization header and one session."""

    def __init__(self, label: str, server: CodeRemoteServer, authorization: str) -> None:
        self.label = label
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        self.headers = {"Authorization": authorization, "Content-Type": "application/json"}
        self.body = json.dumps({"code": CODE, "session_id": f"bench-{uuid.uuid4().hex[:12]}"})
        self.samples: list[float] = []

    def execute(self) -> float:
        started = time.perf_counter()
        self.conn.request("POST", "/api/coderemote/execute", self.body, self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        result = json.loads(payload)
        if response.status != 200 or result.get("stdout") != "1\n":
            raise RuntimeError(f"{self.label}: HTTP {response.status} {payload[:300]!r}")
        return elapsed


def measure_execute(callers: list[Caller], runs: int) -> dict[str, dict[str, float]]:
    for caller in callers:
        for _ in range(WARMUP_RUNS):  # the first one starts the session's sandbox
            caller.execute()
    for _ in range(runs):
        for caller in callers:
            caller.samples.append(caller.execute())
    return {caller.label: summarize(caller.samples) for caller in callers}


async def measure_verify(idp: JWKSServer, calls: int) -> dict[str, float]:
    """Microseconds per ``verify`` call with cached keys."""
    rsa, ec = rsa_key("bench-rsa"), ec_key("bench-ec")
    idp.set_keys([rsa, ec])
    provider = JWTIdentityProvider(secret=TEST_SECRET, jwks_url=idp.jwks_url)
    tokens = {
        "HS256": hs256_token(claims("alice", exp_in=3600)),
        "RS256": rsa.sign(claims("alice", exp_in=3600)),
        "ES256": ec.sign(claims("alice", exp_in=3600)),
    }
    figures = {}
    for alg, token in tokens.items():
        await provider.verify(token)  # fetches the keys once
        started = time.perf_counter()
        for _ in range(calls):
            await provider.verify(token)
        figures[f"verify_{alg}_us"] = (time.perf_counter() - started) / calls * 1e6
    return figures


def start_servers(workdir: Path, idp: JWKSServer) -> AbstractContextManager[list[CodeRemoteServer]]:
    """The token server and the JWT server, stopped on leaving the context."""
    common = ("--KernelPool.size=0", "--ExecutionService.session_idle_timeout=0")
    return harness.started(
        lambda: CodeRemoteServer(workdir, *common, token=TOKEN),
        lambda: CodeRemoteServer(
            workdir,
            *common,
            f"--JWTIdentityProvider.secret={TEST_SECRET}",
            f"--JWTIdentityProvider.jwks_url={idp.jwks_url}",
            # Rate limiting on, where the default keeps it (memory, with the embedded
            # PostgreSQL), with a limit no run reaches; bench_rate_limit.py measures
            # the counters in PostgreSQL.
            "--RateLimiter.executions_per_minute=1000000",
            token=TOKEN,
        ),
    )


def report(execute: dict[str, dict[str, float]], verify: dict[str, float]) -> dict[str, Any]:
    base = execute["token"]
    figures: dict[str, Any] = {"execute": execute, "verify": verify}
    rows = []
    for label, row in execute.items():
        d50, d99 = row["p50_ms"] - base["p50_ms"], row["p99_ms"] - base["p99_ms"]
        if label != "token":
            figures[f"added_p50_ms_{label}"] = d50
            figures[f"added_p99_ms_{label}"] = d99
        rows.append([label, row["p50_ms"], row["p99_ms"], f"{d50:+.2f}", f"{d99:+.2f}", row["n"]])
    print("\nwarm-session POST api/coderemote/execute (print(1)), ms:")
    print(harness.table(["auth", "p50", "p99", "+p50", "+p99", "n"], rows, indent="  "))
    print("\nJWTIdentityProvider.verify alone, keys cached, per call:")
    print(harness.table(["alg", "µs"], [[name.split("_")[1], f"{us:.1f}"] for name, us in verify.items()], indent="  "))
    worst = max(figures["added_p50_ms_HS256"], figures["added_p50_ms_RS256"])
    figures["target_met"] = worst < 1.0
    print(f"\nadded at p50: {worst:+.2f} ms (target < 1 ms: {harness.verdict(worst < 1.0)})")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to check that the benchmark works")
    parser.add_argument("--runs", type=int, help="timed executions per caller")
    args = parser.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    if args.runs:
        counts["runs"] = args.runs
    with JWKSServer() as idp, tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        verify = asyncio.run(measure_verify(idp, counts["verify_calls"]))
        rsa = rsa_key("bench-server-rsa")
        idp.set_keys([rsa])
        print("starting two servers (Jupyter token; JWT HS256 + RS256 via JWKS)...", flush=True)
        with start_servers(Path(tmp), idp) as (plain, jwt_server):
            callers = [
                Caller("token", plain, f"token {TOKEN}"),
                Caller("HS256", jwt_server, f"Bearer {hs256_token(claims('bench-hs', exp_in=3600))}"),
                Caller("RS256", jwt_server, f"Bearer {rsa.sign(claims('bench-rs', exp_in=3600))}"),
            ]
            print(f"{WARMUP_RUNS} warm-up + {counts['runs']} timed runs per caller, interleaved", flush=True)
            execute = measure_execute(callers, counts["runs"])
    figures = report(execute, verify)
    print(json.dumps({"bench": "auth", "counts": counts, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
