"""The `aws` target's cluster layer: network, EKS, Karpenter and the load-balancer controller.

It hands the rest of the platform the same ClusterHandle the `kubernetes` target does, so the
paved road deploys identically on both.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.targets.aws.eks import EksCluster, EksClusterArgs
from components.targets.aws.handles import EksHandle, NetworkHandle
from components.targets.aws.karpenter import Karpenter, KarpenterArgs
from components.targets.aws.lb_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.targets.aws.network import Network, NetworkArgs
from components.targets.kubernetes import ClusterHandle
from rampart.config.models import AwsTarget


@dataclass(frozen=True)
class AwsClusterArgs:
    environment: str
    settings: AwsTarget
    kubernetes_version: str
    # environment, owner and cost-center: on every taggable AWS resource, through the provider.
    tags: dict[str, str]
    protect: bool


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
                kubernetes_provider=eks.provider,
                depends_on=eks.ready,
            ),
            opts=child,
        )
        LoadBalancerController(
            f"{name}-lb-controller",
            LoadBalancerControllerArgs(
                eks=eks.handle,
                vpc_id=self.network.vpc_id,
                permissions_boundary=settings.permissions_boundary_arn,
                kubernetes_provider=eks.provider,
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
        )
        self.register_outputs({"clusterName": eks.handle.cluster_name, "vpcId": self.network.vpc_id})
