"""The snippet REST API (api/coderemote/snippets) on a real server and the embedded PostgreSQL.

Two users: a test IdentityProvider takes the user name from a header, so the
per-owner rules are checked through the same handlers a deployment with JWT uses.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPResponse

USER_HEADER = "X-Test-User"


class HeaderIdentityProvider(IdentityProvider):
    """Whoever the request's X-Test-User header says (tests only)."""

    def get_user(self, handler: Any) -> User:
        return User(username=handler.request.headers.get(USER_HEADER, "alice"))


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], fresh_database_url: str) -> dict[str, Any]:
    return {
        **jp_server_config,
        "ServerApp": {
            **jp_server_config["ServerApp"],
            "identity_provider_class": HeaderIdentityProvider,
            "disable_check_xsrf": True,  # header identity, no cookies
        },
        "SnippetStore": {"database_url": fresh_database_url},
    }


@pytest.fixture
def api(jp_fetch: Any) -> Any:
    """Call the snippet API as a user; returns (status, decoded body)."""

    async def call(method: str, *path: str, body: Any = None, user: str = "alice", raw: bytes | None = None,
                   **params: Any) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "headers": {USER_HEADER: user}, "raise_error": False}
        if params:
            kwargs["params"] = params
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b"" if method != "PATCH" else b"{}"
            kwargs["allow_nonstandard_methods"] = True
        response: HTTPResponse = await jp_fetch("api", "coderemote", "snippets", *path, **kwargs)
        payload = json.loads(response.body) if response.body else None
        return response.code, payload

    return call


FIB = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
CHART = "import matplotlib.pyplot as plt\n\nplt.plot([3, 1, 4, 1, 5])\nplt.ylabel('sales')\nplt.show()\n"


async def test_create_read_update_delete(api: Any, jp_fetch: Any, jp_base_url: str) -> None:
    response = await jp_fetch(
        "api", "coderemote", "snippets", method="POST",
        body=json.dumps({"name": "fib", "description": "Fibonacci", "code": FIB}),
    )
    assert response.code == 201
    created = json.loads(response.body)
    assert response.headers["Location"] == f"{jp_base_url}api/coderemote/snippets/{created['id']}"
    assert created["version"] == 1 and created["language"] == "python" and created["is_starred"] is False

    status, got = await api("GET", created["id"])
    assert status == 200 and got["code"] == FIB and got["description"] == "Fibonacci"

    status, patched = await api("PATCH", created["id"], body={"description": "fast enough", "version": 1})
    assert status == 200 and patched["description"] == "fast enough" and patched["version"] == 2

    status, _ = await api("PATCH", created["id"], body={"description": "stale", "version": 1})
    assert status == 409
    status, unchanged = await api("PATCH", created["id"], body={"version": 2})
    assert status == 200 and unchanged["version"] == 2 and unchanged["description"] == "fast enough"

    analysis = {"time_complexity": "O(2^n)", "space_complexity": "O(n)", "explanation": "two calls per level",
                "suggestions": ["memoize it"], "patterns": ["recursion"], "analyzed_at": "2026-11-26T10:00:00+00:00",
                "model_used": "static"}
    status, analysed = await api("PATCH", created["id"], body=analysis)
    assert status == 200 and {k: analysed[k] for k in analysis if k != "analyzed_at"} == {
        k: v for k, v in analysis.items() if k != "analyzed_at"
    }

    status, _ = await api("DELETE", created["id"])
    assert status == 204
    status, error = await api("GET", created["id"])
    assert status == 404 and error["message"]


async def test_star_and_list_starred(api: Any) -> None:
    _, a = await api("POST", body={"name": "a", "code": "1"})
    _, b = await api("POST", body={"name": "b", "code": "2"})
    status, starred = await api("PUT", a["id"], "star")
    assert status == 200 and starred["is_starred"] is True
    status, page = await api("GET", starred="true")
    assert [s["id"] for s in page["snippets"]] == [a["id"]] and page["total"] == 1
    status, page = await api("GET", starred="false")
    assert [s["id"] for s in page["snippets"]] == [b["id"]]
    status, unstarred = await api("DELETE", a["id"], "star")
    assert status == 200 and unstarred["is_starred"] is False
    assert (await api("GET", starred="true"))[1]["total"] == 0


async def test_pagination_and_filters(api: Any) -> None:
    ids = []
    for i in range(5):
        ids.append((await api("POST", body={"name": f"snippet {i}", "code": f"print({i})"}))[1]["id"])
    await api("POST", body={"name": "js", "code": "console.log(1)", "language": "javascript"})
    status, first = await api("GET", limit="2", offset="0", language="python")
    assert status == 200 and first["total"] == 5 and len(first["snippets"]) == 2
    _, rest = await api("GET", limit="2", offset="2", language="python")
    _, last = await api("GET", limit="2", offset="4", language="python")
    seen = [s["id"] for page in (first, rest, last) for s in page["snippets"]]
    assert seen == list(reversed(ids))  # newest first, each once
    _, found = await api("GET", q="snippet 3")
    assert [s["name"] for s in found["snippets"]] == ["snippet 3"]


async def test_users_never_see_each_other(api: Any) -> None:
    _, mine = await api("POST", body={"name": "alice's chart", "code": CHART}, user="alice")
    for method, path in [("GET", ()), ("PATCH", ()), ("DELETE", ()), ("PUT", ("star",)), ("DELETE", ("star",))]:
        body = {"name": "x"} if method == "PATCH" else None
        status, _ = await api(method, mine["id"], *path, user="bob", body=body)
        assert status == 404, (method, path)
    assert (await api("GET", user="bob"))[1]["total"] == 0
    _, bob_results = await api("GET", "search", q="alice's chart", user="bob")
    assert bob_results == []
    _, own = await api("GET", mine["id"], user="alice")
    assert own["name"] == "alice's chart" and own["is_starred"] is False


async def test_search_by_meaning(api: Any, jp_serverapp: Any) -> None:
    _, fib = await api("POST", body={"name": "util1", "code": FIB})
    _, chart = await api("POST", body={"name": "util2", "code": CHART})
    store = jp_serverapp.web_app.settings["coderemote_snippets"]
    await asyncio.to_thread(store.wait_embedded)
    status, results = await api("GET", "search", q="draw a graph of the numbers")
    assert status == 200 and results[0]["snippet"]["id"] == chart["id"]
    assert set(results[0]) == {"snippet", "score"} and results[0]["score"] > 0
    _, results = await api("GET", "search", q="fibonacci", limit="1")
    assert [r["snippet"]["id"] for r in results] == [fib["id"]]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"code": "1"}, 400, "missing"),
        ({"name": "", "code": "1"}, 400, "empty"),
        ({"name": "n" * 256, "code": "1"}, 400, "255"),
        ({"name": "a", "code": 1}, 400, "string"),
        ({"name": "a", "code": "1", "owner": "bob"}, 400, "unknown"),
        ({"name": "a", "code": "1", "is_starred": "yes"}, 400, "true or false"),
        ({"name": "a", "code": "1", "language": "py thon"}, 400, "language"),
        ({"name": "a", "code": "1", "analyzed_at": "yesterday"}, 400, "ISO"),
        ({"name": "a", "code": "x" * (64 * 1024 + 1)}, 413, "larger"),
        (["name", "code"], 400, "object"),
    ],
)
async def test_bad_input_on_create(api: Any, body: Any, status: int, words: str) -> None:
    got, error = await api("POST", body=body)
    assert got == status and words in error["message"] and "reason" in error


async def test_bad_requests(api: Any) -> None:
    _, snippet = await api("POST", body={"name": "a", "code": "x" * (64 * 1024)})  # exactly the limit is fine
    assert snippet["id"]
    assert (await api("POST", raw=b"{not json"))[0] == 400
    assert (await api("PATCH", snippet["id"], body={"version": "1"}))[0] == 400
    assert (await api("PATCH", snippet["id"], body={"id": "other"}))[0] == 400
    assert (await api("PATCH", snippet["id"], body={"code": "y" * (64 * 1024 + 1)}))[0] == 413
    assert (await api("GET", "not-a-uuid"))[0] == 404
    assert (await api("GET", "00000000-0000-0000-0000-000000000000"))[0] == 404
    assert (await api("GET", limit="0"))[0] == 400
    assert (await api("GET", limit="many"))[0] == 400
    assert (await api("GET", starred="maybe"))[0] == 400
    assert (await api("GET", "search"))[0] == 400
    assert (await api("GET", "search", q="x", limit="1000"))[0] == 400


def test_every_editable_field_is_checked() -> None:
    """Each field a body may set has its check (the code's is in snippet_fields), and no other."""
    from snippets.handlers import FIELD_CHECKS
    from snippets.store import EDITABLE_FIELDS

    assert set(FIELD_CHECKS) | {"code"} == set(EDITABLE_FIELDS)
