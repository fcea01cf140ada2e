"""Service databases on AWS (RDS and Aurora) and the pod security groups that alone may reach them,
built under mocks with an explicit, tagged AWS provider and fake network / cluster handles."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pytest
from pulumi.runtime import MockResourceArgs

from components.data.names import ADMIN_USER, POSTGRES_PORT, database_name
from components.data.rds import (
    CA_CERTIFICATE,
    PASSWORD_VERSION,
    ServiceDatabases,
    ServiceDatabasesArgs,
)
from components.targets.aws.handles import NetworkHandle
from components.targets.aws.pod_security import PodSecurityGroups, PodSecurityGroupsArgs
from policies.model import Resource
from policies.rules import aws as aws_rules
from policies.rules import platform as platform_rules
from rampart.config.models import Databases
from rampart.offline.manifests import to_manifest
from rampart.offline.mocks import PLACEHOLDER_SECRET, PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.runner import capture
from tests.conftest import planned
from tests.support.plans import name_of, policy_resources

REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
VPC_ID = "vpc-0123456789abcdef0"
CLUSTER_SG = "sg-0c1u5t3r5ecur1ty"
DEFAULT_TAGS = {"environment": "prod", "owner": "platform", "cost-center": "cc-42"}
EXTRA_TAGS = {"data-classification": "confidential"}
PERMISSIONS_BOUNDARY = "arn:aws:iam::123456789012:policy/rampart-boundary"
# service -> storage_gb; a hyphenated name checks the database name RDS accepts.
SERVICES = {"orders": 100, "payments": 200, "inventory-api": 20}
VAULT = "vault"
STACK = "test"
PREFIX = f"urn:pulumi:{STACK}::rampart::"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
SGP = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
SERVICE_TAG = "rampart.dev/service"
# The rules the prod-like plan must satisfy (the brief's list, plus the ones every AWS layer meets).
RULES = (
    "rds-storage-encrypted",
    "rds-performance-insights-cmk",
    "rds-force-ssl",
    "rds-iam-auth",
    "rds-not-public",
    "db-private-subnets",
    "rds-deletion-protection",
    "rds-final-snapshot",
    "rds-backup-retention",
    "rds-multi-az",
    "stateful-protected",
    "database-owned-by-one-service",
    "log-group-encrypted",
    "log-group-retention",
    "sg-no-public-ingress",
    "aws-resources-tagged",
    "kms-key-rotation",
    "explicit-providers",
)
# Rules about RDS instances: an Aurora plan has cluster members instead.
INSTANCE_RULES = ("rds-not-public", "rds-multi-az")

PROD = Databases(
    flavour="rds",
    engine_version="16",
    instance_class="db.r6g.large",
    multi_az=True,
    backup_retention_days=14,
    max_storage_factor=4,
    performance_insights_retention_days=31,
    monitoring_interval_seconds=15,
)
DEV = Databases(backup_retention_days=1)
AURORA = Databases(
    flavour="aurora",
    engine_version="16",
    instance_class="db.r6g.large",
    instances=2,
    backup_retention_days=14,
    performance_insights_retention_days=31,
    monitoring_interval_seconds=15,
)


@dataclass(frozen=True)
class Profile:
    environment: str
    settings: Databases
    protect: bool
    log_retention_days: int
    services: tuple[str, ...] = tuple(SERVICES)


PROFILES = {
    "dev": Profile("dev", DEV, protect=False, log_retention_days=30),
    "prod": Profile("prod", PROD, protect=True, log_retention_days=365),
    "aurora": Profile("prod", AURORA, protect=True, log_retention_days=365),
    # The same services declared in the opposite order.
    "prod-reversed": Profile(
        "prod", PROD, protect=True, log_retention_days=365, services=tuple(reversed(SERVICES))
    ),
    "prod-orders-only": Profile("prod", PROD, protect=True, log_retention_days=365, services=("orders",)),
}


def args_for(
    profile: Profile,
    network: NetworkHandle,
    clients: Mapping[str, pulumi.Input[str]],
    vault: pulumi.Input[str],
    passwords: Mapping[str, pulumi.Input[str]],
) -> ServiceDatabasesArgs:
    return ServiceDatabasesArgs(
        environment=profile.environment,
        settings=profile.settings,
        databases={service: SERVICES[service] for service in profile.services},
        network=network,
        client_security_groups=clients,
        extra_client_security_groups={VAULT: vault},
        admin_passwords=passwords,
        account_id="123456789012",
        partition="aws",
        region=REGION,
        log_retention_days=profile.log_retention_days,
        tags=EXTRA_TAGS,
        protect=profile.protect,
        permissions_boundary=PERMISSIONS_BOUNDARY,
    )


def program_for(profile: Profile) -> Callable[[], None]:
    def program() -> None:
        provider = aws.Provider(
            "aws", region=REGION, default_tags=aws.ProviderDefaultTagsArgs(tags=DEFAULT_TAGS)
        )
        on_aws = pulumi.ResourceOptions(providers=[provider])
        # Real subnets, so db-private-subnets can check the tier of what the subnet group uses.
        isolated = [
            aws.ec2.Subnet(
                f"isolated-{zone}",
                vpc_id=VPC_ID,
                cidr_block=f"10.20.{192 + 4 * index}.0/22",
                availability_zone=zone,
                tags={"rampart.dev/tier": "isolated"},
                opts=pulumi.ResourceOptions(provider=provider),
            )
            for index, zone in enumerate(ZONES)
        ]
        network = NetworkHandle(
            vpc_id=pulumi.Output.from_input(VPC_ID),
            vpc_cidr="10.20.0.0/16",
            availability_zones=ZONES,
            public_subnet_ids=[],
            private_subnet_ids=[],
            isolated_subnet_ids=[subnet.id for subnet in isolated],
        )
        pods = PodSecurityGroups(
            "pod-security",
            PodSecurityGroupsArgs(
                environment=profile.environment,
                vpc_id=network.vpc_id,
                cluster_security_group_id=pulumi.Output.from_input(CLUSTER_SG),
                workloads={**{service: service for service in profile.services}, VAULT: VAULT},
                provider=k8s.Provider("k8s"),
                tags=EXTRA_TAGS,
            ),
            opts=on_aws,
        )
        passwords = {
            service: random.RandomPassword(f"{service}-vault-admin", length=32, special=False).result
            for service in profile.services
        }
        clients = {service: pods.security_group_ids[service] for service in profile.services}
        databases = ServiceDatabases(
            "databases",
            args_for(profile, network, clients, pods.security_group_ids[VAULT], passwords),
            opts=on_aws,
        )
        pulumi.export(
            "endpoints",
            {
                service: {
                    "service": endpoint.service,
                    "host": endpoint.host,
                    "port": endpoint.port,
                    "database": endpoint.database,
                    "securityGroupId": endpoint.security_group_id,
                    "resourceId": endpoint.resource_id,
                    "kmsKeyArn": endpoint.kms_key_arn,
                }
                for service, endpoint in databases.endpoints.items()
            },
        )

    return program


class RdsMocks(PlanMocks):
    """PlanMocks plus the outputs RDS computes (address, resource ids), so the handle can be checked."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == RDS_INSTANCE:
            state |= {
                "address": f"{state['identifier']}.c0ffee.{REGION}.rds.amazonaws.com",
                "resourceId": f"db-{state['identifier'].upper()}",
            }
        elif args.typ == RDS_CLUSTER:
            state |= {
                "endpoint": f"{state['clusterIdentifier']}.cluster-c0ffee.{REGION}.rds.amazonaws.com",
                "clusterResourceId": f"cluster-{state['clusterIdentifier'].upper()}",
            }
        return resource_id, state


@functools.cache
def build(profile_name: str) -> Plan:
    registrations = capture(
        program_for(PROFILES[profile_name]), stack=STACK, monitor=CapturingMonitor(RdsMocks(region=REGION))
    )
    return Plan.from_registrations("rampart", STACK, registrations, {"type": "passphrase"})


# -- reading the plan --------------------------------------------------------------------------


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return plan.of_type(type_)


def named(plan: Plan, name: str, type_: str | None = None) -> dict[str, Any]:
    (found,) = [r for r in plan.resources if name_of(r) == name and type_ in (None, r["type"])]
    return found


def output_id(resource: Mapping[str, Any]) -> str:
    return str(resource["outputs"]["id"])


def pod_group(plan: Plan, workload: str) -> str:
    return output_id(named(plan, f"pod-security-{workload}-sg"))


def database_group(plan: Plan, service: str) -> dict[str, Any]:
    return named(plan, f"databases-{service}-sg")


def key_arn(plan: Plan, service: str) -> str:
    return str(named(plan, f"databases-{service}-key")["outputs"]["arn"])


def services_of(profile_name: str) -> tuple[str, ...]:
    return PROFILES[profile_name].services


# -- RDS: one instance per service -------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ["dev", "prod"])
def test_each_service_gets_its_own_encrypted_private_instance(profile_name: str) -> None:
    plan, profile = build(profile_name), PROFILES[profile_name]
    settings = profile.settings
    instances = {name_of(r): r for r in of_type(plan, RDS_INSTANCE)}
    assert sorted(instances) == sorted(f"databases-{s}-db" for s in profile.services)
    (subnet_group,) = of_type(plan, "aws:rds/subnetGroup:SubnetGroup")
    monitoring_role = named(plan, "databases-monitoring", ROLE)
    for service in profile.services:
        inputs = instances[f"databases-{service}-db"]["inputs"]
        storage = SERVICES[service]
        key = key_arn(plan, service)
        assert inputs["identifier"] == f"{profile.environment}-{service}"
        assert inputs["engine"] == "postgres" and inputs["engineVersion"] == settings.engine_version
        assert inputs["instanceClass"] == settings.instance_class
        assert inputs["dbName"] == database_name(service) and inputs["username"] == ADMIN_USER
        assert inputs["port"] == POSTGRES_PORT
        assert inputs["storageType"] == "gp3" and inputs["allocatedStorage"] == storage
        assert inputs["maxAllocatedStorage"] == storage * settings.max_storage_factor
        assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == key
        assert inputs["multiAz"] is settings.multi_az
        assert inputs["backupRetentionPeriod"] == settings.backup_retention_days
        assert inputs["backupWindow"] and inputs["maintenanceWindow"]
        assert inputs["copyTagsToSnapshot"] is True
        assert inputs["iamDatabaseAuthenticationEnabled"] is True
        assert inputs["performanceInsightsEnabled"] is True
        assert inputs["performanceInsightsKmsKeyId"] == key
        assert inputs["performanceInsightsRetentionPeriod"] == settings.performance_insights_retention_days
        assert inputs["monitoringInterval"] == settings.monitoring_interval_seconds
        assert inputs["monitoringRoleArn"] == monitoring_role["outputs"]["arn"]
        assert inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
        assert inputs["autoMinorVersionUpgrade"] is True
        assert inputs["publiclyAccessible"] is False
        assert inputs["caCertIdentifier"] == CA_CERTIFICATE == "rds-ca-rsa2048-g1"
        assert inputs["dbSubnetGroupName"] == subnet_group["outputs"]["name"]
        assert inputs["vpcSecurityGroupIds"] == [output_id(database_group(plan, service))]
        assert inputs["parameterGroupName"] == named(plan, f"databases-{service}-params")["outputs"]["name"]
        assert inputs["tags"] == {
            **EXTRA_TAGS,
            SERVICE_TAG: service,
            "Name": f"{profile.environment}-{service}",
        }
    # One key per service: a leaked grant on one key exposes one service's data.
    assert len({key_arn(plan, s) for s in profile.services}) == len(profile.services)


def test_windows_do_not_overlap() -> None:
    inputs = of_type(build("prod"), RDS_INSTANCE)[0]["inputs"]
    backup_end = inputs["backupWindow"].split("-")[1]
    maintenance_start = inputs["maintenanceWindow"].split("-")[0].split(":", 1)[1]
    assert backup_end < maintenance_start


@pytest.mark.parametrize("profile_name", ["dev", "prod"])
def test_protection_and_final_snapshots_follow_the_environment(profile_name: str) -> None:
    plan, profile = build(profile_name), PROFILES[profile_name]
    for instance in of_type(plan, RDS_INSTANCE):
        inputs = instance["inputs"]
        if profile.protect:
            assert instance["protect"] is True and instance["retainOnDelete"] is True
            assert inputs["deletionProtection"] is True
            assert inputs["skipFinalSnapshot"] is False
            assert inputs["finalSnapshotIdentifier"] == f"{inputs['identifier']}-final"
            assert inputs["deleteAutomatedBackups"] is False
        else:
            assert instance["protect"] is False and instance["retainOnDelete"] is False
            assert inputs["deletionProtection"] is False
            assert inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in inputs
            assert inputs["deleteAutomatedBackups"] is True
    # Keys follow the stack's one protection rule: kept in staging and prod, destroyable in dev (KMS
    # still waits its deletion window before a key is gone).
    assert all(key["protect"] is profile.protect for key in of_type(plan, KMS_KEY))


def test_parameter_group_forces_tls_and_scram() -> None:
    plan = build("prod")
    for service in SERVICES:
        group = named(plan, f"databases-{service}-params")["inputs"]
        assert group["family"] == "postgres16"
        parameters = {p["name"]: p["value"] for p in group["parameters"]}
        assert parameters == {
            "rds.force_ssl": "1",
            "password_encryption": "scram-sha-256",
            "ssl_min_protocol_version": "TLSv1.2",
            "log_connections": "1",
            "log_disconnections": "1",
            "log_min_duration_statement": "1000",
            "log_statement": "ddl",
        }
        assert group["tags"][SERVICE_TAG] == service


@pytest.mark.parametrize("profile_name", ["dev", "prod"])
def test_exported_logs_go_to_pre_created_encrypted_groups(profile_name: str) -> None:
    plan, profile = build(profile_name), PROFILES[profile_name]
    for service in profile.services:
        identifier = f"{profile.environment}-{service}"
        groups = {}
        for export in ("postgresql", "upgrade"):
            group = named(plan, f"databases-{service}-{export}-logs")
            groups[export] = group
            assert group["inputs"]["name"] == f"/aws/rds/instance/{identifier}/{export}"
            assert group["inputs"]["kmsKeyId"] == key_arn(plan, service)
            assert group["inputs"]["retentionInDays"] == profile.log_retention_days
        # The instance waits for its groups, or RDS would create them unencrypted and unretained.
        instance = named(plan, f"databases-{service}-db")
        assert {g["urn"] for g in groups.values()} <= set(instance["dependencies"])
        # ... and the key lets CloudWatch Logs use it for exactly these groups.
        policy = json.loads(named(plan, f"databases-{service}-key")["inputs"]["policy"])
        (logs,) = [s for s in policy["Statement"] if s.get("Sid") == "CloudWatchLogsUse"]
        assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [
            f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/rds/instance/{identifier}/*"
        ]


def test_one_subnet_group_over_the_isolated_subnets() -> None:
    plan = build("prod")
    (group,) = of_type(plan, "aws:rds/subnetGroup:SubnetGroup")
    isolated = sorted(output_id(s) for s in of_type(plan, "aws:ec2/subnet:Subnet"))
    # RDS treats subnetIds as a set; registration order varies from run to run.
    assert sorted(group["inputs"]["subnetIds"]) == isolated and len(isolated) == len(ZONES)


def test_one_enhanced_monitoring_role_with_the_managed_policy_and_the_boundary() -> None:
    plan = build("prod")
    (role,) = of_type(plan, "aws:iam/role:Role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["monitoring.rds.amazonaws.com"]},
            "Action": ["sts:AssumeRole"],
        }
    ]
    assert role["inputs"]["permissionsBoundary"] == PERMISSIONS_BOUNDARY
    (attachment,) = of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment["inputs"] == {
        "role": role["outputs"]["name"],
        "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
    }
    # Monitoring is switched on only once the role can publish.
    for instance in of_type(plan, RDS_INSTANCE):
        assert attachment["urn"] in instance["dependencies"]


# -- who may connect ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ["prod", "aurora"])
def test_a_database_admits_its_own_pods_and_vault_on_5432_only(profile_name: str) -> None:
    plan = build(profile_name)
    vault = pod_group(plan, VAULT)
    for service in services_of(profile_name):
        group = database_group(plan, service)["inputs"]
        assert group["vpcId"] == VPC_ID
        assert group["egress"] == []
        # Exactly two rules: the owner's pods, then Vault; no CIDR, self or prefix-list source.
        assert group["ingress"] == [
            {
                "description": f"PostgreSQL from {label} pods",
                "protocol": "tcp",
                "fromPort": POSTGRES_PORT,
                "toPort": POSTGRES_PORT,
                "securityGroups": [client],
            }
            for label, client in ((service, pod_group(plan, service)), (VAULT, vault))
        ]


@pytest.mark.parametrize("profile_name", ["prod", "aurora"])
def test_clients_get_egress_to_exactly_the_databases_they_may_use(profile_name: str) -> None:
    plan = build(profile_name)
    services = services_of(profile_name)
    database_ids = {output_id(database_group(plan, s)): s for s in services}
    reachable: dict[str, set[str]] = {}
    for rule in of_type(plan, EGRESS_RULE):
        inputs = rule["inputs"]
        assert (inputs["ipProtocol"], inputs["fromPort"], inputs["toPort"]) == ("tcp", 5432, 5432)
        assert "cidrIpv4" not in inputs and "cidrIpv6" not in inputs
        target = database_ids[inputs["referencedSecurityGroupId"]]
        reachable.setdefault(inputs["securityGroupId"], set()).add(target)
    expected = {pod_group(plan, s): {s} for s in services} | {pod_group(plan, VAULT): set(services)}
    assert reachable == expected


# -- the password ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ["dev", "prod", "aurora"])
def test_no_plaintext_password_anywhere_in_the_plan(profile_name: str) -> None:
    plan = build(profile_name)
    exported = json.dumps(plan.to_export())
    assert PLACEHOLDER_SECRET not in exported
    databases = of_type(plan, RDS_INSTANCE) + of_type(plan, RDS_CLUSTER)
    assert databases
    for database in databases:
        inputs = database["inputs"]
        # Write-only: sent on create, never re-sent over Vault's rotation, never read into state.
        field, version = ("passwordWo", "passwordWoVersion")
        if database["type"] == RDS_CLUSTER:
            field, version = ("masterPasswordWo", "masterPasswordWoVersion")
        assert inputs[field]["ciphertext"] == "rampart-offline-plan:redacted"
        assert inputs[version] == PASSWORD_VERSION
        assert "password" not in inputs and "masterPassword" not in inputs
        assert "manageMasterUserPassword" not in inputs


def fake_network() -> NetworkHandle:
    subnet = pulumi.Output.from_input("subnet-0isolated")
    return NetworkHandle(
        vpc_id=pulumi.Output.from_input(VPC_ID),
        vpc_cidr="10.20.0.0/16",
        availability_zones=ZONES[:1],
        public_subnet_ids=[],
        private_subnet_ids=[],
        isolated_subnet_ids=[subnet],
    )


def valid_args(**changes: Any) -> ServiceDatabasesArgs:
    arguments = args_for(
        PROFILES["prod"],
        fake_network(),
        {s: f"sg-{s}" for s in SERVICES},
        "sg-vault",
        {s: pulumi.Output.secret("s3cret") for s in SERVICES},
    )
    return replace(arguments, **changes)


def test_a_plain_string_password_is_refused() -> None:
    passwords: dict[str, pulumi.Input[str]] = {s: pulumi.Output.secret("x") for s in SERVICES}
    passwords["orders"] = "hunter2-in-plain-text"
    with pytest.raises(TypeError, match="'orders' is a plain str"):
        valid_args(admin_passwords=passwords)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"databases": {}}, "at least one service"),
        ({"client_security_groups": {"orders": "sg-1", "payments": "sg-2"}}, "'inventory-api': no client"),
        ({"databases": {**SERVICES, "search": 20}}, "'search': no client security group"),
        ({"databases": {"orders": 19}}, "below RDS's minimum"),
        ({"databases": {"orders": 20}}, "admin passwords for services without a database"),
        ({"extra_client_security_groups": {"pods": "sg-x"}}, "short DNS label"),
        ({"extra_client_security_groups": {"Vault Engine": "sg-x"}}, "short DNS label"),
        ({"environment": "Prod"}, "not a valid RDS identifier"),
    ],
)
def test_inconsistent_arguments_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        valid_args(**changes)


def test_small_storage_is_fine_on_aurora() -> None:
    args = valid_args(settings=AURORA, databases=dict.fromkeys(SERVICES, 1))
    assert args.databases["orders"] == 1


# -- names -------------------------------------------------------------------------------------


def snapshot(plan: Plan) -> dict[str, Any]:
    """URN -> (type, inputs, parent) of everything but the Stack."""
    return {
        r["urn"]: (r["type"], r.get("inputs"), r.get("parent"))
        for r in plan.resources
        if r["type"] != "pulumi:pulumi:Stack"
    }


def test_names_do_not_depend_on_declaration_order() -> None:
    assert snapshot(build("prod")) == snapshot(build("prod-reversed"))


def test_a_service_keeps_its_urns_when_other_services_come_and_go() -> None:
    alone = {urn for urn in snapshot(build("prod-orders-only")) if "orders" in urn}
    together = {urn for urn in snapshot(build("prod")) if "orders" in urn}
    assert alone == together and len(alone) > 10
    assert (
        f"{PREFIX}rampart:aws:ServiceDatabases$rampart:aws:ServiceDatabase$aws:rds/instance:Instance"
        "::databases-orders-db"
    ) in together


# -- the handle --------------------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", ["prod", "aurora"])
def test_the_handle_names_what_clients_need(profile_name: str) -> None:
    plan, profile = build(profile_name), PROFILES[profile_name]
    endpoints = plan.stack_outputs()["endpoints"]
    assert sorted(endpoints) == sorted(profile.services)
    for service in profile.services:
        endpoint = endpoints[service]
        identifier = f"prod-{service}"
        if profile_name == "aurora":
            host = f"{identifier}.cluster-c0ffee.{REGION}.rds.amazonaws.com"
            resource_id = f"cluster-{identifier.upper()}"
        else:
            host = f"{identifier}.c0ffee.{REGION}.rds.amazonaws.com"
            resource_id = f"db-{identifier.upper()}"
        assert endpoint == {
            "service": service,
            "host": host,
            "port": POSTGRES_PORT,
            "database": database_name(service),
            "securityGroupId": output_id(database_group(plan, service)),
            "resourceId": resource_id,
            "kmsKeyArn": key_arn(plan, service),
        }


# -- Aurora ------------------------------------------------------------------------------------


def test_aurora_clusters_have_the_same_protections() -> None:
    plan, settings = build("aurora"), AURORA
    assert not of_type(plan, RDS_INSTANCE)
    clusters = {name_of(r): r for r in of_type(plan, RDS_CLUSTER)}
    assert sorted(clusters) == sorted(f"databases-{s}-cluster" for s in SERVICES)
    for service in SERVICES:
        cluster = clusters[f"databases-{service}-cluster"]
        inputs = cluster["inputs"]
        identifier = f"prod-{service}"
        key = key_arn(plan, service)
        assert cluster["protect"] is True and cluster["retainOnDelete"] is True
        assert inputs["clusterIdentifier"] == identifier
        assert inputs["engine"] == "aurora-postgresql" and inputs["engineVersion"] == "16"
        assert inputs["databaseName"] == database_name(service) and inputs["masterUsername"] == ADMIN_USER
        assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == key
        assert inputs["iamDatabaseAuthenticationEnabled"] is True
        assert inputs["deletionProtection"] is True and inputs["skipFinalSnapshot"] is False
        assert inputs["finalSnapshotIdentifier"] == f"{identifier}-final"
        assert inputs["backupRetentionPeriod"] == settings.backup_retention_days
        assert inputs["copyTagsToSnapshot"] is True
        assert inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
        assert inputs["vpcSecurityGroupIds"] == [output_id(database_group(plan, service))]
        assert inputs["tags"][SERVICE_TAG] == service
        group = named(plan, f"databases-{service}-params")
        assert group["type"] == "aws:rds/clusterParameterGroup:ClusterParameterGroup"
        assert inputs["dbClusterParameterGroupName"] == group["outputs"]["name"]
        assert group["inputs"]["family"] == "aurora-postgresql16"
        assert {"name": "rds.force_ssl", "value": "1"} in group["inputs"]["parameters"]
        (log_group,) = [g for g in of_type(plan, LOG_GROUP) if name_of(g).startswith(f"databases-{service}-")]
        assert log_group["inputs"]["name"] == f"/aws/rds/cluster/{identifier}/postgresql"
        assert log_group["inputs"]["kmsKeyId"] == key and log_group["urn"] in cluster["dependencies"]

        members = [
            m for m in of_type(plan, CLUSTER_INSTANCE) if name_of(m).startswith(f"databases-{service}-")
        ]
        assert sorted(name_of(m) for m in members) == [f"databases-{service}-member-{i}" for i in range(2)]
        for member in members:
            member_inputs = member["inputs"]
            assert member["protect"] is True and member["retainOnDelete"] is True
            assert member_inputs["clusterIdentifier"] == cluster["outputs"]["id"]
            assert member_inputs["instanceClass"] == settings.instance_class
            assert member_inputs["publiclyAccessible"] is False
            assert member_inputs["caCertIdentifier"] == CA_CERTIFICATE
            assert member_inputs["performanceInsightsEnabled"] is True
            assert member_inputs["performanceInsightsKmsKeyId"] == key
            assert member_inputs["performanceInsightsRetentionPeriod"] == 31
            assert member_inputs["monitoringInterval"] == 15
            assert (
                member_inputs["monitoringRoleArn"]
                == named(plan, "databases-monitoring", ROLE)["outputs"]["arn"]
            )


# -- policies ----------------------------------------------------------------------------------

ALL_RULES = {rule.name: rule for rule in (*aws_rules.RULES, *platform_rules.RULES)}


def violations(
    inputs: list[Resource], outputs: list[Resource], names: tuple[str, ...]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in names:
        rule = ALL_RULES[name]
        if rule.is_stack_rule:
            messages = [v.message for v in rule.evaluate_stack(outputs)]
        else:
            messages = [m for resource in inputs for m in rule.evaluate(resource)]
        if messages:
            found[name] = messages
    return found


@pytest.mark.parametrize("profile_name", ["prod", "aurora"])
def test_every_aws_rule_passes_on_the_prod_like_plan(profile_name: str) -> None:
    plan = build(profile_name)
    assert set(RULES) <= set(ALL_RULES)
    inputs, outputs = policy_resources(plan, "inputs"), policy_resources(plan, "outputs")
    assert violations(inputs, outputs, tuple(ALL_RULES)) == {}
    # Not vacuous: every resource rule of the list has resources of its types in the plan.
    types = {r.type for r in inputs}
    for name in RULES:
        rule = ALL_RULES[name]
        if not rule.is_stack_rule and not (profile_name == "aurora" and name in INSTANCE_RULES):
            assert types & set(rule.types), name


def test_the_dev_plan_fails_only_the_rules_dev_relaxes() -> None:
    # Dev's policy config makes every rule advisory and lowers log retention: these are expected.
    plan = build("dev")
    found = violations(policy_resources(plan, "inputs"), policy_resources(plan, "outputs"), tuple(ALL_RULES))
    assert set(found) == {
        "rds-deletion-protection",
        "rds-final-snapshot",
        "rds-backup-retention",
        "rds-multi-az",
        "stateful-protected",
        "log-group-retention",
    }
    # The unprotected stateful resources are dev's instances and their keys (dev is disposable).
    assert len(found["stateful-protected"]) == 2 * len(SERVICES)


Mutation = Callable[[dict[str, Any]], None]


def set_prop(key: str, value: Any) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        props[key] = value

    return mutate


def drop_prop(key: str) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        props.pop(key, None)

    return mutate


def no_force_ssl(props: dict[str, Any]) -> None:
    props["parameters"] = [p for p in props["parameters"] if p["name"] != "rds.force_ssl"]


def drop_service_tag(props: dict[str, Any]) -> None:
    props["tags"] = {k: v for k, v in props["tags"].items() if k != SERVICE_TAG}


def public_ingress(props: dict[str, Any]) -> None:
    props["ingress"] = [{**props["ingress"][0], "cidrBlocks": ["0.0.0.0/0"]}]


# (rule, the name of the resource to weaken, how)
WEAKENINGS: list[tuple[str, str, Mutation]] = [
    ("rds-storage-encrypted", "databases-orders-db", set_prop("storageEncrypted", False)),
    ("rds-storage-encrypted", "databases-orders-db", drop_prop("kmsKeyId")),
    ("rds-performance-insights-cmk", "databases-orders-db", drop_prop("performanceInsightsKmsKeyId")),
    ("rds-force-ssl", "databases-orders-params", no_force_ssl),
    ("rds-iam-auth", "databases-orders-db", set_prop("iamDatabaseAuthenticationEnabled", False)),
    ("rds-not-public", "databases-orders-db", set_prop("publiclyAccessible", True)),
    ("db-private-subnets", "isolated-eu-west-1a", set_prop("tags", {"rampart.dev/tier": "public"})),
    ("rds-deletion-protection", "databases-orders-db", set_prop("deletionProtection", False)),
    ("rds-final-snapshot", "databases-orders-db", set_prop("skipFinalSnapshot", True)),
    ("rds-backup-retention", "databases-orders-db", set_prop("backupRetentionPeriod", 7)),
    ("rds-multi-az", "databases-orders-db", set_prop("multiAz", False)),
    ("database-owned-by-one-service", "databases-orders-db", drop_service_tag),
    ("log-group-encrypted", "databases-orders-postgresql-logs", drop_prop("kmsKeyId")),
    ("log-group-retention", "databases-orders-upgrade-logs", set_prop("retentionInDays", 7)),
    ("sg-no-public-ingress", "databases-orders-sg", public_ingress),
    ("aws-resources-tagged", "databases-orders-db", set_prop("tagsAll", {})),
]


@pytest.mark.parametrize(
    ("rule_name", "target", "mutate"), WEAKENINGS, ids=[f"{r}:{t}" for r, t, _ in WEAKENINGS]
)
def test_the_rules_notice_a_weakened_database(rule_name: str, target: str, mutate: Mutation) -> None:
    plan = copy.deepcopy(build("prod"))
    resource = named(plan, target)
    for props in ("inputs", "outputs"):
        mutate(resource[props])
    found = violations(policy_resources(plan, "inputs"), policy_resources(plan, "outputs"), (rule_name,))
    assert found.get(rule_name), rule_name
    # ... and it is the weakened resource (or the subnet group using the weakened subnet) it names.
    assert any(target in message or "databases-" in message for message in found[rule_name])


def test_stateful_protected_notices_an_unprotected_database() -> None:
    plan = copy.deepcopy(build("prod"))
    named(plan, "databases-orders-db")["protect"] = False
    found = violations(policy_resources(plan, "inputs"), [], ("stateful-protected",))
    assert found == {
        "stateful-protected": [
            "databases-orders-db: stateful rds/instance is not protected (set the Pulumi protect option)"
        ]
    }


def test_ownership_notices_two_databases_for_one_service() -> None:
    plan = copy.deepcopy(build("prod"))
    payments = named(plan, "databases-payments-db")
    payments["outputs"]["tags"] = {**payments["outputs"]["tags"], SERVICE_TAG: "orders"}
    found = violations([], policy_resources(plan, "outputs"), ("database-owned-by-one-service",))
    assert len(found["database-owned-by-one-service"]) == 2


# -- pod security groups -----------------------------------------------------------------------


def test_each_workload_gets_a_pod_security_group_without_rules() -> None:
    plan = build("prod")
    groups = {name_of(g): g for g in of_type(plan, SECURITY_GROUP) if name_of(g).startswith("pod-security-")}
    assert sorted(groups) == sorted(f"pod-security-{w}-sg" for w in (*SERVICES, VAULT))
    for workload in (*SERVICES, VAULT):
        inputs = groups[f"pod-security-{workload}-sg"]["inputs"]
        assert inputs["vpcId"] == VPC_ID
        # An identity only: no inline rules (they would be authoritative over the database layer's).
        assert "ingress" not in inputs and "egress" not in inputs
        assert inputs["tags"] == {**EXTRA_TAGS, SERVICE_TAG: workload, "Name": f"prod-{workload}-pods"}


def test_security_group_policies_have_the_exact_structure_the_vpc_resource_controller_reads() -> None:
    # No reference CRD schema ships for vpcresources.k8s.aws: the structure is asserted exactly
    # (the controller's CRD prunes unknown fields silently, so a typo would select nothing).
    plan = build("prod")
    (k8s_provider,) = plan.of_type("pulumi:providers:kubernetes")
    policies = {name_of(p): p for p in of_type(plan, SGP)}
    assert sorted(policies) == sorted(f"pod-security-{w}-policy" for w in (*SERVICES, VAULT))
    for workload in (*SERVICES, VAULT):
        policy = policies[f"pod-security-{workload}-policy"]
        assert policy["provider"] == f"{k8s_provider['urn']}::{k8s_provider['id']}"
        assert to_manifest(policy) == {
            "apiVersion": "vpcresources.k8s.aws/v1beta1",
            "kind": "SecurityGroupPolicy",
            "metadata": {
                "name": f"{workload}-pods",
                "namespace": workload,
                "labels": {
                    "app.kubernetes.io/name": workload,
                    "app.kubernetes.io/part-of": "rampart",
                    "app.kubernetes.io/managed-by": "pulumi",
                    "rampart.dev/environment": "prod",
                },
            },
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": workload}},
                "securityGroups": {"groupIds": [pod_group(plan, workload), CLUSTER_SG]},
            },
        }


def test_pod_security_groups_refuse_names_that_are_not_dns_labels() -> None:
    with pytest.raises(ValueError, match="not a DNS label"):
        PodSecurityGroupsArgs(
            environment="prod",
            vpc_id=VPC_ID,
            cluster_security_group_id=CLUSTER_SG,
            workloads={"Orders": "orders"},
            provider=None,  # type: ignore[arg-type]
        )


def test_the_cluster_can_give_pods_their_own_security_groups() -> None:
    plan = planned("prod")
    (cluster_role,) = [r for r in plan.of_type("aws:iam/role:Role") if name_of(r) == "cluster-eks-cluster"]
    attached = {
        a["inputs"]["policyArn"]
        for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["role"] == cluster_role["outputs"]["name"]
    }
    assert "arn:aws:iam::aws:policy/AmazonEKSVPCResourceController" in attached
    (cni,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a["inputs"]["addonName"] == "vpc-cni"]
    configuration = json.loads(cni["inputs"]["configurationValues"])
    assert configuration["env"] == {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"}
    assert configuration["enableNetworkPolicy"] == "true"
