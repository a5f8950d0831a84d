"""``POST api/coderemote/analyze``: the complexity report (see docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from analysis_ext.service import AnalysisRequest, AnalysisService
from kernel_gateway_ext.base import CodeRemoteAPIHandler


class AnalyzeHandler(CodeRemoteAPIHandler):
    """``POST api/coderemote/analyze``: static analysis, timed runs in the sandbox, an LLM."""

    @property
    def analysis(self) -> AnalysisService:
        return self.settings["coderemote_analysis"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Analyze code; its timed runs are the caller's executions (limits, history)."""
        owner = self.owner()
        # The app's runner (``CodeRemoteApp.run``): an execution of the caller's, recorded in the history.
        run = self.settings["coderemote_run"]

        async def execute(code: str, timeout_s: float) -> Any:
            return await run(code, timeout_s, owner=owner, source="analysis")

        request = AnalysisRequest.from_json(self.json_body())
        if "empirical" in (request.methods or self.analysis.available()):
            await self.rate_limit("analyze")  # one hit per analysis with timed runs
        report = await self.analysis.analyze(request, execute)
        self.finish(report.to_dict())


default_handlers: list[tuple[str, Any]] = [(r"/api/coderemote/analyze", AnalyzeHandler)]
