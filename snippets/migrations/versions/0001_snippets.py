"""Users and snippets, with full-text and pattern indexes (vector indexes are per model, made at start-up).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

# A copy, not an import of the model's: a migration must not change when the models do.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english', regexp_replace(name, '([a-z])([A-Z])', '\\1 \\2', 'g')), 'A') || "
    "setweight(to_tsvector('english', description), 'B') || "
    "setweight(to_tsvector('english', regexp_replace(code, '([a-z])([A-Z])', '\\1 \\2', 'g')), 'C')"
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "snippets",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("language", sa.String(32), nullable=False, server_default="python"),
        sa.Column("time_complexity", sa.String(32)),
        sa.Column("space_complexity", sa.String(32)),
        sa.Column("explanation", sa.Text),
        sa.Column("suggestions", JSONB),
        sa.Column("patterns", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("analyzed_at", sa.DateTime(timezone=True)),
        sa.Column("model_used", sa.String(255)),
        sa.Column("is_starred", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("embedding", Vector()),
        sa.Column("embedding_model", sa.String(255)),
        sa.Column("search_vector", TSVECTOR, sa.Computed(SEARCH_VECTOR_SQL, persisted=True)),
    )
    op.create_index("ix_snippets_owner_updated", "snippets", ["owner_id", sa.text("updated_at DESC")])
    op.create_index("ix_snippets_search_vector", "snippets", ["search_vector"], postgresql_using="gin")
    op.create_index("ix_snippets_patterns", "snippets", ["patterns"], postgresql_using="gin")
    # The embedding worker looks for rows whose vector is missing or of another model.
    op.create_index("ix_snippets_embedding_model", "snippets", ["embedding_model"])


def downgrade() -> None:
    op.drop_table("snippets")
    op.drop_table("users")
