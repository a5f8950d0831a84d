"""Hostile callers against real servers and real sandboxes (runsc). The page's
hostile-HTML tests live in tests/browser (Playwright's sync API must not share
a package with asyncio tests)."""
