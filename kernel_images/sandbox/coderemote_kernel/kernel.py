"""The sandboxed IPython kernel: resets the output budget per execution and
reports in the execute_reply metadata whether the budget ran out."""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel

from coderemote_kernel.output import budget

METADATA_KEY = "coderemote"


class SandboxKernel(IPythonKernel):
    implementation = "coderemote"

    def init_metadata(self, parent: Any) -> dict[str, Any]:
        budget.reset()
        return super().init_metadata(parent)

    def finish_metadata(self, parent: Any, metadata: dict[str, Any], reply_content: dict[str, Any]) -> dict[str, Any]:
        metadata = super().finish_metadata(parent, metadata, reply_content)
        metadata[METADATA_KEY] = {"output_limit": budget.exceeded}
        return metadata
