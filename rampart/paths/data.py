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
- Vault's dynamic users are revocable when its admin, as the server defines it, may run the revocation
  statements on a user it created (PostgreSQL 16's role rules: :mod:`rampart.paths.postgres_roles`).
  RDS's master user is ``LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE``
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html),
  with ``createrole_self_grant`` as its parameter group sets it (default empty).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from rampart.paths.endpoints import Address
from rampart.paths.model import Check, allows, not_applicable, pending, refuses
from rampart.paths.postgres_roles import Role, lease_lifecycle, self_grant_options
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
VAULT_DB_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
CNPG_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
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


def ca_in_vault_pods(world: World, path: str) -> tuple[bool, str]:
    """Whether ``path`` is a file in Vault's server pods: on a volume of the vault release's
    ``server.volumes`` / ``server.volumeMounts`` whose ConfigMap (with that key) or certificate Secret
    (a cert-manager Certificate's ``secretName``, which carries ``ca.crt``) the plan creates."""
    release = world.release("vault") or {}
    server = (release.get("values") or {}).get("server") or {}
    volumes = {v.get("name"): v for v in server.get("volumes") or []}
    for mount in server.get("volumeMounts") or []:
        directory = str(mount.get("mountPath", "")).rstrip("/")
        if not path.startswith(directory + "/"):
            continue
        key, volume = path[len(directory) + 1 :], volumes.get(mount.get("name")) or {}
        if "configMap" in volume:
            name = volume["configMap"].get("name")
            found = [
                c
                for c in world.of_type(CONFIG_MAP)
                if c["metadata"].get("name") == name and key in (c.get("data") or {})
            ]
            if found:
                return True, f"ConfigMap {name} ({key}) mounted at {directory}"
            return False, f"no ConfigMap {name} with {key} in the plan (mounted at {directory})"
        if "secret" in volume:
            name = volume["secret"].get("secretName")
            if key == "ca.crt" and any(
                (c.get("spec") or {}).get("secretName") == name for c in world.of_type(CERTIFICATE)
            ):
                return True, f"the certificate Secret {name} ({key}) mounted at {directory}"
            return False, f"the Secret {name} mounted at {directory} carries no {key} from the plan"
        return False, f"mount {mount.get('name')} at {directory} has no ConfigMap or Secret volume"
    return False, f"{path} is on no volume mounted in Vault's server pods"


def vault_connection_tls(world: World, owner: str) -> Check:
    if not world.phase2:
        return pending("tls", "Vault's database connections are phase 2")
    for connection in world.of_type(VAULT_DB_CONNECTION):
        if connection.get("name") != owner:
            continue
        url = str((connection.get("postgresql") or {}).get("connectionUrl") or "")
        query = parse_qs(urlparse(url.replace("{{username}}:{{password}}@", "")).query)
        mode = (query.get("sslmode") or ["prefer"])[0]
        if mode not in ("verify-full", "verify-ca"):
            return refuses(
                "tls", f"sslmode={mode}: Vault sends the admin password without verifying the server"
            )
        # libpq verifies against sslrootcert, default ~/.postgresql/root.crt, which Vault's image lacks.
        root = (query.get("sslrootcert") or ["~/.postgresql/root.crt"])[0]
        present, where = ca_in_vault_pods(world, root)
        if not present:
            return refuses("tls", f"sslmode={mode}, but sslrootcert {root}: {where}")
        return allows("tls", f"sslmode={mode}: Vault verifies the server against {where}")
    return refuses("tls", f"no Vault database connection for {owner}")


def _admin_role(world: World, owner: str, admin: str) -> Role | None:
    """Vault's admin on the owner's server, with the attributes and createrole_self_grant it has there."""
    for cluster in world.of_type(CNPG_CLUSTER):
        if cluster["metadata"].get("namespace") != owner:
            continue
        initdb = ((cluster.get("spec") or {}).get("bootstrap") or {}).get("initdb") or {}
        sql = [" ".join(str(line).split()) for line in initdb.get("postInitApplicationSQL") or []]
        quoted = f'ALTER ROLE "{admin}"'
        grant = next(
            (
                line.split("=", 1)[1].strip(" ';")
                for line in sql
                if line.startswith(f"{quoted} SET createrole_self_grant")
            ),
            "",
        )
        return Role(admin, createrole=f"{quoted} CREATEROLE;" in sql, self_grant=self_grant_options(grant))
    for type_, group_key, groups_type in (
        (RDS_INSTANCE, "parameterGroupName", PARAMETER_GROUP),
        (RDS_CLUSTER, "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP),
    ):
        groups = _by_name(world, groups_type)
        for resource in world.plan.of_type(type_):
            inputs = resource["inputs"]
            if (inputs.get("tags") or {}).get(SERVICE_TAG) != owner:
                continue
            parameters = (groups.get(str(inputs.get(group_key, ""))) or {}).get("parameters") or []
            grant = next(
                (str(p.get("value")) for p in parameters if p.get("name") == "createrole_self_grant"), ""
            )
            return Role(admin, createrole=True, self_grant=self_grant_options(grant))
    return None


def vault_revocation(world: World, owner: str) -> Check:
    """Whether Vault can end the users it creates in the owner's database before their lease runs out."""
    if not world.phase2:
        return pending("credentials", "Vault's database roles are phase 2")
    connection = next((c for c in world.of_type(VAULT_DB_CONNECTION) if c.get("name") == owner), None)
    role = next((r for r in world.of_type(VAULT_DB_ROLE) if r.get("dbName") == owner), None)
    if connection is None or role is None:
        return refuses("credentials", f"no Vault database connection and role for {owner}")
    admin_name = str((connection.get("postgresql") or {}).get("username") or "")
    admin = _admin_role(world, owner, admin_name)
    if admin is None:
        return refuses("credentials", f"no database server of {owner} in the plan")
    outcome = lease_lifecycle(
        admin, list(role.get("creationStatements") or []), list(role.get("revocationStatements") or [])
    )
    if not outcome.revoked:
        return refuses("credentials", f"{admin_name} cannot revoke a user of {owner}: {outcome.error}")
    return allows("credentials", f"{admin_name} creates and fully revokes users (sessions, objects, role)")


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
