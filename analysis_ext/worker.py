"""The analysis' CPU work in worker processes, each job with a deadline (issue 17).

Static analysis, pattern detection and curve fitting are pure Python CPU work
on code and output that callers choose, so they never run on the server's
event loop: they run in a ``pebble.ProcessPool`` whose workers are killed
(and replaced) when a job overruns its deadline; a thread could not be
stopped. The pool starts on first use, in a thread, not on the event loop,
and is stopped at interpreter exit (``atexit``) or by ``shutdown()``.

Start method: ``forkserver``. The fork server is a fresh interpreter started
with only its own pipes (no listening sockets, kernel connections or database
handles of the server), preloaded with this module; workers are forked from it
in milliseconds. Unlike multiprocessing's default, neither the fork server nor
the workers import the server's main module (``jupyter-coderemote``, which
would bring all of Jupyter Server into every worker): jobs are functions of
this module. Each worker runs at a lower CPU priority, with an address
space limit (MemoryError instead of swapping the host) and dies with the fork
server, which dies with the server.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import ctypes
import os
import resource
import signal
import threading
from collections.abc import Callable
from multiprocessing import context as mp_context
from multiprocessing import popen_forkserver, spawn
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from analysis_ext.bounds import MAX_DEPTH, MAX_NODES, CodeLimitError
from analysis_ext.empirical import EmpiricalResult, classify, parse
from analysis_ext.patterns import detect_patterns
from analysis_ext.static import StaticResult, analyze_static

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


class AnalysisError(Exception):
    """A job that gave no result: ``status`` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)  # both in args: it pickles back from the worker
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


# -- jobs (run in the worker; module-level so that they pickle by name) -----


def static_job(
    code: str, entry: str | None, arg: str | None, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> StaticResult:
    try:
        return analyze_static(code, entry, arg, max_nodes, max_depth)
    except SyntaxError as e:
        raise AnalysisError(400, f"the code does not parse: {e.msg} (line {e.lineno})") from None
    except CodeLimitError as e:
        raise AnalysisError(e.status, str(e)) from None
    except ValueError as e:
        raise AnalysisError(400, str(e)) from None
    except RecursionError:
        raise AnalysisError(422, "the code is nested too deeply to analyze") from None
    except MemoryError:
        raise AnalysisError(422, "the static analysis ran out of memory") from None


def patterns_job(code: str) -> list[str]:
    return sorted(set(detect_patterns(code)))


def classify_job(stdout: str, arg: str) -> EmpiricalResult:
    return classify(parse(stdout), arg)


def _ping() -> int:
    return os.getpid()


def _init_worker(memory_mb: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    try:
        # Die with the fork server (which exits when the server does): no orphan keeps computing.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    try:
        os.nice(5)  # the event loop's process keeps the CPU it needs to answer
    except OSError:
        pass
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# -- the pool (in the server) -----------------------------------------------

_launching = threading.local()
_preparation_data = spawn.get_preparation_data


def _bare_preparation_data(name: str) -> dict[str, Any]:
    """multiprocessing's start-up data for a child, without the main module while one of ours starts."""
    data: dict[str, Any] = _preparation_data(name)
    if getattr(_launching, "ours", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


if getattr(spawn.get_preparation_data, "__module__", "") != __name__:
    spawn.get_preparation_data = _bare_preparation_data  # the same for every other process


class _Popen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        _launching.ours = True
        try:
            super()._launch(process_obj)  # type: ignore[misc]
        finally:
            _launching.ours = False


class _Process(mp_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class _Context(mp_context.ForkServerContext):
    Process = _Process


class AnalysisPool:
    """A lazily started process pool; ``run`` (async) and ``run_sync`` (from a thread) with a deadline."""

    def __init__(self, workers: int = 2, memory_mb: int = 1024, max_pending: int = 32) -> None:
        self.workers = max(1, workers)
        self.memory_mb = memory_mb
        self.max_pending = max_pending
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self.started = 0  # pools started (1 in the normal life of a server)

    def _get(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                context = _Context()
                context.set_forkserver_preload([__name__])
                pool = ProcessPool(
                    max_workers=self.workers, initializer=_init_worker, initargs=(self.memory_mb,), context=context
                )
                pool.schedule(_ping).result(timeout=60)  # starts the fork server and the workers, here
                self._pool = pool
                if not self.started:
                    atexit.register(self.shutdown)
                self.started += 1
            return self._pool

    @property
    def running(self) -> bool:
        return self._pool is not None and self._pool.active

    def _submit(self, function: Callable[..., T], args: tuple[Any, ...], timeout: float) -> Any:
        pool = self._pool
        if pool is None or not pool.active:
            pool = self._get()
        return pool.schedule(function, args=args, timeout=timeout)

    def _reserve(self) -> None:
        with self._lock:
            if self._pending >= self.max_pending:
                raise AnalysisError(503, "the analysis is busy: too many requests are waiting, try again shortly")
            self._pending += 1

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, function: Callable[..., T], *args: Any, timeout: float, what: str) -> T:
        """``function(*args)`` in a worker; AnalysisError 422 past ``timeout`` seconds (the worker is killed)."""
        self._reserve()
        try:
            if not self.running:
                await asyncio.to_thread(self._get)  # starting processes blocks: not on the event loop
            future = self._submit(function, args, timeout)
            try:
                return await asyncio.wrap_future(future)  # type: ignore[no-any-return]
            except BaseException as e:
                raise _translate(e, what, timeout) from None
        finally:
            self._release()

    def run_sync(self, function: Callable[..., T], *args: Any, timeout: float, what: str) -> T:
        """The same, blocking the calling thread (never call it on the event loop)."""
        self._reserve()
        try:
            future = self._submit(function, args, timeout)
            try:
                return future.result()  # type: ignore[no-any-return]
            except BaseException as e:
                raise _translate(e, what, timeout) from None
        finally:
            self._release()

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=5)


def _translate(error: BaseException, what: str, timeout: float) -> BaseException:
    if isinstance(error, AnalysisError | asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return error
    if isinstance(error, concurrent.futures.TimeoutError | TimeoutError):
        return AnalysisError(422, f"{what} took longer than {timeout:g} s and was stopped")
    if isinstance(error, ProcessExpired):
        return AnalysisError(422, f"{what} stopped its worker process (exit code {error.exitcode})")
    if isinstance(error, MemoryError):
        return AnalysisError(422, f"{what} ran out of memory")
    if isinstance(error, RecursionError):
        return AnalysisError(422, f"{what}: the code is nested too deeply")
    return error


_shared: AnalysisPool | None = None
_shared_lock = threading.Lock()


def shared_pool(workers: int | None = None, memory_mb: int | None = None) -> AnalysisPool:
    """The process's one pool (the analyze endpoint and the snippet library share it).

    Settings given before the pool has started apply (the analysis service gives its
    traitlets' at start-up); later ones wait for the next start.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = AnalysisPool()
        if workers is not None:
            _shared.workers = max(1, workers)
        if memory_mb is not None:
            _shared.memory_mb = memory_mb
        return _shared
