"""Whole programs that read stdin: where they read, which loop runs the test cases, what their input looks like.

Reads are ``input()``, ``sys.stdin.readline()`` / ``.read()`` / ``.readlines()``
(also through ``sys.stdin.buffer``, ``open(0)`` and ``open("/dev/stdin")``),
and any name the program binds to one (``input = sys.stdin.readline``,
``I = lambda: int(input())``).

The program's statements are followed in the order they run (calls of the
program's own functions at statement level are followed into, ``if __name__
== "__main__":`` too), which gives

- ``cases``: the test-case loops. The convention: a loop whose count is the
  first value the program reads, read alone on its line, inline
  (``for _ in range(int(input()))``) or under a test-like name (``t``,
  ``tests``, ``cases``, ...), and whose body reads again, runs the test cases;
  the analysis costs one test case (contest problems bound the sum of the
  sizes over the cases, so the work per case in terms of its own n is the
  whole run's in terms of the input's size);
- ``items``: the input format, line by line, when it can be read off the code
  (a count then that many values, numbers per line, a line of n values, a
  string, a block repeated a number of times); None, with the reason, when it
  cannot (input read all at once, in a branch, in a loop bounded by something
  else). The timed runs generate stdin from it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from analysis_ext.astutil import name_of

MAX_INLINE = 8  # levels of the program's own functions followed into
_TEST_NAMES = {"t", "tt", "tc", "tcs", "nt", "test", "tests", "testcase", "testcases", "case", "cases", "ntest",
               "ntests", "num_tests", "numtests", "num_cases", "numcases", "t_"}  # fmt: skip
_NUMBER_CASTS = {"int", "float"}
_LIST_WRAPPERS = {"list", "tuple", "sorted", "set", "deque", "Counter"}
_STRIP = {"strip", "rstrip", "lstrip", "decode", "lower", "upper"}


def is_stdin(node: ast.AST) -> bool:
    """``sys.stdin``, ``sys.stdin.buffer``, ``open(0)``, ``open("/dev/stdin")``."""
    if isinstance(node, ast.Attribute) and node.attr == "buffer":
        return is_stdin(node.value)
    if isinstance(node, ast.Attribute) and node.attr == "stdin":
        return isinstance(node.value, ast.Name) and node.value.id == "sys"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open" and node.args:
        first = node.args[0]
        return isinstance(first, ast.Constant) and first.value in (0, "/dev/stdin")
    return False


def stdin_method(node: ast.AST) -> str | None:
    """``readline``/``read``/``readlines`` of stdin named by ``node`` (an attribute), else None."""
    if isinstance(node, ast.Attribute) and node.attr in ("readline", "read", "readlines") and is_stdin(node.value):
        return node.attr
    return None


def _read_of(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """What a call reads: ``line``, ``all`` (the whole input) or ``lines``; None for other calls."""
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Name):
        if node.func.id in aliases:
            return aliases[node.func.id]
        return "line" if node.func.id == "input" else None
    method = stdin_method(node.func)
    return {"readline": "line", "read": "all", "readlines": "lines"}.get(method or "")


def reader_aliases(tree: ast.Module) -> dict[str, str]:
    """Names bound at the top level to a read (``input = sys.stdin.readline``, ``I = lambda: input()``)."""
    aliases: dict[str, str] = {}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
            continue
        target, value = statement.targets[0], statement.value
        if not isinstance(target, ast.Name):
            continue
        method = stdin_method(value)
        if method is not None:
            aliases[target.id] = {"readline": "line", "read": "all", "readlines": "lines"}[method]
        elif isinstance(value, ast.Lambda):
            kinds = {_read_of(n, aliases) for n in ast.walk(value.body)} - {None}
            if kinds:
                aliases[target.id] = "all" if "all" in kinds else "line"
    return aliases


def reads_input(tree: ast.Module) -> bool:
    """Does the program read stdin anywhere?"""
    aliases = reader_aliases(tree)
    for node in ast.walk(tree):
        if _read_of(node, aliases) is not None or stdin_method(node) is not None:
            return True
        if isinstance(node, ast.For | ast.comprehension) and is_stdin(node.iter):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "stdin" and isinstance(node.value, ast.Name):
            if node.value.id == "sys":
                return True
    return False


@dataclass
class InputFormat:
    """What ``follow`` found: the test-case loops, and the input format or why there is none."""

    cases: set[int] = field(default_factory=set)  # ids of the test-case loop nodes
    items: list[dict[str, Any]] | None = None
    reason: str = ""  # why ``items`` is None
    sizes: set[str] = field(default_factory=set)  # names read that bound loops or lengths

    def describe(self) -> str:
        if self.items is None:
            return f"input format not read off the code: {self.reason}"
        return "input: " + "; ".join(_describe(i) for i in self.items)


def _describe(item: dict[str, Any]) -> str:
    kind = item["kind"]
    if kind == "ints":
        return f"a line of {len(item['sizes'])} number(s)"
    if kind == "list":
        return "a line of n numbers"
    if kind == "str":
        return "a string of length n"
    times = {"n": "n times", "cases": "once per test case"}.get(str(item["times"]), f"{item['times']} times")
    return f"[{'; '.join(_describe(i) for i in item['items'])}] {times}"


class _Unreadable(Exception):
    pass


class _Follower:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases = reader_aliases(tree)
        self.functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)}
        self.result = InputFormat()
        self.read_count = 0
        self.first_names: set[str] = set()  # names bound by the program's first read, read alone
        self.first_item: dict[str, Any] | None = None  # the line it read
        self.result.sizes = _size_names(tree)
        self._reads: dict[int, bool] = {}
        # Input read all at once and split: the names of the token list (data = sys.stdin.read().split())
        # and of iterators over it (it = iter(data)); reading them in order is reading the input in order.
        self.tokens: set[str] = set()
        self.iterators: set[str] = set()

    # -- which statements read --------------------------------------------

    def reads(self, node: ast.AST, depth: int = 0) -> bool:
        """Does running ``node`` read input (through the program's own functions too)?"""
        known = self._reads.get(id(node))
        if known is not None:
            return known
        found = False
        for sub in ast.walk(node):
            if _read_of(sub, self.aliases) is not None or self.token_read(sub):
                found = True
            elif isinstance(sub, ast.For | ast.comprehension) and is_stdin(sub.iter):
                found = True
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and depth < MAX_INLINE:
                function = self.functions.get(sub.func.id)
                if function is not None and function is not node and self.reads(function, depth + 1):
                    found = True
            if found:
                break
        self._reads[id(node)] = found
        return found

    # -- following the statements -----------------------------------------

    def block(self, statements: list[ast.stmt], depth: int = 0) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for statement in statements:
            items.extend(self.statement(statement, depth))
        return items

    def statement(self, node: ast.stmt, depth: int) -> list[dict[str, Any]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom):
            return []
        if isinstance(node, ast.Assign) and (stdin_method(node.value) or isinstance(node.value, ast.Lambda)):
            return []  # input = sys.stdin.readline, I = lambda: ...: an alias, read where it is called
        if not self.reads(node):
            return []
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            return self.block(node.body, depth)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            inlined = self.procedure(node.value, depth)
            if inlined is not None:
                return inlined
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            return self.expression(node.value, [n.id for n in ast.walk(targets[0]) if isinstance(n, ast.Name)], depth)
        if isinstance(node, ast.For):
            return self.loop(node, depth)
        if isinstance(node, ast.While):
            return self.while_loop(node, depth)
        if isinstance(node, ast.Expr | ast.AugAssign | ast.Return):
            return self.expression(node.value, [], depth)  # type: ignore[arg-type]
        raise _Unreadable(
            f"line {node.lineno}: input is read inside {'an' if type(node).__name__ in ('If', 'Assert') else 'a'} "
            f"{type(node).__name__.lower()} statement"
        )

    def expression(self, value: ast.expr, names: list[str], depth: int) -> list[dict[str, Any]]:
        """The lines an expression reads, in the order it reads them."""
        if isinstance(value, ast.ListComp | ast.GeneratorExp) and len(value.generators) == 1:
            generator = value.generators[0]
            if self.reads(value.elt) and not generator.ifs and not self.reads(generator.iter):
                inline, times = self.count_of(generator.iter, depth)
                times = "n" if times == "cases" else times  # a list of values read, not test cases
                return [*inline, {"kind": "repeat", "times": times, "items": self.expression(value.elt, [], depth)}]
        if self.shape(value, depth) is not None:
            return self.line(value, names, depth)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.functions:
            inlined = self.procedure(value, depth)
            if inlined:
                return inlined
        if isinstance(value, ast.IfExp | ast.BoolOp | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
            raise _Unreadable(f"line {value.lineno}: input is read conditionally or in a comprehension")
        items: list[dict[str, Any]] = []
        for child in ast.iter_child_nodes(value):
            if isinstance(child, ast.expr) and self.reads(child):
                items.extend(self.expression(child, [], depth))
        return items

    def procedure(self, call: ast.Call, depth: int) -> list[dict[str, Any]] | None:
        """A call of the program's own function as a statement (``main()``, ``solve()``): follow into it."""
        if not isinstance(call.func, ast.Name) or call.func.id not in self.functions:
            return None
        if depth >= MAX_INLINE:
            raise _Unreadable(f"line {call.lineno}: calls nest too deeply to follow")
        return self.block(self.functions[call.func.id].body, depth + 1)

    def line(self, value: ast.expr, names: list[str], depth: int) -> list[dict[str, Any]]:
        """One expression that reads: a line of numbers, a list, a string, or a helper returning one."""
        shape = self.shape(value, depth)
        if shape == "iterator" and len(names) == 1:
            self.iterators.add(names[0])
            return []
        if shape is None:
            raise _Unreadable(f"line {value.lineno}: input is read in a form the timed runs cannot reproduce")
        if shape == "all":
            return self.read_all(value, names)
        self.read_count += 1
        if shape == "int" or (shape == "ints" and names):
            count = max(1, len(names))
            item = {"kind": "ints", "sizes": [n in self.result.sizes for n in names] or [True] * count}
            if self.read_count == 1 and count == 1:
                self.first_names, self.first_item = set(names), item
            return [item]
        return [{"kind": "list" if shape in ("ints", "list") else "str"}]

    def mark_cases(self, loop: ast.AST) -> str:
        """``loop`` runs the test cases: its count, the program's first number, is generated as 1."""
        self.result.cases.add(id(loop))
        if self.first_item is not None:
            self.first_item["sizes"] = ["cases"]
        return "cases"

    def token_read(self, node: ast.AST) -> bool:
        """``data[i]``, ``data[a:b]`` or ``next(it)`` on the tokens of an input read all at once."""
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            return node.value.id in self.tokens
        return (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "next"
            and bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id in self.iterators
        )  # fmt: skip

    def read_all(self, value: ast.expr, names: list[str]) -> list[dict[str, Any]]:
        """``data = sys.stdin.read().split()`` (tokens read later in order), or ``n, *a = map(int, ...)``."""
        split = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "split"
        if split and len(names) == 1:
            self.tokens.add(names[0])
            return []
        starred = isinstance(value, ast.Call) and name_of(value.func) in ("map", "list")
        if starred and len(names) >= 2:
            self.read_count += 1
            return [{"kind": "ints", "sizes": [n in self.result.sizes for n in names[:-1]]}, {"kind": "list"}]
        raise _Unreadable(
            f"line {value.lineno}: the whole input is read at once in a form the timed runs cannot lay out"
        )

    def shape(self, value: ast.expr, depth: int) -> str | None:
        """``int`` (one number), ``ints`` (numbers of a line), ``list``, ``str`` or ``all``; None if unknown."""
        if self.token_read(value):
            return "list" if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Slice) else "str"
        if isinstance(value, ast.Call) and name_of(value.func) == "iter" and value.args:
            source = value.args[0]
            if (isinstance(source, ast.Name) and source.id in self.tokens) or self.shape(source, depth) == "all":
                return "iterator"  # it = iter(data), it = iter(sys.stdin.read().split())
        read = _read_of(value, self.aliases)
        if read is not None:
            return {"line": "str", "all": "all", "lines": "all"}[read]
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Attribute):
                inner = self.shape(func.value, depth)
                if func.attr in _STRIP and inner in ("str", "all"):
                    return inner
                if func.attr == "split" and inner in ("str", "all"):
                    return "all" if inner == "all" else "list"
                return None
            if isinstance(func, ast.Name):
                if func.id in _NUMBER_CASTS and value.args:
                    return "int" if self.shape(value.args[0], depth) == "str" else None
                if func.id == "map" and len(value.args) == 2:
                    inner = self.shape(value.args[1], depth)
                    return "ints" if inner == "list" else ("all" if inner == "all" else None)
                if func.id in _LIST_WRAPPERS and value.args:
                    inner = self.shape(value.args[0], depth)
                    return "list" if inner in ("ints", "list", "str") else inner
                function = self.functions.get(func.id)
                if function is not None and depth < MAX_INLINE:
                    return self.returned_shape(function, depth + 1)
            return None
        if isinstance(value, ast.ListComp | ast.GeneratorExp) and len(value.generators) == 1:
            inner = self.shape(value.generators[0].iter, depth)
            return inner if inner in ("list", "str", "all") else None
        return None

    def returned_shape(self, function: ast.FunctionDef | ast.AsyncFunctionDef, depth: int) -> str | None:
        """``def I(): return int(input())``: the shape of the one value a reading helper returns."""
        returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
        if len(returns) != 1 or len(function.body) != 1:
            return None
        return self.shape(returns[0].value, depth)  # type: ignore[arg-type]

    def count_of(self, iterable: ast.expr, depth: int) -> tuple[list[dict[str, Any]], Any]:
        """How many times a loop over ``iterable`` runs, as a format count (and the line it reads inline)."""
        if not (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range"):
            raise _Unreadable(f"line {iterable.lineno}: input is read in a loop that is not over range(...)")
        bound = _count_bound(iterable.args)
        if bound is None:
            raise _Unreadable(f"line {iterable.lineno}: input is read in a loop over a range with bounds")
        if isinstance(bound, ast.Constant) and isinstance(bound.value, int):
            return [], max(0, min(bound.value, 10))
        if isinstance(bound, ast.Name):
            return [], "n"
        if self.shape(bound, depth) == "int":
            first = self.read_count == 0
            inline = self.line(bound, [], depth)
            return inline, "cases" if first else "n"
        raise _Unreadable(f"line {bound.lineno}: input is read in a loop whose count is not a number read")

    def loop(self, node: ast.For, depth: int) -> list[dict[str, Any]]:
        before = self.read_count
        inline, times = self.count_of(node.iter, depth)
        bound = _count_bound(node.iter.args) if isinstance(node.iter, ast.Call) else None
        named = isinstance(bound, ast.Name) and bound.id in self.first_names and before == 1
        body_reads = any(self.reads(statement) for statement in node.body)
        if not body_reads:
            times = "n" if times == "cases" else times
        elif times == "cases" or (named and bound.id.lower() in _TEST_NAMES):  # type: ignore[union-attr]
            times = self.mark_cases(node)
        body = self.block(node.body, depth)
        return [*inline, {"kind": "repeat", "times": times, "items": body}]

    def while_loop(self, node: ast.While, depth: int) -> list[dict[str, Any]]:
        """``while t: t -= 1`` (or ``while t > 0``) around reads: t test cases, or t blocks."""
        test = node.test
        name = test.id if isinstance(test, ast.Name) else None
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1:
            if isinstance(test.ops[0], ast.Gt) and isinstance(test.comparators[0], ast.Constant):
                name = test.left.id
        counted = name is not None and any(
            isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Sub) and isinstance(n.target, ast.Name)
            and n.target.id == name for n in ast.walk(node)
        )  # fmt: skip
        if not counted:
            raise _Unreadable(f"line {node.lineno}: input is read in a while loop")
        times: Any = "n"
        if name in self.first_names and self.read_count == 1 and name.lower() in _TEST_NAMES:  # type: ignore[union-attr]
            times = self.mark_cases(node)
        return [{"kind": "repeat", "times": times, "items": self.block(node.body, depth)}]


def _count_bound(args: list[ast.expr]) -> ast.expr | None:
    """X of ``range(X)``, ``range(0, X)``, ``range(1, X + 1)``: what counts the iterations."""
    if len(args) == 1:
        return args[0]
    if len(args) == 2 and isinstance(args[0], ast.Constant) and args[0].value in (0, 1):
        upper = args[1]
        if isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Add) and isinstance(upper.right, ast.Constant):
            return upper.left
        return upper
    return None


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _size_names(tree: ast.Module) -> set[str]:
    """Names that bound a loop or a length somewhere: ``range(n)``, ``[0] * n``, ``while i < n``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            names |= {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            if isinstance(node.left, ast.List) or isinstance(node.right, ast.List):
                other = node.right if isinstance(node.left, ast.List) else node.left
                names |= {n.id for n in ast.walk(other) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.While):
            names |= {n.id for c in ast.walk(node.test) if isinstance(c, ast.Compare)
                      for o in c.comparators for n in ast.walk(o) if isinstance(n, ast.Name)}  # fmt: skip
    return names


def follow(tree: ast.Module) -> InputFormat:
    """The test-case loops and the input format of a program (see the module docstring)."""
    follower = _Follower(tree)
    try:
        items = follower.block(tree.body)
    except _Unreadable as e:
        follower.result.reason = str(e)
        return follower.result
    except RecursionError:
        follower.result.reason = "the program nests too deeply to follow"
        return follower.result
    if not items:
        follower.result.reason = "no input read at the top level"
        return follower.result
    follower.result.items = items
    return follower.result
