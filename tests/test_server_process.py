"""`jupyter coderemote` and `coderemote run` as a user starts them: real
processes, real sandboxes. Includes killing the server with sandboxes running
and checking that the next start reaps them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import GVisorProvisioner
from provisioner.cgroup import MemoryCgroup, group_for
from tests.conftest import running_sandboxes
from tests.servers import CodeRemoteServer

TOKEN = "test-token"


def start_server(tmp_path: Path) -> CodeRemoteServer:
    return CodeRemoteServer(tmp_path, token=TOKEN, start_timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CodeRemoteServer]:
    s = start_server(tmp_path)
    yield s
    s.stop(signal.SIGTERM)


def test_jupyter_coderemote_serves_page_and_api(server: CodeRemoteServer) -> None:
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
    first = start_server(tmp_path)
    try:
        status, result = first.request("POST", "api/coderemote/execute", {"code": "x = 1", "session_id": "keep"})
        assert (status, result["status"]) == (200, "ok")
        orphans = running_sandboxes(owner_pid=first.proc.pid)  # the session's, and the warm pool's
        assert orphans
    finally:
        first.stop(signal.SIGKILL)  # no chance to clean up
    assert set(orphans) <= set(running_sandboxes())

    second = start_server(tmp_path)
    state_dir = GVisorProvisioner().state_dir
    try:
        assert not set(orphans) & set(running_sandboxes())
        for orphan in orphans:
            assert not (Path(state_dir) / "kernels" / orphan).exists()
            assert not MemoryCgroup(orphan, group_for(state_dir)).path.exists()
        status, result = second.request("POST", "api/coderemote/execute", {"code": "print('after')"})
        assert (status, result["stdout"]) == (200, "after\n")
    finally:
        second.stop(signal.SIGTERM)


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
