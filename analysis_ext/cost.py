"""Growth expressions: sums of terms such as ``n^2 log n``, ``n*m`` or ``2^n``.

The static analyzer computes with these. A ``Cost`` is a sum of ``Term``s in
which every term that another dominates has been dropped, so the sum is its
own big-O. Variables are the input sizes (``n``, ``m``) or *symbols* standing
for a loop variable (``@width``), which let ``n / width`` iterations of a loop
doing ``width`` work cancel to ``n`` before the symbol is replaced by its bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

POLY, EXP, FACT = 0, 1, 2
# Exponents are kept within +-POWER_CAP (a literal ``n ** 10**12`` in user code must
# not make a number that takes long to multiply or cannot be printed), and a power
# of a sum is expanded term by term only up to EXPAND_POWER; above it the sum's
# terms are raised one by one, which is the same big-O: (a+b)^k <= 2^k (a^k + b^k).
POWER_CAP = 10**9
EXPAND_POWER = 8
# A sum keeps at most MAX_TERMS terms, a product multiplies out at most MAX_PRODUCT
# pairs: past either the terms collapse into their least upper bound (each
# variable's largest growth, power and log), still a worst case, so that no code
# (``s = s * s + s`` sixty times on ``n + m``) can make the arithmetic explode.
MAX_TERMS = 32
MAX_PRODUCT = 1024


@dataclass(frozen=True, order=True)
class Term:
    """``prod(var^power) * prod(log(var)^k)``, times ``2^var`` or ``var!`` for each var in ``growth``."""

    powers: tuple[tuple[str, int], ...] = ()
    logs: tuple[tuple[str, int], ...] = ()
    growth: tuple[tuple[str, int], ...] = ()

    def key(self, var: str) -> tuple[int, int, int]:
        return dict(self.growth).get(var, POLY), dict(self.powers).get(var, 0), dict(self.logs).get(var, 0)

    def variables(self) -> set[str]:
        return {v for v, _ in self.powers} | {v for v, _ in self.logs} | {v for v, _ in self.growth}

    def __mul__(self, other: Term) -> Term:
        return _term(_merge(self.powers, other.powers), _merge(self.logs, other.logs), _max(self.growth, other.growth))

    def dominated_by(self, other: Term) -> bool:
        return all(self.key(v) <= other.key(v) for v in self.variables() | other.variables())


def _merge(a: Iterable[tuple[str, int]], b: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = dict(a)
    for var, k in b:
        out[var] = out.get(var, 0) + k
    return out


def _max(a: Iterable[tuple[str, int]], b: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = dict(a)
    for var, k in b:
        out[var] = max(out.get(var, POLY), k)
    return out


def _cap(k: int) -> int:
    return max(-POWER_CAP, min(POWER_CAP, k))


def _term(powers: Mapping[str, int], logs: Mapping[str, int], growth: Mapping[str, int] | None = None) -> Term:
    # Canonical labels absorb polynomial factors into 2^n and n! (n * n! <= (n+1)!).
    growth = growth or {}
    logs = {v: _cap(k) for v, k in logs.items() if k and growth.get(v, POLY) == POLY}
    return Term(
        tuple(sorted((v, _cap(k)) for v, k in powers.items() if k and growth.get(v, POLY) == POLY)),
        tuple(sorted(logs.items())),
        tuple(sorted((v, k) for v, k in growth.items() if k != POLY)),
    )


@dataclass(frozen=True)
class Cost:
    """A sum of terms, kept free of dominated terms."""

    terms: frozenset[Term] = field(default_factory=lambda: frozenset({Term()}))

    @staticmethod
    def of(terms: Iterable[Term]) -> Cost:
        kept: list[Term] = []
        candidates = sorted(set(terms), key=_weight, reverse=True)
        for term in candidates:
            if not any(term.dominated_by(k) for k in kept):
                kept.append(term)
                if len(kept) > MAX_TERMS:
                    return Cost(frozenset([_bound(candidates)]))
        return Cost(frozenset(kept or [Term()]))

    @staticmethod
    def var(name: str, power: int = 1) -> Cost:
        return Cost.of([_term({name: power}, {})])

    def __add__(self, other: Cost) -> Cost:
        return Cost.of(self.terms | other.terms)

    def __mul__(self, other: Cost) -> Cost:
        if len(self.terms) * len(other.terms) > MAX_PRODUCT:
            return Cost.of([_bound(self.terms) * _bound(other.terms)])
        return Cost.of(a * b for a in self.terms for b in other.terms)

    def power(self, k: int) -> Cost:
        """This cost to the ``k``-th power (k a literal of the user's code: closed form, no loop of k steps)."""
        if k <= 0:
            return ONE
        if k <= EXPAND_POWER:
            out = ONE
            for _ in range(k):
                out = out * self
            return out
        return Cost.of(
            _term({v: p * k for v, p in t.powers}, {v: q * k for v, q in t.logs}, dict(t.growth)) for t in self.terms
        )

    def __truediv__(self, other: Cost) -> Cost:
        """Divide by a single-term cost (a loop step such as ``width``)."""
        divisor = _dominant(other)
        inverse = Term(tuple((v, -k) for v, k in divisor.powers), tuple((v, -k) for v, k in divisor.logs), ())
        return Cost.of(t * inverse for t in self.terms)

    def log(self) -> Cost:
        """log of this growth: log(n^k) ~ log n, log(2^n) ~ n, log(constant) ~ 1."""
        out: list[Term] = []
        for term in self.terms:
            if term.growth:
                out.extend(_term({v: 1}, {}) for v, _ in term.growth)
            out.extend(_term({}, {v: 1}) for v, k in term.powers if k > 0)
        return Cost.of(out)

    def exp(self) -> Cost:
        """2^x for each variable x grows in."""
        return Cost.of(_term({}, {}, {v: EXP}) for v in self.variables()) if not self.is_constant() else Cost()

    def factorial(self) -> Cost:
        return Cost.of(_term({}, {}, {v: FACT}) for v in self.variables()) if not self.is_constant() else Cost()

    def variables(self) -> set[str]:
        return {v for t in self.terms for v in t.variables()}

    def rename(self, names: Mapping[str, str]) -> Cost:
        """The same growth with variables renamed; two that become one multiply (``n*m`` -> ``n^2``)."""

        def moved(items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
            return [(names.get(v, v), k) for v, k in items]

        return Cost.of(
            _term(_merge((), moved(t.powers)), _merge((), moved(t.logs)), _max((), moved(t.growth))) for t in self.terms
        )

    def dominant(self) -> Term:
        """The largest term (by growth, then total power, then total log power)."""
        return _dominant(self)

    def is_constant(self) -> bool:
        return not any(k > 0 for t in self.terms for _, k in t.powers) and not any(
            t.growth or t.logs for t in self.terms
        )

    def degree(self, var: str) -> int:
        return max(dict(t.powers).get(var, 0) for t in self.terms)

    def substitute(self, bounds: Mapping[str, Cost]) -> Cost:
        """Replace symbols by their bounds; a symbol left in a denominator is worst case 1."""
        out = ONE
        for term in self.terms:
            base = Cost.of(
                [_term({v: k for v, k in term.powers if v not in bounds}, dict(term.logs), dict(term.growth))]
            )
            for var, power in term.powers:
                if var in bounds and power > 0:
                    base = base * bounds[var].power(power)
            for var, _ in term.logs:
                if var in bounds:
                    base = base * bounds[var].log()
            out = out + base
        return Cost.of(_clamped(t) for t in out.terms)

    def render(self) -> str:
        """Big-O text in the canonical forms (``O(n log n)``, ``O(n*m)``, ``O(n+m)``, ``O(2^n)``...)."""
        terms = sorted(self.terms, key=lambda t: (_weight(t), [-_var_order(p)[0] for p in t.powers]), reverse=True)
        return "O(" + "+".join(_render_term(t) for t in terms) + ")"

    def __str__(self) -> str:
        return self.render()


def _bound(terms: Iterable[Term]) -> Term:
    """One term at least as large as each of ``terms``: per variable, the largest growth, power and log."""
    growth: dict[str, int] = {}
    powers: dict[str, int] = {}
    logs: dict[str, int] = {}
    for term in terms:
        growth = _max(growth.items(), term.growth)
        powers = _max(powers.items(), term.powers)
        logs = _max(logs.items(), term.logs)
    return _term(powers, logs, growth)


def _clamped(term: Term) -> Term:
    """A variable left in a denominator is worst case a constant."""
    return _term({v: k for v, k in term.powers if k > 0}, {v: k for v, k in term.logs if k > 0}, dict(term.growth))


def _weight(term: Term) -> tuple[int, int, int]:
    growth = max((k for _, k in term.growth), default=POLY)
    return growth, sum(k for _, k in term.powers), sum(k for _, k in term.logs)


def _dominant(cost: Cost) -> Term:
    return max(cost.terms, key=_weight)


def _var_order(item: tuple[str, int]) -> tuple[int, str]:
    return {"n": 0, "m": 1}.get(item[0], 2), item[0]


def _render_term(term: Term) -> str:
    parts: list[str] = []
    for var, kind in sorted(term.growth, key=_var_order):
        parts.append(f"{var}!" if kind == FACT else f"2^{var}")
    for var, power in sorted(term.powers, key=_var_order):
        if power > 0:
            parts.append(var if power == 1 else f"{var}^{power}")
    text = "*".join(parts)
    logs = " ".join(f"log {v}" if k == 1 else f"log^{k} {v}" for v, k in term.logs if k > 0)
    if text and logs:
        return f"{text} {logs}"
    return text or logs or "1"


ONE = Cost()
