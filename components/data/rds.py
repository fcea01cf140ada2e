"""A PostgreSQL database per service on AWS: RDS (one instance, Multi-AZ when configured) or Aurora
(a cluster of `instances` members), each with its own KMS key, security group and parameter group.

Only the owning service's pods (their pod security group) and Vault's database engine reach a
database, on 5432 and TLS only. Vault logs in as ADMIN_USER with the password it is handed here and
rotates it on first use, so the password is write-only: sent when the database is created, never
re-sent (Vault's rotation would otherwise be undone) and never read back into the provider's state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.data.names import ADMIN_USER, POSTGRES_PORT, database_name
from components.targets.aws import iam, kms
from components.targets.aws.eks import managed_policy
from components.targets.aws.handles import NetworkHandle
from rampart.config.models import Databases

SERVICE_TAG = "rampart.dev/service"
RDS_ENGINE = "postgres"
AURORA_ENGINE = "aurora-postgresql"
# RSA 2048 with a 2061 expiry: supported by every client library; the default (rsa2048-g1) stated
# explicitly so a change of AWS's default never rotates the certificate under running services.
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
STORAGE_TYPE = "gp3"
# What each engine can send to CloudWatch Logs (Aurora PostgreSQL has no separate upgrade log).
RDS_LOG_EXPORTS = ("postgresql", "upgrade")
AURORA_LOG_EXPORTS = ("postgresql",)
# UTC. Backups first, then maintenance: the windows must not overlap.
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"
# Statements slower than this are logged with their duration (ms).
SLOW_STATEMENT_MS = 1000
MONITORING_SERVICE = "monitoring.rds.amazonaws.com"
MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
# Bumping this re-sends the admin password (e.g. to recover after Vault lost its rotated one).
PASSWORD_VERSION = 1
# RDS for PostgreSQL's smallest gp3 volume (GiB).
MIN_STORAGE_GB = 20
# RDS identifiers: a letter, then letters, digits and single hyphens; at most 63 characters.
IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
DEV = "dev"
# The label of the owning service's pods among a database's clients (the others are named by the caller).
OWNER_LABEL = "pods"
CLIENT_LABEL = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


# Server settings of every service database (RDS parameter group or Aurora cluster parameter group).
PARAMETERS: tuple[tuple[str, str], ...] = (
    ("log_connections", "1"),
    ("log_disconnections", "1"),
    ("log_min_duration_statement", str(SLOW_STATEMENT_MS)),
    # Schema changes leave a trace; data statements do not (they may carry personal data).
    ("log_statement", "ddl"),
    ("password_encryption", "scram-sha-256"),
    # TLS or nothing: the server refuses plaintext connections.
    ("rds.force_ssl", "1"),
    ("ssl_min_protocol_version", "TLSv1.2"),
)


def identifier(environment: str, service: str) -> str:
    """The instance / cluster identifier: stable for the life of the service (changing it replaces
    the database)."""
    return f"{environment}-{service}"


def log_group_prefix(flavour: str, db_identifier: str) -> str:
    kind = "cluster" if flavour == "aurora" else "instance"
    return f"/aws/rds/{kind}/{db_identifier}/"


@dataclass(frozen=True)
class DatabaseEndpoint:
    """What clients of one service's database need: Vault's connection, IAM auth, network policy."""

    service: str
    # The instance address (RDS) or the cluster's writer endpoint (Aurora).
    host: pulumi.Output[str]
    port: int
    database: str
    # The database's own security group (it admits the service's pods and Vault on `port`).
    security_group_id: pulumi.Output[str]
    # For IAM auth: arn:<partition>:rds-db:<region>:<account>:dbuser:<resource_id>/<user>.
    resource_id: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]


@dataclass(frozen=True)
class ServiceDatabasesArgs:
    environment: str
    settings: Databases
    # service -> storage_gb (RDS allocated storage; Aurora storage grows by itself).
    databases: Mapping[str, int]
    network: NetworkHandle
    # service -> the security group of its pods: the only pods that may reach its database.
    client_security_groups: Mapping[str, pulumi.Input[str]]
    # name -> security group of a platform client of every database (Vault's database engine).
    # Keyed by name so that the resources it creates keep their names whatever the order.
    extra_client_security_groups: Mapping[str, pulumi.Input[str]]
    # service -> the initial password of ADMIN_USER: a secret Output (pulumi-random), never a str.
    admin_passwords: Mapping[str, pulumi.Input[str]]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    log_retention_days: int
    # Added to every resource that takes tags (the provider's default tags still apply).
    tags: Mapping[str, str] = field(default_factory=dict)
    # Staging and prod: deletion protection, Pulumi protect and retain-on-delete.
    protect: bool = False
    permissions_boundary: str | None = None

    def __post_init__(self) -> None:
        if not self.databases:
            raise ValueError("ServiceDatabases needs at least one service with a database")
        for service, storage_gb in self.databases.items():
            name = identifier(self.environment, service)
            if not IDENTIFIER.match(name):
                raise ValueError(f"database identifier {name!r} is not a valid RDS identifier")
            if service not in self.client_security_groups:
                raise ValueError(f"database of {service!r}: no client security group for its pods")
            if service not in self.admin_passwords:
                raise ValueError(f"database of {service!r}: no admin password")
            if self.settings.flavour == "rds" and storage_gb < MIN_STORAGE_GB:
                raise ValueError(
                    f"database of {service!r}: storage_gb {storage_gb} is below RDS's minimum of "
                    f"{MIN_STORAGE_GB} GiB for gp3"
                )
        for label in self.extra_client_security_groups:
            if label == OWNER_LABEL or not CLIENT_LABEL.match(label):
                raise ValueError(
                    f"extra client {label!r}: name it with a short DNS label other than {OWNER_LABEL!r}"
                )
        strays = sorted(set(self.admin_passwords) - set(self.databases))
        if strays:
            raise ValueError(f"admin passwords for services without a database: {', '.join(strays)}")
        for service, password in self.admin_passwords.items():
            if isinstance(password, str):
                raise TypeError(
                    f"admin password of {service!r} is a plain str: pass the secret Output of a "
                    "pulumi_random.RandomPassword, so it is encrypted in the state"
                )


@dataclass(frozen=True)
class _Shared:
    """What every service database uses: the subnet group and the enhanced-monitoring role."""

    subnet_group_name: pulumi.Output[str]
    monitoring_role_arn: pulumi.Output[str]
    # The role must be able to publish before monitoring is switched on.
    ready: list[pulumi.Resource]


@dataclass(frozen=True)
class _Common:
    """What the RDS instance and the Aurora cluster of one service share."""

    identifier: str
    service: str
    tags: dict[str, str]
    key_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    password: pulumi.Output[str]
    exports: list[str]
    skip_final_snapshot: bool
    final_snapshot_identifier: str | None
    delete_automated_backups: bool
    opts: pulumi.ResourceOptions


class ServiceDatabases(pulumi.ComponentResource):
    endpoints: dict[str, DatabaseEndpoint]

    def __init__(
        self, name: str, args: ServiceDatabasesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:aws:ServiceDatabases", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            description=f"Service databases of {args.environment}: isolated subnets, no internet route",
            subnet_ids=args.network.isolated_subnet_ids,
            tags={**args.tags, "Name": f"{args.environment}-databases"},
            opts=child,
        )
        monitoring_role = aws.iam.Role(
            f"{name}-monitoring",
            assume_role_policy=iam.service_trust(MONITORING_SERVICE),
            permissions_boundary=args.permissions_boundary,
            description=f"RDS enhanced monitoring of the {args.environment} service databases",
            tags=dict(args.tags),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=monitoring_role.name,
            policy_arn=managed_policy(args.partition, MONITORING_POLICY),
            opts=child,
        )
        shared = _Shared(subnet_group.name, monitoring_role.arn, [attachment])
        # Sorted: the registration order, like every name, does not depend on the mapping's order.
        self.endpoints = {
            service: ServiceDatabase(f"{name}-{service}", service, args, shared, opts=child).endpoint
            for service in sorted(args.databases)
        }
        self.register_outputs(
            {
                "hosts": {service: endpoint.host for service, endpoint in self.endpoints.items()},
                "subnetGroup": subnet_group.name,
            }
        )


class ServiceDatabase(pulumi.ComponentResource):
    """One service's database and everything only it uses."""

    endpoint: DatabaseEndpoint

    def __init__(
        self,
        name: str,
        service: str,
        args: ServiceDatabasesArgs,
        shared: _Shared,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("rampart:aws:ServiceDatabase", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        db_identifier = identifier(args.environment, service)
        tags = {**args.tags, SERVICE_TAG: service, "Name": db_identifier}
        prefix = log_group_prefix(settings.flavour, db_identifier)

        key = kms.customer_key(
            f"{name}-key",
            f"Database of {service} ({args.environment}): storage, snapshots, Performance Insights, logs",
            args,
            log_group_prefixes=[prefix],
            protect=args.protect,
            opts=child,
        )
        security_group = self._security_group(name, service, args, tags)
        exports = AURORA_LOG_EXPORTS if settings.flavour == "aurora" else RDS_LOG_EXPORTS
        # RDS creates these groups on first export, unencrypted and kept forever: create them first.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{export}-logs",
                name=f"{prefix}{export}",
                kms_key_id=key.arn,
                retention_in_days=args.log_retention_days,
                tags=tags,
                opts=child,
            )
            for export in exports
        ]
        kept = args.environment != DEV
        common = _Common(
            identifier=db_identifier,
            service=service,
            tags=tags,
            key_arn=key.arn,
            security_group_id=security_group.id,
            password=pulumi.Output.secret(args.admin_passwords[service]),
            exports=list(exports),
            skip_final_snapshot=not kept,
            final_snapshot_identifier=f"{db_identifier}-final" if kept else None,
            # Outside dev, automated backups outlive the database: point-in-time recovery stays possible.
            delete_automated_backups=not kept,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*log_groups, *shared.ready],
                protect=args.protect,
                retain_on_delete=args.protect,
            ),
        )
        if settings.flavour == "aurora":
            host, resource_id = self._aurora(name, args, shared, common)
        else:
            host, resource_id = self._rds(name, args, shared, common)

        self.endpoint = DatabaseEndpoint(
            service=service,
            host=host,
            port=POSTGRES_PORT,
            database=database_name(service),
            security_group_id=security_group.id,
            resource_id=resource_id,
            kms_key_arn=key.arn,
        )
        self.register_outputs({"host": host, "securityGroupId": security_group.id, "kmsKeyArn": key.arn})

    def _security_group(
        self, name: str, service: str, args: ServiceDatabasesArgs, tags: dict[str, str]
    ) -> aws.ec2.SecurityGroup:
        child = pulumi.ResourceOptions(parent=self)
        # label -> client security group: the service's pods, then the platform clients by name.
        clients: dict[str, pulumi.Input[str]] = {OWNER_LABEL: args.client_security_groups[service]}
        clients |= {
            label: args.extra_client_security_groups[label]
            for label in sorted(args.extra_client_security_groups)
        }
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.network.vpc_id,
            description=f"PostgreSQL of {service} ({args.environment}): its pods and platform clients only",
            # Inline rules are authoritative: a rule added by hand is removed on the next update.
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description=f"PostgreSQL from {service if label == OWNER_LABEL else label} pods",
                    protocol="tcp",
                    from_port=POSTGRES_PORT,
                    to_port=POSTGRES_PORT,
                    security_groups=[client],
                )
                for label, client in clients.items()
            ],
            # The database only answers, and answers need no egress rule (security groups are stateful).
            egress=[],
            tags=tags,
            opts=child,
        )
        # The clients' side. Their groups carry no inline rules (which would be authoritative and
        # delete these); the database layer adds them, after both groups exist, so there is no cycle.
        for label, client in clients.items():
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{label}-egress",
                security_group_id=client,
                referenced_security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=POSTGRES_PORT,
                to_port=POSTGRES_PORT,
                description=f"PostgreSQL to the database of {service}",
                tags=tags,
                opts=child,
            )
        return security_group

    def _parameter_group(
        self, name: str, family: str, common: _Common, *, aurora: bool
    ) -> pulumi.Output[str]:
        """The server settings (PARAMETERS) in a group of the engine's kind: cluster-wide for Aurora."""
        group = _ParameterGroupKwargs(
            resource_name=f"{name}-params",
            family=family,
            description=f"{common.identifier}: TLS only, SCRAM passwords, connection and slow-query logs",
            tags=common.tags,
            # Auto-named, and keyed by a name without the family: a new major changes `family`, which
            # replaces the group, create-before-delete (never delete_before_replace): the new family's
            # group exists before the database switches to it (same `pulumi up`, apply_immediately),
            # and the old one is deleted once nothing uses it.
            opts=pulumi.ResourceOptions(parent=self),
        )
        if aurora:
            cluster_parameters = [
                aws.rds.ClusterParameterGroupParameterArgs(name=key, value=value) for key, value in PARAMETERS
            ]
            return aws.rds.ClusterParameterGroup(**group, parameters=cluster_parameters).name
        parameters = [aws.rds.ParameterGroupParameterArgs(name=key, value=value) for key, value in PARAMETERS]
        return aws.rds.ParameterGroup(**group, parameters=parameters).name

    def _rds(
        self, name: str, args: ServiceDatabasesArgs, shared: _Shared, common: _Common
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        settings = args.settings
        storage_gb = args.databases[common.service]
        instance = aws.rds.Instance(
            f"{name}-db",
            identifier=common.identifier,
            engine=RDS_ENGINE,
            auto_minor_version_upgrade=True,
            instance_class=settings.instance_class,
            db_name=database_name(common.service),
            username=ADMIN_USER,
            password_wo=common.password,
            password_wo_version=PASSWORD_VERSION,
            publicly_accessible=False,
            parameter_group_name=self._parameter_group(
                name, f"{RDS_ENGINE}{settings.engine_version}", common, aurora=False
            ),
            ca_cert_identifier=CA_CERTIFICATE,
            storage_type=STORAGE_TYPE,
            allocated_storage=storage_gb,
            max_allocated_storage=storage_gb * settings.max_storage_factor,
            multi_az=settings.multi_az,
            backup_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            **_database_kwargs(args, shared, common),
            **_insights_kwargs(args, shared, common),
            opts=common.opts,
        )
        return instance.address, instance.resource_id

    def _aurora(
        self, name: str, args: ServiceDatabasesArgs, shared: _Shared, common: _Common
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        settings = args.settings
        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=common.identifier,
            engine=AURORA_ENGINE,
            database_name=database_name(common.service),
            master_username=ADMIN_USER,
            master_password_wo=common.password,
            master_password_wo_version=PASSWORD_VERSION,
            db_cluster_parameter_group_name=self._parameter_group(
                name, f"{AURORA_ENGINE}{settings.engine_version}", common, aurora=True
            ),
            preferred_backup_window=BACKUP_WINDOW,
            preferred_maintenance_window=MAINTENANCE_WINDOW,
            **_database_kwargs(args, shared, common),
            opts=common.opts,
        )
        member_opts = pulumi.ResourceOptions.merge(common.opts, pulumi.ResourceOptions(depends_on=[cluster]))
        # Members by index within the service: removing one removes the newest, never renames others.
        for index in range(settings.instances):
            aws.rds.ClusterInstance(
                f"{name}-member-{index}",
                identifier=f"{common.identifier}-{index}",
                cluster_identifier=cluster.id,
                engine=aws.rds.EngineType.AURORA_POSTGRESQL,
                engine_version=cluster.engine_version,
                instance_class=settings.instance_class,
                db_subnet_group_name=shared.subnet_group_name,
                publicly_accessible=False,
                ca_cert_identifier=CA_CERTIFICATE,
                auto_minor_version_upgrade=True,
                apply_immediately=settings.apply_immediately,
                copy_tags_to_snapshot=True,
                tags=common.tags,
                **_insights_kwargs(args, shared, common),
                opts=member_opts,
            )
        return cluster.endpoint, cluster.cluster_resource_id


class _ParameterGroupKwargs(TypedDict):
    resource_name: str
    family: str
    description: str
    tags: dict[str, str]
    opts: pulumi.ResourceOptions


class _DatabaseKwargs(TypedDict):
    """What the RDS instance and the Aurora cluster are given alike."""

    engine_version: str
    # A major upgrade (engine_version to a new major) needs both, from the stack config: RDS refuses a
    # new major without allow_major_version_upgrade, and without apply_immediately it defers the engine
    # and parameter-group change to the maintenance window while Pulumi deletes the old group
    # (docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html).
    allow_major_version_upgrade: bool
    apply_immediately: bool
    port: int
    db_subnet_group_name: pulumi.Input[str]
    vpc_security_group_ids: list[pulumi.Input[str]]
    storage_encrypted: bool
    kms_key_id: pulumi.Input[str]
    backup_retention_period: int
    copy_tags_to_snapshot: bool
    delete_automated_backups: bool
    deletion_protection: bool
    skip_final_snapshot: bool
    final_snapshot_identifier: str | None
    iam_database_authentication_enabled: bool
    enabled_cloudwatch_logs_exports: list[str]
    tags: dict[str, str]


def _database_kwargs(args: ServiceDatabasesArgs, shared: _Shared, common: _Common) -> _DatabaseKwargs:
    settings = args.settings
    return _DatabaseKwargs(
        engine_version=settings.engine_version,
        allow_major_version_upgrade=settings.allow_major_version_upgrade,
        apply_immediately=settings.apply_immediately,
        port=POSTGRES_PORT,
        db_subnet_group_name=shared.subnet_group_name,
        vpc_security_group_ids=[common.security_group_id],
        storage_encrypted=True,
        kms_key_id=common.key_arn,
        backup_retention_period=settings.backup_retention_days,
        copy_tags_to_snapshot=True,
        delete_automated_backups=common.delete_automated_backups,
        deletion_protection=args.protect,
        skip_final_snapshot=common.skip_final_snapshot,
        final_snapshot_identifier=common.final_snapshot_identifier,
        iam_database_authentication_enabled=True,
        enabled_cloudwatch_logs_exports=common.exports,
        tags=common.tags,
    )


class _InsightsKwargs(TypedDict):
    """Performance Insights (on the database's own key) and enhanced monitoring, for the RDS instance
    and each Aurora member alike."""

    performance_insights_enabled: bool
    performance_insights_kms_key_id: pulumi.Input[str]
    performance_insights_retention_period: int
    monitoring_interval: int
    monitoring_role_arn: pulumi.Input[str]


def _insights_kwargs(args: ServiceDatabasesArgs, shared: _Shared, common: _Common) -> _InsightsKwargs:
    settings = args.settings
    return _InsightsKwargs(
        performance_insights_enabled=True,
        performance_insights_kms_key_id=common.key_arn,
        performance_insights_retention_period=settings.performance_insights_retention_days,
        monitoring_interval=settings.monitoring_interval_seconds,
        monitoring_role_arn=shared.monitoring_role_arn,
    )
