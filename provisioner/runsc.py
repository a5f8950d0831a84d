"""A thin wrapper over the ``runsc`` command line (gVisor's OCI runtime)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# The oldest runsc supported: its systrap platform, and checkpoint/restore that is maintained.
MIN_VERSION = 20240729
INSTALL_HINT = (
    f"install gVisor's runsc {MIN_VERSION} or newer (`sh scripts/install-runsc` from the source tree; by hand: "
    "Debian 13 `apt-get install -y runsc`, Debian 12 `apt-get install -y -t bookworm-backports runsc` "
    "after adding the bookworm-backports suite)"
)


class RunscMissingError(RuntimeError):
    """runsc is not installed; sandboxed kernels cannot start (there is no fallback)."""


class RunscTooOldError(RunscMissingError):
    """runsc is older than MIN_VERSION."""


@functools.lru_cache(maxsize=8)
def _version_of(path: str, mtime_ns: int) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # "runsc version 0.0~20240729.0" (Debian), "runsc version release-20240729.0" (gVisor's builds)
    match = re.search(r"(?<!\d)(20\d{6})(?!\d)", out)
    return int(match.group(1)) if match else None


def runsc_version(path: str) -> int | None:
    """The release date of the runsc at ``path`` (e.g. 20240729); None when it does not say."""
    try:
        return _version_of(path, os.stat(path).st_mtime_ns)
    except OSError:
        return None


def check_version(path: str) -> None:
    """Raise RunscTooOldError for a runsc older than MIN_VERSION (one that does not say is let through)."""
    version = runsc_version(path)
    if version is not None and version < MIN_VERSION:
        raise RunscTooOldError(
            f"cannot start a sandboxed kernel: {path} is runsc {version}, older than the oldest supported, "
            f"{MIN_VERSION}; {INSTALL_HINT}"
        )


def foreground(command: list[str]) -> subprocess.Popen[bytes]:
    """Start ``command`` (``runsc run``, or a restore) in a session of its own: the process lives
    as long as the sandbox. Its stdout and stderr (and the sandbox's) are one pipe."""
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


@dataclass(frozen=True)
class Runsc:
    """runsc with the global flags every sandbox of this server uses."""

    executable: str
    state_dir: Path
    platform: str = "systrap"

    @classmethod
    def find(cls, name: str, state_dir: Path, platform: str) -> Runsc:
        path = shutil.which(name)
        if path is None:
            raise RunscMissingError(f"cannot start a sandboxed kernel: '{name}' was not found; {INSTALL_HINT}")
        check_version(path)
        return cls(path, state_dir, platform)

    def command(self, *args: str) -> list[str]:
        return [
            self.executable,
            f"--root={self.state_dir}",
            f"--platform={self.platform}",
            "--network=none",
            # The kernel binds its ZMQ ipc:// sockets in its bind-mounted folder.
            "--host-uds=create",
            *args,
        ]

    def start(self, container_id: str, bundle: Path) -> subprocess.Popen[bytes]:
        """Start ``runsc run`` in the foreground (see ``foreground``)."""
        return foreground(self.command("run", f"--bundle={bundle}", container_id))

    async def run(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.command(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace")

    async def kill(self, container_id: str, signum: int, *, all_processes: bool = False) -> tuple[int, str]:
        return await self.run("kill", *(["--all"] if all_processes else []), container_id, str(signum))

    async def delete(self, container_id: str) -> None:
        await self.run("delete", "--force", container_id)

    # Synchronous forms, for start-up reaping outside an event loop.
    def run_sync(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, check=False)

    def list_sync(self) -> list[str]:
        result = self.run_sync("list", "--format=json")
        if result.returncode != 0 or not result.stdout.strip():
            return []
        return [c["id"] for c in json.loads(result.stdout) or []]

    def destroy_sync(self, container_id: str) -> None:
        self.run_sync("kill", "--all", container_id, "9")
        self.run_sync("delete", "--force", container_id)


class LogTail:
    """Drains a pipe in a thread, keeping only its last ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes] | None, limit: int = 4096) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._lock = threading.Lock()
        if pipe is not None:
            threading.Thread(target=self._drain, args=(pipe,), daemon=True, name="runsc-log").start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):  # type: ignore[attr-defined]
                with self._lock:
                    self._chunks.append(chunk)
                    self._size += len(chunk)
                    while self._size - len(self._chunks[0]) >= self._limit:
                        self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._chunks)
        return data[-self._limit :].decode(errors="replace").strip()
