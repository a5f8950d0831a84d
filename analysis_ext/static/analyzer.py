"""The analyzer: one piece of code, its entry, and the verdict.

``StaticAnalyzer`` parses the code (bounded), caches the subtree walks the
passes ask for again and again, gathers notes, assumptions and suggestions,
and runs the walk of the entry function (``analyze``); ``explain`` turns the
notes into the report's lines. Sizes come from ``SizeInference``, calls and
recursion from ``RecursionSolving``. ``analyze_static`` is the entry point.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from analysis_ext.astutil import call_name, name_of
from analysis_ext.bounds import MAX_DEPTH, MAX_NODES, parse_bounded
from analysis_ext.canonical import reduce
from analysis_ext.cost import Cost
from analysis_ext.patterns import patterns_of
from analysis_ext.static.library import PUSH_METHODS
from analysis_ext.static.recursion import RecursionSolving
from analysis_ext.static.sizes import SizeInference
from analysis_ext.static.syntax import assigned_names, is_midpoint, receiver_of
from analysis_ext.static.values import Value, _Frame, _Note
from analysis_ext.static.walker import _Walker
from analysis_ext.stdin import InputFormat, follow, reads_input


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
    program: bool = False  # a whole program reading stdin (its sizes are all n)
    stdin_format: list[dict[str, Any]] | None = None  # its input format, for the timed runs
    stdin_note: str = ""  # the format in words, or why it could not be read off the code

    @property
    def time_complexity(self) -> str:
        return reduce(self.time, self.program).label

    @property
    def space_complexity(self) -> str:
        return reduce(self.space, self.program).label

    @property
    def expressions(self) -> dict[str, str]:
        """The growth as computed, before reduction to a canonical form."""
        return {"time": self.time.render(), "space": self.space.render()}


class StaticAnalyzer(RecursionSolving, SizeInference):
    """Analyzes one piece of code; not reusable across inputs."""

    def __init__(self, code: str, entry: str | None = None, arg: str | None = None,
                 max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:  # fmt: skip
        self.tree = parse_bounded(code, max_nodes, max_depth)
        self.entry_name = entry
        self.arg = arg
        # A whole program: it reads stdin and no function was named. Its sizes are what it reads.
        self.program = entry is None and reads_input(self.tree)
        self.stdin = follow(self.tree) if self.program else InputFormat()
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
            found = self._assigned[id(loop)] = assigned_names(loop.body)
        return found

    def pushes_onto(self, function: ast.AST) -> dict[str, list[ast.Call]]:
        """The push calls (append, add, heappush...) in ``function``, by the name pushed onto, in walk order."""
        found = self._pushes.get(id(function))
        if found is None:
            found = self._pushes[id(function)] = {}
            for call in self.nodes(function):
                if not isinstance(call, ast.Call):
                    continue
                target = name_of(receiver_of(call)) if call_name(call) in PUSH_METHODS else None
                if call_name(call) == "heappush" and call.args:
                    target = name_of(call.args[0])
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

    def analyze(self) -> StaticResult:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and is_midpoint(node.value):
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
        if self.program:
            entry = None
            sizes = {"stdin": "n"}
            frame = module.run(body)
            time, space = frame.time, frame.space
        elif entry is None:
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
        notes = self.explain(time)
        reduced = reduce(time, self.program)
        if reduced.note:
            notes.insert(0, f"time {reduced.note}")
        if self.program:
            notes[:0] = self.program_notes()
        return StaticResult(
            time=time,
            space=space,
            entry=entry.name if entry else None,
            sizes=sizes,
            patterns=patterns_of(self.tree),
            notes=notes,
            suggestions=list(self.suggestions.values()),
            confidence=max(0.3, 0.9 - 0.15 * len(self.uncertain)),
            arg_kind=self.arg_kind if entry else None,
            program=self.program,
            stdin_format=self.stdin.items,
            stdin_note=self.stdin.describe() if self.program else "",
        )

    def program_notes(self) -> list[str]:
        lines = ["whole program: n is the size of its input (every number read and every line's length)"]
        if self.stdin.cases:
            lines.append(
                "test cases: the cost of one test case, in its own n (problems bound the sum of the sizes over "
                "the cases, so this is also the whole run's cost in the input's size)"
            )
        return lines

    def test_case_loop(self, node: ast.AST) -> bool:
        return id(node) in self.stdin.cases

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
