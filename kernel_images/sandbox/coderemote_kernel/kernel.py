"""The sandboxed IPython kernel: resets the output budget per execution,
reports in the execute_reply metadata whether the budget ran out, and lets
threads started by a cell keep that cell as the parent of their output."""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel

from coderemote_kernel import threads
from coderemote_kernel.output import budget, capped_send

METADATA_KEY = "coderemote"


class SandboxKernel(IPythonKernel):
    implementation = "coderemote"

    def start(self) -> None:
        # One session sends everything (the shell's displays, prompts, the
        # output streams): every message of an execution passes the budget.
        self.session.send = capped_send(self.session.send)
        super().start()

    def init_metadata(self, parent: Any) -> dict[str, Any]:
        budget.reset()
        threads.cell_running = True
        return super().init_metadata(parent)

    def finish_metadata(self, parent: Any, metadata: dict[str, Any], reply_content: dict[str, Any]) -> dict[str, Any]:
        threads.cell_running = False
        metadata = super().finish_metadata(parent, metadata, reply_content)
        metadata[METADATA_KEY] = {"output_limit": budget.exceeded}
        return metadata
