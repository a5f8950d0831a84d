"""The Pulumi program (infra/pulumi) for both clouds, run under Pulumi's own mocks
(``pulumi.runtime.set_mocks``): no cloud account and no Pulumi engine are reached;
the mocks stand in for the providers and record every resource the program
declares, with its inputs. The Helm release's values are then rendered with the
real chart (Helm's engine, helm-python-sdk)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

PROGRAM = Path(__file__).resolve().parent.parent / "infra" / "pulumi"
sys.path.insert(0, str(PROGRAM))

from coderemote_cloud import deploy  # noqa: E402
from coderemote_cloud.platform import CHART, GVISOR_LABEL  # noqa: E402

PASSWORD = "not-a-real-password-3141"
COMPUTED = {  # outputs the clouds compute, which the program reads
    "aws:eks/cluster:Cluster": {
        "endpoint": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "Q0EK"},
        "vpcConfig": {"clusterSecurityGroupId": "sg-cluster"},
    },
    "aws:rds/instance:Instance": {"address": "coderemote-db.abc.eu-west-1.rds.amazonaws.com"},
    "aws:ec2/launchTemplate:LaunchTemplate": {"latestVersion": 3},
    "gcp:container/cluster:Cluster": {"endpoint": "34.1.2.3", "masterAuth": {"clusterCaCertificate": "Q0EK"}},
    "gcp:sql/databaseInstance:DatabaseInstance": {"privateIpAddress": "10.30.0.5"},
}


class Recorder(pulumi.runtime.Mocks):
    """Answers each resource with its inputs (and the outputs above) and keeps what was declared."""

    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        for key, value in COMPUTED.get(args.typ, {}).items():
            outputs[key] = {**outputs.get(key, {}), **value} if isinstance(value, dict) else value
        outputs.setdefault("name", args.name)
        self.resources.append((args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [inputs for t, _, inputs in self.resources if t == typ]

    def one(self, typ: str, name_suffix: str = "") -> dict[str, Any]:
        found = [inputs for t, name, inputs in self.resources if t == typ and name.endswith(name_suffix)]
        assert len(found) == 1, (typ, name_suffix, len(found))
        return found[0]


def run(cloud: str, **settings: str) -> Recorder:
    recorder = Recorder()
    asyncio.set_event_loop(asyncio.new_event_loop())  # each program runs on a loop of its own
    pulumi.runtime.set_mocks(recorder, project="coderemote", stack=f"test-{cloud}", preview=False)
    config = {"coderemote:cloud": cloud, "coderemote:dbPassword": PASSWORD}
    config.update({f"coderemote:{k}": v for k, v in settings.items()})
    pulumi.runtime.set_all_config(config, secret_keys=["coderemote:dbPassword"])

    @pulumi.runtime.test
    def program() -> Any:
        platform = deploy(pulumi.Config("coderemote"))
        return platform.kubeconfig

    program()
    return recorder


def release_values(recorder: Recorder) -> dict[str, Any]:
    release = recorder.one("kubernetes:helm.sh/v3:Release")
    assert release["chart"] == str(CHART) and release["namespace"] == "coderemote"
    return release["values"]  # type: ignore[no-any-return]


def rendered(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="coderemote", namespace="coderemote")
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def aws() -> Recorder:
    return run("aws", vpcId="vpc-1", subnetIds=json.dumps(["subnet-a", "subnet-b"]), region="eu-west-1")


@pytest.fixture(scope="module")
def gcp() -> Recorder:
    return run("gcp", project="coderemote-prod", region="europe-west1")


def test_aws_kernel_nodes_run_gvisor_and_only_take_kernels(aws: Recorder) -> None:
    kernels = aws.one("aws:eks/nodeGroup:NodeGroup", "-kernels")
    assert kernels["labels"] == {GVISOR_LABEL: "true"}
    assert kernels["taints"] == [{"key": GVISOR_LABEL, "value": "true", "effect": "NO_SCHEDULE"}]
    template = aws.one("aws:ec2/launchTemplate:LaunchTemplate")
    user_data = base64.b64decode(template["userData"]).decode()
    assert "containerd-shim-runsc-v1" in user_data and 'runtime_type = "io.containerd.runsc.v1"' in user_data
    assert template["metadataOptions"]["httpTokens"] == "required"  # IMDSv2 only
    assert "taints" not in aws.one("aws:eks/nodeGroup:NodeGroup", "-servers")


def test_aws_database_is_private_encrypted_postgres(aws: Recorder) -> None:
    db = aws.one("aws:rds/instance:Instance")
    assert db["engine"] == "postgres" and int(db["engineVersion"].split(".")[0]) >= 15  # pgvector
    assert db["storageEncrypted"] is True and db["publiclyAccessible"] is False and db["deletionProtection"] is True
    (rule,) = aws.one("aws:ec2/securityGroup:SecurityGroup")["ingress"]
    assert (rule["fromPort"], rule["toPort"]) == (5432, 5432)
    assert rule["securityGroups"] == ["sg-cluster"] and not rule.get("cidrBlocks")


def test_aws_sign_in_is_a_cognito_pool_feeding_the_chart(aws: Recorder) -> None:
    client = aws.one("aws:cognito/userPoolClient:UserPoolClient")
    assert client["allowedOauthFlows"] == ["code"] and client["generateSecret"] is False
    assert aws.one("aws:cognito/userGroup:UserGroup")["name"] == "teachers"
    values = release_values(aws)
    jwt = values["jwt"]
    assert jwt["issuer"] == "https://cognito-idp.eu-west-1.amazonaws.com/coderemote-users-id"
    assert jwt["audience"] == "coderemote-page-id" and jwt["groupsClaim"] == "cognito:groups"
    assert jwt["adminGroups"] == ["teachers"]
    runtime = values["kernels"]["runtimeClass"]
    assert runtime["create"] is True and runtime["scheduling"]["nodeSelector"] == {GVISOR_LABEL: "true"}


def test_the_database_url_goes_to_a_secret_not_to_the_chart(aws: Recorder, gcp: Recorder) -> None:
    for recorder, host in ((aws, "coderemote-db.abc.eu-west-1.rds.amazonaws.com"), (gcp, "10.30.0.5")):
        secret = recorder.one("kubernetes:core/v1:Secret")
        assert secret["metadata"] == {"name": "coderemote-database", "namespace": "coderemote"}
        # Marked secret (encrypted in the stack's state), as the mocks see it:
        sealed = secret["stringData"]
        assert sealed[rpc._special_sig_key] == rpc._special_secret_sig
        url = sealed["value"]["url"]
        assert url.startswith("postgresql+psycopg://coderemote:") and host in url and PASSWORD in url
        values = release_values(recorder)
        assert values["database"]["existingSecret"] == "coderemote-database"
        assert PASSWORD not in json.dumps(values)


def test_gcp_kernel_nodes_are_gke_sandbox(gcp: Recorder) -> None:
    kernels = gcp.one("gcp:container/nodePool:NodePool", "-kernels")
    assert kernels["nodeConfig"]["sandboxConfig"] == {"sandboxType": "gvisor"}
    assert "sandboxConfig" not in gcp.one("gcp:container/nodePool:NodePool", "-servers")["nodeConfig"]
    cluster = gcp.one("gcp:container/cluster:Cluster")
    assert cluster["networkPolicy"]["enabled"] is True and cluster["removeDefaultNodePool"] is True
    db = gcp.one("gcp:sql/databaseInstance:DatabaseInstance")
    assert db["databaseVersion"] == "POSTGRES_16"
    assert db["settings"]["ipConfiguration"]["ipv4Enabled"] is False  # private address only
    assert gcp.of_type("gcp:identityplatform/config:Config")
    values = release_values(gcp)
    assert values["jwt"]["issuer"] == "https://securetoken.google.com/coderemote-prod"
    assert values["jwt"]["audience"] == "coderemote-prod"
    assert values["kernels"]["runtimeClass"]["create"] is False  # GKE Sandbox's own "gvisor"


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_the_release_values_render_with_the_chart(cloud: str, request: pytest.FixtureRequest) -> None:
    values = release_values(request.getfixturevalue(cloud))
    objects = rendered(values)
    for o in objects:
        if o["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(o, kubernetes_validate.latest_version(), strict=True)
    config = json.loads(next(o for o in objects if o["kind"] == "ConfigMap")["data"]["jupyter_server_config.json"])
    assert config["JWTIdentityProvider"]["issuer"] == values["jwt"]["issuer"]
    runtime_classes = [o for o in objects if o["kind"] == "RuntimeClass"]
    if cloud == "aws":
        (runtime,) = runtime_classes
        assert runtime["scheduling"]["tolerations"][0]["key"] == GVISOR_LABEL
    else:
        assert runtime_classes == []


def test_an_unknown_cloud_is_refused() -> None:
    with pytest.raises(Exception, match="aws or gcp"):
        run("azure")
