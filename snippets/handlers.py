"""REST handlers of the snippet library (``api/coderemote/snippets``, see docs/architecture.md).

Every snippet belongs to the caller (``owner()``); another owner's snippet id is
answered 404, as if it did not exist. The store blocks on the database, so its
calls run in threads and the tornado loop keeps serving.

``PATCH`` takes an optional ``version`` (the one the client last saw): when
the snippet has moved on since, the answer is 409 and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from kernel_gateway_ext.base import MAX_PAGE_LIMIT, MAX_PAGE_OFFSET, CodeRemoteAPIHandler, RequestError
from snippets.search import Filters
from snippets.store import EDITABLE_FIELDS, SnippetNotFound, SnippetStore, VersionConflict

T = TypeVar("T")

MAX_TEXT_BYTES = 64 * 1024
_LANGUAGE = re.compile(r"^[A-Za-z0-9+#._-]{1,32}$")


MAX_QUERY_CHARS = 1000


def database_text(name: str, value: str) -> str:
    """``value`` unless PostgreSQL cannot store it: RequestError 400 naming the field for
    a NUL character or a lone UTF-16 surrogate (not UTF-8)."""
    if "\x00" in value:
        raise RequestError(400, f"'{name}' must not contain NUL characters (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RequestError(400, f"'{name}' holds a lone UTF-16 surrogate: not Unicode text") from e
    return value


def _text(name: str, value: Any, max_chars: int | None = None, min_chars: int = 0, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise RequestError(400, f"'{name}' must be a string")
    database_text(name, value)
    if len(value.strip()) < min_chars:
        raise RequestError(400, f"'{name}' must not be empty")
    if max_chars is not None and len(value) > max_chars:
        raise RequestError(400, f"'{name}' is longer than {max_chars} characters")
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise RequestError(413, f"'{name}' is larger than {MAX_TEXT_BYTES} bytes")
    return value


def _strings(name: str, value: Any, nullable: bool = True) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 1000 for v in value):
        raise RequestError(400, f"'{name}' must be a list of strings")
    for item in value:
        database_text(name, item)
    return value


def _timestamp(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(_text(name, value))
    except ValueError as e:
        raise RequestError(400, f"'{name}' must be an ISO 8601 date and time") from e


def _language(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise RequestError(400, f"'{name}' must be a language name such as 'python'")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RequestError(400, f"'{name}' must be true or false")
    return value


FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "name": lambda n, v: _text(n, v, max_chars=255, min_chars=1),
    "description": lambda n, v: _text(n, v),
    "language": _language,
    "is_starred": _boolean,
    "time_complexity": lambda n, v: _text(n, v, max_chars=32, nullable=True),
    "space_complexity": lambda n, v: _text(n, v, max_chars=32, nullable=True),
    "explanation": lambda n, v: _text(n, v, nullable=True),
    "suggestions": _strings,
    "patterns": lambda n, v: _strings(n, v, nullable=False),
    "analyzed_at": _timestamp,
    "model_used": lambda n, v: _text(n, v, max_chars=255, nullable=True),
}


def snippet_fields(body: Any, *, partial: bool, max_code_bytes: int) -> dict[str, Any]:
    """The checked fields of a create (``partial=False``) or PATCH body; RequestError 400/413 on bad input."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    allowed = set(EDITABLE_FIELDS) | ({"version"} if partial else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(400, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if not partial:
        missing = [name for name in ("name", "code") if name not in body]
        if missing:
            raise RequestError(400, f"missing field(s): {', '.join(missing)}")
    fields: dict[str, Any] = {}
    if "code" in body:
        code = body["code"]
        if not isinstance(code, str):
            raise RequestError(400, "'code' must be a string")
        database_text("code", code)
        if len(code.encode()) > max_code_bytes:
            raise RequestError(413, f"'code' is larger than {max_code_bytes} bytes")
        fields["code"] = code
    for name, check in FIELD_CHECKS.items():
        if name in body:
            fields[name] = check(name, body[name])
    return fields


class SnippetAPIHandler(CodeRemoteAPIHandler):
    """Base of the snippet handlers: the store, threads for its calls, its errors as HTTP errors.

    Their bodies and query strings go to PostgreSQL, which stores no NUL
    character: ``json_body`` refuses them, and ``text_argument`` too.
    """

    forbid_nul = True

    @property
    def store(self) -> SnippetStore:
        store: SnippetStore = self.settings["coderemote_snippets"]
        if store.start_error is not None:
            raise web.HTTPError(503, f"the snippet library is unavailable: {store.start_error}")
        return store

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except SnippetNotFound as e:
            raise web.HTTPError(404, f"no snippet {e}") from e
        except VersionConflict as e:
            raise web.HTTPError(409, f"the snippet was changed meanwhile: {e}; fetch it and retry") from e

    def finish_json(self, value: Any) -> None:
        self.finish(json.dumps(value))

    def text_argument(self, name: str, default: str | None = None, max_chars: int = MAX_QUERY_CHARS) -> str | None:
        """A query-string parameter for the database: HTTP 400 when too long or holding NUL."""
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        if len(value) > max_chars:
            raise web.HTTPError(400, f"'{name}' is longer than {max_chars} characters")
        return database_text(name, value)

    def filters(self) -> Filters:
        starred = self.get_query_argument("starred", None)
        if starred not in (None, "", "true", "false", "1", "0"):
            raise web.HTTPError(400, "'starred' must be true or false")
        language = self.text_argument("language", max_chars=32) or None
        complexity = self.text_argument("complexity", max_chars=32) or None
        return Filters(
            starred=None if starred in (None, "") else starred in ("true", "1"),
            language=language,
            time_complexity=complexity or self.text_argument("time_complexity", max_chars=32) or None,
            space_complexity=self.text_argument("space_complexity", max_chars=32) or None,
        )


class SnippetsHandler(SnippetAPIHandler):
    """``GET`` and ``POST api/coderemote/snippets``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's snippets, newest first, filtered (``q``, ``starred``, ``language``, complexity) and paged."""
        limit = self.int_argument("limit", 20, 1, MAX_PAGE_LIMIT)
        offset = self.int_argument("offset", 0, 0, MAX_PAGE_OFFSET)
        q = self.text_argument("q") or None
        page = await self.call(self.store.list_snippets, self.owner(), self.filters(), q=q, limit=limit, offset=offset)
        self.finish_json({"snippets": page.snippets, "total": page.total, "limit": limit, "offset": offset})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Save a new snippet of the caller's: 201 with it and its Location."""
        fields = snippet_fields(self.json_body(), partial=False, max_code_bytes=self.store.max_code_bytes)
        snippet = await self.call(self.store.create, self.owner(), fields)
        self.set_status(201)
        self.set_header("Location", url_path_join(self.base_url, "api", "coderemote", "snippets", snippet["id"]))
        self.finish_json(snippet)


class SnippetHandler(SnippetAPIHandler):
    """``GET``, ``PATCH`` and ``DELETE api/coderemote/snippets/{id}``."""

    @web.authenticated
    @authorized
    async def get(self, snippet_id: str) -> None:
        """One of the caller's snippets (another owner's is 404)."""
        self.finish_json(await self.call(self.store.get, self.owner(), snippet_id))

    @web.authenticated
    @authorized
    async def patch(self, snippet_id: str) -> None:
        """Change some fields; 409 when ``version`` is not the snippet's current one."""
        body = self.json_body()
        fields = snippet_fields(body, partial=True, max_code_bytes=self.store.max_code_bytes)
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise web.HTTPError(400, "'version' must be an integer")
        self.finish_json(await self.call(self.store.update, self.owner(), snippet_id, fields, version=version))

    @web.authenticated
    @authorized
    async def delete(self, snippet_id: str) -> None:
        """Delete the snippet: 204."""
        await self.call(self.store.delete, self.owner(), snippet_id)
        self.set_status(204)
        self.finish()


class StarHandler(SnippetAPIHandler):
    """``PUT`` and ``DELETE api/coderemote/snippets/{id}/star``."""

    @web.authenticated
    @authorized
    async def put(self, snippet_id: str) -> None:
        """Star the snippet; the answer is the snippet."""
        self.finish_json(await self.call(self.store.star, self.owner(), snippet_id, True))

    @web.authenticated
    @authorized
    async def delete(self, snippet_id: str) -> None:
        """Unstar the snippet; the answer is the snippet."""
        self.finish_json(await self.call(self.store.star, self.owner(), snippet_id, False))


class SearchHandler(SnippetAPIHandler):
    """``GET api/coderemote/snippets/search?q=``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's snippets closest to ``q`` (meaning, words and code patterns), best first."""
        query = (self.text_argument("q") or "").strip()
        if not query:
            raise web.HTTPError(400, "'q' (what to look for) is required")
        limit = self.int_argument("limit", 10, 1, MAX_PAGE_LIMIT)
        self.finish_json(await self.call(self.store.search, self.owner(), query, limit=limit, filters=self.filters()))


_ID = r"(?P<snippet_id>[^/]+)"

default_handlers = [
    (r"/api/coderemote/snippets/search", SearchHandler),
    (r"/api/coderemote/snippets", SnippetsHandler),
    (rf"/api/coderemote/snippets/{_ID}/star", StarHandler),
    (rf"/api/coderemote/snippets/{_ID}", SnippetHandler),
]
