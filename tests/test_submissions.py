"""Submissions (``api/coderemote/submissions``): queued in the embedded PostgreSQL
(procrastinate's queue), run by the server's worker in real gVisor sandboxes,
read back by their owner only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from kernel_gateway_ext.ratelimit import async_engine
from kernel_gateway_ext.submissions import STOP_WAIT_S, Submissions
from snippets.store import SnippetStore, sqlalchemy_url
from tests.jwt_helpers import claims, hs256_token
from tests.servers import CodeRemoteServer
from tests.test_rate_limits import jwt_server, token

# Made when the module is imported: valid for longer than the whole suite runs.
ALICE, BOB = (hs256_token(claims(user, exp_in=4 * 3600)) for user in ("alice", "bob"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = jwt_server(
        tmp_path_factory.mktemp("submissions"),
        "--Submissions.max_queued_per_user=25",
        "--RateLimiter.executions_per_minute=1000",
    )
    wait_for_queue(server)
    yield server
    server.stop()


def wait_for_queue(server: CodeRemoteServer) -> None:
    """Until the server's queue is open (it opens once the server runs: 503 until then)."""
    deadline = time.monotonic() + 60
    while server.request("GET", "api/coderemote/submissions", bearer=ALICE)[0] == 503:
        assert time.monotonic() < deadline, "the submission queue did not open"
        time.sleep(0.2)


def submit(server: CodeRemoteServer, body: dict[str, Any], bearer: str = ALICE, **headers: str) -> tuple[int, Any]:
    return server.request("POST", "api/coderemote/submissions", body, bearer=bearer, headers=headers or None)


def finished(server: CodeRemoteServer, submission_id: str, bearer: str = ALICE, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, submission = server.request("GET", f"api/coderemote/submissions/{submission_id}", bearer=bearer)
        assert status == 200, submission
        if submission["status"] in ("done", "cancelled"):
            return submission
        assert time.monotonic() < deadline, submission
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("code", "timeout_s", "status"),
    [
        ("print(6 * 7)", None, "ok"),
        ("1 / 0", None, "error"),
        ("while True:\n    pass", 1, "timeout"),
        ("blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))", 30, "memory_limit"),
    ],
)
def test_a_submission_is_queued_run_and_read_back(
    server: CodeRemoteServer, code: str, timeout_s: Any, status: str
) -> None:
    code_status, queued = submit(server, {"code": code, "timeout_s": timeout_s})
    assert code_status == 202 and queued["status"] == "queued", queued
    submission = finished(server, queued["id"])
    assert submission["status"] == "done" and submission["result"]["status"] == status, submission
    assert submission["created_at"] <= submission["started_at"] <= submission["finished_at"]
    if status == "ok":
        assert submission["result"]["stdout"] == "42\n"
        assert submission["result"]["usage"]["wall_ms"] > 0
    if status == "error":
        assert submission["result"]["error"]["ename"] == "ZeroDivisionError"


def test_wait_answers_like_execute(server: CodeRemoteServer) -> None:
    status, result = server.request(
        "POST", "api/coderemote/submissions?wait=true", {"code": "print(input()[::-1])", "stdin": "abc"}, bearer=ALICE
    )
    assert status == 200 and result["status"] == "ok" and result["stdout"] == "cba\n", result


def test_a_submission_takes_files_in_and_gives_files_back(server: CodeRemoteServer) -> None:
    body = {
        "code": "open('out.txt', 'w').write(open('in.txt').read()[::-1])",
        "files": [{"path": "in.txt", "content": "abc"}],
        "return_files": ["out.txt"],
    }
    status, queued = submit(server, body)
    assert status == 202, queued
    result = finished(server, queued["id"])["result"]
    assert result["files"] == [{"path": "out.txt", "encoding": "utf8", "content": "cba", "size": 3}], result
    assert submit(server, {"code": "1", "files": [{"path": "../x", "content": ""}]})[0] == 400
    assert submit(server, {"code": "1", "files": [{"path": "x", "content": "\x00"}]})[0] == 400  # NUL: base64


def test_a_batch_of_twenty_runs_every_one(server: CodeRemoteServer) -> None:
    bodies = [{"code": f"print({i} * {i})"} for i in range(20)]
    status, batch = server.request("POST", "api/coderemote/submissions/batch", {"submissions": bodies}, bearer=ALICE)
    assert status == 202 and len(batch["submissions"]) == 20, batch
    outputs = [finished(server, s["id"])["result"]["stdout"] for s in batch["submissions"]]
    assert outputs == [f"{i * i}\n" for i in range(20)]
    too_many = {"submissions": bodies + [{"code": "1"}]}
    assert server.request("POST", "api/coderemote/submissions/batch", too_many, bearer=ALICE)[0] == 400


def test_cancel_a_running_submission(server: CodeRemoteServer) -> None:
    status, queued = submit(
        server, {"code": "import time\nprint('started', flush=True)\ntime.sleep(25)", "timeout_s": 30}
    )
    assert status == 202
    deadline = time.monotonic() + 60
    while server.request("GET", f"api/coderemote/submissions/{queued['id']}", bearer=ALICE)[1]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    status, cancelled = server.request("DELETE", f"api/coderemote/submissions/{queued['id']}", bearer=ALICE)
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["result"] is None, cancelled
    # The run stopped with it: a submission after it runs at once, not 25 s later.
    status, result = server.request("POST", "api/coderemote/submissions?wait=true", {"code": "print(1)"}, bearer=ALICE)
    assert status == 200 and result["stdout"] == "1\n" and time.monotonic() - started < 15
    assert finished(server, queued["id"])["status"] == "cancelled"
    assert server.request("DELETE", f"api/coderemote/submissions/{queued['id']}", bearer=ALICE)[0] == 409


def test_the_same_idempotency_key_gives_the_same_submission(server: CodeRemoteServer) -> None:
    first = submit(server, {"code": "print('once')"}, **{"Idempotency-Key": "order-17"})
    again = submit(server, {"code": "print('once')"}, **{"Idempotency-Key": "order-17"})
    assert first[0] == 202 and again[0] == 200 and again[1]["id"] == first[1]["id"]
    other = submit(server, {"code": "print('twice')"}, **{"Idempotency-Key": "order-17"})
    assert other[0] == 409
    # Keys are per user: bob's "order-17" is his own.
    bobs = submit(server, {"code": "print('once')"}, BOB, **{"Idempotency-Key": "order-17"})
    assert bobs[0] == 202 and bobs[1]["id"] != first[1]["id"]


def test_each_user_sees_and_cancels_only_their_own(server: CodeRemoteServer) -> None:
    status, queued = submit(server, {"code": "print('alice')"})
    assert status == 202
    assert server.request("GET", f"api/coderemote/submissions/{queued['id']}", bearer=BOB)[0] == 404
    assert server.request("DELETE", f"api/coderemote/submissions/{queued['id']}", bearer=BOB)[0] == 404
    assert server.request("GET", "api/coderemote/submissions/not-an-id", bearer=ALICE)[0] == 404
    bobs = server.request("GET", "api/coderemote/submissions?limit=100", bearer=BOB)[1]["submissions"]
    assert queued["id"] not in {s["id"] for s in bobs}
    alices = server.request("GET", "api/coderemote/submissions?limit=100", bearer=ALICE)[1]["submissions"]
    assert queued["id"] in {s["id"] for s in alices}
    assert finished(server, queued["id"])["result"]["stdout"] == "alice\n"


def test_bad_submissions_are_refused_with_a_reason(server: CodeRemoteServer) -> None:
    for body, expected in [
        ({"code": "1", "session_id": "s"}, 400),
        ({"code": 1}, 400),
        ({"code": "1", "timeout_s": 1000}, 400),
        ({"code": "1", "extra": True}, 400),
        ({"code": "x" * (70 * 1024)}, 413),
    ]:
        status, answer = submit(server, body)
        assert status == expected and isinstance(answer["message"], str), (body, answer)
    assert server.request("GET", "api/coderemote/submissions?status=lost", bearer=ALICE)[0] == 400


def test_past_the_queued_limit_a_user_gets_429_and_others_still_run(server: CodeRemoteServer) -> None:
    """Carol fills her share of the queue; dave's first submission still runs
    before her backlog (its priority is that of a user with none queued)."""
    carol, dave = token("carol"), token("dave")
    slow = {"code": "import time; time.sleep(0.5)"}
    status, batch = server.request(
        "POST", "api/coderemote/submissions/batch", {"submissions": [slow] * 20}, bearer=carol
    )
    assert status == 202
    status, more = server.request(
        "POST", "api/coderemote/submissions/batch", {"submissions": [slow] * 10}, bearer=carol
    )
    assert status == 429 and "Retry-After" in server.last_headers, more
    status, daves = submit(server, {"code": "print('dave')"}, dave)
    assert status == 202
    dave_done = finished(server, daves["id"], dave)["finished_at"]
    carols_last = finished(server, batch["submissions"][-1]["id"], carol)["finished_at"]
    assert dave_done < carols_last


def test_the_command_line_submits_a_file(server: CodeRemoteServer, tmp_path: Any) -> None:
    """``coderemote submit`` as a user runs it: the URL and token from the environment or flags."""

    def cli(*args: str, token: str = ALICE) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CODEREMOTE_URL": server.url, "CODEREMOTE_TOKEN": token}
        command = [sys.executable, "-m", "kernel_gateway_ext.cli", "submit", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    (tmp_path / "twice.py").write_text("print(input() * 2)\n")
    (tmp_path / "in.txt").write_text("ab\n")
    (tmp_path / "bad.py").write_text("1 / 0\n")
    done = cli(str(tmp_path / "twice.py"), "--wait", "--stdin", str(tmp_path / "in.txt"))
    assert (done.returncode, done.stdout) == (0, "abab\n"), done
    failed = cli(str(tmp_path / "bad.py"), "--wait")
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr, failed
    queued = cli(str(tmp_path / "bad.py"), "--url", server.url, "--token", BOB)
    assert queued.returncode == 0, queued
    submission = json.loads(queued.stdout)
    assert submission["status"] == "queued"
    assert finished(server, submission["id"], bearer=BOB)["result"]["status"] == "error"
    refused = cli(str(tmp_path / "bad.py"), "--wait", token="not-a-token")
    assert refused.returncode == 4 and "401" in refused.stderr, refused


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_server_that_goes_away_loses_no_submission(tmp_path: Any, fresh_database_url: str, sig: int) -> None:
    """Stop the server (SIGKILL, or SIGTERM) while it runs two of ten slow
    submissions; a new server on the same database runs all ten: the waiting
    ones as queued, the running ones again from the start, which their
    ``attempts`` tell (a stopping server queues them again itself; a killed
    one's are queued again once its worker has been silent for stalled_after)."""
    flags = (
        f"--SnippetStore.database_url={fresh_database_url}",
        "--Submissions.workers=2",
        "--Submissions.stalled_after=6",
        "--Submissions.stalled_check_interval=1",
        "--Submissions.shutdown_grace=1",  # less than a run: a stopping server queues its runs again
    )
    (tmp_path / "first").mkdir()
    first = jwt_server(tmp_path / "first", *flags)
    try:
        wait_for_queue(first)
        deadline = time.monotonic() + 60
        slow = {"code": "import time\ntime.sleep(3)\nprint('slept')", "timeout_s": 20}
        ids = [submit(first, slow)[1]["id"] for _ in range(10)]
        while sum(first.request("GET", f"api/coderemote/submissions/{i}", bearer=ALICE)[1]["status"] == "running"
                  for i in ids) < 2:  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        first.stop(sig)
    killed_at = datetime.now(timezone.utc)
    (tmp_path / "second").mkdir()
    second = jwt_server(tmp_path / "second", *flags)
    try:
        wait_for_queue(second)
        results = [finished(second, i, timeout=120) for i in ids]
        assert [r["status"] for r in results] == ["done"] * 10, results
        assert [r["result"]["stdout"] for r in results] == ["slept\n"] * 10, results
        # The two that were running when the server died ran again from the start.
        assert all(datetime.fromisoformat(r["started_at"]) > killed_at for r in results), results
        assert sorted(r["attempts"] for r in results) == [1] * 8 + [2] * 2, results
    finally:
        second.stop()


async def test_a_queue_stops_in_time_at_any_moment_and_with_its_database_gone(
    jp_serverapp: Any, fresh_database_url: str, postgres_uri: str, tmp_path: Any
) -> None:
    """A queue stopped at any moment of its opening stops within its bound, also
    when a database call takes the stop's cancellation for its own error (a stop
    once waited for ever then), and so does one whose database was dropped under
    it (its worker cannot sign off)."""

    async def stops_in_time(queue: Submissions) -> None:  # not wait_for: the stop is not to be cancelled
        done, _ = await asyncio.wait([asyncio.ensure_future(queue.stop())], timeout=STOP_WAIT_S + 5)
        assert done, "the queue did not stop in time"

    execution = jp_serverapp.web_app.settings["coderemote_execution"]
    engine = jp_serverapp.web_app.settings["coderemote_submissions"].engine
    for delay_ms in [None, *range(0, 30, 2)]:  # while the queue opens, then in its first checks
        queue = Submissions(engine=engine, execution=execution)
        queue.start()
        if delay_ms is not None:
            await queue._opening  # open
            await asyncio.sleep(delay_ms / 1000)
        await stops_in_time(queue)
        assert not queue.available and queue._tasks == []

    async def a_query_that_takes_the_cancellation() -> None:  # as a database driver may turn it into its error
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("the query was cancelled") from None

    queue = Submissions(engine=engine, execution=execution)
    queue._requeue_stalled = a_query_that_takes_the_cancellation  # type: ignore[method-assign]
    queue.start()
    await queue._opening
    await stops_in_time(queue)

    store = SnippetStore(database_url=fresh_database_url, data_dir=str(tmp_path / "unused"))
    store.start()  # its migrations make the queue's tables
    queue = Submissions(engine=async_engine(store.engine), execution=execution)
    queue.start()
    await queue._opening
    assert queue.available, queue.start_error
    with create_engine(sqlalchemy_url(postgres_uri), isolation_level="AUTOCOMMIT", poolclass=NullPool).connect() as c:
        c.execute(text(f'DROP DATABASE "{make_url(fresh_database_url).database}" WITH (FORCE)'))
    await stops_in_time(queue)
    assert not queue.available
    store.stop()
