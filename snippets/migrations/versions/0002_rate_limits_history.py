"""Shared rate-limit windows and the execution history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("hits", sa.ARRAY(sa.Double), nullable=False, server_default="{}"),
        sa.Column("counter", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_acquired", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_rate_limit_windows_expires_at", "rate_limit_windows", ["expires_at"])
    op.create_table(
        "executions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("duration_ms", sa.Double, nullable=False),
        sa.Column("code_bytes", sa.Integer, nullable=False),
        sa.Column("code_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("kernel_id", sa.String(64)),
        sa.Column("code", sa.Text),
    )
    # A user's page, newest first (with or without a status), and the retention purge.
    op.create_index("ix_executions_user_created", "executions", ["user", sa.text("created_at DESC"), "id"])
    op.create_index("ix_executions_created", "executions", ["created_at"])


def downgrade() -> None:
    op.drop_table("executions")
    op.drop_table("rate_limit_windows")
