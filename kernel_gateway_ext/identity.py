"""Who is calling: JWT bearer tokens for multi-user deployments.

``JWTIdentityProvider`` is a Jupyter Server ``IdentityProvider``: each request
carries a JWT (from Amazon Cognito, Keycloak, Auth0, any OpenID Connect
provider, or one signed with a shared secret for development) and the
token's claims say who the caller is and which groups they are in. Jupyter's
own token, login page and cookies are not used.

Where a token is read from, first found wins:

1. the ``Authorization`` header, ``Bearer <JWT>`` or ``token <JWT>`` (the
   scheme jupyter_client and JupyterLab send);
2. on websockets, the ``Sec-WebSocket-Protocol`` entry
   ``v1.token.websocket.jupyter.org.<url-encoded JWT>`` (Jupyter's JEP 119
   scheme for browsers, which cannot set headers on a websocket); the client
   offers ``v1.kernel.websocket.jupyter.org`` too, which the server selects;
3. the ``?token=<JWT>`` query parameter (what JupyterLab appends to websocket
   URLs).

Keys: HS256 with ``secret`` only; RS256 (``kty`` RSA) and ES256 (``kty`` EC,
P-256) with keys from ``jwks_url``, or the ``jwks_uri`` that OpenID Connect
discovery finds under ``issuer``. ``alg: none`` and any other algorithm are
refused, and a token's own key hints (``jku``, ``x5u``, ``jwk``) are never
followed.

A request that needs a user (its handler method is ``web.authenticated``,
``ws_authenticated`` or ``authorized``) and has no valid token is answered 401
``{"message", "reason"}`` with ``WWW-Authenticate: Bearer``; 503 when the
signing keys could not be fetched. Anonymous routes (health, the OpenAPI
description, static files, the editor page, see ``page_authenticated``) see no
user instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import unquote, urlsplit

import httpx
import jwt
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets import Float, List, TraitError, Unicode, default, validate
from traitlets.config import Config

FuncT = TypeVar("FuncT", bound=Callable[..., Any])

CLASS = "JWTIdentityProvider"
# The settings that turn JWT sign-in on (see ``jwt_mode``).
JWT_SETTINGS = ("secret", "jwks_url", "issuer")
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 16 * 1024
MAX_LABEL_CHARS = 255
MAX_GROUPS = 256
MAX_KEYS_BYTES = 1024 * 1024
WS_TOKEN_PROTOCOL = "v1.token.websocket.jupyter.org"
HMAC_ALGORITHM = "HS256"
# The one algorithm each kind of JWKS key verifies.
KEY_ALGORITHMS: dict[tuple[Any, Any], str] = {("RSA", None): "RS256", ("EC", "P-256"): "ES256"}
ACCEPTED_ALGORITHMS = (HMAC_ALGORITHM, *KEY_ALGORITHMS.values())
# Characters a username or group may not hold: controls, format characters
# (bidi overrides, zero-width), surrogates and line/paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass
class JWTUser(User):  # type: ignore[misc]
    """A caller identified by a JWT: Jupyter's User, plus the token's groups."""

    groups: tuple[str, ...] = ()
    admin: bool = False


class InvalidToken(Exception):
    """The token is missing, malformed, badly signed or its claims are refused (HTTP 401)."""


class KeysUnavailable(Exception):
    """The signing keys could not be fetched, so no token can be checked (HTTP 503)."""


def jwt_mode(config: Config) -> bool:
    """Whether ``config`` sets up JWT sign-in (``JWTIdentityProvider.secret``, ``jwks_url`` or ``issuer``)."""
    section = config.get(CLASS) or {}
    return any(bool(section.get(name)) for name in JWT_SETTINGS)


def is_admin(user: Any) -> bool:
    """Whether ``user`` is in one of ``JWTIdentityProvider.admin_groups``.

    Only JWT users can be: Jupyter's single-user token has one owner, who
    needs no rights over anyone else's kernels or snippets.
    """
    return isinstance(user, JWTUser) and user.admin


def safe_label(value: Any, what: str) -> str:
    """``value`` if it is text that may name an owner (1–255 characters, none of them
    control or format characters); InvalidToken otherwise. It is never used as a path."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidToken(f"the token's {what} is not a non-empty string")
    if len(value) > MAX_LABEL_CHARS:
        raise InvalidToken(f"the token's {what} is longer than {MAX_LABEL_CHARS} characters")
    if any(unicodedata.category(c) in REFUSED_CATEGORIES for c in value):
        raise InvalidToken(f"the token's {what} holds control or format characters")
    return value


def _code(decorator: Callable[[Any], Any]) -> CodeType:
    def method(self: Any) -> None: ...

    return cast(CodeType, decorator(method).__code__)


# Wrappers that refuse a request without a user (they share one code object).
_AUTHENTICATING = frozenset({_code(web.authenticated), _code(ws_authenticated), _code(authorized)})


def requires_user(handler: web.RequestHandler) -> bool:
    """Whether the handler method this request calls refuses anonymous callers."""
    method = getattr(handler, (handler.request.method or "").lower(), None)
    fn = getattr(method, "__func__", method)
    while fn is not None:
        if getattr(fn, "__code__", None) in _AUTHENTICATING:
            return True
        marker = getattr(fn, "__allow_unauthenticated", None)
        if marker is not None:
            return not marker
        fn = getattr(fn, "__wrapped__", None)
    return not handler.settings.get("allow_unauthenticated_access", True)


def page_authenticated(method: FuncT) -> FuncT:
    """For the GET of an HTML page that holds no data: ``web.authenticated`` and
    ``authorized``, unless the identity provider ``serves_page_anonymously``
    (JWT mode, where the page signs in in the browser and sends its token with
    each API call). Use it in their place on such a page's ``get``."""
    checked = web.authenticated(authorized(method))

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.identity_provider, "serves_page_anonymously", False):
            return await ensure_async(method(self, *args, **kwargs))
        return await ensure_async(checked(self, *args, **kwargs))

    wrapper.__allow_unauthenticated = True  # type: ignore[attr-defined]
    return cast(FuncT, wrapper)


def _header_text(text: str) -> str:
    """``text`` fit for a quoted WWW-Authenticate parameter."""
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:200]


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "::1", "localhost")


class JWTIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """Identifies each caller by a JWT: HS256 with a shared ``secret``, or RS256/ES256
    with keys from a JWKS (``jwks_url``, or found under ``issuer`` by OpenID Connect
    discovery). See the module docstring for where tokens are read from."""

    secret = Unicode(
        "",
        config=True,
        help="""Shared secret that HS256 tokens are signed with, at least 32 bytes
        (UTF-8). Default: empty (HS256 tokens are refused). Meant for development
        and tests; production deployments set ``jwks_url`` or ``issuer`` instead,
        whose private keys never reach this server.""",
    )
    jwks_url = Unicode(
        "",
        config=True,
        help="""URL of the JSON Web Key Set whose RSA (RS256) and P-256 (ES256) keys
        sign the tokens, e.g. Cognito's
        ``https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json``.
        Default: empty (found by discovery when ``issuer`` is set). The keys are
        cached and fetched again when a token names an unknown ``kid``, at most
        once per ``jwks_refetch_interval``, so the issuer can rotate them.""",
    )
    issuer = Unicode(
        "",
        config=True,
        help="""Required value of the tokens' ``iss`` claim, e.g.
        ``https://cognito-idp.{region}.amazonaws.com/{pool}``. Default: empty (not
        checked). When neither ``jwks_url`` nor ``secret`` is set, the keys come
        from ``{issuer}/.well-known/openid-configuration`` (its ``jwks_uri``).""",
    )
    audience = Unicode(
        "",
        config=True,
        help="""Required value of the tokens' ``aud`` claim (one of its values if a
        list), or of ``client_id`` for access tokens that have no ``aud`` (Cognito
        access tokens): the client id the tokens are issued for. Default: empty
        (not checked; set it whenever the issuer serves other clients too).""",
    )
    token_use = List(
        Unicode(),
        ["access", "id"],
        config=True,
        help="""Accepted values of the tokens' ``token_use`` claim (Cognito puts
        ``access`` or ``id`` there); tokens without the claim are not affected.
        Default: both, since browser sign-in may send either; set ``["access"]``
        to accept access tokens only.""",
    )
    username_claim = Unicode(
        "sub",
        config=True,
        help="""Claim that names the caller; its value owns their kernels, sessions
        and snippets. Default: ``sub`` (stable per user at every issuer); e.g.
        ``username`` (Cognito access tokens) or ``email`` when names must be
        readable. At most 255 characters, no control characters.""",
    )
    groups_claim = Unicode(
        "groups",
        config=True,
        help="""Claim that lists the caller's groups (an array of strings, or one
        string). Default: ``groups``; ``cognito:groups`` for Cognito.""",
    )
    admin_groups = List(
        Unicode(),
        [],
        config=True,
        help="""Groups whose members are administrators (``is_admin``). Default:
        none.""",
    )
    leeway = Float(
        30.0,
        config=True,
        help="""Clock skew allowed when checking ``exp``, ``nbf`` and ``iat``, in
        seconds. Default: 30; raise it only for hosts whose clocks drift.""",
    )
    jwks_timeout = Float(
        5.0,
        config=True,
        help="""Time limit of fetching the signing keys (the discovery document and
        the JWKS together), in seconds; past it the request that needed the keys
        is answered 503. Default: 5.""",
    )
    jwks_refetch_interval = Float(
        30.0,
        config=True,
        help="""Least time between two fetches of the JWKS (after a token with an
        unknown ``kid``, or a failed fetch), in seconds, so that tokens with made-up
        key ids cannot make this server flood the issuer. Default: 30.""",
    )

    # The editor page holds no data and signs in in the browser (page_authenticated).
    serves_page_anonymously = True

    @validate("secret")
    def _validate_secret(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise TraitError(
                f"{CLASS}.secret is {len(value.encode())} bytes long; an HS256 secret must be at least "
                f"{MIN_SECRET_BYTES} bytes (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @validate("jwks_url", "issuer")
    def _validate_url(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise TraitError(f"{CLASS}.{proposal['trait'].name} must be an http(s) URL with a host, not {value!r}")
        return value

    @validate("leeway", "jwks_timeout", "jwks_refetch_interval")
    def _validate_seconds(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 0 <= value <= 3600:
            raise TraitError(f"{CLASS}.{proposal['trait'].name} must be between 0 and 3600 seconds, not {value}")
        return value

    @default("token")
    def _token_default(self) -> str:
        return ""

    @default("need_token")
    def _need_token_default(self) -> bool:
        return False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (self.secret or self.jwks_url or self.issuer):
            raise TraitError(f"{CLASS} needs {CLASS}.secret, {CLASS}.jwks_url or {CLASS}.issuer")
        if self.token:
            self.log.info("JWT sign-in: Jupyter's token (IdentityProvider.token) is not accepted")
            self.token = ""
        self._keys: dict[str | None, tuple[str, jwt.PyJWK]] = {}
        self._jwks_uri = self.jwks_url
        self._fetched_at = -float("inf")  # time.monotonic() of the last fetch attempt
        self._fetch_error: str | None = None
        self._lock: asyncio.Lock | None = None

    # -- Jupyter's IdentityProvider interface ---------------------------------

    @property
    def login_available(self) -> bool:
        """No login page: callers bring their token."""
        return False

    @property
    def logout_available(self) -> bool:
        """No logout: there is no cookie to clear."""
        return False

    def get_handlers(self) -> list[tuple[str, object]]:
        """No login or logout routes."""
        return []

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Jupyter's checks, then say how tokens are checked."""
        super().validate_security(app, ssl_options)
        accepted = []
        if self.secret:
            accepted.append("HS256 (shared secret)")
        if self.jwks_url or self.issuer:
            accepted.append(f"RS256/ES256 (keys from {self.jwks_url or self.issuer + ' by discovery'})")
        self.log.info(
            "JWT sign-in: %s; issuer %s, audience %s",
            ", ".join(accepted),
            self.issuer or "not checked",
            self.audience or "not checked",
        )
        if not self.audience:
            self.log.warning("JWT sign-in: JWTIdentityProvider.audience is not set, tokens for any client are accepted")
        for url in (self.jwks_url, self.issuer):
            if url and urlsplit(url).scheme != "https" and not _is_loopback(url):
                self.log.warning("JWT sign-in: %s is not https; keys fetched over it can be forged in transit", url)

    def get_token(self, handler: web.RequestHandler) -> str:
        """The JWT of a request: Authorization header, websocket subprotocol, or ``?token=``."""
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        if match:
            return match.group(2).strip()
        for protocol in handler.request.headers.get("Sec-WebSocket-Protocol", "").split(","):
            protocol = protocol.strip()
            if protocol.startswith(WS_TOKEN_PROTOCOL + "."):
                return unquote(protocol[len(WS_TOKEN_PROTOCOL) + 1 :])
        return str(handler.get_query_argument("token", ""))

    async def get_user(self, handler: web.RequestHandler) -> JWTUser | None:  # type: ignore[override]
        """The caller named by the request's JWT; None (or a 401/503 response, when
        the route needs a user) if there is none or it does not verify."""
        known = getattr(handler, "_jupyter_current_user", None)
        if known:
            return cast(JWTUser, known)
        token = self.get_token(handler)
        try:
            if not token:
                raise InvalidToken("")
            user = await self.verify(token)
        except InvalidToken as e:
            if requires_user(handler):
                self._refuse_unauthorized(handler, str(e))
            if token:
                self.log.debug("Ignoring an invalid token on an anonymous route: %s", e)
            return None
        except KeysUnavailable as e:
            if requires_user(handler):
                self._refuse(handler, 503, "keys_unavailable", str(e), {"Retry-After": str(self._retry_after())})
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return user

    # -- verification -----------------------------------------------------------

    async def verify(self, token: str) -> JWTUser:
        """The user a token names; InvalidToken or KeysUnavailable if it cannot be trusted."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as e:
            raise InvalidToken(f"the token is not a JWT: {e}") from e
        alg = header.get("alg")
        if alg not in ACCEPTED_ALGORITHMS:
            raise InvalidToken(f"the token's algorithm {alg!r} is not accepted (only {', '.join(ACCEPTED_ALGORITHMS)})")
        if alg == HMAC_ALGORITHM:
            if not self.secret:
                raise InvalidToken("HS256 tokens are not accepted: this server verifies tokens with public keys")
            key: Any = self.secret.encode()
        else:
            if not (self.jwks_url or self.issuer):
                raise InvalidToken(f"{alg} tokens are not accepted: this server verifies HS256 tokens only")
            kid = header.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise InvalidToken("the token's kid is not a string")
            key = (await self.signing_key(kid, alg)).key
        require = ["exp"] + (["iss"] if self.issuer else [])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self.issuer or None,
                leeway=self.leeway,
                options={"require": require, "verify_aud": False},
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(str(e) or type(e).__name__) from e
        self._check_use_and_audience(claims)
        return self.user_from_claims(claims)

    def _check_use_and_audience(self, claims: dict[str, Any]) -> None:
        use = claims.get("token_use")
        if use is not None and use not in self.token_use:
            raise InvalidToken(f"tokens with token_use {use!r} are not accepted")
        if not self.audience:
            return
        if "aud" in claims:
            aud = claims["aud"]
            audiences = aud if isinstance(aud, list) else [aud]
            if self.audience not in audiences:
                raise InvalidToken("the token is not meant for this service (aud)")
        elif use == "access" and "client_id" in claims:
            if claims["client_id"] != self.audience:
                raise InvalidToken("the token is not meant for this service (client_id)")
        else:
            raise InvalidToken("the token has no aud claim")

    def user_from_claims(self, claims: dict[str, Any]) -> JWTUser:
        """The JWTUser of verified claims."""
        if self.username_claim not in claims:
            raise InvalidToken(f"the token has no {self.username_claim!r} claim")
        username = safe_label(claims[self.username_claim], f"{self.username_claim!r} claim")
        raw = claims.get(self.groups_claim, [])
        raw = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        groups: list[str] = []
        for group in raw[:MAX_GROUPS]:
            try:
                groups.append(safe_label(group, "group"))
            except InvalidToken:
                continue
        name = claims.get("name")
        try:
            name = safe_label(name, "name") if name is not None else username
        except InvalidToken:
            name = username
        return JWTUser(
            username=username,
            name=name,
            groups=tuple(groups),
            admin=any(group in self.admin_groups for group in groups),
        )

    # -- keys ------------------------------------------------------------------------

    async def signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The JWKS key ``kid`` names (the only key for ``alg`` when there is no kid),
        fetching the JWKS when it is unknown and the last fetch is old enough."""
        found = self._cached_key(kid, alg)
        if found is not None:
            return found
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            found = self._cached_key(kid, alg)  # fetched while this request waited
            if found is None and time.monotonic() - self._fetched_at >= self.jwks_refetch_interval:
                await self._refresh()
                found = self._cached_key(kid, alg)
        if found is not None:
            return found
        if self._fetch_error is not None:
            raise KeysUnavailable(f"the signing keys could not be fetched: {self._fetch_error}")
        raise InvalidToken(f"no {alg} signing key with kid {kid!r} is known" if kid else "the token has no kid")

    def _cached_key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is None:
            usable = [key for key_alg, key in self._keys.values() if key_alg == alg]
            return usable[0] if len(usable) == 1 else None
        entry = self._keys.get(kid)
        if entry is None:
            return None
        if entry[0] != alg:
            raise InvalidToken(f"the key {kid!r} verifies {entry[0]} tokens, not {alg}")
        return entry[1]

    def _retry_after(self) -> int:
        return max(1, round(self.jwks_refetch_interval - (time.monotonic() - self._fetched_at)))

    async def _refresh(self) -> None:
        """Fetch the JWKS (after discovery, the first time, when only ``issuer`` is set)
        within ``jwks_timeout`` in all. On failure, or a key set with no usable key,
        the keys known so far are kept and ``_fetch_error`` says what went wrong."""
        self._fetched_at = time.monotonic()
        try:
            keys = await asyncio.wait_for(self._fetch_keys(), self.jwks_timeout)
            if not keys:
                raise ValueError(f"{self._jwks_uri} holds no RS256 or ES256 signing key")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TimeoutError) as e:
            problem = str(e) if str(e) else f"no answer within {self.jwks_timeout:g} s"
            self._fetch_error = f"{type(e).__name__}: {problem}"
            self.log.error("JWT sign-in: %s", self._fetch_error)
            return
        self._keys = keys
        self._fetch_error = None
        self.log.info("JWT sign-in: %d signing key(s) from %s", len(keys), self._jwks_uri)

    async def _fetch_keys(self) -> dict[str | None, tuple[str, jwt.PyJWK]]:
        async with httpx.AsyncClient(timeout=self.jwks_timeout, follow_redirects=False) as client:
            if not self._jwks_uri:
                self._jwks_uri = await self._discover(client)
            return self._parse_keys(await self._get_json(client, self._jwks_uri))

    async def _discover(self, client: httpx.AsyncClient) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(client, url)
        if document.get("issuer") != self.issuer:
            raise ValueError(f"{url} names the issuer {document.get('issuer')!r}, not {self.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ValueError(f"{url} has no jwks_uri")
        return jwks_uri

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        body = bytearray()
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"{url} answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_KEYS_BYTES:
                    raise ValueError(f"{url} sent more than {MAX_KEYS_BYTES} bytes")
        document = json.loads(bytes(body))
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not send a JSON object")
        return document

    def _parse_keys(self, document: dict[str, Any]) -> dict[str | None, tuple[str, jwt.PyJWK]]:
        keys: dict[str | None, tuple[str, jwt.PyJWK]] = {}
        entries = document.get("keys")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            alg = KEY_ALGORITHMS.get((entry.get("kty"), entry.get("crv")))
            if alg is None or entry.get("alg", alg) != alg:
                continue  # e.g. symmetric ("oct") keys: never a JWKS key here
            kid = entry.get("kid")
            try:
                keys[kid if isinstance(kid, str) else None] = (alg, jwt.PyJWK(entry, algorithm=alg))
            except jwt.PyJWKError as e:
                self.log.warning("JWT sign-in: skipping the key %r: %s", kid, e)
        return keys

    # -- refusals ------------------------------------------------------------------------

    def _refuse_unauthorized(self, handler: web.RequestHandler, problem: str) -> NoReturn:
        if not problem:
            message = "sign-in required: send a JWT as 'Authorization: Bearer <token>'"
            self._refuse(handler, 401, "missing_token", message, {"WWW-Authenticate": "Bearer"})
        challenge = f'Bearer error="invalid_token", error_description="{_header_text(problem)}"'
        self._refuse(handler, 401, "invalid_token", f"invalid token: {problem}", {"WWW-Authenticate": challenge})

    def _refuse(
        self, handler: web.RequestHandler, status: int, reason: str, message: str, headers: dict[str, str]
    ) -> NoReturn:
        """Answer ``status`` with a JSON ``{"message", "reason"}`` and end the request.

        Written here rather than raised: tornado clears the headers before
        ``write_error``, and Jupyter's own handlers would drop WWW-Authenticate.
        """
        self.log.info("%d %s %s: %s", status, handler.request.method, handler.request.path, message)
        handler.clear()
        handler.set_status(status)
        for name, value in headers.items():
            handler.set_header(name, value)
        handler.set_header("Content-Type", "application/json")
        handler.finish(json.dumps({"message": message, "reason": reason}))
        raise web.Finish()


__all__ = [
    "JWTIdentityProvider",
    "JWTUser",
    "InvalidToken",
    "KeysUnavailable",
    "is_admin",
    "jwt_mode",
    "page_authenticated",
    "requires_user",
    "safe_label",
]
