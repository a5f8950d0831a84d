"""Shared fixtures. Every test here runs code in the real gVisor sandbox (runsc)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_images import KERNELSPECS_DIR, SANDBOXED_KERNEL
from provisioner import GVisorProvisioner
from provisioner.paths import CONTAINER_PREFIX
from snippets.postgres import EmbeddedPostgres
from snippets.store import create_database

pytest_plugins = ["pytest_jupyter.jupyter_server"]
SERVER_LOG_TAIL = 6000  # bytes of a service's log shown when a test using it fails


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("runsc") is None:
        raise pytest.UsageError("runsc is required: apt-get install -y runsc (the tests never run code unsandboxed)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that used a running service shows the end of that service's log."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    log_path = getattr(server, "log_path", None)
    if report.failed and isinstance(log_path, Path) and log_path.exists():
        tail = log_path.read_bytes()[-SERVER_LOG_TAIL:].decode(errors="replace")
        report.sections.append(("the service's log (its end)", tail))
    return report


@pytest.fixture(autouse=True)
def sandboxed_kernelspec(jp_data_dir: Path) -> None:
    """pytest-jupyter isolates Jupyter's paths: put the kernelspec where it looks."""
    shutil.copytree(KERNELSPECS_DIR / "python3-sandboxed", jp_data_dir / "kernels" / "python3-sandboxed")


@pytest.fixture
def postgres_tmp_path() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL's data, outside pytest's tmp tree.

    The embedded server runs as a user of its own, which must be able to reach
    its data; pytest makes /tmp/pytest-of-root private again whenever a pytest
    run starts, and that would pull the folder from under a running server.
    """
    path = Path(tempfile.mkdtemp(prefix="coderemote-pg-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """One embedded PostgreSQL (with pgvector) for the whole test session; its URI."""
    path = Path(tempfile.mkdtemp(prefix="coderemote-pg-"))
    path.chmod(0o755)
    server = EmbeddedPostgres(path / "pgdata")
    uri = server.start()
    yield uri
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def snippet_database_url(postgres_uri: str) -> str:
    """The database that servers of tests that are not about snippets share."""
    return create_database(postgres_uri, "coderemote_tests")


@pytest.fixture(scope="session")
def databases_to_drop(postgres_uri: str) -> Iterator[list[str]]:
    """Fresh databases, dropped once the session ends: an in-process server
    (``jp_serverapp``) stops only after a test's own fixtures are torn down, and
    must still find its database then."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from snippets.store import sqlalchemy_url

    names: list[str] = []
    yield names
    engine = create_engine(sqlalchemy_url(postgres_uri), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def fresh_database_url(postgres_uri: str, databases_to_drop: list[str]) -> str:
    """An empty database of its own for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    databases_to_drop.append(name)
    return create_database(postgres_uri, name)


@pytest.fixture
def jp_server_config(snippet_database_url: str) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"kernel_gateway_ext": True},
            "kernel_websocket_connection_class": "kernel_gateway_ext.websocket.NoDelayWebsocketConnection",
        },
        "MappingKernelManager": {"default_kernel_name": SANDBOXED_KERNEL},
        "CodeRemoteApp": {"build_runtime": False},
        # Most tests start sandboxes on demand; tests/test_pool.py runs with a warm pool.
        "KernelPool": {"size": 0},
        "SnippetStore": {"database_url": snippet_database_url},
        # The suite runs far more code per minute than one person; tests/test_rate_limits.py sets its own.
        "RateLimiter": {"executions_per_minute": 0, "websocket_executions_per_minute": 0},
    }


Execute = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def execute(jp_fetch: Any) -> Execute:
    """POST api/coderemote/execute and return the decoded result (status must be 200)."""

    async def run(code: str, **fields: Any) -> dict[str, Any]:
        # tornado's client gives up after 20 s by default: less than an execution may
        # take (timeout_s up to 30 s) plus a sandbox start on a busy machine.
        timeout = float(fields.get("timeout_s") or 10) + 60
        response = await jp_fetch(
            "api", "coderemote", "execute", method="POST", body=json.dumps({"code": code, **fields}),
            request_timeout=timeout,
        )
        assert response.code == 200
        return json.loads(response.body)

    return run


def running_sandboxes(owner_pid: int | None = None) -> list[str]:
    """Ids of sandboxes runsc knows about under the provisioner's state dir;
    with ``owner_pid``, only those started by that process (other test runs
    or servers on the machine may have their own)."""
    state = Path(GVisorProvisioner().state_dir)
    out = subprocess.run(
        ["runsc", f"--root={state}/runsc", "list", "--quiet"], capture_output=True, text=True, check=False
    ).stdout
    ids = [line for line in out.split() if line.startswith(CONTAINER_PREFIX)]
    if owner_pid is None:
        return ids
    # A zygote being checkpointed (for a configuration a test used) is not one of the process's kernels.
    return [c for c in ids if _owner(state / "kernels" / c) == (owner_pid, "kernel")]


def _owner(kernel_dir: Path) -> tuple[int, str] | None:
    try:
        owner = json.loads((kernel_dir / "owner.json").read_text())
        return int(owner["pid"]), owner.get("role", "kernel")
    except (OSError, ValueError, KeyError):
        return None
