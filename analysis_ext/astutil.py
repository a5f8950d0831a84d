"""Syntax-tree helpers shared by the pattern detector and the static analyzer.

Names read off the tree (what a call, an expression or a decorator refers to)
and memoization: a function cached by a ``functools`` decorator, or code that
tests a table of its own before computing (``if key in memo: return
memo[key]``). The pattern detector (``analysis_ext.patterns``) labels code
"memoization" with them; the static analyzer (``analysis_ext.static``) costs a
memoized recursion by its number of distinct states. This module imports
neither, so both can import it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

MEMO_DECORATORS = frozenset({"cache", "lru_cache"})
"""Decorators that memoize a function by its arguments: under one, a recursion runs once per state."""

CACHE_DECORATORS = MEMO_DECORATORS | {"cached_property"}
"""Caching decorators: the memoizing ones and ``cached_property`` (one value per instance, no arguments)."""


def name_of(node: ast.AST | None) -> str | None:
    """The identifier of a bare name (``x``), else None (``a.x``, ``f()``, a literal, no node)."""
    return node.id if isinstance(node, ast.Name) else None


def call_name(call: ast.Call) -> str:
    """The last part of what is called: ``f`` for ``f(x)``, ``append`` for ``obj.items.append(x)``; else ""."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def decorator_name(node: ast.expr) -> str:
    """The last part of a decorator, called or not: ``cache`` for ``@cache``, ``@functools.cache``,
    ``lru_cache`` for ``@lru_cache(maxsize=None)`` or ``@functools.lru_cache()``; else ""."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def cached_by_decorator(
    function: ast.FunctionDef | ast.AsyncFunctionDef, names: frozenset[str] = MEMO_DECORATORS
) -> bool:
    """Whether one of ``function``'s decorators is named in ``names`` (by default, a memoizing one)."""
    return any(decorator_name(d) in names for d in function.decorator_list)


def has_memo_check(node: ast.AST, *, if_tests_only: bool = False) -> bool:
    """Whether ``node`` tests a key's membership in a table it also stores into by key (``memo[key] = ...``).

    ``if key in memo: return memo[key]``, ``if key not in cache: cache[key] = ...``. Any such
    test counts (``return memo[k] if k in memo else ...``, ``if k in memo and ...``); with
    ``if_tests_only``, only one that is the whole condition of an ``if`` statement.
    """
    stored = {
        t.value.id
        for n in ast.walk(node)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
    }
    tests: Iterable[ast.AST] = (
        (n.test for n in ast.walk(node) if isinstance(n, ast.If)) if if_tests_only else ast.walk(node)
    )
    return any(
        isinstance(test, ast.Compare)
        and any(isinstance(op, ast.In | ast.NotIn) for op in test.ops)
        and name_of(test.comparators[-1]) in stored
        for test in tests
    )
