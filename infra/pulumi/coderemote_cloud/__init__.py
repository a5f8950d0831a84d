"""Code Remote on a managed cluster: one interface, a provider per cloud.

A cloud gives what the deployment needs (``Platform``): a Kubernetes cluster
whose kernel nodes run gVisor, a PostgreSQL with pgvector, and an OpenID
Connect issuer for sign-in. ``aws.AwsPlatform`` makes EKS with a gVisor node
group, RDS PostgreSQL and a Cognito user pool; ``gcp.GcpPlatform`` makes GKE
with a GKE Sandbox node pool, Cloud SQL and Identity Platform. ``install``
then deploys the Helm chart (infra/helm/coderemote) with the platform's
outputs, whichever cloud made them.

Settings (``pulumi config set coderemote:<name> <value>``): ``cloud`` (aws or
gcp), ``region``, ``serverImage``, ``kernelImage``, ``adminGroup`` (default
teachers), ``dbPassword`` (secret); AWS: ``vpcId``, ``subnetIds`` (a JSON
list); GCP: ``project``, ``network``.
"""

from __future__ import annotations

import pulumi

from .platform import Platform, install


def deploy(config: pulumi.Config) -> Platform:
    cloud = config.require("cloud")
    if cloud == "aws":
        from .aws import AwsPlatform

        platform: Platform = AwsPlatform("coderemote", config)
    elif cloud == "gcp":
        from .gcp import GcpPlatform

        platform = GcpPlatform("coderemote", config)
    else:
        raise ValueError(f"coderemote:cloud is {cloud!r}: aws or gcp")
    release = install(platform, config)
    pulumi.export("kubeconfig", pulumi.Output.secret(platform.kubeconfig))
    pulumi.export("issuer", platform.issuer)
    pulumi.export("release", release.name)
    return platform
