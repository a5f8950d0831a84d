"""KubernetesProvisioner's whole lifecycle (create, ready, interrupt, kill, pod
failure, launch timeout, reaping) through the real ``kubernetes`` client against
``tests.kube_standin``: a stand-in for the Kubernetes API server, since none runs
here. It validates every manifest it is sent against the Kubernetes schemas; its
pods run nothing, so no kernel is connected to in these tests (the kernel itself
is tested in the real gVisor sandbox everywhere else)."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from kernel_images import KERNELSPECS_DIR
from provisioner.kubernetes import (
    CONNECTION_FILE,
    KERNEL_LABEL,
    SERVER_LABEL,
    KubernetesProvisioner,
    kube_api,
    reap_orphans,
)
from tests.kube_standin import POD_IP, Cluster, standin_api

NAMESPACE = "coderemote-kernels"
SERVER_NAMESPACE = "coderemote"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    with standin_api(tmp_path) as running:
        yield running


def provisioner(kubeconfig: Path, **settings: Any) -> KubernetesProvisioner:
    spec = KernelSpec.from_resource_dir(str(KERNELSPECS_DIR / "python3-kubernetes"))
    km = AsyncKernelManager(kernel_name="python3-kubernetes")
    return KubernetesProvisioner(
        kernel_id=str(uuid.uuid4()),
        kernel_spec=spec,
        parent=km,
        kube_config=str(kubeconfig),
        namespace=NAMESPACE,
        server_name="server-0",
        launch_timeout=settings.pop("launch_timeout", 10),
        **settings,
    )


async def launch(p: KubernetesProvisioner) -> dict[str, Any]:
    kwargs = await p.pre_launch()
    return dict(await p.launch_kernel(kwargs.pop("cmd"), **kwargs))


def created(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    return [o for o in cluster.created if o["kind"] == kind]


async def test_a_kernel_pod_is_made_run_and_removed(
    standin: tuple[Cluster, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, kubeconfig = standin
    monkeypatch.setenv("GEMINI_API_KEY", "server-secret-not-for-kernels")
    p = provisioner(kubeconfig, memory_limit=256 * 1024 * 1024, cpu_limit=0.5)
    info = await launch(p)
    name = f"cr-{p.kernel_id}"
    assert info["ip"] == POD_IP and info["transport"] == "tcp"
    assert await p.poll() is None
    # The connection file is in the kernel's own Secret, mounted where its command reads it.
    (secret,) = created(cluster, "Secret")
    connection = json.loads(secret["stringData"]["connection.json"])
    assert connection["key"] == p.parent.session.key.decode() and connection["shell_port"] == info["shell_port"]
    (pod,) = created(cluster, "Pod")
    assert pod["metadata"]["name"] == secret["metadata"]["name"] == name
    assert pod["metadata"]["labels"][KERNEL_LABEL] == p.kernel_id
    assert pod["metadata"]["labels"][SERVER_LABEL] == "server-0"
    spec = pod["spec"]
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert not (spec["hostNetwork"] or spec["hostPID"] or spec["hostIPC"])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] == {
        "cpu": "500m",
        "memory": str(256 * 1024 * 1024),
        "ephemeral-storage": str(p.ephemeral_storage_limit),
    }
    assert CONNECTION_FILE in container["command"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["connection"]["secret"]["secretName"] == name and mounts["connection"]["readOnly"] is True
    # Nothing of the server's environment reaches the pod: neither its secrets nor the connection.
    manifest = json.dumps(pod)
    assert "server-secret-not-for-kernels" not in manifest and connection["key"] not in manifest
    # An interrupt is a message to the kernel (the pod cannot be signalled): the pod stays.
    await p.send_signal(signal.SIGINT)
    assert await p.poll() is None
    await p.kill()
    assert await p.wait() is not None
    await p.cleanup()
    assert cluster.names("pods", NAMESPACE) == set() and cluster.names("secrets", NAMESPACE) == set()


async def test_a_pod_that_fails_is_reported_with_its_log_and_events(standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    cluster.behave("fail")
    p = provisioner(kubeconfig)
    with pytest.raises(RuntimeError) as failed:
        await launch(p)
    message = str(failed.value)
    assert "ended" in message and "No module named 'ipykernel'" in message and "BackOff" in message
    assert cluster.names("pods", NAMESPACE) == set() and cluster.names("secrets", NAMESPACE) == set()
    assert not p.has_process


async def test_a_pod_that_never_runs_times_out_with_its_events(standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    cluster.behave("pend")
    p = provisioner(kubeconfig, launch_timeout=1.0)
    with pytest.raises(RuntimeError, match="did not run within 1 s.*FailedScheduling"):
        await launch(p)
    assert cluster.names("pods", NAMESPACE) == set() and cluster.names("secrets", NAMESPACE) == set()


async def test_an_image_that_cannot_be_pulled_fails_at_once(standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    cluster.behave("image")
    p = provisioner(kubeconfig, launch_timeout=30.0, image="registry.invalid/kernel:none")
    with pytest.raises(RuntimeError, match="ErrImagePull.*registry.invalid/kernel:none"):
        await launch(p)
    assert cluster.names("pods", NAMESPACE) == set()


async def test_a_kernel_whose_container_exits_is_seen_dead(standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    p = provisioner(kubeconfig)
    await launch(p)
    cluster.end(NAMESPACE, f"cr-{p.kernel_id}", exit_code=137)  # e.g. killed over its memory limit
    assert await p.poll() == 137
    await p.cleanup()
    assert cluster.names("secrets", NAMESPACE) == set()


async def test_saved_info_cannot_name_another_pod(standin: tuple[Cluster, Path]) -> None:
    _, kubeconfig = standin
    p = provisioner(kubeconfig)
    for bad in ("coredns-5d78c9869d-abcde", "cr-../x", f"cr-{uuid.uuid4()}-extra"):
        with pytest.raises(ValueError, match="not the name"):
            await p.load_provisioner_info({"pod": bad})
    chosen = provisioner(kubeconfig)
    chosen.kernel_id = "../alice-chosen-id"
    with pytest.raises(ValueError, match="not a UUID"):
        await launch(chosen)


def orphan(cluster: Cluster, server: str) -> str:
    name = f"cr-{uuid.uuid4()}"
    labels = {KERNEL_LABEL: name[3:], SERVER_LABEL: server}
    cluster.add(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"containers": [{"name": "kernel", "image": "k"}]},
        },
    )
    cluster.add(
        "secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels}},
    )
    return name


def test_kernels_of_servers_that_are_gone_are_reaped(standin: tuple[Cluster, Path]) -> None:
    cluster, kubeconfig = standin
    cluster.add(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "server-2", "namespace": SERVER_NAMESPACE},
            "spec": {"containers": [{"name": "server", "image": "s"}]},
        },
    )
    gone, mine, alive = orphan(cluster, "server-0"), orphan(cluster, "server-1"), orphan(cluster, "server-2")
    # server-1 is this server, restarted: its own earlier kernels are orphans too.
    reaped = reap_orphans(kube_api(str(kubeconfig)), NAMESPACE, SERVER_NAMESPACE, "server-1")
    assert sorted(reaped) == sorted([gone, mine])
    assert cluster.names("pods", NAMESPACE) == {alive} and cluster.names("secrets", NAMESPACE) == {alive}


@pytest.fixture
def running_pods(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    with standin_api(tmp_path, sandboxes=True) as (cluster, kubeconfig):
        cluster.behave("sandbox")
        yield cluster, kubeconfig


async def test_a_kernel_pod_is_connected_to_interrupted_and_killed(running_pods: tuple[Cluster, Path]) -> None:
    """The pod's kernel runs in a real gVisor sandbox behind a loopback pod address (tests.kube_kubelet)."""
    cluster, kubeconfig = running_pods
    km = AsyncKernelManager(
        kernel_name="python3-kubernetes",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(KERNELSPECS_DIR)]),
        config=Config({"KubernetesProvisioner": {"kube_config": str(kubeconfig), "namespace": NAMESPACE}}),
    )
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute_interactive("print(6 * 7)", timeout=30, output_hook=(seen := []).append)
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["42\n"]
        # Interrupts are messages on the control channel: the pod cannot be signalled.
        msg_id = client.execute("import time; time.sleep(30)")
        await asyncio.sleep(1.0)
        await km.interrupt_kernel()
        reply = await client.get_shell_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["ename"] == "KeyboardInterrupt"
        assert await km.is_alive()
    finally:
        client.stop_channels()
        await km.shutdown_kernel(now=True)
    assert cluster.names("pods", NAMESPACE) == set() and cluster.names("secrets", NAMESPACE) == set()
