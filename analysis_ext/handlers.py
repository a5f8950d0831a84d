"""``POST api/coderemote/analyze``: the complexity report (see DESIGN.md, REST contract)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from analysis_ext.service import AnalysisRequest, AnalysisService
from kernel_gateway_ext.execution import ExecutionRequest, ExecutionResult, RequestError
from kernel_gateway_ext.handlers import CodeRemoteAPIHandler


class AnalyzeHandler(CodeRemoteAPIHandler):
    @property
    def analysis(self) -> AnalysisService:
        return self.settings["coderemote_analysis"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        owner = self.owner()

        async def execute(code: str, timeout_s: float) -> ExecutionResult:
            # Timed runs count against the caller's sandboxes like any execution.
            return await self.execution.execute(ExecutionRequest(code=code, timeout_s=timeout_s), owner=owner)

        try:
            request = AnalysisRequest.from_json(self.json_body())
            report = await self.analysis.analyze(request, execute)
        except RequestError as e:
            raise web.HTTPError(e.status, str(e)) from e
        self.finish(report.to_dict())


default_handlers: list[tuple[str, Any]] = [(r"/api/coderemote/analyze", AnalyzeHandler)]
