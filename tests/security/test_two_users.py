"""Two users (alice, bob) on one real `jupyter coderemote` in JWT mode (HS256
tokens made in the test), real gVisor kernels, the real embedded PostgreSQL:
bob never sees, connects to, interrupts, restarts or deletes alice's kernels,
sessions, REST sessions or snippets; someone else's id answers exactly as an
unknown one. A member of an admin group sees everyone's kernels."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.session import Session
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.jwt_helpers import TEST_SECRET, claims, hs256_token
from tests.servers import CodeRemoteServer
from tests.test_websocket import execute_request

ALICE = hs256_token(claims("alice", exp_in=3600))
BOB = hs256_token(claims("bob", exp_in=3600))
TEACHER = hs256_token(claims("teacher", exp_in=3600, groups=["teachers"]))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    running = CodeRemoteServer(
        tmp_path_factory.mktemp("two-users"),
        f"--JWTIdentityProvider.secret={TEST_SECRET}",
        "--JWTIdentityProvider.admin_groups=teachers",
        "--KernelPool.size=1",
        token="not-used-in-jwt-mode",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice_kernel(server: CodeRemoteServer) -> Iterator[str]:
    status, kernel = server.request("POST", "api/kernels", {}, bearer=ALICE)
    assert status == 201, kernel
    yield kernel["id"]
    server.request("DELETE", f"api/kernels/{kernel['id']}", bearer=ALICE)


def test_the_list_of_kernels_holds_the_callers_own(server: CodeRemoteServer, alice_kernel: str) -> None:
    status, alices = server.request("GET", "api/kernels", bearer=ALICE)
    assert status == 200 and [k["id"] for k in alices] == [alice_kernel]
    status, bobs = server.request("GET", "api/kernels", bearer=BOB)
    assert status == 200 and bobs == []
    status, everyone = server.request("GET", "api/kernels", bearer=TEACHER)
    assert status == 200 and alice_kernel in [k["id"] for k in everyone]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", "/interrupt"), ("POST", "/restart"), ("DELETE", "")],
)
def test_someone_elses_kernel_is_not_found(
    server: CodeRemoteServer, alice_kernel: str, method: str, suffix: str
) -> None:
    unknown = str(uuid.uuid4())
    body = {} if method == "POST" else None
    status, answer = server.request(method, f"api/kernels/{alice_kernel}{suffix}", body, bearer=BOB)
    unknown_status, unknown_answer = server.request(method, f"api/kernels/{unknown}{suffix}", body, bearer=BOB)
    assert status == unknown_status == 404
    assert answer["message"] == unknown_answer["message"].replace(unknown, alice_kernel)
    # Alice's kernel is still there, and still hers.
    status, model = server.request("GET", f"api/kernels/{alice_kernel}", bearer=ALICE)
    assert status == 200 and model["id"] == alice_kernel


def test_an_admin_may_use_anyones_kernel(server: CodeRemoteServer, alice_kernel: str) -> None:
    status, model = server.request("GET", f"api/kernels/{alice_kernel}", bearer=TEACHER)
    assert status == 200 and model["id"] == alice_kernel
    status, _ = server.request("POST", f"api/kernels/{alice_kernel}/interrupt", {}, bearer=TEACHER)
    assert status == 204


async def open_channels(server: CodeRemoteServer, kernel_id: str, token: str) -> Any:
    request = HTTPRequest(
        server.url.replace("http", "ws") + f"api/kernels/{kernel_id}/channels",
        headers={"Authorization": f"Bearer {token}"},
    )
    return await websocket_connect(request)


async def run_on_channels(ws: Any, code: str) -> str:
    msg_id, frame = execute_request(Session(), code)
    await ws.write_message(frame)
    text = ""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 60))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return text


async def test_bob_cannot_connect_to_alices_kernel(server: CodeRemoteServer, alice_kernel: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await open_channels(server, alice_kernel, BOB)
    assert refused.value.code == 404
    ws = await open_channels(server, alice_kernel, ALICE)
    try:
        assert await run_on_channels(ws, "print('alice', 6 * 7)") == "alice 42\n"
    finally:
        ws.close()


def alices_session(server: CodeRemoteServer, kernel_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"path": f"alice-{uuid.uuid4().hex}", "type": "console", "name": ""}
    body["kernel"] = {"id": kernel_id} if kernel_id else {"name": "python3-sandboxed"}
    status, session = server.request("POST", "api/sessions", body, bearer=ALICE)
    assert status == 201, session
    return session  # type: ignore[no-any-return]


def test_sessions_are_the_callers_own(server: CodeRemoteServer) -> None:
    session = alices_session(server)  # deleting it stops its kernel
    try:
        status, alices = server.request("GET", "api/sessions", bearer=ALICE)
        assert status == 200 and session["id"] in [s["id"] for s in alices]
        status, bobs = server.request("GET", "api/sessions", bearer=BOB)
        assert status == 200 and bobs == []
        unknown = str(uuid.uuid4())
        for method, body in [("GET", None), ("PATCH", {"name": "mine now"}), ("DELETE", None)]:
            status, answer = server.request(method, f"api/sessions/{session['id']}", body, bearer=BOB)
            unknown_status, _ = server.request(method, f"api/sessions/{unknown}", body, bearer=BOB)
            assert (status, unknown_status) == (404, 404), (method, answer)
        status, model = server.request("GET", f"api/sessions/{session['id']}", bearer=ALICE)
        assert status == 200 and model["name"] == "" and model["kernel"]["id"] == session["kernel"]["id"]
    finally:
        server.request("DELETE", f"api/sessions/{session['id']}", bearer=ALICE)


def test_bob_cannot_attach_a_session_to_alices_kernel(server: CodeRemoteServer, alice_kernel: str) -> None:
    mine = alices_session(server, alice_kernel)  # alice may attach to her kernel (kept: deleting it stops the kernel)
    assert mine["kernel"]["id"] == alice_kernel
    body = {"path": "bob-attaches", "type": "console", "name": "", "kernel": {"id": alice_kernel}}
    status, answer = server.request("POST", "api/sessions", body, bearer=BOB)
    assert status == 400, answer
    status, bobs = server.request("GET", "api/sessions", bearer=BOB)
    assert bobs == []


def test_rest_sessions_with_the_same_name_are_separate(server: CodeRemoteServer) -> None:
    name = {"session_id": "homework"}
    status, result = server.request("POST", "api/coderemote/execute", {"code": "secret = 41", **name}, bearer=ALICE)
    assert status == 200 and result["status"] == "ok", result
    status, result = server.request("POST", "api/coderemote/execute", {"code": "print(secret)", **name}, bearer=BOB)
    assert status == 200 and result["status"] == "error" and result["error"]["ename"] == "NameError"
    status, result = server.request(
        "POST", "api/coderemote/execute", {"code": "print(secret + 1)", **name}, bearer=ALICE
    )
    assert status == 200 and result["stdout"] == "42\n"


def test_snippets_are_the_callers_own(server: CodeRemoteServer) -> None:
    status, snippet = server.request(
        "POST", "api/coderemote/snippets", {"name": "alice's sort", "code": "sorted(x)"}, bearer=ALICE
    )
    assert status == 201, snippet
    path = f"api/coderemote/snippets/{snippet['id']}"
    status, listed = server.request("GET", "api/coderemote/snippets", bearer=BOB)
    assert status == 200 and snippet["id"] not in json.dumps(listed)
    status, found = server.request("GET", "api/coderemote/snippets/search?q=sort", bearer=BOB)
    assert status == 200 and snippet["id"] not in json.dumps(found)
    for method, body in [("GET", None), ("PATCH", {"name": "bob's"}), ("DELETE", None)]:
        status, _ = server.request(method, path, body, bearer=BOB)
        assert status == 404, method
    status, _ = server.request("PUT", f"{path}/star", {}, bearer=BOB)
    assert status == 404
    status, kept = server.request("GET", path, bearer=ALICE)
    assert status == 200 and kept["name"] == "alice's sort" and not kept["is_starred"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "api/kernels", []),
        ("POST", "api/kernels", "python3-sandboxed"),
        ("POST", "api/sessions", [None, None]),
    ],
)
def test_a_body_that_is_not_an_object_is_400(server: CodeRemoteServer, method: str, path: str, body: Any) -> None:
    status, answer = server.request(method, path, body, bearer=ALICE)
    assert status == 400 and "JSON object" in answer["message"]


def test_patching_a_session_with_a_list_is_400(server: CodeRemoteServer) -> None:
    session = alices_session(server)
    try:
        status, answer = server.request("PATCH", f"api/sessions/{session['id']}", [None, None], bearer=ALICE)
        assert status == 400 and "JSON object" in answer["message"]
    finally:
        server.request("DELETE", f"api/sessions/{session['id']}", bearer=ALICE)


def test_without_a_token_every_route_is_401(server: CodeRemoteServer, alice_kernel: str) -> None:
    paths = ["api/kernels", f"api/kernels/{alice_kernel}", "api/sessions", "api/coderemote/snippets"]
    for path in [*paths, "api/coderemote/executions", "api/coderemote/metrics"]:
        request = urllib.request.Request(server.url + path)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401, path
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        assert "message" in json.loads(refused.value.read()), path


def test_single_user_mode_is_one_owner(tmp_path: Path) -> None:
    """With Jupyter's token everyone is one owner: a kernel started by one request is listed for the next."""
    server = CodeRemoteServer(tmp_path, "--KernelPool.size=0", token="one-token")
    try:
        status, kernel = server.request("POST", "api/kernels", {})
        assert status == 201
        status, listed = server.request("GET", "api/kernels")
        assert [k["id"] for k in listed] == [kernel["id"]]
        status, _ = server.request("DELETE", f"api/kernels/{kernel['id']}")
        assert status == 204
        with pytest.raises(urllib.error.HTTPError) as refused:  # metrics: JSON refusal, no login redirect
            urllib.request.urlopen(server.url + "api/coderemote/metrics", timeout=30)
        assert refused.value.code == 403 and "message" in json.loads(refused.value.read())
    finally:
        server.stop()
