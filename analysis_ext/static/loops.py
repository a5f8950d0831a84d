"""Loop costing: how many times a loop or comprehension body runs.

``LoopCosting``, the walker's mixin for ``for`` and ``while`` loops and
comprehensions: iteration counts from what bounds them (``range``, a
container's length, a variable halved or doubled, a binary search's midpoint),
and the loops amortised over the whole function (a worklist drained by
``pop``, a pointer that only moves forward, pushes guarded by a visited set).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from analysis_ext.astutil import call_name, name_of
from analysis_ext.cost import ONE, Cost
from analysis_ext.static.inputs import SIZE, read_line
from analysis_ext.static.syntax import additive_terms, assigned_names, constant_int, is_midpoint, receiver_of
from analysis_ext.static.values import CONTAINERS, Value, _Loop

if TYPE_CHECKING:
    from analysis_ext.static.analyzer import StaticAnalyzer


class LoopCosting:
    """Iteration counts of loops and comprehensions (a mixin of ``_Walker``)."""

    if TYPE_CHECKING:
        analyzer: StaticAnalyzer
        env: dict[str, Value]
        function: ast.FunctionDef | None
        multiplier: Cost
        loops: list[_Loop]
        previous_push_sites: dict[int, Cost]
        created_length: dict[str, Cost]

        def charge(self, cost: Cost, node: ast.AST | None = None, what: str = "") -> None: ...
        def primary(self) -> Cost: ...
        def expr(self, node: ast.expr | None) -> Value: ...
        def expr_quiet(self, node: ast.expr) -> Value: ...
        def _bind(self, target: ast.expr, value: Value, source: ast.expr) -> None: ...
        def _body(self, body: list[ast.stmt]) -> None: ...

    def _stmt_For(self, node: ast.For) -> None:
        iterations, element = self.iteration(node.iter)
        if self.analyzer.test_case_loop(node):
            iterations = ONE
            self.analyzer.note(SIZE, f"line {node.lineno}: runs the test cases, one costed")
        self.charge(ONE)
        self._loop(node, iterations, lambda: self._bind(node.target, element, node.iter))

    def _loop(
        self, node: ast.For | ast.While, iterations: Cost, bind: Any = None, per_body: Cost | None = None
    ) -> None:
        outer = self.multiplier
        self.loops.append(_Loop(outer, node))
        self.multiplier = per_body if per_body is not None else outer * iterations
        if not iterations.is_constant() and per_body is None:
            self.analyzer.note(self.multiplier, f"line {node.lineno}: loop runs {iterations.render()} times")
        self.charge(ONE)  # each iteration costs at least its test
        if bind is not None:
            bind()
        self._body(node.body)
        self.loops.pop()
        self.multiplier = outer
        self._body(node.orelse)

    def _stmt_While(self, node: ast.While) -> None:
        self.expr(node.test)
        iterations, amortised = self.while_iterations(node)
        if self.analyzer.test_case_loop(node):
            iterations, amortised = ONE, None
        if amortised is not None:
            self.analyzer.note(amortised, f"line {node.lineno}: loop amortised to {amortised.render()} in all")
        self._loop(node, iterations, per_body=amortised)

    # -- loops ------------------------------------------------------------

    def iteration(self, node: ast.expr) -> tuple[Cost, Value]:
        """How many times iterating ``node`` runs, and what each element is."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            args = [self.expr(a) for a in node.args]
            if not args:
                return ONE, Value("int")
            if len(args) == 1:
                count = args[0].value
            else:
                # range(i, i + 4): the terms the bounds share cancel, leaving a constant.
                lower, upper = node.args[0], node.args[1]
                left = [t for t in additive_terms(upper) if t not in additive_terms(lower)]
                count = ONE if len(additive_terms(upper)) > 1 and not left else args[1].value
            if len(args) == 3 and constant_int(node.args[2]) is None:
                count = self._stepped_count(node, count, args[2].value)
            return count, Value("int", value=args[-1 if len(args) < 3 else 1].value)
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in ("enumerate", "reversed", "iter", "sorted", "list", "tuple", "set") and node.args:
                count, element = self.iteration(node.args[0])
                if name == "sorted":
                    self.charge(count * count.log(), node, f"sorted() costs {(count * count.log()).render()}")
                if name == "enumerate":
                    element = Value("seq", element=element)
                return count, element
            if name == "zip" and node.args:
                counts = [self.iteration(a) for a in node.args]
                return counts[0][0], Value("seq", element=counts[0][1])
            if name in ("items", "keys", "values") and receiver_of(node) is not None:
                container = self.expr(receiver_of(node))  # type: ignore[arg-type]
                return container.length, Value("seq", element=container.element)
            if name in ("permutations", "combinations", "product") and node.args:
                base = self.expr(node.args[0]).length
                if name == "permutations":
                    return base.factorial(), Value("seq")
                size = node.args[1] if len(node.args) > 1 else None
                if name == "product":
                    size = next((k.value for k in node.keywords if k.arg == "repeat"), None)
                r = constant_int(size) if size is not None else None
                if size is not None and r is None:
                    grows = self.expr_quiet(size).value
                    if not grows.is_constant():
                        # x^r tuples of product(x, repeat=r), C(n, r) <= 2^n combinations: exponential in r.
                        return grows.exp() if name == "product" or base.is_constant() else base.exp(), Value("seq")
                # C(n, r) <= n^r and len(product(x, repeat=r)) = n^r, in closed form: r is the user's literal.
                return base.power(max(r or 2, 1)), Value("seq")
        value = self.expr(node)
        if value.kind == "int":
            return value.value, Value("int")
        if value.kind == "stdin":  # for line in sys.stdin: n lines
            return SIZE, read_line()
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = [self.expr_quiet(e) for e in node.elts]
            element = elements[0] if elements else Value()
            return ONE, element
        return value.length, value.element or Value("other")

    def _stepped_count(self, node: ast.Call, count: Cost, step: Cost) -> Cost:
        """``range(a, n, step)``; stepping by an enclosing loop's variable is harmonic (n/1 + n/2 + ... = n log n)."""
        name = name_of(node.args[2])
        outer = next(
            (loop for loop in reversed(self.loops) if isinstance(loop.node, ast.For) and name_of(loop.node.target)
             == name and name is not None), None,
        )  # fmt: skip
        if outer is None:
            return count / step
        if self._sieve_guard(outer.node, name, node):  # type: ignore[arg-type]
            self.analyzer.note(
                outer.multiplier * count, f"line {node.lineno}: sieve of Eratosthenes: n log log n in all, reported "
                "as O(n), the nearest class",
            )  # fmt: skip
            return ONE
        self.analyzer.note(outer.multiplier * count, f"line {node.lineno}: harmonic loop: n/1 + n/2 + ... = n log n")
        return count.log()

    def _sieve_guard(self, outer: ast.For, name: str, inner: ast.Call) -> bool:
        """An ``if table[i]:`` (or ``if not table[i]``) around the inner loop: only primes step."""
        for node in self.analyzer.nodes(outer):
            if isinstance(node, ast.If) and id(inner) in self.analyzer.ids(node):
                if any(isinstance(sub, ast.Subscript) and name_of(sub.slice) == name for sub in ast.walk(node.test)):
                    return True
            if isinstance(node, ast.If) and any(isinstance(s, ast.Continue) for s in node.body):
                if any(isinstance(sub, ast.Subscript) and name_of(sub.slice) == name for sub in ast.walk(node.test)):
                    return True  # if not prime[i]: continue
        return False

    def while_iterations(self, node: ast.While) -> tuple[Cost, Cost | None]:
        """Iterations per entry of a while loop, or the amortised total over the function."""
        assigned = assigned_names(node.body)
        tested = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
        if isinstance(node.test, ast.Constant) and node.test.value:
            tested |= _break_guards(node)  # while True: ... if n == 0: break
        popped = {
            name_of(receiver_of(c)) or (name_of(c.args[0]) if c.args else None)
            for c in ast.walk(node)
            if isinstance(c, ast.Call) and call_name(c) in ("pop", "popleft", "heappop", "popitem")
        }
        # A worklist drained by pop: amortised over all pushes of the function.
        for name in tested & popped:  # type: ignore[operator]
            if self.env.get(name, Value()).kind in CONTAINERS:
                return ONE, self.worklist_total(name, node)
        bounds: list[Cost] = []
        logs: list[Cost] = []
        for name in tested & set(assigned):
            kinds = {self._update_kind(name, n) for n in assigned[name]}
            current = self.env.get(name, Value())
            other = self._compared_against(node.test, name)
            if kinds <= {"div"}:
                logs.append(current.value.log())
            elif "mul" in kinds:
                logs.append(other.log())
                symbol = f"@{name}"
                self.analyzer.bounds[symbol] = other
                self.env[name] = replace(current, kind="int", value=Cost.var(symbol))
            elif "mid" in kinds:
                searched = other + current.value
                if searched.is_constant():
                    # lo, hi = 1, 10**18: binary search on the answer, over values that grow with the input.
                    searched = self.primary()
                    self.analyzer.note(searched.log(), f"line {node.lineno}: binary search over a range of values")
                logs.append(searched.log())
            elif "div" in kinds and kinds <= {"div", "inc", "dec"}:
                logs.append((other + current.value).log())  # halved every pass, nudged by one: still halving
            elif kinds <= {"inc", "dec"}:
                amortised = self._forward_pointer(name, node, other + current.value)
                if amortised is not None:
                    return ONE, amortised
                bounds.append(other + current.value)
                self.env[name] = replace(current, kind="int", value=other + current.value)
            else:
                bounds.append(other + current.value)
        if bounds and not logs:
            # while total > k: total -= a[left]; left += 1 -- the test is on a sum, the pointer only moves forward.
            for name in set(assigned) - tested:
                if {self._update_kind(name, n) for n in assigned[name]} == {"inc"}:
                    amortised = self._forward_pointer(name, node, self.primary())
                    if amortised is not None:
                        return ONE, amortised
        if bounds or logs:
            total = ONE
            for b in bounds + logs:
                total = total + b
            return total, None
        if isinstance(node.test, ast.Constant) and node.test.value:
            self.analyzer.unsure(f"line {node.lineno}: `while True` bound assumed linear")
        else:
            self.analyzer.unsure(f"line {node.lineno}: while-loop bound not recognised, assumed linear")
        return self.primary(), None

    def _update_kind(self, name: str, node: ast.AST) -> str:
        if isinstance(node, ast.AugAssign):
            op = node.op
            if isinstance(op, ast.Add | ast.Sub):
                step = self.expr_quiet(node.value).value
                if not step.is_constant():
                    if not any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.value)):
                        return "other"
                    # i += i & -i grows like doubling; i -= i & -i drops a bit: both log many steps
                    return "mul" if isinstance(op, ast.Add) else "div"
                return "inc" if isinstance(op, ast.Add) else "dec"
            if isinstance(op, ast.Mult | ast.LShift):
                return "mul"
            if isinstance(op, ast.FloorDiv | ast.Div | ast.RShift | ast.BitAnd):
                return "div"  # x &= x - 1 clears a bit per step
            return "other"
        if isinstance(node, ast.Assign):
            value = node.value
            target = node.targets[0]
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                value = next((v for t, v in zip(target.elts, value.elts, strict=True) if name_of(t) == name), value)
            if (
                isinstance(value, ast.BinOp)
                and isinstance(value.op, ast.Mod)
                and not isinstance(value.left, ast.Constant)
            ):
                return "div"  # Euclid: a % b shrinks by half every two steps
            if is_midpoint(value) or any(
                isinstance(n, ast.Name) and self.analyzer.midpoints.get(n.id) for n in ast.walk(value)
            ):
                return "mid"
            if isinstance(value, ast.BinOp) and name_of(value.left) == name:
                if isinstance(value.op, ast.Add | ast.Sub) and constant_int(value.right) is not None:
                    return "inc" if isinstance(value.op, ast.Add) else "dec"
                if isinstance(value.op, ast.Mult | ast.LShift):
                    return "mul"
                if isinstance(value.op, ast.FloorDiv | ast.Div | ast.RShift):
                    return "div"
            if isinstance(value, ast.Call) and call_name(value) in ("pop", "popleft"):
                return "inc"
        return "other"

    def _compared_against(self, test: ast.expr, name: str) -> Cost:
        total = ONE
        for node in ast.walk(test):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(name_of(o) == name for o in operands):
                    for o in operands:
                        if name_of(o) != name:
                            v = self.expr_quiet(o)
                            total = total + (v.length if v.kind in CONTAINERS else v.value)
        return total

    def _forward_pointer(self, name: str, node: ast.While, bound: Cost) -> Cost | None:
        """A pointer only moved forward inside an outer loop and never reset there: amortised."""
        if not self.loops:
            return None
        enclosing = self.loops[-1]
        inside = self.analyzer.ids(node)
        outside = [n for n in self.analyzer.assigned_in(enclosing.node).get(name, []) if id(n) not in inside]
        if outside:
            return None
        return enclosing.multiplier * bound

    def worklist_total(self, name: str, node: ast.While) -> Cost:
        inside = self.analyzer.ids(node)
        total = ONE
        guarded_inside = False
        for call in self.analyzer.pushes_onto(self.function).get(name, []) if self.function is not None else []:
            if id(call) in inside:
                guard = self._guard_size(node, call)
                guarded_inside = guarded_inside or guard is not None
                total = total + (guard if guard is not None else self.primary() * self.primary())
                if guard is None:
                    self.analyzer.unsure(f"line {call.lineno}: pushes onto `{name}` inside its own loop are unbounded")
            else:
                total = total + self.previous_push_sites.get(id(call), self.multiplier * self.primary())
        # What it held when made (its pushes are counted above, bounded by their guards).
        initial = self.created_length.get(name, self.env.get(name, Value()).length)
        return total + initial

    def _guard_size(self, loop: ast.While, call: ast.Call) -> Cost | None:
        """Size of the visited set/grid whose test guards a push inside a worklist loop."""
        for node in self.analyzer.nodes(loop):
            if isinstance(node, ast.If) and id(call) in self.analyzer.ids(node):
                for test in ast.walk(node.test):
                    if isinstance(test, ast.Compare) and any(isinstance(o, ast.NotIn) for o in test.ops):
                        size = self.expr_quiet(test.comparators[-1]).size
                        return size if not size.is_constant() else self._key_space(node.test)
                    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                        base = test.operand
                        while isinstance(base, ast.Subscript):
                            base = base.value
                        if isinstance(base, ast.Name):
                            return self.expr_quiet(base).size
                    if isinstance(test, ast.Compare):
                        # dist[v] == -1, nd < dist[v]: a table entry set once (or lowered) per key
                        for operand in [test.left, *test.comparators]:
                            if isinstance(operand, ast.Subscript) and isinstance(operand.value, ast.Name):
                                size = self.expr_quiet(operand.value).size
                                if not size.is_constant():
                                    return size
        return None

    def _key_space(self, test: ast.expr) -> Cost:
        """How many keys a visited set can hold: the ranges checked beside it (0 <= r < n, 0 <= c < n), else n."""
        space = ONE
        for compare in ast.walk(test):
            if isinstance(compare, ast.Compare) and not any(isinstance(o, ast.In | ast.NotIn) for o in compare.ops):
                bound = ONE
                for operand in [compare.left, *compare.comparators]:
                    value = self.expr_quiet(operand)
                    if not value.value.is_constant():
                        bound = bound + value.value
                space = space * bound
        return space if not space.is_constant() else self.primary()

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> Value:
        outer = self.multiplier
        iterations = ONE
        for generator in node.generators:
            count, element = self.iteration(generator.iter)
            iterations = iterations * count
            self.multiplier = outer * iterations
            self._bind(generator.target, element, generator.iter)
            for condition in generator.ifs:
                self.expr(condition)
        self.charge(ONE)
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            element = self.expr(node.value)
        else:
            element = self.expr(node.elt)
        self.multiplier = outer
        kind = {"ListComp": "seq", "SetComp": "set", "DictComp": "dict", "GeneratorExp": "iter"}[type(node).__name__]
        size = iterations * (element.size if element.kind in CONTAINERS else ONE)
        return Value(kind, length=iterations, size=size, element=element, fresh=kind != "iter")

    _expr_ListComp = _comprehension
    _expr_SetComp = _comprehension
    _expr_DictComp = _comprehension
    _expr_GeneratorExp = _comprehension


def _break_guards(loop: ast.While) -> set[str]:
    """Names tested by the ``if ...: break`` statements directly in a loop's body."""
    names: set[str] = set()
    for statement in loop.body:
        if isinstance(statement, ast.If) and any(isinstance(s, ast.Break) for s in statement.body):
            names |= {n.id for n in ast.walk(statement.test) if isinstance(n, ast.Name)}
    return names
