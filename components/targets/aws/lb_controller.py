"""The AWS Load Balancer Controller: NLBs (and ALBs) for the Services and Ingresses that ask.

The controller role follows upstream's iam_policy.json (v3.5), tightened: where upstream only
requires the ownership tag ``elbv2.k8s.aws/cluster`` to be *present*, this policy requires it
to name *this* cluster, and every ARN is bound to this account and region. With the service
mutator webhook off, the controller takes only the Services that ask for it
(``spec.loadBalancerClass: service.k8s.aws/nlb`` or the ``aws-load-balancer-type`` annotation);
it does not silently take over every Service of type LoadBalancer. Its load balancers are
internal unless a Service asks for ``internet-facing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import charts
from components.targets.aws import iam
from components.targets.aws.handles import EksHandle

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
RELEASE_NAME = "aws-load-balancer-controller"
CHART = "aws-load-balancer-controller"
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
CHART_VERSION = "3.5.0"

REPLICAS = 2
# Requests equal limits: the controller answers admission webhooks, it must not be starved.
CONTROLLER_RESOURCES = {"cpu": "200m", "memory": "256Mi"}
CONTROLLER_POLICY_CONCERNS = ("discovery", "security-groups", "load-balancers")
# The tag the controller puts on everything it creates, valued with the cluster name.
CLUSTER_TAG = "elbv2.k8s.aws/cluster"


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    eks: EksHandle
    vpc_id: pulumi.Input[str]
    permissions_boundary: str | None
    kubernetes_provider: k8s.Provider
    # What the release must wait for: the node group it runs on, the cluster add-ons.
    depends_on: Sequence[pulumi.Resource] = ()


def controller_policies(
    *,
    cluster_name: str,
    account_id: str,
    partition: str,
    region: str,
    vpc_id: str,
    cluster_security_group_id: str,
) -> dict[str, str]:
    """The controller's permissions by concern, one document each: together they exceed IAM's
    6,144-character managed-policy limit."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account_id}"
    security_groups = f"{ec2}:security-group/*"
    load_balancers = [f"{elb}:loadbalancer/app/*/*", f"{elb}:loadbalancer/net/*/*"]
    target_groups = f"{elb}:targetgroup/*/*"
    listeners = [
        f"{elb}:listener/app/*/*/*",
        f"{elb}:listener/net/*/*/*",
        f"{elb}:listener-rule/app/*/*/*",
        f"{elb}:listener-rule/net/*/*/*",
    ]
    ours = {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}}
    tagged_ours = {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}
    # Tag changes on our resources may not touch the ownership tag itself.
    keeps_owner = {
        "StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name},
        "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"},
    }
    discovery = [
        iam.allow(
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:{partition}:iam::{account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
                "AWSServiceRoleForElasticLoadBalancing"
            ],
            Sid="ElbServiceLinkedRole",
            Condition={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
        # EC2 and ELB Describe* calls support no resource-level permissions: they need "*".
        iam.allow(
            [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstances",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeIpamPools",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeTags",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeVpcs",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:DescribeCapacityReservation",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTrustStores",
            ],
            "*",
            Sid="Describe",
            Condition={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        # Certificate discovery for TLS listeners; listing names no certificate, so it needs "*".
        iam.allow(["acm:ListCertificates"], "*", Sid="ListCertificates"),
        iam.allow(
            ["acm:DescribeCertificate"],
            [f"arn:{partition}:acm:{region}:{account_id}:certificate/*"],
            Sid="DescribeCertificates",
        ),
        # WAFv2 web ACLs on ALBs that ask for one (the classic WAF is disabled in the chart values).
        iam.allow(
            [
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
            ],
            [f"arn:{partition}:wafv2:{region}:{account_id}:regional/webacl/*/*"],
            Sid="WebAcls",
        ),
        iam.allow(
            ["elasticloadbalancing:SetWebAcl"],
            [f"{elb}:loadbalancer/app/*/*"],
            Sid="SetWebAclOnOurAlbs",
            Condition=ours,
        ),
        # Shield Advanced state, read only (protections are not managed by the controller here);
        # the subscription is account-wide and has no ARN to scope to.
        iam.allow(["shield:DescribeProtection", "shield:GetSubscriptionState"], "*", Sid="ShieldRead"),
    ]
    # Created in this VPC, owned by this cluster.
    security_group_statements = [
        iam.allow(
            ["ec2:CreateSecurityGroup"],
            [f"{ec2}:vpc/{vpc_id}"],
            Sid="CreateSecurityGroupInClusterVpc",
        ),
        iam.allow(
            ["ec2:CreateSecurityGroup"],
            [security_groups],
            Sid="CreateOwnedSecurityGroup",
            Condition={"StringEquals": tagged_ours},
        ),
        iam.allow(
            ["ec2:CreateTags"],
            [security_groups],
            Sid="TagSecurityGroupOnCreate",
            Condition={"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **tagged_ours}},
        ),
        iam.allow(
            ["ec2:CreateTags", "ec2:DeleteTags"],
            [security_groups],
            Sid="RetagOwnedSecurityGroup",
            Condition=keeps_owner,
        ),
        iam.allow(
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:RevokeSecurityGroupIngress",
            ],
            [security_groups],
            Sid="ManageOwnedSecurityGroups",
            Condition=ours,
        ),
        # Traffic from the load balancers to the pods: rules on the nodes' (cluster) security group.
        iam.allow(
            ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            [f"{ec2}:security-group/{cluster_security_group_id}"],
            Sid="AllowLoadBalancerTrafficToNodes",
        ),
    ]
    # Created with, and then scoped by, the cluster tag.
    load_balancer_statements = [
        iam.allow(
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            [*load_balancers, target_groups],
            Sid="CreateOwnedLoadBalancers",
            Condition={"StringEquals": tagged_ours},
        ),
        iam.allow(
            ["elasticloadbalancing:AddTags"],
            [*load_balancers, target_groups],
            Sid="TagOnCreate",
            Condition={
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateLoadBalancer", "CreateTargetGroup"],
                    **tagged_ours,
                }
            },
        ),
        iam.allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            [*load_balancers, target_groups],
            Sid="RetagOwnedLoadBalancers",
            Condition=keeps_owner,
        ),
        iam.allow(
            [
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
            ],
            [*load_balancers, target_groups, *listeners[:2]],
            Sid="ManageOwnedLoadBalancers",
            Condition=ours,
        ),
        # Listeners and rules live under a load balancer; upstream leaves them untagged-scoped,
        # here they are at least bound to this account and region.
        iam.allow(
            [
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:SetRulePriorities",
            ],
            [*load_balancers, *listeners],
            Sid="ManageListeners",
        ),
        iam.allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            listeners,
            Sid="TagListeners",
        ),
        # TargetGroupBindings may point at target groups made outside the cluster (untagged).
        iam.allow(
            ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"],
            [target_groups],
            Sid="RegisterTargets",
        ),
    ]
    return {
        "discovery": iam.document(discovery),
        "security-groups": iam.document(security_group_statements),
        "load-balancers": iam.document(load_balancer_statements),
    }


def helm_values(
    *, cluster_name: pulumi.Input[str], region: str, vpc_id: pulumi.Input[str]
) -> dict[str, object]:
    resources = dict(CONTROLLER_RESOURCES)
    return {
        "clusterName": cluster_name,
        # Given explicitly: pods cannot reach IMDS (hop limit 1) to discover them.
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicaCount": REPLICAS,
        "resources": {"requests": resources, "limits": dict(resources)},
        "podDisruptionBudget": {"maxUnavailable": 1},
        # Only Services that name the NLB class (or annotation) get one: the webhook would
        # otherwise claim every new Service of type LoadBalancer.
        "enableServiceMutatorWebhook": False,
        # The classic (regional) WAF is legacy; WAFv2 stays available for ALBs.
        "enableWaf": False,
    }


def _document(documents: pulumi.Output[dict[str, str]], concern: str) -> pulumi.Output[str]:
    return documents.apply(lambda by_concern: by_concern[concern])


class LoadBalancerController(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]

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
        child = pulumi.ResourceOptions(parent=self)
        policies = [
            aws.iam.Policy(
                f"{name}-{concern}",
                description=f"AWS Load Balancer Controller: {concern}",
                policy=_document(documents, concern),
                opts=child,
            )
            for concern in CONTROLLER_POLICY_CONCERNS
        ]
        identity = iam.PodIdentityRole(
            f"{name}-controller",
            cluster_name=eks.cluster_name,
            cluster_arn=eks.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            managed_policy_arns=[policy.arn for policy in policies],
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=NAMESPACE,
            values=helm_values(cluster_name=eks.cluster_name, region=eks.region, vpc_id=args.vpc_id),
            # Pod Identity credentials are injected at pod start: the association must exist first.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.kubernetes_provider,
                depends_on=[*args.depends_on, identity],
            ),
        )
        self.role_arn = identity.role.arn
        self.register_outputs({"roleArn": self.role_arn})
