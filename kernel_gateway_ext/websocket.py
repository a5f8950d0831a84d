"""The standard kernel websocket with Nagle's algorithm off.

Stock Jupyter Server leaves TCP_NODELAY unset on the kernel websocket, so a
small output frame waits for the client's delayed ACK (about 40 ms). Setting
it on connect brings the first output of ``print(1)`` down to the kernel's
own latency.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """ZMQChannelsWebsocketConnection that sends every frame at once."""

    def connect(self) -> asyncio.Future[Any] | None:  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()
