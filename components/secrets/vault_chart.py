"""Vault and the Vault Secrets Operator as values: the server's configuration (HCL), both charts' values,
their namespaces' quotas and network allows. :mod:`components.secrets.vault_server` installs them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.core import charts, dns, labels, netpol, quota, scheduling, security_context
from components.secrets import NAMESPACE, OPERATOR_NAMESPACE
from components.targets.aws import iam

CHART_REPOSITORY = "https://helm.releases.hashicorp.com"
VAULT_CHART = charts.Chart(CHART_REPOSITORY, "vault", "0.34.1")
OPERATOR_CHART = charts.Chart(CHART_REPOSITORY, "vault-secrets-operator", "1.4.1")

# The release name is the chart's fullname: Services `vault` and `vault-internal` (headless), pods
# `vault-<n>`, service account `vault`.
RELEASE_NAME = "vault"
HEADLESS_SERVICE = f"{RELEASE_NAME}-internal"
OPERATOR_RELEASE = "vault-secrets-operator"

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
# The RDS CA bundle (aws): a ConfigMap in Vault's namespace, mounted so the database engine verifies the
# servers (sslmode=verify-full&sslrootcert=...). Optional in the pod: the pods start before phase 2 puts
# the bundle there, and the kubelet projects it once it exists (no restart: the StatefulSet is OnDelete).
DATABASE_CA_CONFIGMAP = "rds-ca-bundle"
DATABASE_CA_KEY = "ca.pem"
DATABASE_CA_DIR = f"/vault/userconfig/{DATABASE_CA_CONFIGMAP}"
DATABASE_CA_FILE = f"{DATABASE_CA_DIR}/{DATABASE_CA_KEY}"
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
HTTPS_PORT = 443

SERVER_RESOURCES = quota.resources(requests=("250m", "256Mi"), limits=("1", "1Gi"))
OPERATOR_RESOURCES = quota.resources(requests=("50m", "128Mi"), limits=("500m", "256Mi"))
# The metrics proxy next to the operator, and the chart's hook Jobs (CRD upgrade, pre-delete cleanup).
RBAC_PROXY_RESOURCES = quota.resources(requests=("5m", "64Mi"), limits=("500m", "128Mi"))
HOOK_RESOURCES = quota.resources(requests=("10m", "64Mi"), limits=("500m", "128Mi"))
# Health that does not kill a sealed or uninitialised server (it waits for an operator to unseal it).
LIVENESS_PATH = "/v1/sys/health?standbyok=true&sealedcode=204&uninitcode=204"

# The server image, pinned here as the chart 0.34.1 defaults it (server.image), so the TLS reloader
# runs the very same image (its busybox has sh, sha256sum and pkill) and no other image is pulled.
VAULT_IMAGE_REPOSITORY = "hashicorp/vault"
VAULT_IMAGE_TAG = "2.0.4"
# cert-manager renews `vault-tls` in place and the kubelet swaps the mounted files, but Vault reads its
# listener certificate only at start and on SIGHUP ("Vault SIGHUP Behavior": "the certificates
# previously loaded by Vault will remain in use until a SIGHUP is received, or until the Vault process
# is restarted", https://support.hashicorp.com/hc/en-us/articles/5767318985107-Vault-SIGHUP-Behavior).
# A restart is no answer: the chart's update strategy is OnDelete, and a restarted server comes back
# sealed where there is no auto-unseal. So a sidecar in the pod's shared process namespace (the chart's
# `server.shareProcessNamespace`, documented "if Vault must be signaled, e.g. to send a SIGHUP") sends
# SIGHUP to the server when the certificate file changes. Same uid as the server: no capability needed.
TLS_RELOADER = "tls-reloader"
TLS_RELOAD_INTERVAL_SECONDS = 60
TLS_RELOADER_RESOURCES = quota.resources(requests=("5m", "16Mi"), limits=("50m", "32Mi"))


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


# How long Vault keeps a Prometheus sample in memory: twice the monitor's scrape interval.
TELEMETRY_RETENTION = "60s"


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
        # /v1/sys/metrics without a token, answered by each node itself (standbys included) instead
        # of forwarded to the active node with the caller's token: Prometheus scrapes every pod.
        # https://developer.hashicorp.com/vault/docs/configuration/listener/tcp#telemetry-parameters
        [_hcl_block("telemetry", {"unauthenticated_metrics_access": True})],
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
        # The Prometheus sink (prometheus_retention_time > 0 turns it on; it must outlive the 30s
        # scrape interval). disable_hostname keeps gauges unprefixed, so every node reports
        # vault_core_unsealed (1 unsealed, 0 sealed, refreshed on all nodes), which the VaultSealed
        # alert reads. https://developer.hashicorp.com/vault/docs/configuration/telemetry,
        # https://developer.hashicorp.com/vault/docs/internals/telemetry/metrics/core-system
        _hcl_block(
            "telemetry",
            {"prometheus_retention_time": TELEMETRY_RETENTION, "disable_hostname": True},
        ),
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
    return [*dns.service_names(RELEASE_NAME, NAMESPACE), f"*.{HEADLESS_SERVICE}", *peer_hosts(replicas)]


def unseal_policy(key_arn: str) -> str:
    """What auto-unseal needs, on the one key and nothing else."""
    return iam.document(
        [iam.allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], [key_arn], Sid="VaultAutoUnseal")]
    )


# -- chart values ------------------------------------------------------------------------------------


def is_ha(replicas: int) -> bool:
    return replicas > 1


def check_replicas(replicas: int) -> None:
    if replicas != 1 and replicas < 3:
        raise ValueError(f"ha_replicas {replicas}: raft needs 1 (standalone) or at least 3 (a quorum)")


def _server_volumes(database_ca: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The certificate, and /tmp: the server command copies its config there before starting; with
    ``database_ca`` the RDS CA bundle (see DATABASE_CA_CONFIGMAP)."""
    volumes: list[dict[str, Any]] = [
        # 0440: the key is readable by the pod's group (fsGroup) only.
        {"name": SERVER_CERTIFICATE, "secret": {"secretName": SERVER_CERTIFICATE, "defaultMode": 0o440}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": SERVER_CERTIFICATE, "mountPath": TLS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # nosec B108 # noqa: S108 - an emptyDir, not the host's /tmp
    ]
    if database_ca:
        volumes.append(
            {"name": DATABASE_CA_CONFIGMAP, "configMap": {"name": DATABASE_CA_CONFIGMAP, "optional": True}}
        )
        mounts.append({"name": DATABASE_CA_CONFIGMAP, "mountPath": DATABASE_CA_DIR, "readOnly": True})
    return volumes, mounts


def tls_reload_script(
    watched: str = f"{TLS_DIR}/tls.crt", interval: int = TLS_RELOAD_INTERVAL_SECONDS
) -> str:
    """Polls the mounted certificate; on a change sends SIGHUP to the `vault` process, retrying on the
    next round until a signal was delivered (e.g. while the server is still starting)."""
    return (
        f'last="$(sha256sum {watched})"\n'
        "while true; do\n"
        f"  sleep {interval}\n"
        f'  now="$(sha256sum {watched})"\n'
        '  if [ "$now" != "$last" ] && pkill -HUP -x vault; then\n'
        '    echo "tls-reloader: $(date -u +%FT%TZ) certificate changed, sent SIGHUP to vault"\n'
        '    last="$now"\n'
        "  fi\n"
        "done\n"
    )


def tls_reloader() -> dict[str, Any]:
    """The sidecar that reloads Vault's listener certificate (see TLS_RELOADER)."""
    return {
        "name": TLS_RELOADER,
        "image": f"{VAULT_IMAGE_REPOSITORY}:{VAULT_IMAGE_TAG}",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", tls_reload_script()],
        "resources": TLS_RELOADER_RESOURCES,
        "securityContext": security_context.run_as(VAULT_UID) | security_context.restricted_container(),
        "volumeMounts": [{"name": SERVER_CERTIFICATE, "mountPath": TLS_DIR, "readOnly": True}],
        # Alive and ready while it can read what it watches.
        "livenessProbe": {"exec": {"command": ["test", "-r", f"{TLS_DIR}/tls.crt"]}, "periodSeconds": 60},
        "readinessProbe": {"exec": {"command": ["test", "-r", f"{TLS_DIR}/tls.crt"]}, "periodSeconds": 60},
    }


def vault_values(
    replicas: int,
    config: pulumi.Input[str],
    *,
    storage_gb: int,
    storage_class: str | None,
    zones_required: bool,
    out_of_mesh: bool,
    database_ca: bool = False,
) -> dict[str, Any]:
    """Values of the vault chart. ``config`` is the server HCL (see :func:`server_hcl`); ``database_ca``
    mounts the RDS CA bundle (aws)."""
    check_replicas(replicas)
    ha = is_ha(replicas)
    storage: dict[str, Any] = {"enabled": True, "size": f"{storage_gb}Gi"}
    if storage_class is not None:
        storage["storageClass"] = storage_class
    volumes, mounts = _server_volumes(database_ca)
    server: dict[str, Any] = {
        "image": {"repository": VAULT_IMAGE_REPOSITORY, "tag": VAULT_IMAGE_TAG},
        "resources": SERVER_RESOURCES,
        "logFormat": "json",
        # system:auth-delegator: the kubernetes auth method reviews service-account tokens.
        "authDelegator": {"enabled": True},
        "dataStorage": storage | {"mountPath": DATA_PATH},
        # No audit device writes here any more (Vault audits to stdout, shipped to Loki: see
        # vault_config). The volume stays: a StatefulSet's volumeClaimTemplates cannot change in
        # place, so removing it would fail every upgrade of a running Vault.
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
        # Renewed certificates are reloaded without a restart (see TLS_RELOADER).
        "shareProcessNamespace": True,
        "extraContainers": [tls_reloader()],
        "statefulSet": {
            "securityContext": {
                # Data and audit volumes become group-writable for the server.
                "pod": security_context.restricted_pod(
                    VAULT_UID, fs_group=True, change_policy="OnRootMismatch"
                ),
                "container": security_context.restricted_container(),
            }
        },
        "livenessProbe": {"enabled": True, "path": LIVENESS_PATH},
        # One server per node: a node loss costs the quorum one voter at most.
        "affinity": scheduling.one_per_node(SERVER_PODS),
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
        # Required on AWS, where every node carries its zone; elsewhere nodes may not be labelled.
        server["topologySpreadConstraints"] = [scheduling.spread(SERVER_PODS, required=zones_required)]
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
        "podSecurityContext": security_context.restricted_pod(OPERATOR_UID),
        "securityContext": security_context.restricted_container(seccomp=False),
    }
    if replicas > 1:
        # minAvailable "" unsets the chart's "0": it renders both fields otherwise, which the API rejects.
        controller["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1, "minAvailable": ""}
        controller["topologySpreadConstraints"] = [scheduling.spread(OPERATOR_PODS, scheduling.HOST)]
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


def vault_quota(replicas: int, storage_gb: int) -> dict[str, str]:
    """The servers with their TLS reloaders (OnDelete updates: no surge pods) and their data and audit
    volumes."""
    return (
        quota.pods_total(replicas, [(SERVER_RESOURCES, replicas), (TLS_RELOADER_RESOURCES, replicas)])
        | quota.volumes(2 * replicas, storage_gb)
        | quota.NOT_EXPOSED
    )


def operator_quota(replicas: int) -> dict[str, str]:
    """Controllers plus rolling-update surge, each with its metrics proxy, and one hook Job's pod."""
    controllers = quota.with_surge(replicas)
    containers = [(OPERATOR_RESOURCES, controllers), (RBAC_PROXY_RESOURCES, controllers), (HOOK_RESOURCES, 1)]
    return quota.pods_total(controllers + 1, containers) | {"persistentvolumeclaims": "0"} | quota.NOT_EXPOSED


def vault_network_policies(on_aws: bool, backend_ports: Sequence[int] = ()) -> dict[str, netpol.Spec]:
    """Vault's namespace allows, on top of the baseline's default-deny and DNS."""
    private = netpol.cidrs(netpol.PRIVATE_RANGES)
    policies = {
        # The operator is Vault's only client inside the cluster.
        "allow-operator": netpol.ingress_from(
            SERVER_PODS, [netpol.pods_in(OPERATOR_NAMESPACE, OPERATOR_PODS)], API_PORT
        ),
        # Raft joins through the API port, then replicates and forwards requests on the cluster port.
        "allow-raft-peers": netpol.between(SERVER_PODS, netpol.tcp(API_PORT, CLUSTER_PORT)),
        # TokenReview for the kubernetes auth method; pod labels for service registration.
        "allow-kubernetes-api": netpol.to_api_server(SERVER_PODS),
    }
    if backend_ports:
        policies["allow-secret-engine-backends"] = netpol.egress_to(
            SERVER_PODS, private, *sorted(set(backend_ports))
        )
    if on_aws:
        # KMS through the VPC's interface endpoint (private DNS), credentials from the Pod Identity agent.
        policies["allow-aws-kms"] = netpol.egress(
            SERVER_PODS,
            [netpol.EgressRule(to=private, ports=netpol.tcp(HTTPS_PORT)), iam.to_pod_identity_agent()],
        )
    return policies


def operator_network_policies() -> dict[str, netpol.Spec]:
    return {
        "allow-to-vault": netpol.egress_to(OPERATOR_PODS, [netpol.pods_in(NAMESPACE, SERVER_PODS)], API_PORT),
        # Every pod of the chart, hook Jobs included, talks to the API server.
        "allow-kubernetes-api": netpol.to_api_server({}),
    }
