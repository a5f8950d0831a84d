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
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from analysis_ext.canonical import CANONICAL, MAX_LABEL, parse_label
from kernel_gateway_ext.base import gemini_api_key_from_environment


class LLMError(Exception):
    """The provider failed or answered something that is not a valid report."""


@dataclass(frozen=True)
class LLMAnswer:
    time_complexity: str
    space_complexity: str
    explanation: str
    suggestions: list[str]
    model: str


def prompt(
    code: str, entry: str | None, sizes: dict[str, str], static_time: str, static_space: str, program: bool = False
) -> str:
    """The question for the model: a function with named sizes, or a whole program reading stdin."""
    name = "complexity_program.md" if program else "complexity.md"
    template = (files("analysis_ext") / "prompts" / name).read_text()
    described = ", ".join(f"{symbol} = size of `{param}`" for param, symbol in sizes.items()) or "n"
    return template.format(
        code=code, entry=entry or "(module)", sizes=described, static_time=static_time, static_space=static_space,
        forms=", ".join(CANONICAL),
    )  # fmt: skip


def _normalise(label: Any, one_size: bool = False) -> str:
    """A model's label in the canonical forms (``O(V + E)`` -> ``O(n)`` for a program, ``O(nlogn)``...)."""
    if not isinstance(label, str):
        raise LLMError(f"complexity must be a string, got {type(label).__name__}")
    try:
        return parse_label(label, one_size).label
    except ValueError as e:
        raise LLMError(f"{label[:MAX_LABEL]!r} cannot be read as a canonical complexity form: {e}") from None


def parse_answer(text: str, model: str, one_size: bool = False) -> LLMAnswer:
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
        _normalise(data.get("time_complexity"), one_size),
        _normalise(data.get("space_complexity"), one_size),
        explanation.strip()[:2000],
        [str(s)[:500] for s in suggestions[:8]],
        model,
    )


class LLMProvider(LoggingConfigurable):
    """One way to ask a model; ``name`` is what reports show as ``model_used``."""

    model = Unicode(
        config=True,
        help="""Model name, also the report's ``model_used``. Default: empty (each provider
        sets its own).""",
    )
    timeout = Float(
        20.0,
        config=True,
        help="""Time to wait for the model's answer, s; past it the report is made without
        the model, with a note. Default: 20 s.""",
    )

    @property
    def name(self) -> str:
        return self.model

    async def complete(self, text: str) -> str:
        raise NotImplementedError

    async def analyze(self, text: str, one_size: bool = False) -> LLMAnswer:
        """Ask; ``one_size`` (a whole program) reduces the answer to one size n."""
        try:
            raw = await asyncio.wait_for(self.complete(text), self.timeout)
        except LLMError:
            raise
        except asyncio.TimeoutError as e:
            raise LLMError(f"{self.name} did not answer within {self.timeout:g} s") from e
        except Exception as e:  # SDK and network errors of any kind
            raise LLMError(f"{self.name} failed: {type(e).__name__}: {e}") from e
        return parse_answer(raw, self.name, one_size)


class GeminiProvider(LLMProvider):
    """Gemini through the google-genai SDK."""

    model = Unicode("gemini-2.5-flash", config=True, help="Gemini model name. Default: ``gemini-2.5-flash``.")
    api_key = Unicode(config=True, help="Gemini API key. Default: $GEMINI_API_KEY, else $GOOGLE_API_KEY.")
    base_url = Unicode(
        "", config=True, help="API endpoint override (a proxy, or a stand-in in tests). Default: empty (Google's)."
    )

    @default("api_key")
    def _default_api_key(self) -> str:
        return gemini_api_key_from_environment()

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

    base_url = Unicode(
        "http://127.0.0.1:11434/v1",
        config=True,
        help="""Base URL, ending before /chat/completions. Default:
        ``http://127.0.0.1:11434/v1`` (Ollama on this machine).""",
    )
    api_key = Unicode(
        "", config=True, help="Bearer token, if the server wants one. Default: empty (no Authorization header)."
    )
    model = Unicode("llama3.1", config=True, help="Model name. Default: ``llama3.1``.")

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
