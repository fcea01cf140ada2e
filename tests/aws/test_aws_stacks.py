"""The dev, staging and prod plans on AWS: network, EKS, nodes, add-ons, IAM, tags, wiring."""

from __future__ import annotations

import json
from typing import Any

from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config

IAM_DOCUMENT_PROPS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:kms/key:Key": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
}


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in plan.of_type(type_)]


def one(plan: Plan, type_: str) -> dict[str, Any]:
    (found,) = of_type(plan, type_)
    return found


def test_network(aws_stack: str) -> None:
    plan = planned(aws_stack)
    settings = stack_config(aws_stack).aws
    assert settings is not None
    vpc = one(plan, "aws:ec2/vpc:Vpc")
    assert vpc["cidrBlock"] == settings.vpc_cidr
    tiers = [s["tags"]["rampart.dev/tier"] for s in of_type(plan, "aws:ec2/subnet:Subnet")]
    assert sorted(tiers) == sorted(["public", "private", "isolated"] * len(settings.availability_zones))
    nat = of_type(plan, "aws:ec2/natGateway:NatGateway")
    assert len(nat) == (3 if settings.nat_gateways == "per_az" else 1)
    if aws_stack == "prod":
        assert len(nat) == 3
    assert one(plan, "aws:ec2/flowLog:FlowLog")["trafficType"] == "ALL"
    services = {e["serviceName"].rsplit(".", 1)[-1] for e in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert {"s3", "api", "dkr", "sts", "kms", "logs", "sqs"} <= services
    default_sg = one(plan, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default_sg.get("ingress") and not default_sg.get("egress")


def test_eks_cluster_is_secure_by_default(aws_stack: str) -> None:
    plan = planned(aws_stack)
    cluster = one(plan, "aws:eks/cluster:Cluster")
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert sorted(cluster["enabledClusterLogTypes"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    public = cluster["vpcConfig"]["endpointPublicAccess"]
    if aws_stack in ("staging", "prod"):
        assert public is False
    else:
        assert public is True and "0.0.0.0/0" not in cluster["vpcConfig"]["publicAccessCidrs"]
    assert cluster["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    entries = [
        e["principalArn"] for e in of_type(plan, "aws:eks/accessEntry:AccessEntry") if e["type"] == "STANDARD"
    ]
    cluster_wide = [
        a["principalArn"]
        for a in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a["accessScope"]["type"] == "cluster"
    ]
    config = stack_config(aws_stack)
    settings = config.aws
    # Cluster-wide access is the platform admins' alone; every other entry acts for a team.
    assert settings is not None and sorted(cluster_wide) == sorted(settings.admin_principal_arns)
    team_roles = [arn for team in config.teams for arn in team.aws_role_arns]
    assert team_roles and sorted(entries) == sorted([*settings.admin_principal_arns, *team_roles])
    (log_group,) = [
        g for g in of_type(plan, "aws:cloudwatch/logGroup:LogGroup") if g["name"].endswith("/cluster")
    ]
    assert log_group["kmsKeyId"] and log_group["retentionInDays"] == settings.control_plane_log_retention_days
    assert plan.of_type("aws:eks/cluster:Cluster")[0]["protect"] is (aws_stack in ("staging", "prod"))


def test_nodes_require_imdsv2_and_encrypt_volumes(aws_stack: str) -> None:
    plan = planned(aws_stack)
    template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (device,) = template["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] == "true" and device["ebs"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert "keyName" not in template
    group = one(plan, "aws:eks/nodeGroup:NodeGroup")
    assert group["launchTemplate"]["id"].startswith("lt-")


def test_add_ons_and_pod_identity(aws_stack: str) -> None:
    plan = planned(aws_stack)
    addons = {a["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon")}
    assert set(addons) == {
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "aws-ebs-csi-driver",
        "eks-pod-identity-agent",
        "metrics-server",
    }
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {
        "enableNetworkPolicy": "true",
        "env": {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"},
    }
    assert (
        addons["aws-ebs-csi-driver"]["podIdentityAssociations"][0]["serviceAccount"]
        == "ebs-csi-controller-sa"
    )
    associations = {
        (a["namespace"], a["serviceAccount"])
        for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    assert {("karpenter", "karpenter"), ("kube-system", "aws-load-balancer-controller")} <= associations
    storage = one(plan, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage["parameters"]["encrypted"] == "true" and storage["parameters"]["type"] == "gp3"


def test_karpenter_and_the_load_balancer_controller(aws_stack: str) -> None:
    plan = planned(aws_stack)
    charts = {r["chart"].rsplit("/", 1)[-1]: r for r in of_type(plan, "kubernetes:helm.sh/v3:Release")}
    assert {"karpenter", "aws-load-balancer-controller"} <= set(charts)
    assert all(r.get("version") for r in charts.values())
    kinds = {r["type"] for r in plan.custom()}
    assert {"kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"} <= kinds
    assert one(plan, "aws:sqs/queue:Queue")
    assert len(of_type(plan, "aws:cloudwatch/eventRule:EventRule")) == 4


def test_every_iam_document_parses_and_never_allows_every_action(aws_stack: str) -> None:
    plan = planned(aws_stack)
    documents = 0
    for type_, prop in IAM_DOCUMENT_PROPS.items():
        for inputs in of_type(plan, type_):
            document = json.loads(inputs[prop])
            documents += 1
            for statement in document["Statement"]:
                actions = statement.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                assert "*" not in actions and "*:*" not in actions, (type_, statement)
    assert documents >= 20


def test_in_cluster_resources_use_the_provider_built_from_the_cluster(aws_stack: str) -> None:
    plan = planned(aws_stack)
    (provider,) = plan.of_type("pulumi:providers:kubernetes")
    assert provider["urn"].endswith("EksCluster$pulumi:providers:kubernetes::cluster-eks-k8s")
    kubeconfig = json.loads(provider["inputs"]["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws"
    reference = f"{provider['urn']}::{provider['id']}"
    kubernetes = [r for r in plan.custom() if r["type"].startswith("kubernetes:")]
    assert kubernetes and {r["provider"] for r in kubernetes} == {reference}


def test_every_aws_resource_uses_the_tagged_account_provider(aws_stack: str) -> None:
    plan = planned(aws_stack)
    config = stack_config(aws_stack)
    (provider,) = plan.of_type("pulumi:providers:aws")
    default_tags = provider["inputs"]["defaultTags"]
    # Providers receive nested configuration as JSON text.
    default_tags = json.loads(default_tags) if isinstance(default_tags, str) else default_tags
    assert default_tags["tags"] == {
        "environment": config.environment,
        "owner": config.owner,
        "cost-center": config.cost_center,
    }
    reference = f"{provider['urn']}::{provider['id']}"
    for resource in plan.custom():
        if resource["type"].startswith("aws:"):
            assert resource["provider"] == reference, resource["urn"]
            assert resource["outputs"]["tagsAll"]["environment"] == config.environment, resource["urn"]
