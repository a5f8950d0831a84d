"""The standard kernel websocket with Nagle's algorithm off, and a reason
when a sandbox dies.

Stock Jupyter Server leaves TCP_NODELAY unset on the kernel websocket, so a
small output frame waits for the client's delayed ACK (about 40 ms). Setting
it on connect brings the first output of ``print(1)`` down to the kernel's
own latency.

When a sandbox dies the server's restarter sends a ``restarting`` status;
ours also says why (``coderemote.reason``: ``memory_limit`` or ``killed``),
read from the dead sandbox's provisioner before the restart replaces it.

Each ``execute_request`` counts against its user's websocket rate limit
(``RateLimiter.websocket_executions_per_minute``). One over the limit never
reaches the kernel: the client gets an ``execute_reply`` with status
``error`` and ``ename: RateLimited``, and on iopub the matching ``error``
and ``status: idle``, all answering the request (its header is their
parent), so Jupyter clients show the error under the cell. Messages after a
request being checked wait for it, so the kernel sees them in order. Each
cell's ``execute_reply`` goes to the execution history.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from kernel_gateway_ext.execution import death_status, run_usage
from kernel_gateway_ext.history import History
from kernel_gateway_ext.ownership import owner_of
from kernel_gateway_ext.ratelimit import WEBSOCKET_KIND, RateLimited

# Cells whose reply has not come yet, kept per connection for the history at most.
MAX_PENDING_CELLS = 256
V1 = "v1.kernel.websocket.jupyter.org"


class _Cell:
    """What the history needs of a cell sent to the kernel, until its execute_reply:
    the code's size and SHA-256, and the code itself only when the history keeps code."""

    __slots__ = ("started", "fingerprint", "code", "cpu_ns")

    def __init__(self, code: str, keep_code: bool, cpu_ns: int | None = None) -> None:
        self.started = time.monotonic()
        self.cpu_ns = cpu_ns  # the sandbox's CPU time when the cell was sent (queued cells count their wait)
        self.fingerprint = History.fingerprint(code)
        self.code = code if keep_code else None


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """ZMQChannelsWebsocketConnection that sends every frame at once."""

    def connect(self) -> asyncio.Future[Any] | None:  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()

    # -- rate limit and history ------------------------------------------------------

    @property
    def _owner(self) -> str:
        owner = getattr(self, "_owner_name", None)
        if owner is None:
            owner = self._owner_name = owner_of(self.websocket_handler)
        return owner

    def _setting(self, name: str) -> Any:
        return self.websocket_handler.settings.get(name)

    def _cells(self) -> OrderedDict[str, _Cell]:
        cells: OrderedDict[str, _Cell] | None = getattr(self, "_pending_cells", None)
        if cells is None:
            cells = OrderedDict()
            self._pending_cells = cells
        return cells

    def _execute_request(self, incoming_msg: Any) -> tuple[dict[str, Any], str] | None:
        """(header, code) when the message is a shell ``execute_request``, else None."""
        try:
            if self.subprotocol == V1:
                if not isinstance(incoming_msg, bytes):
                    return None
                channel, parts = deserialize_msg_from_ws_v1(incoming_msg)
                if channel != "shell" or len(parts) < 4:
                    return None
                header = self.session.unpack(parts[0])
                if header.get("msg_type") != "execute_request":
                    return None
                content = self.session.unpack(parts[3])
            else:
                if not isinstance(incoming_msg, str) or '"execute_request"' not in incoming_msg:
                    return None
                msg = json.loads(incoming_msg)
                header = msg.get("header") or {}
                if msg.get("channel", "shell") != "shell" or header.get("msg_type") != "execute_request":
                    return None
                content = msg.get("content") or {}
        except Exception:  # not ours to judge: the standard path logs and drops what it cannot read
            return None
        if not isinstance(header, dict) or not isinstance(content, dict):
            return None
        code = content.get("code")
        return header, code if isinstance(code, str) else ""

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        request = self._execute_request(incoming_msg) if self.channels else None
        previous: asyncio.Future[Any] | None = getattr(self, "_checking", None)
        if request is None and (previous is None or previous.done()):
            self._forward(incoming_msg, None)
            return
        # Checked one after another, so the kernel gets the messages in the order they came.
        self._checking = asyncio.ensure_future(self._check_then_forward(previous, incoming_msg, request))

    async def _check_then_forward(
        self, previous: asyncio.Future[Any] | None, incoming_msg: Any, request: tuple[dict[str, Any], str] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if request is not None:
            limiter = self._setting("coderemote_rate_limiter")
            try:
                if limiter is not None:
                    await limiter.hit(self._owner, WEBSOCKET_KIND)
            except RateLimited as e:
                self._refuse(request[0], e)
                return
        self._forward(incoming_msg, request)

    def _forward(self, incoming_msg: Any, request: tuple[dict[str, Any], str] | None) -> None:
        if not self.channels:  # closed meanwhile
            return
        history = self._setting("coderemote_history")
        if request is not None and history is not None and history.available:
            header, code = request
            cells = self._cells()
            cells[str(header.get("msg_id", ""))] = _Cell(code, history.keep_code, self._usage()[0])
            while len(cells) > MAX_PENDING_CELLS:
                cells.popitem(last=False)
        super().handle_incoming_message(incoming_msg)

    def _refuse(self, request_header: dict[str, Any], error: RateLimited) -> None:
        """Answer a refused execute_request as a cell that failed with RateLimited."""
        self.log.info("execute_request of %s on kernel %s refused: %s", self._owner, self.kernel_id, error)
        evalue = f"Too many cells: {error.limit} per window. Retry in {error.retry_after} s."
        traceback = [f"RateLimited: {evalue}"]
        metadata = {"coderemote": {"reason": "rate_limited", "retry_after": error.retry_after}}
        reply: dict[str, Any] = {"status": "error", "execution_count": None, "ename": "RateLimited"}
        reply.update(evalue=evalue, traceback=traceback)
        self._send_to_client("iopub", self.session.msg("status", {"execution_state": "busy"}, parent=request_header))
        self._send_to_client(
            "iopub",
            self.session.msg(
                "error", {"ename": "RateLimited", "evalue": evalue, "traceback": traceback}, parent=request_header
            ),
        )
        self._send_to_client(
            "shell", self.session.msg("execute_reply", reply, parent=request_header, metadata=metadata)
        )
        self._send_to_client("iopub", self.session.msg("status", {"execution_state": "idle"}, parent=request_header))

    def _send_to_client(self, channel: str, msg: dict[str, Any]) -> None:
        if self.subprotocol == V1:
            self.write_message(serialize_msg_to_ws_v1(msg, channel, self.session.pack), binary=True)
        else:
            msg["channel"] = channel
            self.write_message(json.dumps(msg, default=json_default))

    def handle_outgoing_message(self, stream: str, outgoing_msg: list[Any]) -> None:
        cells = getattr(self, "_pending_cells", None)
        if cells and (stream == "shell" or getattr(stream, "channel", None) == "shell"):
            self._record_reply(cells, outgoing_msg)
        super().handle_outgoing_message(stream, outgoing_msg)

    def _record_reply(self, cells: OrderedDict[str, _Cell], outgoing_msg: list[Any]) -> None:
        """Put a cell in the history when its execute_reply passes; never raises."""
        try:
            _, frames = self.session.feed_identities(outgoing_msg)
            # frames: signature, header, parent header, metadata, content, buffers...
            header = self.session.unpack(frames[1])
            if header.get("msg_type") != "execute_reply":
                return
            cell = cells.pop(str(self.session.unpack(frames[2]).get("msg_id", "")), None)
            history = self._setting("coderemote_history")
            if cell is None or history is None:
                return
            status = self.session.unpack(frames[4]).get("status", "ok")
            duration_ms = round((time.monotonic() - cell.started) * 1000, 3)
            history.record(
                user=self._owner,
                source="websocket",
                status=status if isinstance(status, str) else "error",
                duration_ms=duration_ms,
                code=cell.code,
                kernel_id=self.kernel_id,
                fingerprint=cell.fingerprint,
                usage=run_usage(cell.cpu_ns, self._usage(), duration_ms),
            )
        except Exception as e:
            self.log.warning("Could not record a cell of kernel %s in the history: %s", self.kernel_id, e)

    def _usage(self) -> tuple[int | None, int | None]:
        """(CPU ns, peak memory bytes) of the kernel's sandbox, when its provisioner can tell."""
        provisioner = getattr(self.kernel_manager, "provisioner", None)
        try:
            return provisioner.usage() if provisioner is not None and hasattr(provisioner, "usage") else (None, None)
        except Exception:
            return None, None

    def on_kernel_restarted(self) -> None:
        reason = death_status(getattr(self.kernel_manager, "provisioner", None))
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
