"""`jupyter coderemote` with its kernels as pods (``CodeRemoteApp.kernel_name =
python3-kubernetes``): the server starts without runsc or a kernel runtime on its
machine, reaps the pods of servers that are gone, offers the pod kernelspec by
default, and reports a pod that fails as a clear error while it keeps serving.

The cluster is ``tests.kube_standin``, a stand-in for the Kubernetes API server
(none runs here), reached by the real client through a real kubeconfig. Its
pods either fail the way a broken kernel image does, or run their kernel in a
real local gVisor sandbox behind a loopback pod address (``tests.kube_kubelet``):
nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_images import KERNELSPECS_DIR
from provisioner.kubernetes import SERVER_LABEL
from tests.kube_standin import Cluster, standin_api
from tests.servers import CodeRemoteServer

NAMESPACE = "coderemote-kernels"
SERVER_NAMESPACE = "coderemote"
TOKEN = "pods-mode-token"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    with standin_api(tmp_path) as running:
        yield running


def jupyter_path(tmp_path: Path) -> str:
    """A Jupyter data folder holding the pod kernelspec, as the server image installs it."""
    kernels = tmp_path / "jupyter" / "kernels"
    shutil.copytree(KERNELSPECS_DIR / "python3-kubernetes", kernels / "python3-kubernetes")
    return str(tmp_path / "jupyter")


def kernel_objects(cluster: Cluster, server: str) -> str:
    """A kernel pod and its Secret labelled as ``server``'s; return their name."""
    name = f"cr-{uuid.uuid4()}"
    metadata = {"name": name, "namespace": NAMESPACE, "labels": {SERVER_LABEL: server}}
    cluster.add("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": dict(metadata),
                         "spec": {"containers": [{"name": "kernel", "image": "k"}]}})  # fmt: skip
    cluster.add("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": dict(metadata)})
    return name


def pods_server(
    tmp_path: Path, kubeconfig: Path, *flags: str, kernel_name: str = "python3-kubernetes"
) -> CodeRemoteServer:
    return CodeRemoteServer(
        tmp_path,
        f"--CodeRemoteApp.kernel_name={kernel_name}",
        "--CodeRemoteApp.build_runtime=False",
        f"--KubernetesProvisioner.kube_config={kubeconfig}",
        f"--KubernetesProvisioner.namespace={NAMESPACE}",
        "--KubernetesProvisioner.server_name=server-test",
        f"--KubernetesProvisioner.server_namespace={SERVER_NAMESPACE}",
        "--KubernetesProvisioner.launch_timeout=20",
        # Nothing of the local sandbox is needed, nor used: no runsc, no runtime.
        f"--GVisorProvisioner.runsc_path={tmp_path / 'no-runsc'}",
        f"--GVisorProvisioner.runtime_dir={tmp_path / 'no-runtime'}",
        *flags,
        token=TOKEN,
        env={"JUPYTER_PATH": jupyter_path(tmp_path)},
    )


def test_the_service_runs_its_kernels_as_pods(tmp_path: Path, standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    live = {"name": "server-live", "namespace": SERVER_NAMESPACE}
    cluster.add("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": live,
                         "spec": {"containers": [{"name": "server", "image": "s"}]}})  # fmt: skip
    orphan, earlier_life, others = (kernel_objects(cluster, s) for s in ("server-gone", "server-test", "server-live"))
    cluster.behave("fail")  # every pod this server makes fails like an image without ipykernel
    server = pods_server(tmp_path, kubeconfig, "--KernelPool.size=0")
    try:
        # Started: the kernels of servers that are gone (and of its own earlier life) are deleted.
        assert cluster.names("pods", NAMESPACE) == {others} and cluster.names("secrets", NAMESPACE) == {others}
        assert orphan != earlier_life
        status, health = server.request("GET", "api/coderemote/health")
        assert status == 200, health
        assert health["status"] == "ok" and health["sandbox"] == "kubernetes" and health["runsc"] is None
        assert health["problems"] == []
        status, specs = server.request("GET", "api/kernelspecs")
        assert status == 200 and specs["default"] == "python3-kubernetes"
        assert set(specs["kernelspecs"]) == {"python3-kubernetes"}  # the local sandbox's spec is not here
        # A kernel is a pod of this server; one that fails is an error that says why, and is removed.
        status, body = server.request("POST", "api/kernels", {})
        assert status == 503 and "No module named 'ipykernel'" in body["message"], body
        made = [o for o in cluster.created if o["kind"] == "Pod"]
        assert len(made) >= 1 and {o["metadata"]["labels"][SERVER_LABEL] for o in made} == {"server-test"}
        assert {o["spec"]["runtimeClassName"] for o in made} == {"gvisor"}
        status, body = server.request("POST", "api/coderemote/execute", {"code": "print(1)"})
        assert status == 503 and "No module named 'ipykernel'" in body["message"], body
        assert cluster.names("pods", NAMESPACE) == {others} and cluster.names("secrets", NAMESPACE) == {others}
        # ... and the server keeps serving.
        status, health = server.request("GET", "api/coderemote/health")
        assert status == 200 and health["kernels"] == 0
    finally:
        server.stop()


def test_a_kernel_name_that_is_not_sandboxed_stops_the_start(tmp_path: Path, standin: tuple[Cluster, Path]) -> None:
    _, kubeconfig = standin
    with pytest.raises(RuntimeError, match="would run on the host"):
        pods_server(tmp_path, kubeconfig, kernel_name="python3").stop()  # (stopped if it started)


def test_a_cluster_that_cannot_be_configured_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cannot start kernels as pods"):
        pods_server(tmp_path, tmp_path / "no-kubeconfig").stop()


@pytest.fixture
def running_pods(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    with standin_api(tmp_path, sandboxes=True) as (cluster, kubeconfig):
        cluster.behave("sandbox")
        yield cluster, kubeconfig


def wait_for(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def test_the_service_executes_in_pods_from_its_warm_pool(tmp_path: Path, running_pods: tuple[Cluster, Path]) -> None:
    """Each pod's kernel runs in a real gVisor sandbox behind a loopback address (tests.kube_kubelet)."""
    cluster, kubeconfig = running_pods
    server = pods_server(tmp_path, kubeconfig, "--KernelPool.size=1")
    try:
        wait_for(lambda: server.request("GET", "api/coderemote/health")[1]["pool"]["idle"] == 1)
        (warm,) = cluster.names("pods", NAMESPACE)
        status, result = server.request("POST", "api/coderemote/execute", {"code": "print(6 * 7)"})
        assert status == 200 and result["status"] == "ok" and result["stdout"] == "42\n", result
        # A fresh sandbox per request: the warm pod served it and is gone; the pool made another.
        wait_for(lambda: warm not in cluster.names("pods", NAMESPACE) and len(cluster.names("pods", NAMESPACE)) == 1)
        # api/kernels takes the warm pod too; its kernel is the caller's until deleted.
        status, kernel = server.request("POST", "api/kernels", {})
        assert status == 201 and kernel["name"] == "python3-kubernetes", kernel
        assert f"cr-{kernel['id']}" in cluster.names("pods", NAMESPACE)
        assert server.request("POST", f"api/kernels/{kernel['id']}/interrupt")[0] == 204
        assert server.request("DELETE", f"api/kernels/{kernel['id']}")[0] == 204
        wait_for(lambda: f"cr-{kernel['id']}" not in cluster.names("pods", NAMESPACE))
    finally:
        server.stop()
    assert wait_for(lambda: not cluster.names("pods", NAMESPACE), timeout=30)  # the server's stop deletes its pods
