"""A stand-in for the Kubernetes API server, for the calls KubernetesProvisioner makes.

No Kubernetes API server runs on these machines; this one answers like the
real one for what the provisioner uses (core/v1 pods, pods/log, secrets and
events in a namespace: create, read, list by label, delete), over real HTTP
on 127.0.0.1, reached through a real kubeconfig by the real ``kubernetes``
client. Every object it is sent is validated against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields refused) and answered 422 when
invalid, as the API server would.

Its "kubelet" runs nothing unless asked: a new pod becomes what the test asked
for with ``behave`` (running with an address, failed with a log, stuck pending,
an image that cannot be pulled), and ``end`` makes a running pod's container
exit. With ``standin_api(sandboxes=True)`` and ``behave("sandbox")`` each pod's
kernel runs in a real local gVisor sandbox behind a loopback address of its own
(``tests.kube_kubelet``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
from tornado import httpserver, web
from tornado.ioloop import IOLoop

from tests.kube_kubelet import SandboxKubelet
from tests.servers import free_port

KUBERNETES_VERSION = "1.30.0"
POD_IP = "10.4.0.17"  # a pod address: nothing here connects to it


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if key not in labels or ("=" in term and labels[key] != value):
            return False
    return True


class Cluster:
    """What the stand-in holds: objects by (kind, namespace, name), pod logs, events, created manifests."""

    def __init__(self, sandboxes: bool = False) -> None:
        self.kubelet = SandboxKubelet(self.end) if sandboxes else None
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.events: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []  # every body it accepted, as sent
        self.behaviour = "run"
        self.lock = threading.Lock()

    def behave(self, behaviour: str) -> None:
        """What the next pods do: run (an address nothing answers at), fail, pend (never
        scheduled), image (cannot be pulled), or sandbox (their kernel runs: ``sandboxes=True``)."""
        self.behaviour = behaviour

    def names(self, kind: str, namespace: str) -> set[str]:
        with self.lock:
            return {name for (k, ns, name) in self.objects if (k, ns) == (kind, namespace)}

    def add(self, kind: str, obj: dict[str, Any]) -> None:
        """An object that exists without the provisioner making it (e.g. a server's pod)."""
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        with self.lock:
            self.objects[(kind, meta["namespace"], meta["name"])] = obj

    def end(self, namespace: str, name: str, exit_code: int) -> None:
        with self.lock:
            pod = self.objects.get(("pods", namespace, name))
            if pod is None:
                return  # deleted meanwhile
            pod["status"] = {
                "phase": "Failed" if exit_code else "Succeeded",
                "podIP": POD_IP,
                "containerStatuses": [self._container(pod, {"terminated": {"exitCode": exit_code, "reason": "Error"}})],
            }

    @staticmethod
    def _container(pod: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": "running" in state,
            "restartCount": 0,
            "state": state,
        }

    def schedule(self, namespace: str, name: str) -> None:
        """The kubelet's part, a moment after the pod was made."""
        with self.lock:
            pod = self.objects.get(("pods", namespace, name))
            if pod is None:
                return
            behaviour = pod["metadata"]["annotations"].pop("standin/behaviour")
            if behaviour in ("run", "sandbox"):
                address = POD_IP
                if behaviour == "sandbox":
                    assert self.kubelet is not None, "standin_api(sandboxes=True) runs pods"
                    (secret_name,) = [v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v]
                    secret = self.objects[("secrets", namespace, secret_name)]
                    address = self.kubelet.run(namespace, name, secret["data"]["connection.json"])
                pod["status"] = {
                    "phase": "Running",
                    "podIP": address,
                    "containerStatuses": [self._container(pod, {"running": {"startedAt": now()}})],
                }
            elif behaviour == "fail":
                pod["status"] = {
                    "phase": "Failed",
                    "podIP": POD_IP,
                    "containerStatuses": [self._container(pod, {"terminated": {"exitCode": 1, "reason": "Error"}})],
                }
                self.logs[(namespace, name)] = (
                    "Traceback (most recent call last):\nModuleNotFoundError: No module named 'ipykernel'\n"
                )
                self._event(namespace, name, "BackOff", "Back-off restarting failed container kernel")
            elif behaviour == "image":
                pod["status"] = {
                    "phase": "Pending",
                    "containerStatuses": [
                        self._container(pod, {"waiting": {"reason": "ErrImagePull", "message": "not found"}})
                    ],
                }
                self._event(
                    namespace, name, "Failed", f'Failed to pull image "{pod["spec"]["containers"][0]["image"]}"'
                )
            else:
                self._event(
                    namespace, name, "FailedScheduling", "0/3 nodes are available: 3 node(s) had untolerated taint"
                )

    def _event(self, namespace: str, name: str, reason: str, message: str) -> None:
        self.events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.{uuid.uuid4().hex[:8]}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
                "reason": reason,
                "message": message,
                "type": "Warning",
            }
        )


class _Handler(web.RequestHandler):
    cluster: Cluster

    def initialize(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def answer(self, code: int, body: Any) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def check_xsrf_cookie(self) -> None:  # an API, not a page
        pass


class Collection(_Handler):
    """/api/v1/namespaces/{ns}/{pods,secrets,events}: create and list."""

    def post(self, namespace: str, kind: str) -> None:
        body = json.loads(self.request.body)
        try:
            kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            return self.answer(422, status(422, "Invalid", f"{body.get('kind')} is invalid: {e}"))
        meta = body["metadata"]
        if meta.get("namespace", namespace) != namespace:
            return self.answer(400, status(400, "BadRequest", "the namespace of the object does not match"))
        key = (kind, namespace, meta["name"])
        if key in self.cluster.objects:
            return self.answer(409, status(409, "AlreadyExists", f'{kind} "{meta["name"]}" already exists'))
        self.cluster.created.append(json.loads(self.request.body))
        stored = json.loads(self.request.body)
        stored["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
        if kind == "secrets" and "stringData" in stored:
            stored["data"] = stored.pop("stringData")  # (the real one base64-encodes it; the test reads it back)
        if kind == "pods":
            stored["metadata"].setdefault("annotations", {})["standin/behaviour"] = self.cluster.behaviour
            stored["status"] = {"phase": "Pending"}
            IOLoop.current().call_later(0.1, self.cluster.schedule, namespace, meta["name"])
        with self.cluster.lock:
            self.cluster.objects[key] = stored
        self.answer(201, stored)

    def get(self, namespace: str, kind: str) -> None:
        if kind == "events":
            wanted = self.get_argument("fieldSelector", "").removeprefix("involvedObject.name=")
            items = [e for e in self.cluster.events if e["involvedObject"]["name"] == wanted]
            return self.answer(200, {"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": items})
        selector = self.get_argument("labelSelector", "")
        with self.cluster.lock:
            items = [
                o
                for (k, ns, _), o in self.cluster.objects.items()
                if (k, ns) == (kind, namespace) and matches(o["metadata"].get("labels") or {}, selector)
            ]
        list_kind = {"pods": "PodList", "secrets": "SecretList"}[kind]
        self.answer(200, {"apiVersion": "v1", "kind": list_kind, "metadata": {}, "items": items})


class Item(_Handler):
    """/api/v1/namespaces/{ns}/{pods,secrets}/{name}: read and delete."""

    def get(self, namespace: str, kind: str, name: str) -> None:
        obj = self.cluster.objects.get((kind, namespace, name))
        if obj is None:
            return self.answer(404, status(404, "NotFound", f'{kind} "{name}" not found'))
        self.answer(200, obj)

    def delete(self, namespace: str, kind: str, name: str) -> None:
        with self.cluster.lock:
            obj = self.cluster.objects.pop((kind, namespace, name), None)
        if obj is None:
            return self.answer(404, status(404, "NotFound", f'{kind} "{name}" not found'))
        if kind == "pods" and self.cluster.kubelet is not None:
            self.cluster.kubelet.stop(namespace, name)
        self.answer(200, obj if kind == "pods" else {**status(200, "", ""), "status": "Success"})


class Log(_Handler):
    def get(self, namespace: str, name: str) -> None:
        if ("pods", namespace, name) not in self.cluster.objects:
            return self.answer(404, status(404, "NotFound", f'pods "{name}" not found'))
        lines = self.cluster.logs.get((namespace, name), "").splitlines(keepends=True)
        tail = int(self.get_argument("tailLines", "0") or 0)
        self.set_header("Content-Type", "text/plain")
        self.finish("".join(lines[-tail:] if tail else lines))


@contextmanager
def standin_api(workdir: Path, sandboxes: bool = False) -> Iterator[tuple[Cluster, Path]]:
    """A running stand-in and a kubeconfig that points the kubernetes client at it
    (``sandboxes``: its pods can run their kernels, see ``Cluster.behave``)."""
    cluster = Cluster(sandboxes)
    port = free_port()
    ready = threading.Event()
    loop_box: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        app = web.Application(
            [
                (r"/api/v1/namespaces/([^/]+)/(pods|secrets|events)", Collection, {"cluster": cluster}),
                (r"/api/v1/namespaces/([^/]+)/(pods|secrets)/([^/]+)", Item, {"cluster": cluster}),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", Log, {"cluster": cluster}),
            ]
        )
        server = httpserver.HTTPServer(app)
        server.listen(port, address="127.0.0.1")
        loop_box["loop"] = IOLoop.current()
        ready.set()
        IOLoop.current().start()
        server.stop()

    thread = threading.Thread(target=serve, daemon=True, name="kube-standin")
    thread.start()
    ready.wait(10)
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "standin",
                "clusters": [{"name": "standin", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "server", "user": {"token": "standin-token"}}],
                "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "server"}}],
            }
        )
    )
    try:
        yield cluster, kubeconfig
    finally:
        loop_box["loop"].add_callback(loop_box["loop"].stop)
        thread.join(10)
        if cluster.kubelet is not None:
            cluster.kubelet.close()
