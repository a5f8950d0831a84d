"""LLM providers behind one interface: Gemini (google-genai) and any OpenAI-compatible server.

A provider turns code into a ``LLMAnswer`` or raises ``LLMError``; the caller
degrades to the offline result with a note. Answers are strict JSON checked
against the canonical complexity forms: anything else is an error, never a
guess. Keys stay on the server; nothing here runs in or reaches the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import httpx
from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

CANONICAL = ("O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)", "O(n^3)", "O(2^n)", "O(n!)", "O(n*m)", "O(n+m)")


class LLMError(Exception):
    """The provider failed or answered something that is not a valid report."""


@dataclass(frozen=True)
class LLMAnswer:
    time_complexity: str
    space_complexity: str
    explanation: str
    suggestions: list[str]
    model: str


def prompt(code: str, entry: str | None, sizes: dict[str, str], static_time: str, static_space: str) -> str:
    template = (files("analysis_ext") / "prompts" / "complexity.md").read_text()
    described = ", ".join(f"{symbol} = size of `{param}`" for param, symbol in sizes.items()) or "n"
    return template.format(
        code=code, entry=entry or "(module)", sizes=described, static_time=static_time, static_space=static_space
    )


def _normalise(label: Any) -> str:
    if not isinstance(label, str):
        raise LLMError(f"complexity must be a string, got {type(label).__name__}")
    text = re.sub(r"\s+", " ", label.strip().replace("²", "^2").replace("³", "^3").replace("**", "^"))
    text = text.replace("O(n * m)", "O(n*m)").replace("O(n + m)", "O(n+m)").replace("O(nlogn)", "O(n log n)")
    if text not in CANONICAL:
        raise LLMError(f"{label!r} is not one of the canonical complexity forms")
    return text


def parse_answer(text: str, model: str) -> LLMAnswer:
    """Validate a model's JSON answer (a ```json fence around it is tolerated)."""
    stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        data = json.loads(stripped)
    except ValueError as e:
        raise LLMError(f"the answer is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise LLMError("the answer is not a JSON object")
    explanation = data.get("explanation", "")
    suggestions = data.get("suggestions", [])
    if not isinstance(explanation, str) or not isinstance(suggestions, list):
        raise LLMError("explanation must be a string and suggestions a list")
    return LLMAnswer(
        _normalise(data.get("time_complexity")),
        _normalise(data.get("space_complexity")),
        explanation.strip()[:2000],
        [str(s)[:500] for s in suggestions[:8]],
        model,
    )


class LLMProvider(LoggingConfigurable):
    """One way to ask a model; ``name`` is what reports show as ``model_used``."""

    model = Unicode(config=True, help="Model name.")
    timeout = Float(20.0, config=True, help="Seconds to wait for an answer.")

    @property
    def name(self) -> str:
        return self.model

    async def complete(self, text: str) -> str:
        raise NotImplementedError

    async def analyze(self, text: str) -> LLMAnswer:
        try:
            raw = await asyncio.wait_for(self.complete(text), self.timeout)
        except LLMError:
            raise
        except asyncio.TimeoutError as e:
            raise LLMError(f"{self.name} did not answer within {self.timeout:g} s") from e
        except Exception as e:  # SDK and network errors of any kind
            raise LLMError(f"{self.name} failed: {type(e).__name__}: {e}") from e
        return parse_answer(raw, self.name)


class GeminiProvider(LLMProvider):
    """Gemini through the google-genai SDK."""

    model = Unicode("gemini-2.5-flash", config=True, help="Gemini model name.")
    api_key = Unicode(config=True, help="Gemini API key (also read from GEMINI_API_KEY / GOOGLE_API_KEY).")
    base_url = Unicode("", config=True, help="API endpoint override (a proxy, or a stand-in in tests).")

    async def complete(self, text: str) -> str:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.base_url) if self.base_url else None
        client = genai.Client(api_key=self.api_key, http_options=options)
        response = await client.aio.models.generate_content(
            model=self.model,
            contents=text,
            config=types.GenerateContentConfig(response_mime_type="application/json", temperature=0.0),
        )
        if not response.text:
            raise LLMError(f"{self.name} returned no text")
        return response.text


class OpenAICompatibleProvider(LLMProvider):
    """Any server speaking the OpenAI chat-completions API (Ollama, vLLM, llama.cpp...)."""

    base_url = Unicode("http://127.0.0.1:11434/v1", config=True, help="Base URL, ending before /chat/completions.")
    api_key = Unicode("", config=True, help="Bearer token, if the server wants one.")
    model = Unicode("llama3.1", config=True, help="Model name.")

    async def complete(self, text: str) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": text}],
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.base_url.rstrip("/") + "/chat/completions", json=body, headers=headers)
        if response.status_code != 200:
            raise LLMError(f"{self.name} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return str(response.json()["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"{self.name} answered an unexpected body: {response.text[:200]}") from e
