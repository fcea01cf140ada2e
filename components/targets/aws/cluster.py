"""The `aws` target's cluster layer: network, EKS, Karpenter and the load-balancer controller.

It hands the rest of the platform the same ClusterHandle the `kubernetes` target does, so the
paved road deploys identically on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.contract import ClusterHandle, TargetHandle
from components.core.protection import is_protected
from components.messaging import OPERATOR_NAMESPACE, TOPOLOGY_OPERATOR_WORKLOAD
from components.targets.aws.eks import EksCluster, EksClusterArgs
from components.targets.aws.handles import AwsContext, EksHandle, NetworkHandle, PodIdentity
from components.targets.aws.karpenter import Karpenter, KarpenterArgs
from components.targets.aws.karpenter import max_nodes as karpenter_max_nodes
from components.targets.aws.lb_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.targets.aws.network import Network, NetworkArgs
from components.targets.aws.ownership import ownership_tags
from components.targets.aws.pod_security import PodSecurityGroups, PodSecurityGroupsArgs
from components.targets.aws.team_access import TeamAccess
from rampart.config import PlatformConfig
from rampart.config.models import AwsTarget


@dataclass(frozen=True)
class AwsClusterArgs:
    environment: str
    settings: AwsTarget
    kubernetes_version: str
    # environment, owner and cost-center: on every taggable AWS resource, through the provider.
    tags: dict[str, str]
    protect: bool
    # The teams whose IAM roles get access entries scoped to their namespaces.
    teams: Sequence[TeamAccess] = ()


class AwsCluster(pulumi.ComponentResource):
    handle: ClusterHandle
    aws_provider: aws.Provider
    network: NetworkHandle
    eks: EksHandle

    def __init__(self, name: str, args: AwsClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:aws:AwsCluster", name, {}, opts)
        settings = args.settings
        cluster_name = f"rampart-{args.environment}"
        self.aws_provider = aws.Provider(
            f"{name}-aws",
            region=settings.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        invoke = pulumi.InvokeOptions(provider=self.aws_provider)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        child = pulumi.ResourceOptions(parent=self, providers=[self.aws_provider])

        self.network = Network(
            f"{name}-network",
            NetworkArgs(
                environment=args.environment,
                cluster_name=cluster_name,
                vpc_cidr=settings.vpc_cidr,
                availability_zones=settings.availability_zones,
                nat_gateways=settings.nat_gateways,
                flow_log_retention_days=settings.flow_log_retention_days,
                account_id=account_id,
                partition=partition,
                region=settings.region,
                permissions_boundary=settings.permissions_boundary_arn,
                protect=args.protect,
            ),
            opts=child,
        ).handle
        eks = EksCluster(
            f"{name}-eks",
            EksClusterArgs(
                cluster_name=cluster_name,
                kubernetes_version=args.kubernetes_version,
                network=self.network,
                settings=settings,
                account_id=account_id,
                partition=partition,
                protect=args.protect,
                tags=args.tags,
                teams=args.teams,
            ),
            opts=child,
        )
        self.eks = eks.handle
        Karpenter(
            f"{name}-karpenter",
            KarpenterArgs(
                eks=eks.handle,
                limits=settings.karpenter,
                environment=args.environment,
                permissions_boundary=settings.permissions_boundary_arn,
                provider=eks.provider,
                tags=args.tags,
                depends_on=eks.ready,
                ami_release=settings.node_ami_release,
            ),
            opts=child,
        )
        lb_controller = LoadBalancerController(
            f"{name}-lb-controller",
            LoadBalancerControllerArgs(
                eks=eks.handle,
                vpc_id=self.network.vpc_id,
                permissions_boundary=settings.permissions_boundary_arn,
                provider=eks.provider,
                tags=args.tags,
                depends_on=eks.ready,
            ),
            opts=child,
        )
        self.handle = ClusterHandle(
            provider=eks.provider,
            name=cluster_name,
            kubernetes_version=args.kubernetes_version,
            multi_zone=len(settings.availability_zones) > 1,
            ready=eks.ready,
            # DaemonSets run on every node: the system group at its largest, and Karpenter's at theirs.
            max_nodes=settings.system_nodes.max_size + karpenter_max_nodes(settings.karpenter.cpu_limit),
            load_balancer_ready=[lb_controller.release],
        )
        self.register_outputs({"clusterName": eks.handle.cluster_name, "vpcId": self.network.vpc_id})


def aws_target(
    config: PlatformConfig, parent: pulumi.Resource, database_clients: Sequence[str] = ()
) -> TargetHandle:
    """EKS in its own VPC. ``database_clients`` (services with a database or a queue, Vault and the
    broker's topology operator: data_layer.security_group_clients) get a pod security group each,
    which their databases and the broker admit; their pods also keep the cluster's group."""
    assert config.aws is not None  # the config loader requires `aws` settings for this target
    environment = config.environment
    cluster = AwsCluster(
        "cluster",
        AwsClusterArgs(
            environment=environment,
            settings=config.aws,
            kubernetes_version=config.kubernetes.version,
            tags=ownership_tags(environment, config.owner, config.cost_center),
            protect=is_protected(environment),
            teams=[
                TeamAccess(team.name, team.group, team.aws_role_arns, config.services_of(team.name))
                for team in config.teams
            ],
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    cloud_opts = pulumi.ResourceOptions(parent=parent, providers=[cluster.aws_provider])
    eks = cluster.eks
    tags = {"environment": environment, "owner": config.owner}
    groups = PodSecurityGroups(
        "pod-security-groups",
        PodSecurityGroupsArgs(
            environment=environment,
            vpc_id=cluster.network.vpc_id,
            cluster_security_group_id=eks.cluster_security_group_id,
            # A service's (and Vault's) namespace is its own name; the topology operator runs in
            # the operators' namespace.
            workloads={
                workload: {TOPOLOGY_OPERATOR_WORKLOAD: OPERATOR_NAMESPACE}.get(workload, workload)
                for workload in database_clients
            },
            # Each workload attaches its groups itself, before its pods start.
            provider=None,
            tags=tags,
        ),
        opts=cloud_opts,
    )
    return TargetHandle(
        cluster=cluster.handle,
        aws=AwsContext(
            pod_identity=PodIdentity(
                cluster_name=eks.cluster_name,
                cluster_arn=eks.cluster_arn,
                account_id=eks.account_id,
                partition=eks.partition,
                region=eks.region,
                permissions_boundary=config.aws.permissions_boundary_arn,
            ),
            network=cluster.network,
            cluster_security_group_id=eks.cluster_security_group_id,
            tags=tags,
            log_retention_days=config.aws.control_plane_log_retention_days,
        ),
        cloud_opts=cloud_opts,
        pod_security_groups={
            workload: [group, eks.cluster_security_group_id]
            for workload, group in groups.security_group_ids.items()
        },
    )
