"""What runs inside the sandbox: the restricted kernel launcher (``sandbox/``),
the ``python3-sandboxed`` kernelspec, the kernel pod template and the kernel's Python runtime."""

from pathlib import Path

SANDBOX_PACKAGE_DIR = Path(__file__).parent / "sandbox"
KERNELSPECS_DIR = Path(__file__).parent / "kernelspecs"
# The kernelspec in KERNELSPECS_DIR whose kernels run in a gVisor sandbox on this machine
# (CodeRemoteApp.kernel_name's default).
SANDBOXED_KERNEL = "python3-sandboxed"
KUBERNETES_POD_TEMPLATE = Path(__file__).parent / "kubernetes" / "kernel-pod.yaml"
