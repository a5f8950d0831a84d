"""Files into and out of a run's sandbox (``files`` and ``return_files`` of POST
execute and of submissions).

``files`` are written into the sandbox's working directory (``/workspace``)
before the code runs, by a short execution of the sandbox's own kernel; after
the run, the files matching ``return_files`` (glob patterns, ``**`` for any
depth) are read back the same way and come back in the result as ``files``:
``{path, encoding: "utf8" | "base64", content, size}``, text when it is
UTF-8, base64 otherwise. Both happen inside the sandbox, never on the host:
the host only checks the request (relative paths without ``..``, limits on
count and size) and the shape of what the sandbox sends back. Only regular
files are written and read (not through a link), and what is read back is
capped (a file past the cap is listed with ``skipped`` instead of content).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kernel_gateway_ext.base import RequestError

MAX_PATH = 255
ENCODINGS = ("utf8", "base64")


@dataclass(frozen=True)
class FileIn:
    path: str
    data: bytes


def _relative_path(value: Any, what: str, pattern: bool = False) -> str:
    """``value`` if it is a relative path (or glob pattern) that stays in the working directory."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PATH:
        raise RequestError(400, f"{what} must be a path of 1-{MAX_PATH} characters")
    if "\x00" in value or "\\" in value or not value.isprintable():
        raise RequestError(400, f"{what} may hold no NUL, backslash or control characters")
    parts = value.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise RequestError(400, f"{what} must be relative to the working directory, without '..', '.' or '//'")
    if not pattern and any(c in value for c in "*?["):
        raise RequestError(400, f"{what} may not hold glob characters (*, ?, [)")
    return str(PurePosixPath(value))


def files_in(value: Any, max_files: int, max_bytes: int) -> list[FileIn]:
    """The ``files`` of a request, decoded and checked against the limits."""
    if not isinstance(value, list):
        raise RequestError(400, "'files' must be a list of {path, content, encoding}")
    if len(value) > max_files:
        raise RequestError(400, f"at most {max_files} files may be sent")
    files: list[FileIn] = []
    total = 0
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not {"path", "content"} <= set(item) <= {"path", "content", "encoding"}:
            raise RequestError(400, f"files[{i}] must be {{path, content, encoding}}")
        path = _relative_path(item["path"], f"files[{i}].path")
        encoding, content = item.get("encoding", "utf8"), item["content"]
        if encoding not in ENCODINGS or not isinstance(content, str):
            raise RequestError(400, f"files[{i}]: 'content' must be a string and 'encoding' one of utf8, base64")
        total += len(content)  # bounds the decoding below (base64 only shrinks)
        if total > 2 * max_bytes:
            raise RequestError(413, f"the files are larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        except (binascii.Error, UnicodeEncodeError):
            raise RequestError(400, f"files[{i}]: 'content' is not valid {encoding}") from None
        files.append(FileIn(path, data))
    if sum(len(f.data) for f in files) > max_bytes:
        raise RequestError(413, f"the files are larger than {max_bytes} bytes")
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise RequestError(400, "a path is given twice in 'files'")
    for path in paths:  # a file and a folder of the same name cannot both be written
        if any(other.startswith(path + "/") for other in paths):
            raise RequestError(400, f"'{path}' is a file and a folder in 'files'")
    return files


def return_patterns(value: Any, max_patterns: int) -> list[str]:
    """The ``return_files`` of a request: glob patterns relative to the working directory."""
    if not isinstance(value, list) or not 1 <= len(value) <= max_patterns:
        raise RequestError(400, f"'return_files' must be a list of 1-{max_patterns} glob patterns")
    return [_relative_path(p, f"return_files[{i}]", pattern=True) for i, p in enumerate(value)]


# -- what the sandbox's kernel runs ------------------------------------------------

_WRITE = """
def _coderemote_write(files):
    import base64, os
    for path, data in files:
        folder = "."
        for part in path.split("/")[:-1]:
            folder = os.path.join(folder, part)
            if not os.path.isdir(folder) or os.path.islink(folder):
                os.mkdir(folder)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
_coderemote_write({files!r})
del _coderemote_write
"""

_READ = """
def _coderemote_read(patterns, max_files, max_bytes):
    import base64, glob, json, os, stat
    found, seen, total = [], set(), 0
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if path in seen or len(seen) >= max_files:
                continue
            seen.add(path)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # a link, or gone
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(fd)
                size = info.st_size
                if not stat.S_ISREG(info.st_mode):
                    continue
                if total + size > max_bytes:
                    found.append({{"path": path, "size": size, "skipped": "past the limit of returned bytes"}})
                    continue
                data = f.read(size)
            total += len(data)
            try:
                found.append({{"path": path, "encoding": "utf8", "content": data.decode("utf-8"), "size": len(data)}})
            except UnicodeDecodeError:
                text = base64.b64encode(data).decode()
                found.append({{"path": path, "encoding": "base64", "content": text, "size": len(data)}})
    print(json.dumps(found))
_coderemote_read({patterns!r}, {max_files!r}, {max_bytes!r})
del _coderemote_read
"""


def write_code(files: list[FileIn]) -> str:
    """Python for the sandbox's kernel that writes ``files`` (paths checked by :func:`files_in`)."""
    return _WRITE.format(files=[(f.path, base64.b64encode(f.data).decode()) for f in files])


def read_code(patterns: list[str], max_files: int, max_bytes: int) -> str:
    """Python for the sandbox's kernel that prints the files matching ``patterns`` as JSON."""
    return _READ.format(patterns=patterns, max_files=max_files, max_bytes=max_bytes)


def files_out(printed: str, max_files: int) -> list[dict[str, Any]]:
    """What :func:`read_code` printed, checked (it comes from the sandbox): the result's ``files``."""
    try:
        found = json.loads(printed)
    except ValueError:
        raise ValueError("the sandbox sent back no list of files") from None
    if not isinstance(found, list) or len(found) > max_files:
        raise ValueError("the sandbox sent back no list of files")
    files = []
    for item in found:
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("size"), int)):
            raise ValueError("the sandbox sent back a malformed file")
        if "skipped" in item:
            files.append({"path": item["path"], "size": item["size"], "skipped": str(item["skipped"])})
        elif item.get("encoding") in ENCODINGS and isinstance(item.get("content"), str):
            files.append({k: item[k] for k in ("path", "encoding", "content", "size")})
        else:
            raise ValueError("the sandbox sent back a malformed file")
    return files
