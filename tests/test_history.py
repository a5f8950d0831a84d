"""The execution history on a real `jupyter coderemote` with a real PostgreSQL:
REST and websocket runs, two users and an admin, keep_code, and the retention purge."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from snippets.models import Execution
from snippets.store import create_database, sqlalchemy_url
from tests.servers import CodeRemoteServer
from tests.test_rate_limits import jwt_server, open_channels, run_cell, token


@pytest.fixture(scope="module")
def database(postgres_uri: str) -> str:
    return create_database(postgres_uri, f"history_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[CodeRemoteServer]:
    server = jwt_server(
        tmp_path_factory.mktemp("history"),
        f"--SnippetStore.database_url={database}",
        "--History.purge_interval=1",
        "--RateLimiter.executions_per_minute=1000",
    )
    yield server
    server.stop()


def executions(server: CodeRemoteServer, user: str, query: str = "", *groups: str) -> tuple[int, Any]:
    return server.request("GET", f"api/coderemote/executions{query}", bearer=token(user, *groups))


def wait_for(server: CodeRemoteServer, user: str, count: int, query: str = "") -> dict[str, Any]:
    """The user's page once it holds ``count`` executions (rows are written just after the answers)."""
    deadline = time.monotonic() + 10
    while True:
        status, page = executions(server, user, query)
        assert status == 200, page
        if page["total"] >= count or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def sha256(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def test_rest_runs_are_recorded_without_code(server: CodeRemoteServer) -> None:
    code = f"print('alice {uuid.uuid4().hex}')"
    status, result = server.request("POST", "api/coderemote/execute", {"code": code}, bearer=token("alice"))
    assert status == 200, result
    status, failed = server.request("POST", "api/coderemote/execute", {"code": "1/0"}, bearer=token("alice"))
    assert failed["status"] == "error"
    page = wait_for(server, "alice", 2)
    assert page["total"] == 2 and page["limit"] == 20 and page["offset"] == 0
    newest, older = page["executions"]
    assert newest["status"] == "error" and newest["code_sha256"] == sha256("1/0")
    assert older["user"] == "alice" and older["source"] == "rest" and older["status"] == "ok"
    assert older["code_sha256"] == sha256(code) and older["code_bytes"] == len(code.encode())
    assert older["code"] is None
    assert older["kernel_id"] and 0 < older["duration_ms"] <= result["duration_ms"] + 1
    assert older["usage"] == result["usage"] and older["usage"]["cpu_ms"] is not None
    assert datetime.fromisoformat(older["created_at"]) <= datetime.fromisoformat(newest["created_at"])
    only_errors = executions(server, "alice", "?status=error")[1]
    assert only_errors["total"] == 1 and only_errors["executions"][0]["status"] == "error"
    second = executions(server, "alice", "?limit=1&offset=1")[1]
    assert second["total"] == 2 and [e["id"] for e in second["executions"]] == [older["id"]]


async def test_websocket_cells_are_recorded(server: CodeRemoteServer) -> None:
    bearer = token("wes")
    status, kernel = server.request("POST", "api/kernels", {}, bearer=bearer)
    assert status == 201, kernel
    ws = await open_channels(server, kernel["id"], bearer)
    try:
        ok = await run_cell(ws, "x = 6 * 7")
        assert ok["reply"]["content"]["status"] == "ok"
        bad = await run_cell(ws, "raise ValueError('no')")
        assert bad["reply"]["content"]["status"] == "error"
    finally:
        ws.close()
        server.request("DELETE", f"api/kernels/{kernel['id']}", bearer=bearer)
    page = wait_for(server, "wes", 2)
    assert page["total"] == 2
    by_code = {e["code_sha256"]: e for e in page["executions"]}
    cell = by_code[sha256("x = 6 * 7")]
    assert cell["source"] == "websocket" and cell["status"] == "ok" and cell["kernel_id"] == kernel["id"]
    assert cell["code"] is None and cell["duration_ms"] > 0
    assert cell["usage"]["cpu_ms"] is not None and cell["usage"]["peak_memory_bytes"] > 0
    assert by_code[sha256("raise ValueError('no')")]["status"] == "error"


def test_users_see_only_their_own_and_admins_see_all(server: CodeRemoteServer) -> None:
    status, _ = server.request("POST", "api/coderemote/execute", {"code": "'bob'"}, bearer=token("bob"))
    assert status == 200
    bob = wait_for(server, "bob", 1)
    assert bob["total"] == 1 and all(e["user"] == "bob" for e in bob["executions"])
    status, body = executions(server, "bob", "?user=alice")
    assert status == 404 and "message" in body  # as if alice did not exist
    status, seen = executions(server, "root", "?user=alice", "admins")
    assert status == 200 and seen["total"] >= 2 and {e["user"] for e in seen["executions"]} == {"alice"}
    assert executions(server, "root", "", "admins")[1]["total"] == 0  # an admin's own page is theirs


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=101", "?limit=abc", "?offset=-1", "?offset=1.5", "?status=bogus", "?limit=%EF%BC%91"]
)
def test_bad_queries_are_400_json(server: CodeRemoteServer, query: str) -> None:
    status, body = executions(server, "alice", query)
    assert status == 400, body
    assert isinstance(body["message"], str) and body["message"]


def test_retention_purges_old_rows(server: CodeRemoteServer, database: str) -> None:
    engine = create_engine(sqlalchemy_url(database))
    old = datetime.now(timezone.utc) - timedelta(days=31)
    row = {
        "user": "olga", "created_at": old, "source": "rest", "status": "ok", "duration_ms": 1.0,
        "code_bytes": 1, "code_sha256": hashlib.sha256(b"1").digest(), "kernel_id": None, "code": None,
    }  # fmt: skip
    recent = {**row, "created_at": datetime.now(timezone.utc) - timedelta(days=29)}
    try:
        with engine.begin() as connection:
            connection.execute(insert(Execution), [row, recent])
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as connection:
                left = connection.execute(select(Execution.created_at).where(Execution.user == "olga")).scalars().all()
            if len(left) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(left) == 1 and left[0] > old + timedelta(days=1)  # the 31-day-old row went, the other stays
    finally:
        engine.dispose()


def test_keep_code(tmp_path: Any, database: str) -> None:
    """With History.keep_code the code is kept too (token mode: the single user 'local')."""
    keeping = CodeRemoteServer(
        tmp_path, f"--SnippetStore.database_url={database}", "--History.keep_code=True", "--KernelPool.size=1",
        token="tok",
    )  # fmt: skip
    try:
        code = f"print({uuid.uuid4().int % 1000})"
        assert keeping.request("POST", "api/coderemote/execute", {"code": code})[0] == 200
        deadline = time.monotonic() + 10
        while True:
            page = keeping.request("GET", "api/coderemote/executions")[1]
            if page["total"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert page["executions"][0]["user"] == "local"
        assert page["executions"][0]["code"] == code
        assert page["executions"][0]["code_sha256"] == sha256(code)
    finally:
        keeping.stop()
