"""The GitHub workflows (.github/workflows) cannot run here (no Docker engine, no
GitHub runner): they are checked against GitHub's workflow schema, as vendored by
check-jsonschema, and for what each must do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def test_the_workflows_follow_githubs_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "images.yml", "scan.yml"]
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def steps(workflow: str) -> str:
    jobs = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"]
    return "\n".join(str(step.get("run", "")) for job in jobs.values() for step in job["steps"])


def test_each_workflow_does_its_part() -> None:
    assert ".ci/run" in steps("ci.yml")
    images = steps("images.yml")
    assert "docker build -t" in images and "kernel_images/Dockerfile" in images
    assert "runsc" in images and "helm install" in images and "print(6 * 7)" in images
    scan = steps("scan.yml")
    assert "pip-audit" in scan and "npm audit" in scan
