"""Whose kernels and sessions a caller may see and use in service mode.

Every kernel started through ``api/kernels`` or ``api/sessions`` belongs to
the caller who started it (``SandboxedMappingKernelManager.owner``); a
session belongs to the owner of its kernel. ``OwnerAuthorizer`` checks the
kernel or session id of every request to Jupyter's kernel and session API,
the kernel websocket included, and answers someone else's id exactly as an
unknown one (404), so ids cannot be probed. The list handlers
(``SandboxedKernelRootHandler``, ``SandboxedSessionRootHandler``) show the
caller's own only. Members of ``JWTIdentityProvider.admin_groups`` see and
may act on every kernel.

With Jupyter's own token (single-user) every caller is the same owner.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import ensure_async
from tornado import web

from kernel_gateway_ext.identity import is_admin

SINGLE_USER = "local"
# Jupyter's auth resources whose routes name a kernel or a session.
OWNED_RESOURCES = frozenset({"kernels", "sessions"})


def owner_of(handler: JupyterHandler) -> str:
    """Who owns the kernels, sessions, snippets and history a request makes.

    Jupyter's own token (or password) login is single-user: it makes up a
    new anonymous name per cookie-less request, so all of it is one owner.
    """
    if type(handler.identity_provider) in (IdentityProvider, PasswordIdentityProvider):
        return SINGLE_USER
    return str(handler.current_user.username)


def sees_everything(handler: JupyterHandler) -> bool:
    return is_admin(handler.current_user)


def kernel_owner(handler: JupyterHandler, kernel_id: str) -> str | None:
    """Who started the kernel (None for a kernel this service does not know)."""
    owner = getattr(handler.kernel_manager, "owner", None)
    return owner(kernel_id) if owner is not None else None


def owns_kernel(handler: JupyterHandler, kernel_id: str) -> bool:
    """Whether the caller may see and use the kernel (an admin may use any known one)."""
    owner = kernel_owner(handler, kernel_id)
    return owner is not None and (owner == owner_of(handler) or sees_everything(handler))


def no_such_kernel(kernel_id: str) -> web.HTTPError:
    """What Jupyter answers for an unknown kernel id."""
    return web.HTTPError(404, f"Kernel does not exist: {kernel_id}")


async def session_kernel(handler: JupyterHandler, session_id: str) -> str:
    """The kernel id of the caller's session; 404 for an unknown session or someone else's."""
    not_found = web.HTTPError(404, f"Session not found: session_id={session_id!r}")
    try:
        model: dict[str, Any] = await ensure_async(handler.session_manager.get_session(session_id=session_id))
    except (web.HTTPError, KeyError):
        raise not_found from None
    kernel_id = str(model["kernel"]["id"])
    if not owns_kernel(handler, kernel_id):
        raise not_found
    return kernel_id


async def check_owner(handler: JupyterHandler) -> None:
    """404 unless the kernel or session the request's path names is the caller's."""
    arguments = handler.path_kwargs or {}
    kernel_id = arguments.get("kernel_id")
    if kernel_id is not None and not owns_kernel(handler, kernel_id):
        raise no_such_kernel(kernel_id)
    session_id = arguments.get("session_id")
    if session_id is not None:
        await session_kernel(handler, session_id)


class OwnerAuthorizer(Authorizer):  # type: ignore[misc]
    """Jupyter's Authorizer for a service of many users: every signed-in caller
    may use the API, but only on their own kernels and sessions (see the module
    docstring). Someone else's id is a 404, not a 403."""

    async def is_authorized(self, handler: JupyterHandler, user: Any, action: str, resource: str) -> bool:
        if resource in OWNED_RESOURCES:
            await check_owner(handler)
        return True


def own_kernels(handler: JupyterHandler, kernels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernel models of ``kernels`` the caller may see."""
    return [k for k in kernels if owns_kernel(handler, str(k.get("id")))]


def own_sessions(handler: JupyterHandler, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session models of ``sessions`` whose kernel the caller may see."""
    return [s for s in sessions if owns_kernel(handler, str((s.get("kernel") or {}).get("id")))]
