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

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import charts, labels, netpol, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.mesh.istio import MeshHandle
from components.targets.aws import iam, kms
from components.targets.aws.handles import PodIdentity
from components.targets.aws.karpenter import POD_IDENTITY_AGENT_CIDRS
from components.targets.aws.pod_security import security_group_policy

CHART_REPOSITORY = "https://helm.releases.hashicorp.com"
VAULT_CHART = charts.Chart(CHART_REPOSITORY, "vault", "0.34.1")
OPERATOR_CHART = charts.Chart(CHART_REPOSITORY, "vault-secrets-operator", "1.4.1")

NAMESPACE = "vault"
# The release name is the chart's fullname: Services `vault` and `vault-internal` (headless), pods
# `vault-<n>`, service account `vault`.
RELEASE_NAME = "vault"
SERVICE_ACCOUNT = "vault"
HEADLESS_SERVICE = f"{RELEASE_NAME}-internal"
OPERATOR_NAMESPACE = "vault-secrets-operator-system"
OPERATOR_RELEASE = "vault-secrets-operator"
VSO_API = "secrets.hashicorp.com/v1beta1"
# VaultAuths that name no connection use the VaultConnection `default` in the operator's namespace.
CONNECTION_NAME = "default"

API_PORT = 8200
CLUSTER_PORT = 8201
ADDRESS = f"https://{RELEASE_NAME}.{NAMESPACE}.svc:{API_PORT}"
SERVER_CERTIFICATE = "vault-tls"
# A Certificate's Secret carries its issuer's CA as `ca.crt`: a second Certificate from the same issuer
# in the operator's namespace puts the CA where the VaultConnection can read it (caCertSecretRef names
# a Secret in the connection's own namespace holding `ca.crt`). Its key pair is unused: it is the CA
# copy we want, and nothing else trusts it for anything but the one unserved name it carries.
CLIENT_CA_CERTIFICATE = "vault-client-ca"

# Paths inside the server pod: the chart's mount points for data and audit storage, ours for TLS.
TLS_DIR = f"/vault/userconfig/{SERVER_CERTIFICATE}"
CA_FILE = f"{TLS_DIR}/ca.crt"
DATA_PATH = "/vault/data"
AUDIT_PATH = "/vault/audit"
# The server command rewrites these words in the config with sed (chart `vault.args`): none may appear.
CHART_PLACEHOLDERS = ("HOST_IP", "POD_IP", "HOSTNAME", "API_ADDR", "TRANSIT_ADDR", "RAFT_ADDR")

# The labels the charts select their pods by.
SERVER_PODS = {labels.NAME: "vault", "app.kubernetes.io/instance": RELEASE_NAME, "component": "server"}
OPERATOR_PODS = {
    labels.NAME: "vault-secrets-operator",
    "app.kubernetes.io/instance": OPERATOR_RELEASE,
    "control-plane": "controller-manager",
}

# The platform's uid floor. The vault image needs no particular uid with SKIP_CHOWN/SKIP_SETCAP (the
# chart sets both): it writes only to its volumes, which fsGroup makes group-writable.
VAULT_UID = 10001
# The operator's images (distroless) run as 65532.
OPERATOR_UID = 65532
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
HTTPS_PORT = 443
# The Pod Identity agent on every node hands out the role's credentials over plain HTTP.
POD_IDENTITY_AGENT_PORT = 80

Resources = Mapping[str, Mapping[str, str]]
SERVER_RESOURCES: Resources = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
OPERATOR_RESOURCES: Resources = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
# The metrics proxy next to the operator, and the chart's hook Jobs (CRD upgrade, pre-delete cleanup).
RBAC_PROXY_RESOURCES: Resources = {
    "requests": {"cpu": "5m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}
HOOK_RESOURCES: Resources = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}
# A rolling update surges 25% (Kubernetes' default), rounded up.
SURGE_FRACTION = 0.25
# Health that does not kill a sealed or uninitialised server (it waits for an operator to unseal it).
LIVENESS_PATH = "/v1/sys/health?standbyok=true&sealedcode=204&uninitcode=204"


# What auto-unseal needs from the AWS target.
VaultAws = PodIdentity


@dataclass(frozen=True)
class VaultServerArgs:
    environment: str
    # 1: standalone raft (local, dev); 3 or more: HA raft.
    ha_replicas: int
    provider: k8s.Provider
    # Must name a private CA issuer: ACME cannot sign in-cluster names, and its Secrets carry no ca.crt.
    certificates: CertificatesHandle
    # Vault and the operator stay out of the mesh (see the module docstring); with a mesh installed
    # their namespaces and pods opt out explicitly.
    mesh: MeshHandle | None
    # Only on the aws target: KMS auto-unseal through Pod Identity.
    aws: VaultAws | None
    # None: the cluster's default StorageClass.
    storage_class: str | None
    depends_on: Sequence[pulumi.Resource] = ()
    # Size of each server's raft volume, and of its audit log volume.
    storage_gb: int = 10
    # Ports the secrets engines connect to (Postgres 5432, RabbitMQ management 15671, ...), on the
    # private addresses the data layer's servers have; their own ingress policies decide who gets in.
    backend_ports: Sequence[int] = ()
    # aws: the security groups Vault's pods carry (security groups for pods), so the databases can
    # admit Vault by group. The pods start only once the policy that gives them the groups exists.
    pod_security_groups: Sequence[pulumi.Input[str]] = ()


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


@dataclass(frozen=True)
class AwsKmsSeal:
    region: str
    kms_key_id: str


# -- the server configuration ------------------------------------------------------------------------

HclValue = str | bool


def _hcl_value(value: HclValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # HCL's quoted strings escape like JSON's.
    return json.dumps(value)


def _hcl_block(
    header: str, attributes: Mapping[str, HclValue], blocks: Sequence[list[str]] = ()
) -> list[str]:
    lines = [f"{header} {{"]
    lines += [f"  {key} = {_hcl_value(value)}" for key, value in attributes.items()]
    for block in blocks:
        lines += [f"  {line}" for line in block]
    return [*lines, "}"]


def peer_hosts(replicas: int) -> list[str]:
    """Each server pod's stable name through the headless Service."""
    return [f"{RELEASE_NAME}-{index}.{HEADLESS_SERVICE}" for index in range(replicas)]


def server_hcl(replicas: int, seal: AwsKmsSeal | None = None) -> str:
    """Vault's server configuration: a TLS-only listener, raft storage (joining every peer over
    verified TLS when there are peers), Kubernetes service registration and the optional KMS seal."""
    listener = _hcl_block(
        'listener "tcp"',
        {
            "address": f"[::]:{API_PORT}",
            "cluster_address": f"[::]:{CLUSTER_PORT}",
            "tls_cert_file": f"{TLS_DIR}/tls.crt",
            "tls_key_file": f"{TLS_DIR}/tls.key",
            "tls_client_ca_file": CA_FILE,
            "tls_min_version": "tls12",
        },
    )
    joins = [
        _hcl_block(
            "retry_join",
            {
                "leader_api_addr": f"https://{host}:{API_PORT}",
                "leader_tls_servername": host,
                "leader_ca_cert_file": CA_FILE,
            },
        )
        for host in (peer_hosts(replicas) if replicas > 1 else [])
    ]
    stanzas = [
        listener,
        _hcl_block('storage "raft"', {"path": DATA_PATH}, joins),
        # Labels pods active/standby/sealed: the chart's vault-active and vault-standby Services use them.
        _hcl_block('service_registration "kubernetes"', {}),
    ]
    if seal is not None:
        stanzas.append(_hcl_block('seal "awskms"', {"region": seal.region, "kms_key_id": seal.kms_key_id}))
    # No UI. No mlock: HashiCorp advises against it with raft storage (BoltDB memory-maps its file),
    # and it needs IPC_LOCK, which restricted pods drop.
    lines = ["ui = false", "disable_mlock = true"]
    for stanza in stanzas:
        lines += ["", *stanza]
    return "\n".join(lines) + "\n"


def server_dns_names(replicas: int) -> list[str]:
    service = f"{RELEASE_NAME}.{NAMESPACE}"
    return [
        RELEASE_NAME,
        service,
        f"{service}.svc",
        f"{service}.svc.cluster.local",
        f"*.{HEADLESS_SERVICE}",
        *peer_hosts(replicas),
    ]


def unseal_policy(key_arn: str) -> str:
    """What auto-unseal needs, on the one key and nothing else."""
    return iam.document(
        [iam.allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], [key_arn], Sid="VaultAutoUnseal")]
    )


# -- chart values ------------------------------------------------------------------------------------


def is_ha(replicas: int) -> bool:
    return replicas > 1


def _check_replicas(replicas: int) -> None:
    if replicas != 1 and replicas < 3:
        raise ValueError(f"ha_replicas {replicas}: raft needs 1 (standalone) or at least 3 (a quorum)")


def _server_security_context() -> dict[str, Any]:
    return {
        "pod": {
            "runAsNonRoot": True,
            "runAsUser": VAULT_UID,
            "runAsGroup": VAULT_UID,
            # Data and audit volumes become group-writable for the server.
            "fsGroup": VAULT_UID,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": RUNTIME_DEFAULT,
        },
        "container": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": RUNTIME_DEFAULT,
        },
    }


def _server_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The certificate, and /tmp: the server command copies its config there before starting."""
    volumes: list[dict[str, Any]] = [
        # 0440: the key is readable by the pod's group (fsGroup) only.
        {"name": SERVER_CERTIFICATE, "secret": {"secretName": SERVER_CERTIFICATE, "defaultMode": 0o440}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": SERVER_CERTIFICATE, "mountPath": TLS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # nosec B108 # noqa: S108 - an emptyDir, not the host's /tmp
    ]
    return volumes, mounts


def _anti_affinity() -> dict[str, Any]:
    # One server per node: a node loss costs the quorum one voter at most.
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": SERVER_PODS}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }


def _zone_spread(required: bool) -> list[dict[str, Any]]:
    # Required on AWS, where every node carries its zone; elsewhere nodes may not be labelled.
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule" if required else "ScheduleAnyway",
            "labelSelector": {"matchLabels": SERVER_PODS},
        }
    ]


def vault_values(
    replicas: int,
    config: pulumi.Input[str],
    *,
    storage_gb: int,
    storage_class: str | None,
    zones_required: bool,
    out_of_mesh: bool,
) -> dict[str, Any]:
    """Values of the vault chart. ``config`` is the server HCL (see :func:`server_hcl`)."""
    _check_replicas(replicas)
    ha = is_ha(replicas)
    storage: dict[str, Any] = {"enabled": True, "size": f"{storage_gb}Gi"}
    if storage_class is not None:
        storage["storageClass"] = storage_class
    volumes, mounts = _server_volumes()
    server: dict[str, Any] = {
        "resources": SERVER_RESOURCES,
        "logFormat": "json",
        # system:auth-delegator: the kubernetes auth method reviews service-account tokens.
        "authDelegator": {"enabled": True},
        "dataStorage": storage | {"mountPath": DATA_PATH},
        # The audit device (configured later) writes here; audit logs outlive pods.
        "auditStorage": storage | {"mountPath": AUDIT_PATH},
        # Volumes stay when the StatefulSet is deleted or scaled down: they hold the raft data.
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        # The CLI in the pod (VAULT_ADDR https://127.0.0.1:8200) verifies the server by CA and name.
        "extraEnvironmentVars": {
            "VAULT_CACERT": CA_FILE,
            "VAULT_TLS_SERVER_NAME": f"{RELEASE_NAME}.{NAMESPACE}.svc",
            # Outbound TLS (the RabbitMQ engine has no CA option) trusts the platform's CA too: the
            # system roots plus the directory holding its ca.crt.
            "SSL_CERT_DIR": f"/etc/ssl/certs:{TLS_DIR}",
        },
        "volumes": volumes,
        "volumeMounts": mounts,
        "statefulSet": {"securityContext": _server_security_context()},
        "livenessProbe": {"enabled": True, "path": LIVENESS_PATH},
        "affinity": _anti_affinity(),
        # Every config the chart could render is ours: the defaults all carry `tls_disable = 1`.
        "standalone": {"enabled": not ha, "config": config},
        "ha": {
            "enabled": ha,
            # The address a server advertises: a name on its certificate, not the pod IP.
            "apiAddr": f"https://$(VAULT_K8S_POD_NAME).{HEADLESS_SERVICE}:{API_PORT}",
            "config": config,
            "raft": {"enabled": ha, "setNodeId": True, "config": config},
        },
    }
    if ha:
        server["ha"] |= {"replicas": replicas, "disruptionBudget": {"enabled": True, "maxUnavailable": 1}}
        server["topologySpreadConstraints"] = _zone_spread(zones_required)
    if out_of_mesh:
        server["extraLabels"] = {"sidecar.istio.io/inject": "false"}
    return {
        "global": {"tlsDisable": False},
        # Secrets reach pods through the operator, not the agent injector's mutating webhook.
        "injector": {"enabled": False},
        "ui": {"enabled": False},
        "server": server,
    }


def operator_replicas(vault_replicas: int) -> int:
    # Leader election: a second replica takes over at once when the leader's node goes.
    return 2 if is_ha(vault_replicas) else 1


def operator_values(replicas: int, *, out_of_mesh: bool) -> dict[str, Any]:
    controller: dict[str, Any] = {
        "replicas": replicas,
        "manager": {"resources": OPERATOR_RESOURCES},
        "kubeRbacProxy": {"resources": RBAC_PROXY_RESOURCES},
        # The chart applies these to every pod it runs, hook Jobs included.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": OPERATOR_UID,
            "runAsGroup": OPERATOR_UID,
            "seccompProfile": RUNTIME_DEFAULT,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if replicas > 1:
        # minAvailable "" unsets the chart's "0": it renders both fields otherwise, which the API rejects.
        controller["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1, "minAvailable": ""}
        controller["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": OPERATOR_PODS},
            }
        ]
    if out_of_mesh:
        controller["extraLabels"] = {"sidecar.istio.io/inject": "false"}
    return {
        "controller": controller,
        "hooks": {"resources": HOOK_RESOURCES},
        # Ours is created below as a resource of its own, with the CA copy it needs.
        "defaultVaultConnection": {"enabled": False},
        # The chart's test Pod sets no security context: `restricted` would reject it.
        "tests": {"enabled": False},
    }


def connection_spec() -> dict[str, Any]:
    return {"address": ADDRESS, "caCertSecretRef": CLIENT_CA_CERTIFICATE, "skipTLSVerify": False}


# -- namespace baselines -----------------------------------------------------------------------------


def _quota(containers: Sequence[tuple[Resources, int]], pods: int) -> dict[str, str]:
    return (
        {"pods": str(pods)}
        | quota.containers_total(containers)
        | {"services.loadbalancers": "0", "services.nodeports": "0"}
    )


def vault_quota(replicas: int, storage_gb: int) -> dict[str, str]:
    """The servers (OnDelete updates: no surge pods) and their data and audit volumes."""
    return _quota([(SERVER_RESOURCES, replicas)], replicas) | {
        "persistentvolumeclaims": str(2 * replicas),
        "requests.storage": f"{2 * replicas * storage_gb}Gi",
    }


def operator_quota(replicas: int) -> dict[str, str]:
    """Controllers plus rolling-update surge, each with its metrics proxy, and one hook Job's pod."""
    controllers = replicas + math.ceil(replicas * SURGE_FRACTION)
    containers = [(OPERATOR_RESOURCES, controllers), (RBAC_PROXY_RESOURCES, controllers), (HOOK_RESOURCES, 1)]
    return _quota(containers, controllers + 1) | {"persistentvolumeclaims": "0"}


def _egress(
    pods: Mapping[str, str], rules: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=netpol.selector(pods), policy_types=["Egress"], egress=rules
    )


def vault_network_policies(
    on_aws: bool, backend_ports: Sequence[int] = ()
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Vault's namespace allows, on top of the baseline's default-deny and DNS."""
    peers = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=netpol.selector(SERVER_PODS))]
    policies = {
        # The operator is Vault's only client inside the cluster.
        "allow-operator": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(SERVER_PODS),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[netpol.pods_in(OPERATOR_NAMESPACE, OPERATOR_PODS)], ports=netpol.tcp(API_PORT)
                )
            ],
        ),
        # Raft joins through the API port, then replicates and forwards requests on the cluster port.
        "allow-raft-peers": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(SERVER_PODS),
            policy_types=["Ingress", "Egress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=peers, ports=netpol.tcp(API_PORT, CLUSTER_PORT)
                )
            ],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=peers, ports=netpol.tcp(API_PORT, CLUSTER_PORT)
                )
            ],
        ),
        # TokenReview for the kubernetes auth method; pod labels for service registration.
        "allow-kubernetes-api": netpol.to_api_server(SERVER_PODS),
    }
    if backend_ports:
        policies["allow-secret-engine-backends"] = _egress(
            SERVER_PODS,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=netpol.cidrs(netpol.PRIVATE_RANGES), ports=netpol.tcp(*sorted(set(backend_ports)))
                )
            ],
        )
    if on_aws:
        # KMS through the VPC's interface endpoint (private DNS), credentials from the Pod Identity agent.
        policies["allow-aws-kms"] = _egress(
            SERVER_PODS,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=netpol.cidrs(netpol.PRIVATE_RANGES), ports=netpol.tcp(HTTPS_PORT)
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=netpol.cidrs(POD_IDENTITY_AGENT_CIDRS), ports=netpol.tcp(POD_IDENTITY_AGENT_PORT)
                ),
            ],
        )
    return policies


def operator_network_policies() -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    return {
        "allow-to-vault": _egress(
            OPERATOR_PODS,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[netpol.pods_in(NAMESPACE, SERVER_PODS)], ports=netpol.tcp(API_PORT)
                )
            ],
        ),
        # Every pod of the chart, hook Jobs included, talks to the API server.
        "allow-kubernetes-api": netpol.to_api_server({}),
    }


def _out_of_mesh_labels(mesh: MeshHandle | None) -> dict[str, str]:
    # Explicit, so that no injection default of the mesh (now or later) pulls these namespaces in.
    return {"istio-injection": "disabled"} if mesh is not None else {}


# -- the component -----------------------------------------------------------------------------------


class VaultServer(pulumi.ComponentResource):
    handle: VaultHandle
    unseal_key: pulumi.Resource | None
    unseal_role: iam.PodIdentityRole | None

    def __init__(self, name: str, args: VaultServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:secrets:VaultServer", name, {}, opts)
        _check_replicas(args.ha_replicas)
        # Vault's certificate names in-cluster hosts (vault.vault.svc, *.vault-internal), which only
        # the platform's internal CA can sign; its Secrets also carry the ca.crt clients trust.
        internal = dataclasses.replace(args.certificates, cluster_issuer=args.certificates.internal_issuer)
        self._args = args
        replicas = args.ha_replicas
        out_of_mesh = args.mesh is not None

        self.unseal_key, self.unseal_role, config = None, None, pulumi.Output.from_input(server_hcl(replicas))
        if args.aws is not None:
            config = self._auto_unseal(name, args.aws)
        identity: list[pulumi.Resource] = [self.unseal_role] if self.unseal_role is not None else []

        vault_ns = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=labels.common(args.environment) | {labels.NAME: RELEASE_NAME},
            quota=vault_quota(replicas, args.storage_gb),
            container_defaults=ContainerDefaults(
                requests=SERVER_RESOURCES["requests"], limits=SERVER_RESOURCES["limits"]
            ),
            policies=vault_network_policies(args.aws is not None, args.backend_ports),
            opts=self._on_cluster(),
            extra_namespace_labels=_out_of_mesh_labels(args.mesh),
        )
        identity += self._pod_security_groups(name, vault_ns.name, vault_ns.resources)
        server_certificate = certificate(
            f"{name}-tls",
            namespace=vault_ns.name,
            dns_names=server_dns_names(replicas),
            secret_name=SERVER_CERTIFICATE,
            handle=internal,
            provider=args.provider,
            parent=self,
        )
        vault = charts.release(
            f"{name}-release",
            VAULT_CHART,
            release_name=RELEASE_NAME,
            namespace=vault_ns.name,
            values=vault_values(
                replicas,
                config,
                storage_gb=args.storage_gb,
                storage_class=args.storage_class,
                zones_required=args.aws is not None,
                out_of_mesh=out_of_mesh,
            ),
            # Pods start with their network, their certificate and (on AWS) their KMS identity in place.
            opts=self._on_cluster([*vault_ns.resources, server_certificate, *identity]),
        )

        operator_ns = namespace_baseline(
            f"{name}-operator",
            namespace=OPERATOR_NAMESPACE,
            labels_=labels.common(args.environment) | {labels.NAME: OPERATOR_RELEASE},
            quota=operator_quota(operator_replicas(replicas)),
            container_defaults=ContainerDefaults(
                requests=OPERATOR_RESOURCES["requests"], limits=OPERATOR_RESOURCES["limits"]
            ),
            policies=operator_network_policies(),
            opts=self._on_cluster(),
            extra_namespace_labels=_out_of_mesh_labels(args.mesh),
        )
        client_ca = certificate(
            f"{name}-client-ca",
            namespace=operator_ns.name,
            dns_names=[f"{CLIENT_CA_CERTIFICATE}.{OPERATOR_NAMESPACE}.svc"],
            secret_name=CLIENT_CA_CERTIFICATE,
            handle=internal,
            provider=args.provider,
            parent=self,
        )
        operator = charts.release(
            f"{name}-operator-release",
            OPERATOR_CHART,
            release_name=OPERATOR_RELEASE,
            namespace=operator_ns.name,
            values=operator_values(operator_replicas(replicas), out_of_mesh=out_of_mesh),
            opts=self._on_cluster(operator_ns.resources),
        )
        # VaultConnection is a CRD the operator's chart installs.
        connection = k8s.apiextensions.CustomResource(
            f"{name}-connection",
            api_version=VSO_API,
            kind="VaultConnection",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CONNECTION_NAME,
                namespace=operator_ns.name,
                labels=labels.common(args.environment) | {labels.NAME: OPERATOR_RELEASE},
            ),
            spec=connection_spec(),
            opts=self._on_cluster([operator, client_ca]),
        )

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
            opts=self._on_cluster(ready),
        )
        return [policy]

    def _on_cluster(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        # Every Kubernetes object names its provider: none may fall back to the ambient one.
        return pulumi.ResourceOptions(
            parent=self, provider=self._args.provider, depends_on=[*self._args.depends_on, *depends_on]
        )

    def _auto_unseal(self, name: str, aws: VaultAws) -> pulumi.Output[str]:
        """A key for Vault's seal alone, usable only by Vault's service account; the HCL naming it."""
        key = kms.customer_key(
            f"{name}-unseal",
            f"Vault auto-unseal ({self._args.environment})",
            account_id=aws.account_id,
            partition=aws.partition,
            region=aws.region,
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
