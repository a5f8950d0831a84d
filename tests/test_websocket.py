"""Output streams through the standard Jupyter kernel websocket while the cell
runs, from a sandboxed kernel, on the server's own websocket connection class."""

from __future__ import annotations

import json
import time
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session


def execute_request(session: Session, code: str) -> tuple[str, str]:
    msg = session.msg(
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    msg["channel"] = "shell"
    return msg["header"]["msg_id"], json.dumps(msg, default=json_default)


async def test_stream_arrives_before_the_cell_ends(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}))
    kernel = json.loads(response.body)
    assert kernel["name"] == "python3-sandboxed"
    ws = await jp_ws_fetch("api", "kernels", kernel["id"], "channels")
    try:
        code = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.5)"
        msg_id, frame = execute_request(Session(), code)
        sent = time.monotonic()
        await ws.write_message(frame)
        arrivals: list[tuple[float, str]] = []
        while True:
            msg = json.loads(await ws.read_message())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                arrivals.append((time.monotonic() - sent, msg["content"]["text"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                ended = time.monotonic() - sent
                break
        assert "".join(text for _, text in arrivals) == "0\n1\n2\n3\n"
        # The first line is on the wire long before the last sleep ends.
        assert arrivals[0][0] < ended - 1.0
    finally:
        ws.close()
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
