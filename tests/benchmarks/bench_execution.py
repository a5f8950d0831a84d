#!/usr/bin/env python
"""Latency benchmark of Code Remote, each figure beside a baseline measured in the same run.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/bench_execution.py            # full run
    python tests/benchmarks/bench_execution.py --quick    # small counts, to check it works

What is measured, and why (streamed output is the point of the service, see docs/architecture.md):

1. Cold start: ``AsyncKernelManager.start_kernel`` until the reply to a
   kernel_info request sent as soon as the start returns, for the gVisor
   kernel (``python3-sandboxed``, restored from its zygote once the image is
   built) and the plain local ipykernel (``python3``). This is what a
   session-less request pays on top of running the code.
2. ``print(1)`` through jupyter_client on one started kernel: time from
   ``execute`` to the first ``stream`` on iopub, and to the end of the
   execution (``idle`` on iopub and the ``execute_reply`` on shell, as the
   execution service waits for both). Sandboxed against unsandboxed: the cost
   of the sandbox per execution.
3. ``POST api/coderemote/execute`` with a ``session_id`` on a real
   ``jupyter coderemote`` server over one keep-alive HTTP connection, against
   the unsandboxed jupyter_client round trip of 2 (target: at most 3x). Also,
   for information, the same request without a session: a fresh sandbox per
   request.
4. First output over the server's kernel websocket: time from sending an
   ``execute_request`` to the first ``stream`` message of that request. Our
   server (Nagle's algorithm off on the websocket) with the sandboxed and the
   unsandboxed kernel, against a stock ``jupyter server`` (extension off, stock
   websocket class) with the unsandboxed kernel, where a small frame waits for
   the client's delayed ACK (about 40 ms).

Paired measurements alternate between subject and baseline so that load from
other processes hits both alike. Servers run as subprocesses on free ports and
are stopped, and every kernel shut down, even on error; the run ends by
checking that no sandbox it started is left in ``runsc list``. The last line of
output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import harness
import websocket
from harness import PLAIN, SANDBOXED, START_TIMEOUT, LocalKernels, Server

LABELS = {SANDBOXED: "sandboxed", PLAIN: "python3"}  # kernel name -> short name in figure keys
CODE = "print(1)"
EXPECTED_STDOUT = "1\n"
STOCK_WEBSOCKET_CLASS = "jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection"
RUN_TIMEOUT = 30.0  # s, one print(1)
WARMUP_RUNS = 3  # untimed executions on each kernel before timing it
HTTP_TARGET_RATIO = 3.0

FULL_COUNTS = {"starts": 8, "runs": 200, "http_runs": 200, "ws_runs": 100, "fresh_runs": 5}
QUICK_COUNTS = {"starts": 3, "runs": 30, "http_runs": 30, "ws_runs": 20, "fresh_runs": 2}


# --------------------------------------------------------------------------- figures


class Results:
    """Every figure of the run, by key, and the rows of the printed table."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, float]] = {}
        self.rows: list[list[Any]] = []
        self.notes: list[str] = []

    def add(self, key: str, seconds: list[float]) -> dict[str, float]:
        self.figures[key] = harness.summarize(seconds)
        return self.figures[key]

    def ratio(self, subject: str, baseline: str) -> float | None:
        if subject in self.figures and baseline in self.figures:
            value = harness.ratio(self.figures[subject]["p50"], self.figures[baseline]["p50"])
            return None if value is None else round(value, 3)
        return None

    def compare(self, title: str, subject: str, baseline: str, tail: str = "p99") -> None:
        """A table row: the subject's p50 and tail beside the baseline's, and the ratio of the p50s."""
        ratio = self.ratio(subject, baseline)
        if ratio is None:
            return
        s, b = self.figures[subject], self.figures[baseline]
        self.rows.append(
            [title, tail, short(subject), s["p50"], s[tail], short(baseline), b["p50"], b[tail], f"{ratio:.2f}x"]
        )


def short(key: str) -> str:
    """A figure's label in the table: its key without the measurement's name."""
    return key.split(".", 1)[1]


# --------------------------------------------------------------------------- jupyter_client kernels


async def run_print(client: Any) -> tuple[float, float]:
    """Execute CODE; return the seconds to its first stream output and to its end (idle + reply)."""
    started = time.perf_counter()
    msg_id = client.execute(CODE, store_history=False)
    first_output = None
    while True:
        msg = await client.get_iopub_msg(timeout=RUN_TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and first_output is None:
            first_output = time.perf_counter() - started
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = await client.get_shell_msg(timeout=RUN_TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    done = time.perf_counter() - started
    if first_output is None or reply["content"]["status"] != "ok":
        raise RuntimeError(f"print(1) gave no output or failed: {reply['content']}")
    return first_output, done


async def measure_cold_starts(kernels: LocalKernels, n: int, results: Results) -> None:
    print(f"[1] cold start to kernel_info reply, {n} starts of each kernel (alternating)")
    samples: dict[str, list[float]] = {SANDBOXED: [], PLAIN: []}
    for i in range(n):
        for name in (SANDBOXED, PLAIN):
            km, client, elapsed = await kernels.start(name)
            samples[name].append(elapsed)
            await kernels.stop(km, client)
        print(
            f"    start {i + 1}/{n}: sandboxed {samples[SANDBOXED][-1] * 1000:.0f} ms, "
            f"python3 {samples[PLAIN][-1] * 1000:.0f} ms",
            flush=True,
        )
    for name, values in samples.items():
        results.add(f"cold_start.{LABELS[name]}", values)


async def measure_client_round_trips(kernels: LocalKernels, n: int, results: Results) -> None:
    print(f"[2] print(1) through jupyter_client, {n} runs on each started kernel (alternating)", flush=True)
    started = {name: await kernels.start(name) for name in (SANDBOXED, PLAIN)}
    try:
        clients = {name: client for name, (_, client, _) in started.items()}
        for client in clients.values():
            for _ in range(WARMUP_RUNS):
                await run_print(client)
        first: dict[str, list[float]] = {SANDBOXED: [], PLAIN: []}
        done: dict[str, list[float]] = {SANDBOXED: [], PLAIN: []}
        for _ in range(n):
            for name, client in clients.items():
                to_output, to_end = await run_print(client)
                first[name].append(to_output)
                done[name].append(to_end)
        for name in clients:
            results.add(f"client_round_trip.{LABELS[name]}", done[name])
            results.add(f"client_first_output.{LABELS[name]}", first[name])
    finally:
        for km, client, _ in started.values():
            await kernels.stop(km, client)


async def measure_local_kernels(args: argparse.Namespace, results: Results, kernels: LocalKernels) -> None:
    try:
        await measure_cold_starts(kernels, args.starts, results)
        await measure_client_round_trips(kernels, args.runs, results)
    finally:
        await kernels.close()


# --------------------------------------------------------------------------- servers


def stock_server(workdir: Path) -> Server:
    return Server(
        "stock",
        [
            "jupyter",
            "server",
            "--ServerApp.allow_root=True",
            # Our package enables the extension in jupyter_server_config.d; an
            # empty dict would not override that, an explicit False does.
            "--ServerApp.jpserver_extensions=kernel_gateway_ext=False",
            f"--ServerApp.kernel_websocket_connection_class={STOCK_WEBSOCKET_CLASS}",
        ],
        workdir,
    )


def check_stock(server: Server) -> None:
    """The stock server must not have loaded our extension."""
    status, _ = server.api("GET", "/api/coderemote/health")
    if status != 404:
        raise RuntimeError(f"the stock server answers api/coderemote/health with {status}: the extension is loaded")
    if "kernel_gateway_ext" in server.log_tail(200):
        raise RuntimeError(f"the stock server's log mentions kernel_gateway_ext:\n{server.log_tail()}")


# --------------------------------------------------------------------------- POST api/coderemote/execute


def post_execute(conn: http.client.HTTPConnection, server: Server, session_id: str | None) -> float:
    body: dict[str, Any] = {"code": CODE}
    if session_id is not None:
        body["session_id"] = session_id
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    conn.request("POST", "/api/coderemote/execute", payload, server.headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"POST execute answered {response.status}: {data.decode(errors='replace')}")
    result = json.loads(data)
    if result["status"] != "ok" or result["stdout"] != EXPECTED_STDOUT:
        raise RuntimeError(f"POST execute of print(1) gave {result}")
    return elapsed


def measure_http_execute(server: Server, runs: int, fresh_runs: int, results: Results) -> None:
    session_id = f"bench-{uuid.uuid4().hex[:12]}"
    print(
        f"[3] POST api/coderemote/execute, session {session_id}: 1 warm-up + {runs} runs on one connection", flush=True
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=START_TIMEOUT)
    try:
        post_execute(conn, server, session_id)  # starts the session's sandbox
        for _ in range(WARMUP_RUNS - 1):
            post_execute(conn, server, session_id)
        sock = conn.sock
        samples = [post_execute(conn, server, session_id) for _ in range(runs)]
        if conn.sock is not sock:
            results.notes.append("the HTTP connection was not kept alive through the POST execute runs")
        results.add("http_execute_session.sandboxed", samples)
        print(f"    POST execute without a session (fresh sandbox each), {fresh_runs} runs", flush=True)
        results.add("http_execute_fresh.sandboxed", [post_execute(conn, server, None) for _ in range(fresh_runs)])
    finally:
        conn.close()


# --------------------------------------------------------------------------- kernel websocket


class KernelSocket:
    """A kernel started through a server's REST API, driven over its websocket."""

    def __init__(self, server: Server, label: str, kernel_name: str | None) -> None:
        self.label = label
        self.kernel_id = server.start_kernel(kernel_name)
        self.session = uuid.uuid4().hex
        url = f"ws://127.0.0.1:{server.port}/api/kernels/{self.kernel_id}/channels?token={server.token}"
        self.ws = websocket.create_connection(url, timeout=START_TIMEOUT)

    def wait_ready(self) -> None:
        msg_id, message = harness.jupyter_message("kernel_info_request", {}, self.session)
        self.ws.send(message)
        self._receive_until(msg_id, lambda m: m["msg_type"] == "kernel_info_reply")

    def _receive_until(self, msg_id: str, done: Any) -> dict[str, Any]:
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketException as e:
                raise RuntimeError(f"{self.label} websocket (kernel {self.kernel_id}): {e!r}") from e
            if msg.get("parent_header", {}).get("msg_id") == msg_id and done(msg):
                return msg

    def first_output(self) -> float:
        """Seconds from sending print(1) to its first stream message; then wait for idle."""
        content = {
            "code": CODE,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg_id, message = harness.jupyter_message("execute_request", content, self.session)
        started = time.perf_counter()
        self.ws.send(message)
        stream = self._receive_until(msg_id, lambda m: m["msg_type"] == "stream")
        elapsed = time.perf_counter() - started
        # The sandbox may send "1" and "\n" as two stream messages.
        if not (stream["content"]["text"] and EXPECTED_STDOUT.startswith(stream["content"]["text"])):
            raise RuntimeError(f"{self.label}: unexpected output {stream['content']}")
        self._receive_until(msg_id, lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
        return elapsed

    def close(self) -> None:
        self.ws.close()


def measure_websockets(ours: Server, stock: Server, runs: int, results: Results) -> None:
    # The service starts sandboxed kernels only (service mode): ours/python3 is not offered.
    print(f"[4] first output over the kernel websocket, {runs} runs on each of 2 kernels (alternating)", flush=True)
    with ExitStack() as stack:
        sockets = {
            "ws_first_output.ours.sandboxed": KernelSocket(ours, "ours/sandboxed", None),
            "ws_first_output.stock.python3": KernelSocket(stock, "stock/python3", PLAIN),
        }
        for ks in sockets.values():
            stack.callback(ks.close)
        for ks in sockets.values():
            ks.ws.settimeout(START_TIMEOUT)
            ks.wait_ready()
            ks.ws.settimeout(RUN_TIMEOUT)
            for _ in range(WARMUP_RUNS):
                ks.first_output()
        samples: dict[str, list[float]] = {key: [] for key in sockets}
        for _ in range(runs):
            for key, ks in sockets.items():
                samples[key].append(ks.first_output())
        for key, values in samples.items():
            results.add(key, values)


def wait_for_pool(server: Server, idle: int, timeout: float = 120) -> None:
    def refilled() -> bool:
        status, health = server.api("GET", "/api/coderemote/health")
        return status == 200 and health.get("pool", {}).get("idle", 0) >= idle

    if not harness.wait_until(refilled, timeout):
        raise RuntimeError(f"the pool of {server.label} did not refill to {idle}")


def measure_kernel_starts(ours: Server, stock: Server, runs: int, results: Results) -> None:
    """POST api/kernels to its kernel_info_reply over the websocket: ours from the warm pool, stock's local."""
    print(f"[5] POST api/kernels to kernel_info_reply, {runs} runs each (ours: pool refilled before each)", flush=True)
    for key, server in (("kernel_start_ready.ours.sandboxed", ours), ("kernel_start_ready.stock.python3", stock)):
        samples = []
        for _ in range(runs):
            if server is ours:
                wait_for_pool(ours, 1)
            started = time.perf_counter()
            ks = KernelSocket(server, key, None if server is ours else PLAIN)
            ks.ws.settimeout(START_TIMEOUT)
            ks.wait_ready()
            samples.append(time.perf_counter() - started)
            ks.close()
            server.api("DELETE", f"/api/kernels/{ks.kernel_id}")
        results.add(key, samples)


def measure_servers(args: argparse.Namespace, results: Results, workdir: Path, servers: list[Server]) -> None:
    ours, stock = harness.coderemote_server("coderemote", workdir), stock_server(workdir)
    servers += [ours, stock]
    print(
        f"    starting `jupyter coderemote` on port {ours.port} and stock `jupyter server` on port {stock.port}",
        flush=True,
    )
    with harness.started(ours.start, stock.start):
        check_stock(stock)
        measure_http_execute(ours, args.http_runs, args.fresh_runs, results)
        measure_websockets(ours, stock, args.ws_runs, results)
        measure_kernel_starts(ours, stock, args.fresh_runs, results)


# --------------------------------------------------------------------------- report


def build_table(results: Results) -> None:
    add = results.compare
    add("1 cold start -> kernel_info", "cold_start.sandboxed", "cold_start.python3", tail="p90")
    add("2 jupyter_client print(1), to end", "client_round_trip.sandboxed", "client_round_trip.python3")
    add("2 jupyter_client, first output", "client_first_output.sandboxed", "client_first_output.python3")
    add("3 POST execute, session", "http_execute_session.sandboxed", "client_round_trip.python3")
    add("3 (same, vs sandboxed client)", "http_execute_session.sandboxed", "client_round_trip.sandboxed")
    add("3 POST execute, no session (info)", "http_execute_fresh.sandboxed", "cold_start.sandboxed", tail="max")
    add("4 websocket first output", "ws_first_output.ours.sandboxed", "ws_first_output.stock.python3")
    add("5 POST api/kernels -> ready", "kernel_start_ready.ours.sandboxed", "kernel_start_ready.stock.python3")


TABLE_HEADER = ["figure", "tail", "subject", "p50", "tail", "baseline", "p50", "tail", "ratio"]


def print_report(results: Results) -> None:
    build_table(results)
    print("\nTimes in ms; tail is p99 unless named; ratio = subject p50 / baseline p50.")
    print(harness.table(TABLE_HEADER, results.rows, align="<<<>><>>>"))
    http_ratio = results.ratio("http_execute_session.sandboxed", "client_round_trip.python3")
    if http_ratio is not None:
        subject, baseline = "POST execute (session) p50", "the unsandboxed jupyter_client round trip"
        print("\n" + harness.ratio_line(subject, http_ratio, baseline, HTTP_TARGET_RATIO))
    start_ratio = results.ratio("kernel_start_ready.ours.sandboxed", "kernel_start_ready.stock.python3")
    if start_ratio is not None:
        subject, baseline = "POST api/kernels to ready with the pool warm", "a stock server's local kernel"
        print(harness.ratio_line(subject, start_ratio, baseline))
    for note in results.notes:
        print(f"note: {note}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"small counts ({QUICK_COUNTS})")
    parser.add_argument("--starts", type=int, help=f"cold starts of each kernel (default {FULL_COUNTS['starts']})")
    parser.add_argument(
        "--runs", type=int, help=f"jupyter_client print(1) runs per kernel (default {FULL_COUNTS['runs']})"
    )
    parser.add_argument(
        "--http-runs", type=int, help=f"POST execute runs with a session (default {FULL_COUNTS['http_runs']})"
    )
    parser.add_argument("--ws-runs", type=int, help=f"websocket runs per kernel (default {FULL_COUNTS['ws_runs']})")
    parser.add_argument(
        "--fresh-runs", type=int, help=f"POST execute runs without a session (default {FULL_COUNTS['fresh_runs']})"
    )
    args = parser.parse_args(argv)
    defaults = QUICK_COUNTS if args.quick else FULL_COUNTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


RATIOS = {  # name in the JSON line: (subject, baseline)
    "cold_start": ("cold_start.sandboxed", "cold_start.python3"),
    "client_round_trip": ("client_round_trip.sandboxed", "client_round_trip.python3"),
    "http_execute_vs_client_python3": ("http_execute_session.sandboxed", "client_round_trip.python3"),
    "ws_ours_sandboxed_vs_stock": ("ws_first_output.ours.sandboxed", "ws_first_output.stock.python3"),
    "kernel_start_ready_vs_stock": ("kernel_start_ready.ours.sandboxed", "kernel_start_ready.stock.python3"),
}


def summary_line(results: Results, counts: dict[str, int], elapsed: float, complete: bool) -> str:
    return json.dumps(
        {
            "complete": complete,
            "counts": counts,
            "elapsed_s": round(elapsed, 1),
            "figures_ms": results.figures,
            "ratios": {name: results.ratio(*keys) for name, keys in RATIOS.items()},
            "notes": results.notes,
        }
    )


def clean_up(kernels_started_here: set[str], servers: list[Server], results: Results) -> None:
    """Stop the servers, then make sure no sandbox of this run is left."""
    for server in servers:
        server.stop()
    known = kernels_started_here | {f"cr-{kernel_id}" for server in servers for kernel_id in server.kernel_ids}
    pids = {os.getpid()} | {server.process.pid for server in servers if server.process is not None}
    left = harness.destroy_leftover_sandboxes(pids, known)
    if left:
        results.notes.append(f"sandboxes of this run were left running and were destroyed: {left}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = {name: getattr(args, name) for name in FULL_COUNTS}
    print(f"Code Remote latency benchmark: {counts}; {harness.machine_load()}", flush=True)
    results = Results()
    began = time.monotonic()
    complete = False
    with tempfile.TemporaryDirectory(prefix="coderemote-bench-") as tmp:
        workdir = Path(tmp)
        kernels = LocalKernels(workdir)  # shut down by measure_local_kernels itself
        servers: list[Server] = []
        try:
            asyncio.run(measure_local_kernels(args, results, kernels))
            measure_servers(args, results, workdir, servers)
            complete = True
        except BaseException:
            harness.print_log_tails(servers)
            raise
        finally:
            clean_up(kernels.sandbox_ids, servers, results)
            elapsed = time.monotonic() - began
            print_report(results)
            print(harness.finished_line(elapsed))
            print(summary_line(results, counts, elapsed, complete))
    return 0


if __name__ == "__main__":
    sys.exit(main())
