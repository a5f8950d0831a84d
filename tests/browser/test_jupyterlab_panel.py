"""The JupyterLab sidebar panel in a person's own `jupyter lab` (lab mode):
JupyterLab loads it from the built extension, it runs the active notebook
cell in a sandbox, and the person's own files, terminals and kernelspecs stay
as they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Shots
from tests.browser.server import EditorServer

pytestmark = pytest.mark.browser

NOTEBOOK = {
    "cells": [
        {
            "id": "sandbox-cell",
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": "import sys\nfor i in range(3):\n    print('from the sandbox', i)\n"
            "print(sys.platform)\nprint('hi', input('name? '))",
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3-sandboxed", "display_name": "Python 3 (sandboxed)", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorServer]:
    server = EditorServer(tmp_path_factory.mktemp("lab-server"), command=("jupyter", "lab"))
    yield server
    server.stop()


def test_lab_mode_keeps_the_persons_own_server(lab_server: EditorServer) -> None:
    """Unlike the service, the person's JupyterLab keeps its files, terminals and host kernelspecs."""
    status, _ = lab_server.request("PUT", "api/contents/mine.txt", {"type": "file", "format": "text", "content": "x"})
    assert status == 201
    assert (Path(lab_server.log_path).parent / "mine.txt").read_text() == "x"
    assert lab_server.request("GET", "api/terminals")[0] == 200
    status, specs = lab_server.request("GET", "api/kernelspecs")
    assert status == 200 and {"python3", "python3-sandboxed"} <= set(specs["kernelspecs"])


@pytest.fixture
def lab(browser: Any, lab_server: EditorServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    status, _ = lab_server.request(
        "PUT", "api/contents/panel-test.ipynb", {"type": "notebook", "format": "json", "content": NOTEBOOK}
    )
    assert status in (200, 201)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(lab_server.page_url("lab/tree/panel-test.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    page.shots = Shots(page, request.node.name)
    yield page
    context.close()
    for session in lab_server.request("GET", "api/sessions")[1] or []:
        lab_server.request("DELETE", f"api/sessions/{session['id']}")


def test_panel_runs_the_active_cell_in_a_sandbox(lab: Any) -> None:
    tab = lab.wait_for_selector(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='coderemote-panel']")
    lab.shots("lab-loaded")
    tab.click()
    panel = lab.wait_for_selector("#coderemote-panel")
    assert panel.is_visible()
    lab.click(".jp-Notebook .jp-Cell .cm-content")  # the cell is the active one
    lab.click("#coderemote-panel .cr-run")
    lab.wait_for_selector("#coderemote-panel .cr-input .cr-stdin-field", timeout=90_000).type("Lab")
    lab.keyboard.press("Enter")
    lab.wait_for_selector("#coderemote-panel .cr-run-status[data-status='ok']", timeout=90_000)
    text = lab.inner_text("#coderemote-panel .cr-output")
    assert "from the sandbox 0" in text and "from the sandbox 2" in text
    assert "linux" in text and "hi Lab" in text
    assert "cell [1]" in lab.inner_text("#coderemote-panel .cr-run-status")
    lab.shots("panel-ran-cell")
    # The panel's own kernel is of the sandboxed kernelspec.
    kernels = lab.evaluate(
        "async () => (await (await fetch('/api/kernels', {credentials: 'same-origin'})).json()).map(k => k.name)"
    )
    assert kernels and set(kernels) == {"python3-sandboxed"}


def test_panel_inserts_a_snippet_into_the_cell(lab: Any, lab_server: EditorServer) -> None:
    status, _ = lab_server.request(
        "POST",
        "api/coderemote/snippets",
        {"name": "lab insert", "description": "", "code": "print('inserted')", "language": "python"},
    )
    assert status == 201
    lab.click(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='coderemote-panel']")
    lab.click(".jp-Notebook .jp-Cell .cm-content")
    lab.keyboard.press("ControlOrMeta+End")
    lab.fill("#coderemote-panel .cr-search", "lab insert")
    lab.press("#coderemote-panel .cr-search", "Enter")
    lab.click("#coderemote-panel .cr-snippet:has-text('lab insert') .cr-use")
    lab.wait_for_selector(".jp-Notebook .jp-Cell .cm-content:has-text(\"print('inserted')\")")
    lab.shots("snippet-inserted")
