"""Per-user rate limits on a real `jupyter coderemote` (JWT users, gVisor sandboxes,
embedded PostgreSQL), and the limiter's storages against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from sqlalchemy import create_engine
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from kernel_gateway_ext.ratelimit import RateLimited, RateLimiter, async_engine
from snippets import migrate
from snippets.store import create_database, sqlalchemy_url
from tests.jwt_helpers import TEST_SECRET, claims, hs256_token
from tests.servers import CodeRemoteServer

WINDOW = 6  # seconds: the limits count per this window here, so a test waits only a few seconds
LIMIT = 3
WS_LIMIT = 2


def token(user: str, *groups: str) -> str:
    return hs256_token(claims(user, groups=list(groups) or None))


def raw_request(
    server: CodeRemoteServer, method: str, path: str, body: Any = None, *, bearer: str | None = None
) -> tuple[int, Message, Any]:
    """(status, headers (case-insensitive), decoded JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    auth = f"Bearer {bearer}" if bearer is not None else f"token {server.token}"
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=90) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def jwt_server(workdir: Path, *flags: str) -> CodeRemoteServer:
    return CodeRemoteServer(
        workdir,
        f"--JWTIdentityProvider.secret={TEST_SECRET}",
        "--JWTIdentityProvider.admin_groups=admins",
        "--KernelPool.size=1",
        *flags,
        token="unused",
    )


# -- the websocket -----------------------------------------------------------------------


async def open_channels(
    server: CodeRemoteServer, kernel_id: str, bearer: str | None, session_id: str | None = None
) -> WebSocketClientConnection:
    url = server.url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    if session_id is not None:  # the client's session: a reconnection with the same one resumes it
        url += f"?session_id={session_id}"
    auth = f"Bearer {bearer}" if bearer is not None else f"token {server.token}"
    return await websocket_connect(HTTPRequest(url, headers={"Authorization": auth}))


async def run_cell(ws: WebSocketClientConnection, code: str, timeout: float = 60) -> dict[str, Any]:
    """Send one execute_request; the messages answering it, by type, once the kernel is idle again."""
    msg = Session().msg(
        "execute_request",
        {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
    )
    msg["channel"] = "shell"
    msg_id = msg["header"]["msg_id"]
    await ws.write_message(json.dumps(msg, default=json_default))
    seen: dict[str, Any] = {"msg_id": msg_id, "iopub": [], "reply": None}
    deadline = time.monotonic() + timeout
    idle = False
    while not (idle and seen["reply"] is not None):
        frame = await asyncio.wait_for(ws.read_message(), timeout=max(0.1, deadline - time.monotonic()))
        assert frame is not None, "the websocket closed"
        answer = json.loads(frame)
        if answer.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if answer["channel"] == "shell" and answer["msg_type"] == "execute_reply":
            seen["reply"] = answer
        elif answer["channel"] == "iopub":
            seen["iopub"].append(answer)
            if answer["msg_type"] == "status" and answer["content"]["execution_state"] == "idle":
                idle = True
    return seen


# -- one server with small limits ------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = jwt_server(
        tmp_path_factory.mktemp("ratelimit"),
        f"--RateLimiter.executions_per_minute={LIMIT}",
        f"--RateLimiter.websocket_executions_per_minute={WS_LIMIT}",
        f"--RateLimiter.window_seconds={WINDOW}",
    )
    yield server
    server.stop()


def execute(server: CodeRemoteServer, user: str, session: str) -> tuple[int, Message, Any]:
    return raw_request(
        server, "POST", "api/coderemote/execute", {"code": "print(6 * 7)", "session_id": session}, bearer=token(user)
    )


def test_limit_boundaries_and_window(limited: CodeRemoteServer) -> None:
    session = uuid.uuid4().hex
    # Warm the session outside the window under test: its first run starts a kernel.
    first = execute(limited, "alice", session)
    assert first[0] == 200, first
    time.sleep(WINDOW + 0.5)
    started = time.monotonic()
    for _ in range(LIMIT):
        status, _, body = execute(limited, "alice", session)
        assert status == 200, body
        assert body["stdout"] == "42\n"
    status, headers, body = execute(limited, "alice", session)
    assert time.monotonic() - started < WINDOW, "the runs took longer than the window: the test proves nothing"
    assert status == 429, body
    assert body["reason"] == "rate_limited"
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= WINDOW
    assert headers["Retry-After"] == str(body["retry_after"])
    assert headers["RateLimit-Limit"] == str(LIMIT)
    assert headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["RateLimit-Reset"]) <= WINDOW
    assert headers["Content-Type"].startswith("application/json")
    assert "retry" in body["message"]
    # Once the oldest hit leaves the window, one more run is allowed (and only one).
    time.sleep(body["retry_after"] + 0.2)
    status, _, body = execute(limited, "alice", session)
    assert status == 200, body


def test_users_have_their_own_limits(limited: CodeRemoteServer) -> None:
    alice, bob = uuid.uuid4().hex, uuid.uuid4().hex
    time.sleep(WINDOW + 0.5)  # a fresh window for alice after the test before
    statuses = [execute(limited, "alice", alice)[0] for _ in range(LIMIT + 1)]
    assert statuses == [200] * LIMIT + [429]
    bob_runs = [execute(limited, "bob", bob) for _ in range(LIMIT)]
    assert [status for status, _, _ in bob_runs] == [200] * LIMIT, bob_runs[-1]
    assert execute(limited, "alice", alice)[0] == 429  # still over, bob's runs changed nothing


def test_refused_request_spends_nothing(limited: CodeRemoteServer) -> None:
    """A request the service refuses (400) does not count against the limit."""
    user = "dora"
    for _ in range(LIMIT + 2):
        status, _, body = raw_request(
            limited, "POST", "api/coderemote/execute", {"code": "1", "timeout_s": -1}, bearer=token(user)
        )
        assert status == 400, body
    assert execute(limited, user, uuid.uuid4().hex)[0] == 200


def test_analysis_with_timed_runs_counts(limited: CodeRemoteServer) -> None:
    user = "erin"
    code = "def f(n):\n    return sum(range(n))\n"
    for _ in range(LIMIT):
        assert execute(limited, user, "erin-session")[0] == 200
    timed = raw_request(
        limited, "POST", "api/coderemote/analyze", {"code": code, "methods": ["empirical"]}, bearer=token(user)
    )
    assert timed[0] == 429, timed
    assert timed[2]["reason"] == "rate_limited" and "Retry-After" in timed[1]
    static = raw_request(
        limited, "POST", "api/coderemote/analyze", {"code": code, "methods": ["static"]}, bearer=token(user)
    )
    assert static[0] == 200, static  # no timed runs: not counted


def test_kernel_starts_count(limited: CodeRemoteServer) -> None:
    """Kernels started through api/kernels and api/sessions spend the same budget as REST runs."""
    user = "frank"
    started = []
    try:
        for _ in range(LIMIT - 1):
            status, _, kernel = raw_request(limited, "POST", "api/kernels", {}, bearer=token(user))
            assert status == 201, kernel
            started.append(kernel["id"])
        session = {"path": "frank", "type": "console", "name": "", "kernel": {"name": "python3-sandboxed"}}
        status, _, model = raw_request(limited, "POST", "api/sessions", session, bearer=token(user))
        assert status == 201, model
        started.append(model["kernel"]["id"])
        status, headers, body = raw_request(limited, "POST", "api/kernels", {}, bearer=token(user))
        assert status == 429 and body["reason"] == "rate_limited" and "Retry-After" in headers, body
        status, _, body = raw_request(
            limited, "POST", "api/sessions", {**session, "path": "frank-2"}, bearer=token(user)
        )
        assert status == 429, body
        assert execute(limited, user, uuid.uuid4().hex)[0] == 429
        # A refused kernel (not sandboxed) spends nothing and says why.
        status, _, body = raw_request(limited, "POST", "api/kernels", {"name": "no-such-kernel"}, bearer=token(user))
        assert status == 404, body
    finally:
        for kernel_id in started:
            limited.request("DELETE", f"api/kernels/{kernel_id}", bearer=token(user))


async def test_websocket_cell_over_the_limit_is_answered_rate_limited(limited: CodeRemoteServer) -> None:
    bearer = token("carol")
    status, kernel = limited.request("POST", "api/kernels", {}, bearer=bearer)
    assert status == 201, kernel
    ws = await open_channels(limited, kernel["id"], bearer)
    try:
        for i in range(WS_LIMIT):
            ran = await run_cell(ws, f"{i} + 40")
            assert ran["reply"]["content"]["status"] == "ok", ran["reply"]
        refused = await run_cell(ws, "print('must not run')")
        reply = refused["reply"]
        assert reply["header"]["msg_type"] == "execute_reply"
        assert reply["parent_header"]["msg_id"] == refused["msg_id"]
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "RateLimited"
        assert "Retry in" in reply["content"]["evalue"]
        kinds = [m["msg_type"] for m in refused["iopub"]]
        assert "error" in kinds and kinds[-1] == "status"
        error = next(m for m in refused["iopub"] if m["msg_type"] == "error")
        assert error["content"]["ename"] == "RateLimited"
        assert not any(m["msg_type"] == "stream" for m in refused["iopub"]), "the cell reached the kernel"
        retry = reply["metadata"]["coderemote"]["retry_after"]
        await asyncio.sleep(retry + 0.2)
        again = await run_cell(ws, "print('runs again')")
        assert again["reply"]["content"]["status"] == "ok"
        assert any(m["msg_type"] == "stream" and m["content"]["text"] == "runs again\n" for m in again["iopub"])
    finally:
        ws.close()
        limited.request("DELETE", f"api/kernels/{kernel['id']}", bearer=bearer)


# -- without a database: counters in memory, history 503 -------------------------------


def test_without_database_limits_in_memory_and_no_history(tmp_path: Path) -> None:
    server = CodeRemoteServer(
        tmp_path,
        "--SnippetStore.database_url=postgresql://nobody:none@127.0.0.1:9/none",
        "--RateLimiter.executions_per_minute=1",
        "--KernelPool.size=1",
        token="tok",
    )
    try:
        assert "Rate-limit counters are kept in memory" in server.log_path.read_text()
        assert server.request("POST", "api/coderemote/execute", {"code": "1"})[0] == 200
        status, headers, body = raw_request(server, "POST", "api/coderemote/execute", {"code": "1"})
        assert status == 429 and body["reason"] == "rate_limited" and headers["RateLimit-Limit"] == "1"
        status, body = server.request("GET", "api/coderemote/executions")
        assert status == 503 and "unavailable" in body["message"]
    finally:
        server.stop()


# -- the storages, in this process -----------------------------------------------------


@pytest.fixture
def limiter_database(postgres_uri: str) -> str:
    uri = create_database(postgres_uri, f"limits_{uuid.uuid4().hex[:8]}")
    engine = create_engine(sqlalchemy_url(uri))
    migrate.upgrade(engine)
    engine.dispose()
    return uri


async def test_replicas_share_their_counters(limiter_database: str) -> None:
    """Two limiters on one database (two replicas) count the same hits; memory ones do not."""
    engines = [async_engine(create_engine(sqlalchemy_url(limiter_database))) for _ in range(2)]
    try:
        a, b = (RateLimiter(engine=e, storage="database", executions_per_minute=3, window_seconds=30) for e in engines)
        assert a.where == b.where == "database"
        await a.hit("alice", "execute")
        await b.hit("alice", "kernel_start")
        await a.hit("alice", "analyze")
        with pytest.raises(RateLimited) as refused:
            await b.hit("alice", "execute")
        assert refused.value.limit == 3 and refused.value.remaining == 0 and 1 <= refused.value.retry_after <= 30
        await b.hit("bob", "execute")  # someone else
        memory = [RateLimiter(engine=None, executions_per_minute=1) for _ in range(2)]
        await memory[0].hit("alice", "execute")
        await memory[1].hit("alice", "execute")  # another process's memory
        with pytest.raises(RateLimited):
            await memory[0].hit("alice", "execute")
    finally:
        for engine in engines:
            await engine.dispose()


async def test_concurrent_hits_never_exceed_the_limit(limiter_database: str) -> None:
    engine = async_engine(create_engine(sqlalchemy_url(limiter_database)))
    try:
        limiter = RateLimiter(engine=engine, storage="database", executions_per_minute=5, window_seconds=30)

        async def one() -> bool:
            try:
                await limiter.hit("zoe", "execute")
                return True
            except RateLimited:
                return False

        outcomes = await asyncio.gather(*(one() for _ in range(20)))
        assert sum(outcomes) == 5
    finally:
        await engine.dispose()


async def test_smaller_burst_spreads_hits(limiter_database: str) -> None:
    for engine in (async_engine(create_engine(sqlalchemy_url(limiter_database))), None):
        storage = "database" if engine is not None else "memory"
        limiter = RateLimiter(engine=engine, storage=storage, executions_per_minute=6, burst=2, window_seconds=3)
        await limiter.hit("yan", "execute")
        await limiter.hit("yan", "execute")
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("yan", "execute")
        assert refused.value.limit == 2  # the burst window (2 per 1 s) refused it
        await asyncio.sleep(1.1)
        await limiter.hit("yan", "execute")
        if engine is not None:
            await engine.dispose()


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kernel_start"):
        asyncio.run(RateLimiter(engine=None).hit("alice", "kernel-starts"))
