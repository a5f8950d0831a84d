"""What the benchmarks share: Jupyter server subprocesses, kernels started in
process, timing figures and the printed tables.

Every benchmark is a script (``python tests/benchmarks/bench_X.py``): Python
puts the script's folder first on ``sys.path``, so ``import harness`` finds
this module from any working directory. Importing it puts the repository root
first on ``sys.path`` too, so that the benchmark's later imports (the
project's packages, ``tests.servers``) come from this checkout.

- Servers: ``Server`` is a Jupyter server subprocess on a free loopback port
  with token auth and its log in a file; ``start()`` returns once it answers
  HTTP, ``stop()`` shuts its kernels down and stops it (shutdown request,
  SIGTERM, SIGKILL). ``with server:`` does both, and ``started(...)`` starts
  several and stops them all, also when a later one fails to start (any
  server with ``stop()``, e.g. ``tests.servers.CodeRemoteServer``).
- Figures: ``summarize`` gives the percentiles of a list of durations in ms;
  ``percentile`` interpolates (numpy's default), ``rank_percentile`` picks a
  sample; ``ratio`` and ``ratio_line`` set a figure beside its baseline;
  ``table`` aligns the rows of a figure table.
- What a run leaves behind: ``destroy_leftover_sandboxes`` finds and destroys
  the sandboxes this run started that runsc still lists.
"""

from __future__ import annotations

import datetime
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

    from provisioner import GVisorProvisioner

ROOT = Path(__file__).resolve().parents[2]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))
# The project's packages are imported where they are used, after this (and only
# by the benchmarks that use them).

SANDBOXED = "python3-sandboxed"
PLAIN = "python3"
START_TIMEOUT = 120.0  # s, a kernel to answer kernel_info or a server to answer HTTP
# Benchmarks run far more code per minute than the per-user rate limits allow.
NO_RATE_LIMITS = ["--RateLimiter.executions_per_minute=0", "--RateLimiter.websocket_executions_per_minute=0"]


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0 to 100), linear between the two nearest samples (numpy's default)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def rank_percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) as one of the samples: the sorted values' ``[floor(n * q / 100)]``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered) / 100))]


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Count, p50, p90, p99, min, max and mean of a list of durations, in milliseconds (3 decimals)."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    figures: dict[str, float] = {"n": ms.size}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        figures[name] = percentile(ms, q)
    figures.update(min=float(ms.min()), max=float(ms.max()), mean=float(ms.mean()))
    return {name: round(value, 3) for name, value in figures.items()}


def ratio(subject: float, baseline: float) -> float | None:
    """``subject / baseline``; None when the baseline is not positive."""
    return subject / baseline if baseline > 0 else None


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def ratio_line(subject: str, value: float, baseline: str, target: float | None = None) -> str:
    """'<subject> is <value>x <baseline>', and with a target whether ``value`` is at most ``target``."""
    line = f"{subject} is {value:.2f}x {baseline}"
    if target is not None:
        line += f" (target <= {target:g}x): {verdict(value <= target)}"
    return line


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, align: str = "", indent: str = "") -> str:
    """A figure table: the header, then one line per row; each column as wide as its widest cell, two spaces apart.

    ``align`` has one character per column, ``<`` (left) or ``>`` (right);
    by default the first column is left-aligned and the others right-aligned.
    A cell is printed with ``str``, a float with 2 decimals, None as ``-``.
    """
    cells = [list(header)] + [[cell_text(cell) for cell in row] for row in rows]
    columns = len(header)
    align = align or "<" + ">" * (columns - 1)
    widths = [max(len(line[i]) for line in cells) for i in range(columns)]
    return "\n".join(
        indent + "  ".join(f"{text:{align[i]}{widths[i]}}" for i, text in enumerate(line)).rstrip() for line in cells
    )


def cell_text(cell: Any) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, float):
        return f"{cell:.2f}"
    return str(cell)


def machine_load() -> str:
    return f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def finished_line(elapsed: float) -> str:
    """The wall-clock time of a whole run and the machine's load at its end."""
    return f"\nfinished in {elapsed:.1f} s; {machine_load()}"


# --------------------------------------------------------------------------- waiting


def wait_until(ready: Callable[[], Any], timeout: float, interval: float = 0.2) -> bool:
    """Call ``ready`` every ``interval`` s until it returns a true value (True) or ``timeout`` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(interval)
    return False


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A Jupyter server subprocess on a free port, with token auth, its log in a file.

    ``start()`` returns once ``status_path`` answers 200 (and stops the process
    if it never does); ``stop()`` shuts its kernels down through the API, then
    the server. As a context manager it is started on entry and stopped on exit.
    """

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

    def start(self) -> Server:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            if wait_until(self._answers, START_TIMEOUT):
                return self
            raise RuntimeError(f"{self.label} server did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.label} server exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            return self.api("GET", self.status_path)[0] == 200
        except OSError:
            return False

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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


def coderemote_server(label: str, workdir: Path, *flags: str) -> Server:
    """``jupyter coderemote`` without rate limits; it is up once its health route answers."""
    server = Server(label, ["jupyter", "coderemote", *NO_RATE_LIMITS, *flags], workdir)
    server.status_path = "/api/coderemote/health"  # the service answers only its documented routes
    return server


@contextmanager
def started(*starts: Callable[[], S]) -> Iterator[list[S]]:
    """The servers that ``starts`` return, called one after the other (``Server.start``, or a
    function making a server that starts as it is made); on leaving, each is stopped, the last
    first, also when a later one failed to start."""
    with ExitStack() as stack:
        servers = []
        for start in starts:
            server = start()
            stack.callback(server.stop)
            servers.append(server)
        yield servers


def print_log_tails(servers: Iterable[Server]) -> None:
    """The end of each server's log, on stderr (after an error)."""
    for server in servers:
        print(f"--- end of the {server.label} server's log:\n{server.log_tail()}", file=sys.stderr)


# --------------------------------------------------------------------------- kernels in this process


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
        from jupyter_client.manager import AsyncKernelManager

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


def destroy_leftover_sandboxes(pids: Collection[int], known: Collection[str] = ()) -> list[str]:
    """Sandboxes of this run that runsc still lists (an id in ``known``, or an owner in
    ``pids``, per the kernel's ``owner.json``), destroyed with their kernel folder; their ids."""
    from provisioner import GVisorProvisioner
    from provisioner.reaper import remove_kernel_dir

    provisioner = GVisorProvisioner()
    state_dir = Path(provisioner.state_dir)
    ours: list[str] = []
    for _ in range(10):  # a shutdown can take a moment to reach runsc
        ours = sorted(
            cid for cid in list_sandboxes(provisioner) if cid in known or sandbox_owner(state_dir, cid) in pids
        )
        if not ours:
            break
        time.sleep(0.5)
    for cid in ours:
        subprocess.run(
            [provisioner.runsc_path, "--root", f"{state_dir}/runsc", "delete", "--force", cid],
            capture_output=True,
            check=False,
        )
        remove_kernel_dir(state_dir / "kernels" / cid)  # its connection tmpfs and owner file
    print(f"sandboxes of this run left in `runsc --root {state_dir}/runsc list`: {len(ours)}")
    return ours
