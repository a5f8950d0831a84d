"""AWS: EKS with a gVisor node group, RDS PostgreSQL (pgvector), a Cognito user pool."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pulumi_aws as aws

from .platform import GVISOR_LABEL, Platform

# Node user data (a MIME part EKS merges): gVisor's containerd shim and a runtime "runsc".
GVISOR_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==BOUNDARY=="

--==BOUNDARY==
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
set -euo pipefail
arch=$(uname -m)
url=https://storage.googleapis.com/gvisor/releases/release/latest/${arch}
curl -fsSLo /usr/local/bin/runsc ${url}/runsc
curl -fsSLo /usr/local/bin/containerd-shim-runsc-v1 ${url}/containerd-shim-runsc-v1
chmod 0755 /usr/local/bin/runsc /usr/local/bin/containerd-shim-runsc-v1
cat >> /etc/containerd/config.toml <<'TOML'
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"
TOML
systemctl restart containerd
--==BOUNDARY==--
"""


def _assume_role(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})  # fmt: skip


def _role(name: str, service: str, policies: list[str], parent: pulumi.Resource) -> aws.iam.Role:
    role = aws.iam.Role(name, assume_role_policy=_assume_role(service), opts=pulumi.ResourceOptions(parent=parent))
    for i, policy in enumerate(policies):
        aws.iam.RolePolicyAttachment(
            f"{name}-{i}", role=role.name, policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=pulumi.ResourceOptions(parent=role),
        )  # fmt: skip
    return role


class AwsPlatform(Platform):
    username_claim = "username"
    groups_claim = "cognito:groups"
    kernel_scheduling: dict[str, Any] = {
        "nodeSelector": {GVISOR_LABEL: "true"},
        "tolerations": [{"key": GVISOR_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    }

    def __init__(self, name: str, config: pulumi.Config, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coderemote:cloud:AwsPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets: list[str] = json.loads(config.require("subnetIds"))
        vpc_id = config.require("vpcId")
        region = config.get("region") or "eu-west-1"

        cluster_role = _role(f"{name}-cluster", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"], self)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster", role_arn=cluster_role.arn, vpc_config={"subnet_ids": subnets},
            access_config={"authentication_mode": "API"}, opts=child,
        )  # fmt: skip
        node_role = _role(
            f"{name}-nodes", "ec2.amazonaws.com",
            ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"], self,
        )  # fmt: skip
        aws.eks.NodeGroup(
            f"{name}-servers", cluster_name=self.cluster.name, node_role_arn=node_role.arn, subnet_ids=subnets,
            instance_types=["m6i.large"], scaling_config={"min_size": 2, "desired_size": 2, "max_size": 6}, opts=child,
        )  # fmt: skip
        template = aws.ec2.LaunchTemplate(
            f"{name}-gvisor", user_data=base64.b64encode(GVISOR_USER_DATA.encode()).decode(),
            metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1}, opts=child,
        )  # fmt: skip
        aws.eks.NodeGroup(
            f"{name}-kernels", cluster_name=self.cluster.name, node_role_arn=node_role.arn, subnet_ids=subnets,
            instance_types=["c6i.xlarge"], scaling_config={"min_size": 1, "desired_size": 2, "max_size": 20},
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            labels={GVISOR_LABEL: "true"},
            taints=[{"key": GVISOR_LABEL, "value": "true", "effect": "NO_SCHEDULE"}],
            opts=child,
        )  # fmt: skip

        database_group = aws.ec2.SecurityGroup(
            f"{name}-db", vpc_id=vpc_id, description="PostgreSQL from the cluster only",
            ingress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432,
                      "security_groups": [self.cluster.vpc_config.cluster_security_group_id]}],
            opts=child,
        )  # fmt: skip
        subnet_group = aws.rds.SubnetGroup(f"{name}-db", subnet_ids=subnets, opts=child)
        password = config.require_secret("dbPassword")
        self.database = aws.rds.Instance(
            f"{name}-db", engine="postgres", engine_version="16.4", instance_class="db.t4g.medium",
            allocated_storage=20, db_name="coderemote", username="coderemote", password=password,
            storage_encrypted=True, publicly_accessible=False, db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[database_group.id], backup_retention_period=7, deletion_protection=True,
            skip_final_snapshot=False, final_snapshot_identifier=f"{name}-db-final", opts=child,
        )  # fmt: skip
        self.database_url = pulumi.Output.secret(
            pulumi.Output.all(password, self.database.address).apply(
                lambda pa: f"postgresql+psycopg://coderemote:{pa[0]}@{pa[1]}:5432/coderemote"
            )
        )

        self.user_pool = aws.cognito.UserPool(
            f"{name}-users", password_policy={"minimum_length": 12}, mfa_configuration="OPTIONAL",
            software_token_mfa_configuration={"enabled": True}, opts=child,
        )  # fmt: skip
        self.client = aws.cognito.UserPoolClient(
            f"{name}-page", user_pool_id=self.user_pool.id, generate_secret=False,
            allowed_oauth_flows=["code"], allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_scopes=["openid", "email", "profile"], supported_identity_providers=["COGNITO"],
            callback_urls=[config.get("pageUrl") or "https://coderemote.example.org/coderemote"], opts=child,
        )  # fmt: skip
        aws.cognito.UserGroup(
            f"{name}-admins", user_pool_id=self.user_pool.id, name=config.get("adminGroup") or "teachers", opts=child
        )
        self.issuer = self.user_pool.id.apply(lambda pool: f"https://cognito-idp.{region}.amazonaws.com/{pool}")
        self.audience = self.client.id
        self.kubeconfig = pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
        ).apply(lambda c: _kubeconfig(c[0], c[1], c[2], region))
        self.register_outputs({"kubeconfig": self.kubeconfig, "issuer": self.issuer})


def _kubeconfig(cluster: str, endpoint: str, ca: str, region: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "users": [{"name": cluster, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region]}}}],
    })  # fmt: skip
