"""Sandbox limits and the import guard follow the server's configuration (traitlets)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Execute


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **jp_server_config,
        "GVisorProvisioner": {
            "blocked_modules": ["json", "subprocess"],
            "output_limit": 1000,
            "memory_limit": 256 * 1024 * 1024,
            "tmpfs_size": 8 * 1024 * 1024,
        },
        "ExecutionService": {"default_timeout": 2.0, "max_timeout": 5.0},
    }


# The configured default timeout is 2 s; checks of other limits ask for the
# configured maximum (5 s) so that a loaded machine does not turn them into timeouts.


async def test_configured_blocked_modules(execute: Execute) -> None:
    blocked = await execute("import json", timeout_s=5)
    assert blocked["error"]["evalue"] == "import of 'json' is not allowed in this sandbox"
    # socket is blocked by default only: this list replaced the default.
    allowed = await execute("import socket\nprint(socket.gethostname())", timeout_s=5)
    assert (allowed["status"], allowed["stdout"]) == ("ok", "sandbox\n")


async def test_configured_output_limit(execute: Execute) -> None:
    output = await execute("print('y' * 5000)", timeout_s=5)
    assert output["status"] == "output_limit"
    assert output["stdout"].startswith("y" * 1000) and "y" * 1001 not in output["stdout"]


async def test_configured_tmpfs_size(execute: Execute) -> None:
    disk = await execute("open('/tmp/big', 'wb').write(b'0' * (16 << 20))", timeout_s=5)
    assert disk["status"] == "error" and disk["error"]["ename"] == "OSError"


async def test_configured_memory_limit(execute: Execute) -> None:
    memory = await execute("block = bytearray(300 << 20)\nprint(len(block))", timeout_s=5)  # fits the default 512 MiB
    assert memory["status"] == "memory_limit"


async def test_configured_default_timeout(execute: Execute) -> None:
    slow = await execute("import time\ntime.sleep(10)")  # the configured default timeout is 2 s
    assert slow["status"] == "timeout" and slow["duration_ms"] < 9_000


async def test_configured_timeout_range(jp_fetch: Any) -> None:
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body='{"code": "1", "timeout_s": 6}')
    assert e.value.code == 400 and b"at most 5" in e.value.response.body
