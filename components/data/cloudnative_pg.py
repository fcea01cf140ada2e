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

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import charts, labels
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.data import OPERATOR_NAMESPACE as NAMESPACE
from components.data.names import POSTGRES_PORT, cluster_name, database_name, in_cluster_host
from components.data.postgres import (
    ADMIN_SQL_KEY,
    API_VERSION,
    CHART,
    CNPG_APP_NAME,
    OPERATOR_RESOURCES,
    RELEASE_NAME,
    WAIT_FOR,
    admin_role_sql,
    admin_salt,
    admin_secret_name,
    cluster_spec,
    database_network_policies,
    operator_network_policies,
    operator_quota,
    operator_replicas,
    operator_values,
    postgres_image,
    server_dns_names,
    server_tls_secret,
)

# -- the operator ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CloudNativePgArgs(InClusterArgs):
    """The operator needs nothing but its place in the cluster."""


@dataclass(frozen=True)
class CloudNativePgHandle:
    """What database Clusters need from the operator layer: where it runs, and what to wait for (the
    release: CRDs installed, webhook answering)."""

    namespace: str
    ready: list[pulumi.Resource]


class CloudNativePgOperator(InClusterComponent):
    handle: CloudNativePgHandle

    def __init__(
        self, name: str, args: CloudNativePgArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:data:CloudNativePgOperator", name, **args.placement(), opts=opts)
        replicas = operator_replicas(args.environment)
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=labels.common(args.environment) | {labels.NAME: CHART.name},
            quota=operator_quota(replicas),
            container_defaults=ContainerDefaults.of(OPERATOR_RESOURCES),
            policies=operator_network_policies(),
            opts=self.on_cluster(),
            # Explicit, so that no injection default of the mesh pulls the operator in.
            extra_namespace_labels={"istio-injection": "disabled"},
        )
        release = charts.release(
            f"{name}-release",
            CHART,
            release_name=RELEASE_NAME,
            namespace=created.name,
            values=operator_values(replicas),
            opts=self.on_cluster(created.resources),
        )
        self.handle = CloudNativePgHandle(namespace=NAMESPACE, ready=[release])
        self.register_outputs({"namespace": created.name})


# -- a service's database --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PostgresClusterArgs(InClusterArgs):
    service: str
    # The service's namespace (named after it); the Cluster and its Services live there.
    namespace: str
    instances: int
    storage_gb: int
    # The initial password of ADMIN_USER, also handed to Vault: a secret Output, never a str.
    admin_password: pulumi.Output[str]
    # Only the internal issuer is used: every name on the certificate is in-cluster.
    certificates: CertificatesHandle
    operator: CloudNativePgHandle
    # depends_on: the service's namespace and its baseline, since everything here is created inside it.
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


class PostgresCluster(InClusterComponent):
    # Where Vault and the service connect (the read-write Service), and the database's name.
    host: str
    database: str
    # The Cluster: `pulumi up` waits until it is Ready.
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:data:PostgresCluster", name, **args.placement(), opts=opts)
        service, namespace = args.service, args.namespace
        common = labels.common(args.environment)

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
            opts=self.on_cluster(),
        )
        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy.removeprefix(f'{cluster_name(service)}-')}",
                metadata=meta(policy),
                spec=spec,
                opts=self.on_cluster(),
            )
            for policy, spec in database_network_policies(service).items()
        ]
        # In-cluster names: only the platform's own CA can sign them, and its Secret carries the ca.crt
        # replicas (and Vault) verify the server with.
        internal = args.certificates.internal()
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
            opts=self.on_cluster(
                [*args.operator.ready, admin, server_certificate, *policies], protect=args.protect
            ),
        )
        self.host = in_cluster_host(service, namespace)
        self.database = database_name(service)
        self.ready = [cluster]
        self.register_outputs({"host": self.host, "database": self.database, "port": POSTGRES_PORT})
