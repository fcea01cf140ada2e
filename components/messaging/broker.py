"""The messaging layer: a RabbitMQ broker and the topology the services' ``queue:`` declarations
call for, with nothing lost on the way.

- **Broker**: on ``kubernetes`` a RabbitmqCluster of the RabbitMQ Cluster Operator in namespace
  ``messaging`` (TLS only with a certificate from the platform's internal CA, persistent volumes, one
  node per machine, Pod Security Standards ``restricted``, out of the mesh: it terminates its own TLS
  and authenticates clients by password; its values in :mod:`components.messaging.rabbitmq`); on
  ``aws`` Amazon MQ for RabbitMQ (:mod:`components.messaging.amazon_mq`).
- **Topology**: vhosts, fanout exchanges, quorum queues, bindings and dead-letter policies as
  Messaging Topology Operator objects in ``messaging`` on both targets
  (:mod:`components.messaging.topology_objects`), derived from
  :func:`components.messaging.topology.topology`. Services never configure anything themselves.
- **Operators**: both upstream operators ship one YAML bundle per release and no Helm chart; each is
  installed from its pinned release URL (``yaml/v2.ConfigFile``) into ``rabbitmq-system``, which
  gets the platform's namespace baseline on top (:mod:`components.messaging.operators`). The topology
  operator needs the Cluster Operator's CRD even for Amazon MQ (it watches RabbitmqClusters), so both
  run on both targets.
- **Credentials**: one administrator (the topology operator and Vault's RabbitMQ engine log in as
  it; :class:`BrokerHandle` exposes it for Vault). Services get short-lived users from Vault, with the
  grants of :attr:`Topology.grants`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import labels, netpol
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import (
    Baseline,
    ContainerDefaults,
    namespace_baseline,
)
from components.mesh.istio import MeshHandle
from components.messaging import NAMESPACE, OPERATOR_NAMESPACE, TOPOLOGY_OPERATOR_WORKLOAD, operators
from components.messaging import amazon_mq as amq
from components.messaging import topology as mt
from components.messaging import topology_objects as objects
from components.messaging.amazon_mq import MessagingAws
from components.messaging.rabbitmq import (
    AMQP_ENDPOINT,
    AMQPS_PORT,
    BROKER_PODS,
    CLUSTER_NAME,
    EMPTY_QUOTA,
    IMAGES,
    MANAGEMENT_URI,
    SERVER_CERTIFICATE,
    TOPOLOGY_SECRET_LABELS,
    broker_network_policies,
    broker_quota,
    broker_resources,
    certificate_names,
    cluster_spec,
)
from components.targets.aws import pod_security
from rampart.config.models import Messaging as MessagingConfig
from rampart.config.models import ServiceSpec

ADMIN_CREDENTIALS = "rabbitmq-admin"
ADMIN_USER = amq.ADMIN_USER
# Amazon MQ's management API, as a connection the topology operator reads (uri/username/password).
CONNECTION = "rabbitmq-connection"
# On the topology operator's pod template: which pod security groups its pods were created with.
SECURITY_GROUPS_ANNOTATION = "rampart.dev/security-groups"


@dataclass(frozen=True, kw_only=True)
class MessagingArgs(InClusterArgs):
    settings: MessagingConfig
    services: Sequence[ServiceSpec]
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
    # depends_on: the cluster and cert-manager (both operators' webhooks take certificates from it).


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


# -- the component ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Broker:
    management_uri: pulumi.Input[str]
    amqp_endpoints: pulumi.Input[Sequence[str]]
    # How the topology objects name the broker, and what they are created after.
    reference: dict[str, Any]
    topology_after: list[pulumi.Resource]
    ready: list[pulumi.Resource]


class Messaging(InClusterComponent):
    handle: BrokerHandle
    topology: mt.Topology
    # (kind, Kubernetes name) -> the topology object.
    objects: dict[tuple[str, str], k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:messaging:Messaging", name, provider=args.provider, opts=opts)
        check(args)
        self._name, self._args = name, args
        self._labels = labels.common(args.environment) | {labels.NAME: CLUSTER_NAME}
        self.topology = mt.topology(args.services)

        installed = operators.install(
            self,
            name,
            labels_=self._labels,
            on_aws=args.aws is not None,
            meshed=args.mesh is not None,
            depends_on=args.depends_on,
            protect=args.protect,
        )
        cluster_operator, topology_operator = installed.cluster, installed.topology
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
                # Their CRDs, managed apart from the operator's bundle, outlive them.
                depends_on=[*baseline.resources, *installed.topology_crds, *broker.topology_after],
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

    def _password(self) -> pulumi.Output[str]:
        secret: pulumi.Output[str] = pulumi.Output.secret(self._args.admin_password)
        return secret

    def _meta(self, name: str, namespace: pulumi.Input[str], **extra: Any) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(self._labels), **extra)

    # -- the two brokers -----------------------------------------------------------------------------

    def _in_cluster(
        self, baseline: Baseline, cluster_operator: pulumi.Resource, topology_operator: pulumi.Resource
    ) -> _Broker:
        args = self._args
        trust = operators.trust_internal_ca(
            self,
            self._name,
            certificates=args.certificates,
            provider=args.provider,
            topology_operator=topology_operator,
        )
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
                target=target,
                admin_password=args.admin_password,
                protect=args.protect,
            ),
            parent=self,
        )
        connection = self._connection_secret(baseline, broker.console_url)
        if args.mesh is not None:
            self._mesh_entry(baseline, broker.amqp_endpoints)
        operator_groups = self._operator_security_groups(topology_operator, target)
        return _Broker(
            management_uri=broker.console_url,
            amqp_endpoints=broker.amqp_endpoints,
            reference=objects.by_connection_secret(CONNECTION),
            topology_after=[topology_operator, connection, *operator_groups],
            ready=[broker.broker],
        )

    def _operator_security_groups(
        self, topology_operator: pulumi.Resource, target: MessagingAws
    ) -> list[pulumi.Resource]:
        """The topology operator's pods get its pod security group, which Amazon MQ's management API
        admits. Its bundle creates the namespace and the Deployment together, so the policy comes
        after them, and a checksum of the groups in the pod template then rolls the pods: only pods
        created after a SecurityGroupPolicy get its groups (EKS, "Security groups for pods")."""
        groups = list(target.topology_operator_security_groups)
        if not groups:
            return []
        name, workload = self._name, TOPOLOGY_OPERATOR_WORKLOAD
        policy = pod_security.security_group_policy(
            f"{name}-topology-operator-security-groups",
            workload=workload,
            namespace=OPERATOR_NAMESPACE,
            group_ids=groups,
            environment=self._args.environment,
            opts=self.on_cluster([topology_operator]),
        )
        checksum = pulumi.Output.all(*groups).apply(
            lambda ids: hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
        )
        rollout = k8s.apps.v1.DeploymentPatch(
            f"{name}-topology-operator-security-groups-rollout",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=workload, namespace=OPERATOR_NAMESPACE),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                        annotations={SECURITY_GROUPS_ANNOTATION: checksum}
                    )
                )
            ),
            opts=self.on_cluster([topology_operator, policy]),
        )
        return [policy, rollout]

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
            container_defaults=ContainerDefaults.of(resources),
            policies=policies,
            opts=self.on_cluster(args.depends_on),
            extra_namespace_labels={"istio-injection": "disabled"} if args.mesh is not None else None,
        )

    def _cluster(self, baseline: Baseline, cluster_operator: pulumi.Resource) -> pulumi.Resource:
        name, args = self._name, self._args
        internal = args.certificates.internal()
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
            opts=self.on_cluster([cluster_operator, *baseline.resources, tls], protect=args.protect),
        )
        if args.settings.replicas > 1:
            # Voluntary evictions (node drains) take one node at a time: the quorum queues keep a majority.
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-disruption-budget",
                metadata=self._meta(CLUSTER_NAME, baseline.name),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1, selector=netpol.selector(BROKER_PODS)
                ),
                opts=self.on_cluster(baseline.resources),
            )
        return cluster

    def _admin_user(self, baseline: Baseline, before: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The administrator Vault's RabbitMQ engine logs in as, with the password handed in."""
        credentials = self._admin_secret("admin-credentials", ADMIN_CREDENTIALS, baseline)
        return k8s.apiextensions.CustomResource(
            f"{self._name}-admin",
            api_version=objects.API_VERSION,
            kind="User",
            metadata=self._meta(ADMIN_USER, baseline.name),
            spec={
                "tags": ["administrator"],
                "importCredentialsSecret": {"name": ADMIN_CREDENTIALS},
                "rabbitmqClusterReference": objects.by_cluster_name(CLUSTER_NAME),
            },
            opts=self.on_cluster([*before, credentials]),
        )

    # -- aws -----------------------------------------------------------------------------------------

    def _connection_secret(self, baseline: Baseline, console_url: pulumi.Input[str]) -> pulumi.Resource:
        """Amazon MQ's management API for the topology operator (keys as it reads them)."""
        return self._admin_secret("connection", CONNECTION, baseline, uri=console_url)

    def _admin_secret(
        self, resource: str, object_name: str, baseline: Baseline, **more: pulumi.Input[str]
    ) -> pulumi.Resource:
        """The administrator's credentials (and ``more`` keys) in a Secret the topology operator reads."""
        return k8s.core.v1.Secret(
            f"{self._name}-{resource}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=baseline.name, labels=self._labels | TOPOLOGY_SECRET_LABELS
            ),
            type="Opaque",
            string_data={**more, "username": ADMIN_USER, "password": self._password()},
            opts=self.on_cluster(baseline.resources),
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
            opts=self.on_cluster(baseline.resources),
        )


def amqp_host(endpoints: Sequence[str]) -> str:
    """amqps://host:5671 -> host (a cluster broker has one endpoint in front of its nodes)."""
    if not endpoints:
        raise ValueError("the broker reported no AMQP endpoint")
    return endpoints[0].split("://", 1)[-1].rsplit(":", 1)[0]
