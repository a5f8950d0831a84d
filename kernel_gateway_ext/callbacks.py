"""Submission callbacks: where they may go, how they are signed and delivered.

A callback is ``POST callback_url`` with the finished submission as JSON, signed
like Stripe's webhooks: ``X-CodeRemote-Signature: t=<unix time>,v1=<hex>`` where
``v1`` is HMAC-SHA256, keyed with ``c.Submissions.callback_secret``, of
``"{t}." + raw body``. A receiver recomputes it (see :func:`signature`) and
refuses a ``t`` too far from its clock.

No SSRF into the operator's network: a callback goes only to public addresses,
or to a host named in ``callback_allowed_hosts``. A literal address is checked
when the submission comes in; a name is resolved then (a clear 400) and again
when the callback is sent, by the HTTP client's own resolver, so the address
connected to is one that was checked (a name that resolves elsewhere later,
as in DNS rebinding, gets nothing). Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver

MAX_URL = 2048
SIGNATURE_HEADER = "X-CodeRemote-Signature"


class CallbackRefused(ValueError):
    """A callback URL the service does not send to (the message says why)."""


@dataclass
class Delivery:
    """How one delivery went: the receiver's HTTP status (None: no answer), what
    went wrong (None: delivered, a 2xx), and whether trying again may help (no
    answer or a 5xx; not a 4xx, a redirect or a refused address)."""

    status_code: int | None
    error: str | None
    retry: bool


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-CodeRemote-Signature`` value of ``body`` sent at ``timestamp`` (Unix time)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _refusal(address: str) -> str | None:
    """Why a callback may not go to ``address`` (an IP literal), or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # no zone index
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip.is_reserved or ip.is_unspecified or ip.is_multicast or not ip.is_global:
        return "a private or reserved address"
    return None


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def check_url(url: Any, allowed_hosts: Iterable[str]) -> tuple[str, int]:
    """(host, port) of an acceptable callback URL; CallbackRefused otherwise.

    A literal address is checked here; a name is checked once resolved (:class:`GuardedResolver`).
    """
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL or not url.isascii() or not url.isprintable():
        raise CallbackRefused(f"'callback_url' must be an http(s) URL of at most {MAX_URL} ASCII characters")
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackRefused("'callback_url' has a bad port") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or " " in url:
        raise CallbackRefused("'callback_url' must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("'callback_url' may not carry a user name or password")
    if host not in {h.lower() for h in allowed_hosts} and _literal(host):
        why = _refusal(host)
        if why is not None:
            raise CallbackRefused(
                f"callbacks to {why} are refused (c.Submissions.callback_allowed_hosts allows a host)"
            )
    return host, port


class GuardedResolver(Resolver):
    """Resolves like the event loop, keeping only the addresses a callback may go to.

    A host named in ``allowed_hosts`` resolves to whatever it resolves to.
    """

    def initialize(self, allowed_hosts: Iterable[str] = ()) -> None:  # type: ignore[override]
        self.allowed = {h.lower() for h in allowed_hosts}
        self.inner = DefaultLoopResolver()

    async def resolve(  # type: ignore[override]
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        addresses = await self.inner.resolve(host, port, family)
        if host.lower() in self.allowed:
            return addresses
        kept = [(f, a) for f, a in addresses if _refusal(a[0]) is None]
        if not kept:
            why = _refusal(addresses[0][1][0]) if addresses else "no address"
            raise CallbackRefused(f"the callback's host {host} resolves to {why}: refused")
        return kept


class Deliverer:
    """Sends signed callbacks through an HTTP client that only connects where a callback may go."""

    def __init__(self, secret: str, allowed_hosts: Iterable[str], timeout: float) -> None:
        self.secret = secret
        self.timeout = timeout
        self.resolver = GuardedResolver(allowed_hosts=list(allowed_hosts))
        self.client = AsyncHTTPClient(force_instance=True, resolver=self.resolver, max_clients=10)

    async def check_host(self, host: str, port: int) -> None:
        """Refuse (CallbackRefused) a host that resolves to no address a callback may go to."""
        try:
            await self.resolver.resolve(host, port)
        except OSError as e:  # socket.gaierror
            raise CallbackRefused(f"the callback's host {host} does not resolve: {e}") from None

    async def send(self, url: str, body: bytes) -> Delivery:
        """POST ``body`` to ``url``, signed."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "CodeRemote-Callback/1",
            SIGNATURE_HEADER: signature(self.secret, body, int(time.time())),
        }
        request = HTTPRequest(
            url, method="POST", body=body, headers=headers, follow_redirects=False,
            connect_timeout=self.timeout, request_timeout=self.timeout,
            streaming_callback=lambda chunk: None,  # the receiver's answer is not kept
        )  # fmt: skip
        try:
            response = await self.client.fetch(request, raise_error=False)
        except CallbackRefused as e:
            return Delivery(None, str(e), retry=False)
        except HTTPClientError as e:  # tornado's own timeout (599)
            return Delivery(None, f"{e.code} {e.message}", retry=True)
        except OSError as e:
            return Delivery(None, f"{type(e).__name__}: {e}", retry=True)
        if response.code == 599:
            return Delivery(None, str(response.error), retry=True)
        if 200 <= response.code < 300:
            return Delivery(response.code, None, retry=False)
        return Delivery(response.code, f"the receiver answered {response.code}", retry=response.code >= 500)

    def close(self) -> None:
        self.client.close()
