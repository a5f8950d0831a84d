"""Hybrid search: vector similarity, PostgreSQL full text and code patterns, fused by reciprocal rank fusion.

Each signal ranks the caller's snippets on its own (at most ``CANDIDATES``
each), and a snippet's score is the sum of ``weight / (RRF_K + rank)`` over the
lists it appears in: a snippet found by meaning and by words beats one found
by either alone, and no signal's raw scores need calibrating against another's.

People search by what code does, in words that are mostly not in it: the
vectors carry meaning. Full text lists only snippets that have every word of
the query (after stemming and stop words): with any-word matching, one common
word ("list", "text", "sales") put unrelated snippets on top through fusion.
It finds exact names (``dijkstra``, ``lru_cache``) the vectors may miss.
Code patterns are a coarse signal (many snippets share "recursion"): all
snippets with the same number of matching patterns share one rank, and the
list weighs a fifth, enough to lift a pattern match a few places within the
vectors' top ten, not to put any pattern match above the best meaning match.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

RRF_K = 60
CANDIDATES = 40
WEIGHTS = {"vector": 1.0, "text": 1.0, "patterns": 0.2}

_SAFE_MODEL_ID = re.compile(r"^[A-Za-z0-9:._/-]{1,200}$")


@dataclass(frozen=True)
class Filters:
    """Restrictions that apply to every signal (and to listing)."""

    starred: bool | None = None
    language: str | None = None
    time_complexity: str | None = None
    space_complexity: str | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        clauses, params = [], {}
        for column in ("language", "time_complexity", "space_complexity"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = :f_{column}")
                params[f"f_{column}"] = value
        if self.starred is not None:
            clauses.append("is_starred = :f_starred")
            params["f_starred"] = self.starred
        return "".join(f" AND {c}" for c in clauses), params


def vector_expression(model_id: str, dimensions: int) -> tuple[str, str]:
    """The indexed expression for one model's vectors and the predicate that selects them.

    The model id is written into the SQL (not bound) so that the planner can
    match the partial index of that model; it comes from configuration and is checked here.
    """
    if not _SAFE_MODEL_ID.match(model_id):
        raise ValueError(f"unsupported characters in embedding model id {model_id!r}")
    return f"(embedding::vector({int(dimensions)}))", f"embedding_model = '{model_id}'"


def ensure_vector_index(connection: Connection, model_id: str, dimensions: int) -> str:
    """Create the HNSW index (cosine) of one model's vectors if it is missing; returns its name."""
    expression, predicate = vector_expression(model_id, dimensions)
    name = "ix_snippets_embedding_" + hashlib.sha256(f"{model_id}/{dimensions}".encode()).hexdigest()[:12]
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {name} ON snippets USING hnsw ({expression} vector_cosine_ops) "
            f"WHERE {predicate}"
        )
    )
    return name


def hybrid_search(
    connection: Connection,
    owner_id: int,
    query: str,
    query_vector: list[float] | None,
    query_patterns: list[str],
    model_id: str,
    dimensions: int,
    filters: Filters,
    limit: int,
    signals: tuple[str, ...] = ("vector", "text", "patterns"),
) -> list[tuple[Any, float]]:
    """(snippet id, fused score) pairs, best first. ``signals`` picks the lists to fuse (benchmarks compare them)."""
    filter_sql, params = filters.sql()
    params.update(owner=owner_id, query=query, k=CANDIDATES, limit=limit, rrf_k=RRF_K)
    params.update({f"w_{name}": weight for name, weight in WEIGHTS.items()})
    branches = []
    if "vector" in signals and query_vector is not None:
        expression, predicate = vector_expression(model_id, dimensions)
        params["qvec"] = str(query_vector)
        branches.append(
            f"""SELECT id, :w_vector AS weight, row_number() OVER (ORDER BY distance) AS rank FROM (
                  SELECT id, {expression} <=> CAST(:qvec AS vector({int(dimensions)})) AS distance
                  FROM snippets WHERE owner_id = :owner AND {predicate}{filter_sql}
                  ORDER BY distance LIMIT :k) AS v"""
        )
    if "text" in signals:
        branches.append(
            f"""SELECT id, :w_text AS weight, row_number() OVER (ORDER BY score DESC) AS rank FROM (
                  SELECT id, ts_rank_cd(search_vector, q, 1) AS score
                  FROM snippets, plainto_tsquery('english', :query) AS q
                  WHERE owner_id = :owner AND search_vector @@ q{filter_sql}
                  ORDER BY score DESC LIMIT :k) AS t"""
        )
    if "patterns" in signals and query_patterns:
        params["qpatterns"] = query_patterns
        branches.append(
            f"""SELECT id, :w_patterns AS weight, dense_rank() OVER (ORDER BY overlap DESC) AS rank FROM (
                  SELECT id, (SELECT count(*) FROM unnest(patterns) AS p WHERE p = ANY(:qpatterns)) AS overlap
                  FROM snippets WHERE owner_id = :owner AND patterns && CAST(:qpatterns AS text[]){filter_sql}
                  ORDER BY overlap DESC, updated_at DESC LIMIT :k) AS p"""
        )
    if not branches:
        return []
    union = " UNION ALL ".join(f"({b})" for b in branches)
    # Relaxed order lets the HNSW scan go on past its first candidates when the
    # owner and filters leave too few; the ranks above re-sort what it returns.
    connection.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    rows = connection.execute(
        text(
            f"""SELECT id, sum(weight / (:rrf_k + rank)) AS score FROM ({union}) AS ranked
                GROUP BY id ORDER BY score DESC, id LIMIT :limit"""
        ),
        params,
    ).all()
    return [(row.id, float(row.score)) for row in rows]
