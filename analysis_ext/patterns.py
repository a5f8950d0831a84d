"""Algorithmic and library patterns a piece of code shows, read off its syntax tree.

The names are a fixed vocabulary (``PATTERNS``) shared by the complexity
report and the snippet search, so a query such as "recursive snippets" can be
matched against what the code does rather than the words around it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from analysis_ext.astutil import CACHE_DECORATORS, cached_by_decorator, call_name, has_memo_check
from analysis_ext.bounds import CodeLimitError, parse_bounded

PATTERNS = (
    "recursion", "memoization", "dynamic_programming", "two_pointers", "sliding_window", "binary_search",
    "bfs", "dfs", "graph", "sorting", "hashing", "heap", "greedy", "backtracking", "divide_and_conquer",
    "string_processing", "math", "matrix", "linked_list", "tree", "stack", "queue", "generator", "class",
    "plotting", "dataframe", "numpy", "regex", "file_io", "http", "randomness", "datetime",
)  # fmt: skip

_MODULE_PATTERNS = {
    "matplotlib": "plotting", "seaborn": "plotting", "plotly": "plotting", "pandas": "dataframe",
    "numpy": "numpy", "re": "regex", "heapq": "heap", "random": "randomness", "secrets": "randomness",
    "datetime": "datetime", "calendar": "datetime", "requests": "http", "urllib": "http",
    "http": "http", "httpx": "http", "math": "math", "fractions": "math", "statistics": "math",
    "bisect": "binary_search", "collections": None, "functools": None, "itertools": None, "pathlib": "file_io",
    "csv": "file_io", "json": None, "networkx": "graph",
}  # fmt: skip
_GRAPH_WORDS = {"graph", "adj", "adjacency", "neighbors", "neighbours", "edges", "vertices", "nodes"}
_TREE_WORDS = {"left", "right", "children", "root"}


def _names(node: ast.AST) -> Iterable[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id
        elif isinstance(child, ast.Attribute):
            yield child.attr
        elif isinstance(child, ast.arg):
            yield child.arg


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: set[str] = set()
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._module(node.module or "")
        if node.module == "collections" and any(a.name == "deque" for a in node.names):
            self.found.add("queue")
        if node.module == "functools" and any(a.name in CACHE_DECORATORS for a in node.names):
            self.found.add("memoization")

    def _module(self, name: str) -> None:
        pattern = _MODULE_PATTERNS.get(name.split(".")[0])
        if pattern:
            self.found.add(pattern)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        if cached_by_decorator(node, CACHE_DECORATORS):
            self.found.add("memoization")
        if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node)):
            self.found.add("generator")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.found.add("class")
        fields = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        if "next" in fields:
            self.found.add("linked_list")
        if fields & {"left", "right"} or "children" in fields:
            self.found.add("tree")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = call_name(node)
        if name in {"sorted", "sort"}:
            self.found.add("sorting")
        elif name in {"heappush", "heappop", "heapify", "nlargest", "nsmallest", "heappushpop"}:
            self.found.add("heap")
        elif name in {"set", "Counter", "defaultdict", "frozenset"}:
            self.found.add("hashing")
        elif name == "deque":
            self.found.add("queue")
        elif name == "popleft":
            self.found.add("queue")
        elif name == "open":
            self.found.add("file_io")
        elif name in {"bisect_left", "bisect_right", "bisect", "insort"}:
            self.found.add("binary_search")
        elif name in {"plot", "scatter", "bar", "hist", "imshow", "savefig", "subplots", "pie"}:
            if name in {"savefig", "subplots"} or isinstance(node.func, ast.Attribute):
                self.found.add("plotting")
        elif name in {"DataFrame", "read_csv", "groupby"}:
            self.found.add("dataframe")
        elif name in {"split", "join", "strip", "replace", "lower", "upper", "startswith", "endswith", "isdigit",
                      "isalpha", "ord", "chr", "format", "encode", "decode"}:  # fmt: skip
            self.found.add("string_processing")
        elif name in {"gcd", "sqrt", "factorial", "comb", "perm", "isqrt", "pow", "log", "exp"}:
            self.found.add("math")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict | ast.Set | ast.DictComp | ast.SetComp) -> None:
        self.found.add("hashing")
        self.generic_visit(node)

    visit_Set = visit_DictComp = visit_SetComp = visit_Dict

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Mod | ast.Pow | ast.FloorDiv):
            self.found.add("math")
        self.generic_visit(node)


def _calls_itself(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Call]:
    """Calls of ``function``'s own name inside it, bare or as a method (``f(n - 1)``, ``self.f(n - 1)``)."""
    return [n for n in ast.walk(function) if isinstance(n, ast.Call) and call_name(n) == function.name]


def _inside_loops(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside a for or while loop of ``tree``: one walk, not one per call site."""
    inside: set[int] = set()
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_loop = stack.pop()
        if in_loop:
            inside.add(id(node))
        in_loop = in_loop or isinstance(node, ast.For | ast.While)
        stack.extend((child, in_loop) for child in ast.iter_child_nodes(node))
    return inside


def _loop_shapes(tree: ast.AST, found: set[str]) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.While):
            continue
        names = set(_names(node.test))
        body_text = ast.dump(ast.Module(body=node.body, type_ignores=[]))
        if {"low", "high"} <= names or {"lo", "hi"} <= names or {"left", "right"} <= names and "mid" in body_text:
            if "mid" in body_text or "//" in ast.unparse(node) or "guess" in body_text:
                found.add("binary_search")
                continue
        aug = [n for n in ast.walk(node) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)]
        increments = {n.target.id for n in aug if isinstance(n.op, ast.Add)}  # type: ignore[union-attr]
        decrements = {n.target.id for n in aug if isinstance(n.op, ast.Sub)}  # type: ignore[union-attr]
        if increments & names and decrements & names:
            found.add("two_pointers")
        pops = {call_name(n) for n in ast.walk(node) if isinstance(n, ast.Call)}
        pops_front = any(
            isinstance(n, ast.Call) and call_name(n) == "pop" and n.args and ast.unparse(n.args[0]) == "0"
            for n in ast.walk(node)
        )
        if "popleft" in pops or pops_front:
            found.add("bfs")
        elif "pop" in pops and "append" in pops:
            found.add("dfs")
            found.add("stack")
        elif "pop" in pops:
            found.add("stack")
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            inner = [n for n in ast.walk(node) if isinstance(n, ast.While) and n is not node]
            for w in inner:
                text = ast.unparse(w)
                if any(isinstance(n, ast.AugAssign) for n in ast.walk(w)) and "pop" not in text:
                    found.add("two_pointers")
                    found.add("sliding_window")
            source = ast.unparse(node)
            if "- size" in source or "- k" in source or "- window" in source or "window" in source:
                found.add("sliding_window")


def _is_table_recurrence(tree: ast.AST) -> bool:
    """``table[i][j] = f(table[i - 1][...], ...)`` or ``dp[i] = dp[i - 1] + ...``: a filled-in DP table."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign | ast.AugAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if not isinstance(target, ast.Subscript):
                continue
            base = target
            while isinstance(base, ast.Subscript):
                base = base.value  # type: ignore[assignment]
            if not isinstance(base, ast.Name):
                continue
            for read in ast.walk(node.value):
                if (
                    isinstance(read, ast.Subscript)
                    and isinstance(read.value, ast.Name | ast.Subscript)
                    and base.id in set(_names(read.value))
                    and isinstance(read.slice, ast.BinOp)
                    and isinstance(read.slice.op, ast.Sub)
                ):
                    return True
    return False


def detect_patterns(code: str) -> list[str]:
    """Sorted pattern names (from ``PATTERNS``) found in ``code``; [] when it does not parse or is
    beyond the analysis' limits (``analysis_ext.bounds``: too many syntax-tree nodes, too deeply nested).

    CPU work without a deadline of its own: the server runs it in the analysis worker
    (``analysis_ext.worker``), see ``snippets.patterns``.
    """
    try:
        tree = parse_bounded(code)
    except (SyntaxError, ValueError, CodeLimitError):
        return []
    return patterns_of(tree)


def patterns_of(tree: ast.AST) -> list[str]:
    """Sorted pattern names (from ``PATTERNS``) found in a parsed module."""
    finder = _Finder()
    finder.visit(tree)
    found = finder.found
    for function in finder.functions:
        calls = _calls_itself(function)
        if not calls:
            continue
        found.add("recursion")
        if has_memo_check(function, if_tests_only=True) or cached_by_decorator(function, CACHE_DECORATORS):
            found.add("memoization")
            found.add("dynamic_programming")
        in_loops = _inside_loops(function)
        if any(id(call) in in_loops for call in calls):
            body = {call_name(n) for n in ast.walk(function) if isinstance(n, ast.Call)}
            if body & {"append", "add", "remove", "pop", "discard"}:
                found.add("backtracking")
            if set(_names(function)) & (_GRAPH_WORDS | {"visited", "seen"}):
                found.update({"dfs", "graph"})
        text = ast.unparse(function)
        if len(calls) >= 2 and ("// 2" in text or "mid" in text):
            found.add("divide_and_conquer")
        if set(_names(function)) & _TREE_WORDS and ".left" in text:
            found.add("tree")
    if has_memo_check(tree, if_tests_only=True) and "memoization" not in found and "recursion" in found:
        found.add("memoization")
    words = set(_names(tree))
    if words & _GRAPH_WORDS:
        found.add("graph")
    if words & {"visited", "seen"} and ({"bfs", "dfs"} & found):
        found.add("graph")
    if words & {"dp", "table", "memo", "cache"}:
        if any(isinstance(n, ast.Subscript) and isinstance(n.value, ast.Subscript) for n in ast.walk(tree)):
            found.add("dynamic_programming")
        elif "dp" in words:
            found.add("dynamic_programming")
    if any(
        isinstance(n, ast.Subscript) and isinstance(n.value, ast.Subscript) and isinstance(n.ctx, ast.Store)
        for n in ast.walk(tree)
    ):
        found.add("matrix")
    if _is_table_recurrence(tree):
        found.add("dynamic_programming")
    for function in finder.functions:
        name = function.name.lower()
        if "sort" in name:
            found.add("sorting")
        if "merge" in name and "sort" in name:
            found.add("divide_and_conquer")
    _loop_shapes(tree, found)
    if words & {"greedy"} or (
        "sorting" in found and any(isinstance(n, ast.For) for n in ast.walk(tree)) and words & {"best", "total"}
    ):
        found.add("greedy")
    if "queue" in found and words & {"visited", "seen", "dist", "distance"}:
        found.add("bfs")
    return sorted(found & set(PATTERNS))
