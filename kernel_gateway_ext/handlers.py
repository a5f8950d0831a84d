"""REST handlers of the ``coderemote`` extension (see DESIGN.md, REST contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from kernel_gateway_ext.bodies import MAX_HEADERS_BYTES, MAX_URI_BYTES, parse_json_body
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionService, RequestError
from kernel_gateway_ext.identity import page_authenticated
from kernel_gateway_ext.pool import CapacityError, SandboxUnavailableError
from kernel_gateway_ext.ratelimit import RateLimited, write_rate_limited
from kernel_gateway_ext.sandboxed import SANDBOXED_KERNEL, owner_of

AUTH_RESOURCE = "coderemote"
EDITOR_ASSETS = Path(__file__).parent / "static" / "editor"


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
    max_body_bytes = 2 * 1024 * 1024
    # Whether ``json_body`` refuses NUL characters (bodies whose text goes to PostgreSQL).
    forbid_nul = False

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self._body = bytearray()
        self._body_too_large = False

    @property
    def execution(self) -> ExecutionService:
        return self.settings["coderemote_execution"]

    async def prepare(self) -> None:  # type: ignore[override]
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
        """Who owns the kernels, sessions and snippets of this request (see ``owner_of``)."""
        return owner_of(self)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        for name, value in getattr(error, "headers", {}).items():
            self.set_header(name, value)
        super().write_error(status_code, **kwargs)

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        """The query argument ``name`` as an integer from ``low`` to ``high`` (HTTP 400 otherwise)."""
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
            raise web.HTTPError(400, f"'{name}' must be an integer from {low} to {high}")
        return int(raw)

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object, through ``parse_json_body`` (HTTP 400/413 otherwise)."""
        if self._body_too_large:
            raise web.HTTPError(413, f"the request body is larger than {self.max_body_bytes} bytes")
        return parse_json_body(bytes(self._body), max_bytes=self.max_body_bytes, forbid_nul=self.forbid_nul)


class ExecuteHandler(CodeRemoteAPIHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Run code; 429 past the caller's rate limit; the run goes to the history after the answer."""
        owner = self.owner()
        try:
            request = ExecutionRequest.from_json(self.json_body())
            self.execution.check(request)  # a refused request spends nothing of the rate limit
            limiter = self.settings.get("coderemote_rate_limiter")
            if limiter is not None:
                await limiter.hit(owner, "execute")
            result = await self.execution.execute(request, owner=owner)
        except RateLimited as e:
            write_rate_limited(self, e)
            return
        except RequestError as e:
            raise web.HTTPError(e.status, str(e)) from e
        except CapacityError as e:
            raise HTTPErrorWithHeaders(503, str(e), {"Retry-After": str(e.retry_after)}) from e
        except SandboxUnavailableError as e:
            raise HTTPErrorWithHeaders(503, str(e), {"Retry-After": "5"}) from e
        self.finish(result.to_dict())
        history = self.settings.get("coderemote_history")
        if history is not None:
            history.record(
                user=owner,
                source="rest",
                status=result.status,
                duration_ms=result.duration_ms,
                code=request.code,
                kernel_id=result.kernel_id,
                usage=result.usage,
            )


class MetricsHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    """Prometheus text format; refusals are JSON, like the rest of the API (401/403,
    never a redirect to the login page)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(generate_latest(self.settings["coderemote_metrics"].registry), set_content_type=CONTENT_TYPE_LATEST)


class HealthHandler(CodeRemoteAPIHandler):
    """Unauthenticated, for load balancers: 200 when sandboxes can start, else 503.

    Anonymous callers get the status alone; the problems, paths and pool
    figures only go to a signed-in caller.
    """

    async def get(self) -> None:
        """Whether sandboxes can start."""
        health = self.settings["coderemote_health"]()
        self.set_status(200 if health["status"] == "ok" else 503)
        self.finish(health if self.current_user else {"status": health["status"]})


class PageHandler(ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, JupyterHandler):  # type: ignore[misc]
    """The editor page: Monaco and a sandboxed kernel, bundled into static/editor/ at build time.

    In JWT mode the page is served to anyone (it holds no data) and signs in in
    the browser: with OpenID Connect when an issuer and client id are known
    (``oidc_settings``), else with a pasted token.
    """

    auth_resource = AUTH_RESOURCE

    def _app(self) -> Any:
        """The CodeRemoteApp; read from the settings, since the CSP is computed before
        ``initialize`` names the extension (``extensionapp`` needs the name)."""
        return self.settings.get("coderemote")

    def oidc_settings(self) -> dict[str, str] | None:
        """The page's OpenID Connect sign-in, or None (token mode, or no issuer or client id)."""
        provider = self.identity_provider
        if not getattr(provider, "serves_page_anonymously", False):
            return None
        app = self._app()
        issuer = str(getattr(app, "oidc_issuer", "") or getattr(provider, "issuer", ""))
        client_id = str(getattr(app, "oidc_client_id", "") or getattr(provider, "audience", ""))
        if not (_web_origin(issuer) and client_id):
            return None
        return {
            "issuer": issuer,
            "clientId": client_id,
            "scope": str(getattr(app, "oidc_scope", "openid")),
            "token": str(getattr(app, "oidc_token", "access")),
        }

    def _sign_in_origins(self) -> list[str]:
        oidc = self.oidc_settings()
        if oidc is None:
            return []
        origins = [_web_origin(oidc["issuer"])]
        origins += [_web_origin(url) for url in getattr(self._app(), "oidc_connect_origins", [])]
        return sorted({origin for origin in origins if origin})

    @property
    def content_security_policy(self) -> str:
        """Jupyter's header, as strict as Monaco allows: should kernel HTML get past the
        page's sanitizer, it still cannot run script, load anything from elsewhere, post
        a form or frame the page. Monaco injects its styles (``'unsafe-inline'``) and
        starts its worker from a ``blob:`` that imports our own static file; the kernel
        websocket is named since CSP Level 2 browsers do not count ``ws:`` as ``'self'``.
        With OpenID Connect sign-in, the issuer's origin (and ``oidc_connect_origins``)
        may be fetched from: discovery and the token endpoint; the sign-in itself is a
        top-level navigation, and tokens are renewed with refresh tokens, not frames.
        No ``report-uri``: the service mode serves no CSP report handler."""
        host = self.request.host
        # The Host header goes into a header: a host name, IP literal and port only.
        websocket = f" ws://{host} wss://{host}" if all(c.isalnum() or c in ".-:[]" for c in host) else ""
        sign_in = "".join(f" {origin}" for origin in self._sign_in_origins())
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data: blob:",
                "media-src 'self' data: blob:",  # IPython.display.Audio/Video embed data: URLs
                f"connect-src 'self'{websocket}{sign_in}",
                "worker-src 'self' blob:",
                "frame-src 'none'",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )

    @page_authenticated
    async def get(self) -> None:
        """Render the page with its configuration."""
        if not (EDITOR_ASSETS / "main.js").is_file():
            raise web.HTTPError(503, f"the editor is not built ({EDITOR_ASSETS} is empty): pip install . rebuilds it")
        static_url = url_path_join(self.base_url, "static", self.name, "editor") + "/"
        config = {
            "baseUrl": self.base_url,
            "staticUrl": static_url,
            "kernelName": SANDBOXED_KERNEL,
            "defaultTimeoutSeconds": self.settings["coderemote_execution"].default_timeout,
            "jwtMode": bool(getattr(self.identity_provider, "serves_page_anonymously", False)),
            "oidc": self.oidc_settings(),
        }
        self.finish(self.render_template("index.html", assets_url=static_url, config=config))


def _web_origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL whose parts are safe in a header, else ``""``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return ""
    netloc = parts.netloc
    if parts.scheme not in ("http", "https") or not netloc or "@" in netloc:
        return ""
    if not all(c.isalnum() or c in ".-:[]" for c in netloc):
        return ""
    return f"{parts.scheme}://{netloc.lower()}"


default_handlers = [
    (r"/api/coderemote/execute", ExecuteHandler),
    (r"/api/coderemote/health", HealthHandler),
    (r"/api/coderemote/metrics", MetricsHandler),
    (r"/coderemote/?", PageHandler),
]
