"""Writing and filling: what is read-only stays so, and what is writable is capped.

The runtime, the launcher, the interpreter, /usr/lib, /etc and / refuse every
kind of write; /tmp and /workspace are tmpfs in the sandbox's memory (64 MiB),
single files stop at RLIMIT_FSIZE (32 MiB), the host-backed /run/kernel stays
within the scratch-space cap, the kernel holds no host file to grow, and links
do not lead to host files.

The module's name sorts last in the folder, so it also holds the battery's
closing check (``test_server_still_serves_and_no_sandbox_is_left``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from kernel_images import SANDBOX_PACKAGE_DIR
from provisioner import GVisorProvisioner
from tests.conftest import Execute, running_sandboxes
from tests.escape.probes import (
    DENIED,
    FILE_SIZE_LIMIT,
    TMPFS_CAP,
    MiB,
    dir_size,
    escape,
    host_exists,
    host_text,
    refused,
    report,
    run,
)
from tests.servers import session_kernel


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


# --------------------------------------------------------------------------- afterwards


async def test_server_still_serves_and_no_sandbox_is_left(execute: Execute) -> None:
    """After the battery: a normal execution works and no sandbox of this process remains
    (sandboxes of other servers sharing the state dir, if any, are not ours to judge).

    pytest collects a folder's modules by name and this module's name sorts last in
    tests/escape, so in a run of the folder this test comes after every other escape test:
    ``[restored]`` after the earlier modules and this module's restored runs, ``[started]``
    after everything. The check is process-wide, so this one place covers every module (a
    copy per module would only repeat it, and a run of one other module alone has no such
    check). A module whose name sorts after this one would run after the check."""
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
