"""Kernelspecs and kernels that run in a sandbox, and nothing else.

A kernelspec is sandboxed when its ``metadata.kernel_provisioner`` names a
provisioner registered in ``jupyter_client.kernel_provisioners`` whose class is
one of ``provisioner.SANDBOX_PROVISIONERS``; a spec without a provisioner gets
jupyter_client's local one, which runs the kernel on the host.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, cast

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_server.auth.decorator import authorized
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.handlers import SessionHandler, SessionRootHandler
from tornado import web
from traitlets import List, Unicode

from provisioner import SANDBOX_PROVISIONERS

SANDBOXED_KERNEL = "python3-sandboxed"


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
        whose spec runs its kernels on the host is refused and logged. Add the
        names of further sandboxed specs you install (e.g. one per runtime).""",
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
    sandboxed kernelspecs, under ids it makes up itself."""

    async def start_kernel(  # type: ignore[override]
        self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any
    ) -> str:
        """Start a sandboxed kernel and return its id.

        A client-chosen id is refused (ids name the sandbox's folders and
        cgroup, and a known id would attach the caller to a running kernel);
        ``path`` is dropped, since a sandbox has its own working directory.
        """
        if kernel_id is not None:
            raise web.HTTPError(400, "kernel ids are chosen by the server: leave out 'id'")
        name = kwargs.get("kernel_name") or self.default_kernel_name
        refusal = cast(SandboxedKernelSpecManager, self.kernel_spec_manager).refusal(name)
        if refusal is not None:
            raise web.HTTPError(*refusal)
        kwargs["kernel_name"] = name
        return await super().start_kernel(**kwargs)


def _refuse_unsandboxed(handler: SessionRootHandler | SessionHandler, new_session: bool) -> None:
    """403/404 before a session starts a kernel that is not sandboxed (Jupyter's
    session handlers would turn the kernel manager's refusal into a 500)."""
    model = handler.get_json_body()
    kernel = model.get("kernel") if isinstance(model, dict) else None
    kernel = kernel if isinstance(kernel, dict) else {}
    if kernel.get("id") is not None or (not new_session and kernel.get("name") is None):
        return  # an existing kernel, or no new one
    name = kernel.get("name") or handler.kernel_manager.default_kernel_name
    refusal = cast(SandboxedKernelSpecManager, handler.kernel_manager.kernel_spec_manager).refusal(name)
    if refusal is not None:
        raise web.HTTPError(*refusal)


class SandboxedSessionRootHandler(SessionRootHandler):  # type: ignore[misc]
    """``api/sessions`` of the service: a new session's kernel must be sandboxed."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create a session (403 or 404 for a kernel that is not sandboxed)."""
        _refuse_unsandboxed(self, new_session=True)
        await super().post()  # type: ignore[misc]


class SandboxedSessionHandler(SessionHandler):  # type: ignore[misc]
    """``api/sessions/{id}`` of the service: a session's new kernel must be sandboxed."""

    @web.authenticated
    @authorized
    async def patch(self, session_id: str) -> None:
        """Update a session (403 or 404 when it asks for a kernel that is not sandboxed)."""
        _refuse_unsandboxed(self, new_session=False)
        await super().patch(session_id)  # type: ignore[misc]
