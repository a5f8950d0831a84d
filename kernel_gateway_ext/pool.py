"""Sandboxed kernels on tap: a warm pool, limits on how many run, and their end.

Starting a gVisor kernel takes about a second or two; a request should not
wait for it. The pool keeps ``size`` started, connected, never-used kernels.
A kernel taken from it serves one caller (one execution, or one session) and
is destroyed afterwards: kernels are never reused across requests or users.
When the pool is empty a kernel is started on demand. Past ``max_kernels``
running sandboxes, or ``max_kernels_per_user`` for one owner, callers wait
up to ``queue_timeout`` and are then refused with :class:`CapacityError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty
from typing import Any

from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from traitlets import Float, Instance, Integer, Unicode
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext.base import RequestError
from kernel_gateway_ext.metrics import Metrics
from kernel_images import SANDBOXED_KERNEL

IOPUB_CHECK = 0.2  # s after a kernel_info reply for its status on IOPub, as jupyter_client waits
SOCKET_POLL_S = 0.005


async def connect_when_ready(kernel: Any, client: Any, timeout: float) -> None:
    """Start ``client``'s channels and return once the kernel answers on all of them.

    A kernel on ``ipc://`` sockets (the local sandbox) is connected to once its
    socket files exist, so every channel connects at once: a channel connected
    before then retries only every 100 ms, and a kernel's ROUTER drops what it
    sends to a peer not yet connected (an ``input_request`` on stdin, which no
    request can check). It is then ready at the reply to a kernel_info request
    and that request's idle status on IOPub, without the 0.2 s of IOPub silence
    ``wait_for_ready`` waits for besides. Other transports: ``wait_for_ready``.
    Raises RuntimeError when the kernel dies or the time is up, as it does.
    """
    if kernel.transport != "ipc":
        client.start_channels()
        await client.wait_for_ready(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    ports = (kernel.shell_port, kernel.iopub_port, kernel.stdin_port, kernel.control_port)
    while not all(os.path.exists(f"{kernel.ip}-{port}") for port in ports):  # noqa: ASYNC240 (a stat of local files)
        if not await kernel.is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't listen in {timeout:.0f} seconds")
        await asyncio.sleep(SOCKET_POLL_S)
    client.start_channels()
    while True:
        msg_id = client.kernel_info()
        if await _answered(client, msg_id, min(deadline, time.monotonic() + 1.0)):
            return
        if not await client.is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


async def _answered(client: Any, msg_id: str, until: float) -> bool:
    """Whether the request ``msg_id`` had its reply before ``until`` and its idle status right after."""
    if await _message_for(client.get_shell_msg, msg_id, until) is None:
        return False
    idle = await _message_for(client.get_iopub_msg, msg_id, time.monotonic() + IOPUB_CHECK, "idle")
    return idle is not None


async def _message_for(
    get: Callable[..., Any], msg_id: str, until: float, state: str | None = None
) -> dict[str, Any] | None:
    """The next message from ``get`` answering ``msg_id`` (a status of ``state``, if given); None past ``until``."""
    while True:
        try:
            msg: dict[str, Any] = await get(timeout=max(0.0, until - time.monotonic()))
        except Empty:
            return None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # an earlier attempt's
        if state is None or msg["content"].get("execution_state") == state:
            return msg


class SandboxUnavailableError(RequestError):
    """No sandbox could be started (runsc missing, runtime missing, start failed): 503,
    retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(503, message, {"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class CapacityError(RequestError):
    """Too many sandboxes are running (``per_user``: the caller's own): 503, retry after
    ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int, per_user: bool = False) -> None:
        super().__init__(503, message, {"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        self.per_user = per_user


@dataclass(eq=False)
class Sandbox:
    """A started kernel with a connected client, handed to one owner."""

    kernel_id: str
    client: Any
    owner: str | None = None


class KernelPool(LoggingConfigurable):
    """Warm, never-used sandboxed kernels, and the limits on running ones."""

    kernel_manager = Instance(AsyncMultiKernelManager, help="Starts and stops the kernels.")
    metrics = Instance(Metrics, args=())
    kernel_name = Unicode(SANDBOXED_KERNEL, help="Kernelspec of the sandboxes (the app sets its kernel_name).")
    size = Integer(
        2,
        config=True,
        help="""Started, never-used kernels kept ready (0: start each on demand), within
        max_kernels. Default: 2. Raise it where requests come in bursts.""",
    )
    max_kernels = Integer(
        16,
        config=True,
        help="""Sandboxes running or starting at once, idle pool ones and those of api/kernels
        included; past it callers wait up to queue_timeout. Default: 16. Each may use
        SandboxLimits.memory_limit: size it to the host.""",
    )
    max_kernels_per_user = Integer(
        4,
        config=True,
        help="Sandboxes one owner may hold at once (sessions and api/kernels included). Default: 4.",
    )
    queue_timeout = Float(
        10.0,
        config=True,
        help="""How long a caller waits for capacity before a 503, s; also that 503's
        Retry-After. Default: 10 s.""",
    )
    unavailable_retry_after = Integer(
        5,
        config=True,
        help="""Retry-After of the 503 answered when no sandbox could be started (runsc or
        the runtime missing, a start that failed), s. Default: 5, about one start.""",
    )
    start_timeout = Float(
        60.0,
        config=True,
        help="""Time a sandbox has to start and answer kernel_info, s; past it the start
        fails (a caller waiting for it gets the 503 of unavailable_retry_after). Default: 60 s.""",
    )
    check_interval = Float(
        2.0,
        config=True,
        help="How often idle pool kernels are checked for life (a dead one is replaced), s. Default: 2 s.",
    )
    max_backoff = Float(
        30.0,
        config=True,
        help="""Longest pause between failed refills of the pool, s (the pause doubles from
        0.5 s at each failure). Default: 30 s.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle: deque[Sandbox] = deque()
        self._held: dict[str, Sandbox] = {}  # handed out, or being destroyed
        self._starting = 0
        self._starting_for: Counter[str] = Counter()  # on-demand starts per owner
        self._changed = asyncio.Condition()
        self._refill_needed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self.last_error: str | None = None
        # Kernels of other managers that count against the limits, per owner (see CodeRemoteApp).
        self.others: Callable[[], Counter[str]] = Counter
        self._stopping = False
        self._stopped = asyncio.Event()
        self.metrics.observe_pool(self)

    # -- public ---------------------------------------------------------------

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def starting(self) -> int:
        return self._starting

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def running(self) -> int:
        """Sandboxes running or starting: the pool's and those of ``others`` (api/kernels, sessions)."""
        return len(self._idle) + len(self._held) + self._starting + sum(self.others().values())

    def held_by(self, owner: str) -> int:
        mine = sum(1 for s in self._held.values() if s.owner == owner) + self._starting_for[owner]
        return mine + self.others()[owner]

    def check_room(self, owner: str) -> None:
        """Raise CapacityError unless ``owner`` may start one more sandbox now (for other managers)."""
        if self.held_by(owner) >= self.max_kernels_per_user:
            self.metrics.rejected.labels(reason="per_user").inc()
            raise CapacityError(self._busy_message(owner), retry_after=max(1, round(self.queue_timeout)), per_user=True)
        if self.running >= self.max_kernels:
            self.metrics.rejected.labels(reason="capacity").inc()
            raise CapacityError(self._busy_message(owner), retry_after=max(1, round(self.queue_timeout)))

    def start(self) -> None:
        """Start filling the pool and watching its idle kernels (needs a running loop)."""
        if self.size > 0 and not self._loops:
            self._loops = [asyncio.ensure_future(self._refill_loop()), asyncio.ensure_future(self._check_loop())]
            self._refill_needed.set()

    async def acquire(self, owner: str) -> Sandbox:
        """A fresh sandbox for ``owner``: from the pool, else started now; waits for capacity."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_timeout
        async with self._changed:
            while True:
                if self.held_by(owner) < self.max_kernels_per_user:
                    if self._idle:
                        sandbox = self._idle.popleft()
                        sandbox.owner = owner
                        self._held[sandbox.kernel_id] = sandbox
                        self.metrics.pool_hits.inc()
                        self._refill_needed.set()
                        return sandbox
                    if self.running < self.max_kernels:
                        self._starting += 1
                        self._starting_for[owner] += 1
                        break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    per_user = self.held_by(owner) >= self.max_kernels_per_user
                    self.metrics.rejected.labels(reason="per_user" if per_user else "capacity").inc()
                    retry_after = max(1, round(self.queue_timeout))
                    raise CapacityError(self._busy_message(owner), retry_after=retry_after, per_user=per_user)
                with contextlib.suppress(TimeoutError):  # others' kernels end unannounced: look again each second
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        self.metrics.pool_misses.inc()
        try:
            sandbox = await self._start_sandbox()
            sandbox.owner = owner
            self._held[sandbox.kernel_id] = sandbox
            return sandbox
        finally:
            self._starting_for[owner] -= 1
            await self._done_starting()

    def take_idle(self) -> Any:
        """A never-used kernel's manager for another manager to adopt (``api/kernels``), or None; the pool refills.

        The caller takes over the kernel: it leaves this pool's manager (``kernel_manager.remove_kernel``)
        and its readiness client is stopped, so the pool neither counts nor destroys it again.
        """
        if not self._idle or self._stopping:
            return None
        sandbox = self._idle.popleft()
        sandbox.client.stop_channels()
        kernel = self.kernel_manager.remove_kernel(sandbox.kernel_id)
        self.metrics.pool_hits.inc()
        self._refill_needed.set()
        return kernel

    def release(self, sandbox: Sandbox) -> None:
        """Destroy a sandbox in the background; its capacity returns once it is gone."""
        self._background(self._destroy(sandbox))

    async def stop(self) -> None:
        """Stop refilling and destroy every kernel of the pool, idle or held."""
        # The refill loop finishes the start it is in (cancelling it half-way
        # could leave a sandbox that nobody knows about); the checker just stops.
        self._stopping = True
        self._stopped.set()
        self._refill_needed.set()
        refill, check = self._loops or (None, None)
        if check is not None:
            check.cancel()
        if refill is not None:
            await asyncio.gather(refill, return_exceptions=True)
        self._loops = []
        while self._idle:
            self.release(self._idle.popleft())
        for sandbox in list(self._held.values()):
            self.release(sandbox)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- starting and stopping kernels ----------------------------------------

    def _busy_message(self, owner: str) -> str:
        if self.held_by(owner) >= self.max_kernels_per_user:
            return f"you already hold {self.max_kernels_per_user} sandboxes; end a session or retry later"
        return f"all {self.max_kernels} sandboxes are busy; retry later"

    async def _start_sandbox(self) -> Sandbox:
        started = time.monotonic()
        km: Any = self.kernel_manager
        try:
            kernel_id: str = await km.start_kernel(kernel_name=self.kernel_name)
        except Exception as e:
            self.last_error = str(e)
            self.log.error("Could not start a sandbox: %s", e)
            raise SandboxUnavailableError(f"could not start a sandbox: {e}", self.unavailable_retry_after) from e
        kernel = km.get_kernel(kernel_id)
        kernel.stop_restarter()  # deaths are reported to callers, not papered over
        client = kernel.client()
        try:
            await connect_when_ready(kernel, client, self.start_timeout)
        except RuntimeError as e:  # died or never answered while starting
            tail = getattr(kernel.provisioner, "log_tail", lambda: "")()
            client.stop_channels()
            await km.shutdown_kernel(kernel_id, now=True)
            self.last_error = f"the sandbox did not become ready: {e}" + (f"; its last words: {tail}" if tail else "")
            raise SandboxUnavailableError(self.last_error, self.unavailable_retry_after) from e
        self.last_error = None
        self.metrics.sandbox_start.observe(time.monotonic() - started)
        return Sandbox(kernel_id, client)

    async def _destroy(self, sandbox: Sandbox) -> None:
        try:
            sandbox.client.stop_channels()
            km: Any = self.kernel_manager
            if sandbox.kernel_id in km:
                await km.shutdown_kernel(sandbox.kernel_id, now=True)
        except Exception as e:
            self.log.warning("Could not shut down kernel %s cleanly: %s", sandbox.kernel_id, e)
        finally:
            self._held.pop(sandbox.kernel_id, None)
            async with self._changed:
                self._changed.notify_all()
            self._refill_needed.set()

    async def _done_starting(self) -> None:
        async with self._changed:
            self._starting -= 1
            self._changed.notify_all()

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the pool's own loops ---------------------------------------------------

    async def _refill_loop(self) -> None:
        backoff = 0.0
        while not self._stopping:
            await self._refill_needed.wait()
            self._refill_needed.clear()
            while (
                not self._stopping and len(self._idle) + self._starting < self.size and self.running < self.max_kernels
            ):
                self._starting += 1
                try:
                    sandbox = await self._start_sandbox()
                except SandboxUnavailableError:
                    backoff = min(self.max_backoff, max(0.5, backoff * 2))
                    self.log.warning("Pool refill failed; next try in %.1f s", backoff)
                    await self._done_starting()
                    with contextlib.suppress(TimeoutError):  # a stop cuts the pause short
                        await asyncio.wait_for(self._stopped.wait(), backoff)
                    continue
                backoff = 0.0
                async with self._changed:
                    self._starting -= 1
                    self._idle.append(sandbox)
                    self._changed.notify_all()

    async def _check_loop(self) -> None:
        """Replace idle kernels that died while waiting (killed, crashed)."""
        km: Any = self.kernel_manager
        while True:
            await asyncio.sleep(self.check_interval)
            for sandbox in list(self._idle):
                if sandbox.kernel_id in km and await km.get_kernel(sandbox.kernel_id).is_alive():
                    continue
                self.log.warning("Idle pool kernel %s died; replacing it", sandbox.kernel_id)
                with contextlib.suppress(ValueError):
                    self._idle.remove(sandbox)
                    self._held[sandbox.kernel_id] = sandbox
                    self.release(sandbox)
