#!/usr/bin/env python
"""Latency benchmark of Code Remote, each figure beside a baseline measured in the same run.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/bench_execution.py            # full run
    python tests/benchmarks/bench_execution.py --quick    # small counts, to check it works

What is measured, and why (DESIGN.md, "Streaming latency is a feature"):

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
import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import websocket
from jupyter_client.manager import AsyncKernelManager

from provisioner import GVisorProvisioner

SANDBOXED = "python3-sandboxed"
PLAIN = "python3"
LABELS = {SANDBOXED: "sandboxed", PLAIN: "python3"}  # kernel name -> short name in figure keys
CODE = "print(1)"
EXPECTED_STDOUT = "1\n"
STOCK_WEBSOCKET_CLASS = "jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection"
START_TIMEOUT = 120.0  # s, a kernel to answer kernel_info or a server to answer HTTP
RUN_TIMEOUT = 30.0  # s, one print(1)
WARMUP_RUNS = 3  # untimed executions on each kernel before timing it
HTTP_TARGET_RATIO = 3.0

FULL_COUNTS = {"starts": 8, "runs": 200, "http_runs": 200, "ws_runs": 100, "fresh_runs": 5}
QUICK_COUNTS = {"starts": 3, "runs": 30, "http_runs": 30, "ws_runs": 20, "fresh_runs": 2}


# --------------------------------------------------------------------------- figures


def summarize(seconds: list[float]) -> dict[str, float]:
    """Percentiles of a list of durations, in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    figures: dict[str, float] = {"n": ms.size}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        figures[name] = float(np.percentile(ms, q))
    figures.update(min=float(ms.min()), max=float(ms.max()), mean=float(ms.mean()))
    return {name: round(value, 3) for name, value in figures.items()}


NO_RATE_LIMITS = ["--RateLimiter.executions_per_minute=0", "--RateLimiter.websocket_executions_per_minute=0"]


class Results:
    """Every figure of the run, by key, and the rows of the printed table."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, float]] = {}
        self.rows: list[str] = []
        self.notes: list[str] = []

    def add(self, key: str, seconds: list[float]) -> dict[str, float]:
        self.figures[key] = summarize(seconds)
        return self.figures[key]

    def ratio(self, subject: str, baseline: str) -> float | None:
        if subject in self.figures and baseline in self.figures and self.figures[baseline]["p50"] > 0:
            return round(self.figures[subject]["p50"] / self.figures[baseline]["p50"], 3)
        return None

    def compare(self, title: str, subject: str, baseline: str, tail: str = "p99") -> None:
        """A table row: the subject's p50 and tail beside the baseline's, and the ratio of the p50s."""
        ratio = self.ratio(subject, baseline)
        if ratio is None:
            return
        s, b = self.figures[subject], self.figures[baseline]
        self.rows.append(
            f"{title:<34} {tail:<4} | {short(subject):<16} {s['p50']:9.2f} {s[tail]:9.2f}"
            f" | {short(baseline):<16} {b['p50']:9.2f} {b[tail]:9.2f} | {ratio:6.2f}x"
        )


def short(key: str) -> str:
    """A figure's label in the table: its key without the measurement's name."""
    return key.split(".", 1)[1]


# --------------------------------------------------------------------------- jupyter_client kernels


class LocalKernels:
    """Kernels started in this process with AsyncKernelManager; all shut down by close()."""

    def __init__(self, connection_dir: Path) -> None:
        self.connection_dir = connection_dir
        self.open: list[tuple[AsyncKernelManager, Any]] = []
        self.sandbox_ids: set[str] = set()

    async def start(self, kernel_name: str) -> tuple[AsyncKernelManager, Any, float]:
        """Start a kernel; return it, a client ready to use, and the time to its first reply.

        Timed: from the start to the reply to a kernel_info request sent as soon
        as the start returns (the request waits in the client's socket until the
        kernel listens). Not timed: ``wait_for_ready``, which also waits for IOPub
        to be quiet for 0.2 s before using the kernel.
        """
        km = AsyncKernelManager(
            kernel_name=kernel_name, connection_file=str(self.connection_dir / f"kernel-{uuid.uuid4().hex}.json")
        )
        self.open.append((km, None))
        started = time.perf_counter()
        # ipykernel warns on stderr that TCP is unencrypted; keep the report readable.
        await km.start_kernel(**({"stderr": subprocess.DEVNULL} if kernel_name == PLAIN else {}))
        if kernel_name == SANDBOXED:
            self.sandbox_ids.add(f"cr-{km.kernel_id}")
        client = km.client()  # after the start: it copies the kernel's connection info
        self.open[-1] = (km, client)
        client.start_channels()
        await client.kernel_info(reply=True, timeout=START_TIMEOUT)
        elapsed = time.perf_counter() - started
        await client.wait_for_ready(timeout=START_TIMEOUT)
        return km, client, elapsed

    async def stop(self, km: AsyncKernelManager, client: Any) -> None:
        self.open = [(k, c) for k, c in self.open if k is not km]
        if client is not None:
            client.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)

    async def close(self) -> None:
        for km, client in list(self.open):
            try:
                await self.stop(km, client)
            except Exception as e:  # keep shutting down the others
                print(f"  warning: could not shut down kernel {km.kernel_id}: {e}", file=sys.stderr)


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A Jupyter server subprocess on a free port, with token auth, its log in a file."""

    status_path = "/api/status"  # answers 200 once the server is up
    request_timeout = START_TIMEOUT

    def __init__(self, label: str, command: list[str], workdir: Path) -> None:
        self.label = label
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.command = command + self.server_flags()
        self.workdir = workdir
        self.log_path = workdir / f"{label}.log"
        self.env: dict[str, str] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.kernel_ids: set[str] = set()

    def server_flags(self) -> list[str]:
        return [
            f"--port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.open_browser=False",
        ]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Content-Type": "application/json"}

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", self.status_path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} server did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request on a new connection; the decoded JSON answer (or its text, or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.request_timeout)
        try:
            conn.request(method, path, None if body is None else json.dumps(body), self.headers)
            response = conn.getresponse()
            data = response.read()
            try:
                return response.status, json.loads(data) if data else None
            except ValueError:  # an HTML error page
                return response.status, data.decode(errors="replace")
        finally:
            conn.close()

    def start_kernel(self, name: str | None = None) -> str:
        status, kernel = self.api("POST", "/api/kernels", {} if name is None else {"name": name})
        if status != 201:
            raise RuntimeError(f"{self.label}: POST api/kernels answered {status}: {kernel}")
        self.kernel_ids.add(kernel["id"])
        return str(kernel["id"])

    def stop(self) -> None:
        """Shut down its kernels through the API, then the server; SIGTERM, then SIGKILL, if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            status, kernels = self.api("GET", "/api/kernels")
            for kernel in kernels if status == 200 else []:
                self.kernel_ids.add(kernel["id"])
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            status, _ = self.api("POST", "/api/shutdown")
            if status == 404:  # the service has no shutdown route: SIGTERM is how it stops
                self.process.send_signal(signal.SIGTERM)
        except (OSError, http.client.HTTPException) as e:
            print(f"  warning: {self.label} server did not take the shutdown request: {e!r}", file=sys.stderr)
        for sig, wait in ((None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if sig is not None:
                print(f"  warning: sending {sig.name} to the {self.label} server", file=sys.stderr)
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def coderemote_server(workdir: Path) -> Server:
    # The benchmark runs far more code per minute than the per-user rate limits allow.
    server = Server("coderemote", ["jupyter", "coderemote", *NO_RATE_LIMITS], workdir)
    server.status_path = "/api/coderemote/health"  # the service answers only its documented routes
    return server


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


def jupyter_message(msg_type: str, content: dict[str, Any], session: str) -> tuple[str, str]:
    """A v5.3 message for the shell channel in the default (JSON) websocket protocol."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "session": session,
        "username": "bench",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "msg_type": msg_type,
        "version": "5.3",
    }
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}
    return msg_id, json.dumps(message)


class KernelSocket:
    """A kernel started through a server's REST API, driven over its websocket."""

    def __init__(self, server: Server, label: str, kernel_name: str | None) -> None:
        self.label = label
        self.kernel_id = server.start_kernel(kernel_name)
        self.session = uuid.uuid4().hex
        url = f"ws://127.0.0.1:{server.port}/api/kernels/{self.kernel_id}/channels?token={server.token}"
        self.ws = websocket.create_connection(url, timeout=START_TIMEOUT)

    def wait_ready(self) -> None:
        msg_id, message = jupyter_message("kernel_info_request", {}, self.session)
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
        msg_id, message = jupyter_message("execute_request", content, self.session)
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, health = server.api("GET", "/api/coderemote/health")
        if status == 200 and health.get("pool", {}).get("idle", 0) >= idle:
            return
        time.sleep(0.2)
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
    ours, stock = coderemote_server(workdir), stock_server(workdir)
    servers += [ours, stock]
    print(
        f"    starting `jupyter coderemote` on port {ours.port} and stock `jupyter server` on port {stock.port}",
        flush=True,
    )
    ours.start()
    stock.start()
    check_stock(stock)
    measure_http_execute(ours, args.http_runs, args.fresh_runs, results)
    measure_websockets(ours, stock, args.ws_runs, results)
    measure_kernel_starts(ours, stock, args.fresh_runs, results)


# --------------------------------------------------------------------------- sandboxes left behind


def sandbox_owner(state_dir: Path, container_id: str) -> int | None:
    try:
        return int(json.loads((state_dir / "kernels" / container_id / "owner.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def list_sandboxes(provisioner: GVisorProvisioner) -> set[str]:
    out = subprocess.run(
        [provisioner.runsc_path, "--root", f"{provisioner.state_dir}/runsc", "list", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line for line in out.split() if line.startswith("cr-")}


def check_sandboxes(known: set[str], pids: set[int], results: Results) -> None:
    """Destroy (and report) any sandbox this run started that is still listed by runsc."""
    provisioner = GVisorProvisioner()
    state_dir = Path(provisioner.state_dir)
    ours: set[str] = set()
    for _ in range(10):  # shutdown can take a moment to reach runsc
        ours = {cid for cid in list_sandboxes(provisioner) if cid in known or sandbox_owner(state_dir, cid) in pids}
        if not ours:
            break
        time.sleep(0.5)
    if not ours:
        print(f"no sandbox of this run left running (runsc --root {state_dir}/runsc list)")
        return
    results.notes.append(f"sandboxes of this run were left running and were destroyed: {sorted(ours)}")
    for cid in sorted(ours):
        subprocess.run(
            [provisioner.runsc_path, "--root", f"{state_dir}/runsc", "delete", "--force", cid],
            capture_output=True,
            check=False,
        )


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


def print_report(results: Results) -> None:
    build_table(results)
    print("\nTimes in ms; tail is p99 unless named; ratio = subject p50 / baseline p50.")
    columns = f"{'p50':>9} {'tail':>9}"
    print(f"{'figure':<34} {'tail':<4} | {'subject':<16} {columns} | {'baseline':<16} {columns} | ratio")
    print("-" * 122)
    print("\n".join(results.rows))
    http_ratio = results.ratio("http_execute_session.sandboxed", "client_round_trip.python3")
    if http_ratio is not None:
        verdict = "met" if http_ratio <= HTTP_TARGET_RATIO else "NOT met"
        print(
            f"\nPOST execute (session) p50 is {http_ratio:.2f}x the unsandboxed jupyter_client round trip "
            f"(target <= {HTTP_TARGET_RATIO:g}x): {verdict}"
        )
    start_ratio = results.ratio("kernel_start_ready.ours.sandboxed", "kernel_start_ready.stock.python3")
    if start_ratio is not None:
        print(f"POST api/kernels to ready with the pool warm is {start_ratio:.2f}x a stock server's local kernel")
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


def machine_load() -> str:
    return f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


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
    check_sandboxes(known, pids, results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = {name: getattr(args, name) for name in FULL_COUNTS}
    print(f"Code Remote latency benchmark: {counts}; {machine_load()}", flush=True)
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
            for server in servers:
                print(f"--- end of the {server.label} server's log:\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            clean_up(kernels.sandbox_ids, servers, results)
            elapsed = time.monotonic() - began
            print_report(results)
            print(f"\nfinished in {elapsed:.1f} s; {machine_load()}")
            print(summary_line(results, counts, elapsed, complete))
    return 0


if __name__ == "__main__":
    sys.exit(main())
