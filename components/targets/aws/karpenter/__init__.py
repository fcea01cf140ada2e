"""Karpenter: workload capacity for the EKS cluster.

What it is made of: an SQS queue fed by EventBridge with the EC2 events that end a node's
life early (spot interruption, rebalance, state change, scheduled maintenance), a
least-privilege controller role through EKS Pod Identity, a hardened namespace, the pinned
Helm chart, and the default EC2NodeClass + NodePool built from the typed `Karpenter` config.

The controller role's documents live beside this module, in :mod:`.iam_policy`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import charts, labels, netpol, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.targets.aws import KARPENTER_NAMESPACE as NAMESPACE
from components.targets.aws import iam, ownership
from components.targets.aws.addons import karpenter_ami_alias
from components.targets.aws.handles import EksHandle
from components.targets.aws.karpenter.iam_policy import CONCERNS, controller_policies, queue_policy
from components.targets.aws.max_pods import RESERVED_ENIS
from rampart.config.models import Karpenter as KarpenterLimits

SERVICE_ACCOUNT = "karpenter"
RELEASE_NAME = "karpenter"
CHART = charts.Chart("oci://public.ecr.aws/karpenter", "oci://public.ecr.aws/karpenter/karpenter", "1.14.1")

NODE_CLASS_NAME = "default"
NODE_POOL_NAME = "default"
# The tag the network layer puts on the private subnets and the cluster puts on the node security group.
DISCOVERY_TAG = "karpenter.sh/discovery"
# EC2 creates spot instances through this service-linked role; without it a spot launch fails and
# Karpenter falls back to on-demand (EC2 user guide, "Service-linked role for Spot Instance requests").
SPOT_SERVICE = "spot.amazonaws.com"
ROOT_VOLUME_SIZE = "50Gi"
NODE_EXPIRY = "720h"

REPLICAS = 2
# Requests equal limits (Guaranteed QoS): the controller is what adds capacity, it must not be evicted.
CONTROLLER_RESOURCES = {"cpu": "1", "memory": "1Gi"}
# Replicas, plus one surge pod during a rollout, plus one replacement while a node drains.
QUOTA_PODS = REPLICAS + 2
# The interruption messages are only useful for minutes; older ones describe nodes already gone.
QUEUE_RETENTION_SECONDS = 300


@dataclass(frozen=True)
class InterruptionEvent:
    key: str
    description: str
    pattern: dict[str, object]


INTERRUPTION_EVENTS = (
    InterruptionEvent(
        "spot-interruption",
        "EC2 Spot Instance Interruption Warning: two minutes before a spot node is reclaimed",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    ),
    InterruptionEvent(
        "rebalance",
        "EC2 Instance Rebalance Recommendation: a spot node is at elevated risk of interruption",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    ),
    InterruptionEvent(
        "state-change",
        "EC2 Instance State-change Notification: a node stopping or terminating outside Karpenter",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    ),
    InterruptionEvent(
        "scheduled-change",
        "AWS Health Event: scheduled maintenance of an EC2 instance",
        # Karpenter acts only on EC2 scheduled changes and drops every other health event.
        {
            "source": ["aws.health"],
            "detail-type": ["AWS Health Event"],
            "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
        },
    ),
)


@dataclass(frozen=True)
class KarpenterArgs:
    eks: EksHandle
    limits: KarpenterLimits
    environment: str
    permissions_boundary: str | None
    provider: k8s.Provider
    # The ownership tags (ownership.OWNERSHIP_KEYS): Karpenter's instances, volumes and interfaces carry them.
    tags: Mapping[str, str]
    # What the release must wait for: the system node group it runs on, the cluster add-ons.
    depends_on: Sequence[pulumi.Resource] = ()
    # The stack's pinned AMI release (aws.node_ami_release); None follows the latest (dev only).
    ami_release: str | None = None


# -- Kubernetes specs --------------------------------------------------------------------------


def helm_values(
    *,
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    queue_name: pulumi.Input[str],
    region: str,
) -> dict[str, object]:
    return {
        "settings": {
            "clusterName": cluster_name,
            "clusterEndpoint": endpoint,
            "interruptionQueue": queue_name,
            # Security groups for pods put a trunk interface on every node: it carries no pod
            # addresses, so max-pods leaves it out (see components/targets/aws/max_pods.py).
            "reservedENIs": str(RESERVED_ENIS),
        },
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": REPLICAS,
        "controller": {
            # Nodes allow IMDS only to the host (hop limit 1): the SDK learns its region from here.
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": quota.guaranteed(CONTROLLER_RESOURCES),
        },
    }


def node_class_spec(
    *,
    cluster_name: pulumi.Input[str],
    node_role_name: pulumi.Input[str],
    ebs_kms_key_arn: pulumi.Input[str],
    environment: str,
    ami_alias: str,
    tags: Mapping[str, str],
) -> dict[str, object]:
    return {
        # The stack's pinned release (al2023@v<date>), the same one the system node group boots.
        "amiSelectorTerms": [{"alias": ami_alias}],
        "role": node_role_name,
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        # Nodes live in private subnets; make it explicit.
        "associatePublicIPAddress": False,
        # IMDSv2 only, and a hop limit of 1 so pods cannot reach the node's credentials.
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": ROOT_VOLUME_SIZE,
                    "volumeType": "gp3",
                    "encrypted": True,
                    "kmsKeyID": ebs_kms_key_arn,
                    "deleteOnTermination": True,
                },
            }
        ],
        # On every instance, volume, interface and launch template Karpenter creates, which the provider's
        # default tags never see. None of these keys is one Karpenter reserves (the CRD refuses
        # eks:eks-cluster-name, kubernetes.io/cluster/*, karpenter.sh/nodepool, karpenter.sh/nodeclaim and
        # karpenter.k8s.aws/ec2nodeclass); the controller role may set any tag at creation
        # (iam_policy AllowScopedResourceCreationTagging), and only Karpenter's own keys afterwards.
        "tags": {
            labels.PART_OF: "rampart",
            labels.ENVIRONMENT: environment,
            **ownership.ownership_only(tags),
        },
    }


def node_pool_spec(limits: KarpenterLimits) -> dict[str, object]:
    return {
        "template": {
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": NODE_CLASS_NAME,
                },
                "requirements": [
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": list(limits.capacity_types),
                    },
                    {
                        "key": "karpenter.k8s.aws/instance-category",
                        "operator": "In",
                        "values": list(limits.instance_categories),
                    },
                    # Current generations only (ENA, gp3-optimised).
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                    # Nitro only: security groups for pods need a trunk interface, which only Nitro
                    # instances carry (EKS user guide, security groups for pods: "supported by most
                    # Nitro-based Amazon EC2 instance families"); generation > 2 still admits c4/m4/r4 (Xen).
                    # Karpenter's well-known label: https://karpenter.sh/docs/concepts/scheduling/
                    {"key": "karpenter.k8s.aws/instance-hypervisor", "operator": "In", "values": ["nitro"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                # Nodes are replaced at least monthly: fresh AMIs, no long-lived drift.
                "expireAfter": NODE_EXPIRY,
            }
        },
        "limits": {"cpu": str(limits.cpu_limit), "memory": f"{limits.memory_limit_gb}Gi"},
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "1m",
            # At most a tenth of the nodes are voluntarily disrupted at once.
            "budgets": [{"nodes": "10%"}],
        },
    }


def quota_hard() -> dict[str, str]:
    cpu, memory = CONTROLLER_RESOURCES["cpu"], CONTROLLER_RESOURCES["memory"]
    return {
        "pods": str(QUOTA_PODS),
        "requests.cpu": quota.times(cpu, QUOTA_PODS),
        "requests.memory": quota.times(memory, QUOTA_PODS),
        "limits.cpu": quota.times(cpu, QUOTA_PODS),
        "limits.memory": quota.times(memory, QUOTA_PODS),
        "persistentvolumeclaims": "0",
    } | quota.NOT_EXPOSED


def allow_https_egress() -> netpol.Spec:
    """The controller calls the Kubernetes API server and the AWS APIs (EC2, SQS, SSM, pricing, EKS,
    IAM), all over TLS on 443, plus the Pod Identity agent on the node for its credentials."""
    return netpol.egress(
        {labels.NAME: RELEASE_NAME}, [netpol.EgressRule(ports=netpol.tcp(443)), iam.to_pod_identity_agent()]
    )


# -- the component -----------------------------------------------------------------------------


class Karpenter(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:aws:Karpenter", name, {}, opts)
        eks = args.eks

        def on_cluster(depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
            # Every Kubernetes object names its provider: none may fall back to the ambient one.
            return pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(depends_on))

        queue = self._interruption_queue(name, eks)
        identity = self._controller_identity(name, args, queue)

        # -- namespace baseline
        common = labels.common(args.environment) | {labels.NAME: RELEASE_NAME}
        # The chart's pod meets `restricted`: non-root uid 65532, no privilege escalation, ALL
        # capabilities dropped, read-only root fs, RuntimeDefault seccomp, no host namespaces.
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=common,
            quota=quota_hard(),
            container_defaults=ContainerDefaults(requests=CONTROLLER_RESOURCES, limits=CONTROLLER_RESOURCES),
            policies={"allow-https-egress": allow_https_egress()},
            opts=on_cluster(),
        )
        ns, baseline = created.name, created.resources

        # -- the controller
        release = charts.release(
            f"{name}-release",
            CHART,
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(
                cluster_name=eks.cluster_name,
                endpoint=eks.endpoint,
                queue_name=queue.name,
                region=eks.region,
            ),
            # Pod Identity credentials are injected at pod start: the association must exist first.
            opts=on_cluster(depends_on=[*args.depends_on, identity, *baseline]),
        )

        # -- default capacity (the CRDs come with the chart)
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_CLASS_NAME, labels=common),
            spec=node_class_spec(
                cluster_name=eks.cluster_name,
                node_role_name=eks.karpenter_node_role.name,
                ebs_kms_key_arn=eks.ebs_kms_key_arn,
                environment=args.environment,
                ami_alias=karpenter_ami_alias(args.ami_release),
                tags=args.tags,
            ),
            opts=on_cluster(
                depends_on=[
                    release,
                    *eks.karpenter_node_role_policies,
                    *self._spot_service_linked_role(name, args),
                ]
            ),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_POOL_NAME, labels=common),
            spec=node_pool_spec(args.limits),
            opts=on_cluster(depends_on=[release, node_class]),
        )

        self.namespace = ns
        self.queue_name = queue.name
        self.role_arn = identity.role.arn
        self.register_outputs(
            {"namespace": self.namespace, "interruptionQueue": self.queue_name, "roleArn": self.role_arn}
        )

    def _spot_service_linked_role(self, name: str, args: KarpenterArgs) -> list[pulumi.Resource]:
        """The account's EC2 Spot service-linked role, where Karpenter may launch spot and the stack owns
        it (aws.karpenter.create_spot_service_linked_role: false where another stack of the account
        does, since IAM refuses to create it twice). Retained on destroy: it is the account's, other
        stacks' spot instances use it, and IAM refuses to delete it while any exist."""
        limits = args.limits
        if "spot" not in limits.capacity_types or not limits.create_spot_service_linked_role:
            return []
        role = aws.iam.ServiceLinkedRole(
            f"{name}-spot",
            aws_service_name=SPOT_SERVICE,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        return [role]

    def _interruption_queue(self, name: str, eks: EksHandle) -> aws.sqs.Queue:
        """The SQS queue EventBridge feeds with the EC2 events that end a node's life early."""
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=pulumi.Output.concat(eks.cluster_name, "-karpenter"),
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        rules: list[aws.cloudwatch.EventRule] = []
        for event in INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event.key}",
                name=pulumi.Output.concat(eks.cluster_name, "-karpenter-", event.key),
                description=event.description,
                event_pattern=json.dumps(event.pattern, sort_keys=True),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event.key}",
                rule=rule.name,
                target_id="karpenter-interruption-queue",
                arn=queue.arn,
                opts=child,
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-interruption",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *[rule.arn for rule in rules]).apply(
                lambda arns: queue_policy(str(arns[0]), [str(arn) for arn in arns[1:]])
            ),
            opts=child,
        )
        return queue

    def _controller_identity(
        self, name: str, args: KarpenterArgs, queue: aws.sqs.Queue
    ) -> iam.PodIdentityRole:
        eks = args.eks
        documents = pulumi.Output.all(
            eks.cluster_name,
            eks.cluster_arn,
            eks.account_id,
            eks.partition,
            queue.arn,
            eks.karpenter_node_role.arn,
            eks.ebs_kms_key_arn,
        ).apply(
            lambda v: controller_policies(
                cluster_name=str(v[0]),
                cluster_arn=str(v[1]),
                account_id=str(v[2]),
                partition=str(v[3]),
                region=eks.region,
                queue_arn=str(v[4]),
                node_role_arn=str(v[5]),
                ebs_kms_key_arn=str(v[6]),
            )
        )
        return iam.controller_role(
            name,
            title="Karpenter controller",
            documents=documents,
            concerns=CONCERNS,
            cluster_name=eks.cluster_name,
            cluster_arn=eks.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            permissions_boundary=args.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )


# The fewest vCPUs of any instance the NodePool admits (amd64, Nitro, generation > 2, categories c, m,
# r, t): 2 (t3.nano, c5.large, m6i.large, ...).
SMALLEST_NODE_VCPUS = 2


def max_nodes(cpu_limit: int) -> int:
    """The most nodes Karpenter can launch under its CPU limit: it stops launching only once the limit is
    exceeded ("Limits prevent Karpenter from creating new instances once the limit is exceeded",
    https://karpenter.sh/v1.14/concepts/nodepools/#speclimits), so the last launch may overshoot by a node."""
    return cpu_limit // SMALLEST_NODE_VCPUS + 1
