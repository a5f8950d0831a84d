"""REST handlers of the ``coderemote`` extension (see DESIGN.md, REST contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from kernel_gateway_ext.execution import ExecutionRequest, ExecutionService, RequestError
from kernel_gateway_ext.pool import CapacityError, SandboxUnavailableError
from kernel_gateway_ext.sandboxed import SANDBOXED_KERNEL

AUTH_RESOURCE = "coderemote"
SINGLE_USER = "local"
EDITOR_ASSETS = Path(__file__).parent / "static" / "editor"


class HTTPErrorWithHeaders(web.HTTPError):
    """An HTTPError that keeps response headers (tornado clears them before write_error)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(status_code, message)
        self.headers = headers


class CodeRemoteAPIHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    """Base of the JSON handlers; errors become ``{"message", "reason"}`` through APIHandler."""

    auth_resource = AUTH_RESOURCE
    max_body_bytes = 2 * 1024 * 1024

    @property
    def execution(self) -> ExecutionService:
        return self.settings["coderemote_execution"]

    def owner(self) -> str:
        """Who owns the kernels and sessions of this request.

        Jupyter's own token (or password) login is single-user: it makes up a
        new anonymous name per cookie-less request, so all of it is one owner.
        """
        if type(self.identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            return SINGLE_USER
        return str(self.current_user.username)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        for name, value in getattr(error, "headers", {}).items():
            self.set_header(name, value)
        super().write_error(status_code, **kwargs)

    def json_body(self) -> Any:
        if len(self.request.body) > self.max_body_bytes:
            raise web.HTTPError(413, f"the request body is larger than {self.max_body_bytes} bytes")
        try:
            return json.loads(self.request.body or b"")
        except ValueError as e:
            raise web.HTTPError(400, f"the request body is not valid JSON: {e}") from e


class ExecuteHandler(CodeRemoteAPIHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            request = ExecutionRequest.from_json(self.json_body())
            result = await self.execution.execute(request, owner=self.owner())
        except RequestError as e:
            raise web.HTTPError(e.status, str(e)) from e
        except CapacityError as e:
            raise HTTPErrorWithHeaders(503, str(e), {"Retry-After": str(e.retry_after)}) from e
        except SandboxUnavailableError as e:
            raise HTTPErrorWithHeaders(503, str(e), {"Retry-After": "5"}) from e
        self.finish(result.to_dict())


class MetricsHandler(ExtensionHandlerMixin, JupyterHandler):  # type: ignore[misc]
    """Prometheus text format (an APIHandler would answer it as JSON)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.settings["coderemote_metrics"].registry))


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
    """The editor page: Monaco and a sandboxed kernel, bundled into static/editor/ at build time."""

    auth_resource = AUTH_RESOURCE

    @property
    def content_security_policy(self) -> str:
        """Jupyter's header, as strict as Monaco allows: should kernel HTML get past the
        page's sanitizer, it still cannot run script, load anything from elsewhere, post
        a form or frame the page. Monaco injects its styles (``'unsafe-inline'``) and
        starts its worker from a ``blob:`` that imports our own static file; the kernel
        websocket is named since CSP Level 2 browsers do not count ``ws:`` as ``'self'``.
        No ``report-uri``: the service mode serves no CSP report handler."""
        host = self.request.host
        # The Host header goes into a header: a host name, IP literal and port only.
        websocket = f" ws://{host} wss://{host}" if all(c.isalnum() or c in ".-:[]" for c in host) else ""
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data: blob:",
                "media-src 'self' data: blob:",  # IPython.display.Audio/Video embed data: URLs
                f"connect-src 'self'{websocket}",
                "worker-src 'self' blob:",
                "frame-src 'none'",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )

    @web.authenticated
    @authorized
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
        }
        self.finish(self.render_template("index.html", assets_url=static_url, config=config))


default_handlers = [
    (r"/api/coderemote/execute", ExecuteHandler),
    (r"/api/coderemote/health", HealthHandler),
    (r"/api/coderemote/metrics", MetricsHandler),
    (r"/coderemote/?", PageHandler),
]
