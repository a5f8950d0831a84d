"""SQLAlchemy models of the service's database: the snippet library, the shared rate-limit
windows, the execution history and the submissions (the schema itself is made by the Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Full text over name (weight A), description (B) and code (C). camelCase and
# snake_case identifiers are split so that "binarySearch" and "binary_search" match "binary search".
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english', regexp_replace(name, '([a-z])([A-Z])', '\\1 \\2', 'g')), 'A') || "
    "setweight(to_tsvector('english', description), 'B') || "
    "setweight(to_tsvector('english', regexp_replace(code, '([a-z])([A-Z])', '\\1 \\2', 'g')), 'C')"
)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Snippet(Base):
    """A saved piece of code; ``version`` rises on every update (optimistic concurrency)."""

    __tablename__ = "snippets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    code: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(32), default="python")

    time_complexity: Mapped[str | None] = mapped_column(String(32))
    space_complexity: Mapped[str | None] = mapped_column(String(32))
    explanation: Mapped[str | None] = mapped_column(Text)
    suggestions: Mapped[list[str] | None] = mapped_column(JSONB)
    patterns: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    analyzed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    model_used: Mapped[str | None] = mapped_column(String(255))

    is_starred: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, default=1)

    # The vector has no fixed size here: each model's vectors get their own
    # partial HNSW index (see search.ensure_vector_index), and only vectors of
    # the same model are ever compared.
    embedding: Mapped[Any] = mapped_column(Vector(), deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(255))
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True), deferred=True)

    __mapper_args__ = {"version_id_col": version}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "description": self.description,
            "code": self.code,
            "language": self.language,
            "time_complexity": self.time_complexity,
            "space_complexity": self.space_complexity,
            "explanation": self.explanation,
            "suggestions": self.suggestions,
            "patterns": list(self.patterns or []),
            "analyzed_at": _iso(self.analyzed_at),
            "model_used": self.model_used,
            "is_starred": self.is_starred,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "version": self.version,
            "embedding_model": self.embedding_model,
        }


class RateLimitWindow(Base):
    """One rate-limit key (a user and a kind of request, see kernel_gateway_ext.ratelimit):
    the times of its hits still inside the moving window, newest first, shared by every replica."""

    __tablename__ = "rate_limit_windows"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    hits: Mapped[list[float]] = mapped_column(ARRAY(Double), default=list)
    counter: Mapped[int] = mapped_column(Integer, default=0)  # fixed-window counter (limits' incr/get)
    last_acquired: Mapped[bool] = mapped_column(Boolean, default=False)  # whether the latest hit got in
    expires_at: Mapped[float] = mapped_column(Double)  # epoch seconds after which the row says nothing


class Execution(Base):
    """One execution: a REST run, a websocket cell or a timed run of an analysis."""

    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    duration_ms: Mapped[float] = mapped_column(Double)
    code_bytes: Mapped[int] = mapped_column(Integer)
    code_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    kernel_id: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(Text)  # only with History.keep_code
    cpu_ms: Mapped[float | None] = mapped_column(Double)  # from the sandbox's cgroup, when it could be read
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "created_at": _iso(self.created_at),
            "source": self.source,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "code_bytes": self.code_bytes,
            "code_sha256": self.code_sha256.hex(),
            "kernel_id": self.kernel_id,
            "code": self.code,
            "usage": {"cpu_ms": self.cpu_ms, "peak_memory_bytes": self.peak_memory_bytes, "wall_ms": self.duration_ms},
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Submission(Base):
    """One asynchronous execution: its request, where it is in the queue, and its result."""

    __tablename__ = "submissions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | cancelled
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {code, stdin, timeout_s}
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # the queue's (procrastinate) job
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # exactly POST execute's answer
    # The callback's delivery, once the submission finished: {url, status, attempts, last_status, error}.
    callback: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
