"""Import guard: refuse imports of blocked modules made by the user's code.

Defence in depth, not the boundary (gVisor is). The guard judges who asks for
a module: code loaded from the kernel's read-only runtime (numpy, matplotlib,
ipykernel, the standard library) may import what it needs internally, while
code typed by the user (cells, ``exec`` strings, files written to /tmp) may not
import a blocked module, whether or not it is already loaded.
"""

from __future__ import annotations

import builtins
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from types import FrameType, ModuleType
from typing import Any

DEFAULT_BLOCKED = (
    # processes, and signals that would let code ignore an interrupt
    "subprocess _posixsubprocess multiprocessing _multiprocessing pty posix "
    "signal _signal "
    # network
    "socket _socket ssl _ssl urllib.request http.client ftplib smtplib "
    "telnetlib xmlrpc.client "
    # foreign functions
    "ctypes _ctypes cffi"
)

# ``os`` attributes that start processes or signal them. ``os`` itself is needed
# everywhere, so these are wrapped to refuse calls from the user's code.
OS_BLOCKED = (
    "system popen fork forkpty vfork execl execle execlp execlpe execv execve execvp "
    "execvpe spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe "
    "posix_spawn posix_spawnp kill killpg"
).split()


_MACHINERY = ("<frozen importlib", __file__, os.path.join(os.path.dirname(importlib.__file__), ""))


class ImportBlockedError(ImportError):
    """Raised when the user's code imports a module this sandbox does not allow."""


def _message(name: str) -> str:
    return f"import of '{name}' is not allowed in this sandbox"


class ImportGuard:
    """Decides, from the calling frame, whether an import is allowed."""

    def __init__(self, blocked: Iterable[str], trusted_prefixes: Iterable[str]) -> None:
        self.blocked = frozenset(blocked)
        self.trusted = tuple(os.path.join(os.path.realpath(p), "") for p in trusted_prefixes)

    def is_blocked(self, name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[: i + 1]) in self.blocked for i in range(len(parts)))

    def is_user_frame(self, frame: FrameType | None) -> bool:
        # Skip the import machinery itself (and importlib's helpers such as
        # importlib.util.find_spec); the first frame beyond it asked for the module.
        while frame is not None and frame.f_code.co_filename.startswith(_MACHINERY):
            frame = frame.f_back
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        return not (os.path.isabs(filename) and filename.startswith(self.trusted) and os.path.exists(filename))

    def check(self, name: str, frame: FrameType | None) -> None:
        if self.is_blocked(name) and self.is_user_frame(frame):
            raise ImportBlockedError(_message(name), name=name)


class _BlockingFinder:
    """Meta-path finder that refuses blocked modules not yet loaded."""

    def __init__(self, guard: ImportGuard) -> None:
        self.guard = guard

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        self.guard.check(fullname, sys._getframe(1))
        return None


def _guarded_os_function(guard: ImportGuard, name: str) -> Callable[..., Any]:
    original = getattr(os, name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if guard.is_user_frame(sys._getframe(1)):
            raise PermissionError(f"os.{name} is not allowed in this sandbox")
        return original(*args, **kwargs)

    guarded.__name__ = name
    return guarded


# The message of a KeyboardInterrupt that came while the user's code imported a module:
# the service reads it to say why a run timed out (execution.timeout_hint).
INTERRUPTED_IMPORT = "interrupted while importing {}"


def _name_the_import(guard: ImportGuard, error: KeyboardInterrupt, name: str, frame: FrameType | None) -> None:
    """Say in ``error`` which of the user's imports it interrupted (the innermost one
    the user's code asked for; a library's own imports are not named)."""
    if name and not error.args and guard.is_user_frame(frame):
        error.args = (INTERRUPTED_IMPORT.format(name),)


def install(blocked: Iterable[str], trusted_prefixes: Iterable[str]) -> ImportGuard:
    """Install the guard in this interpreter and return it."""
    guard = ImportGuard(blocked, trusted_prefixes)
    sys.meta_path.insert(0, _BlockingFinder(guard))

    # Already-loaded modules never reach a finder: judge every import statement
    # and importlib.import_module call as well.
    original_import = builtins.__import__
    original_import_module = importlib.import_module

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> ModuleType:
        if level == 0:
            guard.check(name, sys._getframe(1))
            for item in fromlist or ():
                if isinstance(item, str) and item != "*":
                    guard.check(f"{name}.{item}", sys._getframe(1))
        try:
            return original_import(name, globals, locals, fromlist, level)
        except KeyboardInterrupt as e:  # the run's timeout, or Interrupt, came during an import
            _name_the_import(guard, e, name if level == 0 else "", sys._getframe(1))
            raise

    def guarded_import_module(name: str, package: str | None = None) -> ModuleType:
        if not name.startswith("."):
            guard.check(name, sys._getframe(1))
        try:
            return original_import_module(name, package)
        except KeyboardInterrupt as e:
            _name_the_import(guard, e, "" if name.startswith(".") else name, sys._getframe(1))
            raise

    builtins.__import__ = guarded_import
    importlib.__import__ = guarded_import
    importlib.import_module = guarded_import_module
    for name in OS_BLOCKED:
        if hasattr(os, name):
            setattr(os, name, _guarded_os_function(guard, name))
    return guard
