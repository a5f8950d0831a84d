"""Floods of every output kind, in the real sandbox: the sandbox's cap counts
them all, the server's own cap holds when code writes onto its kernel's
channels itself, and results stay bounded (``POST execute`` on the in-process
server, whose memory is this process's)."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from tests.conftest import Execute

MiB = 1 << 20
# The sandbox's cap (GVisorProvisioner.output_limit) is 1 MiB; a result holds
# stream text twice (stdout and outputs) plus JSON framing.
RESULT_BOUND = 3 * MiB


def size(result: dict) -> int:
    return len(json.dumps(result))


@pytest.mark.parametrize(
    "code",
    [
        "for i in range(40):\n    display({'text/plain': 'x' * 5_000_000}, raw=True)",
        "from IPython.display import HTML\nfor i in range(100):\n    display(HTML('<b>' + 'y' * 500_000 + '</b>'))",
        "h = display('a', display_id=True)\nfor i in range(10**6):\n    h.update('u' * 1000)",
        # Empty messages: each costs at least MESSAGE_COST (256 bytes), so 4,096 end the run.
        "from comm import create_comm\nc = create_comm(target_name='flood')\nfor i in range(10**7):\n    c.send({})",
    ],
    ids=["display_data", "html", "update_display_data", "comm_msg"],
)
async def test_display_floods_end_as_output_limit(execute: Execute, code: str) -> None:
    started = time.monotonic()
    result = await execute(code, timeout_s=20)
    assert result["status"] == "output_limit", result["status"]
    assert size(result) < RESULT_BOUND
    assert time.monotonic() - started < 20  # the cap stops the loop, not the timeout


async def test_a_huge_execute_result_is_cut(execute: Execute) -> None:
    result = await execute("'r' * 5_000_000", timeout_s=20)
    assert result["status"] == "output_limit"
    assert size(result) < RESULT_BOUND


async def test_what_came_before_the_cap_is_kept(execute: Execute) -> None:
    result = await execute("print('first')\ndisplay({'text/plain': 'z' * 3_000_000}, raw=True)\nprint('never')")
    assert result["status"] == "output_limit"
    assert result["stdout"].startswith("first\n") and "never" not in result["stdout"]
    assert "[output truncated" in result["stderr"]


async def test_a_huge_error_and_a_huge_prompt_stay_small(execute: Execute) -> None:
    result = await execute("raise ValueError('e' * 10_000_000)", timeout_s=20)
    assert result["status"] == "error" and result["error"]["ename"] == "ValueError"
    assert size(result) < 100_000
    result = await execute("name = input('p' * 10_000_000)\nprint('got', name)", stdin="me", timeout_s=20)
    assert result["status"] == "ok" and result["stdout"].endswith("got me\n")
    assert size(result) < 100_000


async def test_forged_messages_on_the_kernels_own_channel_are_cut_by_the_server(execute: Execute) -> None:
    """The code signs stream messages with its kernel's own session and sends
    them straight to iopub, past the sandbox's cap: the server stops reading at
    its own cap, ends the run as output_limit, and its memory stays bounded."""
    flood = (
        "k = get_ipython().kernel\n"
        "from jupyter_client.session import Session\n"
        "parent = k.get_parent('shell')\n"
        "for i in range(100_000):\n"
        "    Session.send(k.session, k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'f' * 100_000}, parent)\n"
    )
    before = psutil.Process().memory_info().rss
    started = time.monotonic()
    result = await execute(flood, timeout_s=30)
    assert result["status"] == "output_limit"
    assert size(result) < 20 * MiB  # ServerApp-side cap: ExecutionService.max_output_bytes (8 MiB)
    assert time.monotonic() - started < 30
    assert psutil.Process().memory_info().rss - before < 300 * MiB
    # The server keeps serving, with a fresh sandbox.
    again = await execute("print('still here')")
    assert (again["status"], again["stdout"]) == ("ok", "still here\n")
