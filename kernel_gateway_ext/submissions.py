"""Submissions: executions that are queued, run by a worker and read later
(``api/coderemote/submissions``), durable in the service's database.

A submission is a row of ``submissions`` (its request, status and result) and
a job of procrastinate's queue in the same database, so any server replica's
worker runs any submission and a server that dies loses none:

- ``POST`` inserts the row and defers the job; the caller gets 202 and the id
  (``?wait=true``: the result itself when it comes in time).
- A worker (``Submissions.workers`` per server, in its event loop) claims the
  row (``running``), runs the code on the REST path (a fresh sandbox of the
  pool, the same limits and result as ``POST execute``) and stores the result.
- Fairness: a job's priority is minus the number of the user's submissions
  queued before it, so one user's thousand queued submissions take turns with
  another user's first one instead of going first.
- A stopping server gives its runs ``shutdown_grace`` s and queues the rest
  again. A server killed mid-run leaves its jobs "doing" with a worker that no
  longer beats: every server looks for such stalled jobs (``stalled_check_interval``)
  and queues each submission once more (a sandbox's run changes nothing outside
  it, so running it again is safe); one whose second run is lost too ends as
  ``killed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any

import procrastinate
from jupyter_server.auth.decorator import authorized
from procrastinate.worker import Worker
from prometheus_client import Gauge
from psycopg.conninfo import make_conninfo
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado import web
from traitlets import Float, Instance, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext.base import CodeRemoteAPIHandler, RequestError
from kernel_gateway_ext.callbacks import CallbackRefused, Deliverer, Delivery, check_url
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionResult, ExecutionService
from kernel_gateway_ext.history import storable
from kernel_gateway_ext.pool import CapacityError, SandboxUnavailableError
from snippets.models import Submission

STATUSES = ("queued", "running", "done", "cancelled")
QUEUE = "submissions"
TASK = "coderemote.run_submission"
CALLBACK_QUEUE = "callbacks"
CALLBACK_TASK = "coderemote.deliver_callback"
CALLBACK_RESOLVE_S = 5  # how long a submission waits for its callback's host to resolve
MAX_IDEMPOTENCY_KEY = 255
STOP_WAIT_S = 3  # what a stop waits for the worker beyond its runs' grace
STOP_POLL_S = 0.2
COLUMNS = tuple(Submission.__table__.c)
QUEUED_DEPTH = Gauge("coderemote_submissions_queued", "Submissions waiting in the queue (all users).")


class SubmissionNotFound(LookupError):
    """No such submission of this user (another user's is 'not found' too)."""


class SubmissionConflict(RuntimeError):
    """The request contradicts the submission's state or an earlier request."""


class QueueFull(RuntimeError):
    """The user has as many queued submissions as they may."""


class CallbackFailed(RuntimeError):
    """A callback delivery that is tried again later (procrastinate's retry)."""


def conninfo(engine: AsyncEngine) -> str:
    """The libpq connection string of an SQLAlchemy engine's database."""
    url = engine.url
    params = {k: v for k, v in url.translate_connect_args(username="user", database="dbname").items() if v}
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return make_conninfo(**params)


def request_fingerprint(body: dict[str, Any]) -> bytes:
    """SHA-256 of a request as JSON with sorted keys: the same body, the same bytes."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ).digest()


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Take a stopped task's outcome (so asyncio does not report it as never retrieved)."""
    if not task.cancelled():
        task.exception()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def public(row: Any) -> dict[str, Any]:
    """A submission as the API shows it."""
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "result": row["result"],
        "attempts": row["attempts"],
        **({"callback": row["callback"]} if row["callback"] is not None else {}),
    }


class Submissions(LoggingConfigurable):
    """The submission queue: accepts, runs, reports and cancels submissions."""

    workers = Integer(
        2,
        config=True,
        help="""Submissions this server runs at once (its worker's concurrency; every
        replica has its own). Each running submission holds one sandbox of the pool,
        so keep it at most KernelPool.max_kernels. Default 2.""",
    )
    max_queued_per_user = Integer(
        100,
        config=True,
        help="""Submissions one user may have waiting in the queue; past it a new one is
        refused with 429 (running ones do not count). Default 100.""",
    )
    max_batch = Integer(20, config=True, help="Submissions one batch request may carry at most (default 20).")
    queue_full_retry_after = Integer(
        5,
        config=True,
        help="""Retry-After of the 429 answered when a user's queue is full
        (max_queued_per_user), s. Default: 5, about one run.""",
    )
    wait_margin = Float(
        5.0,
        config=True,
        help="""With ?wait=true the request waits for the result up to the submission's
        timeout plus this, s (the queue and the sandbox's start come on top of the run).
        Default 5.""",
    )
    stalled_check_interval = Float(
        10.0,
        config=True,
        help="""How often the server looks for submissions whose worker stopped beating
        (its server died), s. Default 10.""",
    )
    stalled_after = Float(
        30.0,
        config=True,
        help="""A worker silent this long is taken for dead and its running submissions are
        queued again, s (procrastinate's heartbeat comes every 10 s). Default 30.""",
    )
    shutdown_grace = Float(
        5.0,
        config=True,
        help="""Time a stopping server gives the submissions it runs to finish, s; those
        still running then are stopped and go back to the queue for another server
        (they run again from the start). Default 5.""",
    )
    worker_name = Unicode(help="The worker's name in the queue (default: coderemote-<pid>).")
    callback_secret = Unicode(
        "",
        config=True,
        help="""The key callbacks are signed with (HMAC-SHA256, header X-CodeRemote-Signature:
        t=<unix time>,v1=<hex of HMAC(key, "<t>." + body)>). Empty (the default): the server
        sends no callbacks and refuses submissions that ask for one.""",
    )
    callback_allowed_hosts = List(
        Unicode(),
        config=True,
        help="""Hosts (names or literal addresses, as written in the URL) callbacks may go to
        although they are or resolve to loopback, link-local or private addresses. Others
        get callbacks only at public addresses. Default: none.""",
    )
    callback_attempts = Integer(5, config=True, help="Deliveries a callback gets at most (default 5).")
    callback_backoff = Integer(
        2,
        config=True,
        help="""A failed delivery (no answer, or 5xx) is tried again after backoff ** n s, n = 1, 2, ...
        (plus up to the worker's 5 s polling). Default 2: 2, 4, 8, 16 s.""",
    )
    callback_timeout = Float(10.0, config=True, help="How long one delivery may take, s (default 10).")

    engine = Instance(AsyncEngine, allow_none=True, help="The database engine (None: no submissions).")
    execution = Instance(ExecutionService, allow_none=True, help="What runs a submission's code.")
    history = Instance(LoggingConfigurable, allow_none=True, help="Where each run is recorded (the History).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app: procrastinate.App | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._finished: dict[str, asyncio.Event] = {}
        self._running: set[str] = set()  # submissions this server's worker runs
        self._stopped = asyncio.Event()
        self._opening: asyncio.Future[None] | None = None
        self._deliverer: Deliverer | None = None
        self._worker: Worker | None = None
        self._watcher: asyncio.Future[None] | None = None
        self.start_error: str | None = "the queue is opening" if self.engine is not None else "no database"

    @property
    def available(self) -> bool:
        return self._app is not None

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the queue and start this server's worker, in the background (its
        tables come with the database's migrations, see ``0004_submissions``)."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        if self.engine is None or self.execution is None or self._app is not None or self._stopped.is_set():
            return
        # A small pool: the worker's LISTEN connection, its fetches and the runs' updates.
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(self.engine), min_size=1, max_size=max(1, self.workers) + 2
        )
        app = procrastinate.App(connector=connector)
        app.task(name=TASK, queue=QUEUE)(self._run)
        retry = procrastinate.RetryStrategy(exponential_wait=self.callback_backoff, retry_exceptions=[CallbackFailed])
        app.task(name=CALLBACK_TASK, queue=CALLBACK_QUEUE, pass_context=True, retry=retry)(self._deliver)
        try:
            await app.open_async()
        except BaseException as e:
            await app.close_async()
            if isinstance(e, asyncio.CancelledError):
                raise
            self.start_error = str(e)
            self.log.error("Submissions are unavailable: the queue did not open: %s", e)
            return
        if self._stopped.is_set():  # the server stopped while the queue opened
            await app.close_async()
            return
        self._app = app
        self.start_error = None
        if self.callback_secret:
            self._deliverer = Deliverer(self.callback_secret, self.callback_allowed_hosts, self.callback_timeout)
        name = self.worker_name or f"coderemote-{os.getpid()}"
        # The worker itself rather than app.run_worker_async: stop() ends it gracefully,
        # where a cancellation can be taken by a database call it is in and be lost.
        self._worker = Worker(
            app=app, queues=[QUEUE, CALLBACK_QUEUE], concurrency=max(1, self.workers), name=name,
            install_signal_handlers=False, stalled_worker_timeout=self.stalled_after,
            update_heartbeat_interval=min(10.0, self.stalled_after / 3), shutdown_graceful_timeout=self.shutdown_grace,
        )  # fmt: skip
        self._watcher = asyncio.ensure_future(self._watch())
        self._tasks = [asyncio.ensure_future(self._worker.run()), self._watcher]
        self.log.info("Submissions: worker %s runs %d at once", name, self.workers)

    async def stop(self) -> None:
        """Stop the worker; the submissions it was running go back to the queue for another server."""
        self._stopped.set()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()  # a stop while the queue opens
            try:
                await self._opening
            except (asyncio.CancelledError, Exception):
                pass
        interrupted = set(self._running)
        for task in self._tasks:
            task.add_done_callback(_retrieved)  # a worker stopped with the database away ends with its error
        if self._watcher is not None:
            self._watcher.cancel()  # its loop ends on _stopped too, if a query takes the cancellation
        # The worker gives its runs shutdown_grace s (and needs the database to sign off).
        # Asked again and again: a stop before its run began is forgotten when it begins.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT_S + (self.shutdown_grace if interrupted else 0)
        pending = {task for task in self._tasks if not task.done()}
        while pending and (left := deadline - loop.time()) > 0:
            if self._worker is not None:
                self._worker.stop()
            _, pending = await asyncio.wait(pending, timeout=min(STOP_POLL_S, left))
        if pending:  # waiting on a database that went away, say: left behind, not waited on
            self.log.warning("Submissions: %d task(s) of the queue did not stop in time", len(pending))
            for task in pending:
                task.cancel()
        self._tasks, self._worker, self._watcher = [], None, None
        if self._app is not None:
            for submission_id in interrupted:
                await self._requeue(submission_id)
            await self._app.close_async()
            self._app = None
        if self._deliverer is not None:
            self._deliverer.close()
            self._deliverer = None

    async def _requeue(self, submission_id: str) -> None:
        """Queue a submission this server stopped running again, as a new job (never raises)."""
        assert self._app is not None
        try:
            if await self._set(submission_id, where_status="running", status="queued", started_at=None):
                job_id = await self._app.configure_task(TASK).defer_async(submission_id=submission_id)
                await self._set(submission_id, job_id=job_id)
                self.log.info("Submission %s goes back to the queue: this server stops", submission_id)
        except Exception as e:  # the stalled check of another server requeues it then
            self.log.warning("Could not requeue submission %s: %s", submission_id, e)

    async def _watch(self) -> None:
        """Requeue the submissions of dead workers; keep the depth gauge current."""
        while not self._stopped.is_set():
            try:
                await self._requeue_stalled()
                QUEUED_DEPTH.set(await self._count(Submission.status == "queued"))
            except Exception as e:  # the database is away (or the stop cancelled a query): next time
                if not self._stopped.is_set():
                    self.log.warning("Could not check the submission queue: %s", e)
            # Not a plain sleep: the stop's cancellation may have been taken by a query above.
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout=self.stalled_check_interval)
            except asyncio.TimeoutError:
                pass

    async def _requeue_stalled(self) -> None:
        assert self._app is not None and self.engine is not None
        manager = self._app.job_manager
        for job in await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.stalled_after):
            submission_id = str(job.task_kwargs.get("submission_id", ""))
            async with self.engine.begin() as connection:
                row = (
                    await connection.execute(
                        select(Submission.attempts, Submission.status).where(Submission.id == uuid.UUID(submission_id))
                    )
                ).first()
            # (A job fetched just before the server died may not have claimed its row yet: still "queued".)
            if row is not None and row.status in ("queued", "running") and row.attempts < 2:
                self.log.warning("Submission %s lost its worker: queued again", submission_id)
                await self._set(submission_id, status="queued", started_at=None)
                await manager.retry_job_by_id_async(int(job.id or 0), retry_at=datetime.now(timezone.utc))
                continue
            if row is not None and row.status in ("queued", "running"):
                self.log.warning("Submission %s lost its worker twice: killed", submission_id)
                error = {"ename": "Killed", "evalue": "the server running it stopped, twice", "traceback": []}
                killed = ExecutionResult(submission_id, status="killed", error=error).to_dict()
                await self._finish(submission_id, killed, where_status=row.status)
            await manager.finish_job_by_id_async(
                int(job.id or 0), status=procrastinate.jobs.Status.FAILED, delete_job=False
            )
        # A delivery a dead worker was sending goes again (a receiver may get it twice: the id tells).
        for job in await manager.get_stalled_jobs(queue=CALLBACK_QUEUE, seconds_since_heartbeat=self.stalled_after):
            await manager.retry_job_by_id_async(int(job.id or 0), retry_at=datetime.now(timezone.utc))
        await manager.prune_stalled_workers(seconds_since_heartbeat=self.stalled_after)

    # -- what the handlers ask ---------------------------------------------------------

    def validate(self, body: Any) -> dict[str, Any]:
        """A submission's request as it is stored: a POST execute body without
        session_id, with an optional callback_url, checked against the limits."""
        if isinstance(body, dict) and "session_id" in body:
            raise RequestError(400, "a submission runs in a fresh sandbox: leave out 'session_id'")
        fields = dict(body) if isinstance(body, dict) else body
        callback_url = fields.pop("callback_url", None) if isinstance(fields, dict) else None
        request = ExecutionRequest.from_json(fields)
        # PostgreSQL's JSON keeps neither NUL nor lone surrogates.
        files = [f for f in request.files or [] if isinstance(f, dict)]
        texts = [("code", request.code), ("stdin", request.stdin)]
        texts += [(f"files[{i}].content", f.get("content")) for i, f in enumerate(files)]
        for name, text in texts:
            if isinstance(text, str) and storable(text) is None:
                raise RequestError(400, f"'{name}' of a submission must be UTF-8 text without NUL (base64 for bytes)")
        assert self.execution is not None
        self.execution.check(request)
        stored: dict[str, Any] = {"code": request.code, "stdin": request.stdin, "timeout_s": request.timeout_s}
        if request.files is not None:
            stored["files"] = request.files
        if request.return_files is not None:
            stored["return_files"] = request.return_files
        if callback_url is not None:
            if not self.callback_secret:
                raise RequestError(400, "this server sends no callbacks (c.Submissions.callback_secret is not set)")
            try:
                check_url(callback_url, self.callback_allowed_hosts)
            except CallbackRefused as e:
                raise RequestError(400, str(e)) from None
            stored["callback_url"] = callback_url
        return stored

    async def _check_callback_hosts(self, bodies: list[dict[str, Any]]) -> None:
        """Refuse (RequestError 400) a callback whose host resolves to no address it may go to."""
        assert self._deliverer is not None or not any("callback_url" in b for b in bodies)
        for url in {b["callback_url"] for b in bodies if "callback_url" in b}:
            host, port = check_url(url, self.callback_allowed_hosts)
            try:
                await asyncio.wait_for(self._deliverer.check_host(host, port), CALLBACK_RESOLVE_S)  # type: ignore[union-attr]
            except CallbackRefused as e:
                raise RequestError(400, str(e)) from None
            except asyncio.TimeoutError:
                raise RequestError(
                    400, f"the callback's host {host} did not resolve in {CALLBACK_RESOLVE_S} s"
                ) from None

    async def submit(
        self, user: str, bodies: list[dict[str, Any]], idempotency_key: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Queue ``bodies`` (requests from :meth:`validate`) for ``user``; (their submissions, whether they are new).

        With an ``idempotency_key`` (one request only), the submission made earlier
        under the same key is returned if the request is the same, and
        SubmissionConflict raised if it is not.
        """
        assert self._app is not None and self.engine is not None
        if idempotency_key is not None:
            earlier = await self._by_key(user, idempotency_key, request_fingerprint(bodies[0]))
            if earlier is not None:
                return [earlier], False
        await self._check_callback_hosts(bodies)
        queued = await self._count(Submission.user == user, Submission.status == "queued")
        if queued + len(bodies) > self.max_queued_per_user:
            raise QueueFull(f"{queued} submission(s) are queued already; at most {self.max_queued_per_user} may wait")
        made = []
        for i, body in enumerate(bodies):
            submission_id = uuid.uuid4()
            values = {
                "id": submission_id, "user": user, "status": "queued", "request": body, "attempts": 0,
                "idempotency_key": idempotency_key, "request_sha256": request_fingerprint(body),
            }  # fmt: skip
            try:
                async with self.engine.begin() as connection:
                    row = (
                        (
                            await connection.execute(
                                insert(Submission).values(**values).returning(*Submission.__table__.c)
                            )
                        )
                        .mappings()
                        .one()
                    )
            except IntegrityError:  # the same key, at the same moment: the first one stands
                assert idempotency_key is not None
                earlier = await self._by_key(user, idempotency_key, request_fingerprint(body))
                if earlier is None:
                    raise
                return [earlier], False
            job_id = await self._app.configure_task(TASK, priority=-(queued + i)).defer_async(
                submission_id=str(submission_id)
            )
            await self._set(str(submission_id), job_id=job_id)
            made.append(public(row))
        QUEUED_DEPTH.inc(len(made))
        return made, True

    async def _by_key(self, user: str, key: str, fingerprint: bytes) -> dict[str, Any] | None:
        row = await self._first(Submission.user == user, Submission.idempotency_key == key)
        if row is None:
            return None
        if bytes(row["request_sha256"]) != fingerprint:
            raise SubmissionConflict("this Idempotency-Key was used for another request")
        return public(row)

    async def get(self, user: str, submission_id: str) -> dict[str, Any]:
        return public(await self._row(user, submission_id))

    async def page(self, user: str, *, status: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The user's submissions, newest first, and how many there are in all."""
        assert self.engine is not None
        where = [Submission.user == user] + ([Submission.status == status] if status is not None else [])
        query = select(Submission.__table__).where(*where).order_by(Submission.created_at.desc(), Submission.id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.limit(limit).offset(offset))).mappings().all()
        return [public(row) for row in rows], await self._count(*where)

    async def cancel(self, user: str, submission_id: str) -> dict[str, Any]:
        """Cancel a queued or running submission (a finished one is a SubmissionConflict)."""
        assert self._app is not None
        row = await self._row(user, submission_id)
        if row["status"] not in ("queued", "running"):
            raise SubmissionConflict(f"the submission is {row['status']} already")
        changed = await self._set(
            submission_id, where_status=row["status"], status="cancelled", finished_at=datetime.now(timezone.utc)
        )
        if not changed:  # it moved on meanwhile
            return await self.cancel(user, submission_id)
        await self._callback_after(submission_id, row["request"])
        if row["job_id"] is not None:
            await self._app.job_manager.cancel_job_by_id_async(row["job_id"], abort=row["status"] == "running")
        self._finished.pop(submission_id, asyncio.Event()).set()
        return await self.get(user, submission_id)

    async def wait(self, user: str, submission_id: str, timeout: float) -> dict[str, Any]:
        """The submission once it is finished, or as it is after ``timeout`` s."""
        deadline = asyncio.get_running_loop().time() + timeout
        event = self._finished.setdefault(submission_id, asyncio.Event())
        try:
            while True:
                submission = await self.get(user, submission_id)
                left = deadline - asyncio.get_running_loop().time()
                if submission["status"] in ("done", "cancelled") or left <= 0:
                    return submission
                try:  # woken by this server's worker; polled for another replica's
                    await asyncio.wait_for(event.wait(), timeout=min(left, 0.5))
                except asyncio.TimeoutError:
                    pass
        finally:
            if self._finished.get(submission_id) is event:
                del self._finished[submission_id]

    # -- the worker's task -------------------------------------------------------------

    async def _run(self, submission_id: str) -> None:
        """Run one submission (procrastinate's task): claim it, run it, store its result."""
        assert self.engine is not None and self.execution is not None
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(Submission)
                    .where(Submission.id == uuid.UUID(submission_id), Submission.status == "queued")
                    .values(status="running", started_at=func.now(), attempts=Submission.attempts + 1)
                    .returning(Submission.user, Submission.request)
                )
            ).first()
        if row is None:
            return  # cancelled before it ran
        QUEUED_DEPTH.dec()
        self._running.add(submission_id)
        try:
            await self._run_claimed(submission_id, row.user, row.request)
        finally:
            self._running.discard(submission_id)

    async def _run_claimed(self, submission_id: str, user: str, body: dict[str, Any]) -> None:
        assert self.execution is not None
        request = ExecutionRequest(
            code=body["code"], stdin=body["stdin"], timeout_s=body["timeout_s"],
            files=body.get("files"), return_files=body.get("return_files"),
        )  # fmt: skip
        while True:
            try:
                result = await self.execution.execute(request, owner=user)
                break
            except (CapacityError, SandboxUnavailableError) as e:  # every sandbox busy: it waits its turn
                self.log.info("Submission %s waits for a sandbox: %s", submission_id, e)
                await asyncio.sleep(1)
        await self._finish(submission_id, result.to_dict())
        if self.history is not None:
            self.history.record_run(user, "submission", request.code, result)  # type: ignore[attr-defined]

    async def _finish(self, submission_id: str, result: dict[str, Any], where_status: str = "running") -> None:
        assert self.engine is not None
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(Submission)
                    .where(Submission.id == uuid.UUID(submission_id), Submission.status == where_status)
                    .values(status="done", result=result, finished_at=datetime.now(timezone.utc))
                    .returning(Submission.request)
                )
            ).first()
        if row is not None:
            await self._callback_after(submission_id, row.request)
        self._finished.pop(submission_id, asyncio.Event()).set()

    # -- callbacks -------------------------------------------------------------------

    async def _callback_after(self, submission_id: str, request: dict[str, Any]) -> None:
        """Queue the delivery of a finished submission's callback, if it asked for one."""
        url = request.get("callback_url")
        if url is None or self._app is None:
            return
        pending = {"url": url, "status": "pending", "attempts": 0, "last_status": None, "error": None}
        await self._set(submission_id, callback=pending)
        await self._app.configure_task(CALLBACK_TASK).defer_async(submission_id=submission_id)

    async def _deliver(self, context: procrastinate.JobContext, submission_id: str) -> None:
        """Send a finished submission's callback (procrastinate's task): the submission as
        GET shows it, without its callback state. CallbackFailed has it tried again."""
        row = await self._first(Submission.id == uuid.UUID(submission_id))
        if row is None or row["callback"] is None:
            return
        url = row["callback"]["url"]
        attempt = (context.job.attempts or 0) + 1
        if self._deliverer is None:
            delivery = Delivery(None, "this server sends no callbacks (no callback_secret)", retry=False)
        else:
            submission = public(row)
            del submission["callback"]
            delivery = await self._deliverer.send(url, json.dumps(submission).encode())
        again = delivery.retry and attempt < self.callback_attempts
        state = "delivered" if delivery.error is None else "pending" if again else "failed"
        callback = {"url": url, "status": state, "attempts": attempt, "last_status": delivery.status_code}
        await self._set(submission_id, callback={**callback, "error": delivery.error})
        if again:
            raise CallbackFailed(delivery.error)

    # -- rows ------------------------------------------------------------------------

    async def _row(self, user: str, submission_id: str) -> Any:
        try:
            key = uuid.UUID(submission_id)
        except ValueError:
            raise SubmissionNotFound(submission_id) from None
        row = await self._first(Submission.id == key, Submission.user == user)
        if row is None:
            raise SubmissionNotFound(submission_id)
        return row

    async def _first(self, *where: Any) -> Any:
        """The row (a mapping) of the submission matching ``where``, or None."""
        assert self.engine is not None
        async with self.engine.connect() as connection:
            return (await connection.execute(select(Submission.__table__).where(*where))).mappings().first()

    async def _set(self, submission_id: str, where_status: str | None = None, **values: Any) -> bool:
        assert self.engine is not None
        where = [Submission.id == uuid.UUID(submission_id)]
        if where_status is not None:
            where.append(Submission.status == where_status)
        async with self.engine.begin() as connection:
            return (await connection.execute(update(Submission).where(*where).values(**values))).rowcount == 1

    async def _count(self, *where: Any) -> int:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            return int(
                (await connection.execute(select(func.count()).select_from(Submission).where(*where))).scalar_one()
            )


# -- the REST API ------------------------------------------------------------------------


class _SubmissionsAPIHandler(CodeRemoteAPIHandler):
    @property
    def submissions(self) -> Submissions:
        return self.settings["coderemote_submissions"]

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if not self.submissions.available:
            raise web.HTTPError(503, f"submissions are unavailable: {self.submissions.start_error}")

    def _location(self, submission_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/coderemote/submissions/{submission_id}"

    async def _queue(self, bodies: list[Any], idempotency_key: str | None) -> tuple[list[dict[str, Any]], bool]:
        """Validate and queue; the HTTP error for what the queue refuses."""
        owner = self.owner()
        try:
            stored = [self.submissions.validate(body) for body in bodies]
            await self.rate_limit("execute")
            return await self.submissions.submit(owner, stored, idempotency_key)
        except QueueFull as e:
            raise RequestError(429, str(e), {"Retry-After": str(self.submissions.queue_full_retry_after)}) from e
        except SubmissionConflict as e:
            raise web.HTTPError(409, str(e)) from e
        except (SQLAlchemyError, OSError) as e:
            self.log.error("Queueing a submission failed: %s", e)
            raise web.HTTPError(503, "the submission queue is unavailable right now") from e


class SubmissionsHandler(_SubmissionsAPIHandler):
    """``POST api/coderemote/submissions`` (``?wait=true``) and ``GET`` (``?status=&limit=&offset=``)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Queue one submission: 202 with its id (with ?wait=true: its result, 200, if it comes in time)."""
        wait = self.get_argument("wait", "false")
        if wait not in ("true", "false"):
            raise web.HTTPError(400, "'wait' must be true or false")
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()):
            raise web.HTTPError(400, f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters")
        body = self.json_body()
        (submission,), new = await self._queue([body], key)
        if wait == "true":
            timeout = self.submissions.validate(body)["timeout_s"] or self.submissions.execution.default_timeout  # type: ignore[union-attr]
            submission = await self.submissions.wait(
                self.owner(), submission["id"], timeout + self.submissions.wait_margin
            )
            if submission["status"] == "done":
                self.finish(submission["result"])
                return
        self.set_status(202 if new else 200)
        self.set_header("Location", self._location(submission["id"]))
        self.finish({"id": submission["id"], "status": submission["status"]})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's submissions, newest first."""
        limit, offset, status = self.page_arguments(STATUSES)
        found, total = await self.submissions.page(self.owner(), status=status, limit=limit, offset=offset)
        self.finish({"submissions": found, "total": total, "limit": limit, "offset": offset})


class SubmissionBatchHandler(_SubmissionsAPIHandler):
    """``POST api/coderemote/submissions/batch`` ``{submissions: [...]}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Queue up to max_batch submissions at once: 202 with their ids, in order."""
        body = self.json_body()
        if set(body) != {"submissions"} or not isinstance(body["submissions"], list):
            raise web.HTTPError(400, 'the body must be {"submissions": [...]}')
        bodies = body["submissions"]
        if not 1 <= len(bodies) <= self.submissions.max_batch:
            raise web.HTTPError(400, f"a batch holds 1 to {self.submissions.max_batch} submissions")
        made, _ = await self._queue(bodies, None)
        self.set_status(202)
        self.finish({"submissions": [{"id": s["id"], "status": s["status"]} for s in made]})


class SubmissionHandler(_SubmissionsAPIHandler):
    """``GET`` and ``DELETE api/coderemote/submissions/{id}``."""

    @web.authenticated
    @authorized
    async def get(self, submission_id: str) -> None:
        """One of the caller's submissions (another user's is 404)."""
        try:
            self.finish(await self.submissions.get(self.owner(), submission_id))
        except SubmissionNotFound as e:
            raise web.HTTPError(404, "no such submission") from e

    @web.authenticated
    @authorized
    async def delete(self, submission_id: str) -> None:
        """Cancel a queued or running submission; 409 if it has finished."""
        try:
            self.finish(await self.submissions.cancel(self.owner(), submission_id))
        except SubmissionNotFound as e:
            raise web.HTTPError(404, "no such submission") from e
        except SubmissionConflict as e:
            raise web.HTTPError(409, str(e)) from e


default_handlers: list[tuple[str, Any]] = [
    (r"/api/coderemote/submissions", SubmissionsHandler),
    (r"/api/coderemote/submissions/batch", SubmissionBatchHandler),
    (r"/api/coderemote/submissions/(?P<submission_id>[^/]+)", SubmissionHandler),
]
