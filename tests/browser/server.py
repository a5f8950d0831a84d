"""A `jupyter coderemote` process for browser tests and benchmarks, with this
checkout's code and its built JupyterLab extension first on the paths."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.datadir import private_data_dir, release_data_dir

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EditorServer:
    """`jupyter coderemote` on a free loopback port, token login."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        assets = REPO / "kernel_gateway_ext" / "static" / "editor" / "main.js"
        if not assets.is_file():
            raise RuntimeError(f"{assets} is missing: build with `npm run build` in labextension/ or pip install .")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.data_dir = private_data_dir()
        env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
            # This checkout's packages and labextension, not an installed copy.
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "JUPYTER_PATH": os.pathsep.join([str(REPO / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]),
        }
        self.proc = subprocess.Popen(
            [
                "jupyter",
                "coderemote",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                f"--IdentityProvider.token={TOKEN}",
                f"--SnippetStore.data_dir={self.data_dir}",
                "--KernelPool.size=0",
                "--ServerApp.open_browser=False",
                *extra_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.request("GET", "api/coderemote/health")
                return
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server did not start: {self.log_path.read_text()}") from None
                time.sleep(0.2)

    def page_url(self, path: str = "coderemote/") -> str:
        return f"{self.url}{path}?token={TOKEN}"

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Shutdown through the API first: the server then stops its sandboxes.
            try:
                self.request("POST", "api/shutdown")
                self.proc.wait(30)
            except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()
        release_data_dir(self.data_dir)
