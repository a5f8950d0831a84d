"""Output caps: stdout and stderr past a byte budget are cut with a marker.

The budget is shared by both streams and renewed at every execution. Once it
is spent, writes from the code being executed raise ``OutputLimitExceeded`` so
that an endless printing loop ends at once instead of running into the wall
timeout. Writes from other threads are dropped silently; that includes writes
to file descriptors 1 and 2, which ipykernel forwards from a thread, so such a
loop is cut but runs until its timeout. (Interrupting the main thread from
there could land in ipykernel's own loop rather than in the user's code.)
"""

from __future__ import annotations

import threading
from typing import Any

from ipykernel.iostream import OutStream


class OutputLimitExceeded(Exception):
    """The execution printed more than this sandbox allows."""


class OutputBudget:
    """Bytes left for the current execution, shared by stdout and stderr."""

    limit = 1 << 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.used = 0
            self.exceeded = False

    def take(self, text: str) -> tuple[str, bool]:
        """Return the part of ``text`` that fits and whether the budget just ran out."""
        with self._lock:
            if self.exceeded:
                return "", False
            size = len(text.encode("utf-8", "replace"))
            if self.used + size <= self.limit:
                self.used += size
                return text, False
            room = self.limit - self.used
            kept = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
            self.used = self.limit
            self.exceeded = True
            return kept, True


budget = OutputBudget()


def marker() -> str:
    return f"\n[output truncated: this sandbox allows {budget.limit} bytes of output per execution]\n"


class CappedOutStream(OutStream):
    """ipykernel's OutStream with the shared output budget applied."""

    def write(self, string: str) -> Any:
        kept, ran_out = budget.take(string)
        if kept:
            super().write(kept)
        if ran_out:
            super().write(marker())
        if budget.exceeded and threading.current_thread() is threading.main_thread():
            raise OutputLimitExceeded(f"output limit of {budget.limit} bytes reached")
        return len(string)
