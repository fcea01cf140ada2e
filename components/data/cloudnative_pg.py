"""Databases of the `kubernetes` target: the CloudNativePG operator, and one PostgreSQL ``Cluster`` per
service that declares a database, in that service's own namespace.

- **Operator**: chart cloudnative-pg 0.29.0 (operator 1.30.0) in ``cnpg-system``, Pod Security Standards
  ``restricted``. The chart installs the CRDs with ``helm.sh/resource-policy: keep``: uninstalling the
  operator never deletes the Clusters (and, through their owner references, the volumes).
- **TLS only**: each Cluster serves a cert-manager certificate from the platform's internal CA for its
  ``-rw``/``-ro``/``-r`` Services; pg_hba admits TLS connections with SCRAM passwords to the service's
  database and rejects everything else (CloudNativePG's own fixed rules, see :func:`pg_hba`, come first).
- **Vault's admin** (``ADMIN_USER``) is a plain role made at bootstrap, not the initdb owner: the operator
  re-applies the owner's password from its Secret whenever a primary starts (instance manager
  ``refreshCredentialsFromSecret``, cached only in memory), which would undo Vault's ``rotate-root`` after
  every restart or failover. The owner CloudNativePG creates is the NOLOGIN role owning the service's
  objects (``<db>_owner``, the role Vault's users act as); Vault's admin owns the database.
- **Out of the mesh**: the instances terminate TLS themselves and replicate with certificate auth; a
  sidecar would add a second TLS layer and, under STRICT mTLS, turn away Vault, which is outside the mesh.
- **Backups**: none on this target. The Barman Cloud plugin (``barmancloud.cnpg.io`` ObjectStore) needs
  an S3-compatible object store, and a local cluster has none; an in-cluster store on the same nodes
  would not survive what a backup is for. Instances > 1 with synchronous replication keep committed data
  through the loss of a pod or a node, not of the cluster; ``databases.backup_retention_days`` applies to
  the aws target only.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import charts, labels, netpol, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.data.names import ADMIN_USER, POSTGRES_PORT, cluster_name, database_name, in_cluster_host
from components.secrets import vault_server as vault_layer
from components.secrets.vault_policies import owner_role

NAMESPACE = "cnpg-system"
# The release name makes the operator `cnpg-cloudnative-pg`; its pods carry OPERATOR_PODS.
RELEASE_NAME = "cnpg"
CHART = charts.Chart("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0")
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
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
# The chart's default operator uid, above the platform's floor of 10000.
OPERATOR_UID = 10001
# A rolling update surges 25% (Kubernetes' default), rounded up.
SURGE_FRACTION = 0.25

Resources = Mapping[str, Mapping[str, str]]
OPERATOR_RESOURCES: Resources = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
# Every pod of a Cluster (instances, bootstrap and join Jobs). Memory request = limit: the kernel never
# reclaims a database's memory for a neighbour's burst.
DATABASE_RESOURCES: Resources = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}

NetworkPolicies = dict[str, k8s.networking.v1.NetworkPolicySpecArgs]


# -- the operator ----------------------------------------------------------------------------------


def operator_replicas(environment: str) -> int:
    # Two in prod: the admission webhook must answer while a node drains (leader election picks one).
    return 2 if environment == "prod" else 1


def operator_values(replicas: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "replicaCount": replicas,
        "crds": {"create": True},
        "resources": OPERATOR_RESOURCES,
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": RUNTIME_DEFAULT},
        "containerSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": OPERATOR_UID,
            "runAsGroup": OPERATOR_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": RUNTIME_DEFAULT,
        },
        # Off: a PodMonitor needs the Prometheus Operator's CRDs, which the monitoring layer installs
        # after this one, and a scrape path into this namespace that nothing opens yet.
        "monitoring": {"podMonitorEnabled": False, "grafanaDashboard": {"create": False}},
    }
    if replicas > 1:
        values["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": OPERATOR_PODS},
            }
        ]
    return values


def operator_quota(replicas: int) -> dict[str, str]:
    """The operator's pods plus a rolling update's surge; the chart runs no Jobs."""
    pods = replicas + math.ceil(replicas * SURGE_FRACTION)
    return (
        {"pods": str(pods)}
        | quota.containers_total([(OPERATOR_RESOURCES, pods)])
        | {
            "persistentvolumeclaims": "0",
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }
    )


def _ingress(
    pods: Mapping[str, str], peers: list[k8s.networking.v1.NetworkPolicyPeerArgs], *ports: int
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=netpol.selector(pods),
        policy_types=["Ingress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=netpol.tcp(*ports))],
    )


def _egress(
    pods: Mapping[str, str], peers: list[k8s.networking.v1.NetworkPolicyPeerArgs], *ports: int
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=netpol.selector(pods),
        policy_types=["Egress"],
        egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=peers, ports=netpol.tcp(*ports))],
    )


def operator_network_policies() -> NetworkPolicies:
    """The operator's namespace allows, on top of the baseline's default-deny and DNS."""
    api_server = [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
        for cidr in netpol.PRIVATE_RANGES
    ]
    instances = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(), pod_selector=netpol.selector(INSTANCE_PODS)
    )
    return {
        "allow-kubernetes-api": netpol.to_api_server(OPERATOR_PODS),
        # The API server calls the admission webhook from the control plane's (private) addresses: it
        # is not a pod, so no selector can name it.
        "allow-webhook-from-api-server": _ingress(OPERATOR_PODS, api_server, WEBHOOK_PORT),
        # Status, backups and upgrades go through each instance manager; Clusters live in any namespace.
        "allow-to-postgres-instances": _egress(OPERATOR_PODS, [instances], STATUS_PORT, POSTGRES_PORT),
    }


@dataclass(frozen=True)
class CloudNativePgArgs:
    environment: str
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class CloudNativePgHandle:
    """What database Clusters need from the operator layer: where it runs, and what to wait for (the
    release: CRDs installed, webhook answering)."""

    namespace: str
    ready: list[pulumi.Resource]


class CloudNativePgOperator(pulumi.ComponentResource):
    handle: CloudNativePgHandle

    def __init__(
        self, name: str, args: CloudNativePgArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:data:CloudNativePgOperator", name, {}, opts)
        replicas = operator_replicas(args.environment)

        def on_cluster(depends_on: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
            # Every Kubernetes object names its provider: none may fall back to the ambient one.
            return pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(depends_on))

        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=labels.common(args.environment) | {labels.NAME: CHART.name},
            quota=operator_quota(replicas),
            container_defaults=ContainerDefaults(
                requests=OPERATOR_RESOURCES["requests"], limits=OPERATOR_RESOURCES["limits"]
            ),
            policies=operator_network_policies(),
            opts=on_cluster(args.depends_on),
            # Explicit, so that no injection default of the mesh pulls the operator in.
            extra_namespace_labels={"istio-injection": "disabled"},
        )
        release = charts.release(
            f"{name}-release",
            CHART,
            release_name=RELEASE_NAME,
            namespace=created.name,
            values=operator_values(replicas),
            opts=on_cluster([*args.depends_on, *created.resources]),
        )
        self.handle = CloudNativePgHandle(namespace=NAMESPACE, ready=[release])
        self.register_outputs({"namespace": created.name})


# -- a service's database --------------------------------------------------------------------------


def database_quota(instances: int, storage_gb: int) -> dict[str, str]:
    """What a service namespace's ResourceQuota must add for its database: the instances, and room
    for one more pod and volume (the bootstrap or join Job while an instance is created or replaced)."""
    pods = instances + 1
    return (
        {"pods": str(pods)}
        | quota.containers_total([(DATABASE_RESOURCES, pods)])
        | {
            "persistentvolumeclaims": str(pods),
            "requests.storage": f"{pods * storage_gb}Gi",
        }
    )


def admin_secret_name(service: str) -> str:
    return f"{cluster_name(service)}-admin"


def server_tls_secret(service: str) -> str:
    return f"{cluster_name(service)}-server-tls"


def server_dns_names(service: str, namespace: str) -> list[str]:
    """The names clients use for the read-write, read-only and any-instance Services."""
    names = []
    for suffix in ("rw", "ro", "r"):
        host = f"{cluster_name(service)}-{suffix}"
        names += [
            host,
            f"{host}.{namespace}",
            f"{host}.{namespace}.svc",
            f"{host}.{namespace}.svc.cluster.local",
        ]
    return names


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
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": own_instances},
            }
        ],
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
    same_cluster = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=netpol.selector(database_pods))]
    owner = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=netpol.selector(labels.selector(service)))]
    return {
        f"{cluster}-allow-from-{service}": _ingress(database_pods, owner, POSTGRES_PORT),
        # Vault's database engine: rotates its admin's password, creates the short-lived users.
        f"{cluster}-allow-from-vault": _ingress(
            database_pods, [netpol.pods_in(vault_layer.NAMESPACE, vault_layer.SERVER_PODS)], POSTGRES_PORT
        ),
        f"{cluster}-allow-from-cnpg-operator": _ingress(
            database_pods, [netpol.pods_in(NAMESPACE, OPERATOR_PODS)], STATUS_PORT, POSTGRES_PORT
        ),
        # Streaming replication, pg_rewind and the join Jobs' base backups, between this Cluster's pods.
        f"{cluster}-allow-replication": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(database_pods),
            policy_types=["Ingress", "Egress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=same_cluster, ports=netpol.tcp(POSTGRES_PORT, STATUS_PORT)
                )
            ],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=same_cluster, ports=netpol.tcp(POSTGRES_PORT, STATUS_PORT)
                )
            ],
        ),
        # The instance manager watches its Cluster, Secrets and leases.
        f"{cluster}-allow-kubernetes-api": netpol.to_api_server(database_pods),
        f"{service}-allow-to-{cluster}": _egress(labels.selector(service), same_cluster, POSTGRES_PORT),
    }


@dataclass(frozen=True)
class PostgresClusterArgs:
    service: str
    # The service's namespace (named after it); the Cluster and its Services live there.
    namespace: str
    instances: int
    storage_gb: int
    # The initial password of ADMIN_USER, also handed to Vault: a secret Output, never a str.
    admin_password: pulumi.Output[str]
    # Only the internal issuer is used: every name on the certificate is in-cluster.
    certificates: CertificatesHandle
    provider: k8s.Provider
    operator: CloudNativePgHandle
    environment: str
    # The service's namespace and its baseline: everything here is created inside it.
    depends_on: Sequence[pulumi.Resource] = ()
    engine_version: str = "16"
    # None: the cluster's default StorageClass.
    storage_class: str | None = None
    # Pulumi's protect and retainOnDelete on the Cluster: deleting it deletes its volumes.
    protect: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.admin_password, pulumi.Output):
            raise TypeError(
                f"{self.service}: admin_password must be a secret pulumi Output (e.g. a RandomPassword's "
                "result), not a plain value"
            )
        if self.instances < 1 or self.storage_gb < 1:
            raise ValueError(f"{self.service}: instances and storage_gb must be at least 1")
        if self.service == CNPG_APP_NAME:
            raise ValueError(
                f"service name {CNPG_APP_NAME!r}: CloudNativePG labels every database pod with it, so the "
                "service's selectors would pick up database pods"
            )
        postgres_image(self.engine_version)


class PostgresCluster(pulumi.ComponentResource):
    # Where Vault and the service connect (the read-write Service), and the database's name.
    host: str
    database: str
    # The Cluster: `pulumi up` waits until it is Ready.
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:data:PostgresCluster", name, {}, opts)
        service, namespace = args.service, args.namespace
        common = labels.common(args.environment)

        def on_cluster(depends_on: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
            # Every Kubernetes object names its provider: none may fall back to the ambient one.
            return pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(depends_on))

        def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=common)

        salt = admin_salt(service, namespace)
        # Secret whether or not the caller marked the password so.
        password: pulumi.Output[str] = pulumi.Output.secret(args.admin_password)
        sql = password.apply(lambda value: admin_role_sql(value, salt))
        admin = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata=meta(admin_secret_name(service)),
            type="Opaque",
            string_data={ADMIN_SQL_KEY: sql},
            opts=on_cluster(args.depends_on),
        )
        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy.removeprefix(f'{cluster_name(service)}-')}",
                metadata=meta(policy),
                spec=spec,
                opts=on_cluster(args.depends_on),
            )
            for policy, spec in database_network_policies(service).items()
        ]
        # In-cluster names: only the platform's own CA can sign them, and its Secret carries the ca.crt
        # replicas (and Vault) verify the server with.
        internal = dataclasses.replace(args.certificates, cluster_issuer=args.certificates.internal_issuer)
        server_certificate = certificate(
            f"{name}-server-tls",
            # The namespace as the admin Secret knows it: the certificate then waits for the namespace.
            namespace=admin.metadata.apply(lambda m: m.namespace or namespace),
            dns_names=server_dns_names(service, namespace),
            secret_name=server_tls_secret(service),
            handle=internal,
            provider=args.provider,
            parent=self,
        )
        cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cluster_name(service), namespace=namespace, labels=common, annotations=WAIT_FOR
            ),
            spec=cluster_spec(
                service,
                namespace,
                instances=args.instances,
                storage_gb=args.storage_gb,
                environment=args.environment,
                engine_version=args.engine_version,
                storage_class=args.storage_class,
            ),
            # Pods start with their network, certificate and bootstrap SQL in place.
            opts=pulumi.ResourceOptions.merge(
                on_cluster([*args.depends_on, *args.operator.ready, admin, server_certificate, *policies]),
                pulumi.ResourceOptions(protect=args.protect, retain_on_delete=args.protect),
            ),
        )
        self.host = in_cluster_host(service, namespace)
        self.database = database_name(service)
        self.ready = [cluster]
        self.register_outputs({"host": self.host, "database": self.database, "port": POSTGRES_PORT})
