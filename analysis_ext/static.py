"""Static complexity analysis: walk a function's syntax tree and count.

The walker keeps, for every local name, what it knows about the value (an
int's magnitude, a container's length and element count) as growth
expressions (``analysis_ext.cost``), and adds to a running time total the cost
of every operation times the product of the enclosing loops' iteration counts.
Loops get their counts from what bounds them (``range(len(x))``, a variable
halved or doubled, a binary search's midpoint, a worklist drained by ``pop``);
loops that are amortised over an outer loop (a monotonic stack, a pointer that
only moves forward, a DFS guarded by a visited set) are charged once for the
whole function. Recursion is solved from how many calls each invocation makes
and how the argument shrinks, with memoization collapsing it to the number of
distinct states. Space is the largest set of allocations that grows with the
input (containers built, slices, results, recursion depth). Early exits do
not lower a bound: the report is the worst case.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Any

from analysis_ext.bounds import MAX_DEPTH, MAX_NODES, parse_bounded
from analysis_ext.cost import ONE, Cost
from analysis_ext.patterns import patterns_of

ARG_KINDS = ("list", "int", "str", "two_lists")
SIZE_VARS = ("n", "m")
_CONTAINERS = {"seq", "set", "dict", "str"}
_CACHE_DECORATORS = {"cache", "lru_cache"}
_LAZY = {"range", "enumerate", "zip", "reversed", "iter", "map", "filter"}
_SCALAR_BUILTINS = {
    "abs", "ord", "chr", "int", "float", "bool", "isinstance", "divmod", "pow", "hash", "id", "round", "type",
    "callable", "getattr", "setattr", "hasattr", "print", "repr", "format", "input", "next", "object", "super",
}  # fmt: skip
_LINEAR_BUILTINS = {"sum", "min", "max", "any", "all", "list", "tuple", "set", "frozenset", "dict", "str", "Counter",
                    "deque", "bytes", "bytearray", "OrderedDict"}  # fmt: skip
_ALLOCATING = {"list": "seq", "tuple": "seq", "set": "set", "frozenset": "set", "dict": "dict",
               "Counter": "dict", "deque": "seq", "bytes": "str", "bytearray": "seq",
               "OrderedDict": "dict", "defaultdict": "dict"}  # fmt: skip
_STR_LINEAR_METHODS = {"split", "strip", "lstrip", "rstrip", "lower", "upper", "replace", "find", "rfind", "count",
                       "index", "title", "capitalize", "encode", "decode", "isdigit", "isalpha",
                       "isalnum", "swapcase", "casefold", "splitlines", "translate", "zfill",
                       "center", "ljust", "rjust"}  # fmt: skip
_DEQUE_HINT = "list.insert(0, x) / pop(0) shift the whole list: use collections.deque."
_CONSTANT_MODULES = {"math", "cmath", "random", "time", "operator", "string", "secrets", "datetime", "os", "sys"}
_PUSH_METHODS = {"append", "add", "appendleft", "push"}
_INT_NAMES = {"n", "k", "num", "number", "count", "limit", "amount", "steps", "size", "total", "target_sum", "height"}
_STR_NAMES = {"s", "text", "word", "string", "sentence", "line", "name", "pattern"}
_SEQUENCE_CONSUMERS = {"sorted", "enumerate", "zip", "reversed", "sum", "min", "max", "any", "all", "list", "tuple",
                       "set", "frozenset", "Counter", "deque", "heapify"}  # fmt: skip
_MODULE_FUNCTIONS = {"heappush", "heappop", "heappushpop", "heapreplace", "heapify", "nlargest", "nsmallest",
                     "bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right", "deepcopy",
                     "permutations", "combinations", "product", "accumulate", "chain"}  # fmt: skip


@dataclass
class Value:
    """What the walker knows about a value."""

    kind: str = "other"  # int | seq | set | dict | str | iter | function | other
    value: Cost = ONE  # an int's magnitude
    length: Cost = ONE  # a container's len()
    size: Cost = ONE  # elements held, nested containers included
    element: Value | None = None  # the elements' shape, for nested containers
    fresh: bool = False  # allocated here (not the caller's input)
    function: ast.FunctionDef | None = None
    closure: dict[str, Value] | None = None
    module: str = ""  # for kind "module": the imported module's name

    def merged(self, other: Value) -> Value:
        kind = self.kind if self.kind != "other" else other.kind
        return Value(kind, self.value + other.value, self.length + other.length, self.size + other.size,
                     self.element or other.element, self.fresh or other.fresh)  # fmt: skip


@dataclass
class StaticResult:
    """The static analyzer's verdict for one entry function (or the module's top level)."""

    time: Cost
    space: Cost
    entry: str | None
    sizes: dict[str, str]
    patterns: list[str]
    notes: list[str]
    suggestions: list[str]
    confidence: float
    arg_kind: str | None = None  # the entry's input kind, when it can be measured

    @property
    def time_complexity(self) -> str:
        return self.time.render()

    @property
    def space_complexity(self) -> str:
        return self.space.render()


@dataclass
class _Note:
    cost: Cost
    text: str


@dataclass
class _Loop:
    multiplier: Cost  # the multiplier outside the loop
    node: ast.For | ast.While


@dataclass
class _Frame:
    """Results of walking one function body once."""

    time: Cost = ONE
    space: Cost = ONE
    returns: Value | None = None
    recursive_sites: list[tuple[ast.Call, Cost]] = field(default_factory=list)
    outer_pushes: dict[str, Cost] = field(default_factory=dict)
    popped: set[str] = field(default_factory=set)  # containers this body also shrinks


def _name(node: ast.AST | None) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _call_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def _receiver(call: ast.Call) -> ast.expr | None:
    return call.func.value if isinstance(call.func, ast.Attribute) else None


def _constant_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constant_int(node.operand)
        return None if inner is None else -inner
    return None


def _additive_terms(node: ast.expr) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _additive_terms(node.left) + _additive_terms(node.right)
    return [ast.dump(node)]


def _assigned_names(nodes: list[ast.stmt]) -> dict[str, list[ast.AST]]:
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


def _is_midpoint(node: ast.AST) -> bool:
    """``(a + b) // 2``, ``a + (b - a) // 2`` or ``(a + b) >> 1``."""
    return any(
        isinstance(sub, ast.BinOp)
        and isinstance(sub.op, ast.FloorDiv | ast.RShift | ast.Div)
        and (_constant_int(sub.right) in (1, 2))
        and isinstance(sub.left, ast.BinOp)
        for sub in ast.walk(node)
    )


class _Walker:
    """Walks one function (or module) body; see the module docstring."""

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
        self.local_names |= set(_assigned_names(body))
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
        value = self.expr(node.value)
        for target in node.targets:
            self._bind(target, value, node.value)

    def _stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, self.expr(node.value), node.value)

    def _stmt_AugAssign(self, node: ast.AugAssign) -> None:
        value = self.expr(node.value)
        name = _name(node.target)
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
            isinstance(n, ast.comprehension) and _name(n.iter) == name for n in ast.walk(value)
        )

    def _double(self, name: str, node: ast.AST) -> None:
        grown = (self.multiplier / self.created_at.get(name, ONE)).exp()
        self.analyzer.note(grown, f"line {node.lineno}: `{name}` doubles on every pass of the loop")  # type: ignore[attr-defined]
        self.charge(grown)
        self.grown[name] = grown
        self.push(name, grown / self.multiplier, node)

    def _bind(self, target: ast.expr, value: Value, source: ast.expr) -> None:
        if isinstance(target, ast.Name):
            if value.fresh and value.kind in _CONTAINERS:
                self.created_at[target.id] = self.multiplier
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
            base = _name(target.value)
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

    def _stmt_For(self, node: ast.For) -> None:
        iterations, element = self.iteration(node.iter)
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
        if amortised is not None:
            self.analyzer.note(amortised, f"line {node.lineno}: loop amortised to {amortised.render()} in all")
        self._loop(node, iterations, per_body=amortised)

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
                left = [t for t in _additive_terms(upper) if t not in _additive_terms(lower)]
                count = ONE if len(_additive_terms(upper)) > 1 and not left else args[1].value
            if len(args) == 3 and _constant_int(node.args[2]) is None:
                count = count / args[2].value
            return count, Value("int", value=args[-1 if len(args) < 3 else 1].value)
        if isinstance(node, ast.Call):
            name = _call_name(node)
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
            if name in ("items", "keys", "values") and _receiver(node) is not None:
                container = self.expr(_receiver(node))  # type: ignore[arg-type]
                return container.length, Value("seq", element=container.element)
            if name in ("permutations", "combinations", "product") and node.args:
                base = self.expr(node.args[0]).length
                if name == "permutations":
                    return base.factorial(), Value("seq")
                r = _constant_int(node.args[1]) if len(node.args) > 1 else None
                if name == "product":
                    repeat = next((k.value for k in node.keywords if k.arg == "repeat"), None)
                    r = _constant_int(repeat) if repeat is not None else r
                # C(n, r) <= n^r and len(product(x, repeat=r)) = n^r, in closed form: r is the user's literal.
                return base.power(max(r or 2, 1)), Value("seq")
        value = self.expr(node)
        if value.kind == "int":
            return value.value, Value("int")
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = [self.expr_quiet(e) for e in node.elts]
            element = elements[0] if elements else Value()
            return ONE, element
        return value.length, value.element or Value("other")

    def while_iterations(self, node: ast.While) -> tuple[Cost, Cost | None]:
        """Iterations per entry of a while loop, or the amortised total over the function."""
        assigned = _assigned_names(node.body)
        tested = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
        popped = {
            _name(_receiver(c)) or (_name(c.args[0]) if c.args else None)
            for c in ast.walk(node)
            if isinstance(c, ast.Call) and _call_name(c) in ("pop", "popleft", "heappop", "popitem")
        }
        # A worklist drained by pop: amortised over all pushes of the function.
        for name in tested & popped:  # type: ignore[operator]
            if self.env.get(name, Value()).kind in _CONTAINERS:
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
                logs.append((other + current.value).log())
            elif kinds <= {"inc", "dec"}:
                amortised = self._forward_pointer(name, node, other + current.value)
                if amortised is not None:
                    return ONE, amortised
                bounds.append(other + current.value)
                self.env[name] = replace(current, kind="int", value=other + current.value)
            else:
                bounds.append(other + current.value)
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
                    return (
                        "mul"
                        if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.value))
                        else "other"
                    )
                return "inc" if isinstance(op, ast.Add) else "dec"
            if isinstance(op, ast.Mult | ast.LShift):
                return "mul"
            if isinstance(op, ast.FloorDiv | ast.Div | ast.RShift):
                return "div"
            return "other"
        if isinstance(node, ast.Assign):
            value = node.value
            target = node.targets[0]
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                value = next((v for t, v in zip(target.elts, value.elts, strict=True) if _name(t) == name), value)
            if (
                isinstance(value, ast.BinOp)
                and isinstance(value.op, ast.Mod)
                and not isinstance(value.left, ast.Constant)
            ):
                return "div"  # Euclid: a % b shrinks by half every two steps
            if _is_midpoint(value) or any(
                isinstance(n, ast.Name) and self.analyzer.midpoints.get(n.id) for n in ast.walk(value)
            ):
                return "mid"
            if isinstance(value, ast.BinOp) and _name(value.left) == name:
                if isinstance(value.op, ast.Add | ast.Sub) and _constant_int(value.right) is not None:
                    return "inc" if isinstance(value.op, ast.Add) else "dec"
                if isinstance(value.op, ast.Mult | ast.LShift):
                    return "mul"
                if isinstance(value.op, ast.FloorDiv | ast.Div | ast.RShift):
                    return "div"
            if isinstance(value, ast.Call) and _call_name(value) in ("pop", "popleft"):
                return "inc"
        return "other"

    def _compared_against(self, test: ast.expr, name: str) -> Cost:
        total = ONE
        for node in ast.walk(test):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_name(o) == name for o in operands):
                    for o in operands:
                        if _name(o) != name:
                            v = self.expr_quiet(o)
                            total = total + (v.length if v.kind in _CONTAINERS else v.value)
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
        initial = self.env.get(name, Value()).length
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
            power = _constant_int(node.right)
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
        return Value("function")

    def _expr_Attribute(self, node: ast.Attribute) -> Value:
        self.expr(node.value)
        return Value()

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
            remaining = [t for t in _additive_terms(node.upper) if t not in _additive_terms(node.lower)]
            if len(remaining) < len(_additive_terms(node.upper)):
                if not remaining:
                    return ONE
                parts = node.upper
                kept = [p for p in _flatten_add(parts) if ast.dump(p) in remaining]
                total = ONE
                for p in kept:
                    total = total + self.expr_quiet(p).value
                return total
            if _constant_int(node.lower) is not None and _constant_int(node.upper) is not None:
                return ONE
            return upper.value if upper.kind == "int" and not upper.value.is_constant() else base.length
        upper_constant = _constant_int(node.upper) if node.upper is not None else None
        lower_constant = _constant_int(node.lower) if node.lower is not None else None
        if upper_constant is not None and upper_constant >= 0:
            return ONE  # x[:3]
        if lower_constant is not None and lower_constant < 0:
            return ONE  # x[-3:]
        return base.length

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
        size = iterations * (element.size if element.kind in _CONTAINERS else ONE)
        return Value(kind, length=iterations, size=size, element=element, fresh=kind != "iter")

    _expr_ListComp = _comprehension
    _expr_SetComp = _comprehension
    _expr_DictComp = _comprehension
    _expr_GeneratorExp = _comprehension

    # -- calls ------------------------------------------------------------

    def _expr_Call(self, node: ast.Call) -> Value:
        name = _call_name(node)
        receiver = _receiver(node)
        if isinstance(node.func, ast.Name):
            target = self.env.get(name)
            if target is not None and target.kind == "function" and target.function is not None:
                args = [self.expr(a) for a in node.args]
                for keyword in node.keywords:
                    self.expr(keyword.value)
                return self.analyzer.call(self, target, node, args)
            return self._builtin(node, name)
        if receiver is not None:
            base = self.expr(receiver)
            if base.kind == "module":
                return self._module_function(node, name, base.module)
            return self._method(node, name, base, _name(receiver))
        self.expr(node.func)
        for a in node.args:
            self.expr(a)
        return Value()

    def _builtin(self, node: ast.Call, name: str) -> Value:
        if name in _MODULE_FUNCTIONS:
            return self._module_function(node, name)
        args = [self.expr(a) for a in node.args]
        for keyword in node.keywords:
            self.expr(keyword.value)
        first = args[0] if args else Value()
        if name == "len":
            return Value("int", value=first.length)
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
            self.charge(length)
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
                    self.charge(a.length if a.kind in _CONTAINERS else ONE)
            if name in ("int", "abs", "round") and first.kind == "int":
                return Value("int", value=first.value)
            return Value("int") if name in ("int", "abs", "ord", "round", "pow", "hash") else Value()
        self.analyzer.unsure(f"line {node.lineno}: `{name}()` is not known, counted as O(1)")
        return Value()

    def _module_function(self, node: ast.Call, name: str, module: str = "") -> Value:
        args = [self.expr(a) for a in node.args]
        first = args[0] if args else Value()
        heap = _name(node.args[0]) if node.args else None
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
        if module in _CONSTANT_MODULES:
            return Value("int")  # math.*, random.*, time.*: constant work on scalars
        # numpy, pandas and the like: assume one pass over the data, and say so.
        self.charge(first.length if first.kind in _CONTAINERS else ONE)
        self.analyzer.unsure(f"line {node.lineno}: cost of `{module or '?'}.{name}()` assumed linear in its argument")
        return Value()

    def _method(self, node: ast.Call, name: str, base: Value, base_name: str | None) -> Value:
        args = [self.expr(a) for a in node.args]
        for keyword in node.keywords:
            self.expr(keyword.value)
        first = args[0] if args else Value()
        in_loop = not self.multiplier.is_constant()
        if name in _PUSH_METHODS:
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
            if node.args and _constant_int(node.args[0]) not in (-1, None):
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
        if name in _STR_LINEAR_METHODS and base.kind in ("str", "other"):
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


def _flatten_add(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _flatten_add(node.left) + _flatten_add(node.right)
    return [node]


class StaticAnalyzer:
    """Analyzes one piece of code; not reusable across inputs."""

    def __init__(self, code: str, entry: str | None = None, arg: str | None = None,
                 max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:  # fmt: skip
        self.tree = parse_bounded(code, max_nodes, max_depth)
        self.entry_name = entry
        self.arg = arg
        self.primary = Cost.var("n")
        self.bounds: dict[str, Cost] = {}
        self.midpoints: dict[str, bool] = {}
        self.notes: list[_Note] = []
        self.uncertain: list[str] = []
        self.suggestions: dict[str, str] = {}
        self.recursion_notes: list[str] = []
        self.arg_kind: str | None = arg
        self.calls: dict[Any, tuple[Cost, Cost, Cost, Cost, _Frame]] = {}
        self._quiet = 0
        # Walks of subtrees that the passes ask for again and again (once per loop, per parameter...),
        # by node id: the nodes live as long as self.tree, so the ids stay theirs.
        self._nodes: dict[int, list[ast.AST]] = {}
        self._ids: dict[int, set[int]] = {}
        self._assigned: dict[int, dict[str, list[ast.AST]]] = {}
        self._parents: dict[int, dict[int, ast.AST]] = {}
        self._pushes: dict[int, dict[str, list[ast.Call]]] = {}
        self._uses: dict[int, dict[str, list[ast.Name]]] = {}

    # -- cached walks -----------------------------------------------------

    def nodes(self, tree: ast.AST) -> list[ast.AST]:
        """``list(ast.walk(tree))``, computed once."""
        found = self._nodes.get(id(tree))
        if found is None:
            found = self._nodes[id(tree)] = list(ast.walk(tree))
        return found

    def ids(self, tree: ast.AST) -> set[int]:
        """Ids of the nodes of ``tree`` (itself included)."""
        found = self._ids.get(id(tree))
        if found is None:
            found = self._ids[id(tree)] = {id(n) for n in self.nodes(tree)}
        return found

    def assigned_in(self, loop: ast.For | ast.While) -> dict[str, list[ast.AST]]:
        found = self._assigned.get(id(loop))
        if found is None:
            found = self._assigned[id(loop)] = _assigned_names(loop.body)
        return found

    def pushes_onto(self, function: ast.AST) -> dict[str, list[ast.Call]]:
        """The push calls (append, add, heappush...) in ``function``, by the name pushed onto, in walk order."""
        found = self._pushes.get(id(function))
        if found is None:
            found = self._pushes[id(function)] = {}
            for call in self.nodes(function):
                if not isinstance(call, ast.Call):
                    continue
                target = _name(_receiver(call)) if _call_name(call) in _PUSH_METHODS else None
                if _call_name(call) == "heappush" and call.args:
                    target = _name(call.args[0])
                if target is not None:
                    found.setdefault(target, []).append(call)
        return found

    def name_uses(self, tree: ast.AST) -> dict[str, list[ast.Name]]:
        found = self._uses.get(id(tree))
        if found is None:
            found = self._uses[id(tree)] = {}
            for n in self.nodes(tree):
                if isinstance(n, ast.Name):
                    found.setdefault(n.id, []).append(n)
        return found

    def parents(self, tree: ast.AST) -> dict[int, ast.AST]:
        found = self._parents.get(id(tree))
        if found is None:
            found = self._parents[id(tree)] = {id(c): p for p in self.nodes(tree) for c in ast.iter_child_nodes(p)}
        return found

    # -- shared state -----------------------------------------------------

    class _Quiet:
        def __init__(self, analyzer: StaticAnalyzer, on: bool) -> None:
            self.analyzer, self.on = analyzer, on

        def __enter__(self) -> None:
            self.analyzer._quiet += 1 if self.on else 0

        def __exit__(self, *exc: object) -> None:
            self.analyzer._quiet -= 1 if self.on else 0

    def quiet(self, on: bool) -> StaticAnalyzer._Quiet:
        return StaticAnalyzer._Quiet(self, on)

    def note(self, cost: Cost, text: str) -> None:
        if not self._quiet:
            self.notes.append(_Note(cost, text))

    def unsure(self, text: str) -> None:
        if not self._quiet and text not in self.uncertain:
            self.uncertain.append(text)

    def suggest_once(self, key: str, text: str) -> None:
        if not self._quiet:
            self.suggestions.setdefault(key, text)

    # -- entry ------------------------------------------------------------

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
            isinstance(n, ast.Call) and _name(n.func) == f.name for n in ast.walk(f))]  # fmt: skip
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
            if isinstance(parent, ast.Call) and _name(parent.func) == "len":
                return "seq"
            if isinstance(parent, ast.For) and parent.iter is use:
                return "seq"
            if isinstance(parent, ast.comprehension) and parent.iter is use:
                return "seq"
            if isinstance(parent, ast.Subscript) and parent.value is use:
                return "seq"
            if isinstance(parent, ast.Call) and _name(parent.func) == "range":
                return "int"
            if isinstance(parent, ast.Compare) and any(
                c is use and isinstance(op, ast.In | ast.NotIn)
                for op, c in zip(parent.ops, parent.comparators, strict=True)
            ):
                return "seq"
            if isinstance(parent, ast.Call) and _name(parent.func) in _SEQUENCE_CONSUMERS:
                return "seq"
            if isinstance(parent, ast.Attribute) and parent.value is use and parent.attr in _STR_LINEAR_METHODS:
                return "str"
        for use in uses:
            parent = parents.get(id(use))
            if isinstance(parent, ast.BinOp | ast.AugAssign | ast.Compare):
                return "int"
        return None if index > 0 else "seq"

    def analyze(self) -> StaticResult:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and _is_midpoint(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.midpoints[target.id] = True
        module_env: dict[str, Value] = {}
        module = _Walker(self, module_env, (), None)
        entry = self.choose_entry()
        body = [s for s in self.tree.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
        for statement in self.tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                module_env[statement.name] = Value("function", function=statement, closure=module_env)  # type: ignore[arg-type]
        sizes: dict[str, str] = {}
        if entry is None:
            with self.quiet(True):
                frame = module.run(body)
            time, space = frame.time, frame.space
        else:
            with self.quiet(True):
                module.run([s for s in body if isinstance(s, ast.Import | ast.ImportFrom | ast.Assign)])
            params, sizes = self.parameter_values(entry)
            call = ast.Call(func=ast.Name(id=entry.name, ctx=ast.Load()), args=[], keywords=[])
            ast.copy_location(call, entry)
            outer = _Walker(self, module_env, (), None)
            self.call(outer, module_env[entry.name], call, list(params.values()))
            time, space = outer.frame.time, outer.frame.space
        time = time.substitute(self.bounds)
        space = space.substitute(self.bounds)
        return StaticResult(
            time=time,
            space=space,
            entry=entry.name if entry else None,
            sizes=sizes,
            patterns=patterns_of(self.tree),
            notes=self.explain(time),
            suggestions=list(self.suggestions.values()),
            confidence=max(0.3, 0.9 - 0.15 * len(self.uncertain)),
            arg_kind=self.arg_kind if entry else None,
        )

    def explain(self, time: Cost) -> list[str]:
        lines: list[str] = list(dict.fromkeys(self.recursion_notes))  # each walk of a call may repeat one
        seen: set[str] = set()
        target = time.render()
        ranked = sorted(self.notes, key=lambda n: n.cost.substitute(self.bounds).render() == target, reverse=True)
        for note in ranked:
            if note.text not in seen and len(lines) < 6:
                seen.add(note.text)
                lines.append(f"{note.text} (total {note.cost.substitute(self.bounds).render()})")
        lines.extend(f"assumption: {u}" for u in self.uncertain)
        return lines

    # -- calls and recursion ----------------------------------------------

    def call(self, caller: _Walker, target: Value, node: ast.Call, args: list[Value]) -> Value:
        function = target.function
        assert function is not None
        if function in caller.stack or function is caller.function:
            caller.frame.recursive_sites.append((node, caller.multiplier))
            caller.charge(ONE)
            return Value()
        if len(caller.stack) > 12:
            return Value()
        # The same function with the same kinds of arguments costs the same: walk it once.
        key = (id(function), id(target.closure), tuple((a.kind, a.value, a.length, a.size) for a in args))
        if key not in self.calls:
            self.calls[key] = self._walk_call(caller, target, args)
        calls, depth, time, space, frame = self.calls[key]
        caller.charge(time)
        if not time.is_constant() and frame.recursive_sites:
            self.note(caller.multiplier * time, f"recursion in `{function.name}` costs {time.render()}")
        caller.allocate(space)
        for name, count in frame.outer_pushes.items():
            # What a recursive call pushes and pops again (backtracking) is held once per level.
            caller.push(name, depth if name in frame.popped else count * calls, node)
        returned = frame.returns or Value()
        if returned.fresh:
            caller.allocate(returned.size)
        return returned

    def _walk_call(self, caller: _Walker, target: Value, args: list[Value]) -> tuple[Cost, Cost, Cost, Cost, _Frame]:
        function = target.function
        assert function is not None
        env = dict(target.closure or {})
        params = [a.arg for a in function.args.posonlyargs + function.args.args]
        for name, value in zip(params, args, strict=False):
            env[name] = value
        for name in params[len(args) :]:
            env.setdefault(name, Value())
        walker = _Walker(self, env, (*caller.stack, function), function)
        walker.local_names |= set(params)
        frame = walker.run(function.body)
        calls, depth, time, space = self.solve(function, walker, frame, args, params)
        return calls, depth, time, space, frame

    def solve(self, function: ast.FunctionDef, walker: _Walker, frame: _Frame, args: list[Value],
              params: list[str]) -> tuple[Cost, Cost, Cost, Cost]:  # fmt: skip
        """(calls made, recursion depth, total time, space) of one call, recursion included."""
        sites = frame.recursive_sites
        if not sites:
            return ONE, ONE, frame.time, frame.space
        magnitudes = {p: (a.value if a.kind == "int" else a.length) for p, a in zip(params, args, strict=False)}
        drivers = [p for p, m in magnitudes.items() if not m.is_constant()]
        shrink = self._shrink(function, sites, drivers)
        size = ONE
        for p in drivers:
            size = size + magnitudes[p]
        if size.is_constant():
            size = self.primary
        memoized = any(
            (isinstance(d, ast.Call) and _name(d.func) in _CACHE_DECORATORS)
            or (_name(d) in _CACHE_DECORATORS)
            or (isinstance(d, ast.Attribute) and d.attr in _CACHE_DECORATORS)
            or (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in _CACHE_DECORATORS)
            for d in function.decorator_list
        ) or _has_memo_check(function)
        looped = any(not multiplier.is_constant() for _, multiplier in sites)
        branches = _calls_per_path(function.body, {id(call) for call, _ in sites})
        local_time, local_space = frame.time, frame.space
        depth = size if shrink == "sub" else size.log()
        name = function.name
        if memoized:
            states = ONE
            varying = self._varying_params(sites, params, magnitudes) or drivers
            for p in varying:
                states = states * magnitudes.get(p, self.primary)
            if states.is_constant():
                states = size
            time = states * local_time
            self.recursion_notes.append(
                f"`{name}` is memoized: {states.render()} distinct states, {local_time.render()} work each"
            )
            return states, depth, time, states + depth + local_space
        if shrink == "sub":
            if looped:
                time = size.factorial()
                self.recursion_notes.append(
                    f"`{name}` recurses from inside a loop with the problem shrinking by one: {time.render()}"
                )
                self.suggest_once("backtrack", "Backtracking explores every ordering; prune early or memoize states.")
            elif branches >= 2:
                time = size.exp()
                self.recursion_notes.append(
                    f"`{name}` makes {branches} recursive calls and the argument shrinks by a constant: {time.render()}"
                )
                self.suggest_once("memo", "Repeated subproblems: memoize with functools.cache or build a table.")
            else:
                time = size * local_time
                self.recursion_notes.append(f"`{name}` recurses {size.render()} deep, one call per level")
            return time, depth, time, depth * local_space + depth
        # Divide and conquer: T(n) = a T(n/2) + f(n), solved by the master theorem.
        var = next(iter(size.variables()), "n")
        degree = local_time.degree(var)
        if looped:
            branches = 3
        if branches == 1:
            time = local_time * size.log() if degree == 0 else local_time
        elif branches == 2:
            if degree == 0:
                time = size
            elif degree == 1:
                time = local_time * size.log()
            else:
                time = local_time
        else:
            time = size * size if degree <= 1 else local_time * size.log()
        self.recursion_notes.append(
            f"`{name}` makes {branches} call(s) on half the input with {local_time.render()} work per call: "
            f"{time.render()}"
        )
        space = local_space + depth
        return time, depth, time, space

    def _shrink(self, function: ast.FunctionDef, sites: list[tuple[ast.Call, Cost]], drivers: list[str]) -> str:
        halving = {
            n.targets[0].id
            for n in ast.walk(function)
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and _divides(n.value)
        }
        for call, _ in sites:
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                if _divides(arg) or any(isinstance(n, ast.Name) and n.id in halving for n in ast.walk(arg)):
                    return "div"
        return "sub"

    def _varying_params(self, sites: list[tuple[ast.Call, Cost]], params: list[str],
                        magnitudes: dict[str, Cost]) -> list[str]:  # fmt: skip
        varying = []
        for i, p in enumerate(params):
            if magnitudes.get(p, ONE).is_constant() and not any(
                i < len(call.args) and ast.dump(call.args[i]) != ast.dump(ast.Name(id=p, ctx=ast.Load()))
                for call, _ in sites
            ):
                continue
            if any(i < len(call.args) and _name(call.args[i]) != p for call, _ in sites):
                if not magnitudes.get(p, ONE).is_constant() or p in ("i", "j", "k", "index", "start", "pos"):
                    varying.append(p)
        return varying


def _calls_per_path(body: list[ast.stmt], sites: set[int]) -> int:
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


def _divides(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.FloorDiv | ast.Div | ast.RShift)
        and _constant_int(n.right) in (1, 2, 3, 4)
        for n in ast.walk(node)
    ) or _is_midpoint(node)


def _has_memo_check(function: ast.FunctionDef) -> bool:
    stored = {
        t.value.id
        for n in ast.walk(function)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
    }
    for node in ast.walk(function):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            container = _name(node.comparators[-1])
            if container in stored:
                return True
    return False


def analyze_static(
    code: str, entry: str | None = None, arg: str | None = None, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> StaticResult:
    """Static time and space complexity of ``entry`` (default: the code's main function).

    Raises SyntaxError, ValueError (no such entry, null bytes) and CodeLimitError
    (more than ``max_nodes`` syntax-tree nodes or ``max_depth`` levels, see
    ``analysis_ext.bounds``). Run it in the analysis worker (``analysis_ext.worker``),
    never on the server's event loop: it is CPU work with no deadline of its own.
    """
    return StaticAnalyzer(code, entry, arg, max_nodes, max_depth).analyze()
