"""Kernels of ``api/kernels`` (the page's, JupyterLab's, any Jupyter client's) come
from the warm pool: a real ``jupyter coderemote`` with real gVisor sandboxes."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from tests.servers import CodeRemoteServer
from tests.test_rate_limits import jwt_server, open_channels, run_cell, token
from tests.test_websocket import execute_request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = jwt_server(tmp_path_factory.mktemp("warm"))  # KernelPool.size=1
    yield server
    server.stop()


def pool_hits(server: CodeRemoteServer) -> float:
    request = urllib.request.Request(
        server.url + "api/coderemote/metrics", headers={"Authorization": f"Bearer {token('admin', 'admins')}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    match = re.search(r"^coderemote_pool_hits_total (\S+)$", text, re.M)
    assert match, text[:500]
    return float(match.group(1))


def wait_for_warm(server: CodeRemoteServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, health = server.request("GET", "api/coderemote/health", bearer=token("admin", "admins"))
        if health.get("pool", {}).get("idle") == 1:
            return
        assert time.monotonic() < deadline, health
        time.sleep(0.2)


async def test_api_kernels_take_a_warm_pool_kernel(server: CodeRemoteServer) -> None:
    wait_for_warm(server)
    hits = pool_hits(server)
    bearer = token("paula")
    status, kernel = server.request("POST", "api/kernels", {"name": "python3-sandboxed"}, bearer=bearer)
    assert status == 201, kernel
    assert pool_hits(server) == hits + 1  # not started for the request: taken from the pool
    assert kernel["execution_state"] == "idle"
    ws = await open_channels(server, kernel["id"], bearer)
    try:
        cell = await run_cell(ws, "import os\nprint(os.getuid() != 0)")
        assert cell["reply"]["content"]["status"] == "ok", cell
    finally:
        ws.close()
    # Hers alone, like any kernel she started; the pool refills for the next one.
    assert server.request("GET", f"api/kernels/{kernel['id']}", bearer=token("mallory"))[0] == 404
    assert [k["id"] for k in server.request("GET", "api/kernels", bearer=bearer)[1]] == [kernel["id"]]
    wait_for_warm(server)
    assert server.request("DELETE", f"api/kernels/{kernel['id']}", bearer=bearer)[0] == 204
    await asyncio.sleep(0)
    assert server.request("GET", f"api/kernels/{kernel['id']}", bearer=bearer)[0] == 404


async def test_a_client_reconnecting_during_a_restart_reaches_the_new_kernel(server: CodeRemoteServer) -> None:
    """A sandbox killed mid-run (over its memory limit) is restarted; a client that
    reconnects as soon as it hears "restarting", as JupyterLab does, is answered by
    the new kernel instead of waiting on a connection to the dead one."""
    bearer = token("rita")
    status, kernel = server.request("POST", "api/kernels", {"name": "python3-sandboxed"}, bearer=bearer)
    assert status == 201, kernel
    session_id = uuid.uuid4().hex
    ws = await open_channels(server, kernel["id"], bearer, session_id)
    try:
        hog = "blocks = []\nwhile True:\n    blocks.append(b'x' * (64 * 1024 * 1024))\n"
        _, frame = execute_request(Session(), hog)
        await ws.write_message(frame)
        while True:
            answer = json.loads(await asyncio.wait_for(ws.read_message(), timeout=90))
            if answer["msg_type"] == "status" and answer["content"]["execution_state"] == "restarting":
                assert answer["content"]["coderemote"] == {"reason": "memory_limit"}
                break
        ws.close()
        ws = await open_channels(server, kernel["id"], bearer, session_id)
        info = Session().msg("kernel_info_request", {})  # what JupyterLab sends first on a new connection
        info["channel"] = "shell"
        await ws.write_message(json.dumps(info, default=json_default))
        while True:
            answer = json.loads(await asyncio.wait_for(ws.read_message(), timeout=30))
            if answer["msg_type"] == "kernel_info_reply":
                assert answer["parent_header"]["msg_id"] == info["header"]["msg_id"]
                break
        cell = await run_cell(ws, "print('after the restart')", timeout=30)
        assert cell["reply"]["content"]["status"] == "ok", cell
        assert [m["content"]["text"] for m in cell["iopub"] if m["msg_type"] == "stream"] == ["after the restart\n"]
    finally:
        ws.close()
        assert server.request("DELETE", f"api/kernels/{kernel['id']}", bearer=bearer)[0] == 204
