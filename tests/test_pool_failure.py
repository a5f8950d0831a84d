"""runsc failing to start sandboxes: callers get a clear 503, the pool keeps
trying with backoff, health says why, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **jp_server_config,
        "GVisorProvisioner": {"runsc_path": "runsc-not-installed"},
        "KernelPool": {"size": 1, "max_backoff": 1.0},
    }


async def test_runsc_failing(jp_fetch: Any, jp_serverapp: Any) -> None:
    pool = jp_serverapp.web_app.settings["coderemote_execution"].pool
    await asyncio.sleep(2.5)  # several refill attempts, with growing pauses between them

    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body=json.dumps({"code": "print(1)"}))
    assert e.value.code == 503
    assert "apt-get install -y runsc" in json.loads(e.value.response.body)["message"]

    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "health")
    health = json.loads(e.value.response.body)
    assert e.value.code == 503 and health["status"] == "unavailable"
    assert "apt-get install -y runsc" in health["pool"]["last_error"]
    # Nothing half-started is kept (a refill attempt may be under way at this instant).
    assert (pool.idle, pool.held, pool.kernel_manager.list_kernel_ids()) == (0, 0, [])
