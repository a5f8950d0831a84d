"""The extension's own handlers: execute, health, metrics and the editor page (see docs/architecture.md)."""

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

from kernel_gateway_ext.base import AUTH_RESOURCE, CodeRemoteAPIHandler
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionService
from kernel_gateway_ext.identity import page_authenticated

EDITOR_ASSETS = Path(__file__).parent / "static" / "editor"


class ExecuteHandler(CodeRemoteAPIHandler):
    """``POST api/coderemote/execute``: one run, answered when it ends."""

    @property
    def execution(self) -> ExecutionService:
        return self.settings["coderemote_execution"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Run code; 429 past the caller's rate limit; the run goes to the history after the answer."""
        owner = self.owner()
        request = ExecutionRequest.from_json(self.json_body())
        self.execution.check(request)  # a refused request spends nothing of the rate limit
        await self.rate_limit("execute")
        result = await self.execution.execute(request, owner=owner)
        self.finish(result.to_dict())
        history = self.settings.get("coderemote_history")
        if history is not None:
            history.record_run(owner, "rest", request.code, result)


class MetricsHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    """Prometheus text format; refusals are JSON, like the rest of the API (401/403,
    never a redirect to the login page)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The server's metrics, for a Prometheus scraper with a token."""
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
            "kernelName": self.settings["coderemote_kernel_name"],
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
