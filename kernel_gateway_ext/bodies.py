"""The one parser of the API's JSON request bodies, and the request limits the
API handlers check before a body is read."""

from __future__ import annotations

import json
import math
from typing import Any

from tornado import web

# What a JSON body may hold. No request of the API nests deeper than a few
# levels; integers beyond 64 bits and non-finite floats (1e400 is ``inf``) fit
# neither the services nor the database.
MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**63 - 1
# The longest request target (path and query string) and headers the API
# handlers answer; longer ones get 414 and 431. Tornado itself drops the
# connection without a response when the request line and headers together pass
# its ``max_header_size`` (64 KiB, raised by the service, see service_mode.py).
MAX_URI_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 64 * 1024


class MalformedBody(ValueError):
    """A JSON body the API refuses; the message says why (answered 400)."""


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:24]}..."


def _json_int(text: str) -> int:
    # Checked on the digits first: int() refuses more than 4300 of them anyway.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INT:
        raise MalformedBody(f"the integer {_short(text)} is out of range (at most 2**63-1)")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedBody(f"the number {_short(text)} is out of range")
    return value


def _json_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not JSON")


def _where(path: tuple[str | int, ...]) -> str:
    """``$.tags[2]``-style place of a value in the body, for messages."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{_short(p)}" for p in path)


def _check_text(text: str, path: tuple[str | int, ...], what: str, forbid_nul: bool) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedBody(
            f"{what} at {_where(path)} holds a lone UTF-16 surrogate (\\u{ord(text[e.start]):04x}): not Unicode text"
        ) from None
    if forbid_nul and "\x00" in text:
        raise MalformedBody(f"{what} at {_where(path)} holds a NUL character (\\u0000), which cannot be stored")


def check_json_value(value: Any, *, forbid_nul: bool = False, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise MalformedBody unless every string (keys too) of ``value`` encodes as
    UTF-8 (and, with ``forbid_nul``, holds no NUL) and it nests at most ``max_depth``
    deep. Walks with a stack of its own, never by recursion."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            _check_text(item, path, "a string", forbid_nul)
            continue
        if not isinstance(item, dict | list):
            continue
        if len(path) >= max_depth:
            raise MalformedBody(f"the body nests deeper than {max_depth} levels (at {_where(path)})")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, path, "a key", forbid_nul)
                pending.append((child, (*path, key)))
        else:
            pending.extend((child, (*path, i)) for i, child in enumerate(item))


def parse_json_body(body: bytes, *, max_bytes: int, forbid_nul: bool = False) -> dict[str, Any]:
    """THE parser of the API's JSON request bodies: a JSON object, or an HTTP
    error with a message (413 when larger than ``max_bytes``, else 400) for
    every way a body can be malformed: empty, not UTF-8, not JSON, NaN or out
    of range numbers, nested too deep for the decoder or the API, a lone UTF-16
    surrogate in any string (``json.loads`` accepts ``"\\ud800"``; such text
    fails when encoded later), a NUL character (with ``forbid_nul``, for text
    that goes to PostgreSQL), or not an object."""
    if len(body) > max_bytes:
        raise web.HTTPError(413, f"the request body is larger than {max_bytes} bytes")
    if not body.strip():
        raise web.HTTPError(400, "the request body is empty: send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise web.HTTPError(400, f"the request body is not UTF-8 (byte {e.start}): send a JSON object in UTF-8") from e
    try:
        value = json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
        check_json_value(value, forbid_nul=forbid_nul)
    except MalformedBody as e:
        raise web.HTTPError(400, f"the request body is refused: {e}") from e
    except RecursionError as e:
        raise web.HTTPError(400, f"the request body nests too deeply (at most {MAX_JSON_DEPTH} levels)") from e
    except ValueError as e:  # JSONDecodeError, int() of too many digits
        raise web.HTTPError(400, f"the request body is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise web.HTTPError(400, f"the request body must be a JSON object, not {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
