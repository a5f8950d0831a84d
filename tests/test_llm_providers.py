"""LLM providers: the real google-genai SDK and the OpenAI-compatible client talk
to a local stand-in HTTP server, because neither Gemini nor a model server can
run here. The stand-in answers what the test tells it to, so a good answer, a
malformed one and a failing server are all exercised through the real clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from analysis_ext.service import AnalysisRequest, AnalysisService

NESTED = "def pairs(xs):\n    n = 0\n    for a in xs:\n        for b in xs:\n            n += a < b\n    return n\n"
GOOD = {
    "time_complexity": "O(n^2)",
    "space_complexity": "O(1)",
    "explanation": "Two nested loops over the input.",
    "suggestions": ["Sort first and count with two pointers."],
}


class StandIn:
    """Answers Gemini's generateContent and OpenAI's chat/completions with ``self.reply``."""

    def __init__(self) -> None:
        self.reply: str = json.dumps(GOOD)
        self.status = 200
        self.requests: list[tuple[str, dict[str, Any]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append((self.path, body))
                if ":generateContent" in self.path:
                    payload = {"candidates": [{"content": {"role": "model", "parts": [{"text": stand_in.reply}]}}]}
                else:
                    payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": stand_in.reply}}]}
                data = json.dumps(payload if stand_in.status == 200 else {"error": {"message": "overloaded"}})
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.server.shutdown()


def _service(kind: str, url: str) -> AnalysisService:
    from traitlets.config import Config

    config = Config()
    config.AnalysisService.llm_provider = kind
    config.GeminiProvider.base_url = url
    config.GeminiProvider.api_key = "test-key"
    config.OpenAICompatibleProvider.base_url = url + "/v1"
    config.OpenAICompatibleProvider.model = "local-model"
    return AnalysisService(config=config)


@pytest.mark.parametrize("kind", ["gemini", "openai"])
async def test_provider_answer_is_used(stand_in: StandIn, kind: str) -> None:
    report = await _service(kind, stand_in.url).analyze(AnalysisRequest(NESTED))
    assert report.methods_used == ["static", "llm"]
    assert report.model_used == ("gemini-2.5-flash" if kind == "gemini" else "local-model")
    assert report.time_complexity == "O(n^2)"
    assert "Two nested loops" in report.explanation
    assert "Sort first and count with two pointers." in report.suggestions
    path, body = stand_in.requests[-1]
    prompt = json.dumps(body)
    assert "def pairs" in prompt and "O(n log n)" in prompt  # the code and the canonical forms were sent
    assert ("gemini-2.5-flash:generateContent" in path) if kind == "gemini" else path == "/v1/chat/completions"


@pytest.mark.parametrize("kind", ["gemini", "openai"])
@pytest.mark.parametrize(
    "reply,status,why",
    [
        ("this is not json", 200, "not JSON"),
        (json.dumps({**GOOD, "time_complexity": "quadratic"}), 200, "canonical"),
        (json.dumps(["O(n)"]), 200, "not a JSON object"),
        (json.dumps(GOOD), 500, "failed"),
    ],
)
async def test_provider_failure_degrades_to_offline(stand_in: StandIn, kind: str, reply: str, status: int,
                                                    why: str) -> None:  # fmt: skip
    stand_in.reply, stand_in.status = reply, status
    report = await _service(kind, stand_in.url).analyze(AnalysisRequest(NESTED))
    assert report.methods_used == ["static"]
    assert report.model_used is None
    assert report.time_complexity == "O(n^2)"
    assert "the model's answer was not used" in report.explanation
    assert why in report.explanation or (status == 500 and "500" in report.explanation)


async def test_disagreement_is_reported(stand_in: StandIn) -> None:
    stand_in.reply = json.dumps({**GOOD, "time_complexity": "O(n)"})
    report = await _service("openai", stand_in.url).analyze(AnalysisRequest(NESTED))
    assert report.time_complexity == "O(n^2)"  # the static bound is certain here and wins
    assert "the model says O(n)" in report.explanation
    assert report.details["disagreements"]


def test_no_key_means_no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert AnalysisService().available(sandbox=False) == ["static"]
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert AnalysisService().available(sandbox=False) == ["static", "llm"]


async def test_whole_program_prompt_and_free_form_answer(stand_in: StandIn) -> None:
    """A program reading stdin gets the whole-program framing; an answer such as O(V + E) is reduced to O(n)."""
    program = "n, m = map(int, input().split())\nfor _ in range(m):\n    u, v = map(int, input().split())\nprint(n)\n"
    stand_in.reply = json.dumps({**GOOD, "time_complexity": "O(V + E)", "space_complexity": "O(1)"})
    report = await _service("openai", stand_in.url).analyze(AnalysisRequest(program))
    assert report.details["llm"]["time_complexity"] == "O(n)"
    assert report.time_complexity == "O(n)"
    prompt = json.dumps(stand_in.requests[-1][1])
    assert "whole program" in prompt and "ONE test case" in prompt
