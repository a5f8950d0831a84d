"""The execution history: every REST execution, websocket cell, submission and
timed run of an analysis, in PostgreSQL (table ``executions``), and ``GET api/coderemote/executions``.

Recording never holds up an execution: ``record`` only puts a row on a bounded
queue, which a background task writes in batches after the replies are sent;
a failed write is logged and dropped. The code itself is kept only with
``History.keep_code``; its size and SHA-256 always are.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from jupyter_server.auth.decorator import authorized
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado import web
from traitlets import Bool, Float, Instance, Integer
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext.base import CodeRemoteAPIHandler
from kernel_gateway_ext.identity import is_admin
from snippets.models import Execution

SOURCES = ("rest", "websocket", "analysis", "submission")
STATUSES = ("ok", "error", "timeout", "memory_limit", "output_limit", "killed", "aborted")


class HistoryUnavailable(RuntimeError):
    """No database: the history is not kept."""


class History(LoggingConfigurable):
    """Writes and reads the execution history."""

    keep_code = Bool(
        False,
        config=True,
        help="""Keep the code of every execution in the history (default: off, only its size
        and SHA-256 are kept: people's code is theirs). Turn on where users expect to see
        what they ran, and say so in your terms.""",
    )
    retention_days = Float(
        30.0,
        config=True,
        help="Executions older than this are deleted, days (default 30; 0 keeps them forever).",
    )
    purge_interval = Float(
        3600.0, config=True, help="How often executions past retention_days are deleted, s (default 3600)."
    )
    max_pending = Integer(
        10_000,
        config=True,
        help="""Rows waiting to be written at most; past it new rows are dropped (and logged),
        so a slow database never holds memory or executions. Default 10000.""",
    )
    batch_size = Integer(200, config=True, help="Rows written per INSERT at most (default 200).")
    engine = Instance(AsyncEngine, allow_none=True, help="The database engine (None: no history).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.dropped = 0

    @property
    def available(self) -> bool:
        return self.engine is not None

    def start(self) -> None:
        """Start the writer and the retention purge (needs a running loop)."""
        if self.engine is None or self._tasks:
            return
        self._queue = asyncio.Queue(maxsize=self.max_pending)
        self._tasks.append(asyncio.ensure_future(self._write_forever()))
        if self.retention_days > 0 and self.purge_interval > 0:
            self._tasks.append(asyncio.ensure_future(self._purge_forever()))

    async def stop(self) -> None:
        """Write what is queued (a few seconds at most), then stop."""
        if self._queue is not None and not self._queue.empty():
            try:
                await asyncio.wait_for(self._queue.join(), timeout=5)
            except asyncio.TimeoutError:
                self.log.warning("%d execution(s) not written to the history at shutdown", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    def record_run(self, user: str, source: str, code: str, result: Any) -> None:
        """``record`` one run of the execution service (an ExecutionResult: its status,
        duration, kernel and usage)."""
        self.record(
            user=user,
            source=source,
            status=result.status,
            duration_ms=result.duration_ms,
            code=code,
            kernel_id=result.kernel_id,
            usage=result.usage,
        )

    def record(
        self,
        *,
        user: str,
        source: str,
        status: str,
        duration_ms: float,
        code: str | None,
        kernel_id: str | None,
        fingerprint: tuple[int, bytes] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        """Queue one execution's row; returns at once and never raises.

        ``fingerprint`` is the code's (size in bytes, SHA-256), when the caller
        kept that instead of the code (see ``fingerprint``).
        """
        if self._queue is None:
            return
        try:
            size, digest = fingerprint if fingerprint is not None else self.fingerprint(code or "")
            self._queue.put_nowait(
                {
                    "user": user,
                    "created_at": datetime.now(timezone.utc),
                    "source": source,
                    "status": status[:32],
                    "duration_ms": float(duration_ms),
                    "code_bytes": size,
                    "code_sha256": digest,
                    "kernel_id": kernel_id[:64] if kernel_id else None,
                    "code": storable(code) if self.keep_code and code is not None else None,
                    "cpu_ms": (usage or {}).get("cpu_ms"),
                    "peak_memory_bytes": (usage or {}).get("peak_memory_bytes"),
                }
            )
        except asyncio.QueueFull:
            self.dropped += 1
            self.log.warning("Execution history is behind: a row of %s was dropped (%d so far)", user, self.dropped)
        except Exception as e:  # never let the history fail an execution
            self.log.error("Could not queue an execution for the history: %s", e)

    @staticmethod
    def fingerprint(code: str) -> tuple[int, bytes]:
        """The code's size in bytes (UTF-8) and SHA-256."""
        data = code.encode("utf-8", "surrogatepass")
        return len(data), hashlib.sha256(data).digest()

    async def _write_forever(self) -> None:
        assert self._queue is not None and self.engine is not None
        while True:
            rows = [await self._queue.get()]
            while len(rows) < self.batch_size and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(insert(Execution), rows)
            except Exception as e:
                self.log.error("Could not write %d execution(s) to the history: %s", len(rows), e)
            finally:
                for _ in rows:
                    self._queue.task_done()

    async def purge(self) -> int:
        """Delete executions older than retention_days; how many went."""
        if self.engine is None or self.retention_days <= 0:
            return 0
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.retention_days)
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(Execution).where(Execution.created_at < cutoff))
        return int(result.rowcount)

    async def _purge_forever(self) -> None:
        while True:
            try:
                purged = await self.purge()
                if purged:
                    self.log.info("Deleted %d execution(s) older than %g days", purged, self.retention_days)
            except SQLAlchemyError as e:
                self.log.warning("Could not purge the execution history: %s", e)
            await asyncio.sleep(self.purge_interval)

    async def page(
        self, user: str, *, limit: int, offset: int, status: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One user's executions, newest first, and how many there are in all."""
        if self.engine is None:
            raise HistoryUnavailable("the execution history is unavailable: no database")
        where = [Execution.user == user]
        if status is not None:
            where.append(Execution.status == status)
        query = select(Execution.__table__).where(*where).order_by(Execution.created_at.desc(), Execution.id.desc())
        async with self.engine.connect() as connection:
            total = (await connection.execute(select(func.count()).select_from(Execution).where(*where))).scalar_one()
            rows = (await connection.execute(query.limit(limit).offset(offset))).mappings().all()
        return [_row_dict(row) for row in rows], int(total)


def storable(code: str) -> str | None:
    """``code`` if PostgreSQL can store it as text (no NUL, no lone surrogate), else None."""
    if "\x00" in code:
        return None
    try:
        code.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return code


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["user"],
        "created_at": row["created_at"].isoformat(),
        "source": row["source"],
        "status": row["status"],
        "duration_ms": row["duration_ms"],
        "code_bytes": row["code_bytes"],
        "code_sha256": bytes(row["code_sha256"]).hex(),
        "kernel_id": row["kernel_id"],
        "code": row["code"],
        "usage": {
            "cpu_ms": row["cpu_ms"],
            "peak_memory_bytes": row["peak_memory_bytes"],
            "wall_ms": row["duration_ms"],
        },
    }


class ExecutionsHandler(CodeRemoteAPIHandler):
    """``GET api/coderemote/executions?limit=&offset=&status=`` (admins: ``&user=``;
    anyone else naming another user gets 404)."""

    @property
    def history(self) -> History:
        return self.settings["coderemote_history"]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's executions, newest first (another user's only for admins)."""
        limit, offset, status = self.page_arguments(STATUSES)
        user = self.owner()
        wanted = self.get_argument("user", None)
        if wanted is not None and wanted != user:
            if not is_admin(self.current_user):  # as if that user did not exist
                raise web.HTTPError(404, "no such user")
            if not 1 <= len(wanted) <= 255 or not wanted.isprintable():
                raise web.HTTPError(400, "'user' must be a user name (1-255 printable characters)")
            user = wanted
        if not self.history.available:
            raise web.HTTPError(503, "the execution history is unavailable: the database is not")
        try:
            executions, total = await self.history.page(user, limit=limit, offset=offset, status=status)
        except SQLAlchemyError as e:
            self.log.error("Reading the execution history failed: %s", e)
            raise web.HTTPError(503, "the execution history is unavailable right now") from e
        self.finish({"executions": executions, "total": total, "limit": limit, "offset": offset})


default_handlers: list[tuple[str, Any]] = [(r"/api/coderemote/executions", ExecutionsHandler)]
