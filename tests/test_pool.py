"""The warm pool, limits on running sandboxes, session culling and metrics,
on a real server with real gVisor sandboxes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import Execute
from tests.servers import session_kernel


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **jp_server_config,
        "KernelPool": {
            "size": 2,
            "max_kernels": 5,
            "max_kernels_per_user": 3,
            "queue_timeout": 2.0,
            "check_interval": 0.5,
        },
        "ExecutionService": {"session_idle_timeout": 8.0},
    }


def service(serverapp: Any) -> Any:
    return serverapp.web_app.settings["coderemote_execution"]


async def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def metrics(jp_fetch: Any) -> dict[str, float]:
    text = (await jp_fetch("api", "coderemote", "metrics")).body.decode()
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(coderemote_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


async def test_pool_hit_is_fast_and_refills(execute: Execute, jp_serverapp: Any, jp_fetch: Any) -> None:
    pool = service(jp_serverapp).pool
    await wait_for(lambda: pool.idle == 2)
    warm = {s.kernel_id for s in pool._idle}
    before = await metrics(jp_fetch)

    started = time.monotonic()
    result = await execute("print('warm')")
    elapsed = time.monotonic() - started
    assert (result["status"], result["stdout"]) == ("ok", "warm\n")
    assert elapsed < 1.0  # no sandbox start on this path (a cold start takes 1.5 s or more here)

    after = await metrics(jp_fetch)
    assert after["coderemote_pool_hits_total"] == before["coderemote_pool_hits_total"] + 1
    assert after["coderemote_pool_misses_total"] == before["coderemote_pool_misses_total"]
    assert (
        after['coderemote_executions_total{status="ok"}']
        == before.get('coderemote_executions_total{status="ok"}', 0) + 1
    )
    # The used kernel is destroyed, never handed out again; the pool fills up with new ones.
    await wait_for(lambda: pool.idle == 2 and pool.held == 0)
    assert len(warm - {s.kernel_id for s in pool._idle}) == 1


async def test_empty_pool_starts_on_demand(execute: Execute, jp_serverapp: Any, jp_fetch: Any) -> None:
    pool = service(jp_serverapp).pool
    await wait_for(lambda: pool.idle == 2)
    before = await metrics(jp_fetch)
    results = await asyncio.gather(*(execute(f"print({i})") for i in range(3)))
    assert sorted(r["stdout"] for r in results) == ["0\n", "1\n", "2\n"]
    after = await metrics(jp_fetch)
    assert after["coderemote_pool_hits_total"] - before["coderemote_pool_hits_total"] == 2
    assert after["coderemote_pool_misses_total"] - before["coderemote_pool_misses_total"] == 1
    assert after["coderemote_sandbox_start_seconds_count"] > before["coderemote_sandbox_start_seconds_count"]


async def test_idle_kernel_killed_from_outside_is_replaced(execute: Execute, jp_serverapp: Any) -> None:
    pool = service(jp_serverapp).pool
    await wait_for(lambda: pool.idle == 2)
    victim = pool._idle[0]
    provisioner = pool.kernel_manager.get_kernel(victim.kernel_id).provisioner
    kill = ["runsc", f"--root={provisioner.state_dir}/runsc", "kill", provisioner.container_id, "KILL"]
    await asyncio.to_thread(subprocess.run, kill, check=True)
    await wait_for(lambda: victim not in pool._idle and pool.idle == 2)
    result = await execute("print('still fine')")
    assert result["stdout"] == "still fine\n"


async def test_per_user_limit_queues_then_refuses(execute: Execute, jp_serverapp: Any, jp_fetch: Any) -> None:
    for i in range(3):  # the per-user limit: three sessions held
        assert (await execute("pass", session_id=f"held-{i}"))["status"] == "ok"
    started = time.monotonic()
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body=json.dumps({"code": "print(1)"}))
    assert e.value.code == 503
    assert time.monotonic() - started >= 2.0  # waited the queue timeout first
    assert int(e.value.response.headers["Retry-After"]) >= 1
    assert "you already hold 3 sandboxes" in json.loads(e.value.response.body)["message"]
    assert (await metrics(jp_fetch))['coderemote_rejected_requests_total{reason="per_user"}'] == 1

    # A queued request is served, not lost, when a sandbox comes free in time.
    queued = asyncio.ensure_future(execute("print('queued')"))
    await asyncio.sleep(0.5)
    await service(jp_serverapp).end_session("local", "held-0")
    result = await queued
    assert result["stdout"] == "queued\n"


async def test_idle_session_is_culled(execute: Execute, jp_serverapp: Any) -> None:
    await execute("kept = 1", session_id="idle")
    assert (await execute("print(kept)", session_id="idle"))["stdout"] == "1\n"
    await wait_for(lambda: session_kernel(jp_serverapp, "local", "idle") is None, timeout=20)
    again = await execute("print(kept)", session_id="idle")  # a new sandbox for the same session id
    assert again["error"]["ename"] == "NameError"


async def test_metrics_are_prometheus_text(jp_fetch: Any, execute: Execute) -> None:
    await execute("1/0")
    response = await jp_fetch("api", "coderemote", "metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    values = await metrics(jp_fetch)
    assert values['coderemote_executions_total{status="error"}'] >= 1
    assert values["coderemote_execution_duration_seconds_count"] >= 1
    for state in ("idle", "starting", "held", "session"):
        assert f'coderemote_kernels{{state="{state}"}}' in values
    assert "coderemote_pool_idle" in values
