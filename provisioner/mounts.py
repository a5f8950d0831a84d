"""Host mounts made for a sandbox: a small tmpfs as each kernel's connection
folder. The sandbox must be able to create its ZMQ sockets there, and so can
write files there too; on a tmpfs of its own that is capped memory, not the
host's disk."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: Path) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what} {path}: {os.strerror(errno)}")


def mount_tmpfs(path: Path, size: int, uid: int) -> None:
    """Mount a tmpfs of ``size`` bytes on ``path``, private to ``uid`` (mode 0700)."""
    options = f"size={size},mode=0700,uid={uid},gid={uid}".encode()
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _check(_libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", flags, options), "mount tmpfs on", path)


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        _check(_libc.umount2(os.fsencode(path), MNT_DETACH), "unmount", path)
