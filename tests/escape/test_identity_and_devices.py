"""Identity and devices: the sandbox has a name of its own and no host devices.

The hostname is ``sandbox`` by every route; /dev holds only gVisor's virtual
devices, /sys no block devices, and device nodes made with mknod for the host's
disks (or /dev/mem) open nothing.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tests.conftest import Execute
from tests.escape.probes import escape, refused, report, run


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
