"""GCP: GKE with a GKE Sandbox (gVisor) node pool, Cloud SQL for PostgreSQL, Identity Platform."""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp

from .platform import Platform


class GcpPlatform(Platform):
    makes_runtime_class = False  # GKE Sandbox defines RuntimeClass "gvisor" and tolerates its nodes' taint

    def __init__(self, name: str, config: pulumi.Config, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coderemote:cloud:GcpPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = config.require("project")
        region = config.get("region") or "europe-west1"
        network = config.get("network") or "default"

        self.cluster = gcp.container.Cluster(
            f"{name}-cluster", project=project, location=region, network=network,
            remove_default_node_pool=True, initial_node_count=1, deletion_protection=True,
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"},
            network_policy={"enabled": True}, addons_config={"network_policy_config": {"disabled": False}},
            ip_allocation_policy={}, opts=child,
        )  # fmt: skip
        gcp.container.NodePool(
            f"{name}-servers", project=project, location=region, cluster=self.cluster.name,
            autoscaling={"min_node_count": 1, "max_node_count": 3},
            node_config={"machine_type": "e2-standard-2", "workload_metadata_config": {"mode": "GKE_METADATA"}},
            opts=child,
        )  # fmt: skip
        gcp.container.NodePool(
            f"{name}-kernels", project=project, location=region, cluster=self.cluster.name,
            autoscaling={"min_node_count": 1, "max_node_count": 10},
            node_config={
                "machine_type": "c2-standard-4", "image_type": "COS_CONTAINERD",
                "sandbox_config": {"sandbox_type": "gvisor"},
                "workload_metadata_config": {"mode": "GKE_METADATA"},
            },
            opts=child,
        )  # fmt: skip

        private = {"ipv4_enabled": False, "private_network": f"projects/{project}/global/networks/{network}",
                   "ssl_mode": "ENCRYPTED_ONLY"}  # fmt: skip
        self.database = gcp.sql.DatabaseInstance(
            f"{name}-db", project=project, region=region, database_version="POSTGRES_16", deletion_protection=True,
            settings={
                "tier": "db-custom-2-7680",
                "ip_configuration": private,
                "backup_configuration": {"enabled": True, "point_in_time_recovery_enabled": True},
                "database_flags": [{"name": "cloudsql.iam_authentication", "value": "on"}],
            },
            opts=child,
        )  # fmt: skip
        gcp.sql.Database(f"{name}-db", project=project, instance=self.database.name, name="coderemote", opts=child)
        password = config.require_secret("dbPassword")
        gcp.sql.User(
            f"{name}-db", project=project, instance=self.database.name, name="coderemote", password=password,
            opts=child,
        )  # fmt: skip
        self.database_url = pulumi.Output.secret(
            pulumi.Output.all(password, self.database.private_ip_address).apply(
                lambda pa: f"postgresql+psycopg://coderemote:{pa[0]}@{pa[1]}:5432/coderemote?sslmode=require"
            )
        )

        gcp.identityplatform.Config(
            f"{name}-identity", project=project, sign_in={"email": {"enabled": True, "password_required": True}},
            opts=child,
        )  # fmt: skip
        # Identity Platform's ID tokens: issuer securetoken.google.com/<project>, audience the project id.
        self.issuer = pulumi.Output.from_input(f"https://securetoken.google.com/{project}")
        self.audience = pulumi.Output.from_input(project)
        self.kubeconfig = pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate
        ).apply(lambda c: _kubeconfig(c[0], c[1], c[2]))
        self.register_outputs({"kubeconfig": self.kubeconfig, "issuer": self.issuer})


def _kubeconfig(cluster: str, endpoint: str, ca: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "users": [{"name": cluster, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True}}}],
    })  # fmt: skip
