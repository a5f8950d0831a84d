"""Complexity analysis (static AST analysis, timed runs in the sandbox, LLM providers) merged into one report."""
