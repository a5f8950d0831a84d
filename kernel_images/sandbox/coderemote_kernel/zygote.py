"""The zygote: ``python -m coderemote_kernel.zygote``, checkpointed once, restored for each kernel.

It imports what every kernel imports (ipykernel, IPython, numpy, pandas,
matplotlib with the inline backend), loads the kernel's settings
(``coderemote_kernel.app``), says it is ready by creating
``/run/kernel/zygote-ready``, and waits for ``/run/kernel/connection.json``.
The host checkpoints it while it waits (``runsc checkpoint``). Each new kernel
is a ``runsc restore`` of that image into its own bundle, whose connection
folder already holds that kernel's connection file: the restored zygote finds
it at once, makes itself fresh (``refresh``) and becomes the kernel.

Nothing of the zygote's own life reaches a kernel beyond these imports: it
opens no file but the ready marker (in its own connection folder, which a
restored kernel does not see), and everything a kernel is given (its key, its
ports, its limits, its cgroup) comes with its own bundle and connection file.
"""

from __future__ import annotations

import os
import signal
import sys
import time

CONNECTION_FILE = "/run/kernel/connection.json"
READY_FILE = "/run/kernel/zygote-ready"  # the zygote is ready to be checkpointed
RESTORED_FILE = "/run/kernel/zygote-restored"  # a restore of it runs: the host stops waiting
POLL_S = 0.002


# What a kernel imports while it starts (ipykernel resolves most of its classes by name
# at start-up) and the libraries people import first: each restored kernel has them loaded.
PRELOAD = (
    "IPython", "IPython.core.completerlib", "IPython.core.magics", "ipykernel.kernelapp", "ipykernel.ipkernel",
    "ipykernel.zmqshell", "ipykernel.debugger", "ipykernel.comm", "ipykernel.control", "ipykernel.heartbeat",
    "ipykernel.iostream", "ipykernel.parentpoller", "ipykernel.subshell_manager", "ipykernel.shellchannel",
    "ipykernel.eventloops", "ipykernel.displayhook", "jupyter_client.session", "zmq.asyncio",
    "IPython.core.debugger", "IPython.core.oinspect", "IPython.extensions.storemagic", "IPython.utils.wildcard",
    "pdb", "sqlite3", "faulthandler", "tornado.platform.asyncio",
    "coderemote_kernel.kernel", "coderemote_kernel.output", "coderemote_kernel.threads", "coderemote_kernel.guard",
    # matplotlib without pyplot: pyplot binds the inline backend to the shell when it is first imported,
    # and the shell is made after the restore.
    "numpy", "pandas", "matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg",
)  # fmt: skip


def preload() -> None:
    import importlib

    from coderemote_kernel.__main__ import preload_modules, prepare_matplotlib

    prepare_matplotlib()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a runtime without it (another ipykernel version, no matplotlib)
            pass
    preload_modules()  # the server's choice (the runtime profile's heavy libraries)
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        matplotlib.get_cachedir()  # the font cache, read now rather than by each kernel


def refresh() -> None:
    """Make a restored zygote as fresh as a started kernel: new random state wherever it is kept.

    ``os.urandom``, ``secrets`` and ``uuid.uuid4`` read the sandbox's entropy
    on every call; the seeded generators were seeded once, in the zygote, so
    every restored kernel would draw the same numbers: reseed them from it.
    (Python's str hash seed is fixed at interpreter start and stays the
    zygote's; set PYTHONHASHSEED in the environment to choose it.)
    """
    import random
    import tempfile

    random.seed()
    tempfile._name_sequence = None  # type: ignore[attr-defined]  # its generator, reseeded per pid: same pid here
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def main() -> None:
    # Until the kernel takes over SIGINT (ipykernel ignores it between requests), an
    # interrupt finds nothing to interrupt: without this it would end a kernel still
    # being restored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload()
    from coderemote_kernel.__main__ import kernel_app, start

    app = kernel_app(["-f", CONNECTION_FILE])
    with open(READY_FILE, "w") as ready:
        ready.write(str(os.getpid()))
    while not os.path.exists(CONNECTION_FILE):
        time.sleep(POLL_S)
    open(RESTORED_FILE, "w").close()
    refresh()
    start(app)


if __name__ == "__main__":
    main()
