"""Kernel provisioners that start kernels inside gVisor sandboxes."""

from provisioner.gvisor import GVisorProvisioner

__all__ = ["GVisorProvisioner"]
