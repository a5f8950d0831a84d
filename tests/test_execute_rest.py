"""POST api/coderemote/execute and GET api/coderemote/health against a real
Jupyter Server with real gVisor sandboxes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from provisioner import GVisorProvisioner
from tests.conftest import Execute, running_sandboxes
from tests.servers import session_kernel


async def test_health(jp_fetch: Any) -> None:
    response = await jp_fetch("api", "coderemote", "health")
    health = json.loads(response.body)
    assert health["status"] == "ok", health
    assert health["runsc"]


async def test_print_runs_in_gvisor_as_non_root(execute: Execute) -> None:
    result = await execute("import os, platform\nprint(os.getuid(), platform.uname().release)\nprint('done')")
    assert result["status"] == "ok", result
    uid, release = result["stdout"].splitlines()[0].split()
    assert uid != "0"
    assert release == "4.4.0"  # the version gVisor's sentry reports
    assert result["stdout"].endswith("done\n")
    assert result["error"] is None
    assert result["duration_ms"] > 0
    assert len(result["execution_id"]) == 32
    assert result["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": result["stdout"]}


async def test_usage_is_read_from_the_sandbox_cgroup(execute: Execute) -> None:
    """CPU time and peak memory of the run itself: a busy loop costs CPU, 150 MB held shows in the peak."""
    idle = await execute("x = 1")
    busy = await execute(
        "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end:\n    pass\n"
        "block = bytearray(150 * 1024 * 1024)\nblock[::4096] = b'x' * len(block[::4096])\n"
    )
    assert busy["status"] == "ok", busy
    for result in (idle, busy):
        assert set(result["usage"]) == {"cpu_ms", "peak_memory_bytes", "wall_ms"}
        assert result["usage"]["wall_ms"] == result["duration_ms"]
    assert busy["usage"]["cpu_ms"] >= 300 > idle["usage"]["cpu_ms"] >= 0
    assert busy["usage"]["peak_memory_bytes"] >= 150 * 1024 * 1024 > idle["usage"]["peak_memory_bytes"] > 0


async def test_stderr_and_execute_result(execute: Execute) -> None:
    result = await execute("import sys\nprint('to err', file=sys.stderr)\n6 * 7")
    assert result["status"] == "ok"
    assert result["stderr"] == "to err\n"
    [value] = [o for o in result["outputs"] if o["output_type"] == "execute_result"]
    assert value["data"]["text/plain"] == "42"


async def test_error_reports_exception(execute: Execute) -> None:
    result = await execute("def f():\n    return 1 / 0\nf()")
    assert result["status"] == "error"
    assert result["error"]["ename"] == "ZeroDivisionError"
    assert "division by zero" in result["error"]["evalue"]
    assert any("1 / 0" in line for line in result["error"]["traceback"])
    assert "\x1b[" not in "".join(result["error"]["traceback"])  # plain text, no ANSI colours


async def test_stdin_feeds_input_and_eof_after(execute: Execute) -> None:
    code = "a = input('first? ')\nb = input()\nprint(a.upper(), b)\ninput()"
    result = await execute(code, stdin="alice\nbob\n")
    assert "ALICE bob" in result["stdout"]
    assert result["status"] == "error"
    assert result["error"]["ename"] == "EOFError"


async def test_matplotlib_show_gives_png(execute: Execute) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()"
    result = await execute(code, timeout_s=30)
    assert result["status"] == "ok", result
    [image] = [o for o in result["outputs"] if o["output_type"] == "display_data"]
    png = base64.b64decode(image["data"]["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


async def test_numpy_and_pandas(execute: Execute) -> None:
    code = "import numpy as np, pandas as pd\nprint(int(np.arange(10).sum()), pd.DataFrame({'a': [1, 2]}).a.sum())"
    result = await execute(code, timeout_s=30)
    assert result["status"] == "ok", result
    assert result["stdout"] == "45 3\n"


async def test_blocked_import_is_explained(execute: Execute) -> None:
    result = await execute("import subprocess")
    assert result["status"] == "error"
    assert result["error"]["evalue"] == "import of 'subprocess' is not allowed in this sandbox"


async def test_session_keeps_state_and_fresh_requests_do_not(execute: Execute) -> None:
    first = await execute("x = 41", session_id="s1")
    second = await execute("print(x + 1)", session_id="s1")
    assert (first["status"], second["stdout"]) == ("ok", "42\n")
    other = await execute("print(x)")
    assert other["status"] == "error" and other["error"]["ename"] == "NameError"


async def test_timeout_interrupts(execute: Execute) -> None:
    result = await execute("import time\nprint('start', flush=True)\ntime.sleep(60)", timeout_s=1.5)
    assert result["status"] == "timeout"
    assert result["stdout"] == "start\n"
    assert result["duration_ms"] < 15_000


async def test_timeout_of_session_kernel_keeps_server_answering(execute: Execute) -> None:
    await execute("y = 5", session_id="t")
    slow = await execute("while True:\n    pass", session_id="t", timeout_s=1)
    assert slow["status"] == "timeout"
    after = await execute("print(y)", session_id="t")
    # An interrupted kernel keeps its state; one that had to be killed is replaced.
    assert after["status"] in ("ok", "error")
    assert after["stdout"] == "5\n" or after["error"]["ename"] == "NameError"


async def test_memory_limit(execute: Execute) -> None:
    fits = await execute("block = bytearray(300 << 20)\nprint(len(block) >> 20)", timeout_s=30)
    assert (fits["status"], fits["stdout"]) == ("ok", "300\n")
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))"
    result = await execute(code, timeout_s=30)
    assert result["status"] == "memory_limit", result


async def test_output_limit_cuts_endless_output(execute: Execute) -> None:
    result = await execute("while True:\n    print('x' * 1000)", timeout_s=20)
    assert result["status"] == "output_limit"
    assert "[output truncated" in result["stdout"]
    assert len(result["stdout"]) < 1_100_000


async def test_sandbox_killed_from_outside_is_reported(execute: Execute, jp_serverapp: Any) -> None:
    await execute("pass", session_id="victim")
    kernel = session_kernel(jp_serverapp, "local", "victim")
    running = asyncio.ensure_future(
        execute("import time\nprint('working', flush=True)\ntime.sleep(25)", session_id="victim", timeout_s=30)
    )
    await asyncio.sleep(2)
    state = GVisorProvisioner().state_dir
    kill = await asyncio.create_subprocess_exec(
        "runsc", f"--root={state}/runsc", "kill", kernel.provisioner.container_id, "KILL"
    )
    assert await kill.wait() == 0
    result = await running
    assert (result["status"], result["stdout"]) == ("killed", "working\n")
    assert result["duration_ms"] < 20_000
    # The session starts afresh in a new sandbox.
    again = await execute("print('back')", session_id="victim")
    assert (again["status"], again["stdout"]) == ("ok", "back\n")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"{}", 400, "'code' is required"),
        (b'{"code": 5}', 400, "'code' is required"),
        (b'{"code": "1", "timeout_s": 0}', 400, "timeout_s"),
        (b'{"code": "1", "timeout_s": 31}', 400, "timeout_s"),
        (b'{"code": "1", "timeout_s": "5"}', 400, "timeout_s"),
        (b'{"code": "1", "timeout_s": true}', 400, "timeout_s"),
        (b'{"code": "1", "stdin": 3}', 400, "stdin"),
        (b'{"code": "1", "session_id": "../x"}', 400, "session_id"),
        (b'{"code": "1", "language": "r"}', 400, "unknown field"),
        (json.dumps({"code": "x" * (64 * 1024 + 1)}).encode(), 413, "larger than 65536"),
    ],
)
async def test_bad_input(jp_fetch: Any, body: bytes, status: int, fragment: str) -> None:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body=body)
    assert e.value.code == status
    error = json.loads(e.value.response.body)
    assert fragment in error["message"]


async def test_no_sandbox_left_after_requests(execute: Execute, jp_serverapp: Any) -> None:
    await execute("print(1)")
    await execute("x = 1", session_id="left")
    await jp_serverapp.web_app.settings["coderemote_execution"].shutdown()
    assert running_sandboxes(owner_pid=os.getpid()) == []
