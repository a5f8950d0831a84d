"""Hostile callers of the kernel API of a real `jupyter coderemote` (as root,
real runsc): ids shaped like host paths or borrowed from a live kernel,
kernels started past the limits through every route, and a run that never
ends on a kernel whose client never interrupts it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.session import Session
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.servers import CodeRemoteServer
from tests.test_service_mode import AUTH, TOKEN, call, sandbox_runs
from tests.test_websocket import execute_request

NEW_SESSION = {"path": "s", "type": "console", "kernel": {"name": "python3-sandboxed"}}


def server(tmp_path_factory: pytest.TempPathFactory, name: str, *flags: str) -> CodeRemoteServer:
    return CodeRemoteServer(tmp_path_factory.mktemp(name), "--KernelPool.size=0", *flags, token=TOKEN)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    """Two kernels per user, and runs cut after 3 s of being busy."""
    flags = (
        "--KernelPool.max_kernels_per_user=2",
        "--KernelPool.queue_timeout=1",
        "--SandboxedMappingKernelManager.max_run_time=3",
        "--SandboxedMappingKernelManager.run_check_interval=0.5",
        "--SandboxedMappingKernelManager.interrupt_grace=3",
    )
    running = server(tmp_path_factory, "doors", *flags)
    yield running
    running.stop()


def kernels(service: CodeRemoteServer) -> list[dict]:
    status, body = call(service, "GET", "api/kernels")
    assert status == 200
    return json.loads(body)


def shut_down_all(service: CodeRemoteServer) -> None:
    for kernel in kernels(service):
        call(service, "DELETE", f"api/kernels/{kernel['id']}")
    status, body = call(service, "GET", "api/sessions")
    for session in json.loads(body):
        call(service, "DELETE", f"api/sessions/{session['id']}")


@pytest.fixture
def victim() -> Iterator[Path]:
    """A folder of the host that a path-shaped id aims at (outside every server folder)."""
    path = Path("/tmp") / f"coderemote-victim-{uuid.uuid4().hex}"
    path.mkdir()
    (path / "precious.txt").write_text("keep me")
    yield path
    (path / "precious.txt").unlink(missing_ok=True)
    path.rmdir()


def test_path_shaped_ids_reach_no_host_folder(service: CodeRemoteServer, victim: Path) -> None:
    shaped = [f"x/../../../../../..{victim}", f"../../../..{victim}", str(victim), "..", "."]
    for kernel_id in shaped:
        status, body = call(service, "POST", "api/kernels", {"name": "python3-sandboxed", "kernel_id": kernel_id})
        assert status == 400, (kernel_id, status, body)
        quoted = urllib.parse.quote(kernel_id, safe="")
        for method, path in [
            ("GET", f"api/kernels/{quoted}"),
            ("DELETE", f"api/kernels/{quoted}"),
            ("POST", f"api/kernels/{quoted}/interrupt"),
            ("POST", f"api/kernels/{quoted}/restart"),
            ("GET", f"api/sessions/{quoted}"),
            ("PATCH", f"api/sessions/{quoted}"),
            ("GET", f"api/coderemote/snippets/{quoted}"),
            ("DELETE", f"api/coderemote/snippets/{quoted}"),
            ("PUT", f"api/coderemote/snippets/{quoted}/star"),
        ]:
            status, body = call(service, method, path)
            assert 400 <= status < 500, (method, path, status, body)
        if "/" in kernel_id:  # REST session ids name nothing on the host; these are refused all the same
            status, body = call(service, "POST", "api/coderemote/execute", {"code": "1", "session_id": kernel_id})
            assert status == 400, (kernel_id, status, body)
    # Nor does a session that names such a kernel (Jupyter would start its kernel under that id).
    for kernel in ({"id": shaped[0]}, {"id": shaped[0], "name": "python3-sandboxed"}, {"id": ["a"]}):
        status, body = call(service, "POST", "api/sessions", {**NEW_SESSION, "kernel": kernel})
        assert status == 400 and "chosen by the server" in json.loads(body)["message"], body
    assert kernels(service) == []
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_live_kernels_id_cannot_be_borrowed(service: CodeRemoteServer) -> None:
    status, body = call(service, "POST", "api/kernels", {})
    assert status == 201
    live = json.loads(body)["id"]
    try:
        assert sandbox_runs(live)
        status, body = call(service, "POST", "api/kernels", {"name": "python3-sandboxed", "kernel_id": live})
        assert status == 400 and "chosen by the server" in json.loads(body)["message"]
        assert sandbox_runs(live, timeout=1)
        assert [k["id"] for k in kernels(service)] == [live]
    finally:
        shut_down_all(service)


def test_every_route_counts_against_the_same_limits(service: CodeRemoteServer) -> None:
    """Two kernels through api/kernels and api/sessions fill the user's share: a
    third through either route is 429 with a JSON message, and the REST API's
    executions wait for a sandbox and are refused too. Ending one frees a place."""
    try:
        status, body = call(service, "POST", "api/kernels", {})
        assert status == 201
        first = json.loads(body)["id"]
        status, body = call(service, "POST", "api/sessions", NEW_SESSION)
        assert status == 201
        for path, request in [("api/kernels", {}), ("api/sessions", {**NEW_SESSION, "path": "t"})]:
            status, body = call(service, "POST", path, request)
            assert status == 429, (path, status, body)
            assert "you already hold 2 sandboxes" in json.loads(body)["message"]
        status, body = call(service, "POST", "api/coderemote/execute", {"code": "print(1)"})
        assert status == 503 and "you already hold 2 sandboxes" in json.loads(body)["message"]
        assert len(kernels(service)) == 2
        call(service, "DELETE", f"api/kernels/{first}")
        status, body = call(service, "POST", "api/coderemote/execute", {"code": "print(1)"})
        assert status == 200 and json.loads(body)["stdout"] == "1\n"
    finally:
        shut_down_all(service)


def test_the_service_is_full_for_everyone_past_max_kernels(tmp_path_factory: pytest.TempPathFactory) -> None:
    full = server(tmp_path_factory, "full", "--KernelPool.max_kernels=1", "--KernelPool.queue_timeout=1")
    try:
        status, _ = call(full, "POST", "api/kernels", {})
        assert status == 201
        for path, request in [("api/kernels", {}), ("api/sessions", NEW_SESSION)]:
            status, body = call(full, "POST", path, request)
            assert status == 503 and "all 1 sandboxes are busy" in json.loads(body)["message"], (path, body)
        status, body = call(full, "POST", "api/coderemote/execute", {"code": "print(1)"})
        assert status == 503
    finally:
        full.stop()


async def read_until_idle(ws: object, msg_id: str, timeout: float) -> list[dict]:
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = await asyncio.wait_for(ws.read_message(), max(deadline - time.monotonic(), 0.01))  # type: ignore[attr-defined]
        except TimeoutError:
            break
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"the kernel stayed busy for {timeout} s: {messages}")


async def test_the_server_ends_a_run_its_client_never_interrupts(service: CodeRemoteServer) -> None:
    """A websocket client runs an endless loop and never interrupts it: the
    server does after max_run_time (3 s here), and restarts a kernel that
    ignores the interrupt; the kernel then serves the next run."""
    status, body = call(service, "POST", "api/kernels", {})
    kernel_id = json.loads(body)["id"]
    ws_url = service.url.replace("http", "ws") + f"api/kernels/{kernel_id}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers=AUTH))
    try:
        session = Session()
        started = time.monotonic()
        msg_id, frame = execute_request(session, "while True:\n    pass")
        await ws.write_message(frame)
        messages = await read_until_idle(ws, msg_id, timeout=30)
        errors = [m["content"]["ename"] for m in messages if m["msg_type"] == "error"]
        assert errors == ["KeyboardInterrupt"] and time.monotonic() - started >= 3
        # The interrupt is swallowed: the kernel stays busy, so the server restarts it.
        swallow = "marker = 1\nwhile True:\n    try:\n        while True:\n            pass\n"
        msg_id, frame = execute_request(session, swallow + "    except KeyboardInterrupt:\n        pass")
        await ws.write_message(frame)
        deadline = time.monotonic() + 40
        text = ""
        while not text:  # requests sent while it is busy are lost with it, or aborted after its end
            assert time.monotonic() < deadline, "the kernel was never restarted"
            msg_id, frame = execute_request(session, "print('fresh', 'marker' in dir())")
            await ws.write_message(frame)
            with contextlib.suppress(AssertionError):
                messages = await read_until_idle(ws, msg_id, timeout=3)
                text = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
        assert text == "fresh False\n"  # a new interpreter: the old one's names are gone
    finally:
        ws.close()
        shut_down_all(service)
