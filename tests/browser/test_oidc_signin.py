"""The editor page signs in with OpenID Connect: headless Chromium, a real local
OpenID provider (oidc-provider-mock) and a real `jupyter coderemote` in JWT mode
that finds the provider's keys by discovery.

The provider is set up as Keycloak or Auth0 are for a browser client: the page
is a public client (no secret), the provider answers cross-origin calls from
the page's origin (CORS), and access tokens are JWTs signed with the provider's
key. The mock does not check PKCE, so the test checks what the browser sends:
an S256 challenge in the sign-in request and its verifier at the token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import Shots, run_and_wait, set_code
from tests.browser.server import EditorServer
from tests.jwt_helpers import TEST_SECRET, claims, hs256_token

pytest.importorskip("oidc_provider_mock")

import flask  # noqa: E402
import jwt  # noqa: E402
import werkzeug.serving  # noqa: E402
from oidc_provider_mock import _app as mock_app  # noqa: E402
from oidc_provider_mock import init_app  # noqa: E402
from oidc_provider_mock._storage import storage  # noqa: E402

CLIENT_ID = "coderemote-page"
# Tokens live 90 s: the page renews them (refresh token) 60 s before they expire.
TOKEN_SECONDS = 90

StartResponse = Callable[..., Any]


class CORS:
    """Lets the page's origin call the provider (discovery, token endpoint), as
    real providers do for the web origins a browser client registers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.origin = ""  # set once the page's server has its port

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        allowed = bool(self.origin) and environ.get("HTTP_ORIGIN") == self.origin
        headers = [("Access-Control-Allow-Origin", self.origin), ("Vary", "Origin")] if allowed else []
        if environ["REQUEST_METHOD"] == "OPTIONS" and allowed:
            start_response(
                "204 No Content",
                [
                    *headers,
                    ("Access-Control-Allow-Methods", "GET, POST"),
                    ("Access-Control-Allow-Headers", environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")),
                ],
            )
            return [b""]

        def start(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, response_headers + headers, *args)

        return self.app(environ, start)


def jwt_access_token(client: Any, grant_type: str, user: Any, scope: str) -> str:
    """An access token as Keycloak issues them: a JWT for the client, signed with the provider's key."""
    now = int(time.time())
    key = storage.jwk
    body = {
        "iss": flask.request.host_url.rstrip("/"),
        "sub": user.sub,
        "aud": client.get_client_id(),
        "client_id": client.get_client_id(),
        "scope": scope,
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(body, key.get_private_key(), "RS256", headers={"kid": key.as_dict()["kid"]})


class Provider:
    """oidc-provider-mock on a loopback port, in a thread of this process."""

    def __init__(self) -> None:
        app = flask.Flask(mock_app.__name__)  # its templates are found beside it
        app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = jwt_access_token
        init_app(app, access_token_max_age=timedelta(seconds=TOKEN_SECONDS))
        app.secret_key = b"test-only"
        self.cors = CORS(app)
        self.server = werkzeug.serving.make_server("127.0.0.1", 0, self.cors, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, EditorServer]]:
    """The provider and a server that trusts it; the page is a public client of it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http on loopback
        # The mock authenticates every client with a secret; the page is public ("none").
        for grant in (mock_app.AuthorizationCodeGrant, mock_app.RefreshTokenGrant):
            patch.setattr(grant, "TOKEN_ENDPOINT_AUTH_METHODS", [*grant.TOKEN_ENDPOINT_AUTH_METHODS, "none"])
        provider = Provider()
        try:
            server = EditorServer(
                tmp_path_factory.mktemp("oidc"),
                f"--JWTIdentityProvider.issuer={provider.issuer}",
                f"--JWTIdentityProvider.audience={CLIENT_ID}",
            )
        except BaseException:
            provider.stop()
            raise
        provider.cors.origin = server.url.rstrip("/")
        try:
            yield provider, server
        finally:
            server.stop()
            provider.stop()


def oidc_user(page: Any, provider: Provider) -> dict[str, Any]:
    """The user oidc-client-ts keeps in the tab's sessionStorage."""
    raw = page.evaluate("key => sessionStorage.getItem(key)", f"oidc.user:{provider.issuer}:{CLIENT_ID}")
    assert raw, "the page keeps no signed-in user"
    return dict(json.loads(raw))


def test_page_signs_in_with_pkce_and_runs_code_as_alice(browser: Any, oidc: tuple[Provider, EditorServer]) -> None:
    provider, server = oidc
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    shots = Shots(page, "test_oidc_signin")
    sent: dict[str, list[Any]] = {"authorize": [], "token": [], "kernels": [], "websockets": []}

    def on_request(request: Any) -> None:
        url = request.url
        if url.startswith(provider.issuer + "/oauth2/authorize") and request.method == "GET":
            sent["authorize"].append(parse_qs(urlsplit(url).query))
        elif url.startswith(provider.issuer + "/oauth2/token") and request.method == "POST":
            sent["token"].append(parse_qs(request.post_data or ""))
        elif urlsplit(url).path == "/api/kernels" and request.method == "POST":
            sent["kernels"].append(request)

    page.on("request", on_request)
    page.on("websocket", lambda ws: sent["websockets"].append(ws.url))

    response = page.goto(server.url + "coderemote/")
    assert response is not None
    page.wait_for_url(provider.issuer + "/oauth2/authorize?*")
    shots("provider-sign-in")
    page.fill("input[name='sub']", "alice")
    page.click("button[type='submit']:has-text('Authorize')")
    page.wait_for_url(server.url + "coderemote/")  # back, the code exchanged and dropped from the URL
    page.wait_for_selector("#kernel-status[data-status='idle']", timeout=60_000)
    assert page.inner_text("#signin-user") == "Signed in as alice"

    # PKCE: an S256 challenge, whose verifier the token request brings.
    (authorize,) = sent["authorize"]
    assert authorize["client_id"] == [CLIENT_ID] and authorize["response_type"] == ["code"]
    assert authorize["code_challenge_method"] == ["S256"]
    (exchange,) = sent["token"]
    assert exchange["grant_type"] == ["authorization_code"] and "client_secret" not in exchange
    digest = hashlib.sha256(exchange["code_verifier"][0].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == authorize["code_challenge"][0]

    # The page's calls carry alice's access token; the websocket carries it as a subprotocol, not in its URL.
    user = oidc_user(page, provider)
    token = user["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "alice"
    assert user.get("refresh_token")
    (start,) = sent["kernels"]
    assert start.headers["authorization"] == f"Bearer {token}"
    kernel_id = start.response().json()["id"]
    assert sent["websockets"] and all("token=" not in url for url in sent["websockets"])

    set_code(page, "print(2+2)")
    assert run_and_wait(page) == "ok"
    assert page.inner_text("#output").strip() == "4"
    shots("signed-in-ran")

    # The server knows the token as alice's, and her kernel is the page's.
    status, me = server.request("GET", "api/me", bearer=token)
    assert status == 200 and me["identity"]["username"] == "alice"
    status, kernels = server.request("GET", "api/kernels", bearer=token)
    assert status == 200 and kernel_id in [k["id"] for k in kernels]
    status, _ = server.request("GET", "api/kernels", bearer=token[:-4] + "AAAA")
    assert status == 401

    # Silent renewal with the refresh token, and the next call sends the new token.
    page.wait_for_function(
        """([key, old]) => { const u = JSON.parse(sessionStorage.getItem(key) || 'null');
                            return u && u.access_token && u.access_token !== old; }""",
        arg=[f"oidc.user:{provider.issuer}:{CLIENT_ID}", token],
        timeout=(TOKEN_SECONDS - 60 + 30) * 1000,
    )
    assert [e["grant_type"] for e in sent["token"]] == [["authorization_code"], ["refresh_token"]]
    renewed = oidc_user(page, provider)["access_token"]
    with page.expect_request(lambda r: "/api/coderemote/snippets" in r.url) as snippets_call:
        page.click(".cr-snippet-search button[type='submit']")
    assert snippets_call.value.headers["authorization"] == f"Bearer {renewed}"
    status, me = server.request("GET", "api/me", bearer=renewed)
    assert status == 200 and me["identity"]["username"] == "alice"
    set_code(page, "print(3*7)")
    assert run_and_wait(page) == "ok" and page.inner_text("#output").strip() == "21"
    page.close()
    context.close()


def test_page_content_security_policy_allows_the_issuer(oidc: tuple[Provider, EditorServer]) -> None:
    """Anonymous GET of the page in JWT mode (it signs in itself); connect-src names the issuer."""
    import urllib.request

    provider, server = oidc
    with urllib.request.urlopen(server.url + "coderemote/", timeout=30) as response:
        csp = response.headers["Content-Security-Policy"]
        page = response.read().decode()
    connect = next(part for part in csp.split("; ") if part.startswith("connect-src "))
    assert provider.issuer in connect.split()
    assert "frame-src 'none'" in csp and "form-action 'none'" in csp
    assert f'"issuer": "{provider.issuer}"' in page and f'"clientId": "{CLIENT_ID}"' in page


@pytest.fixture(scope="module")
def secret_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorServer]:
    """JWT mode without an issuer: the page offers to paste a token."""
    server = EditorServer(tmp_path_factory.mktemp("secret"), f"--JWTIdentityProvider.secret={TEST_SECRET}")
    yield server
    server.stop()


def test_without_an_issuer_a_pasted_token_signs_in(browser: Any, secret_server: EditorServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    websockets: list[str] = []
    page.on("websocket", lambda ws: websockets.append(ws.url))
    page.goto(secret_server.url + "coderemote/")
    page.wait_for_selector("#signin[open]")  # the kernel start was answered 401
    assert page.is_hidden("#signin-oidc-part")
    page.fill("#signin-token", hs256_token(claims("alice")))
    page.click("#signin-form button[type='submit']")  # reloads the page
    page.wait_for_selector("#kernel-status[data-status='idle']", timeout=60_000)
    set_code(page, "print(2+2)")
    assert run_and_wait(page) == "ok"
    assert page.inner_text("#output").strip() == "4"
    assert page.inner_text("#signin-open") == "Signed in (change token)"
    assert websockets and all("token=" not in url for url in websockets)
    Shots(page, "test_oidc_signin_pasted")("pasted-token-ran")
    page.close()
    context.close()
