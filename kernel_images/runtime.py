"""The kernel's runtime: a virtual environment the sandbox mounts read-only.

It holds ipykernel and the libraries people expect to import (numpy, pandas,
matplotlib: see ``runtime-requirements.txt``). Nothing of the server's own
environment is visible in the sandbox; operators add packages with
``coderemote runtime install PACKAGE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = Path(__file__).parent / "runtime-requirements.txt"
MARKER = "coderemote-runtime.json"
DEFAULT_DIR = "/opt/coderemote/runtime"


def default_runtime_dir() -> str:
    return os.environ.get("CODEREMOTE_RUNTIME_DIR", DEFAULT_DIR)


class RuntimeMissingError(RuntimeError):
    """The kernel runtime has not been built."""


@dataclass(frozen=True)
class Runtime:
    """A built runtime and the host paths the sandbox must see to run it."""

    path: Path
    python: Path
    host_paths: tuple[str, ...]
    hidden_paths: tuple[str, ...]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Runtime:
        root = Path(path)
        try:
            info = json.loads((root / MARKER).read_text())
        except (OSError, ValueError) as e:
            raise RuntimeMissingError(
                f"the sandboxed kernel's runtime is missing at {root}: "
                "run `coderemote runtime build` (it installs ipykernel, numpy, pandas, matplotlib)"
            ) from e
        return cls(root, root / "bin" / "python", tuple(info["host_paths"]), tuple(info["hidden_paths"]))


def _base_interpreter_paths(python: Path) -> list[str]:
    """Host paths of the interpreter the venv is built on (read-only in the sandbox)."""
    probe = "import json, sys, sysconfig; print(json.dumps([sys.base_prefix, sysconfig.get_path('stdlib')]))"
    base_prefix, stdlib = json.loads(subprocess.check_output([str(python), "-c", probe], text=True))
    if os.path.realpath(base_prefix) in ("/usr", "/usr/local", "/"):
        # A system interpreter: show only its stdlib, not /usr/bin.
        return [stdlib]
    return [base_prefix]


def _base_site_packages(python: Path) -> list[str]:
    """The base interpreter's own site-packages: the server's packages, hidden from the sandbox."""
    probe = (
        "import json, sys, sysconfig;"
        "print(json.dumps(sorted({sysconfig.get_path(k, vars={'base': sys.base_prefix, 'platbase': sys.base_prefix})"
        " for k in ('purelib', 'platlib')})))"
    )
    return [p for p in json.loads(subprocess.check_output([str(python), "-c", probe], text=True)) if os.path.isdir(p)]


def _run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, env=env)


def install(path: str | os.PathLike[str], *packages: str) -> None:
    """Install packages (pip requirement specifiers or ``-r FILE``) into the runtime."""
    root = Path(path)
    _run(root / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", *packages)
    _finish(root)


def _finish(root: Path) -> None:
    python = root / "bin" / "python"
    # Prebuild matplotlib's font cache; the launcher copies it into the
    # sandbox's writable /tmp so kernels skip the font scan.
    mpl_dir = root / "share" / "coderemote" / "matplotlib"
    mpl_dir.mkdir(parents=True, exist_ok=True)
    env = {"MPLCONFIGDIR": str(mpl_dir), "PATH": os.environ.get("PATH", "")}
    _run(python, "-c", "import matplotlib.font_manager", env=env)
    # The runtime is read-only in the sandbox: compile everything now.
    _run(python, "-m", "compileall", "-q", "-j0", root / "lib")
    info = {
        "requirements": _requirements_digest(),
        "host_paths": _base_interpreter_paths(python),
        "hidden_paths": _base_site_packages(python),
    }
    (root / MARKER).write_text(json.dumps(info, indent=1))


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def build(path: str | os.PathLike[str], *, python: str = sys.executable, force: bool = False) -> Runtime:
    """Create the runtime venv and install the default requirements into it.

    An existing runtime is kept unless ``force`` is set or it was built from
    other requirements than the current ``runtime-requirements.txt``.
    """
    root = Path(path)
    try:
        built_from = json.loads((root / MARKER).read_text()).get("requirements")
    except (OSError, ValueError):
        built_from = None
    if built_from == _requirements_digest() and not force:
        return Runtime.load(root)
    # --copies: runsc resolves the symlinks of a process's argv[0], and a
    # symlinked interpreter would then not find its venv's pyvenv.cfg.
    _run(python, "-m", "venv", "--copies", "--clear", root)
    install(root, "-r", str(REQUIREMENTS))
    return Runtime.load(root)
