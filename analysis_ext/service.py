"""One analysis request in, one reconciled report out.

Static analysis always runs (it is fast and sees the worst case). The timed
runs run in a sandbox when an execution function is available and the entry's
input kind is known. The LLM runs when a provider is configured. The merge
trusts the static bound unless it had to guess, in which case well-fitted
timings win; the LLM breaks ties and fills in the explanation. Every
disagreement is written into the explanation, and a failing method becomes a
note, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from analysis_ext.bounds import MAX_DEPTH, MAX_NODES
from analysis_ext.empirical import EmpiricalError, EmpiricalResult, Execute, measure
from analysis_ext.llm import GeminiProvider, LLMAnswer, LLMError, LLMProvider, OpenAICompatibleProvider, prompt
from analysis_ext.static import ARG_KINDS, StaticResult
from analysis_ext.worker import AnalysisError, AnalysisPool, classify_job, patterns_job, shared_pool, static_job
from kernel_gateway_ext.base import DEFAULT_MAX_CODE_BYTES, RequestError

METHODS = ("static", "empirical", "llm")
REQUEST_FIELDS = {"code", "methods", "entry", "arg", "max_n"}

log = logging.getLogger(__name__)


@dataclass
class AnalysisRequest:
    code: str
    methods: list[str] | None = None
    entry: str | None = None
    arg: str | None = None
    max_n: int | None = None

    @classmethod
    def from_json(cls, body: Any) -> AnalysisRequest:
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        unknown = set(body) - REQUEST_FIELDS
        if unknown:
            raise RequestError(400, f"unknown fields: {', '.join(sorted(unknown))}")
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise RequestError(400, "'code' must be a non-empty string")
        methods = body.get("methods")
        if methods is not None and (
            not isinstance(methods, list) or not methods or any(m not in METHODS for m in methods)
        ):
            raise RequestError(400, f"'methods' must be a non-empty list of {', '.join(METHODS)}")
        entry = body.get("entry")
        if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
            raise RequestError(400, "'entry' must be a function name")
        arg = body.get("arg")
        if arg is not None and arg not in ARG_KINDS:
            raise RequestError(400, f"'arg' must be one of {', '.join(ARG_KINDS)}")
        max_n = body.get("max_n")
        if max_n is not None and (not isinstance(max_n, int) or isinstance(max_n, bool) or not 4 <= max_n <= 10**7):
            raise RequestError(400, "'max_n' must be an integer from 4 to 10000000")
        return cls(code, methods, entry, arg, max_n)


@dataclass
class Report:
    time_complexity: str
    space_complexity: str
    explanation: str
    patterns: list[str]
    suggestions: list[str]
    methods_used: list[str]
    confidence: float
    model_used: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AnalysisService(LoggingConfigurable):
    """Runs the analysis methods and merges them."""

    llm_provider = Unicode(
        config=True, help="'gemini', 'openai' (any OpenAI-compatible server) or '' for none. Default: gemini when "
        "a Gemini key is known (GeminiProvider.api_key: $GEMINI_API_KEY or $GOOGLE_API_KEY), else none.",
    )  # fmt: skip
    empirical_budget = Float(
        8.0,
        config=True,
        help="""Time the timed runs may take inside the sandbox, s. Default: 8 s. Their run is
        given 7 s more, which must fit in ExecutionService.max_timeout (else none is made).""",
    )
    max_code_bytes = Integer(
        DEFAULT_MAX_CODE_BYTES, help="Largest code accepted, bytes (UTF-8); the app sets CodeRemoteApp.max_code_bytes."
    )

    static_timeout = Float(
        10.0, config=True, help="Seconds the static analysis of one request (syntax-tree walk, cost model, pattern "
        "detection; also the fitting of the timed runs) may take in its worker process. Past it the worker is killed "
        "and the request answers 422. Default: 10.",
    )  # fmt: skip
    max_ast_nodes = Integer(
        MAX_NODES, config=True, help="Most syntax-tree nodes (after parsing) the static analysis reads; more answers "
        f"413 (the code is too large to analyze, like too many bytes). Default: {MAX_NODES}.",
    )  # fmt: skip
    max_ast_depth = Integer(
        MAX_DEPTH, config=True, help="Deepest syntax-tree nesting, in levels, the static analysis reads; deeper "
        f"answers 422 (the code is nested too deeply to analyze). Default: {MAX_DEPTH}.",
    )  # fmt: skip
    analysis_workers = Integer(
        2, config=True, help="Worker processes for the analysis' CPU work (shared with the snippet library's pattern "
        "detection), started on first use. Default: 2.",
    )  # fmt: skip
    worker_memory_mb = Integer(
        1024, config=True, help="Address-space limit of each analysis worker process, MiB (0: none); an analysis that "
        "needs more answers 422. Default: 1024.",
    )  # fmt: skip

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool: AnalysisPool = shared_pool(self.analysis_workers, self.worker_memory_mb)  # starts on first use

    def shutdown(self) -> None:
        """Stop the worker processes (they are also stopped at interpreter exit)."""
        self.pool.shutdown()

    @default("llm_provider")
    def _default_provider(self) -> str:
        return "gemini" if GeminiProvider(parent=self).api_key else ""

    def provider(self) -> LLMProvider | None:
        if self.llm_provider == "gemini":
            return GeminiProvider(parent=self)
        if self.llm_provider == "openai":
            return OpenAICompatibleProvider(parent=self)
        return None

    def available(self, sandbox: bool = True) -> list[str]:
        methods = ["static"]
        if sandbox:
            methods.append("empirical")
        if self.llm_provider:
            methods.append("llm")
        return methods

    async def analyze(self, request: AnalysisRequest, execute: Execute | None = None) -> Report:
        """Analyze; ``execute(code, timeout_s)`` runs the timed runs in a sandbox (None: no timed runs)."""
        if len(request.code.encode("utf-8", "surrogatepass")) > self.max_code_bytes:
            raise RequestError(413, f"'code' is larger than {self.max_code_bytes} bytes")
        available = self.available(sandbox=execute is not None)
        wanted = request.methods or available
        missing = [m for m in wanted if m not in available]
        if request.methods and missing:
            raise RequestError(400, f"not available on this server: {', '.join(missing)}")
        try:
            static = await self.pool.run(
                static_job, request.code, request.entry, request.arg, self.max_ast_nodes, self.max_ast_depth,
                timeout=self.static_timeout, what="the static analysis",
            )  # fmt: skip
        except AnalysisError as e:
            raise RequestError(e.status, str(e)) from e
        notes: list[str] = []
        details: dict[str, Any] = {"static": _static_details(static)}
        empirical: EmpiricalResult | None = None
        if "empirical" in wanted and execute is not None:
            empirical = await self._empirical(execute, request, static, notes)
            if empirical is not None:
                details["empirical"] = {
                    "time_complexity": empirical.time_complexity,
                    "space_complexity": empirical.space_complexity,
                    "time_confidence": empirical.time_confidence,
                    "space_confidence": empirical.space_confidence,
                    "notes": empirical.notes,
                }
        answer: LLMAnswer | None = None
        if "llm" in wanted:
            answer = await self._llm(request, static, notes)
            if answer is not None:
                details["llm"] = {
                    "time_complexity": answer.time_complexity,
                    "space_complexity": answer.space_complexity,
                }
        return merge(static, empirical, answer, notes, details)

    async def _empirical(
        self, execute: Execute, request: AnalysisRequest, static: StaticResult, notes: list[str]
    ) -> EmpiricalResult | None:
        arg = request.arg or static.arg_kind
        stdin_format = None
        if static.program:
            if static.stdin_format is None:
                notes.append(f"timed runs skipped: {static.stdin_note}")
                return None
            arg, stdin_format = "program", static.stdin_format
        elif static.entry is None or arg is None:
            notes.append("timed runs skipped: name the function (entry) and its input kind (arg) to measure it")
            return None
        try:
            budget = self.empirical_budget
            return await measure(
                execute, request.code, static.entry, arg, request.max_n, budget, self._classify, stdin_format
            )
        except (EmpiricalError, AnalysisError) as e:  # AnalysisError: the fitting overran (the output is the user's)
            notes.append(f"timed runs gave no result: {e}")
        except Exception as e:  # the sandbox could not start, or the service is overloaded
            self.log.warning("timed runs failed: %s", e)
            notes.append(f"timed runs could not run: {e}")
        return None

    async def _classify(self, stdout: str, arg: str) -> EmpiricalResult:
        return await self.pool.run(
            classify_job, stdout, arg, timeout=self.static_timeout, what="fitting the timed runs"
        )

    async def _llm(self, request: AnalysisRequest, static: StaticResult, notes: list[str]) -> LLMAnswer | None:
        provider = self.provider()
        if provider is None:
            return None
        text = prompt(
            request.code, static.entry, static.sizes, static.time_complexity, static.space_complexity, static.program
        )
        try:
            return await provider.analyze(text, one_size=static.program)
        except LLMError as e:
            self.log.warning("LLM analysis failed: %s", e)
            notes.append(f"the model's answer was not used: {e}")
            return None


def _static_details(static: StaticResult) -> dict[str, Any]:
    return {
        "time_complexity": static.time_complexity,
        "space_complexity": static.space_complexity,
        "confidence": static.confidence,
        "entry": static.entry,
        "sizes": static.sizes,
        "notes": static.notes,
        # The growth as computed, before it was reduced to a canonical form.
        "expressions": static.expressions,
        "program": static.program,
        **({"stdin": static.stdin_note} if static.program else {}),
    }


def _pick(
    kind: str,
    static_result: StaticResult,
    empirical: EmpiricalResult | None,
    answer: LLMAnswer | None,
    notes: list[str],
) -> tuple[str, float]:
    """Reconcile one complexity (``kind`` is time or space); say so when the methods disagree."""
    static: str = getattr(static_result, f"{kind}_complexity")
    static_conf = static_result.confidence
    measured: str | None = getattr(empirical, f"{kind}_complexity") if empirical else None
    measured_conf: float = getattr(empirical, f"{kind}_confidence") if empirical else 0.0
    llm: str | None = getattr(answer, f"{kind}_complexity") if answer else None
    votes = [v for v in (static, measured, llm) if v]
    if measured and measured != static:
        notes.append(f"{kind}: timed runs fit {measured}, the code's structure gives {static} (worst case)")
    if llm and llm != static:
        notes.append(f"{kind}: the model says {llm}, the static analysis {static}")
    if static_conf >= 0.75:
        chosen = static
    elif llm and llm in (static, measured):
        chosen = llm
    elif measured and measured_conf >= 0.6:
        chosen = measured
    else:
        chosen = static
    agreeing = votes.count(chosen)
    confidence = static_conf if chosen == static else max(measured_conf, 0.5)
    confidence += 0.05 * (agreeing - 1) - 0.1 * (len(votes) - agreeing)
    return chosen, round(max(0.05, min(0.99, confidence)), 2)


def merge(
    static: StaticResult,
    empirical: EmpiricalResult | None,
    answer: LLMAnswer | None,
    notes: list[str],
    details: dict[str, Any],
) -> Report:
    disagreements: list[str] = []
    time, time_conf = _pick("time", static, empirical, answer, disagreements)
    space, space_conf = _pick("space", static, empirical, answer, disagreements)
    methods = ["static"] + (["empirical"] if empirical else []) + (["llm"] if answer else [])
    lines = [f"Time {time}, space {space}."]
    if answer and answer.explanation:
        lines.append(answer.explanation)
    lines.extend(static.notes[:4])
    lines.extend(disagreements)
    lines.extend(notes)
    suggestions = list(dict.fromkeys(static.suggestions + (answer.suggestions if answer else [])))
    return Report(
        time_complexity=time,
        space_complexity=space,
        explanation="\n".join(lines),
        patterns=static.patterns,
        suggestions=suggestions,
        methods_used=methods,
        confidence=round(min(time_conf, space_conf), 2),
        model_used=answer.model if answer else None,
        details={**details, "disagreements": disagreements, "notes": notes},
    )


# Code up to this size is read in the calling thread: the detector's passes are about
# linear in the syntax tree (times its depth), a few milliseconds for 4 KB. Larger
# code (a snippet may be 64 KB) goes to the analysis worker with a deadline.
INLINE_PATTERN_BYTES = 4096
PATTERN_DEADLINE_S = 5.0


def code_patterns(code: str) -> list[str]:
    """The patterns the static analysis finds in ``code`` (recursion, sorting, plotting, ...),
    for the snippet library (``SnippetStore.detect_patterns``).

    [] when the code does not parse, is beyond the analysis' limits, or takes longer than
    ``PATTERN_DEADLINE_S``: the snippet is saved all the same. Blocks the calling thread
    (the snippet store runs in one) for at most that long.
    """
    try:
        if len(code.encode("utf-8", "surrogatepass")) <= INLINE_PATTERN_BYTES:
            return patterns_job(code)
        return shared_pool().run_sync(patterns_job, code, timeout=PATTERN_DEADLINE_S, what="pattern detection")
    except AnalysisError as e:
        log.warning("Pattern detection gave no result: %s", e)
        return []
    except Exception:  # a detector bug must not keep a snippet from being saved
        log.warning("Pattern detection failed", exc_info=True)
        return []
