"""What every sandbox is given, whichever provisioner makes it.

``GVisorProvisioner`` (a gVisor sandbox on this host) and
``KubernetesProvisioner`` (a gVisor pod) take their limits from these same
settings, in the same units; ``c.SandboxLimits.memory_limit = ...`` sets one
for both, ``c.GVisorProvisioner.memory_limit`` for one.
"""

from __future__ import annotations

from traitlets import Float, Integer, List, Unicode
from traitlets.config import Configurable

from provisioner.bundle import WORK_DIR

MiB = 1 << 20


class SandboxLimits(Configurable):  # type: ignore[misc]
    """The limits and settings of one sandboxed kernel (a base of the provisioners)."""

    memory_limit = Integer(
        512 * MiB,
        config=True,
        help="""Memory limit per sandbox, bytes (cgroup; the pod's limit); a kernel past it is
        killed. Default: 512 MiB.""",
    )
    cpu_limit = Float(
        1.0, config=True, help="CPUs per sandbox (cgroup CPU quota; the pod's limit), fractions allowed. Default: 1."
    )
    tmpfs_size = Integer(
        64 * MiB,
        config=True,
        help="Size cap of /tmp and of the working dir (/workspace), bytes each. Default: 64 MiB.",
    )
    output_limit = Integer(
        MiB,
        config=True,
        help="""Bytes of output per execution (stdout and stderr, and every other message the
        kernel sends for it) before output is cut; the run then ends as output_limit.
        Default: 1 MiB. Keep ExecutionService.max_output_bytes above it.""",
    )
    blocked_modules = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Modules the user's code may not import. Default: None, the launcher's list
        (processes, signals, network, ctypes and cffi). A list replaces that one: repeat
        those of its modules that should stay blocked.""",
    )
    preload_modules = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Modules each kernel imports before it is handed out (a zygote's checkpoint
        holds them), so that the slow first import of a large library (scipy, sklearn) is
        done before the user's code runs. Default: None, the runtime profile's list (the
        ``# preload:`` lines of its requirements; none for base, whose numpy, pandas and
        matplotlib every kernel imports anyway). Each costs every kernel memory and start
        time: list fewer with a small memory_limit.""",
    )
    sandbox_uid = Integer(
        1000,
        config=True,
        help="""Non-root uid (and gid) the kernel runs as in a local gVisor sandbox (a pod runs
        as its template's runAsUser). Default: 1000.""",
    )

    def kernel_env(self) -> dict[str, str]:
        """What the kernel launcher is told, in every sandbox: its limits and where it
        keeps its caches (never anything of the server's)."""
        env = {
            "HOME": WORK_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "IPYTHONDIR": "/tmp/ipython",
            "CODEREMOTE_OUTPUT_LIMIT": str(self.output_limit),
        }
        if self.blocked_modules is not None:
            env["CODEREMOTE_BLOCKED_MODULES"] = " ".join(self.blocked_modules)
        if self.preload_modules is not None:
            env["CODEREMOTE_PRELOAD"] = " ".join(self.preload_modules)
        return env
