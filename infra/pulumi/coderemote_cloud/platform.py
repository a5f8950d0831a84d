"""What every cloud provides, and the chart installed on top of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

CHART = Path(__file__).resolve().parents[2] / "helm" / "coderemote"
NAMESPACE = "coderemote"
GVISOR_LABEL = "coderemote.io/gvisor"  # nodes that run kernel pods (label and taint)


class Platform(pulumi.ComponentResource):
    """A cluster with gVisor nodes, a PostgreSQL with pgvector and an OIDC issuer.

    Providers set: ``kubeconfig``; ``database_url`` (secret); ``issuer``,
    ``audience``, ``username_claim``, ``groups_claim`` of its tokens;
    ``makes_runtime_class`` (False where the cloud defines ``gvisor``, as GKE
    does) and ``kernel_scheduling``, the RuntimeClass's node selector and
    tolerations that put kernel pods on the gVisor nodes; ``database_cidrs``,
    the database's addresses for the server's egress.
    """

    kubeconfig: pulumi.Output[str]
    database_url: pulumi.Output[str]
    issuer: pulumi.Output[str]
    audience: pulumi.Output[str]
    username_claim = "sub"
    groups_claim = "groups"
    makes_runtime_class = True
    kernel_scheduling: dict[str, Any] = {}
    database_cidrs: list[str] = []


def chart_values(platform: Platform, config: pulumi.Config, issuer: str, audience: str) -> dict[str, Any]:
    """The chart's values for this platform (see infra/helm/coderemote/values.yaml)."""
    server_image = config.get("serverImage") or "ghcr.io/coderemote/server:0.1.0"
    kernel_image = config.get("kernelImage") or "ghcr.io/coderemote/kernel:0.1.0"
    repository, _, tag = server_image.rpartition(":")
    kernel_repository, _, kernel_tag = kernel_image.rpartition(":")
    return {
        "image": {"repository": repository, "tag": tag},
        "kernels": {
            "image": {"repository": kernel_repository, "tag": kernel_tag},
            "runtimeClass": {"create": platform.makes_runtime_class, "scheduling": platform.kernel_scheduling},
        },
        "database": {"existingSecret": "coderemote-database", "cidrs": platform.database_cidrs},
        "jwt": {
            "issuer": issuer,
            "audience": audience,
            "usernameClaim": platform.username_claim,
            "groupsClaim": platform.groups_claim,
            "adminGroups": [config.get("adminGroup") or "teachers"],
        },
    }


def install(platform: Platform, config: pulumi.Config) -> k8s.helm.v3.Release:
    """The chart on the platform's cluster, its database URL in a Secret."""
    provider = k8s.Provider("coderemote", kubeconfig=platform.kubeconfig, opts=pulumi.ResourceOptions(parent=platform))
    opts = pulumi.ResourceOptions(provider=provider, parent=platform)
    namespace = k8s.core.v1.Namespace("coderemote", metadata={"name": NAMESPACE}, opts=opts)
    secret = k8s.core.v1.Secret(
        "coderemote-database",
        metadata={"name": "coderemote-database", "namespace": NAMESPACE},
        string_data={"url": platform.database_url},
        opts=pulumi.ResourceOptions(provider=provider, parent=platform, depends_on=[namespace]),
    )
    values = pulumi.Output.all(platform.issuer, platform.audience).apply(
        lambda ia: chart_values(platform, config, ia[0], ia[1])
    )
    return k8s.helm.v3.Release(
        "coderemote",
        chart=str(CHART),
        namespace=NAMESPACE,
        values=values,
        opts=pulumi.ResourceOptions(provider=provider, parent=platform, depends_on=[secret]),
    )
