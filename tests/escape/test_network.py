"""Network: the sandbox runs with ``--network=none``, so nothing leaves it.

TCP to addresses outside this machine (documentation ranges, never routed)
and to services on the host's loopback (a listener the test starts, the
Jupyter server's own port), DNS, UDP to the host, raw and packet sockets and a
TUN interface. ``socket`` is blocked by the guard; the programs use ``_socket``
and ``socket`` from ``sys.modules`` or ``importlib._bootstrap`` instead.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

from tests.conftest import Execute
from tests.escape.probes import OUTSIDE, UNREACHABLE, escape, refused, report, run


@escape
async def test_tcp_to_external_addresses_fails(execute: Execute) -> None:
    """TCP connect to public resolvers through ``_socket`` and ``_gcd_import('socket')``
    (both past the guard): no route."""
    result = await run(
        execute,
        f"""
        import importlib, sys
        _socket = sys.modules["_socket"]
        socket = importlib._bootstrap._gcd_import("socket")
        def connect(module, address):
            s = module.socket(module.AF_INET, module.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(address)
                return "CONNECTED"
            finally:
                s.close()
        _report(attempts=[_try(connect, m, a) for m in (_socket, socket) for a in {OUTSIDE!r}],
                interfaces=socket.if_nameindex())
    """,
    )
    values = report(result)
    assert len(values["attempts"]) == 4
    assert all(refused(a, UNREACHABLE) for a in values["attempts"]), values["attempts"]
    assert values["interfaces"] == [[1, "lo"]]


@escape
async def test_tcp_to_host_services_never_connects(execute: Execute, jp_http_port: int) -> None:
    """A TCP server the test starts on the host's loopback (and the Jupyter server's own
    port) gets no connection from inside, by IP or by name."""
    accepted: list[Any] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(on_connect, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    targets = [("127.0.0.1", port), ("localhost", port), ("127.0.0.1", jp_http_port)]
    try:
        result = await run(
            execute,
            f"""
            import sys
            socket = sys.modules["socket"]
            def connect(address):
                with socket.create_connection(address, timeout=5) as s:
                    s.sendall(b"GET /api HTTP/1.0\\r\\n\\r\\n")
                    return "CONNECTED " + s.recv(100).decode("latin-1")
            _report(attempts={{f"{{h}}:{{p}}": _try(connect, (h, p)) for h, p in {targets!r}}})
        """,
        )
        await asyncio.sleep(0.5)
        values = report(result)
        assert len(values["attempts"]) == len(targets)
        assert {t: a for t, a in values["attempts"].items() if not refused(a, UNREACHABLE)} == {}
        assert accepted == []
        # The listener works: a host-side connection is seen.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await asyncio.sleep(0.2)
        assert len(accepted) == 1
    finally:
        server.close()
        await server.wait_closed()


@escape
async def test_dns_resolution_fails(execute: Execute) -> None:
    """Names outside /etc/hosts do not resolve (no resolver, no network); nothing leaves."""
    result = await run(
        execute,
        """
        import os, sys
        socket = sys.modules["socket"]
        names = ["example.com", "pypi.org", "metadata.google.internal", "kubernetes.default.svc"]
        _report(getaddrinfo={n: _try(socket.getaddrinfo, n, 443) for n in names},
                gethostbyname={n: _try(socket.gethostbyname, n) for n in names},
                localhost=socket.gethostbyname("localhost"),
                resolv_conf=os.path.exists("/etc/resolv.conf"))
    """,
    )
    values = report(result)
    for kind in ("getaddrinfo", "gethostbyname"):
        assert all(r.get("exc") == "gaierror" for r in values[kind].values()), values[kind]
    assert values["localhost"] == "127.0.0.1"  # /etc/hosts works: the failures are the network's
    assert values["resolv_conf"] is False


@escape
async def test_udp_to_host_receives_nothing(execute: Execute) -> None:
    """UDP datagrams to a host socket the test binds on the loopback never arrive."""
    received: list[tuple[bytes, Any]] = []

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            received.append((data, addr))

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    targets = [("127.0.0.1", port), ("localhost", port)]
    try:
        result = await run(
            execute,
            f"""
            import sys, time
            _socket = sys.modules["_socket"]
            s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
            sent = {{}}
            for _ in range(5):
                for host, port in {targets!r}:
                    sent[f"{{host}}:{{port}}"] = _try(s.sendto, b"escape-udp", (host, port))
                time.sleep(0.05)
            _report(sent=sent)
        """,
        )
        await asyncio.sleep(0.5)
        report(result)
        assert received == []
        sanity = loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
        sender, _ = await sanity
        sender.sendto(b"host")
        await asyncio.sleep(0.2)
        sender.close()
        assert [data for data, _ in received] == [b"host"]  # the receiver works
    finally:
        transport.close()


@escape
async def test_raw_and_packet_sockets_are_refused(execute: Execute) -> None:
    """Raw IP and packet sockets, and making a TUN interface (TUNSETIFF), need capabilities the
    sandbox does not have; only lo exists."""
    result = await run(
        execute,
        """
        import fcntl, os, struct, sys
        _socket = sys.modules["_socket"]
        def make_tun():
            fd = os.open("/dev/net/tun", os.O_RDWR)  # gVisor's own TUN device: opening is allowed
            try:
                return fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", b"escape0", 0x0001 | 0x1000))
            finally:
                os.close(fd)
        _report(raw=_try(_socket.socket, _socket.AF_INET, _socket.SOCK_RAW, 1),
                packet=_try(_socket.socket, 17, _socket.SOCK_RAW, 0),
                tun=_try(make_tun),
                net=sorted(n for _, n in _socket.if_nameindex()),
                sys_class_net=sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None)
    """,
    )
    values = report(result)
    for kind in ("raw", "packet", "tun"):
        assert refused(values[kind], {errno.EPERM, errno.EACCES, errno.ENOENT, errno.EAFNOSUPPORT}), values[kind]
    assert values["net"] == ["lo"]
    assert values["sys_class_net"] in (["lo"], None)  # newer gVisor shows no /sys/class/net with --network=none
