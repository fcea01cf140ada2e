"""The AWS Load Balancer Controller's IAM documents, built in Python beside the component that uses them
(as terraform-aws-eks keeps policy.tf beside main.tf).

They follow upstream's iam_policy.json (v3.5), tightened: where upstream only requires the ownership tag
``elbv2.k8s.aws/cluster`` to be *present*, these require it to name *this* cluster, and every ARN is
bound to this account and region.
"""

from __future__ import annotations

from typing import Any

from components.targets.aws import iam

# One managed policy per concern: together they exceed IAM's 6,144-character managed-policy limit.
CONCERNS = ("discovery", "security-groups", "load-balancers")
# The tag the controller puts on everything it creates, valued with the cluster name.
CLUSTER_TAG = "elbv2.k8s.aws/cluster"


class _Account(iam.ClusterScope):
    """The names the documents scope this cluster's load balancers by: the ownership tag."""

    @property
    def elb(self) -> str:
        return self.arn("elasticloadbalancing")

    @property
    def load_balancers(self) -> list[str]:
        return [f"{self.elb}:loadbalancer/app/*/*", f"{self.elb}:loadbalancer/net/*/*"]

    @property
    def ours(self) -> dict[str, Any]:
        """Resources tagged as this cluster's."""
        return {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": self.cluster_name}}

    @property
    def tagged_ours(self) -> dict[str, str]:
        """Requests that tag what they create as this cluster's."""
        return {f"aws:RequestTag/{CLUSTER_TAG}": self.cluster_name}

    @property
    def keeps_owner(self) -> dict[str, Any]:
        """Tag changes on this cluster's resources that leave the ownership tag itself alone."""
        return {
            "StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": self.cluster_name},
            "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"},
        }


def controller_policies(
    *,
    cluster_name: str,
    account_id: str,
    partition: str,
    region: str,
    vpc_id: str,
    cluster_security_group_id: str,
) -> dict[str, str]:
    """The controller's permissions by concern, one document each."""
    account = _Account(cluster_name, account_id, partition, region)
    return {
        "discovery": iam.document(_discovery(account)),
        "security-groups": iam.document(_security_groups(account, vpc_id, cluster_security_group_id)),
        "load-balancers": iam.document(_load_balancers(account)),
    }


def _discovery(account: _Account) -> list[iam.PolicyStatement]:
    """Reads (networks, load balancers, certificates, Shield), the service-linked role, WAFv2 ACLs."""
    partition, account_id, region, elb = account.partition, account.account_id, account.region, account.elb
    ours = account.ours
    return [
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
        iam.allow_reads_in(
            region,
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
            Sid="Describe",
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


def _security_groups(
    account: _Account, vpc_id: str, cluster_security_group_id: str
) -> list[iam.PolicyStatement]:
    """Created in this VPC, owned by this cluster."""
    ec2, ours, tagged_ours, keeps_owner = (
        account.arn("ec2"),
        account.ours,
        account.tagged_ours,
        account.keeps_owner,
    )
    security_groups = f"{ec2}:security-group/*"
    return [
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


def _load_balancers(account: _Account) -> list[iam.PolicyStatement]:
    """Created with, and then scoped by, the cluster tag."""
    elb, ours, tagged_ours, keeps_owner = account.elb, account.ours, account.tagged_ours, account.keeps_owner
    load_balancers = account.load_balancers
    target_groups = f"{elb}:targetgroup/*/*"
    listeners = [
        f"{elb}:listener/app/*/*/*",
        f"{elb}:listener/net/*/*/*",
        f"{elb}:listener-rule/app/*/*/*",
        f"{elb}:listener-rule/net/*/*/*",
    ]
    return [
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
