"""A `jupyter coderemote` process for browser tests and benchmarks, with this
checkout's code and its built JupyterLab extension first on the paths."""

from __future__ import annotations

import os
from pathlib import Path

from tests.servers import CodeRemoteServer

REPO = Path(__file__).resolve().parents[2]
TOKEN = "browser-test-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class EditorServer(CodeRemoteServer):
    """`jupyter coderemote` running this checkout's code and built editor, no
    warm pool; with ``command=("jupyter", "lab")`` a person's own JupyterLab
    with the extension (lab mode) instead."""

    def __init__(self, workdir: Path, *extra_args: str, command: tuple[str, ...] = ("jupyter", "coderemote")) -> None:
        assets = REPO / "kernel_gateway_ext" / "static" / "editor" / "main.js"
        if not assets.is_file():
            raise RuntimeError(f"{assets} is missing: build with `npm run build` in labextension/ or pip install .")
        env = {
            # This checkout's packages and labextension, not an installed copy.
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "JUPYTER_PATH": os.pathsep.join([str(REPO / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]),
        }
        super().__init__(
            workdir,
            "--ip=127.0.0.1",
            "--KernelPool.size=0",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            *extra_args,
            token=TOKEN,
            env=env,
            command=command,
        )

    def page_url(self, path: str = "coderemote/") -> str:
        return f"{self.url}{path}?token={TOKEN}"
