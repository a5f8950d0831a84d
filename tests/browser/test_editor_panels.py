"""The analysis panel and the snippet library against their real APIs
(`api/coderemote/analyze` with timed runs in the sandbox, `api/coderemote/snippets`
on the embedded PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser.conftest import set_code

pytestmark = [pytest.mark.browser]

NESTED_LOOP = """def count_pairs(items):
    pairs = 0
    for a in items:
        for b in items:
            if a < b:
                pairs += 1
    return pairs
"""


def test_analysis_reports_quadratic_time(editor: Any) -> None:
    set_code(editor, NESTED_LOOP)
    editor.click(".cr-analyze")
    # The static report first, while the timed runs are still going...
    editor.wait_for_selector(".cr-analysis .cr-pending", timeout=30_000)
    assert editor.inner_text(".cr-analysis .cr-time") == "O(n^2)"
    editor.shots("analysis-static")
    # ...then the full report replaces it.
    editor.wait_for_selector(".cr-analysis .cr-pending", state="detached", timeout=120_000)
    assert editor.inner_text(".cr-analysis .cr-time") == "O(n^2)"
    assert editor.inner_text(".cr-analysis .cr-space") == "O(1)"
    assert editor.inner_text(".cr-analysis .cr-explanation")
    assert "empirical" in editor.inner_text(".cr-analysis")
    editor.shots("analysis")


def test_snippet_saved_starred_and_found(editor: Any) -> None:
    name = f"count pairs {uuid.uuid4().hex[:6]}"
    set_code(editor, NESTED_LOOP)
    editor.click(".cr-save")
    editor.wait_for_selector("dialog.cr-dialog[open]")
    editor.shots("save-dialog")
    editor.fill("dialog.cr-dialog[open] input[name='name']", name)
    editor.fill("dialog.cr-dialog[open] textarea[name='description']", "Counts ordered pairs with a nested loop")
    editor.click("dialog.cr-dialog[open] button[value='save']")
    editor.wait_for_selector("dialog.cr-dialog", state="hidden")
    item = editor.wait_for_selector(f".cr-snippet:has-text('{name}')")
    editor.shots("saved")

    item.query_selector(".cr-star").click()
    editor.wait_for_selector(f".cr-snippet:has-text('{name}') .cr-star[aria-pressed='true']")
    editor.check(".cr-starred-only")
    editor.wait_for_selector(f".cr-snippet:has-text('{name}')")
    editor.shots("starred")
    editor.uncheck(".cr-starred-only")

    editor.fill(".cr-search", "nested loop pairs")
    editor.press(".cr-search", "Enter")
    editor.wait_for_selector(f".cr-snippet-list .cr-snippet:has-text('{name}') .cr-star[aria-pressed='true']")
    editor.shots("found")

    # Opening it puts its code in the editor.
    set_code(editor, "")
    editor.click(f".cr-snippet:has-text('{name}') .cr-use")
    editor.wait_for_selector("#editor .view-line:has-text('def count_pairs')")
