"""Submission callbacks: signed, retried on 5xx and on no answer, never sent where
they may not go. The receivers are HTTP servers of the test on loopback (allow-listed
as 127.0.0.1); refused addresses are loopback ones off the allow-list, or come from
a stand-in resolver (no packet leaves this machine even if a check is broken)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kernel_gateway_ext.callbacks import CallbackRefused, GuardedResolver, check_url, signature
from tests.servers import CodeRemoteServer
from tests.test_rate_limits import jwt_server
from tests.test_submissions import finished, submit, wait_for_queue

SECRET = "callback-secret-of-the-tests-0123456789"


class Receiver:
    """A callback receiver on 127.0.0.1: each path answers with its next status of
    ``answers`` (200 once they run out) and keeps what it got."""

    def __init__(self) -> None:
        self.answers: dict[str, list[int]] = {}
        self.got: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
                receiver.got.setdefault(self.path, []).append((headers, body))
                answers = receiver.answers.get(self.path, [])
                code = answers.pop(0) if answers else 200
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", f"{receiver.url}/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeRemoteServer]:
    server = jwt_server(
        tmp_path_factory.mktemp("callbacks"),
        f"--Submissions.callback_secret={SECRET}",
        "--Submissions.callback_allowed_hosts=127.0.0.1",
        "--Submissions.callback_attempts=3",
        "--Submissions.callback_backoff=1",
    )
    wait_for_queue(server)
    yield server
    server.stop()


def delivered(server: CodeRemoteServer, submission_id: str, timeout: float = 90) -> Any:
    """The submission once its callback is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        submission = finished(server, submission_id)
        if submission.get("callback", {}).get("status") in ("delivered", "failed"):
            return submission
        assert time.monotonic() < deadline, submission
        time.sleep(0.2)


def verify(headers: dict[str, str], body: bytes) -> None:
    """Check a delivery's signature as a receiver would."""
    fields = dict(part.split("=", 1) for part in headers["x-coderemote-signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 300
    expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


def test_a_callback_is_signed_and_retried_until_it_is_taken(server: CodeRemoteServer, receiver: Receiver) -> None:
    """The receiver answers 500 twice, then 200: three deliveries of the same signed
    submission, recorded as delivered at the third attempt."""
    receiver.answers["/flaky"] = [500, 500]
    status, queued = submit(server, {"code": "print('called back')", "callback_url": f"{receiver.url}/flaky"})
    assert status == 202, queued
    submission = delivered(server, queued["id"])
    assert submission["callback"] == {
        "url": f"{receiver.url}/flaky", "status": "delivered", "attempts": 3, "last_status": 200, "error": None,
    }  # fmt: skip
    got = receiver.got["/flaky"]
    assert len(got) == 3
    for headers, body in got:
        verify(headers, body)
        sent = json.loads(body)
        assert sent["id"] == queued["id"] and sent["status"] == "done" and "callback" not in sent
        assert sent["result"]["stdout"] == "called back\n"


def test_a_callback_that_keeps_failing_is_recorded_and_a_4xx_is_not_retried(
    server: CodeRemoteServer, receiver: Receiver
) -> None:
    receiver.answers["/down"] = [503] * 10
    receiver.answers["/gone"] = [404]
    receiver.answers["/moved"] = [302]
    ids = {}
    for path in ("/down", "/gone", "/moved"):
        status, queued = submit(server, {"code": "1", "callback_url": receiver.url + path})
        assert status == 202, queued
        ids[path] = queued["id"]
    down, gone, moved = (delivered(server, ids[p])["callback"] for p in ("/down", "/gone", "/moved"))
    assert (down["status"], down["attempts"], down["last_status"]) == ("failed", 3, 503)
    assert len(receiver.got["/down"]) == 3
    assert (gone["status"], gone["attempts"], gone["last_status"]) == ("failed", 1, 404)
    assert (moved["status"], moved["attempts"], moved["last_status"]) == ("failed", 1, 302)
    assert len(receiver.got["/gone"]) == len(receiver.got["/moved"]) == 1
    assert "/redirected" not in receiver.got  # redirects are not followed


def test_callbacks_off_the_allow_list_are_refused(server: CodeRemoteServer, receiver: Receiver) -> None:
    """Loopback addresses and names other than the allowed 127.0.0.1 are refused with
    400 and nothing reaches them (another receiver listens on 127.0.0.2)."""
    port = receiver.http.server_address[1]
    other = ThreadingHTTPServer(("127.0.0.2", 0), BaseHTTPRequestHandler)
    other_port = other.server_address[1]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        for url in [
            f"http://127.0.0.2:{other_port}/",
            f"http://localhost:{port}/",  # a name that resolves to loopback
            f"http://[::1]:{port}/",
            f"http://[::ffff:127.0.0.1]:{port}/",
            f"http://0.0.0.0:{port}/",
            f"http://127.1:{port}/",
            f"http://user:pw@127.0.0.1:{port}/",
            f"ftp://127.0.0.1:{port}/",
            "not a url",
            "http:///nohost",
            42,
        ]:
            status, answer = submit(server, {"code": "1", "callback_url": url})
            assert status == 400 and isinstance(answer["message"], str), (url, answer)
    finally:
        other.shutdown()
        other.server_close()


def test_a_server_without_a_secret_refuses_callbacks(tmp_path: Any) -> None:
    server = jwt_server(tmp_path)
    try:
        wait_for_queue(server)
        status, answer = submit(server, {"code": "1", "callback_url": "http://127.0.0.1:9/"})
        assert status == 400 and "callback_secret" in answer["message"], answer
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/", "http://[fc00::1]/", "http://[fe80::1]/", "http://224.0.0.1/", "http://[::]/",
    ],
)  # fmt: skip
def test_private_and_link_local_literals_are_refused_before_any_packet(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check_url(url, allowed_hosts=[])


def test_a_public_host_or_an_allowed_one_passes_the_check() -> None:
    assert check_url("https://hooks.example.org/x", allowed_hosts=[]) == ("hooks.example.org", 443)
    assert check_url("http://93.184.216.34:8080/", allowed_hosts=[]) == ("93.184.216.34", 8080)
    assert check_url("http://10.1.2.3/", allowed_hosts=["10.1.2.3"]) == ("10.1.2.3", 80)


async def test_a_name_that_resolves_to_a_private_address_is_refused_when_connecting() -> None:
    """A stand-in for the system resolver: a public-looking name that resolves to
    private addresses (as in DNS rebinding) gets no connection; one with a public
    address among them keeps only that one."""

    class StubResolver:
        def __init__(self, answers: list[str]) -> None:
            self.answers = answers

        async def resolve(self, host: str, port: int, family: Any = socket.AF_UNSPEC) -> list[tuple[int, Any]]:
            return [(socket.AF_INET, (a, port)) for a in self.answers]

    resolver = GuardedResolver(allowed_hosts=["internal.example"])
    resolver.inner = StubResolver(["10.0.0.7", "169.254.169.254"])  # type: ignore[assignment]
    with pytest.raises(CallbackRefused, match="private|link-local"):
        await resolver.resolve("hooks.example.org", 443)
    assert len(await resolver.resolve("internal.example", 443)) == 2  # allowed by name
    resolver.inner = StubResolver(["10.0.0.7", "93.184.216.34"])  # type: ignore[assignment]
    assert await resolver.resolve("hooks.example.org", 443) == [(socket.AF_INET, ("93.184.216.34", 443))]


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_body() -> None:
    body = b'{"id": "x"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k", body, 1700000000) == f"t=1700000000,v1={expected}"
