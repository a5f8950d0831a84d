"""The syntax-tree helpers shared by the pattern detector and the static analyzer
(``analysis_ext.astutil``), alone and through both of their callers."""

from __future__ import annotations

import ast
import textwrap

import pytest

from analysis_ext.astutil import (
    CACHE_DECORATORS,
    MEMO_DECORATORS,
    cached_by_decorator,
    call_name,
    decorator_name,
    has_memo_check,
    name_of,
)
from analysis_ext.patterns import detect_patterns
from analysis_ext.static import analyze_static

FIB_BODY = "    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)\n"


def _function(code: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(ast.parse(textwrap.dedent(code))) if isinstance(n, ast.FunctionDef))


def _call(expression: str) -> ast.Call:
    node = ast.parse(expression, mode="eval").body
    assert isinstance(node, ast.Call)
    return node


def _decorated(decorator: str) -> ast.FunctionDef:
    return _function(f"import functools\nfrom functools import cache, lru_cache\n\n@{decorator}\ndef f(n):\n{FIB_BODY}")


@pytest.mark.parametrize(
    "expression,name",
    [
        ("f(x)", "f"),
        ("obj.method()", "method"),
        ("obj.items.append(3)", "append"),
        ("functools.reduce(add, xs)", "reduce"),
        ("make()()", ""),
        ("handlers[0](x)", ""),
        ("(lambda: 1)()", ""),
    ],
)
def test_call_name(expression: str, name: str) -> None:
    assert call_name(_call(expression)) == name


def test_name_of() -> None:
    assert name_of(ast.parse("memo", mode="eval").body) == "memo"
    assert name_of(ast.parse("self.memo", mode="eval").body) is None
    assert name_of(ast.parse("3", mode="eval").body) is None
    assert name_of(None) is None


@pytest.mark.parametrize(
    "decorator,name,memoized",
    [
        ("cache", "cache", True),
        ("functools.cache", "cache", True),
        ("functools.lru_cache(maxsize=None)", "lru_cache", True),
        ("lru_cache()", "lru_cache", True),
        ("lru_cache(maxsize=128)", "lru_cache", True),
        ("functools.cached_property", "cached_property", False),
        ("trace", "trace", False),
        ("functools.wraps(g)", "wraps", False),
        ("registry[0]", "", False),
        ("make()()", "", False),
    ],
)
def test_decorators(decorator: str, name: str, memoized: bool) -> None:
    function = _decorated(decorator)
    assert decorator_name(function.decorator_list[0]) == name
    assert cached_by_decorator(function) is memoized


def test_cached_property_is_caching_but_not_a_memo() -> None:
    function = _decorated("functools.cached_property")
    assert "cached_property" in CACHE_DECORATORS
    assert "cached_property" not in MEMO_DECORATORS
    assert not cached_by_decorator(function)
    assert cached_by_decorator(function, CACHE_DECORATORS)


def test_undecorated_function_is_not_cached() -> None:
    function = _function(f"def f(n):\n{FIB_BODY}")
    assert not cached_by_decorator(function)
    assert not cached_by_decorator(function, CACHE_DECORATORS)


MEMO_IF = """
    def f(n, memo):
        if n in memo:
            return memo[n]
        memo[n] = n if n < 2 else f(n - 1, memo) + f(n - 2, memo)
        return memo[n]
"""
MEMO_IF_NOT_IN = """
    def f(n, cache):
        if n not in cache:
            cache[n] = n if n < 2 else f(n - 1, cache) + f(n - 2, cache)
        return cache[n]
"""
MEMO_IN_CONDITION = """
    def f(n, memo):
        if n > 1 and n in memo:
            return memo[n]
        memo[n] = n if n < 2 else f(n - 1, memo) + f(n - 2, memo)
        return memo[n]
"""
MEMO_IN_EXPRESSION = """
    def f(n, memo):
        memo[n] = memo[n] if n in memo else (n if n < 2 else f(n - 1, memo) + f(n - 2, memo))
        return memo[n]
"""
NEVER_STORED = """
    def f(n, seen):
        if n in seen:
            return 0
        return 1 + f(n - 1, seen | {n})
"""
STORED_IN_AN_ATTRIBUTE = """
    def f(self, n):
        if n in self.memo:
            return self.memo[n]
        self.memo[n] = n
        return n
"""


@pytest.mark.parametrize(
    "code,anywhere,in_if",
    [
        (MEMO_IF, True, True),
        (MEMO_IF_NOT_IN, True, True),
        (MEMO_IN_CONDITION, True, False),
        (MEMO_IN_EXPRESSION, True, False),
        (NEVER_STORED, False, False),
        (STORED_IN_AN_ATTRIBUTE, False, False),
    ],
    ids=["if-in", "if-not-in", "in-a-condition", "in-an-expression", "never-stored", "attribute-table"],
)
def test_has_memo_check(code: str, anywhere: bool, in_if: bool) -> None:
    function = _function(code)
    assert has_memo_check(function) is anywhere
    assert has_memo_check(function, if_tests_only=True) is in_if


def test_memo_check_of_a_whole_module() -> None:
    tree = ast.parse("memo = {}\nfor x in xs:\n    if x not in memo:\n        memo[x] = len(memo)\n")
    assert has_memo_check(tree, if_tests_only=True)
    assert not has_memo_check(ast.parse("total = {}\nfor x in xs:\n    total[x] = 1\n"))


@pytest.mark.parametrize(
    "decorator", ["functools.cache", "cache", "functools.lru_cache(maxsize=None)", "lru_cache()", "lru_cache"]
)
def test_memoized_recursion_is_costed_by_its_states(decorator: str) -> None:
    code = f"import functools\nfrom functools import cache, lru_cache\n\n@{decorator}\ndef f(n):\n{FIB_BODY}"
    result = analyze_static(code, entry="f", arg="int")
    assert (result.time_complexity, result.space_complexity) == ("O(n)", "O(n)"), result.notes
    assert {"memoization", "recursion", "dynamic_programming"} <= set(detect_patterns(code))


@pytest.mark.parametrize("decorator", ["trace", "functools.cached_property"])
def test_other_decorators_leave_the_recursion_exponential(decorator: str) -> None:
    code = f"import functools\n\ndef trace(fn):\n    return fn\n\n@{decorator}\ndef f(n):\n{FIB_BODY}"
    result = analyze_static(code, entry="f", arg="int")
    assert result.time_complexity == "O(2^n)", result.notes
    # cached_property caches (the "memoization" pattern) but holds no table of states.
    assert ("memoization" in detect_patterns(code)) is (decorator == "functools.cached_property")


def test_memo_check_in_a_condition_counts_for_the_cost_not_the_pattern() -> None:
    code = textwrap.dedent(MEMO_IN_CONDITION)
    assert analyze_static(code, entry="f", arg="int").time_complexity == "O(n)"
    patterns = detect_patterns(code)
    assert "recursion" in patterns
    assert "memoization" not in patterns


def test_method_calling_itself_is_recursion() -> None:
    code = "class Tree:\n    def size(self, node):\n        return 1 + self.size(node.left) if node else 0\n"
    assert {"class", "recursion"} <= set(detect_patterns(code))
