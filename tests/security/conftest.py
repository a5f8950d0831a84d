"""Hostile callers against real servers, real sandboxes (runsc) and, for the
page, headless Chromium. Browser fixtures come from tests/browser."""

from tests.browser.conftest import browser, editor_server  # noqa: F401  (fixtures)
