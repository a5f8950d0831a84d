"""The standard kernel websocket with Nagle's algorithm off, and a reason
when a sandbox dies.

Stock Jupyter Server leaves TCP_NODELAY unset on the kernel websocket, so a
small output frame waits for the client's delayed ACK (about 40 ms). Setting
it on connect brings the first output of ``print(1)`` down to the kernel's
own latency.

When a sandbox dies the server's restarter sends a ``restarting`` status;
ours also says why (``coderemote.reason``: ``memory_limit`` or ``killed``),
read from the dead sandbox's provisioner before the restart replaces it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """ZMQChannelsWebsocketConnection that sends every frame at once."""

    def connect(self) -> asyncio.Future[Any] | None:  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()

    def on_kernel_restarted(self) -> None:
        provisioner = getattr(self.kernel_manager, "provisioner", None)
        reason = "memory_limit" if getattr(provisioner, "oom_killed", False) else "killed"
        self.log.warning("kernel %s died (%s) and is restarted", self.kernel_id, reason)
        self._send_status_message("restarting", {"coderemote": {"reason": reason}})

    def _send_status_message(self, status: str, extra: dict[str, Any] | None = None) -> None:
        if extra is None:
            super()._send_status_message(status)
            return
        iopub = self.channels.get("iopub", None)
        if iopub and not iopub.closed():
            iopub.flush()  # outputs of the dead kernel go out before its status
        msg = self.session.msg("status", {"execution_state": status, **extra})
        if self.subprotocol == "v1.kernel.websocket.jupyter.org":
            self.write_message(serialize_msg_to_ws_v1(msg, "iopub", self.session.pack), binary=True)
        else:
            msg["channel"] = "iopub"
            self.write_message(json.dumps(msg, default=json_default))
