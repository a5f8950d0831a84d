"""Kernelspecs and kernels that run in a sandbox, and nothing else.

A kernelspec is sandboxed when its ``metadata.kernel_provisioner`` names a
provisioner registered in ``jupyter_client.kernel_provisioners`` whose class is
one of ``provisioner.SANDBOX_PROVISIONERS``; a spec without a provisioner gets
jupyter_client's local one, which runs the kernel on the host.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextvars import ContextVar
from importlib.metadata import entry_points
from typing import Any, Protocol, cast

from jupyter_client.jsonutil import json_default
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_server._tz import utcnow
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.prometheus.metrics import KERNEL_CURRENTLY_RUNNING_TOTAL
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.handlers import SessionHandler, SessionRootHandler
from jupyter_server.utils import ensure_async
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Float, List, Unicode, default

from kernel_gateway_ext.base import write_request_error
from kernel_gateway_ext.ownership import SINGLE_USER, own_kernels, own_sessions, owner_of, owns_kernel
from kernel_gateway_ext.pool import CapacityError
from kernel_gateway_ext.ratelimit import RateLimited
from kernel_images import SANDBOXED_KERNEL
from provisioner import SANDBOX_PROVISIONERS

# Who the kernel being started belongs to, set by the handler that starts it.
KERNEL_OWNER: ContextVar[str] = ContextVar("kernel_owner", default=SINGLE_USER)


class KernelLimits(Protocol):
    """What bounds the service's kernels (the KernelPool, which counts these too)."""

    def check_room(self, owner: str) -> None:
        """Raise CapacityError (``per_user`` set when it is the owner's share) if no kernel may start."""


class NotSandboxedError(NoSuchKernel):
    """A kernelspec exists under that name but its kernels would run on the host."""

    def __str__(self) -> str:
        return f"the kernelspec {self.name!r} does not run its kernels in a sandbox"


def provisioner_class(spec: KernelSpec) -> type | None:
    """The provisioner class a kernelspec's kernels are started with (None when unknown)."""
    provisioner = spec.metadata.get("kernel_provisioner") or {}
    name = provisioner.get("provisioner_name") or KernelProvisionerFactory.instance().default_provisioner_name
    found = entry_points(group=KernelProvisionerFactory.GROUP_NAME, name=name)
    if not found:
        return None
    try:
        cls = next(iter(found)).load()
    except Exception:  # a broken entry point starts nothing
        return None
    return cls if isinstance(cls, type) else None


def is_sandboxed(spec: KernelSpec) -> bool:
    cls = provisioner_class(spec)
    return cls is not None and issubclass(cls, SANDBOX_PROVISIONERS)


class SandboxedKernelSpecManager(KernelSpecManager):  # type: ignore[misc]
    """Lists and finds only the allowed kernelspecs whose kernels run in a sandbox.

    A name on ``sandboxed_kernelspecs`` whose spec is not sandboxed is still
    refused: no setting makes this manager offer a kernel that runs on the host.
    """

    sandboxed_kernelspecs = List(
        Unicode(),
        [SANDBOXED_KERNEL],
        config=True,
        help="""Names of the kernelspecs offered, besides which none is listed or
        started. Each must use a sandboxing provisioner (the gVisor one); a name
        whose spec runs its kernels on the host is refused and logged. Default:
        ``python3-sandboxed``; the service offers CodeRemoteApp.kernel_name alone when this
        is not set, and adds it to the names set here. Add the names of further sandboxed
        specs you install (e.g. one per runtime).""",
    )

    _reported: set[str] = set()  # names whose refusal was logged, once per process

    def find_kernel_specs(self) -> dict[str, str]:
        """Map the offered kernel names to their resource directories."""
        found = super().find_kernel_specs()
        offered = {}
        for name in self.sandboxed_kernelspecs:
            if name not in found:
                continue
            try:
                self.get_kernel_spec(name)
            except NoSuchKernel as e:
                if name not in self._reported:
                    self._reported.add(name)
                    self.log.error("Kernelspec %r is not offered: %s", name, e)
                continue
            offered[name] = found[name]
        return offered

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """The spec of an offered kernel; NoSuchKernel for any other name."""
        if kernel_name not in self.sandboxed_kernelspecs:
            raise NoSuchKernel(kernel_name)
        spec = super().get_kernel_spec(kernel_name)
        if not is_sandboxed(spec):
            raise NotSandboxedError(kernel_name)
        return spec

    def refusal(self, kernel_name: str) -> tuple[int, str] | None:
        """Why ``kernel_name`` cannot be started here, as (HTTP status, message); None if it can."""
        try:
            self.get_kernel_spec(kernel_name)
            return None
        except NoSuchKernel:
            pass
        offered = ", ".join(sorted(self.find_kernel_specs())) or "none"
        try:
            super().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            return 404, f"No kernel named {kernel_name!r}. This service offers sandboxed kernels only: {offered}."
        return 403, (
            f"The kernel {kernel_name!r} would run on the host, outside the sandbox, so this "
            f"service does not start it. Sandboxed kernels: {offered}."
        )


class SandboxedMappingKernelManager(AsyncMappingKernelManager):  # type: ignore[misc]
    """The service's ``api/kernels`` and ``api/sessions`` manager: starts only
    sandboxed kernelspecs, under ids it makes up itself, within the same
    limits as the REST pool (``KernelPool.max_kernels`` and
    ``max_kernels_per_user`` count these kernels too), and stops runs that
    keep a kernel busy too long whoever the client is."""

    limits = AnyTrait(None, allow_none=True, help="The KernelLimits these kernels count against (the pool).")
    max_run_time = Float(
        120.0,
        config=True,
        help="""Longest a kernel of api/kernels may stay busy with one request (a run,
        or a run waiting for input()), s. The kernel is then interrupted, and
        restarted if it is still busy interrupt_grace s later. The page's own run
        timeout is shorter; this one holds for every Jupyter client. Checked every
        run_check_interval s. 0 turns it off. Default: 120 s.""",
    )
    interrupt_grace = Float(
        10.0,
        config=True,
        help="Time a kernel has to go idle after that interrupt before it is restarted, s. Default: 10 s.",
    )
    run_check_interval = Float(
        5.0,
        config=True,
        help="""How often busy kernels are checked against max_run_time, s: a run may go on
        this much longer than it. Default: 5 s.""",
    )

    @default("cull_idle_timeout")
    def _default_cull_idle_timeout(self) -> int:
        return 1800  # each idle sandbox holds memory; a page left open keeps its kernel (cull_connected)

    @default("cull_interval")
    def _default_cull_interval(self) -> int:
        return 60

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owners: dict[str, str] = {}
        self._starting: Counter[str] = Counter()
        self._busy_since: dict[str, float] = {}
        self._interrupted_at: dict[str, float] = {}
        self._run_checker: PeriodicCallback | None = None

    def owner(self, kernel_id: str) -> str | None:
        """Who started the kernel (None when it is not running)."""
        return self._owners.get(kernel_id) if kernel_id in self._kernels else None

    def kernels_by_owner(self) -> Counter[str]:
        """Kernels running or starting, per owner (the limits count them)."""
        self._owners = {k: owner for k, owner in self._owners.items() if k in self._kernels}
        return Counter(self._owners.values()) + self._starting

    async def start_kernel(  # type: ignore[override]
        self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any
    ) -> str:
        """Start a sandboxed kernel and return its id.

        A client-chosen id is refused (ids name the sandbox's folders and
        cgroup, and a known id would attach the caller to a running kernel);
        ``path`` is dropped, since a sandbox has its own working directory.
        Past the limits: 429 for the owner's share, 503 when the service is full;
        503 with the reason when the sandbox does not start.
        """
        if kernel_id is not None:
            raise web.HTTPError(400, "kernel ids are chosen by the server: leave out 'id'")
        name = kwargs.get("kernel_name") or self.default_kernel_name
        refusal = cast(SandboxedKernelSpecManager, self.kernel_spec_manager).refusal(name)
        if refusal is not None:
            raise web.HTTPError(*refusal)
        kwargs["kernel_name"] = name
        owner = KERNEL_OWNER.get()
        if self.limits is not None:
            check_room(self.limits, owner)
        self._starting[owner] += 1
        try:
            started: str = self._adopt_from_pool(name) or await super().start_kernel(**kwargs)
        except web.HTTPError:
            raise
        except Exception as e:  # the sandbox did not start: say why (Jupyter would answer "Unhandled error")
            raise web.HTTPError(503, f"could not start a sandbox: {e}") from e
        finally:
            self._starting[owner] -= 1
        self._owners[started] = owner
        self._watch_runs(started)
        self.add_restart_callback(started, lambda: self._restarting(started), "restart")
        return started

    def _restarting(self, kernel_id: str) -> None:
        """The restarter replaces a dead sandbox: its kernel is "starting" again.

        Jupyter Server leaves the dead kernel's last state ("busy", for one
        killed mid-run), and a websocket that reconnects meanwhile then skips
        its nudge and waits for a kernel_info reply the new kernel never got.
        """
        if kernel_id in self._kernels:
            self._kernels[kernel_id].execution_state = "starting"

    def _adopt_from_pool(self, kernel_name: str) -> str | None:
        """A warm, never-used kernel of the REST pool, taken over as one of ours; None if there is none.

        It was started from the same kernelspec by a manager of the same kind
        (``ServerKernelManager``), and is idle: what ``super().start_kernel``
        does after the launch is done here, so it is watched, culled, counted
        and restarted like a kernel started for the request.
        """
        take_idle = getattr(self.limits, "take_idle", None)
        if take_idle is None or kernel_name != getattr(self.limits, "kernel_name", None):
            return None
        kernel = take_idle()
        if kernel is None:
            return None
        kernel_id: str = kernel.kernel_id
        kernel.parent = self
        self._kernels[kernel_id] = kernel
        self._kernel_connections[kernel_id] = 0
        kernel.execution_state, kernel.reason, kernel.last_activity = "idle", "", utcnow()
        self._kernel_ports[kernel_id] = kernel.ports
        self.start_watching_activity(kernel_id)
        self.add_restart_callback(kernel_id, lambda: self._handle_kernel_died(kernel_id), "dead")
        if kernel.autorestart:
            kernel.start_restarter()
        KERNEL_CURRENTLY_RUNNING_TOTAL.labels(type=kernel.kernel_name).inc()
        if not self._initialized_culler:
            self.initialize_culler()
        self.log.info("Kernel %s: a warm sandbox from the pool", kernel_id)
        return kernel_id

    def _watch_runs(self, kernel_id: str) -> None:
        """Time each busy spell of the kernel (each request) from its first status message."""

        def state_changed(change: dict[str, Any]) -> None:
            self._interrupted_at.pop(kernel_id, None)
            if change["new"] == "busy":
                self._busy_since[kernel_id] = time.monotonic()
            else:
                self._busy_since.pop(kernel_id, None)

        self.get_kernel(kernel_id).observe(state_changed, names="execution_state")
        if self._run_checker is None and self.max_run_time > 0:
            self._run_checker = PeriodicCallback(self._check_runs, 1000 * self.run_check_interval)
            self._run_checker.start()

    async def _check_runs(self) -> None:
        """Interrupt kernels busy for longer than max_run_time; restart those the interrupt did not stop."""
        now = time.monotonic()
        manager: Any = self  # the async methods (typed as jupyter_client's synchronous ones)
        for kernel_id, since in list(self._busy_since.items()):
            if kernel_id not in self._kernels:
                self._busy_since.pop(kernel_id, None)
                continue
            interrupted = self._interrupted_at.get(kernel_id)
            try:
                if interrupted is None and now - since >= self.max_run_time:
                    self.log.warning("Kernel %s busy for over %.0f s: interrupting it", kernel_id, self.max_run_time)
                    self._interrupted_at[kernel_id] = now
                    await manager.interrupt_kernel(kernel_id)
                elif interrupted is not None and now - interrupted >= self.interrupt_grace:
                    self.log.warning("Kernel %s still busy after an interrupt: restarting it", kernel_id)
                    self._busy_since.pop(kernel_id, None)
                    self._interrupted_at.pop(kernel_id, None)
                    await manager.restart_kernel(kernel_id, now=True)
                    self._busy_since.pop(kernel_id, None)  # the old kernel's last word
            except Exception as e:  # a kernel that went away meanwhile
                self.log.warning("Could not stop the run of kernel %s: %s", kernel_id, e)


def check_room(limits: KernelLimits, owner: str) -> None:
    """An HTTP error when ``owner`` may not start another kernel now."""
    try:
        limits.check_room(owner)
    except CapacityError as e:
        raise web.HTTPError(429 if e.per_user else 503, f"{e} (retry in {e.retry_after} s)") from e


class SandboxedKernelRootHandler(MainKernelHandler):  # type: ignore[misc]
    """``api/kernels`` of the service: a new kernel is its caller's, and the
    list holds the caller's own (every kernel for an admin)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's running kernels."""
        kernels = await ensure_async(self.kernel_manager.list_kernels())
        self.finish(json.dumps(own_kernels(self, kernels), default=json_default))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a kernel (404/403 if not sandboxed, 400 for an id, 429/503 past the limits)."""
        model = object_body(self) if self.request.body else {}
        check_new_kernel(self, model.get("name"))
        if not await spend_kernel_start(self):
            return
        KERNEL_OWNER.set(owner_of(self))
        await super().post()  # type: ignore[misc]


async def spend_kernel_start(handler: JupyterHandler) -> bool:
    """Count a kernel start against the caller's rate limit (``RateLimiter``, kind
    ``kernel_start``); False, with the 429 written, when it is over the limit."""
    limiter = handler.settings.get("coderemote_rate_limiter")
    if limiter is None:
        return True
    try:
        await limiter.hit(owner_of(handler), "kernel_start")
    except RateLimited as e:
        write_request_error(handler, e)
        return False
    return True


def object_body(handler: JupyterHandler) -> dict[str, Any]:
    """The request's JSON body, which must be an object (400 otherwise: Jupyter's
    kernel and session handlers would fail on anything else with a 500)."""
    model = handler.get_json_body()
    if not isinstance(model, dict):
        raise web.HTTPError(400, "the request body must be a JSON object")
    return model


def _check_new_kernel(handler: SessionRootHandler | SessionHandler, new_session: bool) -> bool:
    """403/404 before a session starts a kernel that is not sandboxed, 429/503 past
    the limits (Jupyter's session handlers would turn the manager's refusal into a 500).
    True when the request starts a new kernel."""
    kernel = object_body(handler).get("kernel")
    kernel = kernel if isinstance(kernel, dict) else {}
    if kernel.get("id") is not None:
        if isinstance(kernel["id"], str) and owns_kernel(handler, kernel["id"]):
            return False  # an existing kernel of the caller's
        raise web.HTTPError(400, "kernel ids are chosen by the server: name a running kernel or leave out 'id'")
    if not new_session and kernel.get("name") is None:
        return False  # no new kernel
    check_new_kernel(handler, kernel.get("name"))
    return True


def check_new_kernel(handler: JupyterHandler, name: Any) -> None:
    """403/404 when the kernelspec ``name`` (None: the default) is not sandboxed,
    429/503 when the caller may not start another kernel now."""
    manager = handler.kernel_manager
    name = name or manager.default_kernel_name
    refusal = cast(SandboxedKernelSpecManager, manager.kernel_spec_manager).refusal(name)
    if refusal is not None:
        raise web.HTTPError(*refusal)
    limits = getattr(manager, "limits", None)
    if limits is not None:
        check_room(limits, owner_of(handler))


class SandboxedSessionRootHandler(SessionRootHandler):  # type: ignore[misc]
    """``api/sessions`` of the service: a new session's kernel must be sandboxed,
    and the list holds the caller's own (every session for an admin)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's sessions."""
        sessions: list[dict[str, Any]] = await ensure_async(self.session_manager.list_sessions())
        self.finish(json.dumps(own_sessions(self, sessions), default=json_default))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create a session (403 or 404 for a kernel that is not sandboxed, 429/503 past the limits)."""
        KERNEL_OWNER.set(owner_of(self))
        if _check_new_kernel(self, new_session=True) and not await spend_kernel_start(self):
            return
        await super().post()  # type: ignore[misc]


class SandboxedSessionHandler(SessionHandler):  # type: ignore[misc]
    """``api/sessions/{id}`` of the service: a session's new kernel must be sandboxed."""

    @web.authenticated
    @authorized
    async def patch(self, session_id: str) -> None:
        """Update a session (403 or 404 when it asks for a kernel that is not sandboxed, 429/503 past the limits)."""
        KERNEL_OWNER.set(owner_of(self))
        if _check_new_kernel(self, new_session=False) and not await spend_kernel_start(self):
            return
        await super().patch(session_id)  # type: ignore[misc]
