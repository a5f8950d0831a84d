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
from traitlets import Bool
from traitlets.config import Config

from analysis_ext.handlers import default_handlers as analysis_handlers
from analysis_ext.llm import GeminiProvider, OpenAICompatibleProvider
from analysis_ext.service import AnalysisService
from kernel_gateway_ext.execution import ExecutionService
from kernel_gateway_ext.handlers import default_handlers
from kernel_gateway_ext.metrics import Metrics
from kernel_gateway_ext.pool import KernelPool
from kernel_gateway_ext.sandboxed import SANDBOXED_KERNEL, SandboxedKernelSpecManager, SandboxedMappingKernelManager
from kernel_gateway_ext.service_mode import ServiceServerApp
from kernel_images.runtime import Runtime, RuntimeMissingError, build
from provisioner import GVisorProvisioner
from provisioner.runsc import INSTALL_HINT
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
        self.settings.update(
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
        self.handlers.extend(default_handlers + analysis_handlers + snippet_handlers)

    async def stop_extension(self) -> None:
        await self.settings["coderemote_execution"].shutdown()
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
