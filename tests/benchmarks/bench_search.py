#!/usr/bin/env python
"""Search quality and speed of the snippet library, on the embedded PostgreSQL + pgvector.

Run it as a script (pytest does not collect it)::

    python tests/benchmarks/bench_search.py              # about 3-5 minutes on 2 cores
    python tests/benchmarks/bench_search.py --rows 2000  # a smaller latency table

What is measured:

1. Quality, on two sets: the public dev set (/work/shared/eval/search_dev*.jsonl,
   or --dev-dir) and this folder's own set (data/search_extra*.jsonl, 36
   snippets and 30 queries written for it). Each set is one user's library;
   for every query the ranking of each signal alone (vector, text, patterns)
   and of the hybrid (all three fused by RRF) gives recall@5 (share of the
   relevant snippets in the top 5) and MRR (1 / rank of the first relevant
   one, 0 if not in the top 10), averaged over the queries.
2. Insert throughput: snippets saved through the store (a database row each)
   per second, and saved-and-embedded per second (from the first save until
   the background worker has the vector of the last one).
3. Latency with ``--rows`` (10,000) snippets in one user's library: hybrid
   search p50/p99 without the query's embedding (its vector computed
   beforehand) and with it, and the query embedding alone. Embedding 10,000
   snippets here would take most of an hour on 2 cores, so these rows carry
   synthetic vectors: mixtures of real embeddings of the two sets' snippets
   and queries plus noise, normalised (distinct vectors spread over the same
   region of the space). Their text is the sets' code with renamed
   identifiers, so full text and patterns have realistic postings too.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import harness
import numpy as np
from sqlalchemy import insert, text

from analysis_ext.service import code_patterns as detect_patterns
from snippets.embeddings import document_text
from snippets.models import Snippet
from snippets.search import WEIGHTS, ensure_vector_index
from snippets.store import SnippetStore

SIGNALS = {
    "vector": ("vector",),
    "text": ("text",),
    "patterns": ("patterns",),
    "hybrid": ("vector", "text", "patterns"),
}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_set(store: SnippetStore, owner: str, snippets: list[dict[str, Any]]) -> tuple[dict[str, str], float, float]:
    """Save a set as ``owner``'s library; returns (set id -> snippet id, saves/s, saved-and-embedded/s)."""
    started = time.perf_counter()
    ids = {}
    for s in snippets:
        created = store.create(owner, {"name": s["name"], "description": s["description"], "code": s["code"]})
        ids[created["id"]] = s["id"]
    saved = time.perf_counter() - started
    store.wait_embedded(timeout=1800)
    embedded = time.perf_counter() - started
    return ids, len(snippets) / saved, len(snippets) / embedded


def quality(store: SnippetStore, owner: str, ids: dict[str, str], queries: list[dict[str, Any]]) -> dict[str, Any]:
    scores: dict[str, dict[str, float]] = {}
    for label, signals in SIGNALS.items():
        recalls, reciprocal_ranks = [], []
        for q in queries:
            ranked = [ids[r["snippet"]["id"]] for r in store.search(owner, q["query"], limit=10, signals=signals)]
            relevant = set(q["relevant"])
            recalls.append(len(relevant & set(ranked[:5])) / len(relevant))
            first = next((i for i, sid in enumerate(ranked, 1) if sid in relevant), None)
            reciprocal_ranks.append(1 / first if first else 0.0)
        scores[label] = {"recall@5": statistics.mean(recalls), "mrr": statistics.mean(reciprocal_ranks)}
    return scores


def synthetic_rows(
    store: SnippetStore, owner: str, corpus: list[dict[str, Any]], queries: list[str], count: int, seed: int = 7
) -> None:
    """``count`` rows with mixed real vectors (see the module docstring), inserted in batches."""
    rng = random.Random(seed)
    embedder = store.embedder
    with store.engine.connect() as connection:  # the sets' snippets, embedded by the quality run
        stored = {
            row.code: np.array(row.embedding, dtype=np.float32)
            for row in connection.execute(
                text("SELECT code, embedding::real[] AS embedding FROM snippets WHERE embedding IS NOT NULL")
            )
        }
    base = np.array(
        [
            stored.get(s["code"])
            if s["code"] in stored
            else embedder.embed_documents([document_text(SimpleNamespace(**s))])[0]
            for s in corpus
        ]
        + [embedder.embed_query(q) for q in queries],
        dtype=np.float32,
    )
    np_rng = np.random.default_rng(seed)
    owner_id = store.user_id(owner)
    words = ["alpha", "beta", "gamma", "delta", "tmp", "util", "main", "helper", "calc", "proc", "job", "thing"]
    now = datetime.now(timezone.utc)
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as connection:
        for n in range(count):
            i, j = rng.randrange(len(base)), rng.randrange(len(base))
            vector = base[i] * rng.uniform(0.5, 1.0) + base[j] * rng.uniform(0.0, 0.5)
            vector = vector + np_rng.normal(0, 0.02, vector.shape).astype(np.float32)
            vector /= np.linalg.norm(vector)
            source = corpus[i % len(corpus)]
            suffix = f"{rng.choice(words)}{n}"
            code = source["code"].replace("def ", f"def {suffix}_", 1)
            batch.append(
                {
                    "id": uuid.uuid4(),
                    "owner_id": owner_id,
                    "name": f"{source['name']}_{suffix}",
                    "description": source["description"],
                    "code": code,
                    "language": "python",
                    "patterns": detect_patterns(code),
                    "is_starred": rng.random() < 0.1,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                    "embedding": vector.tolist(),
                    "embedding_model": embedder.model_id,
                }
            )
            if len(batch) == 1000:
                connection.execute(insert(Snippet), batch)
                batch = []
        if batch:
            connection.execute(insert(Snippet), batch)
        connection.execute(text("ANALYZE snippets"))


def latency(store: SnippetStore, owner: str, queries: list[str], rounds: int) -> dict[str, list[float]]:
    vectors = {q: store.embedder.embed_query(q) for q in queries}
    for q in queries[:5]:  # warm the connection pool and the plans
        store.search(owner, q, query_vector=vectors[q])
    times: dict[str, list[float]] = {
        "search without query embedding": [],
        "search with query embedding": [],
        "query embedding alone": [],
        "vector signal alone": [],
    }
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            store.search(owner, q, query_vector=vectors[q])
            times["search without query embedding"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.search(owner, q)
            times["search with query embedding"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.embedder.embed_query(q)
            times["query embedding alone"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.search(owner, q, query_vector=vectors[q], signals=("vector",))
            times["vector signal alone"].append((time.perf_counter() - t) * 1000)
    return times


def vector_plan(store: SnippetStore, owner: str, vector: list[float]) -> str:
    """How PostgreSQL finds the nearest vectors: the HNSW index, or an exact scan of the owner's rows."""
    with store._session() as session, session.begin():
        owner_id = store.user_id(owner)
        connection = session.connection()
        connection.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        plan = (
            connection.execute(
                text(
                    "EXPLAIN SELECT id FROM snippets WHERE owner_id = :o AND embedding_model = 'all-MiniLM-L6-v2' "
                    "ORDER BY (embedding::vector(384)) <=> CAST(:v AS vector(384)) LIMIT 40"
                ),
                {"o": owner_id, "v": str(vector)},
            )
            .scalars()
            .all()
        )
    index = ensure_vector_index_name(store)
    return "HNSW index" if any(index in line for line in plan) else "exact scan of the owner's rows"


def ensure_vector_index_name(store: SnippetStore) -> str:
    with store.engine.begin() as connection:
        return ensure_vector_index(connection, store.embedder.model_id, store.embedder.dimensions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="library size for the latency table")
    parser.add_argument("--rounds", type=int, default=4, help="passes over the queries for latency")
    parser.add_argument("--dev-dir", type=Path, default=Path("/work/shared/eval"))
    parser.add_argument("--quality-only", action="store_true", help="skip the latency table")
    args = parser.parse_args()

    sets = {
        "dev (public)": (
            read_jsonl(args.dev_dir / "search_dev.jsonl"),
            read_jsonl(args.dev_dir / "search_dev_queries.jsonl"),
        ),
        "extra (ours)": (
            read_jsonl(Path(__file__).parent / "data" / "search_extra.jsonl"),
            read_jsonl(Path(__file__).parent / "data" / "search_extra_queries.jsonl"),
        ),
    }
    workdir = Path(tempfile.mkdtemp(prefix="coderemote-bench-"))
    workdir.chmod(0o755)  # the embedded server runs as a user of its own
    store = SnippetStore(database_url="", data_dir=str(workdir), detect_patterns=detect_patterns)
    t = time.perf_counter()
    store.start()
    print(
        f"embedded PostgreSQL + migrations: {time.perf_counter() - t:.2f} s; "
        f"embedding model {store.embedder.model_id} ({store.embedder.dimensions} dims)"
    )
    try:
        print(f"\n== Quality (recall@5 / MRR@10), each signal alone and fused (RRF weights {WEIGHTS}) ==")
        all_corpus, all_queries = [], []
        for label, (corpus, queries) in sets.items():
            owner = label.split()[0]
            ids, saves, embedded = load_set(store, owner, corpus)
            scores = quality(store, owner, ids, queries)
            print(f"{label}: {len(corpus)} snippets, {len(queries)} queries")
            for signal, s in scores.items():
                print(f"  {signal:<9} recall@5 {s['recall@5']:.3f}   MRR {s['mrr']:.3f}")
            print(f"  inserts: {saves:.0f} saves/s; saved and embedded: {embedded:.1f} snippets/s")
            all_corpus += corpus
            all_queries += [q["query"] for q in queries]
        detected = sum(bool(detect_patterns(s["code"])) for s in all_corpus)
        print(f"  (snippets with detected code patterns: {detected}/{len(all_corpus)})")

        if args.quality_only:
            return
        print(f"\n== Latency with {args.rows} snippets in one library ==")
        t = time.perf_counter()
        synthetic_rows(store, "load", all_corpus, all_queries, args.rows)
        print(f"inserted {args.rows} rows with vectors in {time.perf_counter() - t:.1f} s (bulk, HNSW maintained)")
        print("nearest vectors found by:", vector_plan(store, "load", store.embedder.embed_query("sort")))
        times = latency(store, "load", all_queries, args.rounds)
        rows = [
            [name, f"{harness.percentile(values, 50):.1f}", f"{harness.percentile(values, 99):.1f}", len(values)]
            for name, values in times.items()
        ]
        print(harness.table(["", "p50 ms", "p99 ms", "n"], rows, indent="  "))
    finally:
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
