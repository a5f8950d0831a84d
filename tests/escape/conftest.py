"""Fixtures of the escape battery.

Every module runs twice: first on kernels restored from the zygote image, then
on kernels started plainly (``sandbox_path``, module-scoped, so pytest groups a
module's tests by it). The server itself is made per test either way
(``jp_server_config`` and pytest-jupyter's ``jp_serverapp`` are function-scoped);
what a module adds is one wait for the zygote image, which takes one kernel
start once the image exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_zygote import zygote_ready


@pytest.fixture(scope="module", params=["restored", "started"])
def sandbox_path(request: pytest.FixtureRequest) -> str:
    """The battery runs twice: on kernels restored from the zygote image, and on kernels started plainly."""
    if request.param == "restored":
        asyncio.run(zygote_ready())
    return str(request.param)


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], sandbox_path: str) -> dict[str, Any]:
    return {**jp_server_config, "GVisorProvisioner": {"restore_from_zygote": sandbox_path == "restored"}}


@pytest.fixture
def sessions(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[list[str]]:
    """Session ids a test uses; their kernels are shut down when the test ends."""
    ids: list[str] = []
    yield ids
    service = jp_serverapp.web_app.settings["coderemote_execution"]
    for session_id in ids:
        jp_asyncio_loop.run_until_complete(service.end_session("local", session_id))
