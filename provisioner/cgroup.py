"""The memory cgroup a sandbox runs in, owned by the provisioner.

runsc removes the cgroups it creates when the sandbox ends, which would take
the OOM record with them. The provisioner therefore creates the memory cgroup
itself, sets the limit there and reads ``oom_kill`` before removing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from pathlib import Path

from provisioner import paths

V1_MEMORY = Path("/sys/fs/cgroup/memory")
V1_CPUACCT = Path("/sys/fs/cgroup/cpuacct")
V2_ROOT = Path("/sys/fs/cgroup")


def group_for(state_dir: str | os.PathLike[str]) -> str:
    """The parent cgroup of one state dir's sandboxes: two servers with their
    own state dirs never take each other's cgroups for stale ones."""
    return "coderemote-" + hashlib.sha256(os.fsencode(os.path.abspath(state_dir))).hexdigest()[:10]


def _is_v2() -> bool:
    return (V2_ROOT / "cgroup.controllers").exists()


class MemoryCgroup:
    """``/sys/fs/cgroup[/memory]/<group>/<name>`` with a memory limit."""

    def __init__(self, name: str, group: str) -> None:
        self.name = name
        self.group = group
        self.v2 = _is_v2()
        self.path = paths.child(paths.child(V2_ROOT if self.v2 else V1_MEMORY, group), name)
        self._oom_killed = False

    @property
    def cgroups_path(self) -> str:
        """The path to give runsc as ``linux.cgroupsPath``."""
        return f"/{self.group}/{self.name}"

    def create(self, limit_bytes: int) -> None:
        if self.v2:
            parent = self.path.parent
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory +cpu +pids")
            self.path.mkdir(exist_ok=True)
            (self.path / "memory.max").write_text(str(limit_bytes))
            (self.path / "memory.swap.max").write_text("0")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))

    @property
    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in this cgroup (remembered after removal)."""
        events = self.path / ("memory.events" if self.v2 else "memory.oom_control")
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    self._oom_killed = True
        except OSError:
            pass
        return self._oom_killed

    def cpu_ns(self) -> int | None:
        """CPU time the sandbox (sentry, gofer and user code) has used so far, ns; None if unreadable."""
        try:
            if self.v2:
                for line in (self.path / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) * 1000
                return None
            # runsc makes the same cgroupsPath in the cpuacct hierarchy.
            cpuacct = paths.child(paths.child(V1_CPUACCT, self.group), self.name)
            return int((cpuacct / "cpuacct.usage").read_text())
        except (OSError, ValueError):
            return None

    @property
    def _peak_file(self) -> Path:
        return self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")

    def peak_bytes(self) -> int | None:
        """Most memory the sandbox held since it started or since ``reset_peak``, bytes; None if unreadable."""
        try:
            return int(self._peak_file.read_text())
        except (OSError, ValueError):
            return None

    def reset_peak(self) -> None:
        """Start a new peak (cgroup v1, and v2 on Linux 6.12+; elsewhere the peak stays since the start)."""
        try:
            self._peak_file.write_text("0")
        except OSError:
            pass

    def kill_all(self) -> int:
        """SIGKILL every host process in the cgroup (all of them are the sandbox's); how many there were."""
        try:
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return 0
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def remove(self) -> None:
        _ = self.oom_killed
        remove_tree(self.path)


def remove_tree(path: Path) -> None:
    """rmdir a cgroup and any child cgroups runsc left in it."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir():
            remove_tree(child)
    try:
        os.rmdir(path)
    except OSError:
        pass


def sandbox_cgroups(group: str) -> list[Path]:
    """Every per-sandbox cgroup under ``group``, in every hierarchy (runsc makes cpu ones too)."""
    roots = [V2_ROOT / group] if _is_v2() else [p / group for p in V1_MEMORY.parent.iterdir() if p.is_dir()]
    return [child for root in roots if root.is_dir() for child in root.iterdir() if child.is_dir()]
