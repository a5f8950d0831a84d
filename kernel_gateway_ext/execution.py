"""The one execution service: runs code in a sandboxed kernel and reports what happened.

The REST handler, the command line and (through the same kernels) the page
all go through :class:`ExecutionService`. Without a session every execution
gets a fresh sandbox that is destroyed afterwards; with one, the caller's
kernel is kept between executions.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq
import zmq.asyncio
from traitlets import Float, Instance, Integer
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext import files as sandbox_files
from kernel_gateway_ext.base import DEFAULT_MAX_CODE_BYTES, RequestError
from kernel_gateway_ext.metrics import Metrics
from kernel_gateway_ext.pool import KernelPool, Sandbox

OutputCallback = Callable[[dict[str, Any]], Awaitable[None] | None]
SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # whole string (fullmatch): no trailing newline
REQUEST_FIELDS = {"code", "stdin", "timeout_s", "session_id", "files", "return_files"}
EOF_REPLY = "\x04"  # ipykernel raises EOFError in input() on this reply


@dataclass
class ExecutionRequest:
    code: str
    stdin: str | None = None
    timeout_s: float | None = None
    session_id: str | None = None
    files: list[Any] | None = None  # as sent: checked and decoded by the service (see files.py)
    return_files: list[Any] | None = None

    @classmethod
    def from_json(cls, body: Any) -> ExecutionRequest:
        """Validate a decoded JSON body (limits are checked by the service)."""
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        unknown = set(body) - REQUEST_FIELDS
        if unknown:
            raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        code = body.get("code")
        if not isinstance(code, str):
            raise RequestError(400, "'code' is required and must be a string")
        stdin = body.get("stdin")
        if stdin is not None and not isinstance(stdin, str):
            raise RequestError(400, "'stdin' must be a string")
        timeout = body.get("timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
            raise RequestError(400, "'timeout_s' must be a number of seconds")
        session_id = body.get("session_id")
        if session_id is not None and not (isinstance(session_id, str) and SESSION_ID.fullmatch(session_id)):
            raise RequestError(400, "'session_id' must be 1-128 characters of letters, digits, '_', '-' or '.'")
        files, return_files = body.get("files"), body.get("return_files")
        if files is not None and not isinstance(files, list):
            raise RequestError(400, "'files' must be a list of {path, content, encoding}")
        if return_files is not None and not isinstance(return_files, list):
            raise RequestError(400, "'return_files' must be a list of glob patterns")
        return cls(code, stdin, timeout, session_id, files, return_files)


def death_status(provisioner: Any) -> str:
    """Why a sandbox's kernel died: ``memory_limit`` when its provisioner saw the
    out-of-memory killer end it, else ``killed``."""
    return "memory_limit" if getattr(provisioner, "oom_killed", False) else "killed"


# What the sandbox's import guard makes of a KeyboardInterrupt during one of the user's
# imports (kernel_images/sandbox/coderemote_kernel/guard.py, INTERRUPTED_IMPORT).
INTERRUPTED_IMPORT = re.compile(r"interrupted while importing ([A-Za-z_][\w.]{0,200})")


def timeout_hint(error: dict[str, Any] | None, timeout: float, max_timeout: float) -> str | None:
    """Why a run that timed out did: it was still importing a module (whose first
    import is slow: a large library on a cold sandbox); None when it was not."""
    if not error or error.get("ename") != "KeyboardInterrupt":
        return None
    found = INTERRUPTED_IMPORT.fullmatch(str(error.get("evalue", "")))
    if found is None:
        return None
    still = f"still importing {found.group(1)} after {timeout:g} s"
    if timeout < max_timeout:
        return f"{still}; raise timeout_s (up to {max_timeout:g} s) to give its first import time"
    return f"{still}, the longest run allowed (ExecutionService.max_timeout); its first import takes longer"


def run_usage(cpu_before_ns: int | None, after: tuple[int | None, int | None], wall_ms: float) -> dict[str, Any]:
    """What a run cost: the sandbox's CPU time before it, its (CPU time, peak memory) after it,
    and its wall time; a figure the sandbox could not tell is None."""
    cpu_after_ns, peak = after
    known = cpu_after_ns is not None and cpu_before_ns is not None
    cpu_ms = round((cpu_after_ns - cpu_before_ns) / 1e6, 3) if known else None  # type: ignore[operator]
    return {"cpu_ms": cpu_ms, "peak_memory_bytes": peak, "wall_ms": wall_ms}


@dataclass
class ExecutionResult:
    execution_id: str
    status: str = "ok"  # ok | error | timeout | memory_limit | output_limit | killed
    stdout: str = ""
    stderr: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    # What the run cost, from the sandbox's cgroup: {cpu_ms, peak_memory_bytes, wall_ms} (null when unreadable).
    usage: dict[str, float | int | None] = field(default_factory=dict)
    # Why the run ended as it did and what to do, when the service can tell (a timeout during an import).
    hint: str | None = None
    kernel_id: str = ""  # the sandbox's kernel, for the history (not part of the answer)
    # The files return_files asked for (only then): {path, encoding, content, size} or {path, size, skipped}.
    files: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = asdict(self)
        del answer["kernel_id"]
        for optional in ("files", "hint"):
            if answer[optional] is None:
                del answer[optional]
        return answer


# A message counts by its metadata, content and buffers (its header and parent
# are of fixed size), and at least this much: a flood of tiny ones is bounded too.
MESSAGE_COST = 16
# Messages read per socket at one wake-up before the event loop gets a turn.
DRAIN_BATCH = 256
# Once the cap is spent, only messages this small are decoded (status ones,
# to see the kernel go idle after the interrupt).
SMALL_MESSAGE = 4096


class _Collector:
    """Turns the messages of one execution into an ExecutionResult, within
    ``max_bytes`` of messages of every kind (counted as they come off the wire)."""

    def __init__(self, result: ExecutionResult, on_output: OutputCallback | None, max_bytes: int) -> None:
        self.result = result
        self.on_output = on_output
        self.max_bytes = max_bytes
        self.bytes = 0

    @property
    def full(self) -> bool:
        return self.bytes > self.max_bytes

    def take(self, size: int) -> bool:
        """Count a message of ``size`` bytes; False once the cap is spent (the
        sandbox's own, smaller cap failed: nothing more is kept)."""
        self.bytes += max(size, MESSAGE_COST)
        if self.full:
            self.result.status = "output_limit"
        return not self.full

    async def add(self, msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        result = self.result
        if kind == "stream":
            text = content["text"]
            name = content["name"]
            if name == "stdout":
                result.stdout += text
            else:
                result.stderr += text
            last = result.outputs[-1] if result.outputs else None
            if last and last["output_type"] == "stream" and last["name"] == name:
                last["text"] += text
            else:
                result.outputs.append({"output_type": "stream", "name": name, "text": text})
            output: dict[str, Any] = {"output_type": "stream", "name": name, "text": text}
        elif kind in ("display_data", "execute_result"):
            output = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
            if kind == "execute_result":
                output["execution_count"] = content.get("execution_count")
            result.outputs.append(output)
        elif kind == "error":
            output = {"output_type": "error", **{k: content[k] for k in ("ename", "evalue", "traceback")}}
            result.outputs.append(output)
            result.error = {k: content[k] for k in ("ename", "evalue", "traceback")}
        else:
            return
        if self.on_output is not None:
            maybe = self.on_output(output)
            if maybe is not None:
                await maybe


async def _ready_messages(session: Any, socket: zmq.asyncio.Socket) -> list[tuple[dict[str, Any], int]]:
    """Up to DRAIN_BATCH messages already waiting on ``socket``, each with the
    size of its metadata, content and buffers; content is left undecoded (see ``_decode``)."""
    messages: list[tuple[dict[str, Any], int]] = []
    for _ in range(DRAIN_BATCH):
        try:
            frames = await socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        _, frames = session.feed_identities(frames)
        # frames: signature, header, parent header, metadata, content, buffers...
        messages.append((session.deserialize(frames, content=False), sum(len(f) for f in frames[3:])))
    return messages


def _decode(session: Any, msg: dict[str, Any]) -> dict[str, Any]:
    msg["content"] = session.unpack(msg["content"])
    return msg


@dataclass(eq=False)
class _Session:
    sandbox: Sandbox | None = None  # taken from the pool by the session's first execution
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)


class ExecutionService(LoggingConfigurable):
    """Runs code in sandboxed kernels with a wall-time limit."""

    pool = Instance(KernelPool, help="Where sandboxes come from and go back to.")
    metrics = Instance(Metrics, args=())
    default_timeout = Float(
        10.0,
        config=True,
        help="""Wall time per execution when the request names none (timeout_s), s; also the
        page's initial run timeout. Default: 10 s. Keep it at most max_timeout, or such
        requests answer 400.""",
    )
    max_timeout = Float(
        30.0,
        config=True,
        help="Largest wall time a request may ask for, s; more answers 400. Default: 30 s.",
    )
    interrupt_grace = Float(
        2.0,
        config=True,
        help="""Time an interrupted execution (past its timeout or max_output_bytes) has to
        stop before its kernel is killed, s. Default: 2 s.""",
    )
    session_idle_timeout = Float(
        600.0,
        config=True,
        help="""A session unused this long is ended and its sandbox destroyed, s (0: never).
        Default: 600 s (10 minutes).""",
    )
    max_code_bytes = Integer(
        DEFAULT_MAX_CODE_BYTES, help="Largest code accepted, bytes (UTF-8); the app sets CodeRemoteApp.max_code_bytes."
    )
    max_stdin_bytes = Integer(
        1024 * 1024, config=True, help="Largest stdin accepted, bytes (UTF-8); larger answers 413. Default: 1 MiB."
    )
    max_output_bytes = Integer(
        8 * 1024 * 1024,
        config=True,
        help="""Bytes of messages (every kind: streams, displays, results, errors,
        prompts; at least 16 bytes each) the server reads from a kernel per
        execution. The sandbox cuts output at its own smaller limit
        (GVisorProvisioner.output_limit) first, so this is reached only by code
        that writes onto its kernel's channels itself: the execution then ends
        as output_limit with what came before, and its kernel is discarded.
        Default: 8 MiB. Raise it with output_limit.""",
    )

    max_files = Integer(
        20,
        config=True,
        help="""Files a request may send ('files'), and files and patterns it may ask back
        ('return_files'), at most; more answers 400. Default: 20.""",
    )
    max_files_bytes = Integer(
        1024 * 1024,
        config=True,
        help="""Bytes of all the files a request sends, decoded, at most; more answers 413.
        Default: 1 MiB. Raise CodeRemoteApp.max_body_bytes with it.""",
    )
    max_return_bytes = Integer(
        512 * 1024,
        config=True,
        help="""Bytes of files that come back in a result (return_files); a file past it is
        listed as skipped. Default: 512 KiB. Keep it under 3/4 of GVisorProvisioner.output_limit
        (they come out of the sandbox as base64 or text on its output).""",
    )
    files_timeout = Float(
        10.0,
        config=True,
        help="Time writing a run's files into its sandbox, or reading them back, may take, s. Default: 10 s.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._culler: asyncio.Task[Any] | None = None
        self.metrics.observe_sessions(lambda: len(self._sessions))

    @property
    def _km(self) -> Any:
        # jupyter_client types its async managers with their synchronous signatures.
        return self.pool.kernel_manager

    def check(self, request: ExecutionRequest) -> float:
        """Apply the service's limits to a request; return its timeout."""
        if len(request.code.encode("utf-8", "surrogatepass")) > self.max_code_bytes:
            raise RequestError(413, f"'code' is larger than {self.max_code_bytes} bytes")
        if request.stdin is not None and len(request.stdin.encode("utf-8", "surrogatepass")) > self.max_stdin_bytes:
            raise RequestError(413, f"'stdin' is larger than {self.max_stdin_bytes} bytes")
        timeout = self.default_timeout if request.timeout_s is None else float(request.timeout_s)
        if not 0 < timeout <= self.max_timeout:
            raise RequestError(400, f"'timeout_s' must be greater than 0 and at most {self.max_timeout:g}")
        self._files_in(request)
        if request.return_files is not None:
            sandbox_files.return_patterns(request.return_files, self.max_files)
        return timeout

    def _files_in(self, request: ExecutionRequest) -> list[sandbox_files.FileIn]:
        return sandbox_files.files_in(request.files or [], self.max_files, self.max_files_bytes)

    def start(self) -> None:
        """Start the pool and the culling of idle sessions (needs a running loop)."""
        self.pool.start()
        if self.session_idle_timeout > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_idle_sessions())

    async def execute(
        self, request: ExecutionRequest, owner: str = "", on_output: OutputCallback | None = None
    ) -> ExecutionResult:
        timeout = self.check(request)
        if request.session_id is None:
            sandbox = await self.pool.acquire(owner)
            try:
                result, _ = await self._run(sandbox, request, timeout, on_output)
            finally:
                self.pool.release(sandbox)  # destroyed after the answer, off its path
            return self._record(result)
        key = (owner, request.session_id)
        while True:
            session = self._sessions.setdefault(key, _Session())
            async with session.lock:
                if self._sessions.get(key) is not session:
                    continue  # ended (culled, or its sandbox died) while we waited for it
                if session.sandbox is None:
                    try:
                        session.sandbox = await self.pool.acquire(owner)
                    except Exception:
                        del self._sessions[key]
                        raise
                result, state = await self._run(session.sandbox, request, timeout, on_output)
                session.last_used = time.monotonic()
                if state != "ok":  # dead, or deaf to the interrupt: the session starts afresh next time
                    await self.end_session(owner, request.session_id)
                return self._record(result)

    async def end_session(self, owner: str, session_id: str) -> bool:
        session = self._sessions.pop((owner, session_id), None)
        if session is not None and session.sandbox is not None:
            self.pool.release(session.sandbox)
        return session is not None

    async def shutdown(self) -> None:
        """End every session and stop the pool (the server is stopping)."""
        if self._culler is not None:
            self._culler.cancel()
        for key in list(self._sessions):
            await self.end_session(*key)
        await self.pool.stop()

    def _record(self, result: ExecutionResult) -> ExecutionResult:
        self.metrics.executions.labels(status=result.status).inc()
        self.metrics.execution_duration.observe(result.duration_ms / 1000)
        return result

    async def _cull_idle_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.session_idle_timeout / 4))
            cutoff = time.monotonic() - self.session_idle_timeout
            for key, session in list(self._sessions.items()):
                if session.last_used < cutoff and not session.lock.locked() and self._sessions.get(key) is session:
                    self.log.info("Ending session %s of %s: idle for %.0f s", key[1], key[0], self.session_idle_timeout)
                    await self.end_session(*key)

    async def _alive(self, kernel_id: str) -> bool:
        return kernel_id in self._km and bool(await self._km.get_kernel(kernel_id).is_alive())

    async def _run(
        self, sandbox: Sandbox, request: ExecutionRequest, timeout: float, on_output: OutputCallback | None
    ) -> tuple[ExecutionResult, str]:
        """Run one execution (its files written first, and read back after it); also say
        what became of the kernel: ok, stuck or dead."""
        result = ExecutionResult(execution_id=uuid.uuid4().hex, kernel_id=sandbox.kernel_id)
        if request.files:
            written, state = await self._helper(sandbox, sandbox_files.write_code(self._files_in(request)))
            if state != "ok" or written.status != "ok":
                result.status = "error" if state == "ok" else written.status
                result.error = written.error or {"ename": "FilesNotWritten", "evalue": written.status, "traceback": []}
                return result, state
        provisioner = self._provisioner(sandbox.kernel_id)
        if provisioner is not None:
            provisioner.reset_peak()
        cpu_before = provisioner.usage()[0] if provisioner is not None else None
        started = time.monotonic()
        try:
            collector = _Collector(result, on_output, self.max_output_bytes)
            state = await self._exchange(sandbox.kernel_id, sandbox.client, request, timeout, collector)
        finally:
            result.duration_ms = round((time.monotonic() - started) * 1000, 3)
            after = provisioner.usage() if provisioner is not None else (None, None)
            result.usage = run_usage(cpu_before, after, result.duration_ms)
        if result.status == "timeout":
            result.hint = timeout_hint(result.error, timeout, self.max_timeout)
        if request.return_files is not None:
            result.files = []
            if state == "ok":
                result.files, state = await self._read_files(sandbox, request.return_files)
        return result, state

    async def _helper(self, sandbox: Sandbox, code: str) -> tuple[ExecutionResult, str]:
        """Run the service's own code in a sandbox's kernel (to write or read files), its
        output apart from the run's; what became of the kernel as for a run."""
        helper = ExecutionResult(execution_id="", kernel_id=sandbox.kernel_id)
        collector = _Collector(helper, None, self.max_output_bytes)
        state = await self._exchange(
            sandbox.kernel_id, sandbox.client, ExecutionRequest(code=code), self.files_timeout, collector
        )
        return helper, state

    async def _read_files(self, sandbox: Sandbox, patterns: list[str]) -> tuple[list[dict[str, Any]], str]:
        code = sandbox_files.read_code(patterns, self.max_files, self.max_return_bytes)
        found, state = await self._helper(sandbox, code)
        if state != "ok" or found.status != "ok":
            self.log.info("The files of run in %s were not read: %s", sandbox.kernel_id, found.status)
            return [], state
        try:
            return sandbox_files.files_out(found.stdout, self.max_files), state
        except ValueError as e:  # the code undid what reads them (its own sandbox)
            self.log.info("The files of run in %s were not read: %s", sandbox.kernel_id, e)
            return [], state

    def _provisioner(self, kernel_id: str) -> Any:
        """The sandbox's provisioner, when it can say what a run cost (the gVisor one can)."""
        if kernel_id not in self._km:
            return None
        provisioner = self._km.get_kernel(kernel_id).provisioner
        return provisioner if hasattr(provisioner, "usage") and hasattr(provisioner, "reset_peak") else None

    async def _exchange(
        self, kernel_id: str, client: Any, request: ExecutionRequest, timeout: float, collector: _Collector
    ) -> str:
        """Send the execute_request and follow the kernel until it is idle again, within
        ``timeout`` (then interrupted, and given ``interrupt_grace``); say what became of
        the kernel: ok, stuck (deaf to the interrupt, or flooding) or dead."""
        result = collector.result
        msg_id = client.execute(request.code, allow_stdin=True, stop_on_error=True)
        follow = _Follow(client, msg_id, collector, (request.stdin or "").splitlines())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interrupted = flooded = False
        while not follow.done:
            ready = await follow.poll(min(0.25, max(deadline - loop.time(), 0.001)))
            if collector.full and not flooded:
                # More than the sandbox lets out: the code wrote onto its kernel's
                # channels itself. Stop it, and do not reuse that kernel.
                flooded = interrupted = True
                await self._km.interrupt_kernel(kernel_id)
                deadline = min(deadline, loop.time() + self.interrupt_grace)
            if ready and loop.time() < deadline:
                continue
            if not ready and not await self._alive(kernel_id):
                result.status = death_status(self._km.get_kernel(kernel_id).provisioner)
                return "dead"
            if loop.time() >= deadline:
                if interrupted:
                    return "stuck"
                interrupted = True
                result.status = "timeout"
                await self._km.interrupt_kernel(kernel_id)
                deadline = loop.time() + self.interrupt_grace
        if flooded:
            return "stuck"
        if not interrupted:
            assert follow.reply is not None
            _read_reply(follow.reply, result)
        return "ok"


class _Follow:
    """One execution's messages on a kernel's iopub, shell and stdin channels: one
    poller over the three sockets, draining whatever is ready at each wake-up (the
    messages of a short execution arrive in a burst). Outputs go to the collector,
    stdin's prompts get the request's lines (then end of file)."""

    def __init__(self, client: Any, msg_id: str, collector: _Collector, stdin_lines: list[str]) -> None:
        self.client = client
        self.msg_id = msg_id
        self.collector = collector
        self.stdin_lines = stdin_lines
        self.reply: dict[str, Any] | None = None
        self.idle = False
        self.channels = {
            client.iopub_channel.socket: "iopub",
            client.shell_channel.socket: "shell",
            client.stdin_channel.socket: "stdin",
        }
        self.poller = zmq.asyncio.Poller()
        for socket in self.channels:
            self.poller.register(socket, zmq.POLLIN)

    @property
    def done(self) -> bool:
        """The execute_reply came and the kernel went idle."""
        return self.reply is not None and self.idle

    async def poll(self, wait: float) -> bool:
        """Wait up to ``wait`` s for messages and handle those ready; whether any socket was."""
        ready = await self.poller.poll(int(wait * 1000))
        session = self.client.session
        for socket, _ in ready:
            name = self.channels[socket]
            for msg, size in await _ready_messages(session, socket):
                if msg["parent_header"].get("msg_id") != self.msg_id:
                    continue  # stray output of an earlier cell or another client: never decoded
                await self._handle(name, msg, size)
            await asyncio.sleep(0)  # a flooding kernel does not hold the event loop
        return bool(ready)

    async def _handle(self, channel: str, msg: dict[str, Any], size: int) -> None:
        session = self.client.session
        kind = msg["msg_type"]
        if kind == "status":
            if size <= SMALL_MESSAGE:
                self.idle = _decode(session, msg)["content"]["execution_state"] == "idle"
            return
        if not self.collector.take(size):
            return
        if channel == "iopub":
            await self.collector.add(_decode(session, msg))
        elif channel == "shell" and kind == "execute_reply":
            self.reply = _decode(session, msg)
        elif channel == "stdin" and kind == "input_request":
            self.client.input(self.stdin_lines.pop(0) if self.stdin_lines else EOF_REPLY)


def _read_reply(reply: dict[str, Any], result: ExecutionResult) -> None:
    """The run's status from its execute_reply: output_limit (the sandbox cut the
    output), error (with the error when no output carried it), or ok as it is."""
    metadata = reply["metadata"].get("coderemote", {})
    if metadata.get("output_limit") or result.status == "output_limit":
        result.status = "output_limit"
    elif reply["content"]["status"] != "ok":
        result.status = "error"
        if result.error is None:
            content = reply["content"]
            result.error = {k: content.get(k, "") for k in ("ename", "evalue", "traceback")}
