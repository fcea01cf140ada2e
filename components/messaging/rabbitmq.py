"""The in-cluster broker of the ``kubernetes`` target, as values: a RabbitmqCluster of the RabbitMQ Cluster
Operator in ``messaging`` (TLS only with a certificate from the platform's internal CA, persistent
volumes, one node per machine, Pod Security Standards ``restricted``, out of the mesh), the two
operators' bundles in ``rabbitmq-system``, and what each namespace and the clients' namespaces allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.core import labels, netpol, quota, scheduling, security_context
from components.core.quota import Resources
from components.messaging import NAMESPACE, OPERATOR_NAMESPACE
from components.secrets import NAMESPACE as VAULT_NAMESPACE
from components.secrets.vault_chart import SERVER_PODS as VAULT_PODS
from rampart.config.models import Messaging as MessagingConfig

# The RabbitmqCluster: its Services are `rabbitmq` and `rabbitmq-nodes` (headless), its pods
# `rabbitmq-server-<n>`, selected by the operator's name label.
CLUSTER_NAME = "rabbitmq"
HEADLESS_SERVICE = f"{CLUSTER_NAME}-nodes"
BROKER_PODS = {labels.NAME: CLUSTER_NAME}
SERVER_CERTIFICATE = "rabbitmq-tls"

AMQPS_PORT = 5671
MANAGEMENT_PORT = 15671
EPMD_PORT = 4369
DISTRIBUTION_PORT = 25672
# rabbitmqctl and friends connect to the node through the distribution on these.
CLI_PORTS = (35672, 35682)
MANAGEMENT_URI = f"https://{CLUSTER_NAME}.{NAMESPACE}.svc:{MANAGEMENT_PORT}"
AMQP_ENDPOINT = f"amqps://{CLUSTER_NAME}.{NAMESPACE}.svc:{AMQPS_PORT}"

# Pinned images per RabbitMQ minor (community images; the cluster operator's default is 4.2.6).
IMAGES = {"3.13": "rabbitmq:3.13.7-management", "4.2": "rabbitmq:4.2.6-management"}
# The platform's uid floor; the image runs under any uid (volumes are made group-writable).
RUN_AS = 10001
# Memory requests equal limits: RabbitMQ sizes its memory alarm from the limit.
SMALL_BROKER = quota.resources(requests=("250m", "1Gi"), limits=("1", "1Gi"))
LARGE_BROKER = quota.resources(requests=("1", "2Gi"), limits=("2", "2Gi"))
# TLS 1.2 and 1.3 only, on AMQPS and the management API.
ADDITIONAL_CONFIG = "\n".join(
    f"{prefix}.versions.{index} = {version}"
    for prefix in ("ssl_options", "management.ssl")
    for index, version in enumerate(("tlsv1.3", "tlsv1.2"), start=1)
)


@dataclass(frozen=True)
class OperatorBundle:
    repository: str
    version: str
    asset: str

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repository}/releases/download/{self.version}/{self.asset}"


# Both bundles use cert-manager for their webhooks' certificates (the -with-certmanager asset).
CLUSTER_OPERATOR = OperatorBundle("rabbitmq/cluster-operator", "v2.22.3", "cluster-operator.yml")
TOPOLOGY_OPERATOR = OperatorBundle(
    "rabbitmq/messaging-topology-operator", "v1.20.1", "messaging-topology-operator-with-certmanager.yaml"
)
# The topology operator's CRDs (config/crd/kustomization.yaml at the pinned tag), each its own manifest
# (config/crd/bases/rabbitmq.com_<plural>.yaml): installed apart from the bundle, so that deleting or
# replacing the bundle never deletes them, and with them every Vhost and Queue object.
TOPOLOGY_CRD_PLURALS = (
    "queues",
    "exchanges",
    "bindings",
    "users",
    "vhosts",
    "policies",
    "operatorpolicies",
    "permissions",
    "schemareplications",
    "federations",
    "shovels",
    "superstreams",
    "topicpermissions",
)


def topology_crd_url(plural: str, bundle: OperatorBundle | None = None) -> str:
    """One CRD of the topology operator, from its repository at the bundle's pinned tag."""
    pinned = bundle or TOPOLOGY_OPERATOR
    return (
        f"https://raw.githubusercontent.com/{pinned.repository}/{pinned.version}"
        f"/config/crd/bases/rabbitmq.com_{plural}.yaml"
    )


# The topology operator's pods and Deployment, as its bundle names them.
TOPOLOGY_OPERATOR_PODS = {labels.NAME: "messaging-topology-operator"}
TOPOLOGY_OPERATOR_DEPLOYMENT = "messaging-topology-operator"
TOPOLOGY_OPERATOR_CONTAINER = "manager"
# As the pinned bundles request them; the quota of rabbitmq-system is sized from these.
OPERATOR_RESOURCES: Mapping[str, Resources] = {
    "cluster-operator": quota.resources(requests=("200m", "500Mi"), limits=("200m", "500Mi")),
    "topology-operator": quota.resources(requests=("300m", "128Mi"), limits=("500m", "512Mi")),
}
WEBHOOK_PORT = 9443
# The topology operator caches, and its webhooks admit, only Secrets it may read: labelled so.
TOPOLOGY_SECRET_LABELS = {"rabbitmq.com/topology-operator": "true"}
# The topology operator verifies the broker with the system trust store: a copy of the internal
# CA mounted into it.
OPERATOR_CA_CERTIFICATE = "rabbitmq-ca"
OPERATOR_CA_FILE = "/etc/ssl/certs/rampart-ca.crt"
# Nothing runs in `messaging` on aws: it holds the topology objects and the connection Secret only.
EMPTY_QUOTA = {"pods": "0", "persistentvolumeclaims": "0"} | quota.NOT_EXPOSED


def image(engine_version: str) -> str:
    if engine_version not in IMAGES:
        known = ", ".join(sorted(IMAGES))
        raise ValueError(f"messaging.engine_version {engine_version!r}: no pinned image (known: {known})")
    return IMAGES[engine_version]


# -- network ---------------------------------------------------------------------------------------------


def broker_egress(on_aws: bool, vpc_cidr: str | None = None) -> netpol.Spec:
    """For a service namespace whose pods publish or consume: AMQPS to the broker pods, or on aws
    to Amazon MQ's private addresses in the VPC (``vpc_cidr`` when known, else the private ranges)."""
    peers = (
        netpol.cidrs([vpc_cidr] if vpc_cidr else netpol.PRIVATE_RANGES)
        if on_aws
        else [netpol.pods_in(NAMESPACE, BROKER_PODS)]
    )
    return netpol.egress_to(None, peers, AMQPS_PORT)


def broker_network_policies(namespaces: Sequence[str]) -> dict[str, netpol.Spec]:
    """The broker namespace's allows (kubernetes target), on top of default-deny and DNS."""
    low, high = CLI_PORTS
    cluster_ports = [
        *netpol.tcp(EPMD_PORT, DISTRIBUTION_PORT),
        netpol.Port(protocol="TCP", port=low, end_port=high),
    ]
    return {
        # The services that publish or consume, and no other namespace, speak AMQPS to the broker.
        "allow-amqps": netpol.ingress_from(
            BROKER_PODS, [netpol.pods_in(ns) for ns in sorted(set(namespaces))], AMQPS_PORT
        ),
        # The management API: the topology operator declares the topology, Vault creates users.
        "allow-management": netpol.ingress_from(
            BROKER_PODS,
            [
                netpol.pods_in(OPERATOR_NAMESPACE, TOPOLOGY_OPERATOR_PODS),
                netpol.pods_in(VAULT_NAMESPACE, VAULT_PODS),
            ],
            MANAGEMENT_PORT,
        ),
        # Clustering: peer discovery (epmd), the inter-node distribution, CLI tools.
        "allow-cluster-peers": netpol.between(BROKER_PODS, cluster_ports),
        # The Kubernetes peer-discovery plugin lists the cluster's endpoints through the API server.
        "allow-kubernetes-api": netpol.to_api_server(BROKER_PODS),
    }


def operator_quota() -> dict[str, str]:
    """One controller of each operator plus the pod a rolling update surges."""
    pods = [(resources, 2) for resources in OPERATOR_RESOURCES.values()]
    return (
        quota.pods_total(sum(n for _, n in pods), pods) | {"persistentvolumeclaims": "0"} | quota.NOT_EXPOSED
    )


def operator_network_policies(on_aws: bool) -> dict[str, netpol.Spec]:
    """rabbitmq-system's allows, on top of default-deny and DNS: API server and webhooks for both
    operators, and the topology operator to the broker's management API (in the cluster; on aws
    Amazon MQ's private addresses on 443, which the API-server rule already allows)."""
    policies = {
        "allow-kubernetes-api": netpol.to_api_server({}),
        # The API server calls the admission webhooks; it is not a pod, so no selector names it.
        "allow-webhooks": netpol.ingress(None, [netpol.IngressRule(ports=netpol.tcp(WEBHOOK_PORT))]),
    }
    if not on_aws:
        policies["allow-topology-to-broker"] = netpol.egress_to(
            TOPOLOGY_OPERATOR_PODS, [netpol.pods_in(NAMESPACE, BROKER_PODS)], MANAGEMENT_PORT
        )
    return policies


# -- quota -----------------------------------------------------------------------------------------------


def broker_resources(environment: str) -> Resources:
    return LARGE_BROKER if environment in ("staging", "prod") else SMALL_BROKER


def broker_quota(replicas: int, storage_gb: int, resources: Resources) -> dict[str, str]:
    """The broker pods (a StatefulSet updated in place: no surge) and one volume each. The setup
    init container asks for less than the broker, so the broker's resources are the pod's."""
    return (
        quota.pods_total(replicas, [(resources, replicas)])
        | quota.volumes(replicas, storage_gb)
        | quota.NOT_EXPOSED
    )


# -- the RabbitmqCluster ---------------------------------------------------------------------------------


def certificate_names() -> list[str]:
    service = f"{CLUSTER_NAME}.{NAMESPACE}"
    nodes = f"{HEADLESS_SERVICE}.{NAMESPACE}"
    return [
        CLUSTER_NAME,
        service,
        f"{service}.svc",
        f"{service}.svc.cluster.local",
        f"*.{nodes}",
        f"*.{nodes}.svc",
        f"*.{nodes}.svc.cluster.local",
    ]


def _restricted(container: str) -> dict[str, Any]:
    # The operator's own defaults since 2.x, stated so a change of defaults cannot loosen them.
    return {"name": container, "securityContext": security_context.restricted_container()}


def pod_override() -> dict[str, Any]:
    """StatefulSet override: out of the mesh, the platform's uid, restricted containers. The operator
    merges it into its pod template strategically (containers by name)."""
    return {
        "metadata": {"labels": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            # The data volume and the cookie's emptyDir become group-writable for the broker.
            "securityContext": security_context.restricted_pod(
                RUN_AS, fs_group=True, change_policy="OnRootMismatch"
            ),
            "initContainers": [_restricted("setup-container")],
            "containers": [_restricted("rabbitmq")],
        },
    }


def cluster_spec(settings: MessagingConfig, environment: str) -> dict[str, Any]:
    """The RabbitmqCluster: TLS only, persistent, pinned image, hardened pods. No liveness probe
    (the operator's choice, after RabbitMQ's advice: restarting a node that is busy syncing or paused
    in a partition does harm); readiness and startup probes come from the operator."""
    spec: dict[str, Any] = {
        "replicas": settings.replicas,
        "image": image(settings.engine_version),
        "persistence": {"storage": f"{settings.storage_gb}Gi"},
        "resources": {kind: dict(amounts) for kind, amounts in broker_resources(environment).items()},
        "tls": {"secretName": SERVER_CERTIFICATE, "disableNonTLSListeners": True},
        "rabbitmq": {"additionalConfig": ADDITIONAL_CONFIG},
        "override": {"statefulSet": {"spec": {"template": pod_override()}}},
    }
    if settings.replicas > 1:
        # A machine's loss costs the quorum queues one replica at most. (The operator spreads the pods
        # over zones by itself, where nodes carry zones.)
        spec["affinity"] = scheduling.one_per_node(BROKER_PODS)
    return spec
