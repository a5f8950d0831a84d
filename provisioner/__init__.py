"""Kernel provisioners that start kernels inside gVisor sandboxes."""

from provisioner.gvisor import GVisorProvisioner
from provisioner.kubernetes import KubernetesProvisioner
from provisioner.limits import SandboxLimits

# The provisioners whose kernels run in a sandbox: the only ones the service
# starts (see kernel_gateway_ext.sandboxed).
SANDBOX_PROVISIONERS: tuple[type, ...] = (GVisorProvisioner, KubernetesProvisioner)

__all__ = ["SANDBOX_PROVISIONERS", "GVisorProvisioner", "KubernetesProvisioner", "SandboxLimits"]
