"""Kernel HTML on the editor page cannot act on the page: it loads nothing from
elsewhere, runs no script, shadows none of the page's elements and shows no
form; and the page's Content-Security-Policy says the same to the browser.

A canary HTTP server on this machine's loopback stands for "elsewhere": every
request it gets is a leak."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import open_editor, run_and_wait, set_code
from tests.browser.server import TOKEN, EditorServer

pytestmark = pytest.mark.browser

# A 4x4 blue PNG.
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGOQz38NRwzEcQBYMheRCTysdQAAAABJRU5ErkJggg=="
)

# Each path names what would have leaked.
HOSTILE_HTML = """
<p class="cr-test-marker">hostile output shown</p>
<img src="{canary}/img" alt="remote">
<img src="{pixel}" srcset="{canary}/srcset 2x" width="40" height="40" alt="inline">
<div style="color: #8250df; background: url({canary}/css)">styled text</div>
<div style="background-image: \\75rl({canary}/escaped)">escaped url</div>
<div style="--u: url({canary}/var); background-image: var(--u)">custom property</div>
<style>body {{ background: url({canary}/style) }} #editor {{ display: none }}</style>
<link rel="stylesheet" href="{canary}/link">
<meta http-equiv="refresh" content="0; url={canary}/meta">
<base href="{canary}/base/">
<form id="x" name="y" action="{canary}/form"><input name="z" value="secret"><button>Send</button></form>
<img name="getElementById"> <a id="config" href="{canary}/link-followed-on-click-only">a link</a>
<table background="{canary}/background"><tr><td>cell</td></tr></table>
<video poster="{canary}/poster" src="{canary}/video"></video>
<svg width="20" height="20"><image href="{canary}/svg-image"></image>
  <image xlink:href="{canary}/xlink" xmlns:xlink="http://www.w3.org/1999/xlink"></image>
  <rect width="20" height="20" fill="url({canary}/fill#p)"></rect></svg>
<iframe src="{canary}/iframe"></iframe><object data="{canary}/object"></object><embed src="{canary}/embed">
<script>window.pwned = 'script'</script>
<img src="data:image/png;base64,broken" onerror="window.pwned = 'onerror'">
<svg onload="window.pwned = 'svg'"></svg>
"""

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    e => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""


class Canary:
    """An HTTP server on 127.0.0.1 (ephemeral port, own thread) that records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Record(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                requests.append(f"{self.command} {self.path}")
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.stop()


@pytest.fixture
def watched(browser: Any, editor_server: EditorServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The editor page as conftest's `editor`, recording CSP violations from its first byte."""
    viewport = {"width": 1280, "height": 860}
    yield from open_editor(browser, editor_server, viewport, request.node.name, init_script=RECORD_VIOLATIONS)


def violations(page: Any) -> list[str]:
    """What the policy blocked, as "directive URL"."""
    return list(page.evaluate("() => window.cspViolations"))


def policy(server: EditorServer) -> dict[str, list[str]]:
    request = urllib.request.Request(server.url + "coderemote/", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        headers = response.headers.get_all("Content-Security-Policy")
    assert headers and len(headers) == 1, headers
    directives = [d.split() for d in headers[0].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_page_sends_a_strict_content_security_policy(editor_server: EditorServer) -> None:
    csp = policy(editor_server)
    host = editor_server.url.split("/")[2]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert csp["worker-src"] == ["'self'", "blob:"]
    for directive in ("frame-ancestors", "object-src", "base-uri", "form-action"):
        assert csp[directive] == ["'none'"], directive
    assert not any("'unsafe-eval'" in sources or "*" in sources for sources in csp.values())


def test_normal_use_breaks_no_rule_of_the_policy(watched: Any) -> None:
    """Typing, completions, a run, a matplotlib plot, a pandas table and a sound, all under the policy."""
    set_code(watched, "import math\nmath.sq")
    watched.keyboard.type("r")
    watched.keyboard.press("Control+Space")
    suggestion = watched.wait_for_selector(".suggest-widget .monaco-list-row", timeout=15_000)
    assert "sqrt" in suggestion.inner_text()
    watched.keyboard.press("Escape")
    set_code(
        watched,
        "import matplotlib.pyplot as plt\nimport pandas as pd\n"
        "print('hello', flush=True)\n"
        "plt.plot([1, 4, 9, 16])\nplt.show()\n"
        "display(pd.DataFrame({'n': [1, 2], 'square': [1, 4]}))\n"
        "from IPython.display import Audio\ndisplay(Audio([0.0, 0.5] * 400, rate=8000))\n",
    )
    assert run_and_wait(watched) == "ok"
    # An embedded sound is a data: URL (media-src).
    watched.wait_for_function("() => document.querySelector('#output audio')?.readyState >= 1")
    assert watched.evaluate("() => document.querySelector('#output img.cr-image').naturalWidth") > 100
    assert watched.locator("#output table tr").count() == 3
    watched.locator("#output table").scroll_into_view_if_needed()
    watched.shots("plot-and-table")
    # Where the kernel has nothing (a path in a string that names no file), Monaco's
    # own word completions run in its worker, started from a blob:.
    set_code(watched, "# zebra_crossing\nx = 'zeb")
    watched.keyboard.press("Control+Space")
    watched.wait_for_selector(".suggest-widget .monaco-list-row:has-text('zebra_crossing')", timeout=15_000)
    assert [worker.url for worker in watched.workers if worker.url.startswith("blob:")]
    assert violations(watched) == []


def test_hostile_html_cannot_act_on_the_page(watched: Any, canary: Canary) -> None:
    html = HOSTILE_HTML.format(canary=canary.url, pixel=PIXEL)
    set_code(watched, f"from IPython.display import HTML, display\ndisplay(HTML({html!r}))\n")
    assert run_and_wait(watched) == "ok"
    watched.wait_for_selector("#output .cr-test-marker")
    time.sleep(2)  # time for any request the output would make
    watched.shots("hostile-output")

    assert canary.requests == []
    dom = watched.evaluate(
        """() => ({
            ids: ['x', 'config'].filter(id => document.getElementById(id)),
            names: ['y', 'z', 'getElementById'].filter(name => document.getElementsByName(name).length),
            getElementById: typeof document.getElementById,
            config: 'config' in window,
            pwned: typeof window.pwned,
            forms: document.querySelectorAll('#output form, #output input, #output button').length,
            styles: document.querySelectorAll('#output style, #output link, #output meta, #output base').length,
            frames: document.querySelectorAll('#output iframe, #output object, #output embed').length,
            editorShown: document.getElementById('editor').offsetHeight > 0,
        })"""
    )
    assert dom == {
        "ids": [],
        "names": [],
        "getElementById": "function",
        "config": False,
        "pwned": "undefined",
        "forms": 0,
        "styles": 0,
        "frames": 0,
        "editorShown": True,
    }
    inline = watched.locator("#output .cr-html img[alt='inline']")
    assert inline.get_attribute("src") == PIXEL
    assert watched.evaluate("img => img.complete && img.naturalWidth", inline.element_handle()) == 4
    assert watched.locator("#output .cr-html img[alt='remote']").get_attribute("src") is None
    # What is harmless stays: text, colour, the link, the table.
    assert "styled text" in watched.inner_text("#output")
    link = watched.locator("#output a:has-text('a link')")
    assert link.get_attribute("href") == f"{canary.url}/link-followed-on-click-only"
    assert watched.inner_text("#output .cr-html td") == "cell"
    # The sanitizer left nothing for the policy to block. DOMPurify parses into an
    # inert document that inherits the page's policy: there the <base> and the
    # inline handlers are reported, though nothing in that document runs or loads.
    assert [v for v in violations(watched) if v.split()[0] not in ("base-uri", "script-src-attr")] == []
    assert canary.requests == []
