"""PostgreSQL on CloudNativePG as values: the operator's chart values, quota and allows, and per service
database its Cluster spec, bootstrap SQL, pg_hba rules, quota and allows.
:mod:`components.data.cloudnative_pg` installs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from components.core import charts, dns, labels, netpol, quota, scheduling, security_context
from components.data import OPERATOR_NAMESPACE as NAMESPACE
from components.data.names import ADMIN_USER, POSTGRES_PORT, cluster_name, database_name
from components.secrets import NAMESPACE as VAULT_NAMESPACE
from components.secrets.vault_chart import SERVER_PODS as VAULT_PODS
from components.secrets.vault_policies import owner_role

# The release name makes the operator `cnpg-cloudnative-pg`; its pods carry OPERATOR_PODS.
RELEASE_NAME = "cnpg"
CHART = charts.Chart("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0")
# The operator's image (the chart's image.repository, tagged with its appVersion): the operator also runs it
# as each instance pod's bootstrap-controller init container, in the service's namespace.
OPERATOR_IMAGE = "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0"
API_VERSION = "postgresql.cnpg.io/v1"
OPERATOR_PODS = {labels.NAME: "cloudnative-pg", "app.kubernetes.io/instance": RELEASE_NAME}
# The admission webhook (chart `webhook.port`) and each instance manager's status endpoint (TLS).
WEBHOOK_PORT = 9443
STATUS_PORT = 8000

# Labels CloudNativePG puts on the pods of a Cluster: instances and their bootstrap/join Jobs carry
# CLUSTER_LABEL; instances alone carry cnpg.io/podRole=instance.
CLUSTER_LABEL = "cnpg.io/cluster"
INSTANCE_PODS = {"cnpg.io/podRole": "instance"}
# ...and app.kubernetes.io/name=postgresql: a service of that name would select the database's pods.
CNPG_APP_NAME = "postgresql"

# Pinned PostgreSQL images for operator 1.30 (it supports 14-18), `minimal`: no Barman, no extensions.
# 16+ only: the bootstrap SQL uses PostgreSQL 16's role grant options (see post_init_application_sql).
POSTGRES_IMAGES = {
    "16": "ghcr.io/cloudnative-pg/postgresql:16.15-minimal-trixie",
    "17": "ghcr.io/cloudnative-pg/postgresql:17.11-minimal-trixie",
}
PARAMETERS = {
    "ssl_min_protocol_version": "TLSv1.3",
    "password_encryption": "scram-sha-256",  # nosec B105 # a hashing method, not a credential
}
# PostgreSQL's default SCRAM iteration count (scram_iterations).
SCRAM_ITERATIONS = 4096
# The key of the admin Secret holding the SQL that creates Vault's admin.
ADMIN_SQL_KEY = "create-admin.sql"
SIDECAR_OFF = {"sidecar.istio.io/inject": "false"}
# `pulumi up` waits for the Cluster's Ready condition: Vault's connection check needs the database up.
WAIT_FOR = {"pulumi.com/waitFor": "condition=Ready"}
# The chart's default operator uid, above the platform's floor of 10000.
OPERATOR_UID = 10001

OPERATOR_RESOURCES = quota.resources(requests=("50m", "128Mi"), limits=("500m", "512Mi"))
# Every pod of a Cluster (instances, bootstrap and join Jobs). Memory request = limit: the kernel never
# reclaims a database's memory for a neighbour's burst.
DATABASE_RESOURCES = quota.resources(requests=("250m", "512Mi"), limits=("1", "512Mi"))

NetworkPolicies = dict[str, netpol.Spec]


# -- the operator ----------------------------------------------------------------------------------


def operator_replicas(environment: str) -> int:
    # Two in prod: the admission webhook must answer while a node drains (leader election picks one).
    return 2 if environment == "prod" else 1


def operator_values(replicas: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "replicaCount": replicas,
        "crds": {"create": True},
        "resources": OPERATOR_RESOURCES,
        "podSecurityContext": security_context.restricted_pod(None),
        "containerSecurityContext": security_context.run_as(OPERATOR_UID)
        | security_context.restricted_container(),
        # Off: a PodMonitor needs the Prometheus Operator's CRDs, which the monitoring layer installs
        # after this one, and a scrape path into this namespace that nothing opens yet.
        "monitoring": {"podMonitorEnabled": False, "grafanaDashboard": {"create": False}},
    }
    if replicas > 1:
        values["topologySpreadConstraints"] = [scheduling.spread(OPERATOR_PODS, scheduling.HOST)]
    return values


def operator_quota(replicas: int) -> dict[str, str]:
    """The operator's pods plus a rolling update's surge; the chart runs no Jobs."""
    pods = quota.with_surge(replicas)
    return (
        quota.pods_total(pods, [(OPERATOR_RESOURCES, pods)])
        | {"persistentvolumeclaims": "0"}
        | quota.NOT_EXPOSED
    )


def operator_network_policies() -> NetworkPolicies:
    """The operator's namespace allows, on top of the baseline's default-deny and DNS."""
    instances = netpol.Peer(namespace_selector=netpol.selector(), pod_selector=netpol.selector(INSTANCE_PODS))
    return {
        "allow-kubernetes-api": netpol.to_api_server(OPERATOR_PODS),
        # The API server calls the admission webhook from the control plane's (private) addresses: it
        # is not a pod, so no selector can name it.
        "allow-webhook-from-api-server": netpol.ingress_from(
            OPERATOR_PODS, netpol.cidrs(netpol.PRIVATE_RANGES), WEBHOOK_PORT
        ),
        # Status, backups and upgrades go through each instance manager; Clusters live in any namespace.
        "allow-to-postgres-instances": netpol.egress_to(
            OPERATOR_PODS, [instances], STATUS_PORT, POSTGRES_PORT
        ),
    }


# -- a service's database --------------------------------------------------------------------------


def database_quota(instances: int, storage_gb: int) -> dict[str, str]:
    """What a service namespace's ResourceQuota must add for its database: the instances, and room
    for one more pod and volume (the bootstrap or join Job while an instance is created or replaced)."""
    pods = instances + 1
    return quota.pods_total(pods, [(DATABASE_RESOURCES, pods)]) | quota.volumes(pods, storage_gb)


def admin_secret_name(service: str) -> str:
    return f"{cluster_name(service)}-admin"


def server_tls_secret(service: str) -> str:
    return f"{cluster_name(service)}-server-tls"


def server_dns_names(service: str, namespace: str) -> list[str]:
    """The names clients use for the read-write, read-only and any-instance Services."""
    return [
        name
        for suffix in ("rw", "ro", "r")
        for name in dns.service_names(f"{cluster_name(service)}-{suffix}", namespace)
    ]


def postgres_image(engine_version: str) -> str:
    if engine_version not in POSTGRES_IMAGES:
        raise ValueError(
            f"engine_version {engine_version!r}: no pinned CloudNativePG image (pinned: "
            f"{', '.join(sorted(POSTGRES_IMAGES))})"
        )
    return POSTGRES_IMAGES[engine_version]


def scram_sha256_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, RFC 7677). Handing PostgreSQL the
    verifier keeps the cleartext out of its logs (a failed statement is logged whole); the verifier does
    not let a client log in."""
    if not password or not password.isascii() or not password.isprintable():
        # PostgreSQL runs SASLprep on other passwords first; printable ASCII is left as it is.
        raise ValueError("the admin password must be non-empty printable ASCII")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def admin_salt(service: str, namespace: str) -> bytes:
    # Fixed per database, so an unchanged password gives an unchanged Secret (no diff on every `up`).
    return hashlib.sha256(f"rampart:{namespace}/{cluster_name(service)}:{ADMIN_USER}".encode()).digest()[:16]


def admin_role_sql(password: str, salt: bytes) -> str:
    """Creates Vault's admin with its initial password, once, at bootstrap (postInitSQLRefs)."""
    return f"CREATE ROLE \"{ADMIN_USER}\" WITH LOGIN PASSWORD '{scram_sha256_verifier(password, salt)}';\n"


def post_init_application_sql(database: str) -> list[str]:
    """Run once, as the superuser, in the new database: Vault's admin may create (and drop) the
    service's short-lived users and owns the database; the owner role only owns objects."""
    admin, owner = f'"{ADMIN_USER}"', f'"{owner_role(database)}"'
    return [
        f"ALTER ROLE {admin} CREATEROLE;",
        # PostgreSQL 16+ gives a role's creator only ADMIN on it; Vault's revocation (REASSIGN OWNED,
        # DROP OWNED) and its grants on tables its users made need the created roles' privileges too.
        f"ALTER ROLE {admin} SET createrole_self_grant = 'set, inherit';",
        # The database owner also owns the public schema (pg_database_owner): Vault grants on it.
        f'ALTER DATABASE "{database}" OWNER TO {admin};',
        # CloudNativePG made the initdb owner a login role with a password in its `-app` Secret.
        f"ALTER ROLE {owner} NOLOGIN;",
        # Vault's statements find the owner role already there; granting it needs ADMIN on it.
        f"GRANT {owner} TO {admin} WITH ADMIN OPTION;",
    ]


def pg_hba(database: str) -> list[str]:
    """TLS with a SCRAM password to the service's database; nothing else over TCP.

    CloudNativePG writes its fixed rules first (peer on the local socket for its instance manager,
    ``hostssl ... cert`` for streaming_replica and the pooler), then these, then its default
    ``host all all all scram-sha-256``, which these make unreachable (it would admit plaintext).
    """
    return [
        f"hostssl {database} all all scram-sha-256",
        "hostssl all all all reject",
        "hostnossl all all all reject",
    ]


def _high_availability(service: str, instances: int, environment: str) -> dict[str, Any]:
    if instances == 1:
        return {}
    own_instances = {CLUSTER_LABEL: cluster_name(service)} | INSTANCE_PODS
    return {
        # One instance per node: required in prod, where there are enough nodes; elsewhere preferred.
        "affinity": {
            "enablePodAntiAffinity": True,
            "podAntiAffinityType": "required" if environment == "prod" else "preferred",
            "topologyKey": "kubernetes.io/hostname",
        },
        "topologySpreadConstraints": [scheduling.spread(own_instances)],
        # A new primary is promoted first, then the old one restarts: writes pause for seconds only.
        "primaryUpdateMethod": "switchover",
    }


def _synchronous(instances: int) -> dict[str, Any]:
    """A commit returns once a standby has it: a failover loses no committed transaction. With three
    or more instances a standby is always required; with two, writes go on alone while it is away."""
    durability = "required" if instances >= 3 else "preferred"
    return {"method": "any", "number": 1, "dataDurability": durability}


def cluster_spec(
    service: str,
    namespace: str,
    *,
    instances: int,
    storage_gb: int,
    environment: str,
    engine_version: str = "16",
    storage_class: str | None = None,
) -> dict[str, Any]:
    database = database_name(service)
    storage: dict[str, Any] = {"size": f"{storage_gb}Gi"}
    if storage_class is not None:
        storage["storageClass"] = storage_class
    postgresql: dict[str, Any] = {"parameters": PARAMETERS, "pg_hba": pg_hba(database)}
    if instances > 1:
        postgresql["synchronous"] = _synchronous(instances)
    return {
        "description": f"The {service} service's database",
        "instances": instances,
        "imageName": postgres_image(engine_version),
        "storage": storage,
        "resources": DATABASE_RESOURCES,
        "enableSuperuserAccess": False,
        # debug would log the bootstrap SQL.
        "logLevel": "info",
        "primaryUpdateStrategy": "unsupervised",
        "primaryUpdateMethod": "restart",
        "enablePDB": True,
        "certificates": {
            "serverTLSSecret": server_tls_secret(service),
            "serverCASecret": server_tls_secret(service),
        },
        "postgresql": postgresql,
        "bootstrap": {
            "initdb": {
                "database": database,
                "owner": owner_role(database),
                # Corrupted pages are reported instead of read back silently.
                "dataChecksums": True,
                "postInitSQLRefs": {
                    "secretRefs": [{"name": admin_secret_name(service), "key": ADMIN_SQL_KEY}]
                },
                "postInitApplicationSQL": post_init_application_sql(database),
            }
        },
        # On every pod, Job, Service and volume of the Cluster; never the service's own selector labels.
        "inheritedMetadata": {
            "labels": {
                labels.PART_OF: "rampart",
                labels.ENVIRONMENT: environment,
                **SIDECAR_OFF,
            },
            # The label is what Istio reads today; the annotation what older injectors read.
            "annotations": dict(SIDECAR_OFF),
        },
    } | _high_availability(service, instances, environment)


def database_network_policies(service: str) -> NetworkPolicies:
    """Who reaches a service's database pods, by policy name, in the service's namespace (on top of its
    default-deny and DNS)."""
    cluster = cluster_name(service)
    database_pods = {CLUSTER_LABEL: cluster}
    return {
        f"{cluster}-allow-from-{service}": netpol.ingress_from(
            database_pods, [netpol.pods(labels.selector(service))], POSTGRES_PORT
        ),
        # Vault's database engine: rotates its admin's password, creates the short-lived users.
        f"{cluster}-allow-from-vault": netpol.ingress_from(
            database_pods, [netpol.pods_in(VAULT_NAMESPACE, VAULT_PODS)], POSTGRES_PORT
        ),
        f"{cluster}-allow-from-cnpg-operator": netpol.ingress_from(
            database_pods, [netpol.pods_in(NAMESPACE, OPERATOR_PODS)], STATUS_PORT, POSTGRES_PORT
        ),
        # Streaming replication, pg_rewind and the join Jobs' base backups, between this Cluster's pods.
        f"{cluster}-allow-replication": netpol.between(database_pods, netpol.tcp(POSTGRES_PORT, STATUS_PORT)),
        # The instance manager watches its Cluster, Secrets and leases.
        f"{cluster}-allow-kubernetes-api": netpol.to_api_server(database_pods),
        f"{service}-allow-to-{cluster}": netpol.egress_to(
            labels.selector(service), [netpol.pods(database_pods)], POSTGRES_PORT
        ),
    }
