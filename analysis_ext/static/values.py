"""What the static walker knows about values, loops and walked bodies.

``Value`` is an abstract value (an int's magnitude, a container's length and
element count, as growth expressions); ``_Loop`` is an enclosing loop on the
walker's stack; ``_Frame`` collects the results of walking one function body
once; ``_Note`` is a costed line of explanation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from analysis_ext.cost import ONE, Cost

CONTAINERS = {"seq", "set", "dict", "str"}


@dataclass
class Value:
    """What the walker knows about a value."""

    kind: str = "other"  # int | seq | set | dict | str | iter | function | module | stdin | stdout | reader | other
    value: Cost = ONE  # an int's magnitude
    length: Cost = ONE  # a container's len()
    size: Cost = ONE  # elements held, nested containers included
    element: Value | None = None  # the elements' shape, for nested containers
    fresh: bool = False  # allocated here (not the caller's input)
    function: ast.FunctionDef | None = None
    closure: dict[str, Value] | None = None
    module: str = ""  # for kind "module": the imported module's name; "reader": what it reads
    read: bool = False  # read from stdin (a line, its tokens, the numbers in them)
    lambda_node: ast.Lambda | None = None  # for kind "function" bound to a lambda

    def merged(self, other: Value) -> Value:
        kind = self.kind if self.kind != "other" else other.kind
        return Value(kind, self.value + other.value, self.length + other.length, self.size + other.size,
                     self.element or other.element, self.fresh or other.fresh,
                     read=self.read or other.read)  # fmt: skip


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
