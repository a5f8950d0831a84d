"""The canonical complexity forms, and the reduction of any growth expression to one of them.

Every answer the service gives is one of ``CANONICAL`` (or ``O(n^k)`` for a
polynomial above the cube). What the analyzer composes (``n log n + m``,
``log n + log m``, ``n*m log m``) is reduced to its dominant term with the
sizes taken as one ``n``, except the two forms the canonical list keeps for
two inputs, ``n*m`` and ``n+m``. A power of a log is reported as one log
(``n log^2 n`` -> ``O(n log n)``, the nearest class) and a log factor on a
cube or above is dropped; the exact expression is kept beside the label.

``parse_label`` reads a model's free-form answer (``O(V + E)``, ``O(nlogn)``,
``O(N^2 * log(N))``, ``Θ(2**n)``) into the same forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analysis_ext.cost import EXP, FACT, ONE, Cost

CANONICAL = (
    "O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)", "O(n^2 log n)", "O(n^3)", "O(2^n)", "O(n!)",
    "O(n*m)", "O(n+m)",
)  # fmt: skip
_HIGHER_POLYNOMIAL = re.compile(r"O\(n\^([4-9]|[1-9][0-9])\)")
MAX_LABEL = 120  # characters of a model's label that are read
_MAX_EXPONENT = 99


@dataclass(frozen=True)
class Reduced:
    """A canonical ``label`` and, when it is not exactly the expression, why."""

    label: str
    expression: str  # the growth as computed, e.g. "O(n*k log k)"
    note: str = ""  # "" when label == expression


def is_canonical(label: str) -> bool:
    return label in CANONICAL or bool(_HIGHER_POLYNOMIAL.fullmatch(label))


def reduce(cost: Cost, one_size: bool = False) -> Reduced:
    """The canonical form of ``cost``; ``one_size`` takes every size as n (whole programs)."""
    expression = cost.render()
    variables = cost.variables()
    if not one_size and variables == {"n", "m"} and expression in ("O(n*m)", "O(n+m)"):
        return Reduced(expression, expression)
    single = cost.rename({v: "n" for v in variables})
    term = single.dominant()
    growth = dict(term.growth).get("n")
    power = dict(term.powers).get("n", 0)
    logs = dict(term.logs).get("n", 0)
    if growth == FACT:
        label = "O(n!)"
    elif growth == EXP:
        label = "O(2^n)"
    elif power <= 0:
        label = "O(log n)" if logs > 0 else "O(1)"
    elif power <= 2:
        base = "n" if power == 1 else "n^2"
        label = f"O({base} log n)" if logs > 0 else f"O({base})"
    else:
        label = f"O(n^{power})"
    if label == expression:
        return Reduced(label, expression)
    reasons = []
    if len(variables) > 1:
        reasons.append(f"the sizes {', '.join(sorted(variables))} taken as one n")
    if logs > 1 and power <= 2:
        reasons.append("a power of a log reported as one log (the nearest class)")
    elif logs and power > 2:
        reasons.append("the log factor dropped (the nearest class)")
    if len(single.terms) > 1 or len(cost.terms) > 1:
        reasons.append("the dominant term kept")
    return Reduced(label, expression, f"{expression} reported as {label}: {'; '.join(reasons) or 'reduced'}")


# -- free-form labels ---------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(log|lg|ln)|([A-Za-z]\w*)|(\*\*|[-+*/^!()·×]))")
_WRAPPERS = re.compile(r"^(?:O|Θ|Theta|θ|Ω|Omega|o)\s*\((.*)\)$", re.S)


class _Parser:
    """expr := term ('+' term)* ; term := factor (['*'] factor)* ; factor := atom ('^' int | '!')*."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip():
                    raise ValueError(f"unexpected {text[position : position + 10]!r}")
                break
            kinds = ("num", "log", "var", "op")
            kind = next(k for k, group in zip(kinds, match.groups(), strict=True) if group is not None)
            self.tokens.append((kind, match.group(match.lastindex or 0)))
            position = match.end()
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise ValueError(f"expected {value!r}")

    def parse(self) -> Cost:
        cost = self.expr()
        if self.peek()[0] != "end":
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return cost

    def expr(self) -> Cost:
        cost = self.term()
        while self.peek()[1] in ("+", "-"):
            self.take()
            cost = cost + self.term()  # n - m is bounded by n + m
        return cost

    def term(self) -> Cost:
        cost, _ = self.factor()
        while True:
            kind, value = self.peek()
            if value in ("*", "·", "×"):
                self.take()
            elif value == "/":
                self.take()
                divisor, _ = self.factor()
                cost = cost / divisor if not divisor.is_constant() else cost
                continue
            elif kind not in ("num", "log", "var") and value != "(":
                return cost
            right, _ = self.factor()
            cost = cost * right
        return cost

    def factor(self) -> tuple[Cost, float | None]:
        cost, number = self.atom()
        while self.peek()[1] in ("^", "**", "!"):
            if self.take()[1] == "!":
                cost, number = cost.factorial(), None
                continue
            exponent, exponent_number = self.atom()
            if number is not None and number > 1 and not exponent.is_constant():
                cost, number = exponent.exp(), None  # 2^n, 3^n, 1.6^n: exponential
            elif exponent_number is not None and exponent_number == int(exponent_number) and exponent.is_constant():
                cost, number = cost.power(min(int(exponent_number), _MAX_EXPONENT)), None
            else:
                raise ValueError("unsupported exponent")
        return cost, number

    def atom(self) -> tuple[Cost, float | None]:
        kind, value = self.take()
        if kind == "num":
            return ONE, float(value)
        if kind == "var":
            if value.lower() == "sqrt":
                raise ValueError("square roots have no canonical form")
            return Cost.var({"n": "n", "N": "n", "m": "m", "M": "m"}.get(value, value)), None
        if kind == "log":
            if self.peek()[1] in ("^", "**"):
                self.take()
                power = self.take()
                if power[0] != "num":
                    raise ValueError("log power must be a number")
                inner, _ = self.atom()
                return inner.log().power(min(int(float(power[1])), _MAX_EXPONENT)), None
            inner, _ = self.atom()
            return inner.log(), None
        if value == "(":
            cost = self.expr()
            self.expect(")")
            return cost, None
        raise ValueError(f"unexpected {value or 'end'!r}")


def parse_label(text: str, one_size: bool = False) -> Reduced:
    """A model's complexity text as a canonical form; ValueError when it cannot be read."""
    stripped = text.strip().replace("²", "^2").replace("³", "^3")
    if len(stripped) > MAX_LABEL:
        raise ValueError("the label is too long")
    wrapped = _WRAPPERS.match(stripped)
    if wrapped is None:
        raise ValueError("not of the form O(...)")
    inner = re.sub(r"(?i)\bn\s*log\s*n\b", "n log n", wrapped.group(1).replace("nlogn", "n log n"))
    cost = _Parser(inner).parse()
    return reduce(cost, one_size)
