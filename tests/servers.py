"""`jupyter coderemote` processes started by tests: a free loopback port, token
login, and a snippet database of their own.

A test server keeps its embedded PostgreSQL in a folder of its own, never in
the user's data dir. The folder lies outside pytest's tmp tree because the
embedded server runs as a user of its own, and pytest makes its tree private
again whenever a run starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from snippets.postgres import EmbeddedPostgres


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_data_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="coderemote-data-"))
    path.chmod(0o755)
    return path


def release_data_dir(path: Path) -> None:
    """Stop the embedded PostgreSQL a stopped (or killed) server left running, then remove the folder."""
    pgdata = path / "postgres"
    if (pgdata / "postmaster.pid").exists():
        # Joining and letting go as its last user stops it (dead users are forgotten).
        server = EmbeddedPostgres(pgdata)
        server.start()
        server.stop()
    shutil.rmtree(path, ignore_errors=True)


# Tests run far more code per minute than one person: no rate limits unless a test sets them.
NO_RATE_LIMITS = ("--RateLimiter.executions_per_minute", "--RateLimiter.websocket_executions_per_minute")


class CodeRemoteServer:
    """`jupyter coderemote` on a free port; returns once its health endpoint answers.

    ``command`` runs another Jupyter application with the extension instead,
    e.g. ``("jupyter", "lab")`` for lab mode.
    """

    def __init__(
        self,
        workdir: Path,
        *flags: str,
        token: str,
        env: dict[str, str] | None = None,
        start_timeout: float = 90,
        command: tuple[str, ...] = ("jupyter", "coderemote"),
    ) -> None:
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.data_dir = private_data_dir()
        self.proc = subprocess.Popen(
            [
                *command,
                f"--port={self.port}",
                f"--IdentityProvider.token={token}",
                f"--SnippetStore.data_dir={self.data_dir}",
                *[f"{name}=0" for name in NO_RATE_LIMITS if not any(f.startswith(f"{name}=") for f in flags)],
                *flags,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"), **(env or {})},
            cwd=workdir,
        )
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "api/coderemote/health", timeout=10).close()
                return
            except urllib.error.HTTPError as e:
                if e.code == 404:  # the server runs, without the extension
                    self.stop()
                    raise RuntimeError(f"the extension did not load: {self.log_path.read_text()}") from None
                time.sleep(0.2)
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server did not start: {self.log_path.read_text()}") from None
                time.sleep(0.2)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        bearer: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body) of an authenticated request: with Jupyter's
        token, or with ``bearer`` (a JWT) as ``Authorization: Bearer``; the answer's
        headers are left in ``last_headers``."""
        data = None if body is None else json.dumps(body).encode()
        auth = f"Bearer {bearer}" if bearer is not None else f"token {self.token}"
        sent = {"Authorization": auth, **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=90) as response:
                self.last_headers = dict(response.headers)
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            self.last_headers = dict(e.headers)
            return e.code, json.loads(e.read() or b"null")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop with ``sig``; on SIGTERM the server stops its sandboxes (the service has no shutdown route)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()
        release_data_dir(self.data_dir)


def session_kernel(serverapp: Any, owner: str, session_id: str) -> Any:
    """The KernelManager behind ``owner``'s execution session ``session_id``, or None
    (for tests that act on a session's sandbox from outside)."""
    execution = serverapp.web_app.settings["coderemote_execution"]
    session = execution._sessions.get((owner, session_id))
    if session is None or session.sandbox is None:
        return None
    return execution.pool.kernel_manager.get_kernel(session.sandbox.kernel_id)
