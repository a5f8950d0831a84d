"""The layers of docs/architecture.md, read from the import statements of the packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kernel_gateway_ext", "analysis_ext", "snippets", "provisioner", "kernel_images")
# What the base of the API may import from the project: the request-body limits and the
# caller's identity, which import nothing else of it.
BASE_LAYER = {"kernel_gateway_ext.base", "kernel_gateway_ext.bodies", "kernel_gateway_ext.ownership",
              "kernel_gateway_ext.identity"}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    """The project modules ``path`` imports (at any depth of the file, lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def modules(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted name) and the project modules it imports."""
    folder = ROOT / package
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): imports_of(path)
        for path in sorted(folder.rglob("*.py"))
        if "sandbox" not in path.relative_to(folder).parts  # code that runs inside the sandbox
    }


def test_the_base_imports_no_feature() -> None:
    """kernel_gateway_ext.base and what it imports stay within the base layer."""
    everything = modules("kernel_gateway_ext")
    for name in BASE_LAYER:
        assert everything[name] <= BASE_LAYER, (name, everything[name] - BASE_LAYER)


@pytest.mark.parametrize("package,other", [("analysis_ext", "snippets"), ("snippets", "analysis_ext")])
def test_features_import_the_base_and_never_each_other(package: str, other: str) -> None:
    """The analysis and the snippet library take only the base from the server, nothing from each other."""
    for name, imported in modules(package).items():
        server = {m for m in imported if m.startswith("kernel_gateway_ext")}
        assert server <= {"kernel_gateway_ext.base"}, (name, server)
        assert not {m for m in imported if m.split(".")[0] == other}, name


def test_the_provisioner_knows_nothing_of_the_server() -> None:
    """provisioner/ (kernels in sandboxes) imports none of the HTTP side."""
    for name, imported in modules("provisioner").items():
        assert not {m for m in imported if m.split(".")[0] in ("kernel_gateway_ext", "analysis_ext", "snippets")}, name
