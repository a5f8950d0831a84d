"""What every feature of the API builds on, and nothing more (see docs/architecture.md).

The JSON handler base (``CodeRemoteAPIHandler``: bounded request bodies, errors
as ``{"message", "reason"}``), ``RequestError`` for a request a feature refuses,
and the caller's identity (``owner``). Features (execution, analysis, snippets,
history, submissions) import this module; it imports none of them, and
``kernel_gateway_ext.app`` is the one place that wires them together.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from kernel_gateway_ext.bodies import MAX_HEADERS_BYTES, MAX_URI_BYTES, parse_json_body
from kernel_gateway_ext.ownership import owner_of

AUTH_RESOURCE = "coderemote"
# CodeRemoteApp.max_body_bytes's default (a traitlet there; the handlers read it from the settings).
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
# CodeRemoteApp.max_code_bytes's default: the largest code a run, an analysis or a snippet holds.
DEFAULT_MAX_CODE_BYTES = 64 * 1024
MAX_PAGE_LIMIT = 100  # rows one listing (executions, submissions) answers at most
MAX_PAGE_OFFSET = 1_000_000


def gemini_api_key_from_environment() -> str:
    """The Gemini API key of the server's environment: ``$GEMINI_API_KEY``, else
    ``$GOOGLE_API_KEY`` (as google-genai reads them), else ``""``. The default of
    ``GeminiProvider.api_key`` and ``SnippetStore.gemini_api_key``; never passed to a sandbox."""
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or ""


class RequestError(ValueError):
    """A request the service refuses: ``status`` is the HTTP status to answer with,
    ``headers`` any headers that go with it (``Retry-After``). Raised from a handler
    of ``CodeRemoteAPIHandler``, it becomes that JSON error: ``{"message", "reason"}``,
    or ``body()`` when a subclass gives one."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any] | None:
        """The JSON answer, when it is not APIHandler's ``{"message", "reason"}``."""
        return None


def write_request_error(handler: web.RequestHandler, error: RequestError) -> None:
    """Answer ``handler``'s request with ``error``'s status, headers and ``body()``."""
    handler.clear()
    handler.set_status(error.status)
    for name, value in error.headers.items():
        handler.set_header(name, value)
    handler.set_header("Content-Type", "application/json")
    handler.finish(error.body())


class HTTPErrorWithHeaders(web.HTTPError):
    """An HTTPError that keeps response headers (tornado clears them before write_error)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(status_code, message)
        self.headers = headers


@web.stream_request_body
class CodeRemoteAPIHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    """Base of the JSON handlers; errors become ``{"message", "reason"}`` through APIHandler.

    The body is streamed in (``stream_request_body``): ``prepare`` checks the
    request target's length, who is calling and the declared size before a
    byte of the body is read, and at most ``max_body_bytes`` of it are kept.
    """

    auth_resource = AUTH_RESOURCE
    # Whether ``json_body`` refuses NUL characters (bodies whose text goes to PostgreSQL).
    forbid_nul = False

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self._body = bytearray()
        self._body_too_large = False

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read (``CodeRemoteApp.max_body_bytes``)."""
        return int(self.settings.get("coderemote_max_body_bytes", DEFAULT_MAX_BODY_BYTES))

    async def prepare(self) -> None:  # type: ignore[override]
        """Refuse an oversized target or headers, an anonymous body, or a declared oversized body."""
        if len(self.request.uri or "") > MAX_URI_BYTES:
            raise web.HTTPError(414, f"the request target (path and query string) is longer than {MAX_URI_BYTES} bytes")
        if sum(len(k) + len(v) + 4 for k, v in self.request.headers.get_all()) > MAX_HEADERS_BYTES:
            raise web.HTTPError(431, f"the request headers are larger than {MAX_HEADERS_BYTES} bytes")
        await super().prepare()
        if self._finished:  # e.g. redirected to the login page
            return
        if self.request.method in ("POST", "PUT", "PATCH") and not self.current_user:
            # Identity before the body: an anonymous caller's body is never read.
            raise web.HTTPError(403)
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            raise web.HTTPError(413, f"the request body is larger than {self.max_body_bytes} bytes")

    def data_received(self, chunk: bytes) -> None:
        """Keep at most ``max_body_bytes`` (+1, to tell a larger body); drop the rest."""
        if self._finished or self._body_too_large:
            return
        self._body += chunk
        if len(self._body) > self.max_body_bytes:
            self._body_too_large = True
            self._body = bytearray()

    def owner(self) -> str:
        """Who owns the kernels, sessions, runs and snippets of this request (see ``owner_of``)."""
        return owner_of(self)

    async def rate_limit(self, kind: str) -> None:
        """Count one request of ``kind`` against the caller's limit (``RateLimiter.hit``):
        RateLimited, a RequestError answering 429, past it."""
        limiter = self.settings.get("coderemote_rate_limiter")
        if limiter is not None:
            await limiter.hit(self.owner(), kind)

    def _handle_request_exception(self, e: BaseException) -> None:
        """A ``RequestError`` a handler lets out answers as its status, message and headers."""
        if not isinstance(e, RequestError) or self._finished:
            super()._handle_request_exception(e)
            return
        if e.body() is not None:
            write_request_error(self, e)
            return
        try:
            raise HTTPErrorWithHeaders(e.status, str(e), e.headers) from e
        except HTTPErrorWithHeaders as error:
            super()._handle_request_exception(error)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """APIHandler's JSON error, with the headers the error carries."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        for name, value in getattr(error, "headers", {}).items():
            self.set_header(name, value)
        super().write_error(status_code, **kwargs)

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        """The query argument ``name`` as an integer from ``low`` to ``high``, ``default`` when
        absent or empty (HTTP 400 otherwise)."""
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)) or not low <= int(raw) <= high:
            raise RequestError(400, f"'{name}' must be an integer from {low} to {high}")
        return int(raw)

    def page_arguments(self, statuses: tuple[str, ...]) -> tuple[int, int, str | None]:
        """A listing's ``limit`` (1-100, default 20), ``offset`` and optional ``status``,
        one of ``statuses`` (HTTP 400 otherwise)."""
        limit = self.int_argument("limit", 20, 1, MAX_PAGE_LIMIT)
        offset = self.int_argument("offset", 0, 0, MAX_PAGE_OFFSET)
        status = self.get_argument("status", None)
        if status is not None and status not in statuses:
            raise RequestError(400, f"'status' must be one of {', '.join(statuses)}")
        return limit, offset, status

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object, through ``parse_json_body`` (HTTP 400/413 otherwise)."""
        if self._body_too_large:
            raise web.HTTPError(413, f"the request body is larger than {self.max_body_bytes} bytes")
        return parse_json_body(bytes(self._body), max_bytes=self.max_body_bytes, forbid_nul=self.forbid_nul)
