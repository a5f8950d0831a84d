"""Per-user rate limits, with the ``limits`` library's moving-window strategy.

Every counted request names its owner (``owner_of``) and a *kind*:

``execute``
    ``POST api/coderemote/execute``;
``analyze``
    ``POST api/coderemote/analyze`` with timed runs (the ``empirical`` method);
``kernel_start``
    a kernel started through ``api/kernels`` or ``api/sessions``;
``websocket_execute``
    an ``execute_request`` on the kernel websocket.

The first three share one budget per user (``executions_per_minute`` with
``burst``); websocket cells have their own, higher one
(``websocket_executions_per_minute``).

The counters live in PostgreSQL (the snippet database, table
``rate_limit_windows``), so that every replica of the service sees the same
ones; only when that database is unavailable are they kept in memory, per
process (``limits``' MemoryStorage).

Why a moving window: it counts exactly the hits of the last window (a fixed
window lets a client spend two windows' worth across a boundary), it is what
``limits`` offers closest to a token bucket, and it keeps at most ``limit``
timestamps per key, which is little at these limits. A ``burst`` other than
the per-minute limit adds a second window of ``burst`` hits per
``burst / rate`` minutes: the long-run rate stays the same, and at most
``burst`` hits come in quick succession.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from traitlets import Bool, Enum, Float, Instance, Integer, default
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext.base import RequestError

SHARED_KINDS = ("execute", "analyze", "kernel_start")
WEBSOCKET_KIND = "websocket_execute"
KINDS = (*SHARED_KINDS, WEBSOCKET_KIND)


class RateLimited(RequestError):
    """A request over its owner's limit (429): when to retry and the limit's state (seconds, hits)."""

    def __init__(self, kind: str, retry_after: float, limit: int, remaining: int, reset: float) -> None:
        self.kind = kind
        self.retry_after = max(1, math.ceil(retry_after))
        self.limit = limit
        self.remaining = max(0, remaining)
        self.reset = max(1, math.ceil(reset))
        super().__init__(
            429,
            f"rate limit reached: {limit} {kind.replace('_', ' ')} request(s) per window; "
            f"retry in {self.retry_after} s",
            # Retry-After and the RateLimit-* headers (draft-ietf-httpapi-ratelimit-headers).
            {
                "Retry-After": str(self.retry_after),
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset),
            },
        )

    def body(self) -> dict[str, Any]:
        return {"message": str(self), "reason": "rate_limited", "retry_after": self.retry_after}


def async_engine(sync_engine: Any) -> AsyncEngine:
    """An asyncio engine (psycopg 3) on the same database as a synchronous SQLAlchemy engine.

    Every statement the limiter and the history send is atomic on its own, so the
    engine autocommits: one round trip per statement, no BEGIN and COMMIT. No
    pre-ping either (another round trip): a connection the database dropped fails
    one statement, which the limiter lets through and the history logs, and is
    then replaced by the pool."""
    url = sync_engine.url.set(drivername="postgresql+psycopg")
    return create_async_engine(url, pool_size=4, max_overflow=4, pool_recycle=3600, isolation_level="AUTOCOMMIT")


# One statement per hit: the row of the key is locked by the upsert, the hits
# older than the window are dropped, and the new ones are added only if there
# is room. Every expression of SET sees the row as it was, so last_acquired
# and hits agree.
_ACQUIRE = text(
    """
    INSERT INTO rate_limit_windows AS w (key, hits, counter, last_acquired, expires_at)
    VALUES (
        :key,
        CASE WHEN :amount <= :limit THEN array_fill(CAST(:now AS float8), ARRAY[:amount]) ELSE '{}' END,
        0, :amount <= :limit, :now + :expiry
    )
    ON CONFLICT (key) DO UPDATE SET
        hits = (
            SELECT CASE WHEN count(*) + :amount <= :limit
                THEN array_fill(CAST(:now AS float8), ARRAY[:amount]) || coalesce(array_agg(x ORDER BY x DESC), '{}')
                ELSE coalesce(array_agg(x ORDER BY x DESC), '{}') END
            FROM unnest(w.hits) AS x WHERE x > :now - :expiry
        ),
        last_acquired = (SELECT count(*) + :amount <= :limit FROM unnest(w.hits) AS x WHERE x > :now - :expiry),
        expires_at = greatest(w.expires_at, :now + :expiry)
    RETURNING last_acquired
    """
)
_WINDOW = text("SELECT hits FROM rate_limit_windows WHERE key = :key")
_INCR = text(
    """
    INSERT INTO rate_limit_windows AS w (key, counter, expires_at) VALUES (:key, :amount, :now + :expiry)
    ON CONFLICT (key) DO UPDATE SET
        counter = CASE WHEN w.expires_at <= :now THEN :amount ELSE w.counter + :amount END,
        expires_at = CASE WHEN w.expires_at <= :now THEN :now + :expiry ELSE w.expires_at END
    RETURNING counter
    """
)


class PostgresStorage(Storage, MovingWindowSupport):
    """A ``limits`` asyncio storage on PostgreSQL (table ``rate_limit_windows``), shared by replicas.

    Times are the servers' clocks (epoch seconds), as in limits' own storages:
    replicas are expected to keep their clocks in step (NTP).
    """

    STORAGE_SCHEME = None

    def __init__(self, engine: AsyncEngine, **options: Any) -> None:
        super().__init__(**options)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        params = {"key": key, "limit": limit, "expiry": float(expiry), "amount": amount, "now": time.time()}
        async with self.engine.begin() as connection:
            return bool((await connection.execute(_ACQUIRE, params)).scalar_one())

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        async with self.engine.connect() as connection:
            hits = (await connection.execute(_WINDOW, {"key": key})).scalar_one_or_none() or []
        live = [hit for hit in hits if hit > now - expiry]
        return (min(live), len(live)) if live else (now, 0)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        params = {"key": key, "expiry": float(expiry), "amount": amount, "now": time.time()}
        async with self.engine.begin() as connection:
            return int((await connection.execute(_INCR, params)).scalar_one())

    async def get(self, key: str) -> int:
        query = text("SELECT counter FROM rate_limit_windows WHERE key = :key AND expires_at > :now")
        async with self.engine.connect() as connection:
            return int((await connection.execute(query, {"key": key, "now": time.time()})).scalar_one_or_none() or 0)

    async def get_expiry(self, key: str) -> float:
        query = text("SELECT expires_at FROM rate_limit_windows WHERE key = :key")
        async with self.engine.connect() as connection:
            found = (await connection.execute(query, {"key": key})).scalar_one_or_none()
        return float(found) if found is not None else time.time()

    async def check(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    async def reset(self) -> int | None:
        async with self.engine.begin() as connection:
            return int((await connection.execute(text("DELETE FROM rate_limit_windows"))).rowcount)

    async def clear(self, key: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text("DELETE FROM rate_limit_windows WHERE key = :key"), {"key": key})

    async def purge_expired(self) -> int:
        """Drop the rows of keys with no hit left in their window."""
        async with self.engine.begin() as connection:
            query = text("DELETE FROM rate_limit_windows WHERE expires_at < :now")
            return int((await connection.execute(query, {"now": time.time()})).rowcount)


@dataclass(frozen=True)
class Budget:
    """The moving windows one kind of request must all have room in."""

    items: tuple[RateLimitItem, ...]


class RateLimiter(LoggingConfigurable):
    """Per-user limits on executions, timed analyses, kernel starts and websocket cells."""

    executions_per_minute = Integer(
        10,
        config=True,
        help="""REST executions, analyses with timed runs and kernel starts one user may
        make per window (window_seconds, a minute by default), together. 0 turns the
        limit off. Default: 10. Raise it for classes or products whose users run code in bursts.""",
    )
    burst = Integer(
        config=True,
        help="""Most of those requests one user may make in quick succession. Default:
        executions_per_minute (a moving window of that many per window). A smaller
        value spreads them out; a larger one allows a burst, with the same long-run rate.""",
    )

    @default("burst")
    def _default_burst(self) -> int:
        return self.executions_per_minute

    websocket_executions_per_minute = Integer(
        120,
        config=True,
        help="""Cells (execute_request messages on the kernel websocket) one user may run
        per window; interactive work runs many small cells, hence the higher default.
        0 turns the limit off. Default: 120.""",
    )
    window_seconds = Integer(
        60,
        config=True,
        help="""Length of the window of the *_per_minute limits, s (default 60). Shorter
        windows suit tests; the limits then count per that many seconds.""",
    )
    storage = Enum(
        ["auto", "database", "memory"],
        "auto",
        config=True,
        help="""Where the counters are kept: 'database' (PostgreSQL, the snippet
        database: shared by every replica), 'memory' (this process only), or 'auto':
        the database when it is one other replicas can reach (SnippetStore.database_url
        is set), memory with the embedded PostgreSQL, which serves this server alone
        (a hit costs about 1 ms in PostgreSQL, microseconds in memory). Default: auto.""",
    )
    purge_interval = Float(
        600.0,
        config=True,
        help="""How often rows of keys with no hit left are deleted from the database, s
        (0: never). Default: 600 s.""",
    )
    engine = Instance(AsyncEngine, allow_none=True, help="The database engine (None: counters in memory).")
    shared_database = Bool(
        False, help="Whether engine is a database server other replicas use too (not the embedded one)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._purger: asyncio.Task[Any] | None = None
        if self.storage == "database" and self.engine is None:
            self.log.error("RateLimiter.storage is 'database' but the database is unavailable: counting in memory")
        self.backend: Storage
        if self.engine is not None and (
            self.storage == "database" or (self.storage == "auto" and self.shared_database)
        ):
            self.backend = PostgresStorage(self.engine)
            self.where = "database"
        else:
            self.backend = MemoryStorage()
            self.where = "memory"
        self.strategy = MovingWindowRateLimiter(self.backend)
        self.budgets = {kind: self._budget(self.executions_per_minute, self.burst) for kind in SHARED_KINDS}
        self.budgets[WEBSOCKET_KIND] = self._budget(self.websocket_executions_per_minute, None)

    def _budget(self, rate: int, burst: int | None) -> Budget:
        if rate <= 0:
            return Budget(())
        window = self.window_seconds
        if burst is None or burst == rate or burst <= 0:
            return Budget((RateLimitItemPerSecond(rate, window, namespace="coderemote"),))
        burst_window = max(1, math.ceil(window * burst / rate))
        burst_item = RateLimitItemPerSecond(burst, burst_window, namespace="coderemote")
        if burst > rate:  # a larger burst, refilled at the same long-run rate
            return Budget((burst_item,))
        return Budget((burst_item, RateLimitItemPerSecond(rate, window, namespace="coderemote")))

    def _bucket(self, kind: str) -> str:
        return "executions" if kind in SHARED_KINDS else kind

    async def hit(self, owner: str, kind: str) -> None:
        """Count one request of ``kind`` (see KINDS) by ``owner``; RateLimited when over a limit.

        A database failure lets the request through (logged): the limiter must not
        take the service down with its database.
        """
        budget = self.budgets.get(kind)
        if budget is None:
            raise ValueError(f"unknown rate-limit kind {kind!r}; one of {', '.join(KINDS)}")
        for item in budget.items:
            try:
                allowed = await self.strategy.hit(item, self._bucket(kind), owner)
                if allowed:
                    continue
                stats = await self.strategy.get_window_stats(item, self._bucket(kind), owner)
            except SQLAlchemyError as e:
                self.log.warning("Rate limit of %s not checked (database error): %s", owner, e)
                return
            wait = stats.reset_time - time.time()
            raise RateLimited(kind, wait, item.amount, stats.remaining, wait)

    def start(self) -> None:
        """Start the periodic purge of stale database rows (needs a running loop)."""
        if isinstance(self.backend, PostgresStorage) and self._purger is None and self.purge_interval > 0:
            self._purger = asyncio.ensure_future(self._purge_forever(self.backend))

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            self._purger = None

    async def _purge_forever(self, backend: PostgresStorage) -> None:
        while True:
            await asyncio.sleep(self.purge_interval)
            try:
                await backend.purge_expired()
            except SQLAlchemyError as e:
                self.log.warning("Could not purge stale rate-limit rows: %s", e)
