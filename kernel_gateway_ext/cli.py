"""``coderemote``: run a file in a fresh sandbox, and manage the kernel runtime.

    coderemote run FILE [--timeout S] [--stdin FILE]
    coderemote submit FILE [--wait] [--url URL] [--token TOKEN] [--timeout S] [--stdin FILE] [--callback-url URL]
    coderemote analyze FILE [--json] [--entry NAME] [--arg KIND] [--static-only]
    coderemote runtime build [--force]
    coderemote runtime install PACKAGE [PACKAGE ...]

``run`` streams output as it comes and exits 0 when the code ran, 1 when it
raised, 2 on timeout, memory, output limit or a killed sandbox, and 3 when no
sandbox could be started. ``submit`` queues the file on a server
(``api/coderemote/submissions``; the URL and token also from CODEREMOTE_URL and
CODEREMOTE_TOKEN) and prints the submission; with ``--wait`` it prints the
run's output once done and exits like ``run`` (4: the server refused or could
not be reached). ``analyze`` prints the complexity report (exit 1
when the file cannot be analyzed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_core.paths import jupyter_runtime_dir

from analysis_ext.service import AnalysisRequest, AnalysisService
from analysis_ext.static import ARG_KINDS
from kernel_gateway_ext.base import RequestError
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionService
from kernel_gateway_ext.pool import KernelPool, SandboxUnavailableError
from kernel_gateway_ext.sandboxed import SandboxedKernelSpecManager
from kernel_images import runtime

EXIT_CODES = {"ok": 0, "error": 1}
EXIT_LIMIT = 2
EXIT_UNAVAILABLE = 3
EXIT_REFUSED = 4
DEFAULT_URL = "http://127.0.0.1:8888/"
POLL_S = 0.5


def _print_output(output: dict[str, Any]) -> None:
    kind = output["output_type"]
    if kind == "stream":
        stream = sys.stdout if output["name"] == "stdout" else sys.stderr
        stream.write(output["text"])
        stream.flush()
    elif kind == "error":
        print("\n".join(output["traceback"]), file=sys.stderr, flush=True)
    else:
        data = output["data"]
        if "text/plain" in data:
            print(data["text/plain"], flush=True)
        for mime in sorted(set(data) - {"text/plain"}):
            print(f"[{mime} output not shown in a terminal]", flush=True)


def local_execution_service() -> ExecutionService:
    """An execution service without a server: sandboxes started on demand, no warm pool."""
    # Connection files go to Jupyter's runtime dir, never the caller's cwd.
    os.makedirs(jupyter_runtime_dir(), mode=0o700, exist_ok=True)
    kernel_manager = AsyncMultiKernelManager(
        connection_dir=jupyter_runtime_dir(), kernel_spec_manager=SandboxedKernelSpecManager()
    )
    return ExecutionService(pool=KernelPool(kernel_manager=kernel_manager, size=0))


async def run_code(code: str, timeout: float | None, stdin: str | None) -> int:
    service = local_execution_service()
    try:
        result = await service.execute(
            ExecutionRequest(code=code, stdin=stdin, timeout_s=timeout), on_output=_print_output
        )
    except SandboxUnavailableError as e:
        print(f"coderemote: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except RequestError as e:
        print(f"coderemote: {e}", file=sys.stderr)
        return EXIT_LIMIT if e.status == 413 else 1
    finally:
        await service.shutdown()
    if result.status not in EXIT_CODES:
        print(f"coderemote: {result.status.replace('_', ' ')} ({result.duration_ms / 1000:.1f} s)", file=sys.stderr)
    return EXIT_CODES.get(result.status, EXIT_LIMIT)


async def analyze_code(code: str, entry: str | None, arg: str | None, static_only: bool, as_json: bool) -> int:
    service = local_execution_service()

    async def execute(source: str, timeout_s: float) -> Any:
        return await service.execute(ExecutionRequest(code=source, timeout_s=timeout_s))

    try:
        report = await AnalysisService().analyze(
            AnalysisRequest(code, entry=entry, arg=arg), None if static_only else execute
        )
    except RequestError as e:
        print(f"coderemote: {e}", file=sys.stderr)
        return 1
    finally:
        await service.shutdown()
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"time:  {report.time_complexity}\nspace: {report.space_complexity}")
    print(f"confidence {report.confidence:.2f} from {', '.join(report.methods_used)}", end="")
    print(f" ({report.model_used})" if report.model_used else "")
    if report.patterns:
        print("patterns: " + ", ".join(report.patterns))
    print("\n" + report.explanation)
    for suggestion in report.suggestions:
        print(f"- {suggestion}")
    return 0


def _api(base: str, token: str | None, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON answer) of a request to the server."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base.rstrip("/") + "/" + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, {"message": e.reason}


def submit_code(base: str, token: str | None, body: dict[str, Any], wait: bool) -> int:
    """Queue ``body`` on the server; with ``wait``, print the run's output once it is done."""
    try:
        status, answer = _api(base, token, "POST", "api/coderemote/submissions" + ("?wait=true" if wait else ""), body)
        while (
            wait and status in (200, 202) and "execution_id" not in answer and answer["status"] in ("queued", "running")
        ):
            time.sleep(POLL_S)  # ?wait=true gave up before the run ended: poll
            status, answer = _api(base, token, "GET", f"api/coderemote/submissions/{answer['id']}")
    except (OSError, ValueError) as e:
        print(f"coderemote: cannot reach {base}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if status not in (200, 202):
        message = answer.get("message") if isinstance(answer, dict) else answer
        print(f"coderemote: the server answered {status}: {message}", file=sys.stderr)
        return EXIT_REFUSED
    if not wait:
        print(json.dumps(answer))
        return 0
    result = answer if "execution_id" in answer else answer.get("result")
    if result is None:  # cancelled meanwhile
        print(f"coderemote: the submission is {answer['status']}", file=sys.stderr)
        return EXIT_REFUSED
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    if result.get("error"):
        print("\n".join(result["error"].get("traceback") or [result["error"].get("evalue", "")]), file=sys.stderr)
    if result["status"] not in EXIT_CODES:
        print(
            f"coderemote: {result['status'].replace('_', ' ')} ({result['duration_ms'] / 1000:.1f} s)", file=sys.stderr
        )
    return EXIT_CODES.get(result["status"], EXIT_LIMIT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coderemote", description="Run Python in a gVisor sandbox.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a file in a fresh sandbox")
    run.add_argument("file")
    run.add_argument("--timeout", type=float, default=None, help="wall time in seconds")
    run.add_argument("--stdin", metavar="FILE", help="file whose lines answer input()")
    queue = commands.add_parser("submit", help="queue a file on a server (api/coderemote/submissions)")
    queue.add_argument("file")
    queue.add_argument("--wait", action="store_true", help="wait for the run and print its output")
    queue.add_argument("--url", default=os.environ.get("CODEREMOTE_URL", DEFAULT_URL), help="the server's URL")
    queue.add_argument("--token", default=os.environ.get("CODEREMOTE_TOKEN"), help="a Jupyter token or a JWT")
    queue.add_argument("--timeout", type=float, default=None, help="wall time in seconds")
    queue.add_argument("--stdin", metavar="FILE", help="file whose lines answer input()")
    queue.add_argument("--callback-url", help="where the server POSTs the finished submission")
    analyze = commands.add_parser("analyze", help="time and space complexity of a file's main function")
    analyze.add_argument("file")
    analyze.add_argument("--json", action="store_true", help="print the report as JSON")
    analyze.add_argument("--entry", help="function to analyze (default: the file's main function)")
    analyze.add_argument("--arg", choices=ARG_KINDS, help="its input kind (default: inferred)")
    analyze.add_argument("--static-only", action="store_true", help="no timed runs in a sandbox")
    rt = commands.add_parser("runtime", help="build the kernel runtime or add packages to it")
    rt_commands = rt.add_subparsers(dest="action", required=True)
    build = rt_commands.add_parser("build", help="create the runtime venv from a profile (base: ipykernel, numpy, "
                                   "pandas, matplotlib; data: with scipy, scikit-learn, statsmodels, seaborn, ...)")
    build.add_argument("--profile", choices=runtime.profiles(),
                       help="what it holds (default: the built runtime's profile, else base)")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    build.add_argument("--path", default=runtime.default_runtime_dir())
    install = rt_commands.add_parser("install", help="pip install packages into the runtime")
    install.add_argument("packages", nargs="+")
    install.add_argument("--path", default=runtime.default_runtime_dir())
    args = parser.parse_args(argv)

    if args.command == "run":
        try:
            code = Path(args.file).read_text(encoding="utf-8")
            stdin = Path(args.stdin).read_text(encoding="utf-8") if args.stdin else None
        except (OSError, UnicodeDecodeError) as e:
            parser.error(str(e))
        return asyncio.run(run_code(code, args.timeout, stdin))
    if args.command == "submit":
        try:
            body: dict[str, Any] = {"code": Path(args.file).read_text(encoding="utf-8"), "timeout_s": args.timeout}
            if args.stdin:
                body["stdin"] = Path(args.stdin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            parser.error(str(e))
        if args.callback_url:
            body["callback_url"] = args.callback_url
        return submit_code(args.url, args.token, body, args.wait)
    if args.command == "analyze":
        try:
            code = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            parser.error(str(e))
        return asyncio.run(analyze_code(code, args.entry, args.arg, args.static_only, args.json))
    if args.action == "build":
        profile = args.profile or runtime.built_profile(args.path) or runtime.DEFAULT_PROFILE
        print(runtime.build(args.path, force=args.force, profile=profile).path)
    else:
        runtime.install(args.path, *args.packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
