"""Pure syntax-tree helpers for the static analyzer.

Questions about the shape of the code that need no walker state and cost
nothing: the receiver of a method call, integer literals, the terms of a sum,
the names a block assigns, midpoints and halvings, and how many recursive
calls one invocation makes. The names a call or an expression refers to, and
whether a function is memoized, are shared with the pattern detector
(``analysis_ext.astutil``).
"""

from __future__ import annotations

import ast


def receiver_of(call: ast.Call) -> ast.expr | None:
    return call.func.value if isinstance(call.func, ast.Attribute) else None


def constant_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = constant_int(node.operand)
        return None if inner is None else -inner
    return None


def additive_terms(node: ast.expr) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return additive_terms(node.left) + additive_terms(node.right)
    return [ast.dump(node)]


def assigned_names(nodes: list[ast.stmt]) -> dict[str, list[ast.AST]]:
    """Names assigned anywhere in these statements (not inside nested functions), with the assigning nodes."""
    found: dict[str, list[ast.AST]] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.For):
            targets = [node.target]
        elif isinstance(node, ast.NamedExpr):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    found.setdefault(sub.id, []).append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in nodes:
        visit(statement)
    return found


def is_midpoint(node: ast.AST) -> bool:
    """``(a + b) // 2``, ``a + (b - a) // 2`` or ``(a + b) >> 1``."""
    return any(
        isinstance(sub, ast.BinOp)
        and isinstance(sub.op, ast.FloorDiv | ast.RShift | ast.Div)
        and (constant_int(sub.right) in (1, 2))
        and isinstance(sub.left, ast.BinOp)
        for sub in ast.walk(node)
    )


def flatten_add(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return flatten_add(node.left) + flatten_add(node.right)
    return [node]


def calls_per_path(body: list[ast.stmt], sites: set[int]) -> int:
    """Most recursive calls one invocation makes: if/else branches and returns are alternatives."""

    def count(node: ast.AST | None) -> int:
        return 0 if node is None else sum(1 for n in ast.walk(node) if id(n) in sites)

    def walk(statements: list[ast.stmt]) -> int:
        total = 0
        for i, statement in enumerate(statements):
            if isinstance(statement, ast.If):
                rest = statements[i + 1 :]
                return total + count(statement.test) + max(walk(statement.body + rest), walk(statement.orelse + rest))
            total += count(statement)
            if isinstance(statement, ast.Return | ast.Raise):
                return total
        return total

    return walk(body)


def divides(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.FloorDiv | ast.Div | ast.RShift)
        and constant_int(n.right) in (1, 2, 3, 4)
        for n in ast.walk(node)
    ) or is_midpoint(node)
