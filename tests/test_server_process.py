"""`jupyter coderemote` and `coderemote run` as a user starts them: real
processes, real sandboxes. Includes killing the server with sandboxes running
and checking that the next start reaps them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner import GVisorProvisioner
from provisioner.cgroup import MemoryCgroup, group_for
from tests.conftest import running_sandboxes
from tests.datadir import private_data_dir, release_data_dir

TOKEN = "test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(tmp_path / f"server-{self.port}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
        self.data_dir = private_data_dir()
        self.proc = subprocess.Popen(
            [
                "jupyter",
                "coderemote",
                f"--port={self.port}",
                f"--IdentityProvider.token={TOKEN}",
                f"--SnippetStore.data_dir={self.data_dir}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.request("GET", "api/coderemote/health")
                return
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (tmp_path / f"server-{self.port}.log").read_text()
                    raise RuntimeError(f"server did not start: {log}") from None
                time.sleep(0.2)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=90) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        release_data_dir(self.data_dir)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


def test_jupyter_coderemote_serves_page_and_api(server: Server) -> None:
    status, health = server.request("GET", "api/coderemote/health")
    assert (status, health["status"]) == (200, "ok")
    status, result = server.request("POST", "api/coderemote/execute", {"code": "print(sum(range(10)))"})
    assert (status, result["status"], result["stdout"]) == (200, "ok", "45\n")
    status, specs = server.request("GET", "api/kernelspecs")
    assert specs["default"] == "python3-sandboxed"
    with urllib.request.urlopen(
        urllib.request.Request(server.url + "coderemote/", headers={"Authorization": f"token {TOKEN}"})
    ) as page:
        assert b"Code Remote" in page.read()


def test_killed_server_leaves_sandboxes_that_the_next_start_reaps(tmp_path: Path) -> None:
    first = Server(tmp_path)
    try:
        status, result = first.request("POST", "api/coderemote/execute", {"code": "x = 1", "session_id": "keep"})
        assert (status, result["status"]) == (200, "ok")
        orphans = running_sandboxes(owner_pid=first.proc.pid)  # the session's, and the warm pool's
        assert orphans
    finally:
        first.stop(signal.SIGKILL)  # no chance to clean up
    assert set(orphans) <= set(running_sandboxes())

    second = Server(tmp_path)
    state_dir = GVisorProvisioner().state_dir
    try:
        assert not set(orphans) & set(running_sandboxes())
        for orphan in orphans:
            assert not (Path(state_dir) / "kernels" / orphan).exists()
            assert not MemoryCgroup(orphan, group_for(state_dir)).path.exists()
        status, result = second.request("POST", "api/coderemote/execute", {"code": "print('after')"})
        assert (status, result["stdout"]) == (200, "after\n")
    finally:
        second.stop()


def run_cli(tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "prog.py"
    path.write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "kernel_gateway_ext.cli", "run", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_cli_run_exit_codes(tmp_path: Path) -> None:
    ok = run_cli(tmp_path, "print('hello')")
    assert (ok.returncode, ok.stdout) == (0, "hello\n")
    error = run_cli(tmp_path, "raise ValueError('bad')")
    assert error.returncode == 1 and "ValueError: bad" in error.stderr
    timeout = run_cli(tmp_path, "while True: pass", "--timeout", "1")
    assert timeout.returncode == 2 and "timeout" in timeout.stderr
    (tmp_path / "in.txt").write_text("world\n")
    stdin = run_cli(tmp_path, "print('hello', input())", "--stdin", str(tmp_path / "in.txt"))
    assert (stdin.returncode, stdin.stdout) == (0, "hello world\n")
    assert not list(tmp_path.glob("kernel-*.json"))  # connection files never land in the cwd


def test_cli_streams_output_as_it_comes(tmp_path: Path) -> None:
    path = tmp_path / "slow.py"
    path.write_text("import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('last')")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel_gateway_ext.cli", "run", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    seen_first = time.monotonic()
    rest = proc.stdout.read()
    finished = time.monotonic()
    assert proc.wait(30) == 0
    assert (first, rest) == ("first\n", "last\n")
    assert finished - seen_first > 2  # 'first' was printed while the program still slept
