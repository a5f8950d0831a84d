"""JWTs and a JWKS server for tests, all real: keys made here with
``cryptography``, tokens signed with pyjwt, and the keys served over HTTP by
a loopback server in a thread (JWKS and OpenID Connect discovery).

    with JWKSServer() as idp:
        key = rsa_key("k1")
        idp.set_keys([key])
        token = key.sign(claims("alice", iss=idp.issuer, aud="coderemote"))
        # start the server with --JWTIdentityProvider.issuer={idp.issuer}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# A development secret of the required length (32 bytes or more).
TEST_SECRET = "coderemote-tests-hs256-secret-0123456789"


def claims(sub: str = "alice", *, exp_in: float = 300, nbf_in: float | None = None, **extra: Any) -> dict[str, Any]:
    """Claims for ``sub`` that expire ``exp_in`` seconds from now (negative: already
    expired); ``nbf_in`` sets ``nbf`` that far from now. ``extra`` adds or overrides
    claims (``iss``, ``aud``, ``groups``, ...); a value of None drops that claim."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(exp_in)}
    if nbf_in is not None:
        body["nbf"] = now + int(nbf_in)
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def hs256_token(payload: dict[str, Any], secret: str = TEST_SECRET, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """``alg: none``: a header and payload with an empty signature."""
    header = {"alg": "none", "typ": "JWT", **(headers or {})}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def hmac_token(payload: dict[str, Any], key: bytes, headers: dict[str, Any] | None = None) -> str:
    """HS256 signed by hand with any bytes as the key (pyjwt refuses PEM keys as
    HMAC secrets): what an attacker sends to try HS/RS confusion with a public key."""
    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and the original signature kept."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    return f"{header}.{_b64(json.dumps(body).encode())}.{signature}"


@dataclass
class SigningKey:
    """A private key, its ``kid`` and algorithm (RS256 or ES256)."""

    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.private.public_key()))
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        return dict(jwk)

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, payload: dict[str, Any], headers: dict[str, Any] | None = None, kid: str | None = "") -> str:
        """A token signed with this key; ``kid`` None leaves the kid out, "" uses this key's."""
        head = dict(headers or {})
        if kid is not None:
            head["kid"] = kid or self.kid
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=head)


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class _State:
    keys: list[dict[str, Any]] = field(default_factory=list)
    stall: bool = False
    requests: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class JWKSServer:
    """A loopback HTTP server (127.0.0.1, a free port, its own thread) serving
    ``{issuer}/.well-known/openid-configuration`` and ``{issuer}/jwks.json``.

    ``set_keys`` replaces the served keys (rotation); ``stall`` makes every
    request hang until ``stop`` (an issuer that accepts but never answers);
    ``requests`` counts requests per path; ``stop`` ends it (connections are
    then refused).
    """

    def __init__(self, realm: str = "/realms/test") -> None:
        state = self.state = _State()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with state.lock:
                    state.requests[self.path] = state.requests.get(self.path, 0) + 1
                if state.stall:
                    state.release.wait(60)
                    return
                if self.path == f"{realm}/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}
                elif self.path == f"{realm}/jwks.json":
                    with state.lock:
                        body = {"keys": list(state.keys)}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        issuer = self.issuer = self.url + realm
        self.jwks_url = f"{issuer}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_keys(self, keys: list[SigningKey] | list[dict[str, Any]]) -> None:
        with self.state.lock:
            self.state.keys = [k.public_jwk() if isinstance(k, SigningKey) else k for k in keys]

    def stall(self, on: bool = True) -> None:
        self.state.stall = on

    def requests(self, path: str = "/jwks.json") -> int:
        """How many requests reached ``{issuer}{path}``."""
        with self.state.lock:
            return sum(n for p, n in self.state.requests.items() if p.endswith(path))

    def stop(self) -> None:
        self.state.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    def __enter__(self) -> JWKSServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
