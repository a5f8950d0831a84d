"""Escape battery: hostile programs, each run through the real REST endpoint in
a fresh gVisor sandbox (or a session kernel where the host has to look at the
sandbox while it lives), each asserting CONTAINMENT.

The import guard is defence in depth, not the boundary, so most programs go
around it on purpose (``sys.modules``, ``().__class__.__base__.__subclasses__()``,
``importlib._bootstrap``, ``exec(compile(...))``, already-loaded ``posix``,
``_socket`` and ``ctypes``) and then check that the action still fails or has
no effect on the host.

Every program ends with one ``@@RESULT@@{json}`` line written by ``_report``;
``_try(fn)`` turns an attempt into ``{"ok": bool, "exc", "errno", "value"}``.
Tests run in file order; the last one checks the server still works and that
no sandbox of this process is left.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_images import SANDBOX_PACKAGE_DIR
from kernel_images.runtime import Runtime
from provisioner import GVisorProvisioner
from tests.conftest import Execute, running_sandboxes
from tests.test_zygote import zygote_ready

escape = pytest.mark.escape


@pytest.fixture(scope="module", params=["restored", "started"])
def sandbox_path(request: pytest.FixtureRequest) -> str:
    """The battery runs twice: on kernels restored from the zygote image, and on kernels started plainly."""
    if request.param == "restored":
        asyncio.run(zygote_ready())
    return str(request.param)


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], sandbox_path: str) -> dict[str, Any]:
    return {**jp_server_config, "GVisorProvisioner": {"restore_from_zygote": sandbox_path == "restored"}}

MiB = 1 << 20
TMPFS_CAP = 64 * MiB  # GVisorProvisioner.tmpfs_size
FILE_SIZE_LIMIT = 32 * MiB  # GVisorProvisioner.file_size_limit
OUTPUT_LIMIT = MiB  # GVisorProvisioner.output_limit
SECRET = "s3cr3t-value"
MARKER = "@@RESULT@@"
TRUNCATED = "[output truncated"
# Addresses outside this machine, from the documentation ranges (RFC 5737): never
# routed anywhere, so nothing could leave even if containment failed.
OUTSIDE = [("192.0.2.1", 53), ("198.51.100.1", 443)]

# What a program's failed attempt to reach something may say.
DENIED = {errno.EPERM, errno.EACCES, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.ENOSYS, errno.EOPNOTSUPP}
UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPERM, errno.EACCES}

PRELUDE = """\
import json as _json


def _try(fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:
        return {"ok": False, "exc": type(e).__name__, "errno": getattr(e, "errno", None), "msg": str(e)[:300]}
    return {"ok": True, "value": value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)[:300]}


def _report(**values):
    print("@@RESULT@@" + _json.dumps(values, default=repr), flush=True)


"""


async def run(execute: Execute, code: str, **fields: Any) -> dict[str, Any]:
    """Run PRELUDE + ``code`` (dedented) and return the REST result."""
    return await execute(PRELUDE + textwrap.dedent(code), **fields)


def report(result: dict[str, Any]) -> dict[str, Any]:
    """The program's ``_report(...)`` values; fails the test when it has none."""
    lines = [line for line in result["stdout"].splitlines() if line.startswith(MARKER)]
    assert lines, f"the program did not report: {result}"
    return json.loads(lines[-1][len(MARKER) :])


def refused(attempt: dict[str, Any], errnos: set[int] | None = None, exc: str | None = None) -> bool:
    """Whether an attempt failed (with one of ``errnos`` / as ``exc`` when given)."""
    if attempt["ok"]:
        return False
    if errnos is not None and attempt["errno"] not in errnos:
        return False
    return exc is None or attempt["exc"] == exc


@pytest.fixture
def sessions(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[list[str]]:
    """Session ids a test uses; their kernels are shut down when the test ends."""
    ids: list[str] = []
    yield ids
    service = jp_serverapp.web_app.settings["coderemote_execution"]
    for session_id in ids:
        jp_asyncio_loop.run_until_complete(service.end_session("local", session_id))


def session_kernel(serverapp: Any, execute_service_owner: str, session_id: str) -> Any:
    """The KernelManager behind a session of the single local user."""
    return serverapp.web_app.settings["coderemote_execution"].session_kernel(execute_service_owner, session_id)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def host_text(path: str | Path) -> str:
    """A host file's text, read by the test (not the sandbox)."""
    return Path(path).read_text()


def host_exists(path: str | Path) -> bool:
    return os.path.lexists(path)


async def host_sleeper() -> asyncio.subprocess.Process:
    """A host process for the sandbox to aim signals at."""
    return await asyncio.create_subprocess_exec("sleep", "300")


# --------------------------------------------------------------------------- files and secrets


@escape
async def test_etc_shadow_and_host_etc_are_not_visible(execute: Execute) -> None:
    """/etc/shadow by every path trick; /etc holds only the generated files, no host users."""
    result = await run(
        execute,
        """
        import os
        paths = ["/etc/shadow", "/proc/1/root/etc/shadow", "/proc/self/cwd/../../etc/shadow",
                 "/run/kernel/../../etc/shadow", "/opt/coderemote/runtime/../../../etc/shadow",
                 "/usr/lib/../../etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/hostname", "/etc/machine-id"]
        _report(etc=sorted(os.listdir("/etc")), passwd=open("/etc/passwd").read(),
                reads={p: _try(lambda p=p: open(p, "rb").read().decode("latin-1")) for p in paths})
    """,
    )
    values = report(result)
    assert values["etc"] == ["group", "hosts", "nsswitch.conf", "passwd"]
    assert {path: r for path, r in values["reads"].items() if not refused(r, {errno.ENOENT})} == {}
    assert {line.split(":")[0] for line in values["passwd"].splitlines()} == {"root", "sandbox"}
    host_lines = [line for line in host_text("/etc/passwd").splitlines() if not line.startswith("root:")]
    assert host_lines and not [line for line in host_lines if line in result["stdout"]]
    host_shadow = host_text("/etc/shadow").splitlines()[0]  # root's hash line
    assert host_shadow not in result["stdout"]


@escape
async def test_server_secrets_are_not_in_the_sandbox_environment(
    execute: Execute, monkeypatch: pytest.MonkeyPatch, jp_serverapp: Any
) -> None:
    """A secret in the server's environment appears in no environment inside: os.environ,
    posix.environ, /proc/*/environ and /proc/*/task/*/environ, command lines."""
    monkeypatch.setenv("CODEREMOTE_TEST_SECRET", SECRET)
    # the snippet library's server-side settings
    monkeypatch.setenv("GEMINI_API_KEY", SECRET + "-gemini")
    monkeypatch.setenv("CODEREMOTE_DATABASE_URL", f"postgresql://u:{SECRET}@db/coderemote")
    result = await run(
        execute,
        """
        import os, sys
        posix = sys.modules["posix"]
        files = {}
        for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", "thread-self"]:
            names = [f"/proc/{pid}/environ", f"/proc/{pid}/cmdline"]
            names += [f"/proc/{pid}/task/{t}/environ" for t in os.listdir(f"/proc/{pid}/task")] if pid.isdigit() else []
            for name in names:
                files[name] = _try(lambda name=name: open(name, "rb").read().decode("latin-1"))
        _report(environ=dict(os.environ),
                posix_environ={k.decode(): v.decode() for k, v in posix.environ.items()}, files=files)
    """,
    )
    values = report(result)
    everything = result["stdout"] + result["stderr"]
    assert SECRET not in everything
    assert "CODEREMOTE_TEST_SECRET" not in everything
    assert "GEMINI_API_KEY" not in everything and "CODEREMOTE_DATABASE_URL" not in everything
    assert jp_serverapp.identity_provider.token not in everything  # the server's auth token
    assert os.environ["JUPYTER_RUNTIME_DIR"] not in everything  # no server paths either
    assert values["environ"]["HOME"] == "/workspace"
    allowed = set(
        # the provisioner's allow-list and fixed values
        "LANG LC_ALL LC_CTYPE TZ PATH HOME PYTHONPATH PYTHONDONTWRITEBYTECODE MPLCONFIGDIR MPLBACKEND IPYTHONDIR "
        "CODEREMOTE_OUTPUT_LIMIT CODEREMOTE_BLOCKED_MODULES "
        # set by ipykernel inside the kernel
        "PYDEVD_USE_FRAME_EVAL TERM CLICOLOR FORCE_COLOR CLICOLOR_FORCE PAGER GIT_PAGER".split()
    )
    assert set(values["environ"]) <= allowed
    assert set(values["posix_environ"]) <= allowed
    init_env = values["files"]["/proc/1/environ"]
    assert init_env["ok"] and "HOME=/workspace" in init_env["value"]  # the probe really read it


@escape
async def test_host_connection_files_and_other_kernels_keys_are_invisible(
    execute: Execute, jp_serverapp: Any, jp_runtime_dir: Path, sessions: list[str]
) -> None:
    """A victim kernel runs in a session; a fresh sandbox tries the victim's host
    connection file, its per-kernel folder and the runtime dir, and searches every
    readable file for key-like strings: only its own key may turn up."""
    sessions.append("victim")
    assert (await execute("v = 1", session_id="victim"))["status"] == "ok"
    victim = session_kernel(jp_serverapp, "local", "victim")
    victim_key = victim.session.key.decode()
    host_paths = [
        victim.connection_file,
        str(jp_runtime_dir),
        str(victim.provisioner.kernel_dir),
        str(victim.provisioner.connection_dir / "connection.json"),
        str(Path(victim.provisioner.state_dir) / "kernels"),
        "/root/.local/share/jupyter/runtime",
    ]
    assert victim_key in host_text(victim.connection_file)
    result = await run(
        execute,
        f"""
        import json, os, re
        host_paths = {host_paths!r}
        attempts = {{p: _try(lambda p=p: os.listdir(p) if os.path.isdir(p) else open(p).read()) for p in host_paths}}
        key_like = re.compile(r"[0-9a-f]{{8}}(?:-[0-9a-f]{{4,}}){{1,4}}")
        found, scanned = set(), 0
        skip = ("/root/.pyenv", "/tmp/ipython")  # the interpreter; the history holds this cell
        for root in ("/run", "/tmp", "/workspace", "/etc", "/root", "/opt/coderemote/kernel", "/proc/1", "/proc/self"):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not os.path.join(dirpath, d).startswith(skip)
                               and d not in ("task", "fd", "fdinfo", "net", "root", "cwd", "map_files")]
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    if name in ("mem", "pagemap", "kcore") or path.startswith(skip):
                        continue
                    try:
                        with open(path, "rb") as f:
                            data = f.read(1 << 20).decode("latin-1")
                    except OSError:
                        continue
                    scanned += 1
                    found.update(key_like.findall(data))
        own_key = json.load(open("/run/kernel/connection.json"))["key"]
        _report(attempts=attempts, found=sorted(found), scanned=scanned, own_key=own_key)
    """,
        timeout_s=30,
    )
    values = report(result)
    assert {p: a["value"] for p, a in values["attempts"].items() if a["ok"]} == {}
    assert values["own_key"] != victim_key
    assert values["scanned"] > 10 and values["own_key"] in values["found"]  # the search does find keys
    assert victim_key not in values["found"]
    assert victim_key not in result["stdout"]
    # The victim cannot read its own host connection file either (only its sandbox copy).
    own = await run(
        execute,
        f"""
        import json
        _report(host=_try(lambda: open({victim.connection_file!r}).read()),
                copy=json.load(open("/run/kernel/connection.json"))["key"])
    """,
        session_id="victim",
    )
    own_values = report(own)
    assert refused(own_values["host"], {errno.ENOENT})
    assert own_values["copy"] == victim_key  # its own key, expected inside


@escape
async def test_host_directories_are_absent(
    execute: Execute,
    jp_root_dir: Path,
    jp_data_dir: Path,
    jp_runtime_dir: Path,
    jp_config_dir: Path,
    jp_home_dir: Path,
    tmp_path: Path,
) -> None:
    """/root, /home, /work, the repository, the server's root/data/runtime/config dirs and state
    dir are absent or empty; the server's own packages cannot be imported."""
    state_dir = GVisorProvisioner().state_dir
    absent = [
        *"/home /work /work/main /work/main/pyproject.toml /work/shared /run/coderemote".split(),
        *"/root/.local /root/.jupyter /root/.ssh /root/.bash_history".split(),
        *map(str, (jp_root_dir, jp_data_dir, jp_runtime_dir, jp_config_dir, jp_home_dir, tmp_path, state_dir)),
        *"/var /srv /mnt /media /boot /bin /sbin /usr/bin /usr/local /usr/share".split(),
    ]
    for path in ("/work/main/pyproject.toml", "/home", state_dir, str(jp_data_dir)):
        assert host_exists(path), path  # they exist on the host, so the probe means something
    result = await run(
        execute,
        f"""
        import importlib.util, os
        listings = {{p: _try(os.listdir, p) for p in {absent!r}}}
        root = {{p: sorted(os.listdir(p)) for p in ("/", "/root", "/root/.pyenv", "/root/.pyenv/versions", "/opt")}}
        hidden = os.listdir("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages")
        server_packages = {{m: _try(lambda m=m: importlib.util.find_spec(m) is None)
                           for m in ("kernel_gateway_ext", "provisioner", "snippets", "analysis_ext",
                                     "jupyter_server", "pytest", "pytest_jupyter")}}
        _report(listings=listings, root=root, hidden=hidden, server_packages=server_packages)
    """,
    )
    values = report(result)
    visible = {p: r["value"] for p, r in values["listings"].items() if not refused(r, {errno.ENOENT})}
    assert visible == {}
    assert values["root"] == {
        "/": ["dev", "etc", "lib", "lib64", "opt", "proc", "root", "run", "sys", "tmp", "usr", "workspace"],
        "/root": [".pyenv"],
        "/root/.pyenv": ["versions"],
        "/root/.pyenv/versions": ["3.11.7"],  # the host has more; only the runtime's base is mounted
        "/opt": ["coderemote"],
    }
    assert values["hidden"] == []  # the base interpreter's site-packages (the server's packages)
    assert values["server_packages"] == {m: {"ok": True, "value": True} for m in values["server_packages"]}


@escape
async def test_mountinfo_shows_only_sandbox_mounts(execute: Execute, tmp_path: Path) -> None:
    """/proc/self/mountinfo and /proc/mounts list only the sandbox's own mount points."""
    result = await run(
        execute,
        """
        _report(mountinfo=open("/proc/self/mountinfo").read(), mounts=open("/proc/mounts").read())
    """,
    )
    values = report(result)
    points = {line.split()[4] for line in values["mountinfo"].splitlines()}
    runtime = Runtime.load(GVisorProvisioner().runtime_dir)
    assert points == {
        *"/ /tmp /workspace /dev /dev/pts /sys /proc /usr/lib /usr/lib64 /run/kernel /opt/coderemote/kernel".split(),
        str(runtime.path),
        *runtime.host_paths,  # the interpreter the runtime is built on
        *runtime.hidden_paths,  # empty tmpfs hiding that interpreter's own packages (the server's)
    }
    text = values["mountinfo"] + values["mounts"]
    for host_path in ("/work/", "/work ", "/run/coderemote", "/home", str(tmp_path), "/dev/vda", "pytest-of"):
        assert host_path not in text


# --------------------------------------------------------------------------- network


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


# --------------------------------------------------------------------------- writing and filling


@escape
async def test_writes_outside_scratch_space_fail(execute: Execute) -> None:
    """The runtime, the launcher, the interpreter, /usr/lib, /etc and / are read-only:
    creating, appending, renaming, chmod and mkdir all fail, and the host files are unchanged."""
    runtime = "/opt/coderemote/runtime"
    site = f"{runtime}/lib/python3.11/site-packages"
    launcher = "/opt/coderemote/kernel"  # a bind mount of kernel_images/sandbox
    guard = f"{launcher}/coderemote_kernel/guard.py"
    os_py = "/root/.pyenv/versions/3.11.7/lib/python3.11/os.py"
    rootfs = Path(GVisorProvisioner().state_dir) / "rootfs"

    def on_host(path: str) -> list[Path]:
        """Where a file made at ``path`` inside would land on the host."""
        if path.startswith(launcher + "/"):
            return [SANDBOX_PACKAGE_DIR / path[len(launcher) + 1 :]]
        return [Path(path), rootfs / path.lstrip("/")]

    watched = [f"{runtime}/pyvenv.cfg", os_py, f"{site}/numpy/__init__.py"]  # nobody edits these meanwhile
    before = {p: (os.stat(p).st_mtime_ns, os.stat(p).st_size, os.stat(p).st_mode) for p in watched}
    base = "/root/.pyenv/versions/3.11.7/lib/python3.11"
    creates = [
        *(f"{runtime}/evil", f"{site}/evil.pth", f"{launcher}/evil.py", f"{launcher}/coderemote_kernel/evil.py"),
        *"/usr/lib/evil /usr/lib64/evil /etc/evil /evil /root/evil /run/evil".split(),
        *(f"{base}/evil.py", f"{base}/site-packages/evil.pth"),
    ]
    result = await run(
        execute,
        f"""
        import os, sys
        _io = sys.modules["_io"]
        creates = {creates!r}
        appends = {watched + [guard]!r} + ["/etc/passwd", "/etc/hosts"]
        _report(
            create={{p: _try(lambda p=p: _io.open(p, "w").write("pwned")) for p in creates}},
            append={{p: _try(lambda p=p: _io.open(p, "a").write("pwned")) for p in appends}},
            chmod={{p: _try(os.chmod, p, 0o777) for p in appends}},
            rename=_try(os.rename, {guard!r}, "{launcher}/moved.py"),
            unlink=_try(os.unlink, {watched[0]!r}),
            mkdir={{p: _try(os.mkdir, p) for p in ("/newdir", "/usr/lib/newdir", "/etc/newdir", "{runtime}/x")}},
            utime=_try(os.utime, {os_py!r}, (0, 0)),
        )
    """,
    )
    values = report(result)
    for kind in ("create", "append", "chmod", "mkdir"):
        assert {p: r for p, r in values[kind].items() if not refused(r, DENIED)} == {}, kind
    for kind in ("rename", "unlink", "utime"):
        assert refused(values[kind], DENIED), values[kind]
    after = {p: (os.stat(p).st_mtime_ns, os.stat(p).st_size, os.stat(p).st_mode) for p in watched}
    assert after == before
    assert [h for p in creates for h in on_host(p) if h.exists()] == []
    assert (SANDBOX_PACKAGE_DIR / "coderemote_kernel" / "guard.py").exists()
    assert "pwned" not in host_text("/etc/passwd") + host_text(rootfs / "etc" / "passwd")


@escape
async def test_filling_tmp_and_workspace_stops_at_the_tmpfs_cap(
    execute: Execute, jp_serverapp: Any, sessions: list[str]
) -> None:
    """Writing /tmp and /workspace full ends with ENOSPC at the 64 MiB cap; the data
    lives in the sandbox's memory, not on the host's disk."""
    sessions.append("fill")
    free_before = shutil.disk_usage("/").free
    result = await run(
        execute,
        """
        def fill(folder):
            total, error = 0, None
            chunk = b"\\xff" * (1 << 20)
            try:
                for i in range(100):
                    with open(f"{folder}/fill-{i}", "wb") as f:
                        for _ in range(16):  # 16 MiB per file: below RLIMIT_FSIZE
                            total += f.write(chunk)
            except OSError as e:
                error = e.errno
            return {"total": total, "errno": error}
        _report(tmp=fill("/tmp"), workspace=fill("/workspace"))
    """,
        session_id="fill",
        timeout_s=30,
    )
    values = report(result)
    kernel = session_kernel(jp_serverapp, "local", "fill")
    host_footprint = dir_size(kernel.provisioner.kernel_dir)
    free_after = shutil.disk_usage("/").free
    for folder in ("tmp", "workspace"):
        assert values[folder]["errno"] == errno.ENOSPC, values
        assert TMPFS_CAP - 8 * MiB <= values[folder]["total"] <= TMPFS_CAP, values
    assert host_footprint < MiB  # nothing of it in the sandbox's host folder
    assert free_before - free_after < 96 * MiB  # 128 MiB were written; none of it on the host disk
    # The kernel is still healthy after the disk-full errors.
    # (IPython may add that its history database is full.)
    assert (await execute("print('alive')", session_id="fill"))["stdout"].startswith("alive\n")


@escape
async def test_file_larger_than_rlimit_fsize_fails(execute: Execute) -> None:
    """A 40 MiB file stops with EFBIG at RLIMIT_FSIZE (32 MiB); SIGXFSZ does not kill the kernel."""
    result = await run(
        execute,
        """
        import os
        written, error = 0, None
        try:
            with open("/workspace/big", "wb") as f:
                for _ in range(40):
                    written += f.write(b"\\0" * (1 << 20))
                    f.flush()
        except OSError as e:
            error = e.errno
        _report(written=written, errno=error, size=os.path.getsize("/workspace/big"))
    """,
    )
    assert result["status"] == "ok", result
    values = report(result)
    assert values["errno"] == errno.EFBIG
    assert values["size"] == FILE_SIZE_LIMIT


@escape
async def test_connection_dir_cannot_fill_the_host_disk(
    execute: Execute, jp_serverapp: Any, sessions: list[str]
) -> None:
    """/run/kernel is the one writable folder backed by the host: what the sandbox can put
    there must stay within its scratch-space cap (64 MiB), not fill the host disk."""
    sessions.append("conn-fill")
    result = await run(
        execute,
        """
        total, error = 0, None
        try:
            for i in range(5):
                with open(f"/run/kernel/fill-{i}", "wb") as f:
                    for _ in range(16):
                        total += f.write(b"\\0" * (1 << 20))
        except OSError as e:
            error = e.errno
        _report(total=total, errno=error)
    """,
        session_id="conn-fill",
        timeout_s=30,
    )
    values = report(result)
    kernel = session_kernel(jp_serverapp, "local", "conn-fill")
    on_host = dir_size(kernel.provisioner.connection_dir)
    assert on_host <= TMPFS_CAP, f"{on_host / MiB:.0f} MiB written to the host's {kernel.provisioner.connection_dir}"
    assert values["total"] <= TMPFS_CAP
    assert values["errno"] == errno.ENOSPC


@escape
async def test_inherited_host_log_fd_cannot_fill_the_host_disk(execute: Execute, sessions: list[str]) -> None:
    """The kernel holds no host-backed regular file among its open fds (found through
    /proc/self/fd): its original stdout/stderr are a pipe the server drains, not a file
    on the host's disk that user code could grow without limit."""
    sessions.append("log-fill")
    result = await run(
        execute,
        """
        import os, stat
        fds = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("host:") and stat.S_ISREG(os.fstat(int(fd)).st_mode):
                    fds.append(int(fd))
            except OSError:
                pass
        written, error = 0, None
        try:
            for _ in range(40):
                for fd in fds[:1]:
                    written += os.write(fd, b"Z" * (1 << 20))
        except OSError as e:
            error = e.errno
        _report(fds=fds, written=written, errno=error)
    """,
        session_id="log-fill",
        timeout_s=30,
    )
    values = report(result)
    assert values["fds"] == []
    assert values["written"] == 0


@escape
async def test_links_do_not_reach_host_files(execute: Execute) -> None:
    """Symlinks made in the host-backed /run/kernel and in /tmp resolve inside the sandbox
    (host files stay unreachable); hard links out of read-only mounts fail."""
    targets = ["/etc/hostname", "/etc/shadow", "/work/main/pyproject.toml", "/run/coderemote", "/home"]
    assert all(host_exists(t) for t in targets)  # present on the host
    result = await run(
        execute,
        f"""
        import os
        reads = {{}}
        for i, target in enumerate({targets!r}):
            for folder in ("/run/kernel", "/tmp"):
                link = f"{{folder}}/link-{{i}}"
                os.symlink(target, link)
                reads[link] = _try(lambda link=link: os.listdir(link) if os.path.isdir(link) else open(link).read())
        hard = {{src: _try(os.link, src, f"/run/kernel/hard-{{i}}")
                for i, src in enumerate(["/opt/coderemote/runtime/pyvenv.cfg", "/etc/passwd", "/usr/lib/os-release"])}}
        _report(reads=reads, hard=hard)
    """,
    )
    values = report(result)
    assert {link: r for link, r in values["reads"].items() if not refused(r, {errno.ENOENT})} == {}
    assert {
        src: r
        for src, r in values["hard"].items()
        if not refused(r, {errno.EXDEV, errno.EPERM, errno.EACCES, errno.ENOENT})
    } == {}


# --------------------------------------------------------------------------- processes and limits


@escape
async def test_fork_bomb_stops_at_the_process_limit(execute: Execute) -> None:
    """A fork loop (in a small interpreter started through Popen from subclasses, with
    ``posix.fork``) fails with EAGAIN below RLIMIT_NPROC (64); a thread bomb in the kernel
    stops there too, and the result arrives."""
    result = await run(
        execute,
        """
        import sys, threading
        Popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "Popen"][0]
        bomb = '''
        import posix, time, json
        kids, error = [], None
        for _ in range(500):
            try:
                pid = posix.fork()
            except OSError as e:
                error = e.errno
                break
            if pid == 0:
                time.sleep(60)
                posix._exit(0)
            kids.append(pid)
        live = len([p for p in posix.listdir("/proc") if p.isdigit()])
        for pid in kids:
            posix.kill(pid, 9)
            posix.waitpid(pid, 0)
        print(json.dumps({"forked": len(kids), "errno": error, "live": live}))
        '''
        out, err = Popen([sys.executable, "-S", "-c", bomb], stdout=-1, stderr=-1).communicate(timeout=25)
        release = threading.Event()
        threads, thread_error = [], None
        try:
            for _ in range(500):
                t = threading.Thread(target=release.wait)
                t.start()
                threads.append(t)
        except RuntimeError as e:
            thread_error = str(e)
        release.set()
        _report(fork=_json.loads(out), stderr=err.decode(), threads=len(threads), thread_error=thread_error)
    """,
        timeout_s=30,
    )
    assert result["status"] == "ok", result
    values = report(result)
    assert values["fork"]["errno"] == errno.EAGAIN
    assert values["fork"]["forked"] < 64 and values["fork"]["live"] <= 64
    assert values["threads"] < 64 and values["thread_error"] == "can't start new thread"


@escape
async def test_recursive_fork_bomb_is_contained(execute: Execute) -> None:
    """Every child forks again (``posix`` from sys.modules): the sandbox hits a limit,
    the result arrives within the timeout, and the next request works."""
    started = time.monotonic()
    result = await run(
        execute,
        """
        import sys, time
        posix = sys.modules["posix"]
        me, made, refused = posix.getpid(), 0, 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                pid = posix.fork()
            except OSError:
                refused += 1
                continue
            made = 0 if pid == 0 else made + 1
        if posix.getpid() != me:
            posix._exit(0)
        _report(made=made, refused=refused)
    """,
        timeout_s=10,
    )
    elapsed = time.monotonic() - started
    assert result["status"] in ("ok", "memory_limit", "killed", "timeout"), result
    if result["status"] == "ok":
        assert report(result)["refused"] > 0
    assert elapsed < 40
    assert (await execute("print('alive')"))["stdout"] == "alive\n"


@escape
async def test_memory_bomb_is_stopped(execute: Execute) -> None:
    """Touched allocations past 512 MiB end as memory_limit."""
    result = await execute("blocks = []\nwhile True:\n    blocks.append(b'\\x01' * (16 << 20))", timeout_s=30)
    assert result["status"] == "memory_limit", result


@escape
async def test_memory_bomb_spread_over_children_is_stopped(execute: Execute) -> None:
    """Four forked children of 320 MiB each: the limit covers the whole sandbox, not one process."""
    result = await execute(
        textwrap.dedent("""
        import sys, time
        posix = sys.modules["posix"]
        kids = []
        for _ in range(4):
            pid = posix.fork()
            if pid == 0:
                blocks = [b"\\x01" * (16 << 20) for _ in range(20)]
                time.sleep(30)
                posix._exit(0)
            kids.append(pid)
        for pid in kids:
            posix.waitpid(pid, 0)
        print("all children finished")
    """),
        timeout_s=30,
    )
    assert result["status"] == "memory_limit", result
    assert "all children finished" not in result["stdout"]


@escape
async def test_cpu_spin_times_out(execute: Execute) -> None:
    """An endless loop ends as timeout within the requested 2 s (plus interrupt grace)."""
    result = await execute("while True:\n    pass", timeout_s=2)
    assert result["status"] == "timeout", result
    assert 2_000 <= result["duration_ms"] < 15_000


@escape
async def test_cpu_spin_ignoring_sigint_is_stopped(execute: Execute) -> None:
    """SIGINT ignored through ``_signal`` from sys.modules: the interrupt cannot stop it, the
    kernel is killed, and the result still arrives soon after the timeout."""
    result = await execute(
        textwrap.dedent("""
        import sys
        _signal = sys.modules["_signal"]
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        print("spinning", flush=True)
        while True:
            pass
    """),
        timeout_s=2,
    )
    assert result["status"] == "timeout", result
    assert result["stdout"] == "spinning\n"
    assert 2_000 <= result["duration_ms"] < 20_000


@escape
async def test_endless_output_is_cut(execute: Execute) -> None:
    """print in a loop: output_limit, with at most about 1 MiB kept."""
    result = await execute("while True:\n    print('x' * 1000)", timeout_s=20)
    assert result["status"] == "output_limit", result["status"]
    assert TRUNCATED in result["stdout"]
    assert len(result["stdout"]) + len(result["stderr"]) <= OUTPUT_LIMIT + 1024


@escape
async def test_endless_output_from_a_thread_is_cut(execute: Execute) -> None:
    """A background thread printing to stdout and stderr forever: the budget still applies."""
    result = await execute(
        textwrap.dedent("""
        import sys, threading, time
        def spam():
            while True:
                print("t" * 1000)
                print("e" * 1000, file=sys.stderr)
        threading.Thread(target=spam, daemon=True).start()
        time.sleep(3)
    """),
        timeout_s=20,
    )
    assert result["status"] == "output_limit", result["status"]
    assert TRUNCATED in result["stdout"] + result["stderr"]
    assert len(result["stdout"]) + len(result["stderr"]) <= OUTPUT_LIMIT + 1024


@escape
async def test_endless_fd_level_output_is_cut(execute: Execute) -> None:
    """``os.write(1, ...)`` and ``os.write(2, ...)`` past the Python streams: the captured
    file descriptors feed the same budget, so at most about 1 MiB comes back. (An endless
    loop of such writes is cut the same way but runs until its timeout.)"""
    # 1.5 MiB through the descriptors (half again the budget), then time for ipykernel's
    # reader thread to catch up; the margin is for a loaded machine, where gVisor's pipes are slow.
    code = "import os, time\nfor _ in range(192):\n    os.write(1, b'y' * 4096)\n    os.write(2, b'z' * 4096)\n"
    code += "time.sleep(2)"
    result = await execute(code, timeout_s=30)
    if result["status"] == "timeout":
        # Known: under CPU contention ipykernel's fd reader in gVisor sometimes stops moving
        # and the run ends at its timeout (sandbox cleaned up). Once more, on a fresh sandbox.
        result = await execute(code, timeout_s=30)
    assert result["status"] == "output_limit", result["status"]
    assert TRUNCATED in result["stdout"] + result["stderr"]
    assert len(result["stdout"]) + len(result["stderr"]) <= OUTPUT_LIMIT + 1024


STRAY_THREAD = """
import threading, time
def stray():
    for i in range(80):
        print("STRAY", i, flush=True)
        time.sleep(0.05)
threading.Thread(target=stray, daemon=True).start()
print("first")
"""


@escape
async def test_stray_thread_output_stays_out_of_the_next_execution(execute: Execute, sessions: list[str]) -> None:
    """A cell returns while its thread keeps printing: the result arrives promptly and the
    thread's output does not show up in the session's next execution."""
    sessions.append("stray")
    started = time.monotonic()
    first = await execute(STRAY_THREAD, session_id="stray")
    assert first["status"] == "ok" and "first\n" in first["stdout"]
    assert time.monotonic() - started < 15  # the reply does not wait for the thread
    second = await execute("import time\ntime.sleep(1)\nprint('second')", session_id="stray")
    assert second["status"] == "ok"
    assert second["stdout"] == "second\n"


@escape
async def test_stray_thread_output_stays_out_of_other_requests(execute: Execute, sessions: list[str]) -> None:
    """A cell returns while its thread keeps printing: the result arrives promptly, and a
    request without the session meanwhile gets exactly its own output (its own sandbox)."""
    sessions.append("stray-other")
    started = time.monotonic()
    first = await execute(STRAY_THREAD, session_id="stray-other")
    assert first["status"] == "ok" and "first\n" in first["stdout"]
    assert time.monotonic() - started < 15  # the reply does not wait for the 4 s thread
    other = await execute("import time\ntime.sleep(1)\nprint('other')")
    assert other["status"] == "ok"
    assert other["stdout"] == "other\n"


# --------------------------------------------------------------------------- guard bypasses


@escape
async def test_import_guard_refuses_every_import_route(execute: Execute) -> None:
    """Blocked modules through: import statement, __import__, builtins.__import__,
    importlib.import_module, exec(compile(...)), from-import of a submodule, and a module
    file written to /tmp that imports one."""
    result = await run(
        execute,
        """
        import builtins, importlib, sys
        with open("/tmp/innocent.py", "w") as f:
            f.write("import multiprocessing\\n")
        sys.path.insert(0, "/tmp")
        routes = {
            "import_statement": lambda: exec("import subprocess"),
            "dunder_import": lambda: __import__("subprocess"),
            "builtins_import": lambda: builtins.__import__("ctypes"),
            "import_module": lambda: importlib.import_module("socket"),
            "exec_compile": lambda: exec(compile("import posix", "<string>", "exec"), {}),
            "from_import": lambda: exec("from http import client"),
            "module_in_tmp": lambda: __import__("innocent"),
            "submodule": lambda: importlib.import_module("urllib.request"),
        }
        _report(routes={name: _try(route) for name, route in routes.items()})
    """,
    )
    routes = report(result)["routes"]
    expected = {
        "import_statement": "subprocess",
        "dunder_import": "subprocess",
        "builtins_import": "ctypes",
        "import_module": "socket",
        "exec_compile": "posix",
        "from_import": "http.client",
        "module_in_tmp": "multiprocessing",
        "submodule": "urllib.request",
    }
    assert {name: (r.get("exc"), r.get("msg")) for name, r in routes.items()} == {
        name: ("ImportBlockedError", f"import of '{module}' is not allowed in this sandbox")
        for name, module in expected.items()
    }


@escape
async def test_os_process_functions_are_refused(execute: Execute) -> None:
    """os.system, popen, fork, exec*, spawn*, posix_spawn and kill raise PermissionError,
    however user code reaches them (attribute, getattr, exec string, __builtins__)."""
    result = await run(
        execute,
        """
        import os
        calls = {
            "system": lambda: os.system("id"),
            "popen": lambda: os.popen("id").read(),
            "fork": lambda: os.fork(),
            "execv": lambda: os.execv("/opt/coderemote/runtime/bin/python", ["python", "-c", "1"]),
            "spawnv": lambda: os.spawnv(os.P_WAIT, "/opt/coderemote/runtime/bin/python", ["python", "-c", "1"]),
            "posix_spawn": lambda: os.posix_spawn("/opt/coderemote/runtime/bin/python", ["python"], {}),
            "kill": lambda: os.kill(1, 0),
            "getattr_system": lambda: getattr(os, "system")("id"),
            "exec_system": lambda: exec("import os; os.system('id')"),
            "builtins_system": lambda: __builtins__.__dict__["__import__"]("os").system("id")
            if hasattr(__builtins__, "__dict__") else __builtins__["__import__"]("os").system("id"),
        }
        _report(calls={name: _try(call) for name, call in calls.items()})
    """,
    )
    calls = report(result)["calls"]
    assert {name: r.get("exc") for name, r in calls.items()} == {name: "PermissionError" for name in calls}
    assert all("is not allowed in this sandbox" in r.get("msg", "") for r in calls.values())


@escape
async def test_popen_from_subclasses_finds_no_shell(execute: Execute) -> None:
    """subprocess.Popen reached through ``object.__subclasses__()``: there is no shell or
    host tool to run."""
    result = await run(
        execute,
        """
        import os
        Popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "Popen"][0]
        commands = {
            "bin_sh": (["/bin/sh", "-c", "id"], {}),
            "shell_true": ("id", {"shell": True}),
            "bash": (["bash", "-c", "id"], {}),
            "usr_bin_env": (["/usr/bin/env"], {}),
            "busybox": (["busybox", "sh"], {}),
            "runsc": (["runsc", "list"], {}),
        }
        _report(runs={name: _try(lambda a=a, k=k: Popen(a, stdout=-1, stderr=-1, **k).communicate(timeout=10))
                      for name, (a, k) in commands.items()},
                bin_dirs={d: os.path.exists(d) for d in ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin")})
    """,
    )
    values = report(result)
    assert {name: r for name, r in values["runs"].items() if not refused(r, {errno.ENOENT}, "FileNotFoundError")} == {}
    assert values["bin_dirs"] == dict.fromkeys(values["bin_dirs"], False)


@escape
async def test_ctypes_is_blocked_and_raw_syscalls_are_refused(execute: Execute) -> None:
    """``import ctypes`` is refused. ctypes is preloaded, so sys.modules hands it out anyway:
    through it, mount, umount, ptrace, unshare of the mount namespace followed by mount,
    reboot, module loading, kexec, bpf, open_by_handle_at, iopl, setns, sethostname and
    chroot are all refused by gVisor (which reports its own kernel version)."""
    result = await run(
        execute,
        """
        import os, sys
        blocked = _try(lambda: exec("import ctypes"))
        ctypes = sys.modules.get("ctypes")
        calls = {}
        if ctypes is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            def syscall(number, *args):
                ctypes.set_errno(0)
                return libc.syscall(number, *args), ctypes.get_errno()
            libc.unshare(0x00020000)  # CLONE_NEWNS: gVisor allows it, mounting must still fail
            calls = {
                "mount_tmpfs": syscall(165, b"none", b"/tmp", b"tmpfs", 0, None),
                "bind_mount_root": syscall(165, b"/", b"/workspace", None, 4096, None),
                "remount_rw": syscall(165, None, b"/opt/coderemote/runtime", None, 32 | 4096, None),
                "umount_runtime": syscall(166, b"/opt/coderemote/runtime", 2),
                "ptrace_attach_1": syscall(101, 16, 1, 0, 0),
                "reboot": syscall(169, 0xfee1dead, 672274793, 0x4321fedc, 0),
                "init_module": syscall(175, 0, 0, 0),
                "finit_module": syscall(313, 0, 0, 0),
                "kexec_load": syscall(246, 0, 0, 0, 0),
                "bpf": syscall(321, 0, 0, 0),
                "open_by_handle_at": syscall(304, 0, 0, 0),
                "iopl": syscall(172, 3),
                "setns": syscall(308, 0, 0),
                "sethostname": syscall(170, b"pwned", 5),
                "chroot": syscall(161, b"/tmp"),
                "pivot_root": syscall(155, b"/tmp", b"/tmp"),
            }
        _report(blocked=blocked, calls=calls, release=os.uname().release, hostname=os.uname().nodename)
    """,
    )
    values = report(result)
    assert values["blocked"]["exc"] == "ImportBlockedError"
    assert values["calls"], "ctypes unavailable through sys.modules: nothing more to check"
    refusals = {errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOENT}
    assert {name: c for name, c in values["calls"].items() if c[0] != -1 or c[1] not in refusals} == {}
    assert values["release"] == "4.4.0"  # gVisor's sentry answered, not the host kernel
    assert values["hostname"] == "sandbox"


@escape
async def test_user_namespace_gives_no_host_access(execute: Execute) -> None:
    """A forked child unshares a user + mount namespace (root inside it): after remounting the
    runtime read-write, writing into it and into read-only folders still fails; a tmpfs it mounts
    over the runtime stays in its own namespace; host files stay absent."""
    result = await run(
        execute,
        """
        import sys
        posix, ctypes = sys.modules["posix"], sys.modules["ctypes"]
        r, w = posix.pipe()
        pid = posix.fork()
        if pid == 0:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                out = {"unshare": libc.unshare(0x10000000 | 0x00020000)}
                out["uid_map"] = _try(lambda: open("/proc/self/uid_map", "w").write("0 1000 1"))
                out["uid"] = posix.getuid()
                # MS_REMOUNT | MS_BIND (no MS_RDONLY): make the runtime's read-only bind mount writable
                out["remount"] = libc.mount(None, b"/opt/coderemote/runtime", None, 32 | 4096, None)
                out["write_runtime"] = _try(lambda: open("/opt/coderemote/runtime/evil", "w"))
                out["write_usr_lib"] = _try(lambda: open("/usr/lib/evil", "w"))
                out["shadow"] = _try(lambda: open("/etc/shadow").read())
                out["setuid"] = _try(posix.setuid, 0)
                # A tmpfs over the runtime, in the child's own mount namespace (gVisor 2024 allows it, as Linux
                # does for a namespace's root): it must not change what the rest of the sandbox sees.
                out["mount"] = libc.mount(b"none", b"/opt/coderemote/runtime", b"tmpfs", 0, None)
                if out["mount"] == 0:
                    open("/opt/coderemote/runtime/evil", "w").close()
                posix.write(w, _json.dumps(out).encode())
            finally:
                posix._exit(0)
        posix.close(w)
        posix.waitpid(pid, 0)
        import os
        _report(child=_json.loads(posix.read(r, 1 << 16)),
                parent_sees_evil=os.path.exists("/opt/coderemote/runtime/evil"),
                parent_sees_runtime=os.path.exists("/opt/coderemote/runtime/bin/python"))
    """,
    )
    values = report(result)
    child = values["child"]
    # gVisor 2024 lets a namespace's root remount its own view (the call returns 0, as on Linux for
    # unlocked mounts): what counts is that nothing can be written through it.
    assert child["remount"] in (0, -1) and child["mount"] in (0, -1)
    assert refused(child["write_runtime"], DENIED) and refused(child["write_usr_lib"], DENIED)
    assert refused(child["shadow"], {errno.ENOENT})
    assert not values["parent_sees_evil"] and values["parent_sees_runtime"]


@escape
async def test_privilege_escalation_fails(execute: Execute) -> None:
    """setuid/setgid/setresuid/setgroups/chown to root fail, no capabilities are held, and
    setuid-root programs visible under /usr/lib do not run as root (nosuid, no_new_privs)."""
    result = await run(
        execute,
        """
        import os, sys
        posix = sys.modules["posix"]
        Popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "Popen"][0]
        helper = "/usr/lib/polkit-1/polkit-agent-helper-1"
        st = os.stat(helper) if os.path.exists(helper) else None
        suid = {"mode": oct(st.st_mode), "owner": st.st_uid} if st else None
        run_helper = _try(lambda: Popen([helper, "root"], stdin=-1, stdout=-1, stderr=-1).communicate(b"x", timeout=10))
        open("/tmp/mine", "w").close()
        _report(
            calls={"setuid": _try(posix.setuid, 0), "setgid": _try(posix.setgid, 0),
                   "seteuid": _try(posix.seteuid, 0), "setresuid": _try(posix.setresuid, 0, 0, 0),
                   "setgroups": _try(posix.setgroups, [0]), "chown": _try(posix.chown, "/tmp/mine", 0, 0)},
            ids=[posix.getuid(), posix.geteuid(), posix.getgid(), posix.getegid()],
            status=[l for l in open("/proc/self/status").read().splitlines() if l.startswith(("Cap", "Uid", "Gid"))],
            suid=suid, run_helper=run_helper,
        )
    """,
    )
    values = report(result)
    assert {name: c for name, c in values["calls"].items() if not refused(c, {errno.EPERM})} == {}
    assert values["ids"] == [1000, 1000, 1000, 1000]
    caps = {line.split(":")[0]: line.split()[1] for line in values["status"] if line.startswith("Cap")}
    assert caps and set(caps.values()) == {"0000000000000000"}, caps
    if values["suid"] is not None:  # the host has a setuid-root helper; inside it is powerless
        assert values["suid"]["owner"] == 0 and int(values["suid"]["mode"], 8) & 0o4000
        assert "needs to be setuid root" in values["run_helper"]["value"]


@escape
async def test_signals_reach_no_host_process(execute: Execute) -> None:
    """SIGKILL through ``posix.kill`` to host pids (a sleeper the test starts, the server)
    and to -1 (everything the sandbox may signal): no host process is touched."""
    sleeper = await host_sleeper()
    try:
        # Host pids; small numbers could name a process inside the sandbox's own pid namespace.
        host_pids = [pid for pid in (sleeper.pid, os.getpid(), os.getppid()) if pid > 100]
        result = await run(
            execute,
            f"""
            import sys
            posix = sys.modules["posix"]
            _report(kills={{pid: _try(posix.kill, pid, 9) for pid in {host_pids!r}}},
                    broadcast=_try(posix.kill, -1, 9))
        """,
        )
        assert result["status"] == "ok", result  # the kernel is the sandbox's init: -1 spares it
        values = report(result)
        assert {pid: k for pid, k in values["kills"].items() if not refused(k, {errno.ESRCH})} == {}
        await asyncio.sleep(0.3)
        assert sleeper.returncode is None  # still alive on the host
    finally:
        sleeper.kill()
        await sleeper.wait()


@escape
async def test_signal_to_the_parent_kills_only_the_sandbox(execute: Execute) -> None:
    """os.kill(os.getppid(), SIGKILL): refused by the guard; through ``posix`` the parent is
    pid 0 (nothing outside the sandbox), so the kernel's own group dies. The host and the
    server are unharmed."""
    guarded = await execute("import os\nos.kill(os.getppid(), 9)")
    assert guarded["status"] == "error" and guarded["error"]["ename"] == "PermissionError"
    sleeper = await host_sleeper()
    try:
        result = await execute(
            "import os, sys\nprint(os.getppid(), flush=True)\nsys.modules['posix'].kill(os.getppid(), 9)"
        )
        assert result["status"] == "killed", result
        assert result["stdout"] in ("", "0\n")
        assert sleeper.returncode is None
        assert (await execute("print('alive')"))["stdout"] == "alive\n"
    finally:
        sleeper.kill()
        await sleeper.wait()


@escape
async def test_killing_pid_1_ends_only_that_sandbox(execute: Execute) -> None:
    """SIGKILL to the sandbox's init through ``posix``: reported as killed; the server keeps serving."""
    result = await execute("import sys\nsys.modules['posix'].kill(1, 9)")
    assert result["status"] == "killed", result
    assert (await execute("print(2 + 2)"))["stdout"] == "4\n"


# --------------------------------------------------------------------------- identity and devices


@escape
async def test_hostname_is_sandbox(execute: Execute) -> None:
    """The UTS namespace is the sandbox's: hostname 'sandbox' by every route, not the host's."""
    result = await run(
        execute,
        """
        import os, sys
        socket = sys.modules["socket"]
        _report(gethostname=socket.gethostname(), uname=os.uname().nodename,
                proc=open("/proc/sys/kernel/hostname").read().strip(), fqdn=socket.getfqdn())
    """,
    )
    values = report(result)
    assert {values["gethostname"], values["uname"], values["proc"]} == {"sandbox"}
    assert os.uname().nodename != "sandbox"  # the host's name differs, so this says something
    assert os.uname().nodename not in values.values()


def host_block_devices() -> dict[str, tuple[int, int]]:
    """The host's block devices and their (major, minor) numbers."""
    devices = {}
    for name in os.listdir("/sys/block"):
        major, minor = Path(f"/sys/block/{name}/dev").read_text().split(":")
        devices[name] = (int(major), int(minor))
    return devices


@escape
async def test_no_host_devices(execute: Execute) -> None:
    """/dev holds only gVisor's virtual devices and /sys no block devices; device nodes made
    with mknod for each of the host's disks and for /dev/mem open nothing."""
    disks = host_block_devices()
    assert disks  # the host has block devices (e.g. vda) the sandbox must not reach
    nodes = {name: (0o060000, *numbers) for name, numbers in disks.items()} | {"mem": (0o020000, 1, 1)}
    result = await run(
        execute,
        f"""
        import os, sys
        posix = sys.modules["posix"]
        made = {{}}
        for name, (kind, major, minor) in {nodes!r}.items():
            path = f"/tmp/{{name}}"
            made[name] = {{"mknod": _try(posix.mknod, path, 0o666 | kind, posix.makedev(major, minor)),
                          "read": _try(lambda path=path: open(path, "rb").read(16))}}
        absent = [f"/dev/{{name}}" for name in {sorted(disks)!r}] + [
            "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/kvm",
            "/dev/mapper", "/proc/kcore", "/proc/partitions", "/proc/modules", "/sys/fs/cgroup/memory.max",
            "/sys/kernel/security"]
        _report(dev=sorted(os.listdir("/dev")), block=os.listdir("/sys/block"),
                exists={{p: os.path.exists(p) for p in absent}}, made=made)
    """,
    )
    values = report(result)
    gvisor_devices = "fd full fuse net null ptmx pts random shm stderr stdin stdout tty urandom zero".split()
    assert set(values["dev"]) <= set(gvisor_devices)
    assert values["block"] == []
    assert {p for p, exists in values["exists"].items() if exists} == set()
    assert set(values["made"]) == set(nodes)
    for name, made in values["made"].items():
        assert refused(made["read"], {errno.ENXIO, errno.ENODEV, errno.EACCES, errno.EPERM, errno.ENOENT}), name


# --------------------------------------------------------------------------- afterwards


async def test_server_still_serves_and_no_sandbox_is_left(execute: Execute) -> None:
    """After the battery: a normal execution works and no sandbox of this process remains
    (sandboxes of other servers sharing the state dir, if any, are not ours to judge)."""
    result = await execute("print(1)")
    assert (result["status"], result["stdout"], result["error"]) == ("ok", "1\n", None)
    state = Path(GVisorProvisioner().state_dir)

    def ours() -> list[str]:
        left = []
        for container in running_sandboxes():
            try:
                owner = json.loads((state / "kernels" / container / "owner.json").read_text())["pid"]
            except (OSError, ValueError, KeyError):
                owner = None  # no folder left: an orphan, counted as ours
            if owner in (None, os.getpid()):
                left.append(container)
        return left

    for _ in range(20):  # a moment for a teardown still in progress
        if not ours():
            break
        await asyncio.sleep(0.5)
    assert ours() == []
