"""Limits on what the analysis will read: syntax-tree size and nesting (issue 17).

Every pass of the static analysis and the pattern detection is at worst
quadratic in the tree's size and recursive in its depth, so both are capped
right after ``ast.parse`` (which is itself guarded: the parser answers very
deep nesting with RecursionError or MemoryError). The walk that counts is
iterative: it cannot overflow on the trees it is there to reject.
"""

from __future__ import annotations

import ast

MAX_NODES = 25_000  # about 64 KB of dense code; the 100-line benchmark function has ~1,500
MAX_DEPTH = 200  # syntax-tree levels; Python's own indentation limit is 100 blocks


class CodeLimitError(Exception):
    """The code is beyond what the analysis reads; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)  # both in args: it pickles back from the worker
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


def parse_bounded(code: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> ast.Module:
    """``ast.parse(code)``, refused (CodeLimitError) past ``max_nodes`` nodes or ``max_depth`` levels.

    SyntaxError and ValueError (null bytes) pass through. Too many nodes is 413
    (the request is too large, like too many bytes: send less code); too deep
    is 422 (small enough, but not something the analysis can walk).
    """
    try:
        tree = ast.parse(code)
    except (RecursionError, MemoryError) as e:  # "too complex" / "maximum recursion depth ... ast construction"
        raise CodeLimitError(422, "the code is nested too deeply to analyze (the parser gave up)") from e
    check_tree(tree, max_nodes, max_depth)
    return tree


def check_tree(tree: ast.AST, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > max_nodes:
            raise CodeLimitError(413, f"the code is too large to analyze: more than {max_nodes} syntax-tree nodes")
        if depth > max_depth:
            raise CodeLimitError(422, f"the code is nested too deeply to analyze (more than {max_depth} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
