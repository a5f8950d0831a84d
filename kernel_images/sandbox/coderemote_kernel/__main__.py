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


def prepare_matplotlib() -> None:
    # The runtime ships a prebuilt font cache; copying it to the writable
    # config dir spares every kernel a font scan at first import.
    config_dir = os.environ.get("MPLCONFIGDIR")
    prebuilt = os.path.join(sys.prefix, "share", "coderemote", "matplotlib")
    if config_dir and os.path.isdir(prebuilt) and not os.path.exists(config_dir):
        shutil.copytree(prebuilt, config_dir)


def main() -> None:
    # Ignored until ipykernel handles it (only while it runs a request): an interrupt
    # sent while the kernel is still starting has nothing to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from coderemote_kernel import guard, output, threads

    prepare_matplotlib()
    threads.install()
    output.budget.limit = int(os.environ.get("CODEREMOTE_OUTPUT_LIMIT", output.budget.limit))
    blocked = os.environ.get("CODEREMOTE_BLOCKED_MODULES", guard.DEFAULT_BLOCKED).split()

    from ipykernel.kernelapp import IPKernelApp

    trusted = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(__file__))}
    guard.install(blocked, trusted)
    sys.argv += [
        # Plain tracebacks: results are read as text by REST clients and terminals.
        "--InteractiveShell.colors=nocolor",
        # History in an in-memory sqlite database: history_request answers
        # (the kernel protocol's conformance suite asks), nothing is written to
        # a file, and nothing outlives the sandbox.
        "--HistoryManager.hist_file=:memory:",
    ]
    IPKernelApp.launch_instance(
        kernel_class="coderemote_kernel.kernel.SandboxKernel",
        outstream_class="coderemote_kernel.output.CappedOutStream",
    )


if __name__ == "__main__":
    main()
