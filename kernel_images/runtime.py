"""The kernel's runtime: a virtual environment the sandbox mounts read-only.

It is built from a profile: ``base`` holds ipykernel and the libraries people
expect to import (numpy, pandas, matplotlib: ``runtime-requirements.txt``);
``data`` adds the scientific and data stack of a notebook
(``profiles/data.txt``). A profile also names the modules its kernels import
before they are handed out (``# preload:`` lines), the slow first imports of
its libraries. Nothing of the server's own environment is visible in the
sandbox; operators add packages to whichever profile is built with
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
PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "base"
PRELOAD_LINE = "# preload:"
MARKER = "coderemote-runtime.json"
DEFAULT_DIR = "/opt/coderemote/runtime"


def default_runtime_dir() -> str:
    return os.environ.get("CODEREMOTE_RUNTIME_DIR", DEFAULT_DIR)


class RuntimeMissingError(RuntimeError):
    """The kernel runtime has not been built."""


def built_profile(path: str | os.PathLike[str]) -> str | None:
    """The profile the runtime at ``path`` was built from; None when there is none."""
    try:
        return Runtime.load(path).profile
    except RuntimeMissingError:
        return None


def profiles() -> list[str]:
    """The profiles a runtime can be built from: ``base`` and those in ``profiles/``."""
    return [DEFAULT_PROFILE, *sorted(p.stem for p in PROFILES_DIR.glob("*.txt") if p.stem != DEFAULT_PROFILE)]


def profile_requirements(profile: str) -> Path:
    """The requirements file of ``profile`` (ValueError for an unknown one)."""
    if profile not in profiles():
        raise ValueError(f"unknown runtime profile {profile!r}: one of {', '.join(profiles())}")
    return REQUIREMENTS if profile == DEFAULT_PROFILE else PROFILES_DIR / f"{profile}.txt"


def profile_files(profile: str) -> list[Path]:
    """The requirements files ``profile`` is made of: its own and those it includes (``-r``)."""
    files: list[Path] = []
    pending = [profile_requirements(profile)]
    while pending:
        path = pending.pop(0).resolve()
        if path in files:
            continue
        files.append(path)
        for line in path.read_text().splitlines():
            if line.startswith("-r "):
                pending.append(path.parent / line[3:].strip())
    return files


def profile_preload(profile: str) -> list[str]:
    """The modules kernels of ``profile`` import before they are handed out (its ``# preload:`` lines)."""
    names: list[str] = []
    for path in profile_files(profile):
        for line in path.read_text().splitlines():
            if line.startswith(PRELOAD_LINE):
                names += [n for n in line[len(PRELOAD_LINE) :].split() if n not in names]
    return names


@dataclass(frozen=True)
class Runtime:
    """A built runtime and the host paths the sandbox must see to run it."""

    path: Path
    python: Path
    host_paths: tuple[str, ...]
    hidden_paths: tuple[str, ...]
    profile: str = DEFAULT_PROFILE
    preload: tuple[str, ...] = ()  # modules its kernels import before they are handed out

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
        return cls(
            root,
            root / "bin" / "python",
            tuple(info["host_paths"]),
            tuple(info["hidden_paths"]),
            info.get("profile", DEFAULT_PROFILE),
            tuple(info.get("preload", ())),
        )


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
    """Install packages (pip requirement specifiers or ``-r FILE``) into the runtime, whichever
    profile it was built from."""
    root = Path(path)
    info = json.loads((root / MARKER).read_text()) if (root / MARKER).is_file() else {}
    _run(root / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", *packages)
    _finish(root, info.get("profile", DEFAULT_PROFILE), info.get("requirements"))


def _finish(root: Path, profile: str, requirements: str | None) -> None:
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
        "profile": profile,
        "requirements": requirements,
        "preload": profile_preload(profile),
        "host_paths": _base_interpreter_paths(python),
        "hidden_paths": _base_site_packages(python),
    }
    (root / MARKER).write_text(json.dumps(info, indent=1))


def _requirements_digest(profile: str) -> str:
    digest = hashlib.sha256()
    for path in profile_files(profile):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(
    path: str | os.PathLike[str], *, python: str = sys.executable, force: bool = False, profile: str = DEFAULT_PROFILE
) -> Runtime:
    """Create the runtime venv and install ``profile``'s requirements into it.

    An existing runtime is kept unless ``force`` is set or it was built from
    another profile or other requirements than the profile's current files.
    """
    root = Path(path)
    wanted = _requirements_digest(profile)
    try:
        built_from = json.loads((root / MARKER).read_text()).get("requirements")
    except (OSError, ValueError):
        built_from = None
    if built_from == wanted and not force:
        return Runtime.load(root)
    # --copies: runsc resolves the symlinks of a process's argv[0], and a
    # symlinked interpreter would then not find its venv's pyvenv.cfg.
    _run(python, "-m", "venv", "--copies", "--clear", root)
    pip = (root / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check")
    _run(*pip, "-r", profile_requirements(profile))
    _finish(root, profile, wanted)
    return Runtime.load(root)
