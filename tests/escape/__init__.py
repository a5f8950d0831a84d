"""Escape battery: hostile programs, each run through the real REST endpoint in
a fresh gVisor sandbox (or a session kernel where the host has to look at the
sandbox while it lives), each asserting CONTAINMENT.

The import guard is defence in depth, not the boundary, so most programs go
around it on purpose (``sys.modules``, ``().__class__.__base__.__subclasses__()``,
``importlib._bootstrap``, ``exec(compile(...))``, already-loaded ``posix``,
``_socket`` and ``ctypes``) and then check that the action still fails or has
no effect on the host.

One module per escape family:

- ``test_files_and_secrets``: host files, the server's secrets and other kernels' keys are out of reach;
- ``test_network``: nothing gets out, neither to other machines nor to the host's own services;
- ``test_writing_and_filling``: read-only mounts stay read-only, scratch space and files stop at their caps;
- ``test_processes_and_limits``: fork, memory, CPU and output bombs end at the sandbox's limits;
- ``test_guard_bypasses``: the guard refuses every route it covers, and going around it gains nothing;
- ``test_identity_and_devices``: the sandbox's own hostname, and no host devices.

``probes`` holds what the programs and the tests share (the program prelude,
reading a program's result, looking at the host); ``conftest`` runs every
module twice, on restored and on plainly started kernels. Tests run in
collection order (modules by name; in each, the tests in file order, first on
restored kernels, then on started ones); the last test of the last module
checks that the server still works and that no sandbox of this process is left.
"""
