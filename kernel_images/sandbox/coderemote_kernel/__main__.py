"""Start the restricted kernel: ``python -m coderemote_kernel -f CONNECTION_FILE``.

Settings come from the environment the provisioner builds:
CODEREMOTE_BLOCKED_MODULES (space-separated, replaces the default list) and
CODEREMOTE_OUTPUT_LIMIT (bytes of stdout+stderr per execution).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import Any


def prepare_matplotlib() -> None:
    # The runtime ships a prebuilt font cache; copying it to the writable
    # config dir spares every kernel a font scan at first import.
    config_dir = os.environ.get("MPLCONFIGDIR")
    prebuilt = os.path.join(sys.prefix, "share", "coderemote", "matplotlib")
    if config_dir and os.path.isdir(prebuilt) and not os.path.exists(config_dir):
        shutil.copytree(prebuilt, config_dir)


def preload_modules() -> None:
    """Import the modules the server asks every kernel to have loaded
    (``$CODEREMOTE_PRELOAD``, from GVisorProvisioner.preload_modules or the runtime's
    profile); one that does not import is reported and skipped."""
    import importlib

    for name in os.environ.get("CODEREMOTE_PRELOAD", "").split():
        try:
            importlib.import_module(name)
        except Exception as e:  # not installed in this runtime, or broken: the kernel starts all the same
            print(f"coderemote: could not preload {name}: {type(e).__name__}: {e}", file=sys.stderr)


# Settings every kernel runs with, on top of the kernelspec's command line.
KERNEL_ARGS = [
    # Plain tracebacks: results are read as text by REST clients and terminals.
    "--InteractiveShell.colors=nocolor",
    # History in an in-memory sqlite database: history_request answers
    # (the kernel protocol's conformance suite asks), nothing is written to
    # a file, and nothing outlives the sandbox.
    "--HistoryManager.hist_file=:memory:",
]


def kernel_app(argv: list[str]) -> Any:
    """The kernel's application, guarded, with its settings loaded (command line,
    profile, config files): what it still needs is its connection file. The zygote
    makes it before its checkpoint, so a restored kernel only connects and starts."""
    from coderemote_kernel import guard, output, threads
    from coderemote_kernel.app import SandboxKernelApp

    prepare_matplotlib()
    threads.install()
    output.budget.limit = int(os.environ.get("CODEREMOTE_OUTPUT_LIMIT", output.budget.limit))
    blocked = os.environ.get("CODEREMOTE_BLOCKED_MODULES", guard.DEFAULT_BLOCKED).split()
    trusted = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(__file__))}
    guard.install(blocked, trusted)
    app = SandboxKernelApp.instance(
        kernel_class="coderemote_kernel.kernel.SandboxKernel",
        outstream_class="coderemote_kernel.output.CappedOutStream",
    )
    app.load_settings([*argv, *KERNEL_ARGS])
    return app


def start(app: Any) -> None:
    """Connect (the connection file is there now) and serve until shut down."""
    app.initialize()
    app.start()


def main() -> None:
    # Ignored until ipykernel handles it (only while it runs a request): an interrupt
    # sent while the kernel is still starting has nothing to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload_modules()
    start(kernel_app(sys.argv[1:]))


if __name__ == "__main__":
    main()
