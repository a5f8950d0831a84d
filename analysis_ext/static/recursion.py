"""Recursion: the cost of calling the code's own functions.

``RecursionSolving``, the analyzer's mixin that walks a called function once
per kind of arguments (cached), and solves a recursive one from how many calls
each invocation makes and how the argument shrinks: by one (linear depth;
exponential or factorial with several calls or a loop), by a fraction (the
master theorem), or memoized (the number of distinct states).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any, cast

from analysis_ext.astutil import cached_by_decorator, has_memo_check, name_of
from analysis_ext.cost import ONE, Cost
from analysis_ext.static.syntax import calls_per_path, divides
from analysis_ext.static.values import Value, _Frame
from analysis_ext.static.walker import _Walker

if TYPE_CHECKING:
    from analysis_ext.static.analyzer import StaticAnalyzer


class RecursionSolving:
    """Calls and recursion (a mixin of ``StaticAnalyzer``)."""

    if TYPE_CHECKING:
        primary: Cost
        calls: dict[Any, tuple[Cost, Cost, Cost, Cost, _Frame]]
        recursion_notes: list[str]
        _quiet: int

        def note(self, cost: Cost, text: str) -> None: ...
        def suggest_once(self, key: str, text: str) -> None: ...

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
            # Walked once, whichever pass of the caller asks first: its notes are the function's, keep them.
            quiet, self._quiet = self._quiet, 0
            try:
                self.calls[key] = self._walk_call(caller, target, args)
            finally:
                self._quiet = quiet
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
        walker = _Walker(cast("StaticAnalyzer", self), env, (*caller.stack, function), function)
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
        # functools.cache / lru_cache (not cached_property: one value per instance, no states), or a memo table.
        memoized = cached_by_decorator(function) or has_memo_check(function)
        looped = any(not multiplier.is_constant() for _, multiplier in sites)
        branches = calls_per_path(function.body, {id(call) for call, _ in sites})
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
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and divides(n.value)
        }
        for call, _ in sites:
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                if divides(arg) or any(isinstance(n, ast.Name) and n.id in halving for n in ast.walk(arg)):
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
            if any(i < len(call.args) and name_of(call.args[i]) != p for call, _ in sites):
                if not magnitudes.get(p, ONE).is_constant() or p in ("i", "j", "k", "index", "start", "pos"):
                    varying.append(p)
        return varying
