"""The JupyterLab extension (TypeScript sidebar panel) and the editor page's
sources; hatch-jupyter-builder builds both into the wheel (see package.json)."""

from __future__ import annotations


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt extension is, for `jupyter labextension develop`."""
    return [{"src": "../share/jupyter/labextensions/coderemote", "dest": "coderemote"}]
