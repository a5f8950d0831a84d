"""Files into and out of a run (``files`` and ``return_files`` of POST execute),
written and read inside the real gVisor sandbox."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import Execute

BLOB = bytes(range(256)) * 4  # not UTF-8


async def test_files_go_in_before_the_run_and_come_back_after_it(execute: Execute) -> None:
    code = "\n".join([
        "import os, shutil",
        "print(open('data/in.txt').read().upper())",
        "open('out.csv', 'w').write('a,b\\n1,2\\n')",
        "os.makedirs('plots/deep', exist_ok=True)",
        "shutil.copy('blob.bin', 'plots/p.png')",
        "shutil.copy('blob.bin', 'plots/deep/q.png')",
        "os.symlink('/etc/passwd', 'plots/link.png')",  # a link is not read back
        "os.mkfifo('plots/fifo.png')",  # nor a pipe (reading it would block)
    ])  # fmt: skip
    files = [
        {"path": "data/in.txt", "content": "héllo"},
        {"path": "blob.bin", "content": base64.b64encode(BLOB).decode(), "encoding": "base64"},
    ]
    result = await execute(code, files=files, return_files=["out.csv", "plots/**/*.png", "missing.txt"])
    assert (result["status"], result["stdout"]) == ("ok", "HÉLLO\n"), result
    got = {f["path"]: f for f in result["files"]}
    assert set(got) == {"out.csv", "plots/p.png", "plots/deep/q.png"}
    assert got["out.csv"] == {"path": "out.csv", "encoding": "utf8", "content": "a,b\n1,2\n", "size": 8}
    for path in ("plots/p.png", "plots/deep/q.png"):
        assert got[path]["encoding"] == "base64" and base64.b64decode(got[path]["content"]) == BLOB
    assert "files" not in await execute("print(1)")  # only when asked for


async def test_files_come_back_after_an_error_and_past_the_cap_are_listed(execute: Execute) -> None:
    code = "open('small.txt', 'w').write('s')\nopen('big.txt', 'w').write('b' * (600 << 10))\n1 / 0"
    result = await execute(code, return_files=["*.txt"])
    assert result["status"] == "error" and result["error"]["ename"] == "ZeroDivisionError"
    assert result["files"] == [
        {"path": "big.txt", "size": 600 << 10, "skipped": "past the limit of returned bytes"},
        {"path": "small.txt", "encoding": "utf8", "content": "s", "size": 1},
    ]


async def test_a_file_that_cannot_be_written_is_an_error_and_the_code_does_not_run(execute: Execute) -> None:
    """In a session the sandbox keeps what earlier runs made: a file where a folder
    should go, and a link where a file should go (never written through)."""
    session = {"session_id": "files"}
    made = await execute("import os\nopen('a', 'w').write('')\nos.symlink('/tmp/target', 'l')", **session)
    assert made["status"] == "ok", made
    for path, ename in (("a/b", "FileExistsError"), ("l", "OSError")):
        result = await execute("print('ran')", files=[{"path": path, "content": "x"}], **session)
        assert result["status"] == "error" and result["stdout"] == "", result
        assert result["error"]["ename"] == ename, result
    untouched = await execute("import os\nprint(os.path.exists('/tmp/target'))", **session)
    assert untouched["stdout"] == "False\n"


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        ({"files": [{"path": "../x", "content": "1"}]}, 400, "relative"),
        ({"files": [{"path": "/etc/x", "content": "1"}]}, 400, "relative"),
        ({"files": [{"path": "a/../../b", "content": "1"}]}, 400, "relative"),
        ({"files": [{"path": "a//b", "content": "1"}]}, 400, "relative"),
        ({"files": [{"path": "a\\b", "content": "1"}]}, 400, "backslash"),
        ({"files": [{"path": "a*", "content": "1"}]}, 400, "glob"),
        ({"files": [{"path": "x" * 256, "content": "1"}]}, 400, "path of"),
        ({"files": [{"path": "a", "content": "1"}, {"path": "a", "content": "2"}]}, 400, "twice"),
        ({"files": [{"path": "a", "content": "1"}, {"path": "a/b", "content": "2"}]}, 400, "file and a folder"),
        ({"files": [{"path": "a", "content": "%%%", "encoding": "base64"}]}, 400, "not valid base64"),
        ({"files": [{"path": "a", "content": "1", "encoding": "hex"}]}, 400, "encoding"),
        ({"files": [{"path": "a", "content": 1}]}, 400, "content"),
        ({"files": [{"path": "a"}]}, 400, "files[0]"),
        ({"files": {"a": "1"}}, 400, "list"),
        ({"files": [{"path": f"f{i}", "content": ""} for i in range(21)]}, 400, "at most 20"),
        ({"files": [{"path": "big", "content": "x" * (1024 * 1024 + 1)}]}, 413, "larger than"),
        ({"return_files": ["../*"]}, 400, "relative"),
        ({"return_files": ["/etc/passwd"]}, 400, "relative"),
        ({"return_files": []}, 400, "1-20"),
        ({"return_files": "*.csv"}, 400, "list"),
    ],
)
async def test_bad_files_are_refused(jp_fetch: Any, fields: dict[str, Any], status: int, fragment: str) -> None:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "coderemote", "execute", method="POST", body=json.dumps({"code": "1", **fields}))
    assert e.value.code == status
    assert fragment in json.loads(e.value.response.body)["message"]
