"""The AWS Network component, built alone under mocks with an explicit AWS provider."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pytest

from components.targets.aws.network import INTERFACE_ENDPOINTS, Network, NetworkArgs, subnet_cidrs
from policies.rules.aws import RULES as AWS_RULES
from rampart.offline.plan import Plan
from tests.support.harness import plan_of
from tests.support.plans import of, one, policy_resources

REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
VPC_CIDR = "10.20.0.0/16"
CLUSTER = "rampart-dev"
PROVIDER_URN = "urn:pulumi:test::rampart::pulumi:providers:aws::aws"
POLICIES = (
    "vpc-flow-logs",
    "vpc-default-sg-closed",
    "log-group-encrypted",
    "log-group-retention",
    "kms-key-rotation",
    "sg-no-public-ingress",
    "iam-no-wildcard-action",
)


def args(
    nat_gateways: Literal["per_az", "single"] = "per_az",
    vpc_cidr: str = VPC_CIDR,
    zones: list[str] | None = None,
    retention: int = 365,
) -> NetworkArgs:
    return NetworkArgs(
        environment="dev",
        cluster_name=CLUSTER,
        vpc_cidr=vpc_cidr,
        availability_zones=list(zones or ZONES),
        nat_gateways=nat_gateways,
        flow_log_retention_days=retention,
        account_id="123456789012",
        partition="aws",
        region=REGION,
    )


@functools.cache
def build(nat_gateways: Literal["per_az", "single"] = "per_az", retention: int = 365) -> Plan:
    def program() -> None:
        provider = aws.Provider("aws", region=REGION)
        Network(
            "network",
            args(nat_gateways, retention=retention),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    return plan_of(program)


def by_id(plan: Plan, kind: str) -> dict[str, dict[str, Any]]:
    return {r["outputs"]["id"]: r for r in of(plan, kind)}


def tier(resource: dict[str, Any]) -> str:
    return str(resource["inputs"]["tags"]["rampart.dev/tier"])


def subnets(plan: Plan, wanted: str) -> list[dict[str, Any]]:
    return [s for s in of(plan, "Subnet") if tier(s) == wanted]


def default_routes(plan: Plan, route_table: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["inputs"]
        for r in of(plan, "Route")
        if r["inputs"]["routeTableId"] == route_table["outputs"]["id"]
        and r["inputs"].get("destinationCidrBlock") == "0.0.0.0/0"
    ]


def route_table_of(plan: Plan, subnet: dict[str, Any]) -> dict[str, Any]:
    (association,) = [
        a for a in of(plan, "RouteTableAssociation") if a["inputs"]["subnetId"] == subnet["outputs"]["id"]
    ]
    return by_id(plan, "RouteTable")[association["inputs"]["routeTableId"]]


# -- subnets -----------------------------------------------------------------------------------


def test_three_tiers_per_zone_inside_the_vpc_without_overlap() -> None:
    plan = build()
    vpc = one(plan, "Vpc")
    assert vpc["inputs"]["cidrBlock"] == VPC_CIDR
    assert vpc["inputs"]["enableDnsSupport"] is True and vpc["inputs"]["enableDnsHostnames"] is True
    all_subnets = of(plan, "Subnet")
    assert len(all_subnets) == 9
    for name in ("public", "private", "isolated"):
        assert sorted(s["inputs"]["availabilityZone"] for s in subnets(plan, name)) == ZONES
    network = ipaddress.ip_network(VPC_CIDR)
    blocks = [ipaddress.ip_network(s["inputs"]["cidrBlock"]) for s in all_subnets]
    assert all(b.subnet_of(network) for b in blocks)  # type: ignore[arg-type]
    for index, block in enumerate(blocks):
        for other in blocks[index + 1 :]:
            assert not block.overlaps(other), f"{block} overlaps {other}"
    for subnet in all_subnets:
        assert subnet["inputs"]["vpcId"] == vpc["outputs"]["id"]
        assert subnet["inputs"]["mapPublicIpOnLaunch"] is False
        assert subnet["inputs"]["tags"]["Name"]


def test_subnet_tags_for_load_balancers_and_karpenter() -> None:
    plan = build()
    for subnet in subnets(plan, "public"):
        tags = subnet["inputs"]["tags"]
        assert tags["kubernetes.io/role/elb"] == "1"
        assert "kubernetes.io/role/internal-elb" not in tags and "karpenter.sh/discovery" not in tags
    for subnet in subnets(plan, "private"):
        tags = subnet["inputs"]["tags"]
        assert tags["kubernetes.io/role/internal-elb"] == "1"
        assert tags["karpenter.sh/discovery"] == CLUSTER
        assert tags[f"kubernetes.io/cluster/{CLUSTER}"] == "shared"
        assert "kubernetes.io/role/elb" not in tags
    for subnet in subnets(plan, "isolated"):
        tags = subnet["inputs"]["tags"]
        assert not any(key.startswith(("kubernetes.io/", "karpenter.sh/")) for key in tags)


def test_cidr_layout_is_fixed_per_zone() -> None:
    layout = subnet_cidrs(VPC_CIDR, 3)
    assert layout.private == ["10.20.0.0/19", "10.20.32.0/19", "10.20.64.0/19"]
    assert layout.isolated == ["10.20.192.0/22", "10.20.196.0/22", "10.20.200.0/22"]
    assert layout.public == ["10.20.224.0/22", "10.20.228.0/22", "10.20.232.0/22"]
    # Adding zones never moves the existing ones.
    more = subnet_cidrs(VPC_CIDR, 6)
    assert more.private[:3] == layout.private and more.public[:3] == layout.public
    assert more.isolated[:3] == layout.isolated
    # The smallest VPC that fits: public and isolated subnets of /28.
    assert subnet_cidrs("10.0.0.0/22", 6).public[0] == "10.0.3.128/28"


@pytest.mark.parametrize(
    ("cidr", "zones", "message"),
    [
        ("10.0.0.0/24", 3, r"10\.0\.0\.0/24 is too small for 3 availability zones.*/30.*use a /22 or larger"),
        ("10.0.0.0/23", 2, r"too small.*/29"),
        ("10.0.0.0/15", 3, r"larger than /16"),
        ("10.0.0.1/16", 3, r"not a network CIDR"),
        ("fd00::/56", 3, r"not IPv4"),
        (VPC_CIDR, 7, r"1 to 6"),
    ],
)
def test_cidrs_that_do_not_fit_fail_clearly(cidr: str, zones: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subnet_cidrs(cidr, zones)


def test_too_small_vpc_fails_before_registering_anything() -> None:
    registered: list[str] = []

    def program() -> None:
        provider = aws.Provider("aws", region=REGION)
        registered.append("provider")
        with pytest.raises(ValueError, match=r"10\.0\.0\.0/24 is too small for 3 availability zones"):
            Network(
                "network", args(vpc_cidr="10.0.0.0/24"), opts=pulumi.ResourceOptions(providers=[provider])
            )

    plan = plan_of(program)
    assert registered == ["provider"]
    assert not of(plan, "Vpc") and not of(plan, "Subnet")
    assert not plan.of_type("rampart:aws:Network")


def test_duplicate_zones_fail() -> None:
    def program() -> None:
        Network("network", args(zones=["eu-west-1a", "eu-west-1a"]))

    with pytest.raises(ValueError, match="duplicates"):
        plan_of(program)


# -- routing -----------------------------------------------------------------------------------


def test_public_subnets_route_to_the_internet_gateway() -> None:
    plan = build()
    igw = one(plan, "InternetGateway")
    for subnet in subnets(plan, "public"):
        (route,) = default_routes(plan, route_table_of(plan, subnet))
        assert route["gatewayId"] == igw["outputs"]["id"]


def test_one_nat_gateway_per_zone_and_each_private_zone_uses_its_own() -> None:
    plan = build("per_az")
    nats = by_id(plan, "NatGateway")
    assert len(nats) == 3
    eips = by_id(plan, "Eip")
    assert {nat["inputs"]["allocationId"] for nat in nats.values()} == set(eips)
    public_zone = {s["outputs"]["id"]: s["inputs"]["availabilityZone"] for s in subnets(plan, "public")}
    private = subnets(plan, "private")
    tables = {route_table_of(plan, s)["urn"] for s in private}
    assert len(tables) == 3, "a route table per zone"
    for subnet in private:
        (route,) = default_routes(plan, route_table_of(plan, subnet))
        nat = nats[route["natGatewayId"]]
        assert public_zone[nat["inputs"]["subnetId"]] == subnet["inputs"]["availabilityZone"]


def test_single_nat_gateway_serves_every_zone() -> None:
    plan = build("single")
    nat = one(plan, "NatGateway")
    assert len(of(plan, "Eip")) == 1
    public_zone = {s["outputs"]["id"]: s["inputs"]["availabilityZone"] for s in subnets(plan, "public")}
    assert public_zone[nat["inputs"]["subnetId"]] == ZONES[0]
    private = subnets(plan, "private")
    assert len({route_table_of(plan, s)["urn"] for s in private}) == 3
    for subnet in private:
        (route,) = default_routes(plan, route_table_of(plan, subnet))
        assert route["natGatewayId"] == nat["outputs"]["id"]


def test_isolated_subnets_have_no_route_to_the_internet() -> None:
    plan = build()
    for subnet in subnets(plan, "isolated"):
        table = route_table_of(plan, subnet)
        assert tier(table) == "isolated"
        assert default_routes(plan, table) == []
        assert not [r for r in of(plan, "Route") if r["inputs"]["routeTableId"] == table["outputs"]["id"]]
        assert "routes" not in table["inputs"]


# -- flow logs ---------------------------------------------------------------------------------


def test_flow_logs_cover_the_vpc_into_an_encrypted_log_group() -> None:
    plan = build(retention=400)
    vpc, flow_log, group = one(plan, "Vpc"), one(plan, "FlowLog"), one(plan, "LogGroup")
    key, role = one(plan, "Key"), one(plan, "Role")
    assert flow_log["inputs"]["vpcId"] == vpc["outputs"]["id"]
    assert flow_log["inputs"]["trafficType"] == "ALL"
    assert flow_log["inputs"]["logDestinationType"] == "cloud-watch-logs"
    assert flow_log["inputs"]["logDestination"] == group["outputs"]["arn"]
    assert flow_log["inputs"]["iamRoleArn"] == role["outputs"]["arn"]
    assert one(plan, "RolePolicy")["urn"] in flow_log["dependencies"]
    assert group["inputs"]["name"] == f"/rampart/{CLUSTER}/vpc-flow-logs"
    assert group["inputs"]["kmsKeyId"] == key["outputs"]["arn"]
    assert group["inputs"]["retentionInDays"] == 400
    # The key lets CloudWatch Logs use it for this log group only.
    statements = json.loads(key["inputs"]["policy"])["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "CloudWatchLogsUse"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [
        f"arn:aws:logs:{REGION}:123456789012:log-group:/rampart/{CLUSTER}/vpc-flow-logs*"
    ]


def test_flow_log_key_rotates_and_is_protected_where_the_stack_is() -> None:
    key = one(build(), "Key")
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["protect"] is False
    assert one(build_protected(), "Key")["protect"] is True


BOUNDARY = "arn:aws:iam::123456789012:policy/rampart-boundary"


@functools.cache
def build_protected() -> Plan:
    """A stack like prod: protected, with a permissions boundary."""

    def program() -> None:
        provider = aws.Provider("aws", region=REGION)
        Network(
            "network",
            dataclasses.replace(args(), protect=True, permissions_boundary=BOUNDARY),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    return plan_of(program)


def test_the_flow_log_role_carries_the_permissions_boundary() -> None:
    # A deploy role allowed only boundary-carrying iam:CreateRole is otherwise denied.
    assert one(build_protected(), "Role")["inputs"]["permissionsBoundary"] == BOUNDARY
    assert "permissionsBoundary" not in one(build(), "Role")["inputs"]


def test_flow_log_role_is_least_privilege() -> None:
    plan = build()
    role, policy, group = one(plan, "Role"), one(plan, "RolePolicy"), one(plan, "LogGroup")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["vpc-flow-logs.amazonaws.com"]},
            "Action": ["sts:AssumeRole"],
        }
    ]
    assert policy["inputs"]["role"] == role["outputs"]["id"]
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    arn = group["outputs"]["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"]
    assert all(action.startswith("logs:") and "*" not in action for action in statement["Action"])
    assert "logs:PutLogEvents" in statement["Action"] and "logs:CreateLogStream" in statement["Action"]


def test_every_iam_document_is_json_without_wildcard_actions() -> None:
    plan = build()
    documents = [r["inputs"]["policy"] for r in of(plan, "RolePolicy")] + [
        r["inputs"]["assumeRolePolicy"] for r in of(plan, "Role")
    ]
    assert documents
    for text in documents:
        for statement in json.loads(text)["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in actions and "*:*" not in actions


# -- endpoints and security groups -------------------------------------------------------------


def test_vpc_endpoints() -> None:
    plan = build()
    endpoints = {e["inputs"]["serviceName"]: e["inputs"] for e in of(plan, "VpcEndpoint")}
    assert len(INTERFACE_ENDPOINTS) == 8
    assert set(endpoints) == {f"com.amazonaws.{REGION}.{s}" for s in ("s3", *INTERFACE_ENDPOINTS)}
    assert {"eks-auth", "ecr.api", "ecr.dkr", "sts", "kms", "logs", "sqs"} <= set(INTERFACE_ENDPOINTS)

    s3 = endpoints[f"com.amazonaws.{REGION}.s3"]
    assert s3["vpcEndpointType"] == "Gateway"
    tables = by_id(plan, "RouteTable")
    assert sorted(tier(tables[t]) for t in s3["routeTableIds"]) == [
        "isolated",
        "private",
        "private",
        "private",
    ]

    private_ids = sorted(s["outputs"]["id"] for s in subnets(plan, "private"))
    sg = one(plan, "SecurityGroup")
    for service in INTERFACE_ENDPOINTS:
        endpoint = endpoints[f"com.amazonaws.{REGION}.{service}"]
        assert endpoint["vpcEndpointType"] == "Interface"
        assert endpoint["privateDnsEnabled"] is True
        assert sorted(endpoint["subnetIds"]) == private_ids
        assert endpoint["securityGroupIds"] == [sg["outputs"]["id"]]
        assert endpoint["vpcId"] == one(plan, "Vpc")["outputs"]["id"]


def test_endpoint_security_group_admits_only_https_from_the_vpc() -> None:
    sg = one(build(), "SecurityGroup")["inputs"]
    (ingress,) = sg["ingress"]
    assert (ingress["protocol"], ingress["fromPort"], ingress["toPort"]) == ("tcp", 443, 443)
    assert ingress["cidrBlocks"] == [VPC_CIDR]
    assert not ingress.get("ipv6CidrBlocks") and not ingress.get("securityGroups")
    assert [rule["cidrBlocks"] for rule in sg["egress"]] == [[VPC_CIDR]]


def test_default_security_group_has_no_rules() -> None:
    plan = build()
    default = one(plan, "DefaultSecurityGroup")["inputs"]
    assert default["vpcId"] == one(plan, "Vpc")["outputs"]["id"]
    assert default.get("ingress", []) == [] and default.get("egress", []) == []


# -- wiring ------------------------------------------------------------------------------------


def test_every_resource_uses_the_explicit_provider_and_sits_under_the_component() -> None:
    plan = build()
    (component,) = plan.of_type("rampart:aws:Network")
    aws_resources = [r for r in plan.custom() if r["type"].startswith("aws:")]
    assert len(aws_resources) > 40
    for resource in aws_resources:
        assert resource["provider"].startswith(f"{PROVIDER_URN}::"), resource["urn"]
    assert {r["urn"] for r in aws_resources} <= {r["urn"] for r in plan.descendants(component["urn"])}
    assert not [r for r in plan.resources if r.get("defaultProvider")]


def test_everything_taggable_carries_a_name() -> None:
    untaggable = {"Route", "RouteTableAssociation", "RolePolicy", "Alias", "Key"}
    for resource in build().custom():
        kind = resource["type"].rsplit(":", 1)[1]
        if resource["type"].startswith("aws:") and kind not in untaggable:
            assert resource["inputs"]["tags"]["Name"].startswith(f"{CLUSTER}-"), resource["urn"]


def test_handle_and_outputs() -> None:
    plan = build()
    (component,) = plan.of_type("rampart:aws:Network")
    outputs = component["outputs"]
    assert outputs["vpcId"] == one(plan, "Vpc")["outputs"]["id"]
    for name in ("public", "private", "isolated"):
        by_zone = {s["inputs"]["availabilityZone"]: s["outputs"]["id"] for s in subnets(plan, name)}
        assert outputs[f"{name}SubnetIds"] == [by_zone[zone] for zone in ZONES]


def test_handle_is_typed() -> None:
    handles: list[Network] = []

    def program() -> None:
        handles.append(Network("network", args()))

    plan_of(program)
    handle = handles[0].handle
    assert handle.vpc_cidr == VPC_CIDR and handle.availability_zones == ZONES
    assert len(handle.public_subnet_ids) == len(handle.private_subnet_ids) == len(handle.isolated_subnet_ids)
    assert all(isinstance(i, pulumi.Output) for i in handle.private_subnet_ids)


# -- policies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("nat_gateways", ["per_az", "single"])
def test_the_policy_rules_pass(nat_gateways: Literal["per_az", "single"]) -> None:
    plan = build(nat_gateways, retention=90)
    rules = {rule.name: rule for rule in AWS_RULES}
    assert set(POLICIES) <= set(rules)
    violations: list[str] = []
    for name in POLICIES:
        rule = rules[name]
        if rule.is_stack_rule:
            violations += [v.message for v in rule.evaluate_stack(policy_resources(plan, "outputs"))]
        else:
            for resource in policy_resources(plan, "inputs"):
                violations += rule.evaluate(resource)
    assert violations == []
    # ... and they would have caught the opposite.
    kinds = {r.type for r in policy_resources(plan, "inputs")}
    assert {"aws:ec2/flowLog:FlowLog", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"} <= kinds
    assert {"aws:cloudwatch/logGroup:LogGroup", "aws:kms/key:Key", "aws:iam/rolePolicy:RolePolicy"} <= kinds


def test_the_flow_log_rule_would_catch_a_vpc_without_one() -> None:
    plan = build()
    resources = [r for r in policy_resources(plan, "outputs") if not r.type.endswith(":FlowLog")]
    (rule,) = [r for r in AWS_RULES if r.name == "vpc-flow-logs"]
    assert len(rule.evaluate_stack(resources)) == 1
