"""JWT sign-in (``JWTIdentityProvider``): real tokens signed with real keys,
keys served over loopback HTTP by ``JWKSServer``.

The many claim and key cases are checked on a provider instance
(``verify``); the rest end to end on real ``jupyter coderemote`` servers, one
per configuration: HS256 with a shared secret, and RS256/ES256 with keys found
by OpenID Connect discovery under ``issuer``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from jupyter_client.session import Session
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from traitlets import TraitError
from traitlets.config import Config

from kernel_gateway_ext.identity import (
    InvalidToken,
    JWTIdentityProvider,
    KeysUnavailable,
    is_admin,
    jwt_mode,
)
from tests.jwt_helpers import (
    TEST_SECRET,
    JWKSServer,
    claims,
    ec_key,
    hmac_token,
    hs256_token,
    rsa_key,
    tampered,
    unsigned_token,
)
from tests.servers import CodeRemoteServer, free_port
from tests.test_websocket import execute_request

AUDIENCE = "coderemote"
WS_TOKEN = "v1.token.websocket.jupyter.org"
WS_KERNEL = "v1.kernel.websocket.jupyter.org"


def hs_provider(**settings: Any) -> JWTIdentityProvider:
    return JWTIdentityProvider(secret=TEST_SECRET, **settings)


async def refused(provider: JWTIdentityProvider, token: str) -> str:
    """The reason ``provider`` gives for refusing ``token`` (the test fails if it is accepted)."""
    with pytest.raises(InvalidToken) as error:
        await provider.verify(token)
    return str(error.value)


@pytest.fixture
def idp() -> Iterator[JWKSServer]:
    with JWKSServer() as server:
        yield server


# --------------------------------------------------------------------------- HS256 claims


async def test_valid_hs256_token_names_the_user() -> None:
    user = await hs_provider().verify(hs256_token(claims("alice", name="Alice A.")))
    assert (user.username, user.name, user.groups, user.admin) == ("alice", "Alice A.", (), False)


# Claims are built when the test runs, not at collection: the tokens expire.
REFUSED_CLAIMS: dict[str, tuple[Any, str]] = {
    "expired": (lambda: claims(exp_in=-120), "expired"),
    "not-yet-valid": (lambda: claims(nbf_in=120), "nbf"),
    "issued-in-future": (lambda: claims(iat=int(time.time()) + 600), "iat"),
    "no-exp": (lambda: claims(exp=None), "exp"),
    "no-sub": (lambda: claims(sub=None), "'sub'"),
    "empty-sub": (lambda: claims(sub=""), "sub"),
    "long-sub": (lambda: claims(sub="x" * 256), "longer than 255"),
    "bidi": (lambda: claims(sub="alice\u202e"), "control or format"),
    "newline": (lambda: claims(sub="alice\n"), "control or format"),
}


@pytest.mark.parametrize("case", list(REFUSED_CLAIMS))
async def test_refused_claims(case: str) -> None:
    make_claims, reason = REFUSED_CLAIMS[case]
    assert reason in await refused(hs_provider(), hs256_token(make_claims()))


async def test_leeway_accepts_small_clock_skew_only() -> None:
    skewed = hs256_token(claims("alice", exp_in=-10, nbf_in=10))
    assert (await hs_provider().verify(skewed)).username == "alice"  # default leeway 30 s
    assert "expired" in await refused(hs_provider(leeway=0), hs256_token(claims(exp_in=-10)))
    assert "nbf" in await refused(hs_provider(leeway=0), hs256_token(claims(nbf_in=10)))


async def test_issuer_and_audience_are_checked() -> None:
    provider = hs_provider(issuer="https://id.invalid/realm", audience=AUDIENCE)
    good = claims("alice", iss="https://id.invalid/realm", aud=AUDIENCE)
    assert (await provider.verify(hs256_token(good))).username == "alice"
    assert (await provider.verify(hs256_token({**good, "aud": ["other", AUDIENCE]}))).username == "alice"
    assert "issuer" in (await refused(provider, hs256_token({**good, "iss": "https://evil.invalid/realm"}))).lower()
    assert "iss" in await refused(provider, hs256_token(claims("alice", aud=AUDIENCE)))
    assert "aud" in await refused(provider, hs256_token({**good, "aud": "someone-else"}))
    assert "aud" in await refused(provider, hs256_token({**good, "aud": ["a", "b"]}))
    assert "aud" in await refused(provider, hs256_token(claims("alice", iss="https://id.invalid/realm")))


async def test_audience_not_set_accepts_any_aud() -> None:
    assert (await hs_provider().verify(hs256_token(claims("alice", aud="whatever")))).username == "alice"


async def test_cognito_access_token_client_id_and_token_use() -> None:
    provider = hs_provider(audience="app-client-1", username_claim="username", groups_claim="cognito:groups")
    access = claims(
        "uuid-1", token_use="access", client_id="app-client-1", username="alice", **{"cognito:groups": ["t"]}
    )
    user = await provider.verify(hs256_token(access))
    assert (user.username, user.groups) == ("alice", ("t",))
    assert "client_id" in await refused(provider, hs256_token({**access, "client_id": "app-client-2"}))
    # An ID token carries aud; token_use "refresh" or anything else is refused.
    id_token = claims("uuid-1", token_use="id", aud="app-client-1", username="alice")
    assert (await provider.verify(hs256_token(id_token))).username == "alice"
    assert "token_use" in await refused(provider, hs256_token({**access, "token_use": "refresh"}))
    access_only = hs_provider(audience="app-client-1", username_claim="username", token_use=["access"])
    assert "token_use" in await refused(access_only, hs256_token(id_token))
    # client_id stands for aud only on access tokens.
    assert "aud" in await refused(provider, hs256_token(claims("alice", client_id="app-client-1")))


async def test_alg_none_and_other_algorithms_are_refused() -> None:
    reason = await refused(hs_provider(), unsigned_token(claims("alice")))
    assert "'none'" in reason
    hs512 = jwt.encode(claims("alice"), TEST_SECRET, algorithm="HS512")
    assert "'HS512'" in await refused(hs_provider(), hs512)
    assert "not a JWT" in await refused(hs_provider(), "not-a-jwt")
    assert "longer than" in await refused(hs_provider(), hs256_token(claims("alice", pad="x" * 20000)))


async def test_tampered_payload_is_refused() -> None:
    token = hs256_token(claims("alice"))
    assert "Signature" in await refused(hs_provider(), tampered(token, sub="bob"))
    assert "Signature" in await refused(hs_provider(), hs256_token(claims("alice"), secret="y" * 40))


async def test_groups_admin_groups_and_username_claim() -> None:
    provider = hs_provider(admin_groups=["teachers"], username_claim="email", groups_claim="roles")
    teacher = await provider.verify(hs256_token(claims("s1", email="t@school.test", roles=["staff", "teachers"])))
    assert (teacher.username, teacher.groups, is_admin(teacher)) == ("t@school.test", ("staff", "teachers"), True)
    student = await provider.verify(hs256_token(claims("s2", email="s@school.test", roles="students")))
    assert (student.groups, is_admin(student)) == (("students",), False)
    # A group with a control character is dropped, not honoured.
    sneaky = await provider.verify(hs256_token(claims("s3", email="x@school.test", roles=["teachers\x00"])))
    assert (sneaky.groups, is_admin(sneaky)) == ((), False)
    assert "'email'" in await refused(provider, hs256_token(claims("s4")))
    assert "email" in await refused(provider, hs256_token(claims("s4", email=42)))
    assert not is_admin(object())


def test_settings_checked_at_start() -> None:
    with pytest.raises(TraitError, match="at least 32 bytes"):
        JWTIdentityProvider(secret="short-secret")
    with pytest.raises(TraitError, match="needs"):
        JWTIdentityProvider()
    with pytest.raises(TraitError, match="http"):
        JWTIdentityProvider(jwks_url="file:///etc/passwd")
    with pytest.raises(TraitError, match="between 0 and 3600"):
        hs_provider(leeway=-1)
    assert JWTIdentityProvider(secret="é" * 16).secret  # 32 bytes in UTF-8
    assert jwt_mode(Config({"JWTIdentityProvider": {"issuer": "https://id.invalid"}}))
    assert not jwt_mode(Config({"JWTIdentityProvider": {"secret": ""}, "IdentityProvider": {"token": "t"}}))


# --------------------------------------------------------------------------- keys from a JWKS


async def test_rs256_and_es256_from_jwks(idp: JWKSServer) -> None:
    rsa, ec = rsa_key("r1"), ec_key("e1")
    idp.set_keys([rsa, ec])
    provider = JWTIdentityProvider(jwks_url=idp.jwks_url, audience=AUDIENCE)
    assert (await provider.verify(rsa.sign(claims("alice", aud=AUDIENCE)))).username == "alice"
    assert (await provider.verify(ec.sign(claims("bob", aud=AUDIENCE)))).username == "bob"
    assert idp.requests() == 1  # cached
    # Signed by another key under a served kid; an ES256 token naming an RSA key.
    assert "Signature" in await refused(provider, rsa_key("r1").sign(claims("alice", aud=AUDIENCE)))
    assert "verifies RS256" in await refused(provider, ec_key("x").sign(claims("alice", aud=AUDIENCE), kid="r1"))
    assert "Signature" in await refused(provider, tampered(rsa.sign(claims("alice", aud=AUDIENCE)), sub="bob"))
    # No kid: the only key of that algorithm is used.
    assert (await provider.verify(ec.sign(claims("carol", aud=AUDIENCE), kid=None))).username == "carol"


async def test_hs256_signed_with_the_public_key_is_refused(idp: JWKSServer) -> None:
    rsa = rsa_key("r1")
    idp.set_keys([rsa])
    forged = [
        hmac_token(claims("mallory"), rsa.public_pem(), {"kid": "r1"}),
        hmac_token(claims("mallory"), json.dumps(rsa.public_jwk()).encode(), {"kid": "r1"}),
    ]
    for provider in (JWTIdentityProvider(jwks_url=idp.jwks_url), hs_provider(jwks_url=idp.jwks_url)):
        for token in forged:
            reason = await refused(provider, token)
            assert "HS256 tokens are not accepted" in reason or "Signature" in reason


async def test_key_hints_in_the_token_are_never_followed(idp: JWKSServer) -> None:
    idp.set_keys([rsa_key("r1")])
    provider = JWTIdentityProvider(jwks_url=idp.jwks_url)
    with JWKSServer() as attacker:
        forger = rsa_key("r1")
        attacker.set_keys([forger])
        hints = {"jku": attacker.jwks_url, "x5u": attacker.jwks_url, "jwk": forger.public_jwk()}
        assert "Signature" in await refused(provider, forger.sign(claims("mallory"), headers=hints))
        assert attacker.requests("") == 0


async def test_oidc_discovery_with_issuer_only(idp: JWKSServer) -> None:
    rsa = rsa_key("r1")
    idp.set_keys([rsa])
    provider = JWTIdentityProvider(issuer=idp.issuer)
    assert (await provider.verify(rsa.sign(claims("alice", iss=idp.issuer)))).username == "alice"
    assert (await provider.verify(rsa.sign(claims("bob", iss=idp.issuer)))).username == "bob"
    assert (idp.requests("/openid-configuration"), idp.requests()) == (1, 1)
    assert "issuer" in (await refused(provider, rsa.sign(claims("alice", iss=idp.url + "/realms/other")))).lower()
    # An HS256 token is refused when no secret is set, whatever it is signed with.
    assert "HS256" in await refused(provider, hs256_token(claims("alice", iss=idp.issuer)))


async def test_discovery_naming_another_issuer_is_refused(idp: JWKSServer) -> None:
    rsa = rsa_key("r1")
    idp.set_keys([rsa])
    provider = JWTIdentityProvider(issuer=idp.issuer + "/", jwks_timeout=2)
    with pytest.raises(KeysUnavailable, match="names the issuer"):
        await provider.verify(rsa.sign(claims("alice", iss=idp.issuer + "/")))


async def test_unknown_kid_then_rotation_and_rate_limited_refetch(idp: JWKSServer) -> None:
    old, new = rsa_key("old"), rsa_key("new")
    # Signed beforehand, so that each burst below fits well inside the refetch interval.
    made_up = [[new.sign(claims("alice"), kid=uuid.uuid4().hex) for _ in range(50)] for _ in range(3)]
    idp.set_keys([old])
    provider = JWTIdentityProvider(jwks_url=idp.jwks_url, jwks_refetch_interval=1.5)
    assert (await provider.verify(old.sign(claims("alice")))).username == "alice"
    idp.set_keys([new])  # the issuer rotates
    # Within the interval the new kid is unknown and the JWKS is not fetched again.
    assert "'new'" in await refused(provider, new.sign(claims("alice")))
    assert idp.requests() == 1
    await asyncio.sleep(1.6)
    assert (await provider.verify(new.sign(claims("alice")))).username == "alice"
    assert idp.requests() == 2
    # The old key is gone; made-up kids, one at a time or all at once, cost no fetch.
    assert "'old'" in await refused(provider, old.sign(claims("alice")))
    for token in made_up[0]:
        await refused(provider, token)
    results = await asyncio.gather(*(provider.verify(token) for token in made_up[1]), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert idp.requests() == 2
    # After the interval, a burst of unknown kids makes one fetch, not fifty.
    await asyncio.sleep(1.6)
    results = await asyncio.gather(*(provider.verify(token) for token in made_up[2]), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert idp.requests() == 3


async def test_jwks_down_is_keys_unavailable_quickly(idp: JWKSServer) -> None:
    rsa = rsa_key("r1")
    url = idp.jwks_url
    idp.stop()
    provider = JWTIdentityProvider(jwks_url=url, jwks_timeout=2)
    started = time.monotonic()
    with pytest.raises(KeysUnavailable, match="could not be fetched"):
        await provider.verify(rsa.sign(claims("alice")))
    assert time.monotonic() - started < 2
    # Within the refetch interval the failure is reported again, without a new attempt.
    with pytest.raises(KeysUnavailable):
        await provider.verify(rsa.sign(claims("alice")))


@pytest.mark.parametrize("settings", ["jwks_url", "issuer"])
async def test_stalled_jwks_is_keys_unavailable_within_the_timeout(idp: JWKSServer, settings: str) -> None:
    rsa = rsa_key("r1")
    idp.set_keys([rsa])
    idp.stall()
    timeout = 1.0
    url = idp.jwks_url if settings == "jwks_url" else idp.issuer
    provider = JWTIdentityProvider(**{settings: url}, jwks_timeout=timeout)
    started = time.monotonic()
    results = await asyncio.gather(
        *(provider.verify(rsa.sign(claims("alice", iss=idp.issuer))) for _ in range(10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(r, KeysUnavailable) for r in results), results
    assert timeout * 0.9 < elapsed < timeout + 2
    assert idp.requests("") == 1  # one attempt for all ten requests


async def test_known_keys_survive_a_failed_or_empty_refetch(idp: JWKSServer) -> None:
    rsa = rsa_key("r1")
    idp.set_keys([rsa])
    provider = JWTIdentityProvider(jwks_url=idp.jwks_url, jwks_refetch_interval=0)
    assert (await provider.verify(rsa.sign(claims("alice")))).username == "alice"
    idp.set_keys([{"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}])  # no usable key
    with pytest.raises(KeysUnavailable, match="no RS256 or ES256"):
        await provider.verify(rsa.sign(claims("alice"), kid="sym"))
    assert (await provider.verify(rsa.sign(claims("alice")))).username == "alice"
    idp.stop()
    with pytest.raises(KeysUnavailable):
        await provider.verify(rsa.sign(claims("alice"), kid="unknown"))
    assert (await provider.verify(rsa.sign(claims("alice")))).username == "alice"


# --------------------------------------------------------------------------- end to end


def call(
    server: CodeRemoteServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Message, Any]:
    """(status, headers (case-insensitive), JSON body) of a request with exactly ``headers``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def hs_server(tmp_path_factory: pytest.TempPathFactory, snippet_database_url: str) -> Iterator[CodeRemoteServer]:
    server = CodeRemoteServer(
        tmp_path_factory.mktemp("jwt-hs256"),
        f"--JWTIdentityProvider.secret={TEST_SECRET}",
        "--KernelPool.size=0",
        f"--SnippetStore.database_url={snippet_database_url}",
        token="jupyter-token-unused",
    )
    yield server
    server.stop()


def me(server: CodeRemoteServer, headers: dict[str, str], query: str = "") -> tuple[int, Any]:
    status, _, body = call(server, "GET", "api/me" + query, headers=headers)
    return status, body["identity"]["username"] if status == 200 else body


def test_missing_or_invalid_token_is_401_json(hs_server: CodeRemoteServer) -> None:
    status, headers, body = call(hs_server, "POST", "api/coderemote/execute", {"code": "print(1)"})
    assert (status, headers["WWW-Authenticate"], body["reason"]) == (401, "Bearer", "missing_token")
    assert headers["Content-Type"].startswith("application/json") and "Bearer" in body["message"]
    expired = hs256_token(claims("alice", exp_in=-300))
    status, headers, body = call(hs_server, "POST", "api/coderemote/execute", {"code": "1"}, bearer(expired))
    assert (status, body["reason"]) == (401, "invalid_token")
    assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token", error_description="')
    for token in (unsigned_token(claims("alice")), tampered(hs256_token(claims("bob")), sub="alice")):
        assert call(hs_server, "GET", "api/kernels", headers=bearer(token))[0] == 401
    # Anonymous routes stay open, with or without a bad token.
    assert call(hs_server, "GET", "api/coderemote/health", headers=bearer("garbage"))[0] == 200


def test_jupyter_token_is_refused_in_jwt_mode(hs_server: CodeRemoteServer) -> None:
    for headers, query in (({"Authorization": f"token {hs_server.token}"}, ""), ({}, f"?token={hs_server.token}")):
        status, _, body = call(hs_server, "GET", "api/kernels" + query, headers=headers)
        assert (status, body["reason"]) == (401, "invalid_token")
    assert hs_server.request("GET", "api/kernels")[0] == 401


def test_code_runs_under_the_token_user(hs_server: CodeRemoteServer) -> None:
    alice, bob = hs256_token(claims("alice")), hs256_token(claims("bob"))
    assert me(hs_server, bearer(alice)) == (200, "alice")
    assert me(hs_server, {"Authorization": f"token {bob}"}) == (200, "bob")
    assert me(hs_server, {}, f"?token={bob}") == (200, "bob")
    session = {"session_id": "shared-name"}
    status, body = hs_server.request(
        "POST", "api/coderemote/execute", {"code": "secret = 'alices'", **session}, bearer=alice
    )
    assert (status, body["status"]) == (200, "ok"), body
    # Bob's session of the same name is his own kernel: alice's variable is not there.
    status, body = hs_server.request("POST", "api/coderemote/execute", {"code": "print(secret)", **session}, bearer=bob)
    assert status == 200 and body["status"] == "error" and body["error"]["ename"] == "NameError", body
    status, body = hs_server.request(
        "POST", "api/coderemote/execute", {"code": "print(secret)", **session}, bearer=alice
    )
    assert (status, body["stdout"]) == (200, "alices\n"), body


async def run_on_websocket(ws: WebSocketClientConnection, code: str) -> str:
    msg_id, frame = execute_request(Session(), code)
    await ws.write_message(frame)
    text = ""
    while True:
        message = await asyncio.wait_for(ws.read_message(), 60)
        assert message is not None, "the websocket closed"
        msg = json.loads(message)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return text


async def test_kernel_websocket_with_subprotocol_or_query_token(hs_server: CodeRemoteServer) -> None:
    alice = hs256_token(claims("alice"))
    status, _, kernel = call(hs_server, "POST", "api/kernels", {}, bearer(alice))
    assert status == 201, kernel
    url = hs_server.url.replace("http", "ws") + f"api/kernels/{kernel['id']}/channels"
    try:
        # Browsers: the token as a subprotocol (legacy JSON frames when only it is offered).
        ws = await websocket_connect(HTTPRequest(url), subprotocols=[f"{WS_TOKEN}.{quote(alice, safe='')}"])
        assert ws.selected_subprotocol is None
        assert await run_on_websocket(ws, "print(6 * 7)") == "42\n"
        ws.close()
        # With the kernel protocol offered too, that one is selected, never the token.
        ws = await websocket_connect(HTTPRequest(url), subprotocols=[f"{WS_TOKEN}.{alice}", WS_KERNEL])
        assert ws.selected_subprotocol == WS_KERNEL
        ws.close()
        ws = await websocket_connect(HTTPRequest(f"{url}?token={alice}"))
        assert await run_on_websocket(ws, "print('q')") == "q\n"
        ws.close()
        ws = await websocket_connect(HTTPRequest(url, headers=bearer(alice)))
        assert await run_on_websocket(ws, "print('h')") == "h\n"
        ws.close()
        for request, protocols in (
            (HTTPRequest(url), None),
            (HTTPRequest(url), [f"{WS_TOKEN}.{hs256_token(claims('alice', exp_in=-300))}"]),
            (HTTPRequest(f"{url}?token={hs_server.token}"), None),
            (HTTPRequest(url, headers={"Authorization": f"token {hs_server.token}"}), None),
        ):
            with pytest.raises(HTTPClientError) as error:
                await websocket_connect(request, subprotocols=protocols)
            assert error.value.code == 401
    finally:
        assert call(hs_server, "DELETE", f"api/kernels/{kernel['id']}", headers=bearer(alice))[0] == 204


def test_short_secret_stops_the_server_at_start(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        ["jupyter", "coderemote", f"--port={port}", "--JWTIdentityProvider.secret=only-twenty-bytes-xx"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "JWTIdentityProvider.secret is 20 bytes long" in output and "at least 32 bytes" in output


@pytest.fixture(scope="module")
def oidc() -> Iterator[tuple[JWKSServer, dict[str, Any]]]:
    with JWKSServer() as server:
        keys = {"rsa": rsa_key("rsa-1"), "ec": ec_key("ec-1"), "old": rsa_key("old-1")}
        server.set_keys(list(keys.values()))
        yield server, keys


@pytest.fixture(scope="module")
def oidc_server(
    tmp_path_factory: pytest.TempPathFactory, snippet_database_url: str, oidc: tuple[JWKSServer, dict[str, Any]]
) -> Iterator[CodeRemoteServer]:
    idp, _ = oidc
    server = CodeRemoteServer(
        tmp_path_factory.mktemp("jwt-oidc"),
        f"--JWTIdentityProvider.issuer={idp.issuer}",
        f"--JWTIdentityProvider.audience={AUDIENCE}",
        "--JWTIdentityProvider.username_claim=username",
        "--JWTIdentityProvider.jwks_refetch_interval=1",
        "--JWTIdentityProvider.jwks_timeout=1",
        "--KernelPool.size=0",
        f"--SnippetStore.database_url={snippet_database_url}",
        token="jupyter-token-unused",
    )
    yield server
    server.stop()


def oidc_claims(idp: JWKSServer, username: str, **extra: Any) -> dict[str, Any]:
    return claims(f"id-{username}", **{"iss": idp.issuer, "aud": AUDIENCE, "username": username, **extra})


def test_rs256_and_es256_end_to_end(oidc_server: CodeRemoteServer, oidc: tuple[JWKSServer, dict[str, Any]]) -> None:
    idp, keys = oidc
    assert me(oidc_server, bearer(keys["rsa"].sign(oidc_claims(idp, "alice")))) == (200, "alice")
    assert me(oidc_server, bearer(keys["ec"].sign(oidc_claims(idp, "bob")))) == (200, "bob")
    token = keys["ec"].sign(oidc_claims(idp, "alice"))
    status, body = oidc_server.request("POST", "api/coderemote/execute", {"code": "print(2 + 2)"}, bearer=token)
    assert (status, body["stdout"]) == (200, "4\n"), body
    for bad in (
        keys["rsa"].sign(oidc_claims(idp, "alice", aud="another-client")),
        keys["rsa"].sign(oidc_claims(idp, "alice", iss=idp.url + "/realms/other")),
        hmac_token(oidc_claims(idp, "alice"), keys["rsa"].public_pem(), {"kid": "rsa-1"}),
        hs256_token(oidc_claims(idp, "alice")),
        unsigned_token(oidc_claims(idp, "alice"), {"kid": "rsa-1"}),
    ):
        status, headers, body = call(oidc_server, "GET", "api/kernels", headers=bearer(bad))
        assert (status, body["reason"]) == (401, "invalid_token") and "invalid_token" in headers["WWW-Authenticate"]
    assert idp.requests("/openid-configuration") == 1


def test_rotation_and_rate_limited_refetch_end_to_end(
    oidc_server: CodeRemoteServer, oidc: tuple[JWKSServer, dict[str, Any]]
) -> None:
    idp, keys = oidc
    assert me(oidc_server, bearer(keys["old"].sign(oidc_claims(idp, "alice")))) == (200, "alice")
    new = rsa_key("new-1")
    idp.set_keys([keys["rsa"], keys["ec"], new])
    time.sleep(1.1)
    before = idp.requests()
    assert me(oidc_server, bearer(new.sign(oidc_claims(idp, "alice")))) == (200, "alice")
    assert idp.requests() == before + 1
    assert me(oidc_server, bearer(keys["old"].sign(oidc_claims(idp, "alice"))))[0] == 401
    for _ in range(30):
        assert me(oidc_server, bearer(new.sign(oidc_claims(idp, "alice"), kid=uuid.uuid4().hex)))[0] == 401
    assert idp.requests() <= before + 2  # thirty made-up kids: at most one more fetch


def test_stalled_jwks_is_503_without_hanging(
    oidc_server: CodeRemoteServer, oidc: tuple[JWKSServer, dict[str, Any]]
) -> None:
    idp, keys = oidc
    time.sleep(1.1)
    idp.stall()
    try:
        started = time.monotonic()
        token = keys["rsa"].sign(oidc_claims(idp, "alice"), kid="not-yet-known")
        status, headers, body = call(oidc_server, "GET", "api/kernels", headers=bearer(token))
        assert time.monotonic() - started < 1 + 2
        assert (status, body["reason"]) == (503, "keys_unavailable") and int(headers["Retry-After"]) >= 1
        # Tokens signed with keys already known still work while the issuer is away.
        result = me(oidc_server, bearer(keys["rsa"].sign(oidc_claims(idp, "alice"))))
        assert result == (200, "alice"), result
    finally:
        idp.stall(False)
