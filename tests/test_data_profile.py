"""The data profile: a real runtime built from it (once per machine, in
$CODEREMOTE_DATA_RUNTIME_DIR or /opt/coderemote/runtime-data; .ci/run builds it before
the suite), its preloaded imports, a scikit-learn fit and a seaborn plot in real sandboxes."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from kernel_images import runtime
from tests.conftest import Execute

DATA_RUNTIME = os.environ.get("CODEREMOTE_DATA_RUNTIME_DIR", "/opt/coderemote/runtime-data")


@pytest.fixture(scope="session")
def data_runtime() -> runtime.Runtime:
    """The data profile's runtime (built here if .ci/run has not built it yet: minutes)."""
    return runtime.build(DATA_RUNTIME, profile="data")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], data_runtime: runtime.Runtime) -> dict[str, Any]:
    """The suite's server on the data runtime; kernels are started, not restored, so that each
    preloads for itself (a zygote image of this runtime would take a minute to build)."""
    return {
        **jp_server_config,
        "GVisorProvisioner": {"runtime_dir": str(data_runtime.path), "restore_from_zygote": False},
    }


async def test_the_data_profile_fits_a_model_and_plots(execute: Execute, data_runtime: runtime.Runtime) -> None:
    """A scikit-learn fit runs on preloaded modules, and a seaborn plot arrives as an image."""
    assert data_runtime.profile == "data" and "sklearn" in data_runtime.preload
    fit = await execute(
        "import sys\n"
        "print('preloaded', all(m in sys.modules for m in ('sklearn', 'scipy', 'seaborn')))\n"
        "import numpy as np\n"
        "from sklearn.linear_model import LinearRegression\n"
        "x = np.arange(20, dtype=float).reshape(-1, 1)\n"
        "model = LinearRegression().fit(x, 3 * x.ravel() + 2)\n"
        "print(round(float(model.coef_[0]), 6), round(float(model.intercept_), 6))\n",
        timeout_s=20,
        session_id="data",  # one sandbox for both runs: each start preloads the profile's modules
    )
    assert fit["status"] == "ok", fit
    assert fit["stdout"] == "preloaded True\n3.0 2.0\n"
    plot = await execute(
        "import seaborn as sns, pandas as pd\n"
        "frame = pd.DataFrame({'x': range(10), 'y': [v * v for v in range(10)]})\n"
        "sns.lineplot(data=frame, x='x', y='y')\n",
        timeout_s=20,
        session_id="data",
    )
    assert plot["status"] == "ok", plot
    images = [o["data"]["image/png"] for o in plot["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")


def test_install_adds_to_the_built_profile(
    data_runtime: runtime.Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`coderemote runtime install` keeps the runtime's profile and its preload list. The
    commands it runs (pip, the font cache, compileall over 1 GB) are recorded, not run,
    on a copy of the runtime's marker: what is checked is what install writes."""
    copy = tmp_path / "runtime"
    copy.mkdir()
    shutil.copy(data_runtime.path / runtime.MARKER, copy / runtime.MARKER)
    (copy / "bin").symlink_to(data_runtime.path / "bin")  # the interpreter probed for its paths
    commands: list[list[str]] = []
    monkeypatch.setattr(runtime, "_run", lambda *cmd, env=None: commands.append([str(c) for c in cmd]))
    runtime.install(copy, "sortedcontainers")
    assert commands[0][:4] == [str(copy / "bin" / "python"), "-m", "pip", "install"]
    assert commands[0][-1] == "sortedcontainers"
    after = runtime.Runtime.load(copy)
    assert (after.profile, after.preload) == ("data", data_runtime.preload)
    assert runtime.build(data_runtime.path, profile="data").path == data_runtime.path  # still current: no rebuild
