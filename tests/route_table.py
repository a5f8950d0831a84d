"""Every route a plain Jupyter Server answers on this machine, with every
server extension its configuration enables (JupyterLab, terminals, the
language servers, the coderemote extension, whatever else pip installed):
``python -m tests.route_table [server flags]`` prints them as JSON
``[[pattern, handler], ...]``. Also: a path that a route's pattern matches.
"""

from __future__ import annotations

import json
import os
import re
import sys
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_CATEGORY_SAMPLE = {sre.CATEGORY_DIGIT: "0", sre.CATEGORY_WORD: "a", sre.CATEGORY_SPACE: " "}


def _sample(parsed: Any) -> str:
    out = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            out.append(chr(arg))
        elif op is sre.NOT_LITERAL:
            out.append("b" if chr(arg) == "a" else "a")
        elif op is sre.ANY:
            out.append("a")
        elif op is sre.IN:
            out.append(_sample_class(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, item = arg
            # "x?" is left out (a trailing "/?" would only redirect); "x*" and "x+" once
            out.append(_sample(item) * (low if high == 1 else max(low, 1)))
        elif op is sre.SUBPATTERN:
            out.append(_sample(arg[-1]))
        elif op is sre.BRANCH:
            out.append(_sample(arg[1][0]))
        elif op is sre.CATEGORY:
            out.append(_CATEGORY_SAMPLE[arg])
        # AT (anchors), assertions and group references add nothing
    return "".join(out)


def _sample_class(items: list[tuple[Any, Any]]) -> str:
    if items and items[0][0] is sre.NEGATE:
        excluded = {chr(arg) for op, arg in items[1:] if op is sre.LITERAL}
        return next(c for c in "abc" if c not in excluded)
    op, arg = items[0]
    if op is sre.LITERAL:
        return chr(arg)
    if op is sre.RANGE:
        return chr(arg[0])
    return _CATEGORY_SAMPLE[arg]


def sample_path(pattern: str) -> str:
    """A path that ``pattern`` (a route's regex) matches."""
    path = _sample(sre_parse.parse(pattern))
    assert re.fullmatch(pattern, path), (pattern, path)
    return path


def main(argv: list[str]) -> None:
    from jupyter_server.serverapp import ServerApp

    from kernel_gateway_ext.service_mode import handler_rules, route_pattern

    app = ServerApp.instance()
    app.initialize(argv=argv, new_httpserver=False)
    rows = [
        [route_pattern(rule), f"{rule.target.__module__}.{rule.target.__qualname__}"]
        for _, rule in handler_rules(app.web_app)
    ]
    print(json.dumps(rows), flush=True)
    os._exit(0)  # the extensions' background threads need no goodbye


if __name__ == "__main__":
    main(sys.argv[1:])
