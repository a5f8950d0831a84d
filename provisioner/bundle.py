"""The OCI bundle of one sandboxed kernel: what it sees, what it may use.

The root filesystem is an empty read-only skeleton; the sandbox sees only
the bind mounts listed here (the kernel runtime, the interpreter it is built
on, shared libraries), a generated /etc, size-capped tmpfs for /tmp and the
working directory, and its private connection folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECTION_DIR = "/run/kernel"
SANDBOX_PACKAGE_DIR = "/opt/coderemote/kernel"
WORK_DIR = "/workspace"
# Shared libraries the interpreter and compiled wheels load.
SYSTEM_LIBRARY_DIRS = ("/usr/lib", "/usr/lib64")

ETC_FILES = {
    "passwd": "root:x:0:0::/nonexistent:/usr/sbin/nologin\nsandbox:x:{uid}:{uid}::" + WORK_DIR + ":/usr/sbin/nologin\n",
    "group": "root:x:0:\nsandbox:x:{uid}:\n",
    "hosts": "127.0.0.1 localhost sandbox\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}


@dataclass
class Limits:
    """Resources one sandbox may use."""

    memory_bytes: int
    pids: int
    cpus: float
    tmpfs_bytes: int
    open_files: int
    file_size_bytes: int


@dataclass
class SandboxSpec:
    """Everything that differs between two sandboxes."""

    args: list[str]
    env: dict[str, str]
    uid: int
    limits: Limits
    connection_dir: Path
    cgroup: str
    read_only_paths: list[str] = field(default_factory=list)
    hidden_paths: list[str] = field(default_factory=list)
    extra_mounts: dict[str, str] = field(default_factory=dict)


def _bind(source: str, destination: str, *, writable: bool = False) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", "rw" if writable else "ro", "nosuid", "nodev"],
    }


def _tmpfs(destination: str, size: int, *, writable: bool = True) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", f"size={size}", "mode=1777" if writable else "ro"],
    }


def _mounts(spec: SandboxSpec) -> list[dict[str, Any]]:
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        _tmpfs("/tmp", spec.limits.tmpfs_bytes),
        _tmpfs(WORK_DIR, spec.limits.tmpfs_bytes),
    ]
    mounts += [_bind(path, path) for path in spec.read_only_paths]
    # Empty read-only folders over what must not be seen inside a mounted path.
    mounts += [_tmpfs(path, 4096, writable=False) for path in spec.hidden_paths]
    mounts += [_bind(source, destination) for destination, source in spec.extra_mounts.items()]
    mounts.append(_bind(str(spec.connection_dir), CONNECTION_DIR, writable=True))
    return mounts


def oci_config(spec: SandboxSpec, rootfs: Path) -> dict[str, Any]:
    """The OCI runtime config (config.json) for one sandbox."""
    limits = spec.limits
    period = 100_000
    rlimits = {
        # gVisor enforces RLIMIT_NPROC itself; a host pids cgroup would count
        # the sentry's own threads and kill the sandbox instead of failing fork().
        "RLIMIT_NPROC": limits.pids,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_FSIZE": limits.file_size_bytes,
        "RLIMIT_CORE": 0,
    }
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": spec.uid, "gid": spec.uid},
            "args": spec.args,
            "env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
            "cwd": WORK_DIR,
            "rlimits": [{"type": k, "hard": v, "soft": v} for k, v in rlimits.items()],
            "noNewPrivileges": True,
            "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "sandbox",
        "mounts": _mounts(spec),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "cgroupsPath": spec.cgroup,
            "resources": {"cpu": {"quota": int(limits.cpus * period), "period": period}},
        },
    }


def prepare_rootfs(rootfs: Path, spec: SandboxSpec) -> None:
    """Create the read-only skeleton with a mount point for every mount (idempotent).

    The skeleton is shared by running sandboxes: a file is only ever replaced
    whole (never truncated in place), and only when its content changes.
    """
    for name, template in ETC_FILES.items():
        target = rootfs / "etc" / name
        content = template.format(uid=spec.uid)
        if target.exists() and target.read_text() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{name}.{os.getpid()}")
        partial.write_text(content)
        partial.replace(target)
    for mount in _mounts(spec):
        point = rootfs / mount["destination"].lstrip("/")
        if mount["type"] == "bind" and not os.path.isdir(mount["source"]):
            point.parent.mkdir(parents=True, exist_ok=True)
            point.touch(exist_ok=True)
        else:
            point.mkdir(parents=True, exist_ok=True)
    for name in ("dev", "sys"):
        (rootfs / name).mkdir(exist_ok=True)
    # Debian's merged /usr: the loader is found through /lib64.
    for name, points_to in (("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (rootfs / name).is_symlink():
            (rootfs / name).symlink_to(points_to)


def write_bundle(bundle_dir: Path, rootfs: Path, spec: SandboxSpec) -> None:
    """The OCI bundle of ``spec`` in ``bundle_dir``, on the shared skeleton ``rootfs`` (prepared here too)."""
    prepare_rootfs(rootfs, spec)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    (bundle_dir / "config.json").write_text(json.dumps(oci_config(spec, rootfs), indent=1))
