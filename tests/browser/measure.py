"""In-page timing of the editor: from pressing Run to the first output line
painted, measured with the page's own clock (no Playwright round trip in it)."""

from __future__ import annotations

from typing import Any

FIRST_OUTPUT_JS = """() => new Promise(resolve => {
    const output = document.getElementById('output');
    let pressed = 0;
    const observer = new MutationObserver(() => {
        if (output.querySelector('.cr-stream')) {
            observer.disconnect();
            // On screen: the frame after the DOM change is painted.
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - pressed)));
        }
    });
    observer.observe(output, { childList: true, subtree: true, characterData: true });
    pressed = performance.now();
    document.getElementById('run').click();
})"""


def first_output_ms(page: Any) -> float:
    """One run of the editor's current code; the page must show the code's output as its first stream."""
    elapsed = float(page.evaluate(FIRST_OUTPUT_JS))
    page.wait_for_selector("#run-status[data-status='ok']")
    return elapsed
