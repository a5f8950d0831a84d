"""``python provisioner/subreaper.py CMD...``: run CMD, reap every orphan it leaves, exit with its status.

``runsc restore`` exits when its sandbox does, before the sandbox's gofer
(its child) has been reaped; the orphan then waits for the host's init, which
may reap late, and ``runsc delete`` waits for it meanwhile (a second or two).
As a child subreaper (prctl PR_SET_CHILD_SUBREAPER) this process becomes the
parent of such orphans and reaps them at once. It is the provisioner's
"process" for a restored sandbox, as ``runsc run`` is for a started one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


LINGER_S = 2.0  # how long orphans may outlive the command before they are killed


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(entry))
            except (OSError, IndexError):
                continue
    return found


def main() -> int:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    command = subprocess.Popen(sys.argv[1:])  # stdio inherited: the sandbox's output reaches the provisioner
    status = os.waitstatus_to_exitcode(os.waitpid(command.pid, 0)[1])
    deadline = time.monotonic() + LINGER_S
    while True:  # the orphans the command left (the gofer): reaped as they exit, killed if they linger
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            if time.monotonic() > deadline:
                for child in _children():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
