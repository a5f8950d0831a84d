"""Costs of calls into the language and its standard library.

The tables of built-ins (constant, linear, allocating, lazy), ``heapq`` /
``bisect`` / ``itertools`` / ``copy`` functions and container and string
methods, and ``CallCosting``, the walker's mixin that charges a built-in,
module-function or method call its time and allocations and records the
pushes it makes onto containers.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from analysis_ext.astutil import name_of
from analysis_ext.cost import ONE, Cost
from analysis_ext.static.syntax import constant_int
from analysis_ext.static.values import CONTAINERS, Value

if TYPE_CHECKING:
    from analysis_ext.static.analyzer import StaticAnalyzer
    from analysis_ext.static.values import _Frame

_LAZY = {"range", "enumerate", "zip", "reversed", "iter", "map", "filter"}
_SCALAR_BUILTINS = {
    "abs", "ord", "chr", "int", "float", "bool", "isinstance", "divmod", "pow", "hash", "id", "round", "type",
    "callable", "getattr", "setattr", "hasattr", "print", "repr", "format", "input", "next", "object", "super",
    "exit", "quit",
}  # fmt: skip
_LINEAR_BUILTINS = {"sum", "min", "max", "any", "all", "list", "tuple", "set", "frozenset", "dict", "str", "Counter",
                    "deque", "bytes", "bytearray", "OrderedDict"}  # fmt: skip
_ALLOCATING = {"list": "seq", "tuple": "seq", "set": "set", "frozenset": "set", "dict": "dict",
               "Counter": "dict", "deque": "seq", "bytes": "str", "bytearray": "seq",
               "OrderedDict": "dict", "defaultdict": "dict"}  # fmt: skip
STR_LINEAR_METHODS = {"split", "strip", "lstrip", "rstrip", "lower", "upper", "replace", "find", "rfind", "count",
                      "index", "title", "capitalize", "encode", "decode", "isdigit", "isalpha",
                      "isalnum", "swapcase", "casefold", "splitlines", "translate", "zfill",
                      "center", "ljust", "rjust"}  # fmt: skip
_DEQUE_HINT = "list.insert(0, x) / pop(0) shift the whole list: use collections.deque."
_CONSTANT_MODULES = {"math", "cmath", "random", "time", "operator", "string", "secrets", "datetime", "os", "sys"}
PUSH_METHODS = {"append", "add", "appendleft", "push"}
_MODULE_FUNCTIONS = {"heappush", "heappop", "heappushpop", "heapreplace", "heapify", "nlargest", "nsmallest",
                     "bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right", "deepcopy",
                     "permutations", "combinations", "product", "accumulate", "chain"}  # fmt: skip


class CallCosting:
    """Charges calls of built-ins, module functions and methods (a mixin of ``_Walker``)."""

    if TYPE_CHECKING:
        analyzer: StaticAnalyzer
        multiplier: Cost
        frame: _Frame

        def charge(self, cost: Cost, node: ast.AST | None = None, what: str = "") -> None: ...
        def allocate(self, size: Cost) -> None: ...
        def push(self, name: str | None, count: Cost, site: ast.AST) -> None: ...
        def expr(self, node: ast.expr | None) -> Value: ...
        def iteration(self, node: ast.expr) -> tuple[Cost, Value]: ...
        def _doubles(self, name: str, value: ast.expr) -> bool: ...
        def _double(self, name: str, node: ast.AST) -> None: ...
        def mapped(self, function: ast.expr, iterable: Value) -> Value: ...
        def number_of(self, value: Value) -> Value | None: ...

    def _builtin(self, node: ast.Call, name: str) -> Value:
        if name in _MODULE_FUNCTIONS:
            return self._module_function(node, name)
        args = [self.expr(a) for a in node.args]
        for keyword in node.keywords:
            self.expr(keyword.value)
        first = args[0] if args else Value()
        if name == "len":
            return Value("int", value=first.length)
        if name == "map" and len(args) >= 2:
            return self.mapped(node.args[0], args[1])
        if name == "filter" and len(args) >= 2:
            return Value("iter", length=args[1].length, element=args[1].element, read=args[1].read)
        if name in ("int", "float") and first.read:
            return self.number_of(first) or Value("int")
        if name == "next" and args:
            return first.element or Value()  # next(it) over tokens read: a token
        if (
            name == "open"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in (0, "/dev/stdin")
        ):
            return Value("stdin")
        if name == "pow" and len(args) >= 2:
            self.charge(args[1].value.log(), node, "pow() squares and multiplies")  # fast power: log of the exponent
            return Value("int", value=ONE if len(args) > 2 else args[0].value.power(2))
        if name in ("sorted",):
            cost = first.length * first.length.log()
            self.charge(cost, node, f"sorted() costs {cost.render()}")
            self.allocate(first.length)
            return Value("seq", length=first.length, size=first.length, element=first.element, fresh=True)
        if name in _LAZY:
            if name == "range" and args:
                return Value("iter", length=args[-1].value if len(args) < 3 else args[1].value)
            return Value("iter", length=first.length, element=first.element)
        if name in ("min", "max") and len(args) >= 2:
            return Value("int", value=args[0].value + args[1].value)
        if name in _LINEAR_BUILTINS or name in _ALLOCATING:
            if not args:
                return Value(_ALLOCATING.get(name, "other"), length=ONE, size=ONE, fresh=name in _ALLOCATING)
            length = first.length if first.kind != "int" else ONE
            # Values read are paid for where they are used: tuple(map(int, input().split())) may be a pair.
            self.charge(ONE if first.read and name in _ALLOCATING else length)
            if name in _ALLOCATING:
                kind = _ALLOCATING[name]
                if name in ("Counter",) or kind in ("set", "dict"):
                    element = None
                else:
                    element = first.element
                self.allocate(length)
                return Value(kind, length=length, size=first.size, element=element, fresh=True)
            if name == "str":
                length = first.value.log() if first.kind == "int" else first.length
                self.allocate(length)
                return Value("str", length=length, size=length, fresh=True)
            return Value("int", value=first.element.value if first.element else ONE)
        if name == "defaultdict":
            return Value("dict", fresh=True)
        if name in _SCALAR_BUILTINS or name[:1].isupper():
            if name == "print":
                for a in args:
                    self.charge(a.length if a.kind in CONTAINERS else ONE)
            if name in ("int", "abs", "round") and first.kind == "int":
                return Value("int", value=first.value)
            return Value("int") if name in ("int", "abs", "ord", "round", "pow", "hash") else Value()
        self.analyzer.unsure(f"line {node.lineno}: `{name}()` is not known, counted as O(1)")
        return Value()

    def _module_function(self, node: ast.Call, name: str, module: str = "") -> Value:
        args = [self.expr(a) for a in node.args]
        first = args[0] if args else Value()
        heap = name_of(node.args[0]) if node.args else None
        if name in ("heappush", "heappop", "heappushpop", "heapreplace"):
            self.charge(first.length.log(), node, f"heapq.{name} costs {first.length.log().render()}")
            if name == "heappush":
                self.push(heap, ONE, node)
            return first.element or Value()
        if name == "heapify":
            self.charge(first.length)
            return Value()
        if name in ("nlargest", "nsmallest"):
            data = args[1] if len(args) > 1 else first
            self.charge(data.length * first.value.log())
            return Value("seq", length=first.value, size=first.value, fresh=True)
        if name in ("bisect", "bisect_left", "bisect_right"):
            self.charge(first.length.log())
            return Value("int")
        if name in ("insort", "insort_left", "insort_right"):
            self.charge(first.length)
            self.push(heap, ONE, node)
            return Value()
        if name in ("deepcopy", "copy"):
            self.charge(first.size)
            self.allocate(first.size)
            return replace(first, fresh=True)
        if name in ("permutations", "combinations", "product"):
            count, _ = self.iteration(node)
            return Value("iter", length=count)
        if name in ("deque", "Counter", "OrderedDict", "defaultdict"):
            return self._builtin(node, name)
        if name in ("accumulate", "chain"):
            return Value("iter", length=first.length)
        if module == "math" and name in ("gcd", "lcm"):
            total = ONE
            for a in args:
                total = total + a.value
            self.charge(total.log(), node, f"math.{name} is Euclid's algorithm ({total.log().render()})")
            return Value("int", value=total)
        if module == "math" and name in ("factorial", "comb", "perm", "prod", "fsum"):
            self.charge(first.value if first.kind == "int" else first.length)
            return Value("int")
        target = next((k.value for k in node.keywords if k.arg == "target"), None)
        if name == "Thread" and isinstance(target, ast.Name):
            # threading.Thread(target=main).start(): the deep-recursion idiom runs main.
            called = ast.copy_location(ast.Call(func=target, args=[], keywords=[]), node)
            return self.expr(called)
        if module in _CONSTANT_MODULES:
            return Value("int")  # math.*, random.*, time.*: constant work on scalars
        # numpy, pandas and the like: assume one pass over the data, and say so.
        self.charge(first.length if first.kind in CONTAINERS else ONE)
        self.analyzer.unsure(f"line {node.lineno}: cost of `{module or '?'}.{name}()` assumed linear in its argument")
        return Value()

    def _method(self, node: ast.Call, name: str, base: Value, base_name: str | None) -> Value:
        args = [self.expr(a) for a in node.args]
        for keyword in node.keywords:
            self.expr(keyword.value)
        first = args[0] if args else Value()
        in_loop = not self.multiplier.is_constant()
        if name in PUSH_METHODS:
            self.push(base_name, ONE, node)
            return Value()
        if name == "insert":
            self.charge(base.length, node, f"list.insert shifts the list ({base.length.render()})")
            if in_loop:
                self.analyzer.suggest_once("deque", _DEQUE_HINT)
            self.push(base_name, ONE, node)
            return Value()
        if name in ("pop", "remove", "discard", "popleft") and base_name is not None:
            self.frame.popped.add(base_name)
        if name == "pop":
            if node.args and constant_int(node.args[0]) not in (-1, None):
                self.charge(base.length, node, f"list.pop(0) shifts the list ({base.length.render()})")
                if in_loop:
                    self.analyzer.suggest_once("deque", _DEQUE_HINT)
            return base.element or Value()
        if name == "extend" and base_name is not None and node.args and self._doubles(base_name, node.args[0]):
            self._double(base_name, node)
            return Value()
        if name in ("extend", "update"):
            self.charge(first.length)
            self.push(base_name, first.length, node)
            return Value()
        if name in ("sort",):
            cost = base.length * base.length.log()
            self.charge(cost, node, f"list.sort() costs {cost.render()}")
            return Value()
        if name in ("remove", "index", "count") and base.kind == "seq":
            self.charge(base.length, node, f"list.{name} scans the list ({base.length.render()})")
            return Value("int")
        if name in ("copy",):
            self.charge(base.length)
            self.allocate(base.size)
            return replace(base, fresh=True)
        if name == "join":
            self.charge(first.length)
            return Value("str", length=first.length, size=first.length, fresh=True)
        if name in ("keys", "values", "items"):
            return Value("iter", length=base.length, element=base.element)
        if name in STR_LINEAR_METHODS and base.kind in ("str", "other"):
            self.charge(base.length)
            if name in ("split", "splitlines"):
                return Value("seq", length=base.length, size=base.length, element=Value("str"), fresh=True)
            if name in ("find", "rfind", "count", "index"):
                return Value("int")
            return Value("str", length=base.length, size=base.length, fresh=True)
        if name in ("get", "setdefault", "popleft", "discard", "popitem", "startswith", "endswith",
                    "isdigit", "isalpha", "isspace", "isupper", "islower"):  # fmt: skip
            if name == "setdefault":
                self.push(base_name, ONE, node)
            return base.element or Value()
        if name == "remove":
            return Value()
        if base.kind == "other":
            self.analyzer.unsure(f"line {node.lineno}: `.{name}()` on a value of unknown type counted as O(1)")
        return Value()
