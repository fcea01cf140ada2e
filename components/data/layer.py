"""The data layer: a database per service that declares one, and the broker asynchronous work goes
through. CloudNativePG and the in-cluster RabbitMQ on the `kubernetes` target; RDS (or Aurora) and
Amazon MQ on `aws`.

It runs in two steps around the services: what a service's namespace needs from the data layer
(quota for its database, egress to its database and the broker) is known from the config before the
namespace exists; the servers themselves go into (or next to) the namespaces afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import messaging, secrets
from components import paved_road as road
from components.certificates.cert_manager import CertificatesHandle
from components.contract import LayerContext, ServiceNeeds
from components.core import labels, netpol
from components.data import cloudnative_pg as cnpg
from components.data import connection, postgres
from components.data.names import POSTGRES_PORT
from components.data.rds import ServiceDatabases, ServiceDatabasesArgs
from components.mesh.istio import MeshHandle
from components.messaging import rabbitmq
from components.messaging import topology as mt
from components.messaging.amazon_mq import MessagingAws
from components.messaging.broker import BrokerHandle, Messaging, MessagingArgs
from components.paved_road.layer import ServicesHandle
from components.secrets.vault_chart import CA_FILE as VAULT_CA_FILE
from components.secrets.vault_chart import DATABASE_CA_FILE as VAULT_DATABASE_CA_FILE
from components.targets.aws.handles import AwsContext
from rampart.config import PlatformConfig, ServiceSpec


class DataNeeds:
    """What each service's namespace needs from the data layer, known from the config alone (before
    any namespace exists): egress to its database and the broker, quota for an in-cluster database."""

    def __init__(self, config: PlatformConfig) -> None:
        self._config = config
        self._clients = set(mt.clients(config.services))

    def service_needs(self, spec: ServiceSpec) -> ServiceNeeds:
        config = self._config
        on_aws = config.target == "aws"
        vpc_cidr = config.aws.vpc_cidr if config.aws else None
        policies: dict[str, k8s.networking.v1.NetworkPolicySpecArgs] = {}
        quota: dict[str, str] = {}
        if spec.database and on_aws:
            # The database's own security group decides which pods get in; this only lets them try.
            policies["allow-to-own-database"] = database_egress(vpc_cidr)
        elif spec.database:
            # CloudNativePG's instances run in the namespace (their policies come with the cluster).
            quota = postgres.database_quota(config.databases.instances, spec.database.storage_gb)
        if spec.name in self._clients:
            policies["allow-to-broker"] = rabbitmq.broker_egress(on_aws, vpc_cidr)
        return ServiceNeeds(policies=policies, quota=quota)


def database_clients(config: PlatformConfig) -> list[str]:
    """Workloads that connect to databases: each service with one, and Vault (which manages them)."""
    return [s.name for s in config.services if s.database] + [secrets.NAMESPACE]


def security_group_clients(config: PlatformConfig) -> list[str]:
    """Workloads whose pods get a security group of their own on aws, which the servers outside the
    cluster admit: the database clients, the broker's publishers and consumers, and (with a broker)
    its topology operator. Vault, a database client, is the broker's other management client."""
    broker = (
        [*mt.clients(config.services), messaging.TOPOLOGY_OPERATOR_WORKLOAD] if config.uses_queues else []
    )
    return list(dict.fromkeys([*database_clients(config), *broker]))


def vault_backend_ports(config: PlatformConfig, *, in_cluster: bool) -> list[int]:
    """Where Vault's secrets engines connect: Postgres, and in the cluster the broker's management API."""
    return [POSTGRES_PORT] + ([rabbitmq.MANAGEMENT_PORT] if config.uses_queues and in_cluster else [])


def vault_database_ca(config: PlatformConfig, *, on_aws: bool) -> tuple[bool, str | None]:
    """Whether Vault's pods mount the RDS CA bundle (aws with databases), and its PEM when the stack
    gives it (``databases.ca_bundle_file``; the config loader requires it with vault.configure)."""
    mount = on_aws and any(service.database for service in config.services)
    bundle = config.databases.ca_bundle_file
    return mount, Path(bundle).read_text() if mount and bundle is not None else None


def database_egress(vpc_cidr: str | None) -> netpol.Spec:
    return netpol.egress_to(None, netpol.cidrs([vpc_cidr or "10.0.0.0/8"]), POSTGRES_PORT)


@dataclass(frozen=True)
class DataLayerArgs:
    config: PlatformConfig
    # The provider, protection, what to wait for and, on aws, where the servers go (AwsContext) and
    # who may reach them (the target's pod security groups).
    context: LayerContext
    certificates: CertificatesHandle
    mesh: MeshHandle
    # service -> its namespace object: its database and credentials go in it.
    namespaces: Mapping[str, pulumi.Resource]
    # service -> the initial password of its database's Vault admin (secret Outputs).
    admin_passwords: Mapping[str, pulumi.Output[str]]


@dataclass(frozen=True)
class DataHandle:
    """What Vault's configuration needs to manage credentials for the services."""

    database_hosts: dict[str, pulumi.Input[str]]
    # The CA of the database servers' certificates inside Vault's pods; None where the stack gives no
    # RDS CA bundle (databases.ca_bundle_file, which the loader requires before Vault is configured).
    database_server_ca_file: str | None
    broker: BrokerHandle | None
    ready: list[pulumi.Resource]
    # service -> the first password of its database's Vault admin (Vault rotates it on first use).
    admin_passwords: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


class DataLayer(pulumi.ComponentResource):
    handle: DataHandle

    def __init__(self, name: str, args: DataLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:data:DataLayer", name, {}, opts)
        config = args.config
        protect = args.context.protect
        with_database = {s.name: s.database.storage_gb for s in config.services if s.database}
        hosts: dict[str, pulumi.Input[str]] = {}
        ready: list[pulumi.Resource] = []
        ca_file: str | None = None
        if with_database and args.context.aws is not None:
            hosts = self._rds(args, args.context.aws, with_database, protect)
            # Vault verifies RDS against its CA bundle, mounted in its pods (vault_database_ca).
            ca_file = VAULT_DATABASE_CA_FILE if config.databases.ca_bundle_file is not None else None
        elif with_database:
            hosts, ready = self._cloudnative_pg(args, with_database, protect)
            ca_file = VAULT_CA_FILE
        broker = self._broker(args, protect) if config.uses_queues else None
        self._connections(args, hosts, broker)
        self.handle = DataHandle(
            database_hosts=hosts,
            database_server_ca_file=ca_file,
            broker=broker,
            ready=ready + (broker.ready if broker else []),
            admin_passwords=args.admin_passwords,
        )
        self.register_outputs({"databases": sorted(with_database), "broker": broker is not None})

    def _connections(
        self, args: DataLayerArgs, hosts: Mapping[str, pulumi.Input[str]], broker: BrokerHandle | None
    ) -> None:
        """Each client service's ``<svc>-connection`` ConfigMap: where its database and broker are."""
        config = args.config
        grants = mt.topology(config.services).grants if broker is not None else {}
        for spec in config.services:
            parts: list[pulumi.Output[dict[str, str]]] = []
            if spec.name in hosts:
                parts.append(
                    pulumi.Output.from_input(hosts[spec.name]).apply(
                        functools.partial(connection.database_env_at, spec.name)
                    )
                )
            if broker is not None and spec.name in grants:
                parts.append(
                    pulumi.Output.from_input(broker.amqp_endpoints).apply(
                        functools.partial(connection.broker_env_for, sorted(grants[spec.name]))
                    )
                )
            if not parts:
                continue
            k8s.core.v1.ConfigMap(
                f"{spec.name}-connection",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=road.connection_config(spec.name),
                    namespace=spec.name,
                    labels=labels.common(config.environment) | labels.selector(spec.name),
                ),
                data=pulumi.Output.all(*parts).apply(
                    lambda found: {key: value for part in found for key, value in part.items()}
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.context.provider, depends_on=[args.namespaces[spec.name]]
                ),
            )

    def _cloudnative_pg(
        self, args: DataLayerArgs, databases: Mapping[str, int], protect: bool
    ) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
        config = args.config
        operator = cnpg.CloudNativePgOperator(
            "cloudnative-pg",
            cnpg.CloudNativePgArgs(**args.context.in_cluster()),
            opts=pulumi.ResourceOptions(parent=self),
        ).handle
        hosts: dict[str, pulumi.Input[str]] = {}
        ready: list[pulumi.Resource] = []
        for service in sorted(databases):
            cluster = cnpg.PostgresCluster(
                f"{service}-db",
                cnpg.PostgresClusterArgs(
                    service=service,
                    namespace=service,
                    instances=config.databases.instances,
                    storage_gb=databases[service],
                    admin_password=args.admin_passwords[service],
                    certificates=args.certificates,
                    provider=args.context.provider,
                    operator=operator,
                    environment=config.environment,
                    depends_on=[args.namespaces[service]],
                    engine_version=config.databases.engine_version,
                    protect=protect,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            hosts[service] = f"{cluster.host}:{POSTGRES_PORT}"
            ready += cluster.ready
        return hosts, ready

    def _rds(
        self, args: DataLayerArgs, aws: AwsContext, databases: Mapping[str, int], protect: bool
    ) -> dict[str, pulumi.Input[str]]:
        config, identity = args.config, aws.pod_identity
        # The workload's own group (the first): the cluster's group is every pod's.
        own_group = {w: groups[0] for w, groups in args.context.target.pod_security_groups.items()}
        endpoints = ServiceDatabases(
            "databases",
            ServiceDatabasesArgs(
                environment=config.environment,
                settings=config.databases,
                databases=databases,
                network=aws.network,
                client_security_groups={s: own_group[s] for s in databases},
                extra_client_security_groups={"vault": own_group[secrets.NAMESPACE]},
                admin_passwords={s: args.admin_passwords[s] for s in databases},
                account_id=identity.account_id,
                partition=identity.partition,
                region=identity.region,
                log_retention_days=aws.log_retention_days,
                tags=aws.tags,
                protect=protect,
                permissions_boundary=identity.permissions_boundary,
            ),
            opts=pulumi.ResourceOptions.merge(args.context.cloud_opts, pulumi.ResourceOptions(parent=self)),
        ).endpoints
        for service, endpoint in endpoints.items():
            # The mesh lets sidecars out to registered hosts only: register the service's database,
            # visible in its own namespace alone.
            k8s.apiextensions.CustomResource(
                f"{service}-database-entry",
                api_version="networking.istio.io/v1",
                kind="ServiceEntry",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{service}-database",
                    namespace=service,
                    labels=labels.common(config.environment) | labels.selector(service),
                ),
                spec={
                    "hosts": [endpoint.host],
                    "location": "MESH_EXTERNAL",
                    # Postgres negotiates TLS inside its own protocol: plain TCP to the mesh.
                    "ports": [{"number": endpoint.port, "name": "tcp-postgres", "protocol": "TCP"}],
                    "resolution": "DNS",
                    "exportTo": ["."],
                },
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.context.provider,
                    depends_on=[args.namespaces[service], *args.mesh.ready],
                ),
            )
        return {
            service: pulumi.Output.concat(endpoint.host, ":", str(endpoint.port))
            for service, endpoint in endpoints.items()
        }

    def _broker(self, args: DataLayerArgs, protect: bool) -> BrokerHandle:
        config = args.config
        # Amazon MQ refuses , : = in passwords; letters and digits only.
        password = random.RandomPassword(
            "broker-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result
        ctx = args.context
        aws_context = None
        opts = pulumi.ResourceOptions(parent=self)
        if ctx.aws is not None:
            # Each client's own pod group (the first; the cluster's group, which every pod carries,
            # is never admitted): publishers and consumers to AMQPS, Vault's RabbitMQ engine and the
            # topology operator to the management API.
            own_group = {w: groups[0] for w, groups in ctx.target.pod_security_groups.items()}
            operator = messaging.TOPOLOGY_OPERATOR_WORKLOAD
            aws_context = MessagingAws(
                network=ctx.aws.network,
                amqp_clients={s: own_group[s] for s in sorted(mt.clients(config.services))},
                management_clients={
                    "vault": own_group[secrets.NAMESPACE],
                    "topology-operator": own_group[operator],
                },
                account=ctx.aws.pod_identity,
                # The stack's AWS log retention, as for the databases' log groups.
                log_retention_days=ctx.aws.log_retention_days,
                tags=ctx.aws.tags,
                topology_operator_security_groups=tuple(ctx.target.pod_security_groups[operator]),
            )
            opts = pulumi.ResourceOptions.merge(ctx.cloud_opts, opts)
        return Messaging(
            "messaging",
            MessagingArgs(
                settings=config.messaging,
                services=config.services,
                certificates=args.certificates,
                admin_password=password,
                aws=aws_context,
                mesh=args.mesh,
                protect=protect,
                **ctx.in_cluster(*args.certificates.ready),
            ),
            opts=opts,
        ).handle


def build(
    ctx: LayerContext,
    config: PlatformConfig,
    certificates: CertificatesHandle,
    mesh: MeshHandle,
    services: ServicesHandle,
) -> DataHandle:
    """The databases and the broker, into (or next to) the services' namespaces."""
    # The first password of each database's Vault admin: Vault rotates it on first use.
    admin_passwords = {
        s.name: random.RandomPassword(f"{s.name}-vault-admin", length=32, special=False, opts=ctx.opts).result
        for s in config.services
        if s.database
    }
    return DataLayer(
        "data",
        DataLayerArgs(
            config=config,
            context=ctx,
            certificates=certificates,
            mesh=mesh,
            namespaces=services.namespaces,
            admin_passwords=admin_passwords,
        ),
        opts=ctx.opts,
    ).handle
