"""Fit measured costs to the canonical complexity classes.

Small sizes are dominated by fixed overheads (the call itself, allocator
warm-up), so only the part of the curve that has grown well above its floor is
used. On that part:

- exponential and factorial growth show as ``log(cost)`` rising linearly in
  ``n`` (or in ``log n!``); the base is fitted, so Fibonacci's 1.618^n is
  recognised as exponential, not as a steep polynomial;
- otherwise the slope of ``log(cost)`` against ``log(n)`` is the polynomial
  degree (n log n shows as a slope a little above 1, log n as a small one).

Confidence grows with how straight the fitted line is and how far its slope
sits from the border between two classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ORDER = ["O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)", "O(n^3)", "O(2^n)", "O(n!)"]
# Slope of log(cost) against log(n) -> class; borders sit between the ideal slopes
# (log n over sizes 10..2000 has a slope of about 0.2, n log n about 1.15).
SLOPE_BORDERS = [(0.08, "O(1)"), (0.45, "O(log n)"), (1.08, "O(n)"), (1.5, "O(n log n)"), (2.5, "O(n^2)")]
GROWN = 3.0  # points whose cost is below this multiple of the smallest are overhead


@dataclass(frozen=True)
class Fit:
    label: str
    confidence: float
    slope: float  # log-log slope on the grown part (the exponential base's log for 2^n)
    r2: float


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and R^2 of the least-squares line through (x, y)."""
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(np.sum((y - y.mean()) ** 2)) or 1e-12
    return float(slope), max(0.0, 1.0 - float(np.sum(residual**2)) / total)


def _polynomial_class(slope: float) -> tuple[str, float]:
    for border, label in SLOPE_BORDERS:
        if slope < border:
            lower = max((b for b, _ in SLOPE_BORDERS if b < border), default=border - 0.5)
            margin = min(border - slope, slope - lower) / max(border - lower, 1e-9)
            return label, margin
    return "O(n^3)", min(1.0, max(0.0, (slope - 2.5) / 0.5))


def fit(sizes: Sequence[float], costs: Sequence[float], floor: float = 1e-9, asymptotic: bool = False) -> Fit | None:
    """The class that best explains ``costs`` measured at ``sizes``; None with too few points.

    ``asymptotic`` reads the slope on the upper half of the grown sizes (times, whose
    small sizes still carry the call's fixed overhead).
    """
    points = sorted((float(n), max(float(c), floor)) for n, c in zip(sizes, costs, strict=True) if n > 0)
    if len(points) < 4 or points[-1][0] / points[0][0] < 4:
        return None
    ns = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    base = float(np.min(ys[: max(3, len(ys) // 4)]))
    if ys[-1] < GROWN * base:
        # Barely grew over the whole range: constant, or logarithmic if it rose steadily.
        slope, r2 = _line(np.log(ns), np.log(ys))
        if ys[-1] >= 1.5 * base and slope > 0.08 and r2 > 0.6:
            return Fit("O(log n)", round(0.4 + 0.4 * r2, 2), slope, r2)
        return Fit("O(1)", round(0.9 - min(0.4, abs(slope)), 2), slope, r2)
    start = max(0, int(np.argmax(ys >= GROWN * base)) - 1)
    grown_ns, grown_ys = ns[start:], ys[start:]
    if len(grown_ns) < 3:
        grown_ns, grown_ys = ns[-3:], ys[-3:]
    # The growth is what the largest sizes show: where the grown part spans a wide range, the slope is
    # read on its upper half (in log n), past the sizes where the call's fixed overhead still shows.
    upper = grown_ns >= math.sqrt(grown_ns[0] * grown_ns[-1])
    if asymptotic and grown_ns[-1] / grown_ns[0] >= 16 and int(upper.sum()) >= 4:
        grown_ns, grown_ys = grown_ns[upper], grown_ys[upper]
    log_y = np.log(grown_ys)
    poly_slope, poly_r2 = _line(np.log(grown_ns), log_y)
    if grown_ns[-1] <= 64:
        exp_slope, exp_r2 = _line(grown_ns, log_y)
        fact_slope, fact_r2 = _line(np.array([math.lgamma(n + 1) for n in grown_ns]), log_y)
        if fact_r2 > max(exp_r2, poly_r2) and fact_slope > 0.7 and grown_ns[-1] <= 20:
            return Fit("O(n!)", round(0.5 + 0.45 * fact_r2 * min(1.0, fact_slope), 2), fact_slope, fact_r2)
        if exp_r2 >= poly_r2 - 0.01 and math.exp(exp_slope) > 1.25:
            return Fit("O(2^n)", round(0.5 + 0.45 * exp_r2, 2), exp_slope, exp_r2)
    label, margin = _polynomial_class(poly_slope)
    confidence = round(max(0.05, min(0.95, 0.3 + 0.4 * margin + 0.3 * poly_r2)), 2)
    return Fit(label, confidence, poly_slope, poly_r2)
