"""What each execution cost: CPU time and peak memory from the sandbox's cgroup.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("cpu_ms", sa.Double, nullable=True))
    op.add_column("executions", sa.Column("peak_memory_bytes", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("executions", "peak_memory_bytes")
    op.drop_column("executions", "cpu_ms")
