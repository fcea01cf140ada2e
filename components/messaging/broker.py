"""The messaging layer: a RabbitMQ broker and the topology the services' ``queue:`` declarations
call for, with nothing lost on the way.

- **Broker**: on ``kubernetes`` a RabbitmqCluster of the RabbitMQ Cluster Operator in namespace
  ``messaging`` (TLS only with a certificate from the platform's internal CA, persistent volumes, one
  node per machine, Pod Security Standards ``restricted``, out of the mesh: it terminates its own TLS
  and authenticates clients by password); on ``aws`` Amazon MQ for RabbitMQ
  (:mod:`components.messaging.amazon_mq`).
- **Topology**: vhosts, fanout exchanges, quorum queues, bindings and dead-letter policies as
  Messaging Topology Operator objects in ``messaging`` on both targets
  (:mod:`components.messaging.topology_objects`), derived from
  :func:`components.messaging_topology.topology`. Services never configure anything themselves.
- **Operators**: both upstream operators ship one YAML bundle per release and no Helm chart; each is
  installed from its pinned release URL (``yaml/v2.ConfigFile``) into ``rabbitmq-system``, which
  gets the platform's namespace baseline on top. The topology operator needs the Cluster Operator's
  CRD even for Amazon MQ (it watches RabbitmqClusters), so both run on both targets.
- **Credentials**: one administrator (the topology operator and Vault's RabbitMQ engine log in as
  it; :class:`BrokerHandle` exposes it for Vault). Services get short-lived users from Vault, with the
  grants of :attr:`Topology.grants`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import labels, netpol, quota
from components.core.namespace_baseline import Baseline, ContainerDefaults, namespace_baseline
from components.mesh.istio import MeshHandle
from components.messaging import amazon_mq as amq
from components.messaging import topology as mt
from components.messaging import topology_objects as objects
from components.paved_road import service_network
from components.secrets import vault_server as vault_layer
from components.targets.aws.handles import NetworkHandle
from rampart.config.models import Messaging as MessagingConfig
from rampart.config.models import ServiceSpec

NAMESPACE = "messaging"
OPERATOR_NAMESPACE = "rabbitmq-system"


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
# The topology operator's pods and Deployment, as its bundle names them.
TOPOLOGY_OPERATOR_PODS = {labels.NAME: "messaging-topology-operator"}
TOPOLOGY_OPERATOR_DEPLOYMENT = "messaging-topology-operator"
TOPOLOGY_OPERATOR_CONTAINER = "manager"
Resources = Mapping[str, Mapping[str, str]]
# As the pinned bundles request them; the quota of rabbitmq-system is sized from these.
OPERATOR_RESOURCES: Mapping[str, Resources] = {
    "cluster-operator": {
        "requests": {"cpu": "200m", "memory": "500Mi"},
        "limits": {"cpu": "200m", "memory": "500Mi"},
    },
    "topology-operator": {
        "requests": {"cpu": "300m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    },
}
WEBHOOK_PORT = 9443

# The RabbitmqCluster: its Services are `rabbitmq` and `rabbitmq-nodes` (headless), its pods
# `rabbitmq-server-<n>`, selected by the operator's name label.
CLUSTER_NAME = "rabbitmq"
HEADLESS_SERVICE = f"{CLUSTER_NAME}-nodes"
BROKER_PODS = {labels.NAME: CLUSTER_NAME}
SERVER_CERTIFICATE = "rabbitmq-tls"
ADMIN_CREDENTIALS = "rabbitmq-admin"
ADMIN_USER = amq.ADMIN_USER
# Amazon MQ's management API, as a connection the topology operator reads (uri/username/password).
CONNECTION = "rabbitmq-connection"
# The topology operator caches, and its webhooks admit, only Secrets it may read: labelled so.
TOPOLOGY_SECRET_LABELS = {"rabbitmq.com/topology-operator": "true"}
# The topology operator verifies the broker with the system trust store: a copy of the internal
# CA mounted into it.
OPERATOR_CA_CERTIFICATE = "rabbitmq-ca"
OPERATOR_CA_FILE = "/etc/ssl/certs/rampart-ca.crt"

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
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
# Memory requests equal limits: RabbitMQ sizes its memory alarm from the limit.
SMALL_BROKER: Resources = {
    "requests": {"cpu": "250m", "memory": "1Gi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
LARGE_BROKER: Resources = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
# TLS 1.2 and 1.3 only, on AMQPS and the management API.
ADDITIONAL_CONFIG = "\n".join(
    f"{prefix}.versions.{index} = {version}"
    for prefix in ("ssl_options", "management.ssl")
    for index, version in enumerate(("tlsv1.3", "tlsv1.2"), start=1)
)


@dataclass(frozen=True)
class MessagingAws:
    """The aws target: where Amazon MQ goes and who may reach it."""

    network: NetworkHandle
    # label -> security group of AMQPS clients (the services' pods).
    amqp_clients: Mapping[str, pulumi.Input[str]]
    # label -> security group of management API clients (topology operator, Vault).
    management_clients: Mapping[str, pulumi.Input[str]]
    # Added to every AWS resource (the provider's default tags still apply).
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class MessagingArgs:
    environment: str
    settings: MessagingConfig
    services: Sequence[ServiceSpec]
    provider: k8s.Provider
    certificates: CertificatesHandle
    # The administrator's password: a secret Output (pulumi-random, no , : =), never a plain str.
    admin_password: pulumi.Output[str]
    # Amazon MQ on aws; None for the in-cluster broker.
    aws: MessagingAws | None = None
    # With a mesh, the broker stays out of it; on aws its endpoint is registered for the clients.
    mesh: MeshHandle | None = None
    # Namespaces of the services that publish or consume; None: each in the namespace of its name.
    client_namespaces: Sequence[str] | None = None
    # Staging and prod: protect (and retain) the broker, its vhosts and queues.
    protect: bool = False
    # The cluster and cert-manager (both operators' webhooks take certificates from it).
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class BrokerHandle:
    """What Vault and the services need from the broker."""

    namespace: str
    # The management API (Vault's RabbitMQ engine): https://rabbitmq.messaging.svc:15671, or
    # Amazon MQ's console URL.
    management_uri: pulumi.Input[str]
    admin_username: str
    admin_password: pulumi.Output[str]
    # amqps://host:5671 for the services.
    amqp_endpoints: pulumi.Input[Sequence[str]]
    amqp_port: int
    # True when the broker's certificate comes from the platform's internal CA (clients need its
    # ca.crt); Amazon MQ's certificate chains to a public root.
    internal_ca: bool
    ready: list[pulumi.Resource]

    def vault_broker(self) -> tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]]:
        """(management URI, username, password) as Vault's RabbitMQ engine takes them."""
        return self.management_uri, self.admin_username, self.admin_password


def client_namespaces(args: MessagingArgs) -> list[str]:
    if args.client_namespaces is not None:
        return sorted(set(args.client_namespaces))
    return mt.clients(args.services)


# -- checks ---------------------------------------------------------------------------------------------


def image(engine_version: str) -> str:
    if engine_version not in IMAGES:
        known = ", ".join(sorted(IMAGES))
        raise ValueError(f"messaging.engine_version {engine_version!r}: no pinned image (known: {known})")
    return IMAGES[engine_version]


def check(args: MessagingArgs) -> None:
    """Refuse what would deploy a broker nobody uses, leak the password or clash with the topology."""
    if isinstance(args.admin_password, str):
        raise TypeError("admin_password must be a secret Output (pulumi-random), not a plain str")
    problems = mt.reserved_name_problems(args.services)
    if not mt.clients(args.services):
        problems.append("no service publishes or consumes a queue: the messaging layer has nothing to do")
    if args.aws is None and args.settings.engine_version not in IMAGES:
        problems.append(f"engine_version {args.settings.engine_version!r}: no pinned image")
    if problems:
        raise ValueError("invalid messaging configuration:\n  " + "\n  ".join(problems))


# -- network ---------------------------------------------------------------------------------------------


def broker_egress(on_aws: bool, vpc_cidr: str | None = None) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """For a service namespace whose pods publish or consume: AMQPS to the broker pods, or on aws
    to Amazon MQ's private addresses in the VPC (``vpc_cidr`` when known, else the private ranges)."""
    peers = (
        netpol.cidrs([vpc_cidr] if vpc_cidr else netpol.PRIVATE_RANGES)
        if on_aws
        else [netpol.pods_in(NAMESPACE, BROKER_PODS)]
    )
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=peers, ports=netpol.tcp(AMQPS_PORT))],
    )


def broker_network_policies(namespaces: Sequence[str]) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """The broker namespace's allows (kubernetes target), on top of default-deny and DNS."""
    peers = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=netpol.selector(BROKER_PODS))]
    low, high = CLI_PORTS
    cluster_ports = [
        *netpol.tcp(EPMD_PORT, DISTRIBUTION_PORT),
        k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=low, end_port=high),
    ]
    return {
        # The services that publish or consume, and no other namespace, speak AMQPS to the broker.
        "allow-amqps": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(BROKER_PODS),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[netpol.pods_in(ns) for ns in sorted(set(namespaces))], ports=netpol.tcp(AMQPS_PORT)
                )
            ],
        ),
        # The management API: the topology operator declares the topology, Vault creates users.
        "allow-management": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(BROKER_PODS),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[
                        netpol.pods_in(OPERATOR_NAMESPACE, TOPOLOGY_OPERATOR_PODS),
                        netpol.pods_in(vault_layer.NAMESPACE, vault_layer.SERVER_PODS),
                    ],
                    ports=netpol.tcp(MANAGEMENT_PORT),
                )
            ],
        ),
        # Clustering: peer discovery (epmd), the inter-node distribution, CLI tools.
        "allow-cluster-peers": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(BROKER_PODS),
            policy_types=["Ingress", "Egress"],
            ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=cluster_ports)],
            egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=peers, ports=cluster_ports)],
        ),
        # The Kubernetes peer-discovery plugin lists the cluster's endpoints through the API server.
        "allow-kubernetes-api": netpol.to_api_server(BROKER_PODS),
    }


def operator_network_policies(on_aws: bool) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """rabbitmq-system's allows, on top of default-deny and DNS: API server and webhooks for both
    operators, and the topology operator to the broker's management API (in the cluster; on aws
    Amazon MQ's private addresses on 443, which the API-server rule already allows)."""
    policies = {
        "allow-kubernetes-api": netpol.to_api_server({}),
        # The API server calls the admission webhooks; it is not a pod, so no selector names it.
        "allow-webhooks": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(),
            policy_types=["Ingress"],
            ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=netpol.tcp(WEBHOOK_PORT))],
        ),
    }
    if not on_aws:
        policies["allow-topology-to-broker"] = k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=netpol.selector(TOPOLOGY_OPERATOR_PODS),
            policy_types=["Egress"],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[netpol.pods_in(NAMESPACE, BROKER_PODS)], ports=netpol.tcp(MANAGEMENT_PORT)
                )
            ],
        )
    return policies


# -- quotas ----------------------------------------------------------------------------------------------


def broker_resources(environment: str) -> Resources:
    return LARGE_BROKER if environment in ("staging", "prod") else SMALL_BROKER


def broker_quota(replicas: int, storage_gb: int, resources: Resources) -> dict[str, str]:
    """The broker pods (a StatefulSet updated in place: no surge) and one volume each. The setup
    init container asks for less than the broker, so the broker's resources are the pod's."""
    return (
        {"pods": str(replicas)}
        | quota.containers_total([(resources, replicas)])
        | {
            "persistentvolumeclaims": str(replicas),
            "requests.storage": f"{replicas * storage_gb}Gi",
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }
    )


def operator_quota() -> dict[str, str]:
    """One controller of each operator plus the pod a rolling update surges."""
    pods = [(resources, 2) for resources in OPERATOR_RESOURCES.values()]
    return (
        {"pods": str(sum(n for _, n in pods))}
        | quota.containers_total(pods)
        | {"persistentvolumeclaims": "0", "services.loadbalancers": "0", "services.nodeports": "0"}
    )


# Nothing runs in `messaging` on aws: it holds the topology objects and the connection Secret only.
EMPTY_QUOTA = {
    "pods": "0",
    "persistentvolumeclaims": "0",
    "services.loadbalancers": "0",
    "services.nodeports": "0",
}


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


def _restricted_container(name: str) -> dict[str, Any]:
    # The operator's own defaults since 2.x, stated so a change of defaults cannot loosen them.
    return {
        "name": name,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": RUNTIME_DEFAULT,
        },
    }


def pod_override() -> dict[str, Any]:
    """StatefulSet override: out of the mesh, the platform's uid, restricted containers. The operator
    merges it into its pod template strategically (containers by name)."""
    return {
        "metadata": {"labels": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                # The data volume and the cookie's emptyDir become group-writable for the broker.
                "fsGroup": RUN_AS,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": RUNTIME_DEFAULT,
            },
            "initContainers": [_restricted_container("setup-container")],
            "containers": [_restricted_container("rabbitmq")],
        },
    }


def _one_node_per_machine() -> dict[str, Any]:
    # A machine's loss costs the quorum queues one replica at most. (The operator spreads the pods
    # over zones by itself, where nodes carry zones.)
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": BROKER_PODS}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
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
        spec["affinity"] = _one_node_per_machine()
    return spec


# -- the component ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Broker:
    management_uri: pulumi.Input[str]
    amqp_endpoints: pulumi.Input[Sequence[str]]
    # How the topology objects name the broker, and what they are created after.
    reference: dict[str, Any]
    topology_after: list[pulumi.Resource]
    ready: list[pulumi.Resource]


class Messaging(pulumi.ComponentResource):
    handle: BrokerHandle
    topology: mt.Topology
    # (kind, Kubernetes name) -> the topology object.
    objects: dict[tuple[str, str], k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:messaging:Messaging", name, {}, opts)
        check(args)
        self._name, self._args = name, args
        self._labels = labels.common(args.environment) | {labels.NAME: CLUSTER_NAME}
        self.topology = mt.topology(args.services)

        cluster_operator, topology_operator = self._operators()
        baseline = self._namespace(args.aws is not None)
        if args.aws is None:
            broker = self._in_cluster(baseline, cluster_operator, topology_operator)
        else:
            broker = self._amazon_mq(baseline, topology_operator, args.aws)
        self.handle = BrokerHandle(
            namespace=NAMESPACE,
            management_uri=broker.management_uri,
            admin_username=ADMIN_USER,
            admin_password=self._password(),
            amqp_endpoints=broker.amqp_endpoints,
            amqp_port=AMQPS_PORT,
            internal_ca=args.aws is None,
            ready=broker.ready,
        )
        self.objects = objects.create(
            name,
            objects.topology_objects(self.topology, broker.reference),
            objects.ObjectsArgs(
                namespace=baseline.name,
                labels=self._labels,
                provider=args.provider,
                parent=self,
                depends_on=[*baseline.resources, *broker.topology_after],
                protect=args.protect,
            ),
        )
        self.register_outputs(
            {
                "namespace": baseline.name,
                "managementUri": self.handle.management_uri,
                "amqpEndpoints": self.handle.amqp_endpoints,
                "vhosts": list(self.topology.vhosts),
            }
        )

    # -- options -------------------------------------------------------------------------------------

    def _on_cluster(
        self, depends_on: Sequence[pulumi.Resource] = (), protect: bool = False
    ) -> pulumi.ResourceOptions:
        # Every Kubernetes object names its provider: none may fall back to the ambient one.
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._args.provider,
            depends_on=list(depends_on),
            protect=protect,
            retain_on_delete=protect,
        )

    def _password(self) -> pulumi.Output[str]:
        secret: pulumi.Output[str] = pulumi.Output.secret(self._args.admin_password)
        return secret

    def _meta(self, name: str, namespace: pulumi.Input[str], **extra: Any) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(self._labels), **extra)

    # -- the two brokers -----------------------------------------------------------------------------

    def _in_cluster(
        self, baseline: Baseline, cluster_operator: pulumi.Resource, topology_operator: pulumi.Resource
    ) -> _Broker:
        trust = self._operator_trust(topology_operator)
        cluster = self._cluster(baseline, cluster_operator)
        after = [topology_operator, cluster, trust]
        admin = self._admin_user(baseline, after)
        return _Broker(
            management_uri=MANAGEMENT_URI,
            amqp_endpoints=[AMQP_ENDPOINT],
            reference=objects.by_cluster_name(CLUSTER_NAME),
            topology_after=after,
            ready=[cluster, admin],
        )

    def _amazon_mq(
        self, baseline: Baseline, topology_operator: pulumi.Resource, target: MessagingAws
    ) -> _Broker:
        args = self._args
        broker = amq.amazon_mq(
            self._name,
            amq.AmazonMqArgs(
                environment=args.environment,
                settings=args.settings,
                network=target.network,
                amqp_clients=target.amqp_clients,
                management_clients=target.management_clients,
                admin_password=args.admin_password,
                tags=target.tags,
                protect=args.protect,
            ),
            parent=self,
        )
        connection = self._connection_secret(baseline, broker.console_url)
        if args.mesh is not None:
            self._mesh_entry(baseline, broker.amqp_endpoints)
        return _Broker(
            management_uri=broker.console_url,
            amqp_endpoints=broker.amqp_endpoints,
            reference=objects.by_connection_secret(CONNECTION),
            topology_after=[topology_operator, connection],
            ready=[broker.broker],
        )

    # -- operators -----------------------------------------------------------------------------------

    def _operators(self) -> tuple[pulumi.Resource, pulumi.Resource]:
        """Both bundles, then rabbitmq-system's baseline (the bundles create the namespace itself)."""
        name, args = self._name, self._args
        cluster_operator = k8s.yaml.v2.ConfigFile(
            f"{name}-cluster-operator",
            file=CLUSTER_OPERATOR.url,
            opts=self._on_cluster(args.depends_on),
        )
        # The topology operator watches RabbitmqClusters: their CRD must exist when it starts.
        topology_operator = k8s.yaml.v2.ConfigFile(
            f"{name}-topology-operator",
            file=TOPOLOGY_OPERATOR.url,
            opts=self._on_cluster([*args.depends_on, cluster_operator]),
        )
        self._operator_baseline([cluster_operator, topology_operator])
        return cluster_operator, topology_operator

    def _operator_baseline(self, bundles: Sequence[pulumi.Resource]) -> None:
        name, args = self._name, self._args
        opts = self._on_cluster(bundles)
        namespace_labels = dict(labels.PSS_LABELS)
        if args.mesh is not None:
            # Explicit, so that no injection default of the mesh pulls the operators in.
            namespace_labels["istio-injection"] = "disabled"
        # Both bundles declare the namespace; the patch adds only the labels the platform needs.
        k8s.core.v1.NamespacePatch(
            f"{name}-operator-namespace-labels",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=OPERATOR_NAMESPACE, labels=namespace_labels),
            opts=opts,
        )
        defaults = OPERATOR_RESOURCES["topology-operator"]
        k8s.core.v1.ResourceQuota(
            f"{name}-operator-quota",
            metadata=self._meta("quota", OPERATOR_NAMESPACE),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=operator_quota()),
            opts=opts,
        )
        k8s.core.v1.LimitRange(
            f"{name}-operator-limits",
            metadata=self._meta("limits", OPERATOR_NAMESPACE),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default=dict(defaults["limits"]),
                        default_request=dict(defaults["requests"]),
                    )
                ]
            ),
            opts=opts,
        )
        policies = {
            "default-deny": service_network.default_deny(),
            "allow-dns": service_network.allow_dns(),
            **operator_network_policies(args.aws is not None),
        }
        for policy_name, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-operator-{policy_name}",
                metadata=self._meta(policy_name, OPERATOR_NAMESPACE),
                spec=spec,
                opts=opts,
            )

    def _operator_trust(self, topology_operator: pulumi.Resource) -> pulumi.Resource:
        """The internal CA in the topology operator's trust store, so it verifies the broker: a
        certificate from the same issuer puts the CA (its ca.crt) into rabbitmq-system, and a patch of
        the bundle's Deployment mounts it under /etc/ssl/certs."""
        name, args = self._name, self._args
        internal = dataclasses.replace(
            args.certificates,
            cluster_issuer=args.certificates.internal_issuer,
            ready=[*args.certificates.ready, topology_operator],
        )
        ca_copy = certificate(
            f"{name}-operator-ca",
            namespace=OPERATOR_NAMESPACE,
            dns_names=[f"{OPERATOR_CA_CERTIFICATE}.{OPERATOR_NAMESPACE}.svc"],
            secret_name=OPERATOR_CA_CERTIFICATE,
            handle=internal,
            provider=args.provider,
            parent=self,
        )
        return k8s.apps.v1.DeploymentPatch(
            f"{name}-topology-operator-trust",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=TOPOLOGY_OPERATOR_DEPLOYMENT, namespace=OPERATOR_NAMESPACE
            ),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    spec=k8s.core.v1.PodSpecPatchArgs(
                        volumes=[
                            k8s.core.v1.VolumePatchArgs(
                                name=OPERATOR_CA_CERTIFICATE,
                                secret=k8s.core.v1.SecretVolumeSourcePatchArgs(
                                    secret_name=OPERATOR_CA_CERTIFICATE,
                                    items=[k8s.core.v1.KeyToPathPatchArgs(key="ca.crt", path="ca.crt")],
                                ),
                            )
                        ],
                        containers=[
                            k8s.core.v1.ContainerPatchArgs(
                                name=TOPOLOGY_OPERATOR_CONTAINER,
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountPatchArgs(
                                        name=OPERATOR_CA_CERTIFICATE,
                                        mount_path=OPERATOR_CA_FILE,
                                        sub_path="ca.crt",
                                        read_only=True,
                                    )
                                ],
                            )
                        ],
                    )
                )
            ),
            opts=self._on_cluster([topology_operator, ca_copy]),
        )

    # -- the broker namespace ------------------------------------------------------------------------

    def _namespace(self, on_aws: bool) -> Baseline:
        args = self._args
        resources = broker_resources(args.environment)
        hard = (
            EMPTY_QUOTA
            if on_aws
            else broker_quota(args.settings.replicas, args.settings.storage_gb, resources)
        )
        policies = {} if on_aws else broker_network_policies(client_namespaces(args))
        return namespace_baseline(
            f"{self._name}-messaging",
            namespace=NAMESPACE,
            labels_=self._labels,
            quota=hard,
            container_defaults=ContainerDefaults(requests=resources["requests"], limits=resources["limits"]),
            policies=policies,
            opts=self._on_cluster(args.depends_on),
            extra_namespace_labels={"istio-injection": "disabled"} if args.mesh is not None else None,
        )

    def _cluster(self, baseline: Baseline, cluster_operator: pulumi.Resource) -> pulumi.Resource:
        name, args = self._name, self._args
        internal = dataclasses.replace(args.certificates, cluster_issuer=args.certificates.internal_issuer)
        tls = certificate(
            f"{name}-tls",
            namespace=baseline.name,
            dns_names=certificate_names(),
            secret_name=SERVER_CERTIFICATE,
            handle=internal,
            provider=args.provider,
            parent=self,
        )
        cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=objects.API_VERSION,
            kind="RabbitmqCluster",
            metadata=self._meta(
                CLUSTER_NAME,
                baseline.name,
                # Topology objects from `messaging` only (the operator's default, stated).
                annotations={"rabbitmq.com/topology-allowed-namespaces": NAMESPACE},
            ),
            spec=cluster_spec(args.settings, args.environment),
            opts=self._on_cluster([cluster_operator, *baseline.resources, tls], protect=args.protect),
        )
        if args.settings.replicas > 1:
            # Voluntary evictions (node drains) take one node at a time: the quorum queues keep a majority.
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-disruption-budget",
                metadata=self._meta(CLUSTER_NAME, baseline.name),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1, selector=netpol.selector(BROKER_PODS)
                ),
                opts=self._on_cluster(baseline.resources),
            )
        return cluster

    def _admin_user(self, baseline: Baseline, before: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The administrator Vault's RabbitMQ engine logs in as, with the password handed in."""
        name = self._name
        credentials = k8s.core.v1.Secret(
            f"{name}-admin-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ADMIN_CREDENTIALS, namespace=baseline.name, labels=self._labels | TOPOLOGY_SECRET_LABELS
            ),
            type="Opaque",
            string_data={"username": ADMIN_USER, "password": self._password()},
            opts=self._on_cluster(baseline.resources),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-admin",
            api_version=objects.API_VERSION,
            kind="User",
            metadata=self._meta(ADMIN_USER, baseline.name),
            spec={
                "tags": ["administrator"],
                "importCredentialsSecret": {"name": ADMIN_CREDENTIALS},
                "rabbitmqClusterReference": objects.by_cluster_name(CLUSTER_NAME),
            },
            opts=self._on_cluster([*before, credentials]),
        )

    # -- aws -----------------------------------------------------------------------------------------

    def _connection_secret(self, baseline: Baseline, console_url: pulumi.Input[str]) -> pulumi.Resource:
        """Amazon MQ's management API for the topology operator (keys as it reads them)."""
        name = self._name
        return k8s.core.v1.Secret(
            f"{name}-connection",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CONNECTION, namespace=baseline.name, labels=self._labels | TOPOLOGY_SECRET_LABELS
            ),
            type="Opaque",
            string_data={
                "uri": console_url,
                "username": ADMIN_USER,
                "password": self._password(),
            },
            opts=self._on_cluster(baseline.resources),
        )

    def _mesh_entry(self, baseline: Baseline, endpoints: pulumi.Output[list[str]]) -> None:
        """Amazon MQ is outside the mesh, whose egress is REGISTRY_ONLY: its AMQPS endpoint is
        registered for the client namespaces only."""
        name, args = self._name, self._args
        k8s.apiextensions.CustomResource(
            f"{name}-broker-entry",
            api_version="networking.istio.io/v1",
            kind="ServiceEntry",
            metadata=self._meta("amazon-mq", baseline.name),
            spec={
                "hosts": [endpoints.apply(amqp_host)],
                "location": "MESH_EXTERNAL",
                "ports": [{"number": AMQPS_PORT, "name": "amqps", "protocol": "TLS"}],
                "resolution": "DNS",
                "exportTo": client_namespaces(args),
            },
            opts=self._on_cluster(baseline.resources),
        )


def amqp_host(endpoints: Sequence[str]) -> str:
    """amqps://host:5671 -> host (a cluster broker has one endpoint in front of its nodes)."""
    if not endpoints:
        raise ValueError("the broker reported no AMQP endpoint")
    return endpoints[0].split("://", 1)[-1].rsplit(":", 1)[0]
