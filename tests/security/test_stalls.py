"""Code written to stall the analysis never stalls the server (issue 17).

Each hostile program goes to the real in-process server's
``POST api/coderemote/analyze`` (static analysis only: no sandbox, no LLM)
while a second client polls ``GET api/coderemote/health``. The analysis must
answer a 2xx with a sane complexity or a 4xx with a message, within its
deadline, never 500; and health must keep answering in well under half a
second the whole time. Before the fix, ``n ** 1000000`` held the event loop
for about 19 s (health waited as long) and a literal exponent of 10**12 held
it for good.

The server and both clients share one event loop here, so any stall of the
loop shows in the health latencies. So would a full garbage collection of
the test process's heap (every earlier test's objects and captured logs: half
a second after a hundred tests), which is not the server's: each test starts
with that heap collected and frozen out of the collector's reach.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from analysis_ext import service as analysis_service
from analysis_ext.worker import shared_pool

DEADLINE = 5.0  # AnalysisService.static_timeout on these servers (twice the slowest legit attack here)
HEALTH_LIMIT = 0.5  # seconds a health answer may take while an attack runs
SLACK = 4.0  # on top of the deadline: the pool's first start, a killed worker's replacement

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return {**jp_server_config, "AnalysisService": {"static_timeout": DEADLINE}}


@pytest.fixture(autouse=True)
def _test_heap_frozen() -> Iterator[None]:
    """The objects of the tests before this one are not collected again while it times the loop."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def _nested_ifs(total: int = 60_000, depth: int = 90) -> str:
    """``if`` blocks nested 90 deep (Python's limit is 100), repeated up to about ``total`` bytes."""
    block = "".join("    " * (d + 1) + f"if x > {d}:\n" for d in range(depth)) + "    " * (depth + 1) + "x += 1\n"
    return "def f(x):\n" + block * (total // len(block))


def _nested_loops(depth: int = 95) -> str:
    lines = ["def f(xs):"] + ["    " * (d + 1) + f"for a{d} in xs:" for d in range(depth)]
    return "\n".join([*lines, "    " * (depth + 1) + "pass"]) + "\n"


def _comprehension(generators: int = 400) -> str:
    return "def f(xs):\n    return [1 " + " ".join(f"for a{i} in xs" for i in range(generators)) + "]\n"


def _worklists(loops: int = 2000) -> str:
    return "def f(xs):\n    q = list(xs)\n" + "    while q:\n        q.pop()\n" * loops


def _parameters(count: int = 1500) -> str:
    params = ", ".join(f"p{i}" for i in range(count))
    return f"def f({params}):\n" + "".join(f"    t = p{i} + 1\n" for i in range(count))


def _squared_sums(times: int = 60) -> str:
    # (n + m) squared sixty times: 2^60 terms if multiplied out
    loop = "    for i in range(s):\n        pass\n"
    return "def f(a, b):\n    s = len(a) + len(b)\n" + "    s = s * s + s\n" * times + loop


def _products(times: int = 2000) -> str:
    """Products of 17-term sums, 2000 times: about 12 s of honest work for the static analysis."""
    return "def f(a, b):\n    s = len(a) + len(b)\n" + "    s = s * s\n" * 4 + "    x = s * s\n" * times


def _loop(code: str) -> str:
    return f"def f(n):\n    x = {code}\n    for i in range(x):\n        pass\n"


# (id, code, expected status, expected time complexity or words of the message)
ATTACKS: list[tuple[str, str, int, str]] = [
    ("power-1e6", "def f(n):\n    return n ** 1000000\n", 200, "O(1)"),
    ("power-1e6-loop", _loop("n ** 1000000"), 200, "O(n^1000000)"),
    ("power-1e12-literal", _loop("n ** 1000000000000"), 200, "O(n^1000000000)"),
    ("power-10**12", _loop("n ** 10**12"), 200, "O(1)"),
    ("power-4000-digits", _loop("(n ** " + "9" * 4000 + ") ** " + "9" * 4000), 200, "O(n^1000000000)"),
    ("int-literal-4300-digits", "def f(n):\n    return " + "9" * 4300 + "\n", 200, "O(1)"),
    ("int-literal-5000-digits", "x = " + "9" * 5000 + "\n", 400, "does not parse"),
    (
        "combinations-1e9",
        "from itertools import combinations\ndef f(n):\n    for c in combinations(range(n), 1000000000):\n"
        "        pass\n",
        200,
        "O(n^1000000000)",
    ),
    (
        "combinations-10**9",
        "from itertools import combinations\ndef f(xs):\n    for c in combinations(xs, 10**9):\n        pass\n",
        200,
        "O(n^2)",
    ),
    (
        "product-repeat-1e9",
        "from itertools import product\ndef f(xs):\n    for c in product(xs, repeat=1000000000):\n        pass\n",
        200,
        "O(n^1000000000)",
    ),
    (
        "product-repeat-10**9",
        "import itertools\ndef f(xs):\n    return [p for p in itertools.product(xs, repeat=10**9)]\n",
        200,
        "O(n^2)",
    ),
    ("parentheses-5000", "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", 400, "does not parse"),
    ("unary-minus-60k", "x = " + "-" * 60_000 + "1\n", 422, "nested too deeply"),
    ("additions-5000", "x = 1" + " + 1" * 5000 + "\n", 422, "nested too deeply"),
    ("additions-1000", "x = 1" + " + 1" * 1000 + "\n", 422, "more than 200 levels"),
    ("calls-3000", "x = " + "f(" * 3000 + ")" * 3000 + "\n", 4, ""),
    ("list-of-30000", "x = [" + "1," * 30_000 + "]\n", 413, "too large to analyze"),
    ("nested-ifs-53KB", _nested_ifs(), 200, "O(1)"),
    ("nested-loops-95", _nested_loops(), 200, "O(n^95)"),
    ("comprehension-400", _comprehension(), 200, "O(n^400)"),
    ("worklists-2000", _worklists(), 200, "O(n)"),
    ("parameters-1500", _parameters(), 200, "O(1)"),
    ("squared-sums-60", _squared_sums(), 200, "O(n^1000000000)"),  # n^k*m^k, the sizes taken as one
    ("over-the-deadline", _products(), 422, f"took longer than {DEADLINE:g} s"),
    ("too-many-bytes", "x = 1\n" * 12_000, 413, "larger than"),
]


POLL_PAUSE = 0.02


async def _poll_health(jp_fetch: Any, done: asyncio.Event, latencies: list[float]) -> None:
    """Health, again and again until ``done``; each latency counts from the previous answer (minus the pause),
    so that a stall of the event loop shows whether it caught a request in flight or the poller asleep."""
    previous, pause = time.perf_counter(), 0.0
    while not done.is_set():
        response = await jp_fetch("api", "coderemote", "health", raise_error=False, request_timeout=120)
        now = time.perf_counter()
        latencies.append(now - previous - pause)
        assert response.code in (200, 503)  # 503: no runsc here; still an answer
        previous, pause = now, POLL_PAUSE
        await asyncio.sleep(POLL_PAUSE)


async def _under_attack(jp_fetch: Any, *parts: str, body: dict[str, Any]) -> tuple[int, Any, float, list[float]]:
    """(status, JSON body, seconds, health latencies) of one request made while health is polled."""
    done = asyncio.Event()
    latencies: list[float] = []
    poller = asyncio.create_task(_poll_health(jp_fetch, done, latencies))
    await asyncio.sleep(0.05)  # health is being polled when the attack arrives
    started = time.perf_counter()
    try:
        response = await jp_fetch(*parts, method="POST", body=json.dumps(body), raise_error=False, request_timeout=120)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
    await poller
    return response.code, json.loads(response.body or b"null"), elapsed, latencies


async def _warm(jp_fetch: Any) -> None:
    """The pool's first start (once per test process) is not what the attacks are timed on."""
    response = await jp_fetch(
        "api", "coderemote", "analyze", method="POST", body=json.dumps({"code": "x = 1", "methods": ["static"]})
    )
    assert response.code == 200


@pytest.mark.parametrize("code,status,expected", [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
async def test_hostile_code_does_not_stall_the_server(jp_fetch: Any, code: str, status: int, expected: str) -> None:
    await _warm(jp_fetch)
    code_, report, elapsed, latencies = await _under_attack(
        jp_fetch, "api", "coderemote", "analyze", body={"code": code, "methods": ["static"]}
    )
    assert latencies and max(latencies) < HEALTH_LIMIT, f"health took {max(latencies):.2f} s during the analysis"
    assert elapsed < DEADLINE + SLACK, f"the analysis answered after {elapsed:.1f} s"
    assert code_ != 500 and isinstance(report, dict), (code_, report)
    if status == 200:
        assert code_ == 200, report
        assert report["time_complexity"] == expected, report["explanation"]
        assert report["methods_used"] == ["static"]
    elif status == 4:  # any 4xx with a message (the parser's own limit decides which)
        assert 400 <= code_ < 500 and report["message"], report
    else:
        assert code_ == status, report
        assert expected in report["message"], report["message"]


async def test_the_server_keeps_answering_after_a_killed_analysis(jp_fetch: Any) -> None:
    """The worker that overran is killed and replaced: the next analyses answer at once."""
    await _warm(jp_fetch)
    forkserver = _forkserver()
    before = {p.pid for p in forkserver.children()}
    status, report, _, _ = await _under_attack(
        jp_fetch, "api", "coderemote", "analyze", body={"code": _products(), "methods": ["static"]}
    )
    assert status == 422, report
    for _ in range(3):
        started = time.perf_counter()
        response = await jp_fetch(
            "api", "coderemote", "analyze", method="POST",
            body=json.dumps({"code": "def f(xs):\n    return sorted(xs)\n", "methods": ["static"]}),
        )  # fmt: skip
        assert response.code == 200 and json.loads(response.body)["time_complexity"] == "O(n log n)"
        assert time.perf_counter() - started < 2.0
    after = {p.pid for p in forkserver.children()}
    assert before - after, "the worker that overran its deadline is still there"
    assert len(after) == shared_pool().workers


async def test_concurrent_attacks_leave_health_fast(jp_fetch: Any) -> None:
    """More attacks than workers at once: they queue in the pool, the event loop stays free."""
    await _warm(jp_fetch)
    done = asyncio.Event()
    latencies: list[float] = []
    poller = asyncio.create_task(_poll_health(jp_fetch, done, latencies))
    attacks = [_loop("n ** 1000000"), _worklists(), _parameters(), _nested_ifs(), _products(), _squared_sums()]
    try:
        responses = await asyncio.gather(*(
            jp_fetch("api", "coderemote", "analyze", method="POST", raise_error=False, request_timeout=120,
                     body=json.dumps({"code": code, "methods": ["static"]}))
            for code in attacks
        ))  # fmt: skip
    finally:
        done.set()
    await poller
    assert [r.code for r in responses] == [200, 200, 200, 200, 422, 200]
    assert max(latencies) < HEALTH_LIMIT, f"health took {max(latencies):.2f} s"


async def test_snippet_saving_does_not_stall_the_server(jp_fetch: Any) -> None:
    """Saving a snippet detects its patterns (in the analysis worker for large code)."""
    hostile = [
        _worklists(),
        _nested_ifs(),
        "x = " + "-" * 60_000 + "1\n",
        _loop("n ** 1000000"),
        "def walk(graph, node, seen):\n    for nxt in graph[node]:\n        if nxt not in seen:\n"
        "            seen.add(nxt)\n            walk(graph, nxt, seen)\n" + "# padding\n" * 600,
    ]
    for i, code in enumerate(hostile):
        status, snippet, elapsed, latencies = await _under_attack(
            jp_fetch, "api", "coderemote", "snippets", body={"name": f"hostile {i}", "code": code}
        )
        assert status == 201, snippet
        assert max(latencies) < HEALTH_LIMIT, f"health took {max(latencies):.2f} s while snippet {i} was saved"
        assert elapsed < analysis_service.PATTERN_DEADLINE_S + SLACK
    assert {"recursion", "graph", "dfs"} <= set(snippet["patterns"])  # the last one, detected in the worker


def test_pattern_detection_past_its_deadline_saves_no_patterns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    code = _worklists() + "def g(xs):\n    return sorted(xs)\n"
    assert "sorting" in analysis_service.code_patterns(code)
    monkeypatch.setattr(analysis_service, "PATTERN_DEADLINE_S", 0.001)
    with caplog.at_level(logging.WARNING, logger="analysis_ext.service"):
        assert analysis_service.code_patterns(code) == []
    assert "took longer than" in caplog.text


async def test_analysis_workers_hold_no_server_socket(jp_fetch: Any, http_server_port: Any) -> None:
    """Workers come from a fork server started afresh: they do not hold the server's listening socket."""
    await _warm(jp_fetch)
    _, port = http_server_port
    forkserver = _forkserver()
    for process in [forkserver, *forkserver.children()]:
        listening = [c for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert not listening, (process.pid, listening)
        assert all(c.laddr.port != port for c in process.net_connections(kind="inet"))


def _forkserver() -> psutil.Process:
    from multiprocessing import forkserver

    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert pid, "the analysis pool has not started"
    return psutil.Process(pid)
