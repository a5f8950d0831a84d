"""Reaping of sandboxes left behind by a server that died without cleaning up.

Each per-kernel folder records the server process that owns it (pid and
start time, so a reused pid is not mistaken for the owner). At start-up,
sandboxes whose owner is gone are killed and their state, cgroups and
folders removed; sandboxes of live servers are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from provisioner import cgroup, mounts, paths
from provisioner.runsc import Runsc

log = logging.getLogger(__name__)
OWNER_FILE = "owner.json"
_reaped: set[Path] = set()


def _start_time(pid: int) -> str | None:
    try:
        # Field 22 of /proc/PID/stat, after the parenthesised command name.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_owner(kernel_dir: Path, role: str = "kernel") -> None:
    """Mark the folder as this process's (``role``: a kernel's sandbox, or a zygote being checkpointed)."""
    pid = os.getpid()
    (kernel_dir / OWNER_FILE).write_text(json.dumps({"pid": pid, "start": _start_time(pid), "role": role}))


def _owner_alive(kernel_dir: Path) -> bool:
    try:
        owner = json.loads((kernel_dir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return owner.get("start") is not None and _start_time(int(owner["pid"])) == owner["start"]


def reap(runsc: Runsc) -> list[str]:
    """Destroy every sandbox whose owning server is gone; return their ids.

    Only names this provisioner makes (``paths.container_name``) are touched:
    another program's containers and folders are left alone.
    """
    kernels = runsc.state_dir.parent / "kernels"
    folders = [d for d in kernels.iterdir() if _is_own_folder(d)] if kernels.is_dir() else []
    live = {d.name for d in folders if _owner_alive(d)}
    stale = {d.name for d in folders if d.name not in live}
    stale |= {cid for cid in runsc.list_sync() if paths.is_container_name(cid) and cid not in live}
    for cid in sorted(stale):
        log.warning("Reaping stale sandbox %s", cid)
        runsc.destroy_sync(cid)
        if _is_own_folder(kernels / cid):
            remove_kernel_dir(kernels / cid)
    for path in cgroup.sandbox_cgroups(cgroup.group_for(runsc.state_dir.parent)):
        if path.name not in live:
            cgroup.remove_tree(path)
    return sorted(stale)


def _is_own_folder(path: Path) -> bool:
    """A kernel folder as the provisioner makes them: named for a sandbox, a real folder (no symlink)."""
    return paths.is_container_name(path.name) and not path.is_symlink() and path.is_dir()


def remove_kernel_dir(kernel_dir: Path) -> None:
    """Remove a kernel's folder, unmounting its connection tmpfs first (never through a symlink)."""
    if kernel_dir.is_symlink():
        raise ValueError(f"{kernel_dir} is a symlink, not a kernel folder")
    mounts.unmount(kernel_dir / "conn")
    shutil.rmtree(kernel_dir, ignore_errors=True)


def reap_once(runsc: Runsc) -> list[str]:
    """Reap once per state folder in this process (before its first sandbox)."""
    if runsc.state_dir in _reaped:
        return []
    _reaped.add(runsc.state_dir)
    return reap(runsc)
