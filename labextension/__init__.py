"""The JupyterLab extension (TypeScript sidebar panel), built into the wheel by hatch-jupyter-builder."""
