"""`jupyter coderemote` runs nothing on the host: every door of the standard
Jupyter API tried against a real server, real sandboxes (runsc).

The server is started with a configuration that tries to open the doors again
(terminals on, JupyterLab, terminals and language servers enabled, a stock
kernel manager, ``python3`` on the kernelspec allow-list, an extra static
folder): the service must override all of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.session import Session
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.conftest import running_sandboxes
from tests.route_table import sample_path
from tests.servers import CodeRemoteServer
from tests.test_websocket import execute_request

TOKEN = "service-mode-token"
AUTH = {"Authorization": f"token {TOKEN}"}
# What the service answers (patterns without the base URL, as Jupyter Server
# 2 and this extension spell them); README.md lists the same table.
ALLOWED = {
    r"/$",
    r"/?$",
    r"/api$",
    r"/api/me$",
    r"/login$",
    r"/logout$",
    r"/.*/$",
    r"(.*)$",
    r"/(robots\.txt)$",
    r"/(favicon\.ico)$",
    r"/(robots\.txt|favicon\.ico)$",
    r"/static/(.*)$",
    r"/api/kernelspecs$",
    r"/api/kernelspecs/(?P<kernel_name>[\w\.\-%]+)$",
    r"/kernelspecs/(?P<kernel_name>[\w\.\-%]+)/(?P<path>.*)$",
    r"/api/kernels$",
    r"/api/kernels/(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)$",
    r"/api/kernels/(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)/(?P<action>restart|interrupt)$",
    r"/api/kernels/(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)/channels$",
    r"/api/sessions$",
    r"/api/sessions/(?P<session_id>\w+-\w+-\w+-\w+-\w+)$",
    r"/coderemote/?$",
    r"/static/coderemote/(.*)$",
    r"/api/coderemote/execute$",
    r"/api/coderemote/analyze$",
    r"/api/coderemote/health$",
    r"/api/coderemote/metrics$",
    r"/api/coderemote/snippets$",
    r"/api/coderemote/snippets/search$",
    r"/api/coderemote/snippets/(?P<snippet_id>[^/]+)$",
    r"/api/coderemote/snippets/(?P<snippet_id>[^/]+)/star$",
    r"/api/coderemote/openapi\.json$",
    r"/api/coderemote/executions$",
    r"/api/coderemote/submissions$",
    r"/api/coderemote/submissions/batch$",
    r"/api/coderemote/submissions/(?P<submission_id>[^/]+)$",
}
HOSTILE_CONFIG = """
c.ServerApp.terminals_enabled = True
c.ServerApp.jpserver_extensions = {"jupyterlab": True, "jupyter_server_terminals": True, "jupyter_lsp": True}
c.ServerApp.kernel_manager_class = "jupyter_server.services.kernels.kernelmanager.AsyncMappingKernelManager"
c.ServerApp.kernel_spec_manager_class = "jupyter_client.kernelspec.KernelSpecManager"
c.ServerApp.contents_manager_class = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
c.ServerApp.extra_static_paths = ["/etc"]
c.SandboxedKernelSpecManager.sandboxed_kernelspecs = ["python3-sandboxed", "python3"]
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    workdir = tmp_path_factory.mktemp("service")
    (workdir / "hostile_config.py").write_text(HOSTILE_CONFIG)
    (workdir / "secret.txt").write_text("the server's own file")
    server = CodeRemoteServer(workdir, f"--config={workdir / 'hostile_config.py'}", "--KernelPool.size=0", token=TOKEN)
    yield server
    server.stop()


def call(server: CodeRemoteServer, method: str, path: str, body: Any = None, auth: bool = True) -> tuple[int, bytes]:
    """(status, raw body) without following redirects."""
    data = None if body is None else json.dumps(body).encode()
    if data is None and method in ("POST", "PUT", "PATCH"):
        data = b"{}"
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data, method=method)
    for name, value in (AUTH if auth else {}).items():
        request.add_header(name, value)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sandbox_runs(kernel_id: str, timeout: float = 30) -> bool:
    """Whether runsc lists the kernel's sandbox (it registers shortly after the kernel is started)."""
    deadline = time.monotonic() + timeout
    while f"cr-{kernel_id}" not in running_sandboxes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def lab_mode_routes(snippet_database_url: str) -> list[tuple[str, str]]:
    """The routes of a plain Jupyter Server with every extension this machine enables."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.route_table",
            "--ServerApp.allow_root=True",
            "--CodeRemoteApp.build_runtime=False",
            "--KernelPool.size=0",
            f"--SnippetStore.database_url={snippet_database_url}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parents[1],
    ).stdout
    return [(pattern, handler) for pattern, handler in json.loads(out.splitlines()[-1])]


def test_every_route_is_allowed_or_answers_404(service: CodeRemoteServer, snippet_database_url: str) -> None:
    routes = lab_mode_routes(snippet_database_url)
    # The walk covers what a pip install brings along, not only Jupyter Server.
    packages = {handler.split(".")[0] for _, handler in routes}
    assert {"jupyterlab_server", "jupyter_server_terminals", "jupyter_lsp", "kernel_gateway_ext"} <= packages
    answering = [re.compile(pattern) for pattern in ALLOWED - {r"(.*)$"}]
    refused = []
    for pattern, handler in routes:
        path = sample_path(pattern)
        if any(allowed.fullmatch(path) for allowed in answering):
            continue  # e.g. /static/lab/a is the allowed /static/(.*) route's, which 404s a GET
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            status, _ = call(service, method, path)
            if status != 404:
                refused.append((method, path, handler, status))
    assert refused == []
    # The allowed list is not stale: each entry is a route of this machine's server.
    assert ALLOWED - {pattern for pattern, _ in routes} <= {r"/?$"}


def test_blocked_api_routes_answer_a_json_404(service: CodeRemoteServer) -> None:
    for path in ("api/contents", "api/terminals", "api/shutdown", "api/status", "api/config/x", "api/nbconvert"):
        status, body = call(service, "GET", path)
        assert status == 404
        assert "not offered by this service" in json.loads(body)["message"]


def test_kernelspecs_are_sandboxed_only(service: CodeRemoteServer) -> None:
    status, body = call(service, "GET", "api/kernelspecs")
    specs = json.loads(body)
    assert status == 200
    assert set(specs["kernelspecs"]) == {"python3-sandboxed"} and specs["default"] == "python3-sandboxed"
    assert call(service, "GET", "api/kernelspecs/python3")[0] == 404
    assert call(service, "GET", "kernelspecs/python3/kernel.json")[0] == 404
    assert call(service, "GET", "kernelspecs/python3-sandboxed/kernel.json")[0] == 200


def test_every_kernelspec_on_the_machine_is_refused_unless_sandboxed(service: CodeRemoteServer) -> None:
    names = set(KernelSpecManager().find_kernel_specs()) | {"python3"}
    assert "python3-sandboxed" in names
    for name in sorted(names):
        status, body = call(service, "POST", "api/kernels", {"name": name})
        answer = json.loads(body)
        if name == "python3-sandboxed":
            assert status == 201 and answer["name"] == name
            assert sandbox_runs(answer["id"])
            assert call(service, "DELETE", f"api/kernels/{answer['id']}")[0] == 204
        else:
            assert status == 403, (name, answer)
            assert "outside the sandbox" in answer["message"]
    status, body = call(service, "POST", "api/kernels", {"name": "no-such-kernel"})
    assert status == 404 and "sandboxed kernels only" in json.loads(body)["message"]
    status, body = call(service, "GET", "api/kernels")
    assert [k["name"] for k in json.loads(body)] == []


def test_client_chosen_kernel_ids_are_refused(service: CodeRemoteServer, tmp_path: Path) -> None:
    target = tmp_path / "keep-me"
    target.mkdir()
    for kernel_id in (f"x/../../../../{target}", str(uuid.uuid4())):
        status, body = call(service, "POST", "api/kernels", {"name": "python3-sandboxed", "kernel_id": kernel_id})
        assert status == 400 and "chosen by the server" in json.loads(body)["message"]
    assert target.is_dir()


def test_sessions_start_sandboxed_kernels_only(service: CodeRemoteServer) -> None:
    new = {"path": "n.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    status, body = call(service, "POST", "api/sessions", new)
    assert status == 403 and "outside the sandbox" in json.loads(body)["message"]
    status, body = call(service, "POST", "api/sessions", {"path": "s", "type": "console"})
    assert status == 201
    session = json.loads(body)
    assert session["kernel"]["name"] == "python3-sandboxed"
    try:
        status, body = call(service, "PATCH", f"api/sessions/{session['id']}", {"kernel": {"name": "python3"}})
        assert status == 403
        status, body = call(service, "GET", f"api/sessions/{session['id']}")
        assert json.loads(body)["kernel"]["id"] == session["kernel"]["id"]
        # A restart keeps the kernelspec, whatever the body asks for.
        kernel_id = session["kernel"]["id"]
        status, body = call(service, "POST", f"api/kernels/{kernel_id}/restart", {"name": "python3"})
        assert status == 200 and json.loads(body)["name"] == "python3-sandboxed"
        assert sandbox_runs(kernel_id)
    finally:
        call(service, "DELETE", f"api/sessions/{session['id']}")


async def test_the_kernel_websocket_reaches_a_gvisor_sandbox(service: CodeRemoteServer) -> None:
    status, body = call(service, "POST", "api/kernels", {})
    kernel = json.loads(body)
    assert status == 201 and kernel["name"] == "python3-sandboxed"
    ws_url = service.url.replace("http", "ws") + f"api/kernels/{kernel['id']}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers=AUTH))
    try:
        msg_id, frame = execute_request(Session(), "import os; print(os.uname().release, os.getcwd())")
        await ws.write_message(frame)
        text = ""
        while True:
            msg = json.loads(await ws.read_message())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        # gVisor reports its own kernel release, not the host's; the cwd is the sandbox's.
        assert text.split() == ["4.4.0", "/workspace"] and os.uname().release != "4.4.0"
    finally:
        ws.close()
        call(service, "DELETE", f"api/kernels/{kernel['id']}")


@pytest.mark.parametrize("path", ["terminals/websocket/1", "lsp/ws/pylsp", "api/events/subscribe", "api/terminals/1"])
async def test_websocket_doors_are_closed(service: CodeRemoteServer, path: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(service.url.replace("http", "ws") + path, headers=AUTH))
    assert refused.value.code == 404


def test_no_terminal_and_no_host_files(service: CodeRemoteServer) -> None:
    assert call(service, "POST", "api/terminals")[0] == 404
    workdir = service.log_path.parent
    status, _ = call(service, "PUT", "api/contents/pwned.txt", {"type": "file", "format": "text", "content": "x"})
    assert status == 404 and not (workdir / "pwned.txt").exists()
    for path in (
        "api/contents",
        "api/contents/secret.txt",
        "files/secret.txt",
        "view/secret.txt",
        "nbconvert/html/secret.txt",
        "api/resolvePath?path=secret.txt",
        "lab",
        "lab/tree/secret.txt",
    ):
        status, body = call(service, "GET", path)
        assert status == 404 and b"the server's own file" not in body, path
    for path in (
        "static/passwd",
        "static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "static/coderemote/..%2f..%2fapp.py",
        "kernelspecs/python3-sandboxed/..%2f..%2f..%2f..%2fetc%2fpasswd",
    ):
        status, body = call(service, "GET", path)
        assert status in (403, 404) and b"root:" not in body and b"import" not in body, path


def test_health_tells_anonymous_callers_the_status_only(service: CodeRemoteServer) -> None:
    status, body = call(service, "GET", "api/coderemote/health", auth=False)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body = call(service, "GET", "api/coderemote/health")
    details = json.loads(body)
    assert status == 200 and details["runsc"].endswith("runsc") and "pool" in details
    assert details["sandbox"] == "gvisor" and details["problems"] == []


@pytest.mark.parametrize(
    "flags",
    [
        ("--CodeRemoteApp.build_runtime=maybe",),  # read when the extension is linked
        ("--KernelPool.size=-x",),  # read when it is loaded
    ],
)
def test_a_bad_setting_of_the_extension_stops_the_service(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """Jupyter would serve on without the extension, or with its settings half read."""
    with pytest.raises(RuntimeError, match="server did not start") as failed:
        CodeRemoteServer(tmp_path, *flags, token=TOKEN, start_timeout=60).stop()  # (stopped if it started)
    assert flags[0].split("=")[0].split(".")[-1] in str(failed.value)  # the log names the setting


def test_the_service_keeps_serving_after_shutdown_is_asked(service: CodeRemoteServer) -> None:
    assert call(service, "POST", "api/shutdown")[0] == 404
    assert service.proc.poll() is None
    log = service.log_path.read_text()
    assert "loads no other server extension" in log and "uses its own kernel_manager_class" in log
