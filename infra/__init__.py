"""Deployment: Helm chart and manifests (RuntimeClass gvisor, NetworkPolicy, RBAC) and a Pulumi program."""
