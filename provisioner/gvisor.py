"""GVisorProvisioner: every kernel in its own gVisor sandbox, restored from a
zygote image (``provisioner.zygote``) or started with ``runsc run``.

The kernel talks ZMQ over ``ipc://`` sockets in a private per-kernel folder
that is bind-mounted into the sandbox; the sandbox has no network at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from overrides import overrides
from traitlets import Bool, Dict, Integer, List, TraitError, Unicode, default, validate

from kernel_images import SANDBOX_PACKAGE_DIR
from kernel_images.runtime import (
    DEFAULT_PROFILE,
    Runtime,
    RuntimeMissingError,
    build,
    built_profile,
    default_runtime_dir,
    profiles,
)
from provisioner import mounts, paths, reaper, zygote
from provisioner.bundle import (
    CONNECTION_DIR,
    SYSTEM_LIBRARY_DIRS,
    Limits,
    SandboxSpec,
    write_bundle,
)
from provisioner.bundle import (
    SANDBOX_PACKAGE_DIR as SANDBOX_PACKAGE_MOUNT,
)
from provisioner.cgroup import MemoryCgroup, group_for
from provisioner.limits import SandboxLimits
from provisioner.paths import container_name, is_container_name
from provisioner.runsc import INSTALL_HINT, LogTail, Runsc, check_version, foreground

MiB = 1 << 20
# The connection file and five sockets need a few KiB.
CONNECTION_DIR_BYTES = 256 * 1024


class GVisorProvisioner(SandboxLimits, LocalProvisioner):  # type: ignore[misc,metaclass]
    """Runs each kernel in a gVisor sandbox: no network, a read-only view of the
    Python runtime, tmpfs scratch space, cgroup and rlimit caps, a non-root user
    and an environment built from an allow-list. There is no unsandboxed fallback.
    Its limits are ``SandboxLimits``' (shared with the Kubernetes provisioner)."""

    runsc_path = Unicode(
        "runsc",
        config=True,
        help="The runsc executable (gVisor): a path, or a name looked up on PATH. Default: ``runsc``.",
    )
    platform = Unicode(
        "systrap",
        config=True,
        help="""gVisor platform: systrap (default), ptrace or kvm. systrap traps the sandbox's
        system calls with seccomp and shared memory instead of ptrace stops: measured here
        (tests/benchmarks/bench_platform.py, runsc 20240729) 20,000 getppid() take 0.02 s
        against 1.16 s with ptrace, and a cold start 1.8 s against 2.3 s. kvm needs /dev/kvm
        (it hangs in VMs without nested virtualisation). Change it only where systrap is not
        available (runsc older than 20230000 or a kernel without seccomp user notification).""",
    )
    restore_from_zygote = Bool(
        True,
        config=True,
        help="""Start kernels by restoring a checkpointed zygote (ipykernel, numpy, pandas and
        matplotlib already imported) into each kernel's own bundle, instead of starting
        Python afresh: a cold start in well under half the time. The image is built once
        per configuration, in the background at the first start (kernels start plainly
        until it is ready, and whenever a restore fails, with a log line). Default: True.
        False: always start plainly.""",
    )
    zygote_dir = Unicode(
        config=True,
        help="""Host folder of the zygote images (about 90 MB each, uncompressed so that a restore
        reads them at memory speed; the newest MAX_IMAGES are kept). Default:
        /var/lib/coderemote/zygotes as root, else {state_dir}/zygotes.""",
    )
    state_dir = Unicode(
        config=True,
        help="""Host folder for runsc state and per-kernel folders. Default:
        $CODEREMOTE_STATE_DIR, else /run/coderemote.""",
    )
    runtime_dir = Unicode(
        config=True,
        help="""The kernel runtime venv (see `coderemote runtime build`), read-only in every
        sandbox. Default: $CODEREMOTE_RUNTIME_DIR, else /opt/coderemote/runtime.""",
    )
    runtime_profile = Unicode(
        DEFAULT_PROFILE,
        config=True,
        help="""The profile the server builds the kernel runtime from when it builds it at
        start (CodeRemoteApp.build_runtime): ``base`` (ipykernel, numpy, pandas,
        matplotlib) or ``data`` (with scipy, scikit-learn, statsmodels, seaborn, plotly,
        sympy, networkx and more: about 1 GB, see README). A runtime built from another
        profile is rebuilt (packages added with `coderemote runtime install` go with it).
        Default: base.""",
    )
    pids_limit = Integer(64, config=True, help="Processes and threads per sandbox (RLIMIT_NPROC), count. Default: 64.")
    open_files_limit = Integer(256, config=True, help="Open files per process (RLIMIT_NOFILE), count. Default: 256.")
    file_size_limit = Integer(
        32 * MiB, config=True, help="Largest file a process may write (RLIMIT_FSIZE), bytes. Default: 32 MiB."
    )
    env_allowlist = List(
        Unicode(),
        ["LANG", "LC_ALL", "LC_CTYPE", "TZ"],
        config=True,
        help="""Variables copied from the server's environment into the sandbox; nothing else
        is. Default: LANG, LC_ALL, LC_CTYPE and TZ (LANG is C.UTF-8 when the server has none).""",
    )
    extra_env = Dict(
        value_trait=Unicode(),
        config=True,
        help="Extra variables set in the sandbox (never put secrets here). Default: none.",
    )

    container_id = Unicode(None, allow_none=True)
    process: Any = None
    _memory_cgroup: MemoryCgroup | None = None
    _log: LogTail | None = None

    @default("zygote_dir")
    def _zygote_dir_default(self) -> str:
        return "/var/lib/coderemote/zygotes" if os.geteuid() == 0 else os.path.join(self.state_dir, "zygotes")

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return os.environ.get("CODEREMOTE_STATE_DIR", "/run/coderemote")

    @validate("runtime_profile")
    def _valid_profile(self, proposal: Any) -> str:
        if proposal["value"] not in profiles():
            raise TraitError(f"GVisorProvisioner.runtime_profile must be one of {', '.join(profiles())}")
        return str(proposal["value"])

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

    # -- this machine, for the service (CodeRemoteApp) ------------------------------

    def prepare_host(self, build_runtime: bool) -> None:
        """Refuse a runsc this service does not support (RunscTooOldError) and build
        the kernel runtime if it is missing and ``build_runtime`` allows it."""
        runsc = shutil.which(self.runsc_path)
        if runsc is not None:  # a missing runsc is reported by host_health and at each start
            check_version(runsc)
        if build_runtime:
            built = built_profile(self.runtime_dir)
            if built != self.runtime_profile:
                self.log.warning(
                    "Building the sandboxed kernel's runtime (profile %s) in %s (first run only)",
                    self.runtime_profile,
                    self.runtime_dir,
                )
                build(self.runtime_dir, profile=self.runtime_profile, force=built is not None)

    def host_health(self) -> dict[str, Any]:
        """What the health endpoint says of this machine: whether sandboxes can start here."""
        problems = []
        runsc = shutil.which(self.runsc_path)
        if runsc is None:
            problems.append(f"runsc not found: {INSTALL_HINT}")
        try:
            Runtime.load(self.runtime_dir)
        except RuntimeMissingError as e:
            problems.append(str(e))
        if os.geteuid() != 0:
            problems.append("the server does not run as root; runsc needs root")
        return {"sandbox": "gvisor", "runsc": runsc, "problems": problems}

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

    def usage(self) -> tuple[int | None, int | None]:
        """(CPU ns used so far, peak memory bytes since the last ``reset_peak``) from the sandbox's cgroup."""
        if not self.container_id:
            return None, None
        return self._cgroup.cpu_ns(), self._cgroup.peak_bytes()

    def reset_peak(self) -> None:
        if self.container_id:
            self._cgroup.reset_peak()

    @property
    def oom_killed(self) -> bool:
        """Whether the sandbox was killed for exceeding its memory limit."""
        return self._cgroup.oom_killed if self.container_id else False

    @overrides
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """KernelProvisionerBase.pre_launch: make the sandbox's folders and point the kernel at ipc sockets there.

        The kernel's folder holds a tmpfs connection folder, which the sandbox
        bind-mounts; LocalProvisioner's pre_launch then writes the connection file.
        Whatever was made is removed again if this fails.
        """
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
        env.update(PATH=f"{self._runtime.path}/bin", PYTHONPATH=SANDBOX_PACKAGE_MOUNT, **self.kernel_env())
        if self.preload_modules is None and self._runtime.preload:
            env["CODEREMOTE_PRELOAD"] = " ".join(self._runtime.preload)
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

    @overrides
    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """KernelProvisionerBase.launch_kernel: start the kernel in a new runsc sandbox, from the zygote if it can.

        With ``restore_from_zygote``, the coderemote_kernel launcher is restored from a
        ready zygote image; otherwise (no image yet: it is then built in the background;
        a failed restore; another command) the sandbox is started plainly with
        ``runsc run``. The sandbox is cleaned up if this fails.
        """
        launch_env = kwargs.get("env") or {}
        try:
            if self.restore_from_zygote and cmd[1:3] == ["-m", "coderemote_kernel"]:
                image = self._zygote_image(launch_env)
                if image.ready:
                    restored = await self._restore(image, launch_env)
                    if restored is not None:
                        return restored
                else:
                    image.build_in_background(lambda i: self._build_zygote(i, launch_env), self.log)
            return self._launch(cmd, launch_env)
        except BaseException:
            await self.cleanup()
            raise

    # -- from the zygote ---------------------------------------------------------

    restored = False  # whether this kernel is a restore of the zygote

    def _zygote_spec(self, launch_env: dict[str, str], connection_dir: Path, cgroup: str) -> SandboxSpec:
        return self._spec([str(self._runtime.python), *zygote.ZYGOTE_ARGS], launch_env, connection_dir, cgroup)

    def _zygote_image(self, launch_env: dict[str, str]) -> zygote.ZygoteImage:
        spec = self._zygote_spec(launch_env, self.connection_dir, self._cgroup.cgroups_path)
        return zygote.ZygoteImage(Path(self.zygote_dir), zygote.image_key(self._runsc(), spec, self._runtime.path))

    def _build_zygote(self, image: zygote.ZygoteImage, launch_env: dict[str, str]) -> None:
        zygote.build(
            image, self._runsc(), Path(self.state_dir),
            lambda connection_dir, cgroup: self._zygote_spec(launch_env, connection_dir, cgroup),
            self.memory_limit, self.sandbox_uid, self.log,
        )  # fmt: skip

    async def _restore(self, image: zygote.ZygoteImage, launch_env: dict[str, str]) -> KernelConnectionInfo | None:
        """``runsc restore`` of the zygote into this kernel's bundle; None (and nothing left) if it fails."""
        runsc = self._runsc()
        self._write_sandbox_connection_file()  # before the restore: the zygote is waiting for it
        spec = self._zygote_spec(launch_env, self.connection_dir, self._cgroup.cgroups_path)
        process = self._start(spec, zygote.restore_command(runsc, image, self.kernel_dir, self._cid))
        # The restored zygote marks its connection folder as soon as it runs; a failed restore exits instead.
        marker = self.connection_dir / zygote.RESTORED_MARKER
        deadline = time.monotonic() + zygote.CHECKPOINT_TIMEOUT
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)  # (a file in the kernel's folder: nothing to wait on but polling)
        if not marker.exists():
            self.log.warning(
                "Restoring kernel %s from zygote %s failed, starting it plainly: %s",
                self.kernel_id, image.key, self.log_tail()[-500:],
            )  # fmt: skip
            if process.poll() is None:
                process.kill()
            await asyncio.to_thread(process.wait)
            await runsc.delete(self._cid)
            self.process = None
            return None
        self.restored = True
        self.log.info("Restored sandbox %s for kernel %s from zygote %s", self.container_id, self.kernel_id, image.key)
        return self.connection_info

    # -- started plainly ---------------------------------------------------------

    def _spec(self, args: list[str], launch_env: dict[str, str], connection_dir: Path, cgroup: str) -> SandboxSpec:
        read_only = [
            p for p in (*SYSTEM_LIBRARY_DIRS, str(self._runtime.path), *self._runtime.host_paths) if os.path.exists(p)
        ]
        return SandboxSpec(
            args=args,
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
            connection_dir=connection_dir,
            cgroup=cgroup,
            read_only_paths=read_only,
            hidden_paths=list(self._runtime.hidden_paths),
            extra_mounts={SANDBOX_PACKAGE_MOUNT: str(SANDBOX_PACKAGE_DIR)},
        )

    def _launch(self, cmd: list[str], launch_env: dict[str, str]) -> KernelConnectionInfo:
        runsc = self._runsc()
        self._write_sandbox_connection_file()
        spec = self._spec(self._sandbox_args(cmd), launch_env, self.connection_dir, self._cgroup.cgroups_path)
        self._start(spec, runsc.command("run", f"--bundle={self.kernel_dir}", self._cid))
        self.log.info("Started sandbox %s for kernel %s", self.container_id, self.kernel_id)
        return self.connection_info

    def _start(self, spec: SandboxSpec, command: list[str]) -> subprocess.Popen[bytes]:
        """The kernel's bundle and cgroup for ``spec``, and ``command`` (runsc run or a restore) started on them."""
        write_bundle(self.kernel_dir, Path(self.state_dir) / "rootfs", spec)
        self._cgroup.create(self.memory_limit)
        self.process = foreground(command)
        # A pipe, not a file: the kernel keeps its original stdout/stderr open,
        # and a host file there would be a way to fill the host's disk.
        self._log = LogTail(self.process.stdout)
        self.pid = self.process.pid
        return self.process

    @overrides
    async def poll(self) -> int | None:
        """KernelProvisionerBase.poll: the exit code of the sandbox's runsc process, ending it first past an OOM kill.

        None while the sandbox runs; a sandbox whose cgroup saw an OOM kill is ended first.

        On the systrap platform the kernel's OOM killer may take a helper process of
        the sandbox and leave the rest running, stuck: a sandbox past its memory limit
        is therefore killed here, so callers see it die (and ``oom_killed`` says why).
        """
        process = self.process
        if process is not None and process.poll() is None and self.container_id and self._cgroup.oom_killed:
            # Its control server may be among the killed: end its processes directly (all of them are its own).
            self.log.warning("Sandbox %s went over its memory limit: killing it", self.container_id)
            self._cgroup.kill_all()
            for _ in range(200):  # runsc notices within a moment
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        return await super().poll()  # type: ignore[no-any-return]

    @overrides
    async def send_signal(self, signum: int) -> None:
        """KernelProvisionerBase.send_signal: ``runsc kill`` the sandbox's init (SIGKILL, SIGTERM: all its processes).

        Nothing is sent once the sandbox has ended.
        """
        if self.process is None or self.process.poll() is not None:
            return
        # Signals go to the sandbox's init (the kernel) through runsc: signalling
        # the `runsc run` process itself could leave the sandbox running.
        code, out = await self._runsc().kill(
            self._cid, signum, all_processes=signum in (signal.SIGKILL, signal.SIGTERM)
        )
        if code != 0 and self.process.poll() is None:
            self.log.warning("runsc kill %s %s failed: %s", self.container_id, signum, out.strip())

    @overrides
    async def kill(self, restart: bool = False) -> None:
        """KernelProvisionerBase.kill: SIGKILL to every process of the sandbox (``send_signal``)."""
        await self.send_signal(signal.SIGKILL)

    @overrides
    async def terminate(self, restart: bool = False) -> None:
        """KernelProvisionerBase.terminate: SIGTERM to every process of the sandbox (``send_signal``)."""
        await self.send_signal(signal.SIGTERM)

    @overrides
    async def cleanup(self, restart: bool = False) -> None:
        """KernelProvisionerBase.cleanup: kill the sandbox if it still runs and delete it, then LocalProvisioner's.

        Remove the container, its runsc state, cgroup and folder.
        """
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

    @overrides
    async def get_provisioner_info(self) -> dict[str, Any]:
        """KernelProvisionerBase.get_provisioner_info: LocalProvisioner's, with the sandbox's name (container_id)."""
        info = await super().get_provisioner_info()
        info["container_id"] = self.container_id
        return info

    @overrides
    async def load_provisioner_info(self, provisioner_info: dict) -> None:  # the base's type (@overrides checks it)
        """KernelProvisionerBase.load_provisioner_info: LocalProvisioner's, and the sandbox's name.

        A name this provisioner does not make is refused (ValueError) before anything is loaded.
        """
        container_id = provisioner_info.get("container_id")
        if container_id is not None and not is_container_name(container_id):
            raise ValueError(f"{container_id!r} is not the name of one of this provisioner's sandboxes")
        await super().load_provisioner_info(provisioner_info)
        self.container_id = container_id
