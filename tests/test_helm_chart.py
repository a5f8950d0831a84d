"""The Helm chart (infra/helm/coderemote), rendered and linted by Helm's own engine
(helm-python-sdk: Helm's Go SDK in a wheel, no helm binary), for the default values
and for the production example; every rendered object validated against the
Kubernetes schemas (kubernetes-validate), and the policies the deployment relies on
asserted on the rendered objects. No cluster is needed (none runs here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config

CHART = Path(__file__).resolve().parent.parent / "infra" / "helm" / "coderemote"
NAMESPACE = "coderemote"
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())  # the chart's oldest, the newest
# Kinds of the Prometheus operator, not of Kubernetes: checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}
HELM_WARNING = 2  # lint severities: 1 info, 2 warning, 3 error


def production_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values-production.yaml").read_text())  # type: ignore[no-any-return]


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="cr", namespace=NAMESPACE)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module", params=["default", "production"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render({} if request.param == "default" else production_values())


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, (kind, name_suffix, [o["metadata"]["name"] for o in found])
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o["spec"]["template"]["spec"]


@pytest.mark.parametrize("values", ["default", "production"])
def test_helm_lints_the_chart_without_warnings(values: str) -> None:
    found = helm.lint(CHART, {} if values == "default" else production_values(), namespace=NAMESPACE, strict=True)
    assert found["errors"] == []
    assert [m for m in found["messages"] if m["severity"] >= HELM_WARNING] == []


def test_every_object_is_valid_for_kubernetes(objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "Role", "RoleBinding", "NetworkPolicy"} <= kinds
    for version in KUBERNETES_VERSIONS:
        for o in objects:
            if o["kind"] not in CUSTOM_KINDS:
                kubernetes_validate.validate(o, version, strict=True)  # raises on an unknown or wrong field


def test_server_pods_run_unprivileged_with_limits(objects: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(objects))
    assert specs
    for spec in specs:
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory", "ephemeral-storage"} <= set(container["resources"]["limits"])
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit")


def test_secrets_come_from_secrets_not_from_the_chart(objects: list[dict[str, Any]]) -> None:
    (spec,) = pod_specs(objects)
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert set(env["CODEREMOTE_DATABASE_URL"]["valueFrom"]) == {"secretKeyRef"}
    assert "value" not in env["CODEREMOTE_DATABASE_URL"]
    if "GEMINI_API_KEY" in env:
        assert set(env["GEMINI_API_KEY"]["valueFrom"]) == {"secretKeyRef"}
    assert of_kind(objects, "Secret") == []  # the chart makes none: it names the operator's
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    assert "secret" not in config.get("JWTIdentityProvider", {})
    assert "SnippetStore" not in config  # the database URL stays in its Secret


def test_kernel_pods_are_gvisor_and_cut_off(objects: list[dict[str, Any]]) -> None:
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    kernels = config["KubernetesProvisioner"]
    assert kernels["runtime_class_name"] == "gvisor"
    limits = config["SandboxLimits"]  # the traits' own units: bytes and CPUs
    assert limits["memory_limit"] % (1 << 20) == 0 and limits["memory_limit"] >= 256 << 20
    assert limits["cpu_limit"] > 0 and isinstance(kernels["ephemeral_storage_limit"], int)
    namespace = kernels["namespace"]
    # Their namespace enforces the restricted Pod Security Standard (where the chart makes it).
    for ns in of_kind(objects, "Namespace"):
        assert ns["metadata"]["name"] == namespace
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Kernel pods: no egress at all, ingress only from the server's pods.
    policy = one(objects, "NetworkPolicy", "-kernels")
    assert policy["metadata"]["namespace"] == namespace
    assert policy["spec"]["podSelector"]["matchLabels"] == kernels["labels"]
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"} and policy["spec"]["egress"] == []
    (source,) = policy["spec"]["ingress"][0]["from"]
    server_labels = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert source["podSelector"]["matchLabels"] == server_labels
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
    deny = one(objects, "NetworkPolicy", "-kernels-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_the_server_may_manage_only_kernel_pods_and_their_secrets(objects: list[dict[str, Any]]) -> None:
    assert of_kind(objects, "ClusterRole") == [] and of_kind(objects, "ClusterRoleBinding") == []
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    role = one(objects, "Role", "-kernels")
    assert role["metadata"]["namespace"] == config["KubernetesProvisioner"]["namespace"]
    granted = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert granted == {"pods", "pods/log", "secrets", "events"}
    # In its own namespace, only reading pods (whether a kernel's server is still there).
    servers = one(objects, "Role", "-servers")
    assert servers["metadata"]["namespace"] == NAMESPACE
    assert servers["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    for rule in role["rules"] + servers["rules"]:
        assert rule["apiGroups"] == [""] and "*" not in rule["verbs"] and "*" not in rule["resources"]
    account = one(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False  # only the server pods mount it
    subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    for binding in of_kind(objects, "RoleBinding"):
        assert binding["subjects"] == [subject]


def test_the_server_scales_and_keeps_replicas_through_disruptions(objects: list[dict[str, Any]]) -> None:
    hpa = one(objects, "HorizontalPodAutoscaler")
    deployment = one(objects, "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_production_values_sign_in_by_oidc_limit_egress_and_scrape_metrics() -> None:
    objects = render(production_values())
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    jwt = config["JWTIdentityProvider"]
    assert jwt["issuer"].startswith("https://") and jwt["admin_groups"] == ["teachers"]
    assert of_kind(objects, "RuntimeClass") == []  # the cluster's own (GKE Sandbox)
    server = one(objects, "NetworkPolicy", "-server")
    cidrs = {p["ipBlock"]["cidr"] for rule in server["spec"]["egress"] for p in rule.get("to", []) if "ipBlock" in p}
    values = production_values()["networkPolicy"]
    assert set(values["identityProviderCidrs"] + values["llmCidrs"] + values["kubernetesApiCidrs"]) <= cidrs
    assert "0.0.0.0/0" not in cidrs
    monitor = one(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/api/coderemote/metrics" and endpoint["authorization"]["credentials"]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= one(objects, "Service")["metadata"]["labels"].items()


def test_default_values_make_the_runtime_class_and_no_service_monitor() -> None:
    objects = render({})
    assert one(objects, "RuntimeClass")["handler"] == "runsc"
    assert of_kind(objects, "ServiceMonitor") == []
    assert "JWTIdentityProvider" not in json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])


def test_every_setting_the_chart_writes_is_a_trait_of_the_service() -> None:
    from jupyter_server.serverapp import ServerApp

    from kernel_gateway_ext.app import CodeRemoteApp
    from kernel_gateway_ext.identity import JWTIdentityProvider
    from kernel_gateway_ext.pool import KernelPool
    from provisioner import KubernetesProvisioner, SandboxLimits

    known = (ServerApp, CodeRemoteApp, KernelPool, KubernetesProvisioner, SandboxLimits, JWTIdentityProvider)
    classes = {c.__name__: c for c in known}
    config = json.loads(one(render(production_values()), "ConfigMap")["data"]["jupyter_server_config.json"])
    assert set(config) <= set(classes)
    for section, settings in config.items():
        traits = classes[section].class_traits(config=True)
        assert set(settings) <= set(traits), (section, set(settings) - set(traits))
        made = classes[section](config=Config(config))  # a value of the wrong type is a TraitError
        assert all(getattr(made, name) == value for name, value in settings.items())


def test_an_ingress_pins_each_client_to_the_replica_of_its_kernels() -> None:
    """Kernels live on the replica that started them: the Service pins by client
    address and the Ingress (which reaches the pods past the Service) by cookie."""
    assert of_kind(render({}), "Ingress") == []
    objects = render(production_values())
    service = one(objects, "Service")
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    ingress = one(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600  # websockets stay open
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == production_values()["ingress"]["host"] == ingress["spec"]["tls"][0]["hosts"][0]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_a_load_balancer_can_keep_client_addresses_for_the_affinity() -> None:
    spec = one(render({"service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}}), "Service")["spec"]
    assert (spec["externalTrafficPolicy"], spec["sessionAffinity"]) == ("Local", "ClientIP")
    assert "externalTrafficPolicy" not in one(render({}), "Service")["spec"]  # not a ClusterIP field


def test_an_ingress_needs_a_host() -> None:
    with pytest.raises(Exception, match="ingress.host is required"):
        render({"ingress": {"enabled": True}})
