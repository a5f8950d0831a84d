"""The stand-in's kubelet for pods that run (``Cluster.behave("sandbox")``): each
kernel pod's kernel runs in a real local gVisor sandbox, and the pod's address is
a loopback address of its own where the pod's ports lead to that kernel.

A gVisor node runs a kernel pod's container in a gVisor sandbox with the pod's
network; here the sandbox has no network (as every local sandbox), so the
kubelet listens on the pod's address (``127.0.1.N``: loopback, nothing leaves
the machine) and pipes each TCP connection to the kernel's ipc socket of the
same channel. ZMQ's stream protocol goes through the pipe unchanged, so the
server's client and the kernel speak as they would across a cluster: the pod's
HMAC key (from its connection Secret), its fixed ports, message-mode interrupts.

The kernel is the sandboxed kernelspec's, started by ``GVisorProvisioner``: the
same launcher, guard and runtime the kernel image carries. A kernel that ends
makes its pod end with its exit code; deleting the pod stops the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import tempfile
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from kernel_images import SANDBOXED_KERNEL
from provisioner.kubernetes import KERNEL_PORTS

SOCKET_WAIT_S = 60.0  # a connection made before the kernel bound its sockets waits this long
CHUNK = 64 * 1024


@dataclass
class _Pod:
    address: str
    kernel: AsyncKernelManager | None = None
    listeners: list[asyncio.Server] = field(default_factory=list)
    watcher: asyncio.Task[Any] | None = None
    starting: Future[None] | None = None


class SandboxKubelet:
    """Runs kernel pods as local gVisor sandboxes on an event loop of its own (a thread)."""

    def __init__(self, on_exit: Any) -> None:
        self.on_exit = on_exit  # on_exit(namespace, name, exit_code): the pod's container ended
        self.folder = Path(tempfile.mkdtemp(prefix="coderemote-kubelet-"))
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.stopping: list[Future[None]] = []
        self._addresses = itertools.count(2)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="kubelet")
        self.thread.start()

    def run(self, namespace: str, name: str, connection: str) -> str:
        """Start the pod whose connection file is ``connection`` (JSON); return its address at once."""
        pod = _Pod(address=f"127.0.1.{next(self._addresses)}")
        self.pods[(namespace, name)] = pod
        started = asyncio.run_coroutine_threadsafe(self._listen(pod, json.loads(connection)), self.loop)
        started.result(10)  # its ports answer before it is said to run; the kernel comes up behind them
        pod.starting = asyncio.run_coroutine_threadsafe(
            self._start(namespace, name, pod, json.loads(connection)), self.loop
        )
        return pod.address

    def stop(self, namespace: str, name: str) -> Future[None] | None:
        """The pod was deleted: stop its sandbox and close its ports."""
        pod = self.pods.pop((namespace, name), None)
        if pod is None:
            return None
        stopping = asyncio.run_coroutine_threadsafe(self._stop(pod), self.loop)
        self.stopping.append(stopping)
        return stopping

    def close(self) -> None:
        """Stop every pod's sandbox (those being stopped included), then the loop."""
        for key in list(self.pods):
            self.stop(*key)
        for future in self.stopping:
            with contextlib.suppress(Exception):
                future.result(60)
        asyncio.run_coroutine_threadsafe(self._cancel_pipes(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _cancel_pipes(self) -> None:
        """Cancel what still runs on the loop (pipes of connections the server left open)."""
        pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pipes:
            task.cancel()
        if pipes:
            await asyncio.wait(pipes, timeout=2)

    # -- on the kubelet's loop ------------------------------------------------------

    async def _listen(self, pod: _Pod, connection: dict[str, Any]) -> None:
        for channel in KERNEL_PORTS:
            handler = self._piping(pod, channel.removesuffix("_port"))
            pod.listeners.append(await asyncio.start_server(handler, pod.address, connection[channel]))

    async def _start(self, namespace: str, name: str, pod: _Pod, connection: dict[str, Any]) -> None:
        kernel = AsyncKernelManager(
            kernel_name=SANDBOXED_KERNEL, connection_file=str(self.folder / f"kernel-{uuid.uuid4().hex}.json")
        )
        kernel.session.key = connection["key"].encode()  # the pod's key, from its Secret
        pod.kernel = kernel
        try:
            await kernel.start_kernel()
        except Exception:
            self.on_exit(namespace, name, 1)
            raise
        pod.watcher = asyncio.ensure_future(self._watch(namespace, name, kernel))

    async def _watch(self, namespace: str, name: str, kernel: AsyncKernelManager) -> None:
        while True:
            await asyncio.sleep(0.2)
            code = await kernel.provisioner.poll() if kernel.provisioner is not None else 1
            if code is not None:
                self.on_exit(namespace, name, code)
                return

    def _piping(self, pod: _Pod, channel: str) -> Any:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            deadline = self.loop.time() + SOCKET_WAIT_S
            while True:
                kernel = pod.kernel
                try:
                    if kernel is None or not kernel.has_kernel:
                        raise FileNotFoundError("not started yet")
                    info = kernel.get_connection_info()
                    kernel_side = await asyncio.open_unix_connection(f"{info['ip']}-{info[f'{channel}_port']}")
                    break
                except OSError:  # not started, or its socket not bound yet
                    if self.loop.time() > deadline:
                        writer.close()
                        return
                    await asyncio.sleep(0.05)
            await asyncio.gather(_copy(reader, kernel_side[1]), _copy(kernel_side[0], writer))

        return pipe

    async def _stop(self, pod: _Pod) -> None:
        for listener in pod.listeners:
            listener.close()
        if pod.starting is not None:  # deleted while its sandbox starts: stop it once started
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(pod.starting)
        if pod.watcher is not None:
            pod.watcher.cancel()
        if pod.kernel is not None and pod.kernel.has_kernel:
            await pod.kernel.shutdown_kernel(now=True)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
