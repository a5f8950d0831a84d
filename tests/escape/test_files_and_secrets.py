"""Files and secrets: what the host keeps must not be readable from inside.

/etc/shadow by every path trick, the host's users, the server's environment
(its secrets, its auth token), other kernels' connection files and keys, the
host's directories and the server's own packages, and the mount table, which
lists only the sandbox's own mount points.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from kernel_images.runtime import Runtime
from provisioner import GVisorProvisioner
from tests.conftest import Execute
from tests.escape.probes import SECRET, escape, host_exists, host_text, refused, report, run
from tests.servers import session_kernel


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
