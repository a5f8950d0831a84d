"""Fit measured costs to the canonical complexity classes.

Each class ``f`` is fitted as ``cost = a + b * f(n)`` with ``b >= 0`` by least
squares on *relative* residuals (costs span orders of magnitude, and a 10 %
miss at the smallest size matters as much as at the largest). The simplest
class whose error is within a tolerance of the best one wins, so that noise
does not promote ``O(n)`` to ``O(n log n)``. Confidence grows with how much
worse the nearest other class fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CLASSES: list[tuple[str, Callable[[float], float]]] = [
    ("O(1)", lambda n: 1.0),
    ("O(log n)", lambda n: math.log2(n + 1)),
    ("O(n)", lambda n: n),
    ("O(n log n)", lambda n: n * math.log2(n + 1)),
    ("O(n^2)", lambda n: n**2),
    ("O(n^3)", lambda n: n**3),
    ("O(2^n)", lambda n: 2.0**n),
    ("O(n!)", lambda n: math.gamma(n + 1)),
]
ORDER = [name for name, _ in CLASSES]
TOLERANCE = 1.35  # a simpler class wins unless the better fit is this much better
NOISE_FLOOR = 0.03  # relative error that timing noise alone produces


@dataclass(frozen=True)
class Fit:
    label: str
    confidence: float
    errors: dict[str, float]


def _relative_error(ns: np.ndarray, ys: np.ndarray, f: Callable[[float], float]) -> float:
    fx = np.array([f(float(n)) for n in ns], dtype=float)
    if not np.all(np.isfinite(fx)):
        return math.inf
    weights = 1.0 / ys
    design = np.column_stack([weights, fx * weights])
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(ys), rcond=None)
    if b < 0:  # growth cannot be negative: the best such fit is a constant
        a, b = float(np.sum(weights) / np.sum(weights**2)), 0.0
    predicted = a + b * fx
    return float(np.sqrt(np.mean(((predicted - ys) / ys) ** 2)))


def fit(sizes: Sequence[float], costs: Sequence[float], floor: float = 1e-9) -> Fit | None:
    """The class that best explains ``costs`` measured at ``sizes``; None with too few points."""
    points = sorted((float(n), max(float(c), floor)) for n, c in zip(sizes, costs, strict=True) if n > 0)
    if len(points) < 4 or points[-1][0] / points[0][0] < 4:
        return None
    ns = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    errors: dict[str, float] = {}
    for name, f in CLASSES:
        if name == "O(2^n)" and ns[-1] > 200:
            continue
        if name == "O(n!)" and ns[-1] > 60:
            continue
        errors[name] = _relative_error(ns, ys, f)
    best = min(errors.values())
    threshold = max(best * TOLERANCE, best + NOISE_FLOOR)
    label = next(name for name in ORDER if name in errors and errors[name] <= threshold)
    others = [e for name, e in errors.items() if name != label and ORDER.index(name) > ORDER.index(label)]
    nearest = min(others, default=math.inf)
    separation = 1.0 if math.isinf(nearest) else min(1.0, (nearest - errors[label]) / max(nearest, 1e-9))
    confidence = round(max(0.05, min(0.95, 0.5 * separation + 0.5 * (1 - min(1.0, errors[label] * 4)))), 2)
    return Fit(label, confidence, errors)
