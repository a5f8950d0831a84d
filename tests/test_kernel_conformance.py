"""The Jupyter community's kernel conformance suite (jupyter_kernel_test) against
``python3-sandboxed``: every message of the protocol it checks (kernel_info,
execute with stdout/stderr/results/displays/errors/clear_output, completion,
is_complete, inspect, the pager and history) answered by the real kernel in a
real gVisor sandbox, started by jupyter_client through the kernelspec's
provisioner as any Jupyter client would: once started plainly, once restored
from the zygote image."""

from __future__ import annotations

import time

import jupyter_kernel_test
from jupyter_client.manager import KernelManager
from traitlets.config import Config


class _Conformance(jupyter_kernel_test.KernelTests):
    __test__ = False
    restore = False

    @classmethod
    def setUpClass(cls) -> None:
        deadline = time.monotonic() + 120
        while True:
            config = Config({"GVisorProvisioner": {"restore_from_zygote": cls.restore}})
            cls.km = KernelManager(kernel_name=cls.kernel_name, config=config)
            cls.km.start_kernel()
            cls.kc = cls.km.client()
            cls.kc.start_channels()
            cls.kc.wait_for_ready(timeout=60)
            if cls.km.provisioner.restored == cls.restore:  # type: ignore[attr-defined]
                return
            # The image is built in the background after a plain start: try again once it is there.
            assert time.monotonic() < deadline, "no kernel was restored from the zygote image"
            cls.tearDownClass()
            time.sleep(2)

    kernel_name = "python3-sandboxed"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise ValueError('conformance')"
    code_execute_result = [{"code": "1+2+3", "result": "6"}, {"code": "[n*n for n in range(1, 4)]",
                                                              "result": "[1, 4, 9]"}]  # fmt: skip
    code_display_data = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))", "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))", "mime": "text/latex"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")  # as ipykernel declares in the suite
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"


class StartedKernelConformance(_Conformance):
    __test__ = True
    restore = False


class RestoredKernelConformance(_Conformance):
    __test__ = True
    restore = True
