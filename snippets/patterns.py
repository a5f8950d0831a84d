"""The code patterns a search query asks for (a snippet's own come from ``SnippetStore.detect_patterns``)."""

from __future__ import annotations

import re

# Words people use for each pattern. General vocabulary, not tuned to any query set:
# a query word maps to the patterns it names; stems cover the usual endings.
# Words with a common other meaning stay out ("array" is also a Python list,
# "coin" the change-making problem, "url" a slug, "stream" a data stream,
# "depth" a tree's height): a wrong pattern pulls unrelated snippets up.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "recursion": ("recursion", "recursive", "recursively", "recurse", "recurses", "recursing"),
    "memoization": ("memo", "memoize", "memoized", "memoization", "memoise", "memoised", "cache", "cached",
                    "caching", "lru"),
    "dynamic_programming": ("dp", "dynamic", "tabulation", "knapsack", "subproblem", "subproblems"),
    "two_pointers": ("pointer", "pointers"),
    "sliding_window": ("window", "sliding"),
    "binary_search": ("bisect", "bisection", "binary"),
    "bfs": ("bfs", "breadth"),
    "dfs": ("dfs",),
    "graph": ("graph", "graphs", "node", "nodes", "edge", "edges", "vertex", "vertices", "maze",
              "network", "neighbors", "neighbours"),
    "sorting": ("sort", "sorted", "sorting", "sorts", "ordering"),
    "hashing": ("hash", "hashing", "hashmap", "dictionary", "dict", "lookup", "duplicate", "duplicates", "dedupe",
                "counting", "frequency", "frequencies"),
    "heap": ("heap", "heapq", "priority"),
    "greedy": ("greedy",),
    "backtracking": ("backtrack", "backtracking", "permutation", "permutations", "combinations", "subsets"),
    "divide_and_conquer": ("divide", "conquer", "merge"),
    "string_processing": ("string", "strings", "word", "words", "character", "characters", "palindrome",
                          "parse", "parsing"),
    "math": ("math", "prime", "primes", "factorial", "gcd", "arithmetic", "fibonacci"),
    "matrix": ("matrix", "matrices", "grid", "2d"),
    "linked_list": ("linked",),
    "tree": ("tree", "trees", "bst", "trie"),
    "stack": ("stack", "stacks", "lifo", "brackets", "parentheses"),
    "queue": ("queue", "queues", "fifo", "deque"),
    "generator": ("generator", "generators", "yield", "yields", "lazy", "lazily"),
    "class": ("class", "classes", "object", "objects", "oop"),
    "plotting": ("plot", "plots", "plotting", "chart", "charts", "graphing", "visualize", "visualise",
                 "visualization", "visualisation", "histogram", "figure", "matplotlib", "draw", "drawing"),
    "dataframe": ("dataframe", "dataframes", "pandas", "table", "tables", "csv", "spreadsheet"),
    "numpy": ("numpy", "ndarray", "vectorized", "vectorised"),
    "regex": ("regex", "regexp", "regular"),
    "file_io": ("file", "files", "disk", "filesystem"),
    "http": ("http", "https", "request", "requests", "api", "download", "web", "fetch", "endpoint"),
    "randomness": ("random", "randomly", "randomness", "shuffle", "shuffled", "sample", "sampling", "dice"),
    "datetime": ("date", "dates", "timestamp", "datetime", "calendar", "weekday", "timezone"),
}

_WORD_TO_PATTERNS: dict[str, set[str]] = {}
for _pattern, _words in SYNONYMS.items():
    for _word in _words:
        _WORD_TO_PATTERNS.setdefault(_word, set()).add(_pattern)


def query_patterns(query: str) -> list[str]:
    """The pattern names that the words of ``query`` point at ("recursive" -> recursion)."""
    found: set[str] = set()
    for word in re.findall(r"[a-z0-9]+", query.lower()):
        found |= _WORD_TO_PATTERNS.get(word, set())
        # plural and verb endings ("charts", "sorted") of the listed words
        for suffix in ("es", "s", "ed", "ing"):
            if word.endswith(suffix) and len(word) > len(suffix) + 2:
                found |= _WORD_TO_PATTERNS.get(word[: -len(suffix)], set())
    return sorted(found)
