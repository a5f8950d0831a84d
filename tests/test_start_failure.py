"""A sandbox that dies while starting is a 503 with the kernel's last words,
not a hang or a 500; nothing of it is left behind and the server keeps serving."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import running_sandboxes


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    # The launcher parses this setting before the kernel starts.
    return {**jp_server_config, "GVisorProvisioner": {"extra_env": {"CODEREMOTE_OUTPUT_LIMIT": "lots"}}}


async def test_kernel_dying_at_start_is_a_503(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body=json.dumps({"code": "print(1)"}))
    assert e.value.code == 503
    assert e.value.response.headers["Retry-After"]
    message = json.loads(e.value.response.body)["message"]
    assert "did not become ready" in message and "invalid literal for int()" in message
    assert running_sandboxes(owner_pid=os.getpid()) == []
    health = await jp_fetch("api", "coderemote", "health")
    assert health.code == 200
