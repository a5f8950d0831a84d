"""SQLAlchemy models of the snippet library (the schema itself is made by the Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
