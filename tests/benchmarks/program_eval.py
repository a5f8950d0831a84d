#!/usr/bin/env python
"""Accuracy of the static analysis on whole programs (stdin in, answer out), and its speed.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/program_eval.py              # the development set
    python tests/benchmarks/program_eval.py --holdout    # the part held aside, scored at the end
    python tests/benchmarks/program_eval.py --misses     # list what it got wrong

Sets (written for this project, competitive-programming style, each with a
one-line reason): ``tests/data/programs_dev.jsonl`` (98 programs, 14 per
class) and ``tests/data/programs_holdout.jsonl`` (42, 6 per class). The seven
classes are O(1), O(log n), O(n), O(n log n), O(n^2), O(n^3) and exponential
(O(2^n) or O(n!)). Labels follow the conventions in README.md ("Whole
programs"): every size read from input is n, one test case is costed.

Accuracy is by class (an answer of O(2^n) for an O(n!) label counts as the
exponential class; both are also reported exactly), with the confusion matrix.
Target: >= 0.60 (GPT-4 zero-shot scores about 0.54 on such programs).

Speed: the static analysis of a generated 200-line program (target p50 <= 50 ms)
against the time to merely parse it (the baseline, same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import ast  # noqa: E402

from analysis_ext.static import analyze_static  # noqa: E402

DATA = ROOT / "tests" / "data"
CLASSES = ["O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)", "O(n^3)", "exp"]


def klass(label: str) -> str:
    return "exp" if label in ("O(2^n)", "O(n!)") else label


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(cases: list[dict], show_misses: bool) -> float:
    matrix = {c: dict.fromkeys([*CLASSES, "other"], 0) for c in CLASSES}
    exact = right = 0
    for case in cases:
        try:
            answer = analyze_static(case["code"]).time_complexity
        except Exception as e:  # a program the analyzer cannot read counts as wrong
            answer = f"error: {type(e).__name__}"
        expected, got = klass(case["time"]), klass(answer)
        matrix[expected][got if got in CLASSES else "other"] += 1
        exact += answer == case["time"]
        right += expected == got
        if show_misses and expected != got:
            print(f"  miss {case['id']}: expected {case['time']}, answered {answer}  ({case['reason']})")
    total = len(cases)
    print(f"accuracy by class {right}/{total} = {right / total:.3f}   exact label {exact}/{total} = "
          f"{exact / total:.3f}")  # fmt: skip
    width = max(len(c) for c in CLASSES) + 1
    print("confusion (rows: label, columns: answer)")
    print(" " * width + "".join(f"{c:>{width}}" for c in [*CLASSES, "other"]))
    for label in CLASSES:
        print(f"{label:<{width}}" + "".join(f"{matrix[label][c]:>{width}}" for c in [*CLASSES, "other"]))
    return right / total


def two_hundred_line_program() -> str:
    """A contest-style program of 200 lines: input reading, helpers, loops, a DP, a BFS, sorting."""
    lines = [
        "import sys",
        "from collections import deque",
        "import heapq",
        "input = sys.stdin.readline",
        "n, m = map(int, input().split())",
        "a = list(map(int, input().split()))",
        "adj = [[] for _ in range(n)]",
        "for _ in range(m):",
        "    u, v = map(int, input().split())",
        "    adj[u - 1].append(v - 1)",
        "    adj[v - 1].append(u - 1)",
    ]
    i = 0
    while True:
        block = [
            f"def step{i}(values):",
            f"    best{i} = 0",
            f"    prefix{i} = [0] * (len(values) + 1)",
            f"    for j{i}, x{i} in enumerate(values):",
            f"        prefix{i}[j{i} + 1] = prefix{i}[j{i}] + x{i}",
            f"    lo{i}, hi{i} = 0, len(values)",
            f"    while lo{i} < hi{i}:",
            f"        mid{i} = (lo{i} + hi{i}) // 2",
            f"        if prefix{i}[mid{i}] < {i + 1}:",
            f"            lo{i} = mid{i} + 1",
            "        else:",
            f"            hi{i} = mid{i}",
            f"    seen{i} = [False] * n",
            f"    queue{i} = deque([0])",
            f"    seen{i}[0] = True",
            f"    while queue{i}:",
            f"        node{i} = queue{i}.popleft()",
            f"        for nxt{i} in adj[node{i}]:",
            f"            if not seen{i}[nxt{i}]:",
            f"                seen{i}[nxt{i}] = True",
            f"                queue{i}.append(nxt{i})",
            f"    return max(best{i}, lo{i}) + sum(sorted(values)[:{i + 1}])",
            f"print(step{i}(a))",
        ]
        if len(lines) + len(block) > 199:
            break
        lines += block
        i += 1
    while len(lines) < 199:
        lines.append(f"print(a[{len(lines) % 7}] if a else 0)")
    lines.append("print(sum(a))")
    return "\n".join(lines) + "\n"


def speed() -> None:
    code = two_hundred_line_program()
    assert len(code.splitlines()) == 200
    analyze_static(code)  # warm-up (imports, caches)
    runs, parses = [], []
    for _ in range(30):
        started = time.perf_counter()
        ast.parse(code)
        parses.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        result = analyze_static(code)
        runs.append((time.perf_counter() - started) * 1000)
    p50, parse50 = statistics.median(runs), statistics.median(parses)
    print(
        f"200-line program: static analysis p50 {p50:.1f} ms (max {max(runs):.1f}), parse alone p50 {parse50:.2f} ms, "
        f"ratio {p50 / parse50:.0f}x; answer {result.time_complexity}; target p50 <= 50 ms: "
        f"{'met' if p50 <= 50 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", action="store_true", help="score the held-aside set instead")
    parser.add_argument("--misses", action="store_true", help="list each wrong answer")
    args = parser.parse_args()
    path = DATA / ("programs_holdout.jsonl" if args.holdout else "programs_dev.jsonl")
    cases = load(path)
    print(f"{path.relative_to(ROOT)}: {len(cases)} programs")
    score(cases, args.misses)
    speed()


if __name__ == "__main__":
    main()
