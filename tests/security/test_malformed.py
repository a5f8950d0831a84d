"""Malformed input answers 4xx with a JSON message, never 500 and never a
dropped connection where a response is possible (issue 17).

The in-process server (lab mode, pytest-jupyter's jp_fetch) takes the battery
of malformed bodies and query strings on every route of api/coderemote; a real
`jupyter coderemote` process takes what only its HTTP server settings decide:
a 200 kB query string and a declared 100 MB body, over raw sockets to 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User

from kernel_gateway_ext.base import DEFAULT_MAX_BODY_BYTES
from kernel_gateway_ext.bodies import MAX_JSON_DEPTH, MAX_URI_BYTES
from tests.servers import CodeRemoteServer

USER_HEADER = "X-Test-User"
TOKEN = "malformed-token"
MISSING = str(uuid.uuid4())  # a snippet id nobody has
DEEP = 100_000


class HeaderIdentityProvider(IdentityProvider):
    """Whoever the X-Test-User header names; anonymous without it (tests only)."""

    def get_user(self, handler: Any) -> User | None:
        name = handler.request.headers.get(USER_HEADER)
        return User(username=name) if name else None


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], fresh_database_url: str) -> dict[str, Any]:
    return {
        **jp_server_config,
        "ServerApp": {
            **jp_server_config["ServerApp"],
            "identity_provider_class": HeaderIdentityProvider,
            "disable_check_xsrf": True,
        },
        "SnippetStore": {"database_url": fresh_database_url},
    }


@pytest.fixture
def call(http_server_client: Any, jp_base_url: str) -> Any:
    """(status, decoded JSON body or None, raw body) of a request to api/coderemote/..."""

    async def run(
        method: str, path: str, raw: bytes | None = None, user: str | None = "alice", query: str = ""
    ) -> tuple[int, Any, bytes]:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False, "headers": {}}
        if user is not None:
            kwargs["headers"][USER_HEADER] = user
        if raw is not None:
            kwargs["body"] = raw
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
            kwargs["allow_nonstandard_methods"] = True
        # Not jp_fetch: it escapes the path (and with it '%00' and '?').
        url = f"{jp_base_url}api/coderemote/{path}" + (f"?{query}" if query else "")
        response = await http_server_client.fetch(url, request_timeout=120, **kwargs)
        body = response.body or b""
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        return response.code, payload, body

    return run


async def snippet(call: Any) -> str:
    status, created, _ = await call("POST", "snippets", json.dumps({"name": "fib", "code": "1"}).encode())
    assert status == 201, created
    return str(created["id"])


def refused(status: int, payload: Any, expected: int | tuple[int, ...] = 400) -> str:
    """Assert a 4xx (``expected``) with a JSON message; return the message."""
    allowed = (expected,) if isinstance(expected, int) else expected
    assert status in allowed, (status, payload)
    assert isinstance(payload, dict) and isinstance(payload.get("message"), str) and payload["message"], payload
    return str(payload["message"])


# Bodies no route takes: (label, raw body, words the message must hold).
BAD_BODIES = [
    ("empty", b"", "empty"),
    ("blank", b"  \n", "empty"),
    ("truncated", b'{"code": ', "not valid JSON"),
    ("not JSON", b"print(1)", "not valid JSON"),
    ("trailing garbage", b'{"code": "1"} x', "not valid JSON"),
    ("not UTF-8", b'{"code": "\xff\xfe"}', "not UTF-8"),
    ("UTF-8 encoded surrogate", b'{"code": "\xed\xa0\x80"}', "not UTF-8"),
    ("UTF-16", '{"code": "1"}'.encode("utf-16"), "not UTF-8"),
    ("array", b"[]", "must be a JSON object"),
    ("string", b'"code"', "must be a JSON object"),
    ("number", b"1", "must be a JSON object"),
    ("null", b"null", "must be a JSON object"),
    ("true", b"true", "must be a JSON object"),
    ("deep arrays", b"[" * DEEP + b"]" * DEEP, "nests too deeply"),
    ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nests too deeply"),
    ("deep under a field", b'{"code": "1", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nests too deeply"),
    ("deeper than the API", b'{"code": "1", "x": ' + b"[" * 100 + b"]" * 100 + b"}", f"deeper than {MAX_JSON_DEPTH}"),
    ("lone surrogate in a key", b'{"\\ud800": "1"}', "surrogate"),
    ("lone low surrogate", b'{"code": "\\udfff"}', "surrogate"),
    ("NaN", b'{"code": "1", "timeout_s": NaN}', "NaN is not JSON"),
    ("Infinity", b'{"code": "1", "timeout_s": -Infinity}', "Infinity is not JSON"),
    ("1e400", b'{"code": "1", "timeout_s": 1e400}', "out of range"),
    ("-1e400", b'{"code": "1", "timeout_s": -1e400}', "out of range"),
    ("10**400", b'{"code": "1", "timeout_s": 1' + b"0" * 400 + b"}", "out of range"),
    ("10**5000", b'{"code": "1", "timeout_s": 1' + b"0" * 5000 + b"}", "out of range"),
    ("2**64", b'{"code": "1", "version": 18446744073709551616}', "out of range"),
]
BODY_ROUTES = [("POST", "execute"), ("POST", "analyze"), ("POST", "snippets"), ("PATCH", "snippets/{id}")]


@pytest.mark.parametrize(("method", "route"), BODY_ROUTES)
async def test_malformed_bodies_answer_400_with_a_message(call: Any, method: str, route: str) -> None:
    path = route.format(id=await snippet(call)) if "{id}" in route else route
    for label, raw, words in BAD_BODIES:
        status, payload, _ = await call(method, path, raw)
        assert words in refused(status, payload), (label, payload)
    # and the route still serves a good request
    status, payload, _ = await call(method, path, b"{}")
    assert status < 500, payload


# Fields of each body route that hold text; a lone surrogate in any of them is refused.
TEXT_FIELDS = {
    "execute": {"code": "1", "stdin": "", "session_id": "s1"},
    "analyze": {"code": "1"},
    "snippets": {
        "name": "n",
        "code": "1",
        "description": "",
        "language": "python",
        "time_complexity": "O(1)",
        "space_complexity": "O(1)",
        "explanation": "",
        "model_used": "m",
        "analyzed_at": "2026-01-01",
    },
}
LIST_FIELDS = ("suggestions", "patterns")


@pytest.mark.parametrize("route", ["execute", "analyze", "snippets", "snippets/{id}"])
async def test_lone_surrogates_in_every_text_field(call: Any, route: str) -> None:
    fields = TEXT_FIELDS["snippets" if route.startswith("snippets") else route]
    method = "PATCH" if "{id}" in route else "POST"
    path = route.format(id=await snippet(call)) if "{id}" in route else route
    for name in fields:
        for text in ("\\ud800", "a\\udc00b", "\\ud83d"):  # high, low, half of an emoji
            raw = json.dumps({**fields, name: "@"}).replace('"@"', f'"{text}"').encode()
            status, payload, _ = await call(method, path, raw)
            assert "surrogate" in refused(status, payload), (name, payload)
            assert f"$.{name}" in payload["message"]
    if route.startswith("snippets"):
        for name in LIST_FIELDS:
            raw = json.dumps({**fields, name: ["ok", "@"]}).replace('"@"', '"\\ud800"').encode()
            status, payload, _ = await call(method, path, raw)
            assert f"$.{name}[1]" in refused(status, payload), payload
    # A surrogate pair is one character, and fine (an unknown field stops the request after parsing).
    raw = json.dumps({**fields, "code": "x = '\U0001f600'", "unknown": 1}).encode()
    assert b"\\ud83d\\ude00" in raw
    status, payload, _ = await call(method, path, raw)
    message = refused(status, payload)
    assert "unknown" in message and "surrogate" not in message, payload


@pytest.mark.parametrize("route", ["snippets", "snippets/{id}"])
async def test_nul_in_text_for_the_database_is_refused(call: Any, route: str) -> None:
    method = "PATCH" if "{id}" in route else "POST"
    path = route.format(id=await snippet(call)) if "{id}" in route else route
    base = {"name": "n", "code": "1"}
    for name, value in [
        ("name", "a\x00b"),
        ("description", "\x00"),
        ("code", "print(1)\x00"),
        ("explanation", "x\x00"),
        ("model_used", "\x00"),
        ("time_complexity", "O(\x00)"),
        ("patterns", ["ok", "\x00"]),
        ("suggestions", ["\x00"]),
    ]:
        status, payload, _ = await call(method, path, json.dumps({**base, name: value}).encode())
        message = refused(status, payload)
        assert "NUL" in message and f"$.{name}" in message, (name, message)
    status, payload, _ = await call(method, path, json.dumps({**base, "\x00": 1}).encode())
    assert "NUL" in refused(status, payload)
    status, payload, _ = await call("GET", "snippets")
    assert status == 200 and all("\x00" not in s["name"] for s in payload["snippets"])


async def test_nul_in_code_to_execute_is_the_kernels_business(call: Any) -> None:
    """Execution's code goes to the kernel, not the database: Python answers it."""
    status, payload, _ = await call("POST", "execute", json.dumps({"code": "x = 1\x00"}).encode())
    assert status == 200, payload
    assert payload["status"] == "error" and payload["error"], payload


WRONG_TYPES = {
    "execute": [
        {"code": 1},
        {"code": None},
        {"code": ["1"]},
        {"code": "1", "stdin": 1},
        {"code": "1", "timeout_s": "5"},
        {"code": "1", "timeout_s": True},
        {"code": "1", "timeout_s": 10**18},
        {"code": "1", "timeout_s": -1},
        {"code": "1", "session_id": 1},
        {"code": "1", "session_id": "../x"},
        {"code": "1", "nope": 1},
        {},
    ],
    "analyze": [{"code": 1}, {}, {"code": "1", "nope": 1}],
    "snippets": [
        {"name": 1, "code": "1"},
        {"name": "n"},
        {"name": "", "code": "1"},
        {"name": "n", "code": 1},
        {"name": "n", "code": "1", "is_starred": "yes"},
        {"name": "n", "code": "1", "patterns": "x"},
        {"name": "n", "code": "1", "suggestions": [1]},
        {"name": "n", "code": "1", "language": "py thon"},
        {"name": "n", "code": "1", "analyzed_at": "yesterday"},
        {"name": "n", "code": "1", "analyzed_at": 1},
        {"name": "n" * 256, "code": "1"},
        {"name": "n", "code": "1", "id": "x"},
    ],
    "snippets/{id}": [{"version": "1"}, {"version": True}, {"version": 1.5}, {"name": None}, {"code": {}}],
}


@pytest.mark.parametrize("route", list(WRONG_TYPES))
async def test_wrong_types_answer_400(call: Any, route: str) -> None:
    method = "PATCH" if "{id}" in route else "POST"
    path = route.format(id=await snippet(call)) if "{id}" in route else route
    for body in WRONG_TYPES[route]:
        status, payload, _ = await call(method, path, json.dumps(body).encode())
        refused(status, payload, (400, 413))


BAD_QUERIES = {
    "snippets": [
        "limit=abc",
        "limit=-1",
        "limit=0",
        "limit=101",
        "limit=1e3",
        "limit=1.5",
        "limit=" + "9" * 5000,
        "limit=%EF%BC%91",
        "offset=-5",
        "offset=" + "9" * 30,
        "offset=x",
        "starred=maybe",
        "q=%FF",
        "language=%C0%80",
        "language=" + "x" * 100,
        "q=" + "x" * 1001,
    ],
    "snippets/search": [
        "",
        "q=",
        "q=%20",
        "q=%00",
        "q=x&limit=abc",
        "q=x&limit=-1",
        "q=x&limit=" + "9" * 400,
        "q=" + "x" * 1001,
        "q=x&starred=2",
        "q=%FF",
        "q=%ED%A0%80",
    ],
}
# Tornado's get_query_argument turns control characters into spaces: NUL
# never reaches the database from a query string.
NUL_QUERIES = ["q=%00", "q=a%00b", "language=%00", "complexity=%00", "time_complexity=O(%00)", "space_complexity=%00"]


@pytest.mark.parametrize("route", list(BAD_QUERIES))
async def test_malformed_query_parameters_answer_400(call: Any, route: str) -> None:
    for query in BAD_QUERIES[route]:
        status, payload, _ = await call("GET", route, query=query)
        refused(status, payload)
    for query in NUL_QUERIES:
        if route == "snippets/search" and query == "q=%00":
            continue  # an empty query: in BAD_QUERIES
        status, payload, _ = await call("GET", route, query=query if query.startswith("q=") else f"q=x&{query}")
        assert status == 200, (query, payload)
    status, payload, _ = await call("GET", route, query="q=fib&limit=5&offset=0")
    assert status == 200, payload


async def test_malformed_snippet_ids_answer_404(call: Any) -> None:
    for snippet_id in [MISSING, "not-a-uuid", "%00", "%ED%A0%80", "1" * 5000, "%25"]:
        for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("PUT", "/star"), ("DELETE", "/star")]:
            raw = b'{"name": "x"}' if method == "PATCH" else None
            status, payload, _ = await call(method, f"snippets/{snippet_id}{suffix}", raw)
            refused(status, payload, (400, 404))


ALL_ROUTES = [
    ("GET", "health"),
    ("POST", "execute"),
    ("POST", "analyze"),
    ("GET", "snippets"),
    ("POST", "snippets"),
    ("GET", "snippets/search"),
    ("GET", "snippets/{id}"),
    ("PATCH", "snippets/{id}"),
    ("DELETE", "snippets/{id}"),
    ("PUT", "snippets/{id}/star"),
    ("DELETE", "snippets/{id}/star"),
]


async def test_long_query_strings_answer_414_on_every_route(call: Any) -> None:
    snippet_id = await snippet(call)
    for method, route in ALL_ROUTES:
        path = route.format(id=snippet_id)
        raw = b'{"code": "1", "name": "n"}' if method in ("POST", "PATCH") else None
        status, payload, _ = await call(method, path, raw, query="q=" + "x" * 20_000)
        assert str(MAX_URI_BYTES) in refused(status, payload, 414), (method, route)
    status, payload, _ = await call("GET", f"snippets/{snippet_id}")
    assert status == 200, payload


async def test_anonymous_callers_are_refused_before_their_body(call: Any) -> None:
    for method, route in ALL_ROUTES[1:]:
        path = route.format(id=MISSING)
        raw = b"[" * DEEP if method in ("POST", "PATCH") else None
        status, payload, _ = await call(method, path, raw, user=None)
        refused(status, payload, 403)


async def test_bodies_over_the_limit_answer_413(call: Any) -> None:
    too_big = json.dumps({"code": "x" * DEFAULT_MAX_BODY_BYTES, "name": "n"}).encode()
    snippet_id = await snippet(call)
    for method, route in BODY_ROUTES:
        status, payload, _ = await call(method, route.format(id=snippet_id), too_big)
        assert "larger than" in refused(status, payload, 413)


# --- a real `jupyter coderemote` process: its HTTP server's limits ---------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = CodeRemoteServer(tmp_path_factory.mktemp("malformed"), "--KernelPool.size=0", token=TOKEN)
    yield server
    server.stop()


def exchange(server: CodeRemoteServer, head: bytes, body: bytes = b"", timeout: float = 30) -> bytes:
    """Send ``head`` (the request line and headers, without the blank line) and
    ``body``; return all the server answers until it closes or goes quiet."""
    if b"\r\nconnection:" not in head.lower():
        head += b"\r\nConnection: close"  # the server closes after its answer: no wait for the timeout
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(head + b"\r\n\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking it all
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def parse(response: bytes) -> tuple[int, dict[str, str], Any]:
    """The first HTTP response in ``response``: status, headers, decoded JSON body."""
    head, _, rest = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = rest[: int(headers.get("content-length", len(rest)))]
    return status, headers, json.loads(body) if body else None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def still_serving(server: CodeRemoteServer) -> None:
    status, health = server.request("GET", "api/coderemote/health")
    assert status in (200, 503) and health["status"]
    status, page = server.request("GET", "api/coderemote/snippets?limit=1")
    assert status == 200 and "snippets" in page


AUTH = f"Authorization: token {TOKEN}".encode()


@pytest.mark.parametrize(
    "path",
    ["api/coderemote/execute", "api/coderemote/snippets", "api/coderemote/health", "api/coderemote/snippets/search"],
)
def test_a_200_kb_query_string_answers_414(service: CodeRemoteServer, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.request("GET", f"/{path}?q={'x' * 200_000}", headers={"Authorization": f"token {TOKEN}"})
    response = connection.getresponse()
    payload = json.loads(response.read())
    assert response.status == 414 and str(MAX_URI_BYTES) in payload["message"]
    connection.close()
    still_serving(service)


def test_huge_headers_answer_431(service: CodeRemoteServer) -> None:
    head = b"GET /api/coderemote/snippets HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH
    head += b"".join(b"\r\nX-Filler-%d: %s" % (i, b"y" * 8000) for i in range(12))
    status, _, payload = parse(exchange(service, head))
    assert status == 431 and payload["message"]
    still_serving(service)


def test_past_the_header_limit_tornado_drops_the_connection(service: CodeRemoteServer) -> None:
    """Over ServiceServerApp.max_header_size (256 KiB) tornado closes without a
    response (it has no hook to answer there); the server is unharmed."""
    head = b"GET /api/coderemote/health?q=" + b"x" * 300_000 + b" HTTP/1.1\r\nHost: 127.0.0.1"
    assert exchange(service, head) == b""
    still_serving(service)


@pytest.mark.parametrize(
    "path",
    [
        "api/coderemote/execute",
        "api/coderemote/analyze",
        "api/coderemote/snippets",
        f"api/coderemote/snippets/{MISSING}",
    ],
)
def test_a_declared_100_mb_body_is_refused_unread(service: CodeRemoteServer, path: str) -> None:
    before = rss_kib(service.proc.pid)
    method = b"PATCH" if MISSING in path else b"POST"
    for auth in (AUTH, b"X-Nobody: 1"):
        for _ in range(5):
            head = b"%s /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Type: application/json\r\n" % (
                method,
                path.encode(),
                auth,
            )
            head += b"Content-Length: 100000000"
            started = time.monotonic()
            response = exchange(service, head, b'{"code": "' + b"x" * 100_000)
            assert time.monotonic() - started < 10  # answered at once, the rest never awaited
            status, headers, payload = parse(response)
            # Ours, from prepare() before tornado reads a byte of the body: 403 for
            # an anonymous caller, else 413; then the connection is closed.
            assert status == (413 if auth == AUTH else 403), payload
            assert payload["message"]
    assert rss_kib(service.proc.pid) - before < 20 * 1024
    still_serving(service)


def test_a_chunked_body_over_the_limit_is_dropped_as_it_comes(service: CodeRemoteServer) -> None:
    """No Content-Length to refuse up front: the handler keeps at most its limit and answers 413."""
    chunk = b"x" * 65536
    chunks = (DEFAULT_MAX_BODY_BYTES // len(chunk)) + 1
    body = (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * chunks + b"0\r\n\r\n"
    head = b"POST /api/coderemote/snippets HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + b"\r\nTransfer-Encoding: chunked"
    status, _, payload = parse(exchange(service, head, body))
    assert status == 413 and "larger than" in payload["message"]
    still_serving(service)


def test_jupyter_routes_refuse_a_declared_100_mb_body_too(service: CodeRemoteServer) -> None:
    """The service's max_body_size: tornado answers a bare 400 and closes, reading nothing."""
    before = rss_kib(service.proc.pid)
    for path in (b"/api/kernels", b"/api/sessions", b"/login"):
        head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Length: 100000000" % (path, AUTH)
        response = exchange(service, head, b"x" * 100_000)
        assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response[:200]
    assert rss_kib(service.proc.pid) - before < 20 * 1024
    still_serving(service)


def test_the_service_still_executes_after_the_battery(service: CodeRemoteServer) -> None:
    status, result = service.request("POST", "api/coderemote/execute", {"code": "print(6 * 7)"})
    assert status == 200 and result["stdout"] == "42\n", result
