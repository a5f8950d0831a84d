"""Browser tests: headless Chromium (Debian's) drives the editor page and
JupyterLab served by a real `jupyter coderemote` with real gVisor sandboxes.
Screenshots of each step go to tests/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, REPO, EditorServer

ARTIFACTS = REPO / "tests" / "artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="package")
def editor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorServer]:
    server = EditorServer(tmp_path_factory.mktemp("editor-server"))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium for this package only: Playwright's sync API keeps an event loop
    running in the main thread until it stops, which the asyncio tests after
    this package could not share."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Shots:
    """Numbered screenshots of one test: tests/artifacts/<test>/<n>-<step>.png."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, step: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{step}.png"), full_page=True)


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 860}


@pytest.fixture
def editor(
    browser: Any, editor_server: EditorServer, viewport: dict[str, int], request: pytest.FixtureRequest
) -> Iterator[Any]:
    """The editor page, logged in, its sandbox started (status idle)."""
    yield from open_editor(browser, editor_server, viewport, request.node.name)


def open_editor(
    browser: Any, editor_server: EditorServer, viewport: dict[str, int], name: str, init_script: str | None = None
) -> Iterator[Any]:
    """Open the editor page (``init_script`` runs before the page's own), wait for its sandbox, close it after."""
    context = browser.new_context(viewport=viewport)
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(editor_server.page_url())
    page.wait_for_selector("#kernel-status[data-status='idle']", timeout=60_000)
    page.shots = Shots(page, name)
    yield page
    page.close()  # pagehide: the page shuts its sandbox down
    context.close()


def set_code(page: Any, code: str) -> None:
    """Replace the editor's text: select all, then paste (typed text would be auto-indented)."""
    page.click("#editor .view-lines")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Delete")
    page.evaluate(
        """code => {
            const data = new DataTransfer();
            data.setData('text/plain', code);
            const target = document.querySelector('#editor textarea, #editor .native-edit-context')
                || document.activeElement;
            target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
        }""",
        code,
    )
    page.wait_for_function(
        "n => document.querySelectorAll('#editor .view-line').length >= n", arg=min(code.count("\n"), 10)
    )


def run_and_wait(page: Any, timeout: float = 60_000) -> str:
    """Press Run and wait for the run to end; returns its status."""
    page.click("#run")
    page.wait_for_function(
        "() => { const s = document.getElementById('run-status').dataset.status; return s && s !== 'running'; }",
        timeout=timeout,
    )
    return str(page.get_attribute("#run-status", "data-status"))


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[Any]:
    """pytest-jupyter's own loop fixture would close Playwright's running loop:
    these tests use no in-process Jupyter server, so give it a loop of its own."""
    import asyncio

    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """No in-process Jupyter server to clean up here."""


@pytest.fixture(autouse=True)
def sandboxed_kernelspec() -> None:
    """The server process finds the installed kernelspec."""
