"""The restricted kernel that runs inside the gVisor sandbox.

Only this folder is mounted into the sandbox (read-only). It must import
nothing from the server side and read its settings from its environment,
which the provisioner builds from an allow-list.
"""
