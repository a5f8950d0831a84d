"""What the escape battery's programs and tests share.

Every program starts with ``PRELUDE`` and ends with one ``@@RESULT@@{json}``
line written by ``_report``; ``_try(fn)`` turns an attempt into
``{"ok": bool, "exc", "errno", "value"}``. ``run`` sends such a program,
``report`` reads its values back and ``refused`` judges an attempt. The
``host_*`` helpers look at the host from the test's side, never the sandbox's.
The limits below are the provisioner's defaults that the programs run into.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Execute

escape = pytest.mark.escape

MiB = 1 << 20
TMPFS_CAP = 64 * MiB  # GVisorProvisioner.tmpfs_size
FILE_SIZE_LIMIT = 32 * MiB  # GVisorProvisioner.file_size_limit
OUTPUT_LIMIT = MiB  # GVisorProvisioner.output_limit
SECRET = "s3cr3t-value"
MARKER = "@@RESULT@@"
TRUNCATED = "[output truncated"
# Addresses outside this machine, from the documentation ranges (RFC 5737): never
# routed anywhere, so nothing could leave even if containment failed.
OUTSIDE = [("192.0.2.1", 53), ("198.51.100.1", 443)]

# What a program's failed attempt to reach something may say.
DENIED = {errno.EPERM, errno.EACCES, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.ENOSYS, errno.EOPNOTSUPP}
UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPERM, errno.EACCES}

PRELUDE = """\
import json as _json


def _try(fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:
        return {"ok": False, "exc": type(e).__name__, "errno": getattr(e, "errno", None), "msg": str(e)[:300]}
    return {"ok": True, "value": value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)[:300]}


def _report(**values):
    print("@@RESULT@@" + _json.dumps(values, default=repr), flush=True)


"""


async def run(execute: Execute, code: str, **fields: Any) -> dict[str, Any]:
    """Run PRELUDE + ``code`` (dedented) and return the REST result."""
    return await execute(PRELUDE + textwrap.dedent(code), **fields)


def report(result: dict[str, Any]) -> dict[str, Any]:
    """The program's ``_report(...)`` values; fails the test when it has none."""
    lines = [line for line in result["stdout"].splitlines() if line.startswith(MARKER)]
    assert lines, f"the program did not report: {result}"
    return json.loads(lines[-1][len(MARKER) :])


def refused(attempt: dict[str, Any], errnos: set[int] | None = None, exc: str | None = None) -> bool:
    """Whether an attempt failed (with one of ``errnos`` / as ``exc`` when given)."""
    if attempt["ok"]:
        return False
    if errnos is not None and attempt["errno"] not in errnos:
        return False
    return exc is None or attempt["exc"] == exc


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def host_text(path: str | Path) -> str:
    """A host file's text, read by the test (not the sandbox)."""
    return Path(path).read_text()


def host_exists(path: str | Path) -> bool:
    return os.path.lexists(path)


async def host_sleeper() -> asyncio.subprocess.Process:
    """A host process for the sandbox to aim signals at."""
    return await asyncio.create_subprocess_exec("sleep", "300")
