"""Where each service's database and the broker live, as the paths reach them, and whether each
server requires TLS.

- CloudNativePG: clients use the ``<cluster>-rw`` Service; pg_hba ``hostssl`` lines with a final
  ``hostnossl ... reject`` refuse plaintext (https://cloudnative-pg.io/documentation/current/postgresql_conf/#the-pg_hba-section).
- RDS: ``rds.force_ssl = 1`` in the instance's parameter group refuses plaintext
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html).
- Amazon MQ for RabbitMQ accepts AMQP only over TLS on 5671 and its management API over HTTPS 443
  (https://docs.aws.amazon.com/amazon-mq/latest/developer-guide/rabbitmq-basic-elements.html).
- The RabbitMQ cluster operator's TLS: ``spec.tls.secretName`` and ``disableNonTLSListeners``.
- Vault's database connection verifies the server only with ``sslmode=verify-full``/``verify-ca``
  (https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from rampart.paths.endpoints import Address
from rampart.paths.model import Check, allows, not_applicable, pending, refuses
from rampart.paths.workloads import Workload
from rampart.paths.world import World

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
SUBNET = "aws:ec2/subnet:Subnet"
MQ_BROKER = "aws:mq/broker:Broker"
SERVICE_ENTRY = "kubernetes:networking.istio.io/v1:ServiceEntry"
VAULT_DB_CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
SERVICE_TAG = "rampart.dev/service"
POSTGRES_PORT = 5432
AMQPS_PORT = 5671


@dataclass(frozen=True)
class Server:
    """A database or the broker, as a client reaches it: in the cluster (a workload) or outside it
    (an address with security groups)."""

    name: str
    host: str
    port: int
    workload: Workload | None = None
    address: Address | None = None
    groups: frozenset[str] = frozenset()
    management_port: int | None = None


def _subnet_address(world: World, subnet_ids: list[str]) -> Address:
    cidrs = {r["id"]: r["inputs"].get("cidrBlock") for r in world.plan.of_type(SUBNET)}
    for subnet in subnet_ids:
        cidr = cidrs.get(subnet)
        if cidr:
            network = ipaddress.ip_network(cidr, strict=False)
            return Address(str(network.network_address + 10))
    vpc = world.config.aws.vpc_cidr if world.config.aws else "10.0.0.0/16"
    return Address(str(ipaddress.ip_network(vpc, strict=False).network_address + 10))


def database(world: World, owner: str) -> Server | None:
    """The owner's database: its CloudNativePG primary, or its RDS instance / Aurora cluster."""
    for workload in world.workloads.values():
        if workload.role == "database" and workload.namespace == owner:
            return Server(f"{owner} database", workload.host or "", POSTGRES_PORT, workload=workload)
    for type_ in (RDS_INSTANCE, RDS_CLUSTER):
        for resource in world.plan.of_type(type_):
            inputs, outputs = resource["inputs"], resource.get("outputs") or {}
            if (inputs.get("tags") or {}).get(SERVICE_TAG) != owner:
                continue
            groups: dict[str, dict[str, Any]] = {
                r["id"]: r["inputs"] for r in world.plan.of_type(SUBNET_GROUP)
            }
            first: dict[str, Any] = next(iter(groups.values()), {})
            group = groups.get(str(inputs.get("dbSubnetGroupName", "")), first)
            subnet_ids = list(group.get("subnetIds") or [])
            return Server(
                f"{owner} database",
                str(outputs.get("address") or outputs.get("endpoint") or f"{owner}.rds"),
                int(inputs.get("port") or POSTGRES_PORT),
                address=_subnet_address(world, subnet_ids),
                groups=frozenset(inputs.get("vpcSecurityGroupIds") or []),
            )
    return None


def broker(world: World) -> Server | None:
    for workload in world.workloads.values():
        if workload.role == "broker":
            return Server(
                "broker",
                workload.host or "",
                workload.ports.get("amqps", workload.ports.get("amqp", AMQPS_PORT)),
                workload=workload,
                management_port=workload.ports.get("management-tls", workload.ports.get("management")),
            )
    for resource in world.plan.of_type(MQ_BROKER):
        inputs = resource["inputs"]
        entries = [
            e
            for e in world.of_type(SERVICE_ENTRY)
            if any(int(p.get("number", 0)) == AMQPS_PORT for p in (e.get("spec") or {}).get("ports") or [])
            and any(h.endswith(".amazonaws.com") for h in (e.get("spec") or {}).get("hosts") or [])
        ]
        host = (entries[0]["spec"]["hosts"][0]) if entries else str(inputs.get("brokerName"))
        return Server(
            "broker",
            host,
            AMQPS_PORT,
            address=_subnet_address(world, list(inputs.get("subnetIds") or [])),
            groups=frozenset(inputs.get("securityGroups") or []),
            management_port=443,
        )
    return None


def _cnpg_tls(world: World, owner: str) -> Check | None:
    for cluster in world.of_type("kubernetes:postgresql.cnpg.io/v1:Cluster"):
        if cluster["metadata"].get("namespace") != owner:
            continue
        name, spec = cluster["metadata"]["name"], cluster.get("spec") or {}
        hba = [" ".join(line.split()) for line in (spec.get("postgresql") or {}).get("pg_hba") or []]
        plain = [line for line in hba if line.startswith("host ") and not line.endswith("reject")]
        if plain or not any(line.startswith("hostnossl") and line.endswith("reject") for line in hba):
            return refuses("tls", f"pg_hba of {name} does not refuse plaintext connections")
        if not (spec.get("certificates") or {}).get("serverTLSSecret"):
            return refuses("tls", f"{name} uses the operator's self-signed server certificate")
        return allows("tls", "hostssl only (hostnossl rejected), server certificate from the platform CA")
    return None


def _forces_ssl(parameters: list[dict[str, Any]]) -> bool:
    return any(p.get("name") == "rds.force_ssl" and str(p.get("value")) == "1" for p in parameters)


def _by_name(world: World, type_: str) -> dict[str, dict[str, Any]]:
    found = {r["id"]: r["inputs"] for r in world.plan.of_type(type_)}
    return found | {r["inputs"].get("name") or r["id"]: r["inputs"] for r in world.plan.of_type(type_)}


def _rds_tls(world: World, owner: str) -> Check | None:
    for type_, group_key, groups_type, name_key in (
        (RDS_INSTANCE, "parameterGroupName", PARAMETER_GROUP, "identifier"),
        (RDS_CLUSTER, "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP, "clusterIdentifier"),
    ):
        groups = _by_name(world, groups_type)
        for resource in world.plan.of_type(type_):
            inputs = resource["inputs"]
            if (inputs.get("tags") or {}).get(SERVICE_TAG) != owner:
                continue
            if _forces_ssl((groups.get(str(inputs.get(group_key, ""))) or {}).get("parameters") or []):
                return allows("tls", "rds.force_ssl = 1")
            return refuses(
                "tls", f"the parameter group of {inputs.get(name_key)} does not set rds.force_ssl = 1"
            )
    return None


def database_tls(world: World, owner: str) -> Check:
    """Whether the owner's database server refuses plaintext."""
    return _cnpg_tls(world, owner) or _rds_tls(world, owner) or not_applicable("tls", "no server found")


def broker_tls(world: World) -> Check:
    for cluster in world.of_type("kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster"):
        tls = (cluster.get("spec") or {}).get("tls") or {}
        if not tls.get("secretName"):
            return refuses("tls", "the RabbitmqCluster has no TLS secret")
        if not tls.get("disableNonTLSListeners"):
            return refuses("tls", "the RabbitmqCluster keeps its plaintext listeners")
        return allows("tls", "TLS listeners only (disableNonTLSListeners)")
    if world.plan.of_type(MQ_BROKER):
        return allows("tls", "Amazon MQ for RabbitMQ accepts AMQPS only")
    return not_applicable("tls", "no broker")


def vault_connection_tls(world: World, owner: str) -> Check:
    if not world.phase2:
        return pending("tls", "Vault's database connections are phase 2")
    for connection in world.of_type(VAULT_DB_CONNECTION):
        if connection.get("name") != owner:
            continue
        url = str((connection.get("postgresql") or {}).get("connectionUrl") or "")
        mode = (
            parse_qs(urlparse(url.replace("{{username}}:{{password}}@", "")).query).get("sslmode")
            or ["prefer"]
        )[0]
        if mode in ("verify-full", "verify-ca"):
            return allows("tls", f"sslmode={mode}: Vault verifies the server")
        return refuses("tls", f"sslmode={mode}: Vault sends the admin password without verifying the server")
    return refuses("tls", f"no Vault database connection for {owner}")


def imds(world: World) -> Check:
    """IMDSv2 with a hop limit of 1: the token's response cannot reach a pod's network namespace
    (one hop further than the node).
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-existing-instances.html,
    https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html
    (restrict access to the instance metadata)."""
    if not world.aws:
        return not_applicable("imds", "no cloud metadata service on the kubernetes target")
    sources: list[tuple[str, dict[str, Any]]] = [
        (f"launch template {r['urn'].rsplit('::', 1)[1]}", r["inputs"].get("metadataOptions") or {})
        for r in world.plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    ] + [
        (
            f"EC2NodeClass {r['inputs']['metadata']['name']}",
            (r["inputs"].get("spec") or {}).get("metadataOptions") or {},
        )
        for r in world.plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    ]
    if not sources:
        return allows("imds", "no launch template or node class pins IMDS options: defaults allow IMDSv1")
    for name, options in sources:
        if options.get("httpEndpoint") == "disabled":
            continue
        if options.get("httpTokens") != "required":
            return allows("imds", f"{name} allows IMDSv1 (httpTokens {options.get('httpTokens')})")
        if int(options.get("httpPutResponseHopLimit") or 1) > 1:
            return allows(
                "imds", f"{name} lets IMDS responses travel {options.get('httpPutResponseHopLimit')} hops"
            )
    return refuses("imds", "IMDSv2 only with hop limit 1 on every node: pods get no token")
