"""The ``coderemote`` Jupyter Server extension and the ``jupyter coderemote`` command."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.serverapp import ServerApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Enum, List, Unicode
from traitlets.config import Config

from analysis_ext.handlers import default_handlers as analysis_handlers
from analysis_ext.llm import GeminiProvider, OpenAICompatibleProvider
from analysis_ext.service import AnalysisService
from kernel_gateway_ext.execution import ExecutionService
from kernel_gateway_ext.handlers import default_handlers
from kernel_gateway_ext.history import History
from kernel_gateway_ext.history import default_handlers as history_handlers
from kernel_gateway_ext.metrics import Metrics
from kernel_gateway_ext.pool import KernelPool
from kernel_gateway_ext.ratelimit import RateLimiter, async_engine
from kernel_gateway_ext.sandboxed import SANDBOXED_KERNEL, SandboxedKernelSpecManager, SandboxedMappingKernelManager
from kernel_gateway_ext.service_mode import ServiceServerApp
from kernel_images.runtime import Runtime, RuntimeMissingError, build
from provisioner import GVisorProvisioner
from provisioner.runsc import INSTALL_HINT, RunscTooOldError, check_version
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
        AnalysisService,
        GeminiProvider,
        OpenAICompatibleProvider,
        SnippetStore,
        SandboxedKernelSpecManager,
        RateLimiter,
        History,
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

    build_runtime = Bool(True, config=True, help="Build the kernel runtime at start-up if it is missing (first run).")

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

    def _provisioner(self) -> GVisorProvisioner:
        return GVisorProvisioner(config=self.config, parent=None)

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        provisioner = self._provisioner()
        runsc = shutil.which(provisioner.runsc_path)
        if runsc is not None:
            try:
                check_version(runsc)
            except RunscTooOldError as e:
                # Refuse to start rather than serve sandboxes on a gVisor this service does not support.
                self.log.critical("%s", e)
                raise SystemExit(1) from None
        if self.build_runtime:
            try:
                Runtime.load(provisioner.runtime_dir)
            except RuntimeMissingError:
                self.log.warning(
                    "Building the sandboxed kernel's runtime in %s (first run only)", provisioner.runtime_dir
                )
                build(provisioner.runtime_dir)
        self._reap(provisioner)
        # REST executions get kernels of their own manager: they are not in
        # api/kernels, and the server's per-message activity tracking of those
        # kernels would sit on every execution's path. It starts sandboxed
        # kernelspecs only, in lab mode too.
        kernel_manager = AsyncMultiKernelManager(
            parent=self,
            connection_dir=self.serverapp.runtime_dir,
            kernel_spec_manager=SandboxedKernelSpecManager(parent=self),
            # The server's kind of kernel manager (execution state, activity), so that api/kernels
            # can adopt a warm pool kernel as one of its own.
            kernel_manager_class="jupyter_server.services.kernels.kernelmanager.ServerKernelManager",
        )
        metrics = Metrics()
        pool = KernelPool(parent=self, kernel_manager=kernel_manager, metrics=metrics)
        jupyter_kernels = self.serverapp.kernel_manager
        if isinstance(jupyter_kernels, SandboxedMappingKernelManager):  # the service: one set of limits
            jupyter_kernels.limits = pool
            pool.others = jupyter_kernels.kernels_by_owner
        execution = ExecutionService(parent=self, pool=pool, metrics=metrics)
        IOLoop.current().add_callback(execution.start)  # fill the pool once the loop runs
        snippets = SnippetStore(parent=self)
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
        self.settings.update(
            coderemote_rate_limiter=limiter,
            coderemote_history=history,
            coderemote_execution=execution,
            coderemote_analysis=AnalysisService(parent=self),
            coderemote_snippets=snippets,
            coderemote_metrics=metrics,
            coderemote_health=lambda: health(provisioner, pool, [kernel_manager, self.serverapp.kernel_manager]),
        )

    def _reap(self, provisioner: GVisorProvisioner) -> None:
        try:
            reaped = provisioner.reap_stale()
        except Exception as e:  # runsc missing: reported by /health and at kernel start
            self.log.warning("Could not check for stale sandboxes: %s", e)
            return
        if reaped:
            self.log.warning("Removed %d stale sandbox(es) of a previous run", len(reaped))

    def initialize_handlers(self) -> None:
        from kernel_gateway_ext.openapi import default_handlers as openapi_handlers

        self.handlers.extend(
            default_handlers + analysis_handlers + snippet_handlers + history_handlers + openapi_handlers
        )

    async def stop_extension(self) -> None:
        if "coderemote_execution" not in self.settings:
            return  # the extension failed to load: nothing of it was started
        await self.settings["coderemote_execution"].shutdown()
        await self.settings["coderemote_rate_limiter"].stop()
        await self.settings["coderemote_history"].stop()
        if self.settings["coderemote_history"].engine is not None:
            await self.settings["coderemote_history"].engine.dispose()
        await asyncio.to_thread(self.settings["coderemote_snippets"].stop)
        await asyncio.to_thread(self.settings["coderemote_analysis"].shutdown)


def health(provisioner: GVisorProvisioner, pool: KernelPool, kernel_managers: list[Any]) -> dict[str, Any]:
    problems = []
    runsc = shutil.which(provisioner.runsc_path)
    if runsc is None:
        problems.append(f"runsc not found: {INSTALL_HINT}")
    try:
        Runtime.load(provisioner.runtime_dir)
    except RuntimeMissingError as e:
        problems.append(str(e))
    if os.geteuid() != 0:
        problems.append("the server does not run as root; runsc needs root")
    return {
        "status": "ok" if not problems else "unavailable",
        "problems": problems,
        "runsc": runsc,
        "kernels": sum(len(km.list_kernel_ids()) for km in kernel_managers),
        "pool": {"idle": pool.idle, "target": pool.size, "last_error": pool.last_error},
    }


main = launch_new_instance = CodeRemoteApp.launch_instance
