"""The documentation stays true: the configuration reference is what the code's
traitlets say, and every relative link of README.md and docs/ leads to a file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Code is not prose: links inside fenced blocks and code spans are examples, not links.
FENCED_BLOCK = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
# [text](target "title") and ![alt](target); [label]: target definitions.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>\n]*>|\S+)", re.MULTILINE)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def relative_links(markdown: str) -> list[str]:
    """The targets of the links in ``markdown`` that name a path (no URL scheme, not only an anchor)."""
    prose = CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))
    targets = [m.group(1) for pattern in (INLINE_LINK, LINK_DEFINITION) for m in pattern.finditer(prose)]
    targets = [t[1:-1] if t.startswith("<") else t for t in targets]
    return [t for t in targets if not (SCHEME.match(t) or t.startswith(("#", "//")))]


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in relative_links(document.read_text(encoding="utf-8")):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (document.parent / path).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    return broken


def test_the_configuration_reference_is_up_to_date() -> None:
    """docs/config.md is what scripts/config-docs renders from the traitlets (`--check` exits 0)."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config-docs"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_of_the_repository(document: Path) -> None:
    """Every relative link of the document names a file or folder that exists in the repository."""
    assert broken_links(document) == []


def test_links_are_read_as_markdown_reads_them() -> None:
    """Link targets are found in prose, with titles and anchors, and not in code."""
    markdown = (
        'See [the guide](docs/deploy.md#1-a-cluster "Deploying"), ![logo](<img/a b.png>),\n'
        "[site](https://example.org), [top](#top) and `[not](a link)`.\n\n"
        "```python\nc.X = [1](2)\n```\n\n[ref]: ../setup.cfg\n"
    )
    assert relative_links(markdown) == ["docs/deploy.md#1-a-cluster", "img/a b.png", "../setup.cfg"]
