"""Submissions (``api/coderemote/submissions``): queued in the embedded PostgreSQL
(procrastinate's queue), run by the server's worker in real gVisor sandboxes,
read back by their owner only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import CodeRemoteServer
from tests.test_rate_limits import jwt_server, token

ALICE, BOB = token("alice"), token("bob")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = jwt_server(
        tmp_path_factory.mktemp("submissions"),
        "--Submissions.max_queued_per_user=25",
        "--RateLimiter.executions_per_minute=1000",
    )
    deadline = time.monotonic() + 60
    while server.request("GET", "api/coderemote/submissions", bearer=ALICE)[0] == 503:  # the queue opens
        assert time.monotonic() < deadline, "the submission queue did not open"
        time.sleep(0.2)
    yield server
    server.stop()


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
