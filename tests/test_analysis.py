"""Complexity analysis: the static analyzer on its own, the timed runs in the real
gVisor sandbox, and POST api/coderemote/analyze end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from analysis_ext.fitting import fit
from analysis_ext.patterns import detect_patterns
from analysis_ext.static import analyze_static

STATIC_CASES = [
    # (code, time, space) — written for these tests, not taken from the evaluation sets
    ("def f(xs):\n    return max(xs) - min(xs)\n", "O(n)", "O(1)"),
    ("def f(xs):\n    s = 0\n    for i in range(len(xs)):\n        for j in range(i):\n            s += xs[i] * xs[j]\n"
     "    return s\n", "O(n^2)", "O(1)"),
    ("def f(n):\n    steps = 0\n    while n > 1:\n        n = n // 2\n        steps += 1\n    return steps\n",
     "O(log n)", "O(1)"),
    ("def f(xs):\n    return {x: i for i, x in enumerate(sorted(xs))}\n", "O(n log n)", "O(n)"),
    ("def f(n):\n    if n < 2:\n        return 1\n    return f(n - 1) + f(n - 2) + f(n - 3)\n", "O(2^n)", "O(n)"),
    ("import functools\n\n@functools.cache\ndef f(n):\n    if n < 2:\n        return 1\n"
     "    return f(n - 1) + f(n - 2)\n", "O(n)", "O(n)"),
    ("def f(a, b):\n    return [x for x in a if x in b]\n", "O(n*m)", "O(n)"),
    ("def f(a, b):\n    lookup = set(b)\n    return [x for x in a if x in lookup]\n", "O(n+m)", "O(n+m)"),
    ("def f(s):\n    out = ''\n    for ch in s:\n        out += ch.upper()\n    return out\n", "O(n^2)", "O(n)"),
    ("def f(xs):\n    q = list(xs)\n    while q:\n        q.pop(0)\n    return 0\n", "O(n^2)", "O(n)"),
]  # fmt: skip


@pytest.mark.parametrize("code,time,space", STATIC_CASES)
def test_static_analyzer(code: str, time: str, space: str) -> None:
    result = analyze_static(code)
    assert (result.time_complexity, result.space_complexity) == (time, space), result.notes


def test_static_analyzer_explains_and_suggests() -> None:
    code = "def dedupe(xs):\n    out = []\n    for x in xs:\n        if x not in out:\n            out.append(x)\n" \
           "    return out\n"  # fmt: skip
    result = analyze_static(code)
    assert result.time_complexity == "O(n^2)"
    assert any("`in` scans a list" in note for note in result.notes)
    assert any("set" in s for s in result.suggestions)


def test_patterns() -> None:
    code = textwrap.dedent(
        """
        from collections import deque
        import matplotlib.pyplot as plt

        def shortest(graph, start):
            dist = {start: 0}
            queue = deque([start])
            while queue:
                node = queue.popleft()
                for nxt in graph[node]:
                    if nxt not in dist:
                        dist[nxt] = dist[node] + 1
                        queue.append(nxt)
            plt.plot(list(dist.values()))
            return dist
        """
    )
    found = detect_patterns(code)
    assert {"bfs", "graph", "queue", "plotting", "hashing"} <= set(found)
    assert "recursion" not in found
    assert detect_patterns("def (:") == []


def test_fitting_prefers_the_simpler_class_within_noise() -> None:
    ns = [8 * 2**k for k in range(9)]
    linear = [1e-6 + 1e-8 * n * (1.03 if k % 2 else 0.97) for k, n in enumerate(ns)]
    quadratic = [1e-6 + 1e-9 * n * n * (1.03 if k % 2 else 0.97) for k, n in enumerate(ns)]
    assert fit(ns, linear).label == "O(n)"  # type: ignore[union-attr]
    assert fit(ns, quadratic).label == "O(n^2)"  # type: ignore[union-attr]
    assert fit(ns[:3], linear[:3]) is None  # too few points to say anything


async def _analyze(jp_fetch: Any, **body: Any) -> dict[str, Any]:
    response = await jp_fetch("api", "coderemote", "analyze", method="POST", body=json.dumps(body))
    assert response.code == 200
    return json.loads(response.body)


async def test_analyze_rest_static_and_timed(jp_fetch: Any) -> None:
    """The timed runs happen in a real sandbox and agree with the static bound."""
    code = "def pairs(values):\n    hits = 0\n    for a in values:\n        for b in values:\n            if a < b:\n" \
           "                hits += 1\n    return hits\n"  # fmt: skip
    report = await _analyze(jp_fetch, code=code, max_n=1500)  # large enough for the fit to see n^2 over noise
    assert report["time_complexity"] == "O(n^2)"
    assert report["space_complexity"] == "O(1)"
    assert report["methods_used"] == ["static", "empirical"]
    assert report["details"]["empirical"]["time_complexity"] == "O(n^2)"
    assert report["model_used"] is None
    assert set(report) >= {"explanation", "patterns", "suggestions", "confidence"}


async def test_analyze_failing_function_degrades_to_static(jp_fetch: Any) -> None:
    code = "def broken(values):\n    total = 0\n    for v in values:\n        total += v\n    raise ValueError('no')\n"
    report = await _analyze(jp_fetch, code=code, methods=["static", "empirical"])
    assert report["time_complexity"] == "O(n)"
    assert report["methods_used"] == ["static"]
    assert "ValueError" in report["explanation"]


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"code": "def f(:\n  pass"}, 400, "does not parse"),
        ({"code": "x = 1", "colour": "red"}, 400, "unknown fields"),
        ({"code": ""}, 400, "non-empty"),
        ({"code": "x = 1", "methods": ["magic"]}, 400, "methods"),
        ({"code": "x = 1", "methods": ["llm"]}, 400, "not available"),
        ({"code": "x = 1", "arg": "tree"}, 400, "arg"),
        ({"code": "def f(x):\n  return x\n", "entry": "g"}, 400, "no top-level function"),
        ({"code": "x = 1\n" * 20000}, 413, "larger than"),
        ({"code": "x = 1" + " + 1" * 5000}, 422, "nested too deeply"),
    ],
)
async def test_analyze_bad_input(jp_fetch: Any, body: dict[str, Any], status: int, words: str) -> None:
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("api", "coderemote", "analyze", method="POST", body=json.dumps(body))
    assert error.value.code == status
    assert words in json.loads(error.value.response.body)["message"]  # type: ignore[union-attr]


def test_cli_analyze_json(tmp_path: Any) -> None:
    source = tmp_path / "search.py"
    source.write_text(
        "def search(values, target=0):\n    lo, hi = 0, len(values)\n    while lo < hi:\n"
        "        mid = (lo + hi) // 2\n        if values[mid] < target:\n            lo = mid + 1\n"
        "        else:\n            hi = mid\n    return lo\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "kernel_gateway_ext.cli", "analyze", str(source), "--json", "--static-only"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert (report["time_complexity"], report["space_complexity"]) == ("O(log n)", "O(1)")
    assert "binary_search" in report["patterns"]
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    failed = subprocess.run([sys.executable, "-m", "kernel_gateway_ext.cli", "analyze", str(bad)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert failed.returncode == 1 and "does not parse" in failed.stderr
