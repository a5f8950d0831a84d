"""Output caps: every kind of output counts against one byte budget per execution.

stdout and stderr past the budget are cut with a marker. Every other message
the kernel sends for an execution (display_data, update_display_data,
execute_result, input prompts, comm messages, clear_output...) is counted by
its JSON size in ``capped_send``: one that does not fit is dropped, an error's
traceback is shortened to fit, a prompt is cut. The budget is renewed at every
execution. Once it is spent, output from the code being executed raises
``OutputLimitExceeded`` so
that an endless printing loop ends at once instead of running into the wall
timeout. Writes from other threads are dropped silently; that includes writes
to file descriptors 1 and 2, which ipykernel forwards from a thread, so such a
loop is cut but runs until its timeout. (Interrupting the main thread from
there could land in ipykernel's own loop rather than in the user's code.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
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

    def take_bytes(self, size: int) -> bool:
        """Count ``size`` bytes if they fit (and say so); else the budget runs out."""
        with self._lock:
            if not self.exceeded and self.used + size <= self.limit:
                self.used += size
                return True
            self.used = self.limit
            self.exceeded = True
            return False

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)


budget = OutputBudget()

# Messages that carry no output of the code: the kernel's own bookkeeping.
UNCOUNTED = {
    "status",
    "execute_input",
    "execute_reply",
    "kernel_info_reply",
    "complete_reply",
    "inspect_reply",
    "is_complete_reply",
    "history_reply",
    "comm_info_reply",
    "shutdown_reply",
    "interrupt_reply",
    "debug_reply",
    "debug_event",
}
# Each message costs at least this much, so a flood of tiny ones is bounded too.
MESSAGE_COST = 256
# An error always gets through, with its traceback shortened to about this much.
ERROR_BYTES = 16 * 1024
PROMPT_CHARS = 1024


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


def _size(content: Any, buffers: Any) -> int:
    size = len(json.dumps(content, default=str, ensure_ascii=False).encode("utf-8", "replace"))
    return max(size + sum(memoryview(b).nbytes for b in buffers or ()), MESSAGE_COST)


def _short_error(content: dict[str, Any]) -> dict[str, Any]:
    """The error with its value and the end of its traceback within ERROR_BYTES."""
    room = min(max(budget.left, ERROR_BYTES // 4), ERROR_BYTES)
    lines = [str(line) for line in content.get("traceback", [])]
    kept: list[str] = []
    for line in reversed(lines):
        room -= len(line.encode("utf-8", "replace"))
        if room < 0:
            break
        kept.insert(0, line)
    if len(kept) < len(lines):
        kept.insert(0, f"[traceback shortened: {len(lines) - len(kept)} lines left out]")
    return {**content, "evalue": str(content.get("evalue", ""))[:1000], "traceback": kept}


def capped_send(send: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a kernel Session's ``send`` so that every message of an execution
    counts against the budget (streams are counted where they are written)."""

    def capped(stream: Any, msg_or_type: Any, content: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(msg_or_type, dict):
            kind, content = msg_or_type["header"]["msg_type"], msg_or_type.get("content", content)
        else:
            kind = msg_or_type
        if kind == "execute_reply" and (content or {}).get("status") == "error":
            content = _short_error(content)  # the reply repeats the error
        elif kind == "stream" or kind in UNCOUNTED:
            return send(stream, msg_or_type, content, *args, **kwargs)
        elif kind == "error":
            content = _short_error(content or {})
            budget.take_bytes(min(_size(content, None), budget.left))
        elif kind == "input_request":
            prompt = str((content or {}).get("prompt", ""))[:PROMPT_CHARS]
            content = {**(content or {}), "prompt": prompt}
            budget.take_bytes(min(_size(content, None), budget.left))
        else:
            already = budget.exceeded
            if not budget.take_bytes(_size(content, kwargs.get("buffers"))):
                if not already:
                    parent = kwargs.get("parent", args[0] if args else None)
                    if isinstance(msg_or_type, dict):
                        parent = msg_or_type.get("parent_header", parent)
                    send(stream, "stream", {"name": "stderr", "text": marker()}, parent, ident=kwargs.get("ident"))
                if threading.current_thread() is threading.main_thread():
                    raise OutputLimitExceeded(f"output limit of {budget.limit} bytes reached")
                return None
        if isinstance(msg_or_type, dict):
            msg_or_type = {**msg_or_type, "content": content}
            return send(stream, msg_or_type, *args, **kwargs)
        return send(stream, msg_or_type, content, *args, **kwargs)

    return capped
