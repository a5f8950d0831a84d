"""Empirical complexity: time the function in a sandbox at growing sizes, then fit.

The measuring script (``sandbox/measure.py``) runs inside a fresh gVisor
sandbox through the execution service, like any user code; nothing is ever
run on the host. Inputs are generated for the argument kind (a list of ints,
an int, a string, or two lists) in several shapes (random, ascending,
descending, all odd) and the slowest shape is kept, to get nearer the worst
case that the labels describe. Two-list functions are measured three ways
(both growing, only the first, only the second) to tell ``n*m`` from ``n+m``.
A whole program (``arg`` "program") is run as ``__main__`` on a stdin
generated from the input format read off its code (``analysis_ext.stdin``):
every count and length is n, other numbers random below n, one test case.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from analysis_ext.fitting import ORDER, Fit, fit

MEASURE_MARK = "CODEREMOTE-MEASURE "
DEFAULT_MAX_N = {"list": 4096, "str": 4096, "two_lists": 2048, "int": 1 << 24, "program": 4096}
FIXED_OTHER = 16  # the other list's length while one grows

# Runs code in a sandbox with a timeout, s, and returns its ExecutionResult (the app's runner).
Execute = Callable[[str, float], Awaitable[Any]]


class EmpiricalError(Exception):
    """The function could not be measured (it raised, timed out, or gave too few points)."""


@dataclass
class EmpiricalResult:
    time_complexity: str | None
    space_complexity: str | None
    time_confidence: float
    space_confidence: float
    points: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sizes(max_n: int) -> list[int]:
    """1..8 one by one (exponential and factorial functions stop early), then about x1.25 per step."""
    out = list(range(1, min(8, max_n) + 1))
    n = 8.0
    while True:
        n = n * 1.25 if n < 4096 else n * 2
        if int(n) > max_n:
            break
        if int(n) != out[-1]:
            out.append(int(n))
    return out


def plan(arg: str, max_n: int | None) -> dict[str, list[tuple[int, int]]]:
    limit = max_n or DEFAULT_MAX_N[arg]
    steps = sizes(limit)
    if arg != "two_lists":
        return {"n": [(n, 0) for n in steps]}
    return {
        "both": [(n, n) for n in steps],
        "n": [(n, FIXED_OTHER) for n in steps],
        "m": [(FIXED_OTHER, n) for n in steps],
    }


def script(
    code: str, entry: str | None, arg: str, max_n: int | None, budget_s: float, stdin_format: list[Any] | None = None
) -> str:
    """The measuring script for the sandbox; ``stdin_format`` (arg "program") lays out the generated input."""
    params = {
        "entry": entry,
        "arg": arg,
        "series": plan(arg, max_n),
        "budget_s": budget_s,
        "call_limit_s": min(1.0, budget_s / 4),
        "repeat_s": 0.01,
        "shapes": ["random", "ascending", "descending", "odd"] if arg not in ("int", "program") else ["random"],
        "format": stdin_format,
    }
    template = (files("analysis_ext") / "sandbox" / "measure.py").read_text()
    return template.replace("__PARAMS__", repr(json.dumps(params))).replace("__CODE__", repr(code))


def _combine(both: Fit | None, first: Fit | None, second: Fit | None) -> tuple[str | None, float]:
    """Two inputs: n*m when the joint series is quadratic and each alone is linear; n+m when all are linear."""
    if both is None:
        return None, 0.0
    grows_n = first is not None and first.label != "O(1)"
    grows_m = second is not None and second.label != "O(1)"
    confidence = min(f.confidence for f in (both, first, second) if f is not None)
    if grows_n and grows_m:
        if both.label == "O(n^2)" and first.label == "O(n)" and second.label == "O(n)":  # type: ignore[union-attr]
            return "O(n*m)", confidence
        if both.label == "O(n)":
            return "O(n+m)", confidence
        return both.label, confidence * 0.5
    if grows_n and not grows_m:
        return first.label, confidence  # type: ignore[union-attr]
    if grows_m and not grows_n:
        return second.label.replace("n", "m") if second else None, confidence  # type: ignore[union-attr]
    return both.label, confidence


def classify(series: dict[str, list[dict[str, float]]], arg: str) -> EmpiricalResult:
    def fits(points: list[dict[str, float]], key: str) -> Fit | None:
        axis = "m" if points and points[0]["n"] == FIXED_OTHER and points[-1]["m"] > FIXED_OTHER else "n"
        values = [p[key] for p in points]
        if key == "memory" and max(values, default=0) < 512:
            return Fit("O(1)", 0.8, 0.0, 1.0) if len(values) >= 4 else None
        return fit([p[axis] for p in points], values, floor=1e-9 if key == "time" else 64, asymptotic=key == "time")

    notes: list[str] = []
    if arg == "two_lists":
        time, time_conf = _combine(*(fits(series.get(k, []), "time") for k in ("both", "n", "m")))
        space, space_conf = _combine(*(fits(series.get(k, []), "memory") for k in ("both", "n", "m")))
        largest = max((p["n"] for p in series.get("both", [])), default=0)
    else:
        points = series.get("n", [])
        time_fit, memory_fit = fits(points, "time"), fits(points, "memory")
        depth_fit = fit([p["n"] for p in points], [max(p["depth"], 1) for p in points], floor=1)
        time, time_conf = (time_fit.label, time_fit.confidence) if time_fit else (None, 0.0)
        space, space_conf = (memory_fit.label, memory_fit.confidence) if memory_fit else (None, 0.0)
        if depth_fit and space and _order(depth_fit.label) > _order(space):
            notes.append(f"recursion depth grows as {depth_fit.label}")
            space, space_conf = depth_fit.label, depth_fit.confidence
        largest = max((p["n"] for p in points), default=0)
    if time is None:
        raise EmpiricalError("too few sizes could be measured within the time budget to fit a curve")
    notes.insert(0, f"timed at sizes up to {int(largest)}")
    return EmpiricalResult(time, space, time_conf, space_conf, series, notes)


def _order(label: str) -> int:
    return ORDER.index(label) if label in ORDER else -1


def parse(stdout: str) -> dict[str, list[dict[str, float]]]:
    for line in stdout.splitlines():
        if line.startswith(MEASURE_MARK):
            return json.loads(line[len(MEASURE_MARK) :])  # type: ignore[no-any-return]
    raise EmpiricalError("the measuring run printed no result")


Classifier = Callable[[str, str], Awaitable[EmpiricalResult]]


async def measure(
    execute: Execute,
    code: str,
    entry: str | None,
    arg: str,
    max_n: int | None = None,
    budget_s: float = 8.0,
    classifier: Classifier | None = None,
    stdin_format: list[Any] | None = None,
) -> EmpiricalResult:
    """Run the measurement in a sandbox through ``execute(code, timeout_s)`` and classify it.

    ``classifier(stdout, arg)`` parses and fits the output (the server's runs it in the
    analysis worker: the output is the user's code's, of any size); default in-line.
    A whole program is measured with ``arg`` "program" and its ``stdin_format``.
    """
    result = await execute(script(code, entry, arg, max_n, budget_s, stdin_format), budget_s + 7.0)
    if result.status != "ok":
        detail = f"{result.error['ename']}: {result.error['evalue']}" if result.error else result.status
        raise EmpiricalError(f"the timed run ended with {result.status} ({detail})")
    if classifier is not None:
        return await classifier(result.stdout, arg)
    return classify(parse(result.stdout), arg)
