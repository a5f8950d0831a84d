"""Kernels as pods: one gVisor pod per kernel on a Kubernetes cluster.

``KubernetesProvisioner`` is the jupyter_client provisioner of the
``python3-kubernetes`` kernelspec, the same contract as ``GVisorProvisioner``
with a pod for a sandbox:

- each kernel is a pod made from ``kernel_images/kubernetes/kernel-pod.yaml``
  (``pod_template``) with ``runtimeClassName`` (default ``gvisor``): non-root,
  read-only root filesystem, every capability dropped, seccomp RuntimeDefault,
  no service account token, no host namespaces, CPU, memory and
  ephemeral-storage limits, labels for its kernel id and its server;
- its connection file (ports and HMAC key) travels in a Secret of its own,
  mounted at ``/run/kernel``, deleted with the pod; the pod's environment holds
  only the kernel's settings, never the server's;
- the start waits for the pod to run and have an address, up to
  ``launch_timeout``; a pod that fails or does not come up is deleted and
  reported with its events and the last lines of its log;
- interrupts are kernel messages (the kernelspec's ``interrupt_mode``); kill and
  terminate delete the pod; cleanup deletes what is left of the pod and Secret;
- ``reap_orphans`` (``reap_stale``, at the server's start) deletes the pods
  (and Secrets) of servers that are gone.

The ``kubernetes`` client is imported when a provisioner is first used: the
local service does not need it. It reads ``kube_config`` (a kubeconfig file),
else the in-cluster service account, else ``~/.kube/config``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import KernelProvisionerBase
from overrides import overrides
from traitlets import Dict, Float, Integer, Unicode, default

from kernel_images import KUBERNETES_POD_TEMPLATE
from provisioner.limits import MiB, SandboxLimits
from provisioner.paths import CONTAINER_PREFIX, container_name, is_container_name

CONNECTION_DIR = "/run/kernel"  # where the pod sees its connection Secret
CONNECTION_FILE = f"{CONNECTION_DIR}/connection.json"
# Each pod has an address of its own, so every kernel listens on the same ports.
KERNEL_PORTS = {"shell_port": 52001, "iopub_port": 52002, "stdin_port": 52003, "control_port": 52004, "hb_port": 52005}
KERNEL_LABEL = "coderemote.io/kernel-id"
SERVER_LABEL = "coderemote.io/server"
IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
POLL_S = 0.25
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 4096
# Container states that will not turn into a running kernel.
FAILED_WAITING_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
     "CrashLoopBackOff", "RunContainerError"}
)  # fmt: skip


class ClusterConfigError(RuntimeError):
    """The Kubernetes client or its configuration cannot be loaded."""


def kube_api(kube_config: str = "") -> Any:
    """A CoreV1Api from ``kube_config``, the in-cluster service account, or ``~/.kube/config``."""
    from kubernetes import client, config

    if kube_config:
        return client.CoreV1Api(config.new_client_from_config(config_file=kube_config))
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api()


def _unless_gone(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` to the API, or None when it answers 404 (no such object)."""
    try:
        return call(*args, **kwargs)
    except Exception as e:
        if getattr(e, "status", None) == 404:
            return None
        raise


class KubernetesProvisioner(SandboxLimits, KernelProvisionerBase):  # type: ignore[misc,metaclass]
    """Runs each kernel in a pod of its own with the gVisor runtime class (see the module docstring).
    Its limits are ``SandboxLimits``' (shared with the local provisioner)."""

    namespace = Unicode(
        "coderemote-kernels",
        config=True,
        help="Namespace of the kernel pods and their Secrets. Default: ``coderemote-kernels``.",
    )
    image = Unicode(
        "ghcr.io/coderemote/kernel:latest",
        config=True,
        help="""The kernel image, built from kernel_images/Dockerfile (the launcher and the
        runtime). Default: ``ghcr.io/coderemote/kernel:latest``.""",
    )
    runtime_class_name = Unicode(
        "gvisor",
        config=True,
        help="""RuntimeClass of the kernel pods, the cluster's gVisor one. Default: ``gvisor``;
        change it where the cluster names it otherwise.""",
    )
    pod_template = Unicode(
        str(KUBERNETES_POD_TEMPLATE),
        config=True,
        help="""YAML of the kernel pod (see its comments). Default: the template shipped in
        kernel_images/kubernetes/kernel-pod.yaml; point it at a copy to add what the cluster
        needs (tolerations, a node selector for the gVisor nodes).""",
    )
    kube_config = Unicode(
        "",
        config=True,
        help="A kubeconfig file. Default: empty, meaning the in-cluster service account, else ~/.kube/config.",
    )
    server_name = Unicode(
        os.environ.get("HOSTNAME", "coderemote"),
        config=True,
        help="""This server, on its kernels' pods (label coderemote.io/server): its pod name in
        the cluster. Default: $HOSTNAME (a pod's name), else ``coderemote``.""",
    )
    server_namespace = Unicode(
        config=True,
        help="""This server's namespace, where ``reap_stale`` looks for the servers of kernel pods.
        Default: the service account's namespace in a cluster, else ``default``.""",
    )
    labels = Dict(
        Unicode(),
        config=True,
        help="""More labels of the kernel pods. Default: none; the Helm chart sets those its
        NetworkPolicy selects on.""",
    )
    launch_timeout = Float(
        60.0,
        config=True,
        help="""Time for a pod to run and have an address, s; past it the pod is deleted and
        the start fails with its events. Default: 60 s.""",
    )
    ephemeral_storage_limit = Integer(
        256 * MiB,
        config=True,
        help="Ephemeral storage per kernel pod (its limit and request), bytes. Default: 256 MiB.",
    )

    @default("server_namespace")
    def _server_namespace_default(self) -> str:
        try:
            return Path(IN_CLUSTER_NAMESPACE).read_text().strip() or "default"
        except OSError:
            return "default"

    pod: str | None = None
    _exit_code: int | None = None
    _api_client: Any = None

    # -- the provisioner contract ---------------------------------------------------

    @property
    @overrides
    def has_process(self) -> bool:
        """KernelProvisionerBase.has_process: whether the kernel's pod was created and not yet cleaned up."""
        return self.pod is not None

    @overrides
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """KernelProvisionerBase.pre_launch: the launch arguments for a pod (nothing is created yet).

        The kernel's command as the pod runs it; the server's environment is not passed on.
        """
        kwargs.pop("env", None)
        argv = [CONNECTION_FILE if arg == "{connection_file}" else arg for arg in self.kernel_spec.argv]
        return {**kwargs, "cmd": argv, "env": {}}

    @overrides
    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """KernelProvisionerBase.launch_kernel: create the kernel's Secret and pod; its connection once the pod runs.

        A pod that fails or does not come up within ``launch_timeout`` is deleted (with
        its Secret) and reported.
        """
        name = container_name(self.kernel_id)
        session: Any = self.parent.session  # type: ignore[union-attr]  # the kernel manager's
        connection: dict[str, Any] = {
            **KERNEL_PORTS,
            "ip": "0.0.0.0",  # noqa: S104 (inside the pod: its own address; the NetworkPolicy admits only the server)
            "transport": "tcp",
            "key": session.key.decode(),
            "signature_scheme": session.signature_scheme,
            "kernel_name": self.kernel_spec.display_name,
        }
        api = self._api()
        await asyncio.to_thread(api.create_namespaced_secret, self.namespace, self.secret_manifest(name, connection))
        try:
            await asyncio.to_thread(api.create_namespaced_pod, self.namespace, self.pod_manifest(name, cmd))
        except BaseException:
            await self._delete(name)
            raise
        self.pod = name
        address = await self._wait_running(name)
        info: Any = {**connection, "ip": address, "key": session.key}  # the key as the kernel manager has it: bytes
        self.connection_info = info
        self.log.info("Started pod %s/%s for kernel %s", self.namespace, name, self.kernel_id)
        return self.connection_info

    @overrides
    async def poll(self) -> int | None:
        """KernelProvisionerBase.poll: the pod's state, read from the API.

        None while the pod is pending or running; its exit code once it ended (1 if unknown).
        """
        if self.pod is None:
            return self._exit_code
        pod = await asyncio.to_thread(_unless_gone, self._api().read_namespaced_pod, self.pod, self.namespace)
        if pod is None:
            self._exit_code = 1 if self._exit_code is None else self._exit_code
            return self._exit_code
        code = self._ended(pod)
        if code is not None:
            self._exit_code = code
        return code

    @overrides
    async def wait(self) -> int | None:
        """KernelProvisionerBase.wait: ``poll`` every ``POLL_S`` seconds until the pod has ended; its exit code."""
        while (code := await self.poll()) is None:  # noqa: ASYNC110 (the API's state: nothing to wait on but polling)
            await asyncio.sleep(POLL_S)
        return code

    @overrides
    async def send_signal(self, signum: int) -> None:
        """KernelProvisionerBase.send_signal: delete the pod for SIGKILL (at once) or SIGTERM (with its grace period).

        Kill and terminate delete the pod; other signals cannot reach it (interrupts are messages).
        """
        if signum in (signal.SIGKILL, signal.SIGTERM) and self.pod is not None:
            await self._delete_pod(self.pod, grace_seconds=0 if signum == signal.SIGKILL else None)
        elif self.pod is not None:
            self.log.warning("Signal %s cannot be sent to pod %s: interrupt by message instead", signum, self.pod)

    @overrides
    async def kill(self, restart: bool = False) -> None:
        """KernelProvisionerBase.kill: delete the pod at once (``send_signal`` SIGKILL)."""
        await self.send_signal(signal.SIGKILL)

    @overrides
    async def terminate(self, restart: bool = False) -> None:
        """KernelProvisionerBase.terminate: delete the pod with its grace period (``send_signal`` SIGTERM)."""
        await self.send_signal(signal.SIGTERM)

    @overrides
    async def cleanup(self, restart: bool = False) -> None:
        """KernelProvisionerBase.cleanup: remove what is left of the kernel's pod and Secret.

        Delete the pod (if it is still there) and its Secret.
        """
        if self.pod is not None:
            await self._delete(self.pod)
            self.log.debug("Removed pod %s/%s", self.namespace, self.pod)
        self.pod = None

    @overrides
    async def get_provisioner_info(self) -> dict[str, Any]:
        """KernelProvisionerBase.get_provisioner_info: the base's, with the pod's name and namespace."""
        info: dict[str, Any] = await super().get_provisioner_info()
        info.update(pod=self.pod, namespace=self.namespace)
        return info

    @overrides
    async def load_provisioner_info(self, provisioner_info: dict) -> None:  # the base's type (@overrides checks it)
        """KernelProvisionerBase.load_provisioner_info: the base's, and the pod's name.

        A name this provisioner does not make is refused (ValueError) before anything is loaded.
        """
        pod = provisioner_info.get("pod")
        if pod is not None and not is_container_name(pod):
            raise ValueError(f"{pod!r} is not the name of one of this provisioner's pods")
        await super().load_provisioner_info(provisioner_info)
        self.pod = pod

    # -- manifests ------------------------------------------------------------------

    def _labels(self, name: str) -> dict[str, str]:
        return {**self.labels, KERNEL_LABEL: name[len(CONTAINER_PREFIX) :], SERVER_LABEL: self.server_name}

    def secret_manifest(self, name: str, connection: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace, "labels": self._labels(name)},
            "type": "Opaque",
            "stringData": {"connection.json": json.dumps(connection)},
        }

    def pod_manifest(self, name: str, cmd: list[str]) -> dict[str, Any]:
        """The template with this kernel's parts filled in and its security settings enforced."""
        import yaml

        pod: dict[str, Any] = yaml.safe_load(Path(self.pod_template).read_text())
        pod["metadata"] = {**pod.get("metadata", {}), "name": name, "namespace": self.namespace}
        pod["metadata"]["labels"] = {**(pod["metadata"].get("labels") or {}), **self._labels(name)}
        spec = pod["spec"]
        spec.update(
            runtimeClassName=self.runtime_class_name,
            restartPolicy="Never",
            automountServiceAccountToken=False,
            enableServiceLinks=False,
            hostNetwork=False,
            hostPID=False,
            hostIPC=False,
        )
        spec["securityContext"] = {
            **spec.get("securityContext", {}),
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container = spec["containers"][0]
        limits = {
            "cpu": f"{round(self.cpu_limit * 1000)}m",
            "memory": str(self.memory_limit),
            "ephemeral-storage": str(self.ephemeral_storage_limit),
        }
        container.update(
            image=self.image,
            command=cmd,
            env=[{"name": k, "value": v} for k, v in self.kernel_env().items()],
            resources={"limits": limits, "requests": limits},
        )
        container["securityContext"] = {
            **container.get("securityContext", {}),
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        }
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                volume["secret"]["secretName"] = name
            elif "emptyDir" in volume:
                volume["emptyDir"]["sizeLimit"] = str(self.tmpfs_size)
        return pod

    # -- the cluster, for the service (CodeRemoteApp) -------------------------------

    def prepare_host(self, build_runtime: bool) -> None:
        """Load the client and its configuration, or raise ClusterConfigError (nothing
        is built here: the kernel image carries the runtime)."""
        try:
            self._api()
        except Exception as e:  # ImportError, the client's ConfigException, an unreadable file
            raise ClusterConfigError(
                f"cannot start kernels as pods: {e}. Install coderemote[kubernetes] and run in the "
                "cluster, or set KubernetesProvisioner.kube_config to a kubeconfig file."
            ) from e

    def host_health(self) -> dict[str, Any]:
        """What the health endpoint says: pods are started in ``namespace`` (the
        API is not called: the health endpoint answers load balancers' probes)."""
        return {"sandbox": "kubernetes", "runsc": None, "problems": []}

    def reap_stale(self) -> list[str]:
        """Delete the kernel pods of servers that are gone, this one's earlier life included."""
        return reap_orphans(self._api(), self.namespace, self.server_namespace, self.server_name)

    # -- the pod's life ---------------------------------------------------------------

    def _api(self) -> Any:
        if self._api_client is None:
            self._api_client = kube_api(self.kube_config)
        return self._api_client

    @staticmethod
    def _ended(pod: Any) -> int | None:
        """The exit code of a pod that has ended (or is being deleted); None while it may run."""
        status = pod.status
        for container in (status.container_statuses if status else None) or []:
            if container.state and container.state.terminated:
                return int(container.state.terminated.exit_code)
        if pod.metadata.deletion_timestamp is not None or (status and status.phase in ("Failed", "Succeeded")):
            return 1
        return None

    async def _wait_running(self, name: str) -> str:
        """The pod's address once its kernel container runs; on failure or timeout, delete it and raise."""
        api = self._api()
        deadline = time.monotonic() + self.launch_timeout
        while True:
            pod = await asyncio.to_thread(api.read_namespaced_pod, name, self.namespace)
            status = pod.status
            containers = (status.container_statuses if status else None) or []
            if status and status.phase == "Running" and status.pod_ip and all(c.state.running for c in containers):
                return str(status.pod_ip)
            waiting = [c.state.waiting.reason for c in containers if c.state and c.state.waiting]
            if self._ended(pod) is not None or FAILED_WAITING_REASONS.intersection(waiting):
                phase = status.phase if status else "no status"
                problem = f"ended ({', '.join([phase, *waiting])})"
                break
            if time.monotonic() > deadline:
                problem = f"did not run within {self.launch_timeout:.0f} s"
                break
            await asyncio.sleep(POLL_S)
        report = await self._failure_report(name)
        await self._delete(name)
        self.pod = None
        raise RuntimeError(f"kernel pod {self.namespace}/{name} {problem}{report}")

    async def _failure_report(self, name: str) -> str:
        """The pod's events and last log lines, for the error of a failed start."""
        api = self._api()
        parts = []
        try:
            events = await asyncio.to_thread(
                api.list_namespaced_event, self.namespace, field_selector=f"involvedObject.name={name}"
            )
            seen = [f"{e.reason}: {e.message}" for e in events.items if e.message]
            if seen:
                parts.append("events: " + "; ".join(seen[-5:]))
        except Exception as e:
            self.log.debug("No events for pod %s: %s", name, e)
        try:
            tail = await asyncio.to_thread(
                api.read_namespaced_pod_log, name, self.namespace, tail_lines=LOG_TAIL_LINES, limit_bytes=LOG_TAIL_BYTES
            )
            if tail and tail.strip():
                parts.append("its last words: " + tail.strip()[-LOG_TAIL_BYTES:])
        except Exception as e:
            self.log.debug("No log for pod %s: %s", name, e)
        return "".join(f"; {p}" for p in parts)

    async def _delete_pod(self, name: str, grace_seconds: int | None = None) -> None:
        delete = self._api().delete_namespaced_pod
        await asyncio.to_thread(_unless_gone, delete, name, self.namespace, grace_period_seconds=grace_seconds)

    async def _delete(self, name: str) -> None:
        """The pod and its Secret, whichever still exist."""
        await self._delete_pod(name, grace_seconds=0)
        await asyncio.to_thread(_unless_gone, self._api().delete_namespaced_secret, name, self.namespace)


def reap_orphans(api: Any, namespace: str, server_namespace: str, me: str) -> list[str]:
    """Delete the kernel pods and Secrets whose server pod no longer exists; return their names.

    Every server labels its kernels' pods with its own pod name (``me``); a server
    that restarts (same pod) or has gone (no such pod) leaves kernels nobody can
    reach. Run by each server as it starts, so its own earlier life is included.
    """
    alive: dict[str, bool] = {}
    reaped = []
    for kind, lister, deleter in (
        ("pod", api.list_namespaced_pod, api.delete_namespaced_pod),
        ("secret", api.list_namespaced_secret, api.delete_namespaced_secret),
    ):
        for item in lister(namespace, label_selector=SERVER_LABEL).items:
            name, server = item.metadata.name, (item.metadata.labels or {}).get(SERVER_LABEL, "")
            if not is_container_name(name):
                continue
            if server not in alive:
                alive[server] = server != me and _server_exists(api, server_namespace, server)
            if not alive[server]:
                _unless_gone(deleter, name, namespace)
                if kind == "pod":
                    reaped.append(name)
    return reaped


def _server_exists(api: Any, namespace: str, name: str) -> bool:
    return _unless_gone(api.read_namespaced_pod, name, namespace) is not None
