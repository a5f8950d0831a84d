"""Input sizes: which function is the entry and what its parameters are.

``SizeInference``, the analyzer's mixin that picks the entry function and
gives each parameter a size symbol (``n``, ``m``) and a kind (list, int, str)
from the request's ``arg``, annotations, conventional names and how the body
uses it; the kind of input the timed runs can generate follows from it.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from analysis_ext.astutil import name_of
from analysis_ext.cost import Cost
from analysis_ext.static.library import STR_LINEAR_METHODS
from analysis_ext.static.values import Value

ARG_KINDS = ("list", "int", "str", "two_lists")
SIZE_VARS = ("n", "m")
_INT_NAMES = {"n", "k", "num", "number", "count", "limit", "amount", "steps", "size", "total", "target_sum", "height"}
_STR_NAMES = {"s", "text", "word", "string", "sentence", "line", "name", "pattern"}
_SEQUENCE_CONSUMERS = {"sorted", "enumerate", "zip", "reversed", "sum", "min", "max", "any", "all", "list", "tuple",
                       "set", "frozenset", "Counter", "deque", "heapify"}  # fmt: skip


class SizeInference:
    """Entry and parameter sizes (a mixin of ``StaticAnalyzer``)."""

    if TYPE_CHECKING:
        tree: ast.Module
        entry_name: str | None
        arg: str | None
        arg_kind: str | None
        primary: Cost

        def name_uses(self, tree: ast.AST) -> dict[str, list[ast.Name]]: ...
        def parents(self, tree: ast.AST) -> dict[int, ast.AST]: ...

    def choose_entry(self) -> ast.FunctionDef | None:
        functions = [n for n in self.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        if self.entry_name:
            for f in functions:
                if f.name == self.entry_name:
                    return f  # type: ignore[return-value]
            raise ValueError(f"no top-level function named {self.entry_name!r}")
        if not functions:
            return None
        called = {
            n.func.id
            for f in functions
            for n in ast.walk(f)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        roots = [f for f in functions if f.name not in called or any(
            isinstance(n, ast.Call) and name_of(n.func) == f.name for n in ast.walk(f))]  # fmt: skip
        roots = [f for f in roots if not f.name.startswith("_")] or roots or functions
        return roots[-1]  # type: ignore[return-value]

    def parameter_values(self, function: ast.FunctionDef) -> tuple[dict[str, Value], dict[str, str]]:
        positional = function.args.posonlyargs + function.args.args
        defaults = len(function.args.defaults)
        # Parameters with defaults are options, not inputs (unless the request says otherwise).
        required = positional[: len(positional) - defaults] if defaults else positional
        params = [a for a in required if a.arg not in ("self", "cls")]
        if self.arg == "two_lists" and len(params) < 2:
            params = [a for a in positional if a.arg not in ("self", "cls")][:2]
        values: dict[str, Value] = {}
        sizes: dict[str, str] = {}
        kinds: list[str] = []
        symbols = iter(SIZE_VARS)
        for i, param in enumerate(params):
            kind = self._param_kind(function, param, i)
            if kind is None:
                values[param.arg] = Value()
                continue
            kinds.append(kind)
            symbol = next(symbols, "n")
            size = Cost.var(symbol)
            sizes[param.arg] = symbol
            if kind == "int":
                values[param.arg] = Value("int", value=size)
            else:
                element = Value("str") if kind == "str" else Value("int")
                values[param.arg] = Value(kind, length=size, size=size, element=element)
        if self.arg is None and len(params) == len(kinds):  # every input sized: the timed runs can call it
            self.arg_kind = {("seq",): "list", ("int",): "int", ("str",): "str", ("seq", "seq"): "two_lists"}.get(
                tuple(kinds)
            )
        if len(sizes) > 1:
            self.primary = Cost.of(t for v in set(sizes.values()) for t in Cost.var(v).terms)
        return values, sizes

    def _param_kind(self, function: ast.FunctionDef, param: ast.arg, index: int) -> str | None:
        if self.arg in ("list", "two_lists") and index < (2 if self.arg == "two_lists" else 1):
            return "seq"
        if self.arg == "str" and index == 0:
            return "str"
        if self.arg == "int" and index == 0:
            return "int"
        if self.arg in ARG_KINDS:
            return None
        annotation = ast.unparse(param.annotation) if param.annotation else ""
        if not annotation and param.arg in _INT_NAMES:
            return "int"
        if not annotation and param.arg in _STR_NAMES:
            return "str"
        if annotation:
            if annotation in ("int",):
                return "int"
            if annotation in ("str",):
                return "str"
            if annotation.split("[")[0].lower() in ("list", "sequence", "tuple", "iterable", "set", "dict"):
                return "seq"
            if annotation in ("float", "bool"):
                return None
        uses = self.name_uses(function).get(param.arg, [])
        parents = self.parents(function)
        for use in uses:
            parent = parents.get(id(use))
            if isinstance(parent, ast.Call) and name_of(parent.func) == "len":
                return "seq"
            if isinstance(parent, ast.For) and parent.iter is use:
                return "seq"
            if isinstance(parent, ast.comprehension) and parent.iter is use:
                return "seq"
            if isinstance(parent, ast.Subscript) and parent.value is use:
                return "seq"
            if isinstance(parent, ast.Call) and name_of(parent.func) == "range":
                return "int"
            if isinstance(parent, ast.Compare) and any(
                c is use and isinstance(op, ast.In | ast.NotIn)
                for op, c in zip(parent.ops, parent.comparators, strict=True)
            ):
                return "seq"
            if isinstance(parent, ast.Call) and name_of(parent.func) in _SEQUENCE_CONSUMERS:
                return "seq"
            if isinstance(parent, ast.Attribute) and parent.value is use and parent.attr in STR_LINEAR_METHODS:
                return "str"
        for use in uses:
            parent = parents.get(id(use))
            if isinstance(parent, ast.BinOp | ast.AugAssign | ast.Compare):
                return "int"
        return None if index > 0 else "seq"
