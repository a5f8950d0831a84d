"""The walker: one pass over a function (or module) body, counting.

``_Walker`` keeps what it knows about every local name, adds each operation's
cost times the enclosing loops' iteration counts to the running time, and
accounts for space (containers built, slices, what callees return). Loops are
costed by ``LoopCosting`` (``loops``), calls into the library by
``CallCosting`` (``library``), and calls of the code's own functions by the
analyzer (``recursion``).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from analysis_ext.astutil import call_name, name_of
from analysis_ext.cost import ONE, Cost
from analysis_ext.static.inputs import InputReading
from analysis_ext.static.library import CallCosting
from analysis_ext.static.loops import LoopCosting
from analysis_ext.static.syntax import additive_terms, assigned_names, constant_int, flatten_add, receiver_of
from analysis_ext.static.values import CONTAINERS, Value, _Frame, _Loop

if TYPE_CHECKING:
    from analysis_ext.static.analyzer import StaticAnalyzer


class _Walker(LoopCosting, CallCosting, InputReading):
    """Walks one function (or module) body; see the package docstring (``analysis_ext.static``)."""

    def __init__(self, analyzer: StaticAnalyzer, env: dict[str, Value], stack: tuple[ast.AST, ...],
                 function: ast.FunctionDef | None) -> None:  # fmt: skip
        self.analyzer = analyzer
        self.env = env
        self.stack = stack
        self.function = function
        self.frame = _Frame()
        self.multiplier = ONE
        self.loops: list[_Loop] = []
        self.grown: dict[str, Cost] = {}  # container growth seen in the previous pass
        self.pushes: dict[str, Cost] = {}
        self.push_sites: dict[int, Cost] = {}
        self.previous_push_sites: dict[int, Cost] = {}
        self.created_at: dict[str, Cost] = {}
        self.created_length: dict[str, Cost] = {}  # a container's length where it was made, before its pushes
        self.local_names: set[str] = set()

    # -- bookkeeping ------------------------------------------------------

    def charge(self, cost: Cost, node: ast.AST | None = None, what: str = "") -> None:
        total = self.multiplier * cost
        self.frame.time = self.frame.time + total
        if node is not None and what and not total.is_constant():
            self.analyzer.note(total, f"line {getattr(node, 'lineno', '?')}: {what}")

    def allocate(self, size: Cost) -> None:
        self.frame.space = self.frame.space + size

    def push(self, name: str | None, count: Cost, site: ast.AST) -> None:
        if name is None:
            return
        self.push_sites[id(site)] = self.push_sites.get(id(site), ONE) + self.multiplier * count
        if name in self.local_names or self.function is None:
            created = self.created_at.get(name, ONE)
            self.pushes[name] = self.pushes.get(name, ONE) + (self.multiplier * count) / created
        else:
            self.frame.outer_pushes[name] = self.frame.outer_pushes.get(name, ONE) + self.multiplier * count

    def primary(self) -> Cost:
        return self.analyzer.primary

    # -- statements -------------------------------------------------------

    def run(self, body: list[ast.stmt]) -> _Frame:
        """Walk twice: the second pass knows how far containers grow and where pushes happen."""
        saved_env = dict(self.env)
        self.local_names |= set(assigned_names(body))
        with self.analyzer.quiet(True):
            self._body(body)
        self.grown = dict(self.pushes)
        self.previous_push_sites = dict(self.push_sites)
        self.env = saved_env
        self.frame, self.pushes, self.push_sites, self.multiplier = _Frame(), {}, {}, ONE
        self._body(body)
        for name, grown in self.pushes.items():
            info = self.env.get(name)
            element = info.element.size if info and info.element else ONE
            self.allocate(grown * element)
        return self.frame

    def _body(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self._statement(statement)

    def _statement(self, node: ast.stmt) -> None:
        method = getattr(self, f"_stmt_{type(node).__name__}", None)
        if method is not None:
            method(node)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.stmt):
                self._statement(child)

    def _stmt_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.env[node.name] = Value("function", function=node, closure=self.env)

    _stmt_AsyncFunctionDef = _stmt_FunctionDef

    def _stmt_ClassDef(self, node: ast.ClassDef) -> None:
        self.env[node.name] = Value("other")

    def _stmt_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            source = getattr(node, "module", None) or alias.name
            self.env[(alias.asname or alias.name).split(".")[0]] = Value("module", module=source.split(".")[0])

    _stmt_ImportFrom = _stmt_Import

    def _stmt_Return(self, node: ast.Return) -> None:
        if node.value is None:
            return
        value = self.expr(node.value)
        self.frame.returns = value if self.frame.returns is None else self.frame.returns.merged(value)

    def _stmt_Assign(self, node: ast.Assign) -> None:
        fixed = not isinstance(node.value, ast.ListComp | ast.GeneratorExp) and all(
            isinstance(t, ast.Tuple | ast.List) and not any(isinstance(e, ast.Starred) for e in t.elts)
            for t in node.targets
        )
        saved, self.unpacked_reads = self.unpacked_reads, fixed
        try:
            value = self.expr(node.value)
        finally:
            self.unpacked_reads = saved
        for target in node.targets:
            self._bind(target, value, node.value)

    def _stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, self.expr(node.value), node.value)

    def _stmt_AugAssign(self, node: ast.AugAssign) -> None:
        value = self.expr(node.value)
        name = name_of(node.target)
        if name is None:
            self.expr(node.target)
            return
        current = self.env.get(name, Value())
        if current.kind in ("str", "seq") and isinstance(node.op, ast.Add) and self._doubles(name, node.value):
            self._double(name, node)
        elif current.kind in ("str", "seq") and isinstance(node.op, ast.Add):
            # s += piece copies s each time for str (and lists grow by the piece).
            grown = current.length + self.grown.get(name, ONE)
            if current.kind == "str":
                self.charge(grown, node, f"string `{name} +=` in a loop copies the string ({grown})")
                self.analyzer.suggest_once(
                    "str_concat", "Build strings with a list and ''.join() instead of += in a loop."
                )
            else:
                self.charge(value.length)
            self.push(name, value.length, node)
        elif isinstance(node.op, ast.Mult) and current.kind in ("str", "seq"):
            self.charge(current.length * value.value)
        else:
            self.env[name] = replace(current, kind=current.kind if current.kind != "other" else value.kind)

    def _doubles(self, name: str, value: ast.expr) -> bool:
        """Extending a list by something built from the list itself, inside a loop: it doubles each time."""
        return not self.multiplier.is_constant() and any(
            isinstance(n, ast.comprehension) and name_of(n.iter) == name for n in ast.walk(value)
        )

    def _double(self, name: str, node: ast.AST) -> None:
        grown = (self.multiplier / self.created_at.get(name, ONE)).exp()
        self.analyzer.note(grown, f"line {node.lineno}: `{name}` doubles on every pass of the loop")  # type: ignore[attr-defined]
        self.charge(grown)
        self.grown[name] = grown
        self.push(name, grown / self.multiplier, node)

    def _bind(self, target: ast.expr, value: Value, source: ast.expr) -> None:
        if isinstance(target, ast.Name):
            if value.fresh and value.kind in CONTAINERS:
                self.created_at[target.id] = self.multiplier
                self.created_length[target.id] = value.length
                grown = self.grown.get(target.id)
                if grown is not None:
                    value = replace(value, length=value.length + grown, size=value.size + grown)
                self.allocate(value.size)
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = source.elts if isinstance(source, ast.Tuple | ast.List) else None
            for i, sub in enumerate(target.elts):
                if items is not None and len(items) == len(target.elts):
                    self._bind(sub, self.expr_quiet(items[i]), items[i])
                else:
                    self._bind(sub, value.element or Value(), source)
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value)
            self.expr(target.slice)
            base = name_of(target.value)
            if container.kind == "dict" and base is not None:
                self.push(base, ONE, target)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, value, source)
        else:
            self.expr(target)

    def _stmt_If(self, node: ast.If) -> None:
        self.expr(node.test)
        self._body(node.body)
        self._body(node.orelse)

    def _stmt_Expr(self, node: ast.Expr) -> None:
        self.expr(node.value)

    def _stmt_With(self, node: ast.With) -> None:
        for item in node.items:
            self.expr(item.context_expr)
        self._body(node.body)

    def _stmt_Try(self, node: ast.Try) -> None:
        self._body(node.body)
        for handler in node.handlers:
            self._body(handler.body)
        self._body(node.orelse)
        self._body(node.finalbody)

    # -- expressions ------------------------------------------------------

    def expr_quiet(self, node: ast.expr) -> Value:
        """The value of an expression without charging for it (it was charged already)."""
        saved = self.frame.time, self.frame.space
        with self.analyzer.quiet(True):
            value = self.expr(node)
        self.frame.time, self.frame.space = saved
        return value

    def expr(self, node: ast.expr | None) -> Value:
        if node is None:
            return Value()
        method = getattr(self, f"_expr_{type(node).__name__}", None)
        if method is not None:
            return method(node)  # type: ignore[no-any-return]
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
        return Value()

    def _expr_Constant(self, node: ast.Constant) -> Value:
        if isinstance(node.value, str | bytes):
            return Value("str")
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return Value("int")
        return Value()

    def _expr_Name(self, node: ast.Name) -> Value:
        return self.env.get(node.id, Value())

    def _expr_NamedExpr(self, node: ast.NamedExpr) -> Value:
        value = self.expr(node.value)
        self._bind(node.target, value, node.value)
        return value

    def _expr_BinOp(self, node: ast.BinOp) -> Value:
        left, right = self.expr(node.left), self.expr(node.right)
        op = node.op
        if left.kind in ("seq", "str") or right.kind in ("seq", "str"):
            seq, other = (left, right) if left.kind in ("seq", "str") else (right, left)
            if isinstance(op, ast.Add):
                length = left.length + right.length
                self.charge(length)
                return Value(seq.kind, length=length, size=left.size + right.size, element=seq.element, fresh=True)
            if isinstance(op, ast.Mult):
                length = seq.length * other.value
                self.charge(length)
                element = seq.element if seq.element else None
                size = length * (element.size if element else ONE)
                return Value(seq.kind, length=length, size=size, element=element, fresh=True)
            if isinstance(op, ast.Mod):
                return Value("str", length=seq.length, size=seq.length, fresh=True)
        if isinstance(op, ast.Add | ast.Sub | ast.BitOr | ast.BitXor):
            return Value("int", value=left.value + right.value)
        if isinstance(op, ast.BitAnd):
            return Value("int", value=left.value)
        if isinstance(op, ast.Mult):
            return Value("int", value=left.value * right.value)
        if isinstance(op, ast.FloorDiv | ast.Div | ast.RShift):
            return Value("int", value=left.value)
        if isinstance(op, ast.Mod):
            return Value("int", value=right.value)
        if isinstance(op, ast.LShift):
            return Value("int", value=right.value.exp() if not right.value.is_constant() else left.value)
        if isinstance(op, ast.Pow):
            power = constant_int(node.right)
            if power is not None and power >= 0:
                return Value("int", value=left.value.power(power))
            return Value("int", value=right.value.exp() if not right.value.is_constant() else ONE)
        return Value("int" if left.kind == "int" or right.kind == "int" else "other")

    def _expr_UnaryOp(self, node: ast.UnaryOp) -> Value:
        value = self.expr(node.operand)
        return Value("int", value=value.value) if value.kind == "int" else Value()

    def _expr_BoolOp(self, node: ast.BoolOp) -> Value:
        values = [self.expr(v) for v in node.values]
        result = values[0]
        for v in values[1:]:
            result = result.merged(v)
        return result

    def _expr_Compare(self, node: ast.Compare) -> Value:
        self.expr(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            container = self.expr(comparator)
            if isinstance(op, ast.In | ast.NotIn) and container.kind in ("seq", "str"):
                self.charge(container.length, node, f"`in` scans a list ({container.length.render()} per test)")
                if not self.multiplier.is_constant() and container.kind == "seq":
                    self.analyzer.suggest_once("in_list", "Membership tests on a list scan it: keep a set beside it.")
        return Value("other")

    def _expr_IfExp(self, node: ast.IfExp) -> Value:
        self.expr(node.test)
        return self.expr(node.body).merged(self.expr(node.orelse))

    def _expr_Tuple(self, node: ast.Tuple | ast.List | ast.Set) -> Value:
        elements = [self.expr(e) for e in node.elts]
        element = elements[0] if elements else None
        for e in elements[1:]:
            element = element.merged(e) if element else e
        kind = "set" if isinstance(node, ast.Set) else "seq"
        count = ONE
        for e in elements:
            count = count + e.size
        size = count
        return Value(kind, length=ONE, size=size, element=element, fresh=not isinstance(node, ast.Tuple))

    _expr_List = _expr_Tuple
    _expr_Set = _expr_Tuple

    def _expr_Dict(self, node: ast.Dict) -> Value:
        for part in [*node.keys, *node.values]:
            self.expr(part)
        return Value("dict", fresh=True)

    def _expr_JoinedStr(self, node: ast.JoinedStr) -> Value:
        for part in node.values:
            self.expr(part)
        return Value("str", fresh=True)

    def _expr_Lambda(self, node: ast.Lambda) -> Value:
        return Value("function", lambda_node=node)

    def _expr_Attribute(self, node: ast.Attribute) -> Value:
        base = self.expr(node.value)
        return self.stdin_attribute(base, node.attr) or Value()

    def _expr_Starred(self, node: ast.Starred) -> Value:
        return self.expr(node.value)

    def _expr_Subscript(self, node: ast.Subscript) -> Value:
        base = self.expr(node.value)
        if isinstance(node.slice, ast.Slice):
            length = self.slice_length(node.slice, base)
            self.charge(length)
            if not length.is_constant():
                self.allocate(length)
            return Value(base.kind if base.kind in ("seq", "str") else "seq", length=length,
                         size=length * (base.element.size if base.element else ONE), element=base.element,
                         fresh=True)  # fmt: skip
        self.expr(node.slice)
        if base.element is not None:
            return base.element
        if base.kind == "str":
            return Value("str")
        return Value("other")

    def slice_length(self, node: ast.Slice, base: Value) -> Cost:
        self.expr(node.lower)
        upper = self.expr(node.upper) if node.upper is not None else None
        self.expr(node.step)
        if node.lower is not None and node.upper is not None and upper is not None:
            remaining = [t for t in additive_terms(node.upper) if t not in additive_terms(node.lower)]
            if len(remaining) < len(additive_terms(node.upper)):
                if not remaining:
                    return ONE
                parts = node.upper
                kept = [p for p in flatten_add(parts) if ast.dump(p) in remaining]
                total = ONE
                for p in kept:
                    total = total + self.expr_quiet(p).value
                return total
            if constant_int(node.lower) is not None and constant_int(node.upper) is not None:
                return ONE
            return upper.value if upper.kind == "int" and not upper.value.is_constant() else base.length
        upper_constant = constant_int(node.upper) if node.upper is not None else None
        lower_constant = constant_int(node.lower) if node.lower is not None else None
        if upper_constant is not None and upper_constant >= 0:
            return ONE  # x[:3]
        if lower_constant is not None and lower_constant < 0:
            return ONE  # x[-3:]
        return base.length

    # -- calls ------------------------------------------------------------

    def _expr_Call(self, node: ast.Call) -> Value:
        name = call_name(node)
        receiver = receiver_of(node)
        if isinstance(node.func, ast.Name):
            target = self.env.get(name)
            if target is not None and target.kind == "function" and target.function is not None:
                args = [self.expr(a) for a in node.args]
                for keyword in node.keywords:
                    self.expr(keyword.value)
                return self.analyzer.call(self, target, node, args)
            if target is not None and target.kind == "reader":
                return self.call_reader(target)
            if target is not None and target.kind == "module" and target.module and name not in ("input", "open"):
                return self._module_function(node, name, target.module)  # from math import gcd
            if target is not None and target.lambda_node is not None:
                return self._call_lambda(node, target.lambda_node)
            if name == "input" and (target is None or target.kind != "function"):
                return self.call_reader(Value("reader", module="line"))
            return self._builtin(node, name)
        if receiver is not None:
            base = self.expr(receiver)
            if base.kind == "module":
                return self._module_function(node, name, base.module)
            if base.kind in ("stdin", "stdout") or base.read:
                found = self.stdin_method(node, name, base)
                if found is not None:
                    return found
            return self._method(node, name, base, name_of(receiver))
        self.expr(node.func)
        for a in node.args:
            self.expr(a)
        return Value()

    def _call_lambda(self, node: ast.Call, function: ast.Lambda) -> Value:
        """A lambda's body with its parameters bound to the call's arguments (``I = lambda: int(input())``)."""
        args = [self.expr(a) for a in node.args]
        params = [a.arg for a in function.args.args]
        saved = {p: self.env[p] for p in params if p in self.env}
        for param, value in zip(params, args, strict=False):
            self.env[param] = value
        try:
            return self.expr(function.body)
        finally:
            for param in params:
                self.env.pop(param, None)
            self.env.update(saved)
