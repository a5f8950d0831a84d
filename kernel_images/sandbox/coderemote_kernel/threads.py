"""Threads started by a cell inherit the cell's context (as Python 3.14's
``Thread(context=...)`` allows), so their output stays attached to that cell
instead of leaking into whichever cell runs next.

ipykernel keeps the current parent message in a context variable; a new
thread normally starts with an empty context and falls back to the latest
parent. Only threads created while a cell executes are changed: ipykernel's
own threads (such as the one forwarding file-descriptor output) keep the
fallback they rely on.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

cell_running = False


def install() -> None:
    init = threading.Thread.__init__
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def __init__(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._cell_context = contextvars.copy_context() if cell_running else None  # type: ignore[attr-defined]

    def _bootstrap_inner(self: threading.Thread) -> None:
        context = getattr(self, "_cell_context", None)
        if context is None:
            bootstrap(self)
        else:
            context.run(bootstrap, self)

    threading.Thread.__init__ = __init__  # type: ignore[method-assign]
    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]
