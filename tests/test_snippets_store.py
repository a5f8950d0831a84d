"""The snippet store on a real PostgreSQL with pgvector (the embedded server), through its Python API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, inspect, text

from analysis_ext.patterns import PATTERNS
from analysis_ext.service import code_patterns
from snippets import migrate
from snippets.embeddings import GeminiEmbedder, MiniLMEmbedder
from snippets.patterns import SYNONYMS, query_patterns
from snippets.search import Filters
from snippets.store import SnippetStore, VersionConflict, sqlalchemy_url

FIB = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
CHART = "import matplotlib.pyplot as plt\n\nplt.bar(['jan', 'feb'], [120, 90])\nplt.title('revenue')\nplt.show()\n"
CSV_READ = "import csv\n\nwith open('people.csv') as f:\n    rows = list(csv.DictReader(f))\nprint(len(rows))\n"
PRIMES = (
    "def sieve(limit):\n    flags = [True] * (limit + 1)\n    for i in range(2, int(limit ** 0.5) + 1):\n"
    "        if flags[i]:\n            flags[i * i :: i] = [False] * len(flags[i * i :: i])\n"
    "    return [i for i in range(2, limit + 1) if flags[i]]\n"
)


@pytest.fixture
def store(fresh_database_url: str, tmp_path: Path) -> Iterator[SnippetStore]:
    unused = str(tmp_path / "unused")
    store = SnippetStore(database_url=fresh_database_url, data_dir=unused, detect_patterns=code_patterns)
    store.start()
    yield store
    store.stop()


def add_library(store: SnippetStore, owner: str = "alice") -> dict[str, str]:
    """Four snippets whose names say little (as people name them), by name."""
    ids = {}
    for name, code in [("util1", FIB), ("report", CHART), ("load", CSV_READ), ("numbers", PRIMES)]:
        ids[name] = store.create(owner, {"name": name, "code": code})["id"]
    return ids


def test_migrations_from_empty_database(fresh_database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(fresh_database_url))
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    migrate.upgrade(engine)  # a second start finds nothing to do
    assert migrate.current_revision(engine) == "0004"
    inspector = inspect(engine)
    assert {"users", "snippets", "executions", "rate_limit_windows", "submissions", "alembic_version"} <= set(
        inspector.get_table_names()
    )
    columns = {c["name"] for c in inspector.get_columns("snippets")}
    assert {
        "name", "description", "code", "language", "time_complexity", "space_complexity", "explanation",
        "suggestions", "patterns", "analyzed_at", "model_used", "is_starred", "created_at", "updated_at",
        "version", "embedding", "embedding_model", "search_vector",
    } <= columns
    with engine.connect() as connection:
        assert connection.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    assert "ix_snippets_search_vector" in {i["name"] for i in inspector.get_indexes("snippets")}
    engine.dispose()


def test_vector_index_per_model(store: SnippetStore) -> None:
    with store.engine.connect() as connection:
        indexes = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = 'snippets' AND indexdef LIKE '%hnsw%'")
        ).scalars().all()
    assert len(indexes) == 1
    assert "vector(384)" in indexes[0] and "all-MiniLM-L6-v2" in indexes[0]


def test_found_by_words_at_once_and_by_meaning_once_embedded(store: SnippetStore) -> None:
    ids = add_library(store)
    words = store.search("alice", "sieve", signals=("text",))
    assert words[0]["snippet"]["id"] == ids["numbers"]
    store.wait_embedded()
    # None of these words is in the snippets: only the vectors can answer.
    for query, expected in [
        ("draw a diagram of monthly sales", "report"),
        ("parse a spreadsheet export", "load"),
        ("generate primes", "numbers"),
    ]:
        vector_only = store.search("alice", query, signals=("vector",))
        assert vector_only[0]["snippet"]["id"] == ids[expected], query
        assert store.search("alice", query)[0]["snippet"]["id"] == ids[expected], query


def test_query_words_become_code_patterns(store: SnippetStore) -> None:
    ids = add_library(store)
    assert store.get("alice", ids["util1"])["patterns"] == ["recursion"]  # detected on save
    assert "plotting" in store.get("alice", ids["report"])["patterns"]
    results = store.search("alice", "my recursive stuff", signals=("patterns",))
    assert [r["snippet"]["id"] for r in results] == [ids["util1"]]
    assert query_patterns("the thing that plots a chart") == ["plotting"]
    assert set(SYNONYMS) <= set(PATTERNS)  # only names the detector can find


def test_search_filters(store: SnippetStore) -> None:
    ids = add_library(store)
    store.star("alice", ids["load"], True)
    store.update("alice", ids["numbers"], {"time_complexity": "O(n log n)", "language": "python3"})
    store.wait_embedded()
    assert [r["snippet"]["id"] for r in store.search("alice", "code", filters=Filters(starred=True))] == [ids["load"]]
    by_complexity = store.search("alice", "code", filters=Filters(time_complexity="O(n log n)"))
    assert [r["snippet"]["id"] for r in by_complexity] == [ids["numbers"]]
    assert [r["snippet"]["id"] for r in store.search("alice", "x", filters=Filters(language="python3"))] == [
        ids["numbers"]
    ]


def test_owners_never_see_each_other(store: SnippetStore) -> None:
    ids = add_library(store, owner="alice")
    store.create("bob", {"name": "bob's", "code": "print('bob')"})
    store.wait_embedded()
    assert store.search("bob", "chart of sales") == [] or all(
        r["snippet"]["name"] == "bob's" for r in store.search("bob", "chart of sales")
    )
    assert store.list_snippets("bob").total == 1
    with pytest.raises(LookupError):
        store.get("bob", ids["report"])
    with pytest.raises(LookupError):
        store.update("bob", ids["report"], {"name": "mine now"})
    with pytest.raises(LookupError):
        store.delete("bob", ids["report"])
    assert store.get("alice", ids["report"])["name"] == "report"


def test_update_versions_and_reembedding(store: SnippetStore) -> None:
    snippet = store.create("alice", {"name": "a", "code": FIB, "time_complexity": "O(2^n)"})
    store.wait_embedded()
    assert store.get("alice", snippet["id"])["embedding_model"] == "all-MiniLM-L6-v2"
    changed = store.update("alice", snippet["id"], {"code": CHART}, version=1)
    assert changed["version"] == 2
    assert changed["time_complexity"] is None  # the analysis was of the old code
    assert changed["embedding_model"] is None  # its vector is made again
    with pytest.raises(VersionConflict):
        store.update("alice", snippet["id"], {"name": "b"}, version=1)
    store.wait_embedded()
    assert store.search("alice", "bar plot", signals=("vector",))[0]["snippet"]["id"] == snippet["id"]


class GeminiStandIn(BaseHTTPRequestHandler):
    """Answers batchEmbedContents like the Gemini API: a vector from each text's letters."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        GeminiStandIn.requests.append({"path": self.path, "key": self.headers.get("x-goog-api-key"), "body": body})
        embeddings = []
        for request in body["requests"]:
            words = " ".join(part["text"] for part in request["content"]["parts"]).lower()
            size = request.get("outputDimensionality", 8)
            embeddings.append({"values": [float(words.count(c)) + 0.01 for c in "abcdefghijklmnopqrstuvwxyz"[:size]]})
        payload = json.dumps({"embeddings": embeddings}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gemini_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GeminiStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    GeminiStandIn.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_gemini_embeddings_and_model_change(store: SnippetStore, gemini_url: str) -> None:
    """The real google-genai SDK against a local stand-in HTTP server (no network here).

    Switching models re-embeds every snippet in the background; vectors of the
    two models (384 and 8 dimensions) live side by side and are never compared.
    """
    ids = add_library(store)
    store.wait_embedded()
    gemini = GeminiEmbedder("test-key", model="gemini-embedding-001", dimensions=8, base_url=gemini_url)
    store.set_embedder(gemini)
    store.wait_embedded()
    sent = GeminiStandIn.requests[0]
    assert sent["path"].endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert sent["key"] == "test-key"
    assert sent["body"]["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"
    assert {store.get("alice", i)["embedding_model"] for i in ids.values()} == {"gemini:gemini-embedding-001:8"}
    results = store.search("alice", "abc", signals=("vector",))
    assert len(results) == 4
    assert GeminiStandIn.requests[-1]["body"]["requests"][0]["taskType"] == "RETRIEVAL_QUERY"
    with store.engine.connect() as connection:
        hnsw = connection.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = 'snippets' AND indexdef LIKE '%hnsw%'")
        ).scalar()
    assert hnsw == 2


def test_embedded_server_restarts_with_data(postgres_tmp_path: Path) -> None:
    tmp_path = postgres_tmp_path
    store = SnippetStore(database_url="", data_dir=str(tmp_path))
    store.start()
    snippet = store.create("alice", {"name": "kept", "code": FIB})
    pid = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
    store.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    again = SnippetStore(database_url="", data_dir=str(tmp_path))
    again.start()
    try:
        assert again.get("alice", snippet["id"])["name"] == "kept"
    finally:
        again.stop()


def test_configured_url_is_used_instead_of_embedded(fresh_database_url: str, tmp_path: Path) -> None:
    # fresh_database_url lives on the session's embedded server: a second, separate instance.
    store = SnippetStore(database_url=fresh_database_url, data_dir=str(tmp_path))
    store.start()
    try:
        snippet = store.create("alice", {"name": "remote", "code": FIB})
    finally:
        store.stop()
    assert not (tmp_path / "postgres").exists()
    engine = create_engine(sqlalchemy_url(fresh_database_url))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM snippets WHERE id = :id"), {"id": snippet["id"]}).scalar() == (
            "remote"
        )
    engine.dispose()


def test_racing_processes_share_one_server(postgres_tmp_path: Path) -> None:
    tmp_path = postgres_tmp_path
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from snippets.postgres import EmbeddedPostgres
        server = EmbeddedPostgres(Path({str(tmp_path / "pgdata")!r}))
        server.start()
        print(Path({str(tmp_path / "pgdata")!r}, "postmaster.pid").read_text().split()[0], flush=True)
        time.sleep(1.5)
        server.stop()
        """
    )
    root = Path(__file__).parent.parent
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root)
        for _ in range(2)
    ]
    pids = {p.communicate(timeout=60)[0].strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert len(pids) == 1
    pid = int(pids.pop())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_local_model_matches_sentence_transformers() -> None:
    """The numpy encoder against figures of the reference implementation
    (sentence-transformers 6.2 on PyTorch, the same weights, computed once
    outside this suite): the first dimensions of two vectors and a similarity."""
    embedder = MiniLMEmbedder()
    food, fib, recursive = embedder.embed_documents(
        ["A man is eating food.", "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n",
         "my recursive stuff"]
    )
    assert food[:6] == pytest.approx([0.033242, 0.004406, -0.006277, 0.048379, -0.138702, -0.033617], abs=1e-5)
    assert fib[:6] == pytest.approx([-0.015863, 0.023602, -0.019348, -0.028063, -0.050607, 0.000768], abs=1e-5)
    assert sum(a * b for a, b in zip(recursive, fib, strict=True)) == pytest.approx(0.388536, abs=1e-5)
    assert embedder.embed_query("A man is eating food.") == pytest.approx(food, abs=1e-6)
