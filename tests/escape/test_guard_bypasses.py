"""Guard bypasses: the import and ``os`` guards refuse every route they cover,
and going around them gains nothing.

The first tests check the guard itself (every import route to a blocked
module, every way to reach the ``os`` process functions). The rest take what
the guard cannot withhold (``Popen`` from ``object.__subclasses__()``,
``ctypes`` and ``posix`` from ``sys.modules``) and find no shell, raw syscalls
refused by gVisor, user namespaces without host access, no privilege
escalation, and signals that reach no host process.
"""

from __future__ import annotations

import asyncio
import errno
import os

from tests.conftest import Execute
from tests.escape.probes import DENIED, escape, host_sleeper, refused, report, run


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
