"""The ``coderemote`` Jupyter Server extension and the ``jupyter coderemote`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.serverapp import ServerApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Enum, Integer, List, Unicode
from traitlets.config import Config

from analysis_ext.handlers import default_handlers as analysis_handlers
from analysis_ext.llm import GeminiProvider, OpenAICompatibleProvider
from analysis_ext.service import AnalysisService, code_patterns
from kernel_gateway_ext.base import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CODE_BYTES
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionResult, ExecutionService
from kernel_gateway_ext.handlers import default_handlers
from kernel_gateway_ext.history import History
from kernel_gateway_ext.history import default_handlers as history_handlers
from kernel_gateway_ext.metrics import Metrics
from kernel_gateway_ext.pool import KernelPool
from kernel_gateway_ext.ratelimit import RateLimiter, async_engine
from kernel_gateway_ext.sandboxed import (
    SandboxedKernelSpecManager,
    SandboxedMappingKernelManager,
    provisioner_class,
)
from kernel_gateway_ext.service_mode import ServiceServerApp
from kernel_gateway_ext.submissions import Submissions
from kernel_gateway_ext.submissions import default_handlers as submission_handlers
from kernel_images import SANDBOXED_KERNEL
from provisioner import GVisorProvisioner, KubernetesProvisioner
from provisioner.kubernetes import ClusterConfigError
from provisioner.runsc import RunscTooOldError
from snippets.handlers import default_handlers as snippet_handlers
from snippets.store import SnippetStore

HERE = Path(__file__).parent


class CodeRemoteApp(ExtensionAppJinjaMixin, ExtensionApp):  # type: ignore[misc]
    """Remote Python execution in gVisor sandboxes, on Jupyter Server.

    `jupyter coderemote` runs it as the service, on a ``ServiceServerApp`` that
    shuts every door to the host; loaded into someone's own `jupyter lab` it
    leaves that server as it is. Either way its own kernels are sandboxed.
    """

    name = "coderemote"
    description = __doc__
    extension_url = "/coderemote/"
    load_other_extensions = True
    classes = [
        ExecutionService,
        KernelPool,
        GVisorProvisioner,
        KubernetesProvisioner,
        AnalysisService,
        GeminiProvider,
        OpenAICompatibleProvider,
        SnippetStore,
        SandboxedKernelSpecManager,
        RateLimiter,
        History,
        Submissions,
    ]
    static_paths = [str(HERE / "static")]
    template_paths = [str(HERE / "templates")]

    serverapp_class = ServiceServerApp
    # Embedded defaults of `jupyter coderemote` (config files still override
    # them); a plain `jupyter server` with this extension keeps its own settings.
    serverapp_config = {
        "kernel_websocket_connection_class": "kernel_gateway_ext.websocket.NoDelayWebsocketConnection",
        "open_browser": False,
        "allow_root": True,
        # The editor page's bundle is 4 MB of JavaScript, about 1 MB gzipped.
        "tornado_settings": {"compress_response": True},
    }
    kernel_manager_config = {"default_kernel_name": SANDBOXED_KERNEL}

    kernel_name = Unicode(
        SANDBOXED_KERNEL,
        config=True,
        help="""The kernelspec of the service's kernels: the warm pool's, REST executions',
        and the default of api/kernels and the page. ``python3-sandboxed`` (default) runs
        each kernel in a gVisor sandbox on this machine (GVisorProvisioner: runsc and the
        kernel runtime here); ``python3-kubernetes`` runs each as a gVisor pod
        (KubernetesProvisioner: the server needs only the cluster's API, see
        docs/deploy.md). The spec's provisioner decides what the server checks and
        cleans up at start and what the health endpoint reports.""",
    )
    build_runtime = Bool(
        True,
        config=True,
        help="""Build the kernel runtime (GVisorProvisioner.runtime_dir) at start-up if it is
        missing (first run); kernel pods need none, their image carries it. Default: True.
        False: a missing runtime is reported by the health endpoint and at each kernel start.""",
    )
    max_code_bytes = Integer(
        DEFAULT_MAX_CODE_BYTES,
        config=True,
        help="""Largest code accepted, bytes (UTF-8): of a run (execute, submissions),
        an analysis and a snippet; larger answers 413. Default: 64 KiB. Keep it well
        under max_body_bytes.""",
    )
    max_body_bytes = Integer(
        DEFAULT_MAX_BODY_BYTES,
        config=True,
        help="""Largest request body the REST API reads, bytes; a larger one answers 413
        before it is read. Default: 2 MiB, room for the largest code, stdin and files
        a request may carry (max_code_bytes, ExecutionService.max_stdin_bytes and
        max_files_bytes, base64-encoded). Raise it with those.""",
    )

    # Sign-in on the editor page (JWT mode only; see PageHandler.oidc_settings).
    oidc_issuer = Unicode(
        "",
        config=True,
        help="""OpenID Connect issuer the editor page signs in with (authorization code
        flow with PKCE, in the browser), e.g. ``https://keycloak.example.org/realms/class``.
        Default: empty, meaning ``JWTIdentityProvider.issuer``. Change it only when the
        page's sign-in URL differs from the tokens' ``iss``. The page signs in only in
        JWT mode and with a client id (``oidc_client_id``); otherwise it offers to paste
        a token.""",
    )
    oidc_client_id = Unicode(
        "",
        config=True,
        help="""Client id of the editor page at the OpenID Connect provider, registered
        there as a public client (no secret) with the redirect URI
        ``{origin}{base_url}coderemote/``. Default: empty, meaning
        ``JWTIdentityProvider.audience`` (the client the tokens are issued for).""",
    )
    oidc_scope = Unicode(
        "openid profile email",
        config=True,
        help="""Scopes the page asks for, space-separated. Default: ``openid profile
        email``. Add ``offline_access`` where the provider issues refresh tokens only
        for it (Auth0, Entra); the page renews its tokens with the refresh token.""",
    )
    oidc_token = Enum(
        ["access", "id"],
        "access",
        config=True,
        help="""Which token the page sends as its bearer: the ``access`` token (default;
        a JWT at Keycloak, Auth0 with an API audience, Cognito, Entra) or the ``id``
        token, for providers whose access tokens are not JWTs (Google).""",
    )
    oidc_connect_origins = List(
        Unicode(),
        [],
        config=True,
        help="""Origins besides the issuer's that the page's sign-in calls (discovery,
        token endpoint), allowed in its Content-Security-Policy ``connect-src``, e.g.
        ``https://mypool.auth.eu-west-1.amazoncognito.com`` for Cognito, whose token
        endpoint lies on the user pool's domain. Default: none.""",
    )

    @classmethod
    def make_serverapp(cls, **kwargs: Any) -> ServerApp:
        serverapp = super().make_serverapp(**kwargs)
        serverapp.update_config(Config({"MappingKernelManager": cls.kernel_manager_config}))
        return serverapp

    def _sandbox(self, specs: SandboxedKernelSpecManager) -> Any:
        """A provisioner of ``kernel_name``'s kind, for what the service does outside any one kernel."""
        try:
            spec = specs.get_kernel_spec(self.kernel_name)
        except NoSuchKernel as e:
            self.log.critical("CodeRemoteApp.kernel_name: %s", specs.refusal(self.kernel_name) or e)
            raise SystemExit(1) from None
        cls = provisioner_class(spec)
        assert cls is not None  # an offered spec has a sandbox provisioner
        return cls(config=self.config, parent=None)

    def _offer_kernel(self, specs: SandboxedKernelSpecManager) -> None:
        """Offer ``kernel_name``: alone unless ``sandboxed_kernelspecs`` is set, else among those."""
        if "sandboxed_kernelspecs" not in self.config.SandboxedKernelSpecManager:
            specs.sandboxed_kernelspecs = [self.kernel_name]
        elif self.kernel_name not in specs.sandboxed_kernelspecs:
            specs.sandboxed_kernelspecs = [*specs.sandboxed_kernelspecs, self.kernel_name]

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        specs = SandboxedKernelSpecManager(parent=self)
        jupyter_kernels = self.serverapp.kernel_manager
        for manager in (specs, self.serverapp.kernel_spec_manager):
            if isinstance(manager, SandboxedKernelSpecManager):
                self._offer_kernel(manager)
        sandbox = self._sandbox(specs)
        try:
            sandbox.prepare_host(self.build_runtime)
        except (RunscTooOldError, ClusterConfigError) as e:
            # Refuse to start rather than serve sandboxes on a gVisor this service does not support,
            # or run with no way to start any.
            self.log.critical("%s", e)
            raise SystemExit(1) from None
        self._reap(sandbox)
        if isinstance(jupyter_kernels, SandboxedMappingKernelManager):
            jupyter_kernels.default_kernel_name = self.kernel_name
        # REST executions get kernels of their own manager: they are not in
        # api/kernels, and the server's per-message activity tracking of those
        # kernels would sit on every execution's path. It starts sandboxed
        # kernelspecs only, in lab mode too.
        kernel_manager = AsyncMultiKernelManager(
            parent=self,
            connection_dir=self.serverapp.runtime_dir,
            kernel_spec_manager=specs,
            # The server's kind of kernel manager (execution state, activity), so that api/kernels
            # can adopt a warm pool kernel as one of its own.
            kernel_manager_class="jupyter_server.services.kernels.kernelmanager.ServerKernelManager",
        )
        metrics = Metrics()
        pool = KernelPool(parent=self, kernel_manager=kernel_manager, metrics=metrics, kernel_name=self.kernel_name)
        if isinstance(jupyter_kernels, SandboxedMappingKernelManager):  # the service: one set of limits
            jupyter_kernels.limits = pool
            pool.others = jupyter_kernels.kernels_by_owner
        execution = ExecutionService(parent=self, pool=pool, metrics=metrics, max_code_bytes=self.max_code_bytes)
        IOLoop.current().add_callback(execution.start)  # fill the pool once the loop runs
        snippets = SnippetStore(parent=self, detect_patterns=code_patterns, max_code_bytes=self.max_code_bytes)
        try:
            snippets.start()
        except Exception as e:  # the rest of the service works without its database
            self.log.error("The snippet library is unavailable: %s", e, exc_info=True)
            snippets.start_error = str(e)
        # The rate-limit counters and the history share the snippet database (see RateLimiter.storage).
        engine = async_engine(snippets.engine) if snippets.start_error is None else None
        limiter = RateLimiter(parent=self, engine=engine, shared_database=bool(snippets.database_url))
        self.log.info("Rate-limit counters are kept in %s", limiter.where)
        history = History(parent=self, engine=engine)
        IOLoop.current().add_callback(limiter.start)
        IOLoop.current().add_callback(history.start)
        submissions = Submissions(parent=self, engine=engine, execution=execution, history=history)
        IOLoop.current().add_callback(submissions.start)
        self.settings.update(
            coderemote_kernel_name=self.kernel_name,
            coderemote_max_body_bytes=self.max_body_bytes,
            coderemote_run=recorded_run(execution, history),
            coderemote_rate_limiter=limiter,
            coderemote_history=history,
            coderemote_submissions=submissions,
            coderemote_execution=execution,
            coderemote_analysis=AnalysisService(parent=self, max_code_bytes=self.max_code_bytes),
            coderemote_snippets=snippets,
            coderemote_metrics=metrics,
            coderemote_health=lambda: health(sandbox, pool, [kernel_manager, self.serverapp.kernel_manager], snippets),
        )

    def _reap(self, sandbox: Any) -> None:
        try:
            reaped = sandbox.reap_stale()
        except Exception as e:  # runsc missing, the cluster's API unreachable: reported by /health and at kernel start
            self.log.warning("Could not check for stale sandboxes: %s", e)
            return
        if reaped:
            self.log.warning("Removed %d stale sandbox(es) of a previous run", len(reaped))

    def initialize_handlers(self) -> None:
        from kernel_gateway_ext.openapi import default_handlers as openapi_handlers

        self.handlers.extend(
            default_handlers
            + analysis_handlers
            + snippet_handlers
            + history_handlers
            + submission_handlers
            + openapi_handlers
        )

    async def stop_extension(self) -> None:
        if "coderemote_execution" not in self.settings:
            return  # the extension failed to load: nothing of it was started
        await self.settings["coderemote_submissions"].stop()  # its runs go back to the queue first
        await self.settings["coderemote_execution"].shutdown()
        await self.settings["coderemote_rate_limiter"].stop()
        await self.settings["coderemote_history"].stop()
        if self.settings["coderemote_history"].engine is not None:
            await self.settings["coderemote_history"].engine.dispose()
        await asyncio.to_thread(self.settings["coderemote_snippets"].stop)
        await asyncio.to_thread(self.settings["coderemote_analysis"].shutdown)


def recorded_run(execution: ExecutionService, history: History) -> Any:
    """The runner of the analysis' timed runs: ``run(code, timeout_s, owner=, source=)``
    executes as ``owner`` (their limits apply) and records the run in the history."""

    async def run(code: str, timeout_s: float, *, owner: str, source: str) -> ExecutionResult:
        result = await execution.execute(ExecutionRequest(code=code, timeout_s=timeout_s), owner=owner)
        history.record_run(owner, source, code, result)
        return result

    return run


def health(sandbox: Any, pool: KernelPool, kernel_managers: list[Any], snippets: SnippetStore) -> dict[str, Any]:
    """The health endpoint's answer: the sandbox's kind and problems (``host_health``), kernels, the pool
    and the snippet library (``SnippetStore.health``), which does not count towards ``status``:
    that says whether sandboxes can start."""
    report = sandbox.host_health()
    return {
        "status": "ok" if not report["problems"] else "unavailable",
        **report,
        "kernel_name": pool.kernel_name,
        "kernels": sum(len(km.list_kernel_ids()) for km in kernel_managers),
        "pool": {"idle": pool.idle, "target": pool.size, "last_error": pool.last_error},
        "snippets": snippets.health(),
    }


main = launch_new_instance = CodeRemoteApp.launch_instance
