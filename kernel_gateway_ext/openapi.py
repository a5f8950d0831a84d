"""``GET api/coderemote/openapi.json``: the OpenAPI 3.1 description of the REST API.

The description is ``openapi.json`` beside this module, written by hand and
checked by ``tests/test_openapi.py`` (valid OpenAPI 3.1, every route of the
extension described, and fuzzed against a running service). It is served as it
is but for ``servers``, which names the server's own ``base_url``.

The route needs no login, like ``health``: it describes the API, never data,
and tools (API clients, fuzzers, documentation viewers) fetch it before they
have credentials.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated

from kernel_gateway_ext.base import CodeRemoteAPIHandler

DESCRIPTION = Path(__file__).with_name("openapi.json")


@functools.cache
def load_description() -> dict[str, Any]:
    """The description as the file holds it (read once per process; callers must not change it)."""
    description: dict[str, Any] = json.loads(DESCRIPTION.read_text(encoding="utf-8"))
    return description


def description_for(base_url: str) -> dict[str, Any]:
    """The description with ``servers`` naming ``base_url`` (a path such as ``/`` or ``/prefix/``)."""
    description = copy.deepcopy(load_description())
    description["servers"] = [{"url": base_url, "description": "This server (its base URL)."}]
    return description


class OpenAPIHandler(CodeRemoteAPIHandler):
    """The OpenAPI description of this server's REST API (anonymous callers too)."""

    @allow_unauthenticated
    async def get(self) -> None:
        """The OpenAPI 3.1 description, with this server's base URL."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(description_for(self.base_url)))


default_handlers = [(r"/api/coderemote/openapi\.json", OpenAPIHandler)]
