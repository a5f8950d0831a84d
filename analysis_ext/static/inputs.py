"""Input is the size: what a whole program reads from stdin, as the walker sees it.

A line read (``input()``, ``sys.stdin.readline()``, a name bound to either) is
a string of length n; the whole input (``sys.stdin.read()``, ``open(0).read()``)
too; ``.split()`` of either is n tokens (charged: reading them is the work);
``int()``/``float()`` of anything read is a number of magnitude n; ``map(int,
...)`` of tokens yields such numbers, so ``n, k = map(int, input().split())``
makes both sizes and ``list(map(int, input().split()))`` a list of n of them.
Reading costs where the values are used (a list built of them, a loop over
them), not where a line is read, stripped or split: ``int(input().strip())``
and a line unpacked into a fixed number of names (``a, b, c =
sorted(map(int, input().split()))``, its line is that long) stay constant
work. Every size is
called n: a whole program has one input, and its answer is in its size
(``analysis_ext.canonical`` takes several as one).

``InputReading`` is the walker's mixin for these values; the test-case loops
and the input format come from ``analysis_ext.stdin``.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from analysis_ext.cost import ONE, Cost
from analysis_ext.static.values import Value

if TYPE_CHECKING:
    from analysis_ext.static.analyzer import StaticAnalyzer

SIZE = Cost.var("n")
_READ_METHODS = {"readline": "line", "read": "all", "readlines": "lines"}
_FREE_ON_READ = {"strip", "rstrip", "lstrip", "decode", "lower", "upper", "encode"}


def read_line() -> Value:
    """A line (or the whole input) read: a string of length n."""
    return Value("str", length=SIZE, size=SIZE, fresh=True, read=True)


def read_number() -> Value:
    return Value("int", value=SIZE, read=True)


def read_value(kind: str) -> Value:
    if kind == "lines":
        return Value("seq", length=SIZE, size=SIZE, element=read_line(), fresh=True, read=True)
    return read_line()


class InputReading:
    """Mixin of ``_Walker``: reads, and what is made of values read."""

    unpacked_reads = False  # walking the value of ``a, b = ...``: a line read there holds that many values

    if TYPE_CHECKING:
        analyzer: StaticAnalyzer

        def charge(self, cost: Cost, node: ast.AST | None = None, what: str = "") -> None: ...

        def expr(self, node: ast.expr | None) -> Value: ...

    def stdin_attribute(self, base: Value, attribute: str) -> Value | None:
        """``sys.stdin``, ``sys.stdin.buffer``, ``sys.stdout``, ``sys.stdin.readline`` (as a reader)."""
        if base.kind == "module" and base.module == "sys" and attribute in ("stdin", "stdout", "stderr"):
            return Value("stdin" if attribute == "stdin" else "stdout")
        if base.kind == "stdin" and attribute == "buffer":
            return Value("stdin")
        if base.kind == "stdout" and attribute == "buffer":
            return Value("stdout")
        if base.kind == "stdin" and attribute in _READ_METHODS:
            return Value("reader", module=_READ_METHODS[attribute])
        return None

    def stdin_method(self, node: ast.Call, name: str, base: Value) -> Value | None:
        """Methods of stdin, stdout and of strings read; None (nothing evaluated) for anything else."""
        if base.kind == "stdin" and name in _READ_METHODS:
            return self.call_reader(Value("reader", module=_READ_METHODS[name]))
        if base.kind == "stdout" and name == "write":
            written = [self.expr(a) for a in node.args]
            self.charge(written[0].length if written else ONE)
            return Value("int")
        if not base.read or base.kind != "str":
            return None
        for a in node.args:
            self.expr(a)
        if name in _FREE_ON_READ:
            return base
        if name in ("split", "splitlines"):
            return Value("seq", length=base.length, size=base.length, element=Value("str", read=True), fresh=True,
                         read=True)  # fmt: skip
        return None

    def call_reader(self, reader: Value) -> Value:
        """Calling a name bound to a read (``input = sys.stdin.readline``; ``input()``)."""
        if self.unpacked_reads:
            return Value("str", read=True)  # a line unpacked into a fixed number of names
        return read_value(reader.module or "line")

    def mapped(self, function: ast.expr, iterable: Value) -> Value:
        """``map(function, iterable)``: numbers when the function is int/float over values read."""
        element = iterable.element or Value()
        if isinstance(function, ast.Name) and function.id in ("int", "float") and (element.read or iterable.read):
            element = read_number()
        elif isinstance(function, ast.Name) and function.id in ("int", "float"):
            element = Value("int")
        return Value("iter", length=iterable.length, element=element, read=iterable.read)

    def number_of(self, value: Value) -> Value | None:
        """``int(x)`` / ``float(x)`` of something read: a size."""
        return read_number() if value.read else None
