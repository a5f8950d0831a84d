"""Service mode: what `jupyter coderemote` offers, and nothing more.

The service is the one place that decides: its ServerApp (``ServiceServerApp``,
the class `jupyter coderemote` starts) loads no other server extension, starts
only sandboxed kernelspecs, keeps no files on the host, has no terminals, and
answers only the routes of ``ALLOWED_HANDLERS`` (anything else falls through
to the 404 handler). Each caller sees and uses only their own kernels and
sessions (``OwnerAuthorizer``). None of this is configurable: a setting that would undo
it is overridden with a warning.

*Lab mode* is this extension loaded into someone's own `jupyter lab` or
`jupyter server`: that server, its files, terminals and kernels stay as they
are; only the extension's own kernels (the page, the panel, the REST API) are
sandboxed (see ``CodeRemoteApp``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler
from jupyter_server.base.handlers import (
    APIHandler,
    APIVersionHandler,
    FileFindHandler,
    PublicStaticFileHandler,
    RedirectWithParams,
    Template404,
    TrailingSlashHandler,
)
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.kernelspecs.handlers import KernelSpecResourceHandler
from jupyter_server.serverapp import DEFAULT_STATIC_FILES_PATH, ServerApp
from jupyter_server.services.api.handlers import IdentityHandler
from jupyter_server.services.contents.manager import AsyncContentsManager
from jupyter_server.services.kernels.handlers import KernelActionHandler, KernelHandler
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from jupyter_server.services.kernelspecs.handlers import KernelSpecHandler, MainKernelSpecHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.routing import PathMatches, Rule
from traitlets import Integer, default

from kernel_gateway_ext.base import DEFAULT_MAX_BODY_BYTES
from kernel_gateway_ext.identity import JWTIdentityProvider, jwt_mode
from kernel_gateway_ext.ownership import OwnerAuthorizer
from kernel_gateway_ext.sandboxed import (
    SandboxedKernelRootHandler,
    SandboxedKernelSpecManager,
    SandboxedMappingKernelManager,
    SandboxedSessionHandler,
    SandboxedSessionRootHandler,
)

EXTENSION = "kernel_gateway_ext"
# The largest request body the service reads is the API handlers' limit
# (CodeRemoteApp.max_body_bytes) and this much more: they answer 413 with a
# message up to there; tornado answers a bare 400 past it without reading the
# body. Jupyter's contents API, which takes files, is not offered; the kernel
# and session API take small bodies.
BODY_ROOM = 64 * 1024
# The request line and headers tornado reads before it drops the connection
# without a response (its default is 64 KiB): room for the API handlers to
# answer 414 or 431 with a message to requests up to this size.
MAX_REQUEST_HEADER = 256 * 1024

# Jupyter's own handlers the service keeps: the kernel API (what the page,
# gateway clients and kernel websocket clients use), sessions on top of it
# (the service's own, which refuse kernels that are not sandboxed), kernelspecs
# and their logos, login, identity and the 404 page. The extension's own
# handlers (``CodeRemoteApp.handlers``) are allowed too.
# The service's own versions of Jupyter's routes that start kernels: sandboxed
# kernels only, each counted against the limits as its caller's.
OWN_HANDLERS = [
    (r"/api/kernels", SandboxedKernelRootHandler),
    (r"/api/sessions", SandboxedSessionRootHandler),
    (r"/api/sessions/(?P<session_id>\w+-\w+-\w+-\w+-\w+)", SandboxedSessionHandler),
]
ALLOWED_HANDLERS: tuple[type, ...] = (
    SandboxedKernelRootHandler,
    KernelHandler,
    KernelActionHandler,
    KernelWebsocketHandler,
    MainKernelSpecHandler,
    KernelSpecHandler,
    KernelSpecResourceHandler,
    SandboxedSessionRootHandler,
    SandboxedSessionHandler,
    APIVersionHandler,
    IdentityHandler,
    LoginFormHandler,
    LogoutHandler,
    TrailingSlashHandler,
    PublicStaticFileHandler,
    RedirectWithParams,
    Template404,
)


def handler_rules(web_app: web.Application) -> list[tuple[list[Rule], Rule]]:
    """Every (rule list, rule) that routes to a handler, through the nested host routers."""
    found = []
    seen: set[int] = set()
    pending = [web_app.default_router.rules, web_app.wildcard_router.rules]
    while pending:
        rules = pending.pop()
        if id(rules) in seen:  # the default router holds the wildcard one
            continue
        seen.add(id(rules))
        for rule in rules:
            nested = getattr(rule.target, "rules", None)
            if nested is not None:
                pending.append(nested)
            else:
                found.append((rules, rule))
    return found


def _serves_only(rule: Rule, folders: list[Path]) -> bool:
    paths = rule.target_kwargs.get("path") or []
    paths = [paths] if isinstance(paths, str) else paths
    return bool(paths) and all(
        any(Path(p).resolve().is_relative_to(folder.resolve()) for folder in folders) for p in paths
    )


def is_allowed(rule: Rule, extension_handlers: tuple[type, ...], asset_folders: list[Path]) -> bool:
    """Whether the service answers ``rule``: an allowed handler, or a static
    file handler that serves only Jupyter Server's and the extension's assets."""
    handler = rule.target
    if handler in ALLOWED_HANDLERS or handler in extension_handlers:
        return True
    if isinstance(handler, type) and issubclass(handler, FileFindHandler):
        return _serves_only(rule, asset_folders)
    return False


class NotOfferedHandler(APIHandler):  # type: ignore[misc]
    """A JSON 404 for the API routes the service does not offer."""

    async def prepare(self) -> None:  # type: ignore[override]
        raise web.HTTPError(404, f"{self.request.path} is not offered by this service")


def restrict_routes(
    web_app: web.Application, extension_handlers: tuple[type, ...], asset_folders: list[Path]
) -> list[Rule]:
    """Remove every route that is not allowed, so that API paths answer
    ``NotOfferedHandler``'s 404 and others Jupyter's; return the removed rules."""
    removed = []
    for rules, rule in handler_rules(web_app):
        if not is_allowed(rule, extension_handlers, asset_folders):
            rules.remove(rule)
            removed.append(rule)
    router = web_app.wildcard_router
    last = next(i for i, rule in enumerate(router.rules) if rule.target is Template404)
    api = PathMatches(url_path_join(web_app.settings["base_url"], "api/.*"))
    router.rules.insert(last, router.process_rule(Rule(api, NotOfferedHandler)))
    return removed


def route_pattern(rule: Rule) -> str:
    regex = getattr(rule.matcher, "regex", None)
    return regex.pattern if regex is not None else repr(rule.matcher)


class NoFilesContentsManager(AsyncContentsManager):  # type: ignore[misc]
    """The service keeps no files: an empty root folder that cannot be written.

    The contents API itself is not routed in the service; this manager is what
    Jupyter's session manager (and anything else in the server that asks for
    files) sees instead of the server's working directory.
    """

    async def dir_exists(self, path: str) -> bool:
        """Only the (empty) root exists."""
        return path.strip("/") == ""

    async def is_hidden(self, path: str) -> bool:
        """Nothing is hidden: there is nothing."""
        return False

    async def file_exists(self, path: str = "") -> bool:
        """No file exists."""
        return False

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        """The empty root folder; 404 for anything else."""
        if path.strip("/") or type not in (None, "directory"):
            raise web.HTTPError(404, f"No file or directory at {path!r}: this service keeps no files")
        return {
            "name": "",
            "path": "",
            "type": "directory",
            "format": "json" if content else None,
            "content": [] if content else None,
            "mimetype": None,
            "writable": False,
            "created": None,
            "last_modified": None,
            "size": None,
        }

    async def save(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        """Refused: the service writes no files."""
        raise web.HTTPError(403, "This service keeps no files")

    async def delete_file(self, path: str) -> None:
        """Refused: there is nothing to delete."""
        raise web.HTTPError(404, f"No file or directory at {path!r}: this service keeps no files")

    async def rename_file(self, old_path: str, new_path: str) -> None:
        """Refused: there is nothing to rename."""
        raise web.HTTPError(404, f"No file or directory at {old_path!r}: this service keeps no files")


class ServiceServerApp(ServerApp):  # type: ignore[misc]
    """The ServerApp of `jupyter coderemote`: Jupyter Server with every door
    that leads to the host shut (see the module docstring)."""

    max_header_size = Integer(
        MAX_REQUEST_HEADER,
        config=True,
        help="""Largest request line and headers, bytes; tornado closes the
        connection without a response to a larger request. Default: 256 KiB, room for
        the API to answer 414 or 431 past its own limits (8 KiB of target, 64 KiB of
        headers).""",
    )

    @default("identity_provider_class")
    def _default_identity_provider_class(self) -> type:
        """JWT sign-in (multi-user) when the configuration sets ``JWTIdentityProvider.secret``,
        ``jwks_url`` or ``issuer``; else Jupyter's own token (single-user)."""
        if jwt_mode(self.config):
            self.log.info("JWT sign-in: JWTIdentityProvider identifies callers; Jupyter's token is not accepted")
            return JWTIdentityProvider
        return ServerApp.identity_provider_class.default_value  # type: ignore[no-any-return]

    def _max_request_body(self) -> int:
        api_limit = self.config.get("CodeRemoteApp", {}).get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        return int(api_limit) + BODY_ROOM

    @default("max_body_size")
    def _default_max_body_size(self) -> int:
        return self._max_request_body()

    @default("max_buffer_size")
    def _default_max_buffer_size(self) -> int:
        return max(self._max_request_body(), self.max_header_size)

    def initialize(
        self,
        argv: list[str] | None = None,
        find_extensions: bool = True,
        new_httpserver: bool = True,
        starter_extension: Any = None,
    ) -> None:
        """Initialize without looking for other extensions in the config paths."""
        super().initialize(argv, False, new_httpserver, starter_extension)

    def init_server_extensions(self) -> None:
        """Load the coderemote extension alone, whatever the configuration enables; stop if it fails."""
        others = sorted(name for name, enabled in self.jpserver_extensions.items() if enabled and name != EXTENSION)
        if others:
            self.log.warning("The service loads no other server extension; not loading: %s", ", ".join(others))
        self.jpserver_extensions = {EXTENSION: True}
        # Jupyter logs an extension that fails to link or load and serves on without it,
        # or with its settings half read: the service stops instead, with the error.
        self.reraise_server_extension_failures = True
        super().init_server_extensions()

    def init_configurables(self) -> None:
        """Sandboxed kernels only, no host files, no terminals, no gateway, no extra static folders."""
        self.gateway_config = GatewayClient.instance(parent=self)
        if self.gateway_config.gateway_enabled:
            raise SystemExit("jupyter coderemote runs its own sandboxed kernels: it cannot use a gateway (gateway_url)")
        fixed: dict[str, tuple[Any, Any]] = {
            "kernel_spec_manager_class": (SandboxedKernelSpecManager, self.kernel_spec_manager_class),
            "kernel_manager_class": (SandboxedMappingKernelManager, self.kernel_manager_class),
            "contents_manager_class": (NoFilesContentsManager, self.contents_manager_class),
            "authorizer_class": (OwnerAuthorizer, self.authorizer_class),
        }
        for name, (required, configured) in fixed.items():
            if not (isinstance(configured, type) and issubclass(configured, required)):
                self.log.warning("The service uses its own %s (%s), not %s", name, required.__name__, configured)
                setattr(self, name, required)
        if self.terminals_enabled:
            self.terminals_enabled = False
        if self.extra_static_paths:
            self.log.warning("The service serves no extra static folders; ignoring %s", self.extra_static_paths)
            self.extra_static_paths = []
        super().init_configurables()

    def init_httpserver(self) -> None:
        """Jupyter's HTTP server, reading request headers up to ``max_header_size``."""
        super().init_httpserver()
        self.http_server.conn_params.max_header_size = self.max_header_size

    def load_server_extensions(self) -> None:
        """Load the extension, then remove every route not on the service's list."""
        super().load_server_extensions()
        # The extension's router is consulted before Jupyter's own: these win.
        base_url = self.web_app.settings["base_url"]
        self.web_app.add_handlers(".*$", [(url_path_join(base_url, path), h) for path, h in OWN_HANDLERS])
        extension = self.starter_app
        handlers = tuple(handler[1] for handler in extension.handlers)
        folders = [Path(DEFAULT_STATIC_FILES_PATH), *map(Path, extension.static_paths)]
        removed = restrict_routes(self.web_app, handlers, folders)
        self.log.info("Service mode: %d Jupyter routes are not offered", len(removed))
        for rule in removed:
            self.log.debug("Not offered: %s (%s)", route_pattern(rule), rule.target)
