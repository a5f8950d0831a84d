"""Submissions: asynchronous executions, queued in the database (the rows, and
procrastinate's queue tables and functions, from the procrastinate installed).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is None:
        # On the driver's own cursor, without parameters: psycopg reads no placeholders into it.
        with connection.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(SchemaManager.get_schema())
    op.create_table(
        "submissions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", JSONB, nullable=True),
        sa.Column("callback", JSONB, nullable=True),  # its delivery: {url, status, attempts, last_status, error}
    )
    op.create_index("submissions_user_created", "submissions", ["user", sa.text("created_at DESC")])
    op.create_index("submissions_user_status", "submissions", ["user", "status"])
    # One submission per (user, Idempotency-Key).
    op.create_index(
        "submissions_idempotency",
        "submissions",
        ["user", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("submissions")
