"""The ``coderemote`` Jupyter Server extension: REST handlers, the execution
service, the kernel websocket tuning and the command line."""

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from kernel_gateway_ext.app import CodeRemoteApp

    return [{"module": "kernel_gateway_ext.app", "app": CodeRemoteApp}]
