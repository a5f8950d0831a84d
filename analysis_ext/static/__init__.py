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

from analysis_ext.static.analyzer import StaticAnalyzer, StaticResult, analyze_static
from analysis_ext.static.sizes import ARG_KINDS, SIZE_VARS
from analysis_ext.static.values import Value

__all__ = ["ARG_KINDS", "SIZE_VARS", "StaticAnalyzer", "StaticResult", "Value", "analyze_static"]
