"""The AWS Load Balancer Controller: NLBs (and ALBs) for the Services and Ingresses that ask.

The controller role's documents live beside this module, in :mod:`.iam_policy`. With the service
mutator webhook off, the controller takes only the Services that ask for it
(``spec.loadBalancerClass: service.k8s.aws/nlb`` or the ``aws-load-balancer-type`` annotation);
it does not silently take over every Service of type LoadBalancer. Its load balancers are
internal unless a Service asks for ``internet-facing``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core import charts, quota
from components.targets.aws import iam, ownership
from components.targets.aws.handles import EksHandle
from components.targets.aws.lb_controller.iam_policy import CONCERNS, controller_policies

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
RELEASE_NAME = "aws-load-balancer-controller"
CHART = charts.Chart("https://aws.github.io/eks-charts", "aws-load-balancer-controller", "3.5.0")

REPLICAS = 2
# Requests equal limits: the controller answers admission webhooks, it must not be starved.
CONTROLLER_RESOURCES = {"cpu": "200m", "memory": "256Mi"}


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    eks: EksHandle
    vpc_id: pulumi.Input[str]
    permissions_boundary: str | None
    provider: k8s.Provider
    # The ownership tags (ownership.OWNERSHIP_KEYS): the NLB, listeners and target groups carry them.
    tags: Mapping[str, str]
    # What the release must wait for: the node group it runs on, the cluster add-ons.
    depends_on: Sequence[pulumi.Resource] = ()


def helm_values(
    *, cluster_name: pulumi.Input[str], region: str, vpc_id: pulumi.Input[str], tags: Mapping[str, str]
) -> dict[str, object]:
    return {
        "clusterName": cluster_name,
        # Given explicitly: pods cannot reach IMDS (hop limit 1) to discover them.
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicaCount": REPLICAS,
        "resources": quota.guaranteed(CONTROLLER_RESOURCES),
        "podDisruptionBudget": {"maxUnavailable": 1},
        # Only Services that name the NLB class (or annotation) get one: the webhook would
        # otherwise claim every new Service of type LoadBalancer.
        "enableServiceMutatorWebhook": False,
        # The classic (regional) WAF is legacy; WAFv2 stays available for ALBs.
        "enableWaf": False,
        # The controller creates the load balancers, listeners, target groups and security groups itself,
        # past the provider's default tags: "defaultTags are the tags to apply to all AWS resources managed
        # by this controller" (chart values; the --default-tags flag); they win over a Service's own tags
        # unless the EnableDefaultTagsLowPriority feature gate (off) says otherwise.
        "defaultTags": ownership.ownership_only(tags),
    }


class LoadBalancerController(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    # What a Service of type LoadBalancer (or an Ingress) it serves must wait for: on destroy that
    # object goes first, while the controller still runs to delete the NLB and drop its finalizer.
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:aws:LoadBalancerController", name, {}, opts)
        eks = args.eks
        documents = pulumi.Output.all(
            eks.cluster_name, eks.account_id, eks.partition, args.vpc_id, eks.cluster_security_group_id
        ).apply(
            lambda v: controller_policies(
                cluster_name=str(v[0]),
                account_id=str(v[1]),
                partition=str(v[2]),
                region=eks.region,
                vpc_id=str(v[3]),
                cluster_security_group_id=str(v[4]),
            )
        )
        identity = iam.controller_role(
            name,
            title="AWS Load Balancer Controller",
            documents=documents,
            concerns=CONCERNS,
            cluster_name=eks.cluster_name,
            cluster_arn=eks.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            permissions_boundary=args.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release = charts.release(
            f"{name}-release",
            CHART,
            release_name=RELEASE_NAME,
            namespace=NAMESPACE,
            values=helm_values(
                cluster_name=eks.cluster_name, region=eks.region, vpc_id=args.vpc_id, tags=args.tags
            ),
            # Pod Identity credentials are injected at pod start: the association must exist first.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.depends_on, identity],
            ),
        )
        self.role_arn = identity.role.arn
        self.register_outputs({"roleArn": self.role_arn})
