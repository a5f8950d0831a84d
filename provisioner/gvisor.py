"""GVisorProvisioner: every kernel in its own gVisor sandbox, started with ``runsc run``.

The kernel talks ZMQ over ``ipc://`` sockets in a private per-kernel folder
that is bind-mounted into the sandbox; the sandbox has no network at all.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Dict, Float, Integer, List, Unicode, default

from kernel_images import SANDBOX_PACKAGE_DIR
from kernel_images.runtime import Runtime, default_runtime_dir
from provisioner import mounts, paths, reaper
from provisioner.bundle import (
    CONNECTION_DIR,
    SYSTEM_LIBRARY_DIRS,
    WORK_DIR,
    Limits,
    SandboxSpec,
    prepare_rootfs,
    write_bundle,
)
from provisioner.bundle import (
    SANDBOX_PACKAGE_DIR as SANDBOX_PACKAGE_MOUNT,
)
from provisioner.cgroup import MemoryCgroup, group_for
from provisioner.paths import container_name, is_container_name
from provisioner.runsc import LogTail, Runsc

MiB = 1 << 20
# The connection file and five sockets need a few KiB.
CONNECTION_DIR_BYTES = 256 * 1024


class GVisorProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Runs each kernel in a gVisor sandbox: no network, a read-only view of the
    Python runtime, tmpfs scratch space, cgroup and rlimit caps, a non-root user
    and an environment built from an allow-list. There is no unsandboxed fallback."""

    runsc_path = Unicode("runsc", config=True, help="The runsc executable (gVisor).")
    platform = Unicode("ptrace", config=True, help="gVisor platform: ptrace, systrap or kvm.")
    state_dir = Unicode(config=True, help="Host folder for runsc state and per-kernel folders.")
    runtime_dir = Unicode(config=True, help="The kernel runtime venv (see `coderemote runtime build`).")
    memory_limit = Integer(512 * MiB, config=True, help="Memory limit per sandbox, bytes (cgroup).")
    pids_limit = Integer(64, config=True, help="Processes and threads per sandbox (RLIMIT_NPROC).")
    cpu_limit = Float(1.0, config=True, help="CPUs per sandbox (cgroup CPU quota).")
    tmpfs_size = Integer(64 * MiB, config=True, help="Size cap of /tmp and of the working dir, bytes each.")
    open_files_limit = Integer(256, config=True, help="Open files per process (RLIMIT_NOFILE).")
    file_size_limit = Integer(32 * MiB, config=True, help="Largest file a process may write (RLIMIT_FSIZE).")
    output_limit = Integer(MiB, config=True, help="stdout+stderr bytes per execution before output is cut.")
    blocked_modules = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="Modules the user's code may not import; None keeps the launcher's default list.",
    )
    sandbox_uid = Integer(1000, config=True, help="Non-root uid (and gid) the kernel runs as.")
    env_allowlist = List(
        Unicode(),
        ["LANG", "LC_ALL", "LC_CTYPE", "TZ"],
        config=True,
        help="Variables copied from the server's environment into the sandbox; nothing else is.",
    )
    extra_env = Dict(
        value_trait=Unicode(), config=True, help="Extra variables set in the sandbox (never put secrets here)."
    )

    container_id = Unicode(None, allow_none=True)
    process: Any = None
    _memory_cgroup: MemoryCgroup | None = None
    _log: LogTail | None = None

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return os.environ.get("CODEREMOTE_STATE_DIR", "/run/coderemote")

    @default("runtime_dir")
    def _runtime_dir_default(self) -> str:
        return default_runtime_dir()

    @property
    def _km(self) -> Any:
        return self.parent

    @property
    def _cid(self) -> str:
        assert self.container_id is not None, "the sandbox has not been prepared"
        return self.container_id

    @property
    def kernel_dir(self) -> Path:
        return paths.child(Path(self.state_dir) / "kernels", self._cid)

    @property
    def connection_dir(self) -> Path:
        return self.kernel_dir / "conn"

    def _runsc(self) -> Runsc:
        return Runsc.find(self.runsc_path, Path(self.state_dir) / "runsc", self.platform)

    def reap_stale(self) -> list[str]:
        """Destroy sandboxes left behind by servers that are gone; return their ids."""
        return reaper.reap_once(self._runsc())

    def log_tail(self) -> str:
        """The end of what runsc and the kernel wrote to stdout/stderr (for start-up failures)."""
        return self._log.text() if self._log else ""

    @property
    def _cgroup(self) -> MemoryCgroup:
        if self._memory_cgroup is None or self._memory_cgroup.name != self._cid:
            self._memory_cgroup = MemoryCgroup(self._cid, group_for(self.state_dir))
        return self._memory_cgroup

    @property
    def oom_killed(self) -> bool:
        """Whether the sandbox was killed for exceeding its memory limit."""
        return self._cgroup.oom_killed if self.container_id else False

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        runsc = self._runsc()
        self._runtime = Runtime.load(self.runtime_dir)
        if os.geteuid() != 0:
            raise PermissionError("the gVisor provisioner must run as root (runsc needs it for cgroups and mounts)")
        reaper.reap_once(runsc)

        self.container_id = container_name(self.kernel_id)
        self._memory_cgroup = None
        reaper.remove_kernel_dir(self.kernel_dir)
        self.connection_dir.mkdir(parents=True)
        self.kernel_dir.chmod(0o700)
        reaper.write_owner(self.kernel_dir)
        mounts.mount_tmpfs(self.connection_dir, CONNECTION_DIR_BYTES, self.sandbox_uid)

        km: Any = self.parent
        km.transport = "ipc"
        km.ip = str(self.connection_dir / "kernel")
        km.cache_ports = False
        try:
            return await super().pre_launch(**kwargs)
        except BaseException:
            await self.cleanup()
            raise

    def _sandbox_env(self, launch_env: dict[str, str]) -> dict[str, str]:
        env = {name: launch_env[name] for name in self.env_allowlist if name in launch_env}
        env.setdefault("LANG", "C.UTF-8")
        env.update(
            PATH=f"{self._runtime.path}/bin",
            HOME=WORK_DIR,
            PYTHONPATH=SANDBOX_PACKAGE_MOUNT,
            PYTHONDONTWRITEBYTECODE="1",
            MPLCONFIGDIR="/tmp/matplotlib",
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            IPYTHONDIR="/tmp/ipython",
            CODEREMOTE_OUTPUT_LIMIT=str(self.output_limit),
        )
        if self.blocked_modules is not None:
            env["CODEREMOTE_BLOCKED_MODULES"] = " ".join(self.blocked_modules)
        env.update(self.extra_env)
        return env

    def _sandbox_args(self, cmd: list[str]) -> list[str]:
        """The kernelspec's argv as the sandbox sees it: the runtime's interpreter
        (jupyter_client turns "python" into the server's own) and the sandbox's
        copy of the connection file."""
        host_connection_file = os.path.abspath(self._km.connection_file)
        interpreter = str(self._runtime.python) if cmd[0] in ("python", sys.executable) else cmd[0]
        return [interpreter] + [
            f"{CONNECTION_DIR}/connection.json" if os.path.abspath(arg) == host_connection_file else arg
            for arg in cmd[1:]
        ]

    def _write_sandbox_connection_file(self) -> None:
        info = dict(self._km.get_connection_info())
        info["key"] = info["key"].decode() if isinstance(info["key"], bytes) else info["key"]
        info["ip"] = f"{CONNECTION_DIR}/kernel"
        info.pop("curve_secretkey", None)
        info.pop("curve_publickey", None)
        path = self.connection_dir / "connection.json"
        path.write_text(json.dumps(info))
        os.chown(path, self.sandbox_uid, self.sandbox_uid)
        path.chmod(0o400)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        try:
            return self._launch(cmd, kwargs.get("env") or {})
        except BaseException:
            await self.cleanup()
            raise

    def _launch(self, cmd: list[str], launch_env: dict[str, str]) -> KernelConnectionInfo:
        runsc = self._runsc()
        self._write_sandbox_connection_file()
        read_only = [
            p for p in (*SYSTEM_LIBRARY_DIRS, str(self._runtime.path), *self._runtime.host_paths) if os.path.exists(p)
        ]
        spec = SandboxSpec(
            args=self._sandbox_args(cmd),
            env=self._sandbox_env(launch_env),
            uid=self.sandbox_uid,
            limits=Limits(
                memory_bytes=self.memory_limit,
                pids=self.pids_limit,
                cpus=self.cpu_limit,
                tmpfs_bytes=self.tmpfs_size,
                open_files=self.open_files_limit,
                file_size_bytes=self.file_size_limit,
            ),
            connection_dir=self.connection_dir,
            cgroup=self._cgroup.cgroups_path,
            read_only_paths=read_only,
            hidden_paths=list(self._runtime.hidden_paths),
            extra_mounts={SANDBOX_PACKAGE_MOUNT: str(SANDBOX_PACKAGE_DIR)},
        )
        rootfs = Path(self.state_dir) / "rootfs"
        prepare_rootfs(rootfs, spec)
        write_bundle(self.kernel_dir, rootfs, spec)
        self._cgroup.create(self.memory_limit)
        self.process = runsc.start(self._cid, self.kernel_dir)
        # A pipe, not a file: the kernel keeps its original stdout/stderr open,
        # and a host file there would be a way to fill the host's disk.
        self._log = LogTail(self.process.stdout)
        self.pid = self.process.pid
        self.log.info("Started sandbox %s for kernel %s", self.container_id, self.kernel_id)
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Signals go to the sandbox's init (the kernel) through runsc: signalling
        # the `runsc run` process itself could leave the sandbox running.
        code, out = await self._runsc().kill(
            self._cid, signum, all_processes=signum in (signal.SIGKILL, signal.SIGTERM)
        )
        if code != 0 and self.process.poll() is None:
            self.log.warning("runsc kill %s %s failed: %s", self.container_id, signum, out.strip())

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """Remove the container, its runsc state, cgroup and folder."""
        if self.container_id is None:
            return
        if self.process is not None and self.process.poll() is None:
            await self.kill()
            await self.wait()
        await self._runsc().delete(self._cid)
        self._cgroup.remove()
        reaper.remove_kernel_dir(self.kernel_dir)
        self.log.debug("Removed sandbox %s", self.container_id)
        await super().cleanup(restart=restart)

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info["container_id"] = self.container_id
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        container_id = provisioner_info.get("container_id")
        if container_id is not None and not is_container_name(container_id):
            raise ValueError(f"{container_id!r} is not the name of one of this provisioner's sandboxes")
        await super().load_provisioner_info(provisioner_info)
        self.container_id = container_id
