"""What runs inside the sandbox: the restricted kernel launcher (``sandbox/``),
the ``python3-sandboxed`` kernelspec and the kernel's Python runtime."""

from pathlib import Path

SANDBOX_PACKAGE_DIR = Path(__file__).parent / "sandbox"
KERNELSPECS_DIR = Path(__file__).parent / "kernelspecs"
