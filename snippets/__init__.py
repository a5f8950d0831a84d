"""The snippet library: SQLAlchemy models, Alembic migrations, embeddings and hybrid search on PostgreSQL + pgvector."""
