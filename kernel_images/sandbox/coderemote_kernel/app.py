"""The kernel's application: ipykernel's IPKernelApp, started in two steps.

``IPKernelApp.initialize`` first loads its settings (IPython's
``BaseIPythonApplication.initialize``: command line, profile folder, config
files), then reads the connection file, binds its sockets and makes the shell.
Only the second step needs the connection file. ``load_settings`` runs the
first step alone, once: the zygote runs it before its checkpoint, and the
``initialize`` a restored kernel then calls goes straight on to connecting.
A started kernel calls both, one after the other.
"""

from __future__ import annotations

from typing import Any

from ipykernel.kernelapp import IPKernelApp
from IPython.core.application import BaseIPythonApplication


class _SettingsOnce(BaseIPythonApplication):  # type: ignore[misc]
    """IPython's settings step, run only the first time it is called."""

    _settings_loaded = False

    def initialize(self, argv: Any = None) -> None:
        if not self._settings_loaded:
            super().initialize(argv)
            self._settings_loaded = True


class SandboxKernelApp(IPKernelApp, _SettingsOnce):  # type: ignore[misc]
    """IPKernelApp whose settings may be loaded before its connection file exists.

    In the method order ``_SettingsOnce`` comes right after ``IPKernelApp``, so
    the ``super().initialize`` call that begins ``IPKernelApp.initialize`` is
    its run-once settings step.
    """

    def load_settings(self, argv: list[str]) -> None:
        _SettingsOnce.initialize(self, argv)
