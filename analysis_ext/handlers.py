"""``POST api/coderemote/analyze``: the complexity report (see DESIGN.md, REST contract)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from analysis_ext.service import AnalysisRequest, AnalysisService
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionResult, RequestError
from kernel_gateway_ext.handlers import CodeRemoteAPIHandler
from kernel_gateway_ext.ratelimit import RateLimited, write_rate_limited


class AnalyzeHandler(CodeRemoteAPIHandler):
    @property
    def analysis(self) -> AnalysisService:
        return self.settings["coderemote_analysis"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        owner = self.owner()

        history = self.settings.get("coderemote_history")

        async def execute(code: str, timeout_s: float) -> ExecutionResult:
            # Timed runs count against the caller's sandboxes like any execution.
            result = await self.execution.execute(ExecutionRequest(code=code, timeout_s=timeout_s), owner=owner)
            if history is not None:
                history.record(
                    user=owner,
                    source="analysis",
                    status=result.status,
                    duration_ms=result.duration_ms,
                    code=code,
                    kernel_id=result.kernel_id,
                    usage=result.usage,
                )
            return result

        try:
            request = AnalysisRequest.from_json(self.json_body())
            limiter = self.settings.get("coderemote_rate_limiter")
            if limiter is not None and "empirical" in (request.methods or self.analysis.available()):
                await limiter.hit(owner, "analyze")  # one hit per analysis with timed runs
            report = await self.analysis.analyze(request, execute)
        except RateLimited as e:
            write_rate_limited(self, e)
            return
        except RequestError as e:
            raise web.HTTPError(e.status, str(e)) from e
        self.finish(report.to_dict())


default_handlers: list[tuple[str, Any]] = [(r"/api/coderemote/analyze", AnalyzeHandler)]
