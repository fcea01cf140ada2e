"""The secret store: Vault (integrated raft storage, TLS end to end) and the Vault Secrets Operator that
delivers its secrets to workloads as Kubernetes Secrets.

Phase 1 only: this layer installs Vault and the operator. Initialising Vault (`vault operator init`),
the audit device, auth methods, engines, policies and roles are the configuration layer's, which needs
Vault up and unsealed.

- **TLS**: the listener serves a cert-manager certificate (Secret ``vault-tls``) and nothing else:
  ``global.tlsDisable: false`` and no ``tls_disable`` in any server config the chart could render.
  The certificate must come from a private CA issuer: every name on it is in-cluster.
- **Storage**: raft on a PersistentVolume per pod; 1 replica standalone (local, dev), 3 or more HA with
  ``retry_join`` to every peer over TLS (verified against the same CA), one pod per node, spread over
  zones, and a disruption budget that keeps the quorum.
- **Unseal**: on AWS a customer-managed KMS key (rotation on) that only Vault's service account may
  use, through EKS Pod Identity, for ``kms:Encrypt``/``Decrypt``/``DescribeKey``. Elsewhere Vault
  starts sealed and is unsealed by hand with the key shares from ``vault operator init``.
- **Out of the mesh**: Vault terminates its own TLS, raft peers verify each other by name against the
  same CA, and the kubernetes auth method identifies workloads by service-account token, not by mesh
  identity: a sidecar adds nothing Vault uses. It would wrap raft's own TLS in a second layer and,
  under STRICT mTLS, turn away every client outside the mesh. Both namespaces (the operator's too, as
  Vault's only in-cluster client) opt out explicitly when a mesh is installed.
- **Pods**: Pod Security Standards ``restricted`` in both namespaces (non-root uid >= 10000, no
  privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp, read-only root filesystem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import charts, labels
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import Baseline, ContainerDefaults, namespace_baseline
from components.mesh.istio import MeshHandle
from components.secrets import NAMESPACE, OPERATOR_NAMESPACE, SERVICE_ACCOUNT
from components.secrets.vault_chart import (
    ADDRESS,
    CLIENT_CA_CERTIFICATE,
    DATABASE_CA_CONFIGMAP,
    DATABASE_CA_KEY,
    OPERATOR_CHART,
    OPERATOR_RELEASE,
    OPERATOR_RESOURCES,
    RELEASE_NAME,
    SERVER_CERTIFICATE,
    SERVER_RESOURCES,
    VAULT_CHART,
    AwsKmsSeal,
    check_replicas,
    connection_spec,
    operator_network_policies,
    operator_quota,
    operator_replicas,
    operator_values,
    server_dns_names,
    server_hcl,
    unseal_policy,
    vault_network_policies,
    vault_quota,
    vault_values,
)
from components.targets.aws import iam, kms
from components.targets.aws.handles import PodIdentity
from components.targets.aws.pod_security import security_group_policy

VSO_API = "secrets.hashicorp.com/v1beta1"
# VaultAuths that name no connection use the VaultConnection `default` in the operator's namespace.
CONNECTION_NAME = "default"

# What auto-unseal needs from the AWS target.
VaultAws = PodIdentity


@dataclass(frozen=True, kw_only=True)
class VaultServerArgs(InClusterArgs):
    # 1: standalone raft (local, dev); 3 or more: HA raft.
    ha_replicas: int
    # Must name a private CA issuer: ACME cannot sign in-cluster names, and its Secrets carry no ca.crt.
    certificates: CertificatesHandle
    # Vault and the operator stay out of the mesh (see the module docstring); with a mesh installed
    # their namespaces and pods opt out explicitly.
    mesh: MeshHandle | None
    # Only on the aws target: KMS auto-unseal through Pod Identity.
    aws: VaultAws | None
    # None: the cluster's default StorageClass.
    storage_class: str | None
    # Size of each server's raft volume, and of its audit log volume.
    storage_gb: int = 10
    # Ports the secrets engines connect to (Postgres 5432, RabbitMQ management 15671, ...), on the
    # private addresses the data layer's servers have; their own ingress policies decide who gets in.
    backend_ports: Sequence[int] = ()
    # aws: the security groups Vault's pods carry (security groups for pods), so the databases can
    # admit Vault by group. The pods start only once the policy that gives them the groups exists.
    pod_security_groups: Sequence[pulumi.Input[str]] = ()
    # The stack's one protection rule (LayerContext.protect): keeps the unseal key through a destroy.
    protect: bool = False
    # aws with databases: mount the RDS CA bundle (vault_chart.DATABASE_CA_CONFIGMAP), and its PEM when
    # the stack gives it (databases.ca_bundle_file); Vault's database connections verify against it.
    database_ca: bool = False
    database_ca_pem: str | None = None


@dataclass(frozen=True)
class VaultHandle:
    # Where clients reach Vault (TLS, certificate from the platform's CA).
    address: str
    namespace: str
    # Secret holding the CA as `ca.crt`, in the operator's namespace (`vault-tls` in Vault's own
    # namespace carries the same ca.crt).
    ca_secret: str
    # The VaultConnection the operator uses by default, in the operator's namespace.
    connection_name: str
    operator_namespace: str
    ready: list[pulumi.Resource]


def _out_of_mesh_labels(mesh: MeshHandle | None) -> dict[str, str]:
    # Explicit, so that no injection default of the mesh (now or later) pulls these namespaces in.
    return {"istio-injection": "disabled"} if mesh is not None else {}


# -- the component -----------------------------------------------------------------------------------


class VaultServer(InClusterComponent):
    handle: VaultHandle
    unseal_key: pulumi.Resource | None
    unseal_role: iam.PodIdentityRole | None

    def __init__(self, name: str, args: VaultServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:secrets:VaultServer", name, **args.placement(), opts=opts)
        check_replicas(args.ha_replicas)
        self._args = args
        self.unseal_key, self.unseal_role = None, None
        vault_ns, vault = self._server(name, args)
        operator_ns, operator, connection = self._operator(name, args)

        self.handle = VaultHandle(
            address=ADDRESS,
            namespace=NAMESPACE,
            ca_secret=CLIENT_CA_CERTIFICATE,
            connection_name=CONNECTION_NAME,
            operator_namespace=OPERATOR_NAMESPACE,
            ready=[vault, operator, connection],
        )
        self.register_outputs(
            {"address": ADDRESS, "namespace": vault_ns.name, "operatorNamespace": operator_ns.name}
        )

    def _server(self, name: str, args: VaultServerArgs) -> tuple[Baseline, pulumi.Resource]:
        """Vault's namespace, its certificate and the release; on AWS its KMS seal and identity first."""
        replicas = args.ha_replicas
        config = pulumi.Output.from_input(server_hcl(replicas))
        if args.aws is not None:
            config = self._auto_unseal(name, args.aws)
        identity: list[pulumi.Resource] = [self.unseal_role] if self.unseal_role is not None else []
        vault_ns = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=labels.common(args.environment) | {labels.NAME: RELEASE_NAME},
            quota=vault_quota(replicas, args.storage_gb),
            container_defaults=ContainerDefaults.of(SERVER_RESOURCES),
            policies=vault_network_policies(args.aws is not None, args.backend_ports),
            opts=self.on_cluster(),
            extra_namespace_labels=_out_of_mesh_labels(args.mesh),
        )
        identity += self._pod_security_groups(name, vault_ns.name, vault_ns.resources)
        # Its names are in-cluster hosts (vault.vault.svc, *.vault-internal).
        server_certificate = certificate(
            f"{name}-tls",
            namespace=vault_ns.name,
            dns_names=server_dns_names(replicas),
            secret_name=SERVER_CERTIFICATE,
            handle=args.certificates.internal(),
            provider=args.provider,
            parent=self,
        )
        values = vault_values(
            replicas,
            config,
            storage_gb=args.storage_gb,
            storage_class=args.storage_class,
            zones_required=args.aws is not None,
            out_of_mesh=args.mesh is not None,
            database_ca=args.database_ca,
        )
        if args.database_ca and args.database_ca_pem is not None:
            identity.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-database-ca",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=DATABASE_CA_CONFIGMAP,
                        namespace=vault_ns.name,
                        labels=labels.common(args.environment) | {labels.NAME: RELEASE_NAME},
                    ),
                    data={DATABASE_CA_KEY: args.database_ca_pem},
                    opts=self.on_cluster(vault_ns.resources),
                )
            )
        vault = charts.release(
            f"{name}-release",
            VAULT_CHART,
            release_name=RELEASE_NAME,
            namespace=vault_ns.name,
            values=values,
            # Pods start with their network, their certificate and (on AWS) their KMS identity in place.
            opts=self.on_cluster([*vault_ns.resources, server_certificate, *identity]),
        )
        return vault_ns, vault

    def _operator(
        self, name: str, args: VaultServerArgs
    ) -> tuple[Baseline, pulumi.Resource, pulumi.Resource]:
        """The Secrets Operator's namespace and release, and its default connection to Vault."""
        replicas = operator_replicas(args.ha_replicas)
        common = labels.common(args.environment) | {labels.NAME: OPERATOR_RELEASE}
        operator_ns = namespace_baseline(
            f"{name}-operator",
            namespace=OPERATOR_NAMESPACE,
            labels_=common,
            quota=operator_quota(replicas),
            container_defaults=ContainerDefaults.of(OPERATOR_RESOURCES),
            policies=operator_network_policies(),
            opts=self.on_cluster(),
            extra_namespace_labels=_out_of_mesh_labels(args.mesh),
        )
        client_ca = certificate(
            f"{name}-client-ca",
            namespace=operator_ns.name,
            dns_names=[f"{CLIENT_CA_CERTIFICATE}.{OPERATOR_NAMESPACE}.svc"],
            secret_name=CLIENT_CA_CERTIFICATE,
            handle=args.certificates.internal(),
            provider=args.provider,
            parent=self,
        )
        operator = charts.release(
            f"{name}-operator-release",
            OPERATOR_CHART,
            release_name=OPERATOR_RELEASE,
            namespace=operator_ns.name,
            values=operator_values(replicas, out_of_mesh=args.mesh is not None),
            opts=self.on_cluster(operator_ns.resources),
        )
        # VaultConnection is a CRD the operator's chart installs.
        connection = k8s.apiextensions.CustomResource(
            f"{name}-connection",
            api_version=VSO_API,
            kind="VaultConnection",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CONNECTION_NAME, namespace=operator_ns.name, labels=common
            ),
            spec=connection_spec(),
            opts=self.on_cluster([operator, client_ca]),
        )
        return operator_ns, operator, connection

    def _pod_security_groups(
        self, name: str, namespace: pulumi.Input[str], ready: Sequence[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        if not self._args.pod_security_groups:
            return []
        policy = security_group_policy(
            f"{name}-pod-security-groups",
            workload=RELEASE_NAME,
            namespace=namespace,
            group_ids=list(self._args.pod_security_groups),
            environment=self._args.environment,
            opts=self.on_cluster(ready),
        )
        return [policy]

    def _auto_unseal(self, name: str, aws: VaultAws) -> pulumi.Output[str]:
        """A key for Vault's seal alone, usable only by Vault's service account; the HCL naming it."""
        key = kms.customer_key(
            f"{name}-unseal",
            f"Vault auto-unseal ({self._args.environment})",
            aws,
            protect=self._args.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.unseal_key = key
        self.unseal_role = iam.PodIdentityRole(
            f"{name}-unseal",
            cluster_name=aws.cluster_name,
            cluster_arn=aws.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy_json=key.arn.apply(unseal_policy),
            permissions_boundary=aws.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )
        replicas = self._args.ha_replicas
        return key.key_id.apply(lambda key_id: server_hcl(replicas, AwsKmsSeal(aws.region, key_id)))
