"""Who owns what costs money on aws: the ownership tags, everywhere the provider's default tags do not reach.

The AWS provider's ``default_tags`` (components/targets/aws/cluster.py) tag every resource Pulumi creates.
They do not reach what AWS or a controller creates on the stack's behalf, which is most of the bill:

- the system node group's instances, root volumes and interfaces: EKS launches them from our launch
  template, whose ``TagSpecifications`` are the only tags they get ("the tags that you specify in the
  launch template are applied to the instances, volumes and network interfaces", EC2 user guide,
  launch template ``TagSpecifications``; EKS user guide, "Customize managed nodes with launch templates");
- Karpenter's instances, volumes, interfaces and launch templates: the EC2NodeClass ``spec.tags``
  ("Karpenter adds tags to all resources it creates", https://karpenter.sh/docs/concepts/nodeclasses/#spectags);
- EBS persistent volumes: the EBS CSI driver's ``tagSpecification_<n>: "key=value"`` StorageClass
  parameters (aws-ebs-csi-driver docs/tagging.md, "StorageClass Tagging", driver v1.6.0 and later);
- the NLB, its listeners and target groups: the AWS Load Balancer Controller's ``defaultTags`` chart value
  (its ``--default-tags`` flag, "tags to apply to all AWS resources managed by this controller").

All four carry exactly the keys of the provider's default tags (:data:`OWNERSHIP_KEYS`), so one cost
allocation report groups everything a stack costs.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.targets.aws import iam

# The provider's default tag keys (aws_target builds them with ownership_tags): one spelling everywhere.
OWNERSHIP_KEYS = ("environment", "owner", "cost-center")
# What an EC2 launch template tags at launch besides the template itself: the instance, its EBS volumes
# and its network interfaces (LaunchTemplateTagSpecificationRequest.ResourceType).
LAUNCHED_RESOURCE_TYPES = ("instance", "volume", "network-interface")
# The EBS CSI driver reads every StorageClass parameter with this prefix as one "key=value" tag.
TAG_SPECIFICATION_PREFIX = "tagSpecification_"


def ownership_tags(environment: str, owner: str, cost_center: str) -> dict[str, str]:
    """The stack's ownership tags: the provider's default tags and everything that escapes them."""
    tags = dict(zip(OWNERSHIP_KEYS, (environment, owner, cost_center), strict=True))
    empty = [key for key, value in tags.items() if not value]
    if empty:
        raise ValueError(f"ownership tags {', '.join(empty)} are empty")
    return tags


def ownership_only(tags: Mapping[str, str]) -> dict[str, str]:
    """The ownership keys of ``tags``; each must be there (a missing one is a wiring error)."""
    missing = [key for key in OWNERSHIP_KEYS if not tags.get(key)]
    if missing:
        raise ValueError(f"ownership tags lack {', '.join(missing)}")
    return {key: tags[key] for key in OWNERSHIP_KEYS}


def storage_class_tag_parameters(tags: Mapping[str, str]) -> dict[str, str]:
    """``tagSpecification_1: "cost-center=cc-1"``, ... in key order. The driver splits each value at its
    first ``=`` and renders it as a Go template, so a key may not hold ``=`` and no value may open a
    template (``{{``)."""
    parameters: dict[str, str] = {}
    for index, (key, value) in enumerate(sorted(ownership_only(tags).items()), start=1):
        if "=" in key or "{{" in value:
            raise ValueError(f"tag {key}={value!r} cannot be passed as an EBS CSI tagSpecification")
        parameters[f"{TAG_SPECIFICATION_PREFIX}{index}"] = f"{key}={value}"
    return parameters


def ebs_key_statements(key_arn: str, region: str, account_id: str) -> list[iam.PolicyStatement]:
    """What the EBS CSI driver's role may do with the cluster's EBS key: only through EC2, for volumes.

    The key policy (kms.key_policy ``via_ec2``) already admits any principal of the account through
    EC2. These statements stay on the role anyway, under the same conditions, because they are not
    redundant everywhere: a role with a permissions boundary is still limited by the boundary for what a
    resource policy grants to it, and the identity side documents what the driver needs. They add no
    reach: every call must come through EC2 in this region and account (``kms:ViaService``,
    ``kms:CallerAccount``), and a grant may only be for an AWS resource (``kms:GrantIsForAWSResource``:
    EC2 attaching the volume). This is the driver's own documented KMS policy (aws-ebs-csi-driver
    docs/install.md, "KMS key": CreateGrant/ListGrants/RevokeGrant with kms:GrantIsForAWSResource, the
    data-key actions beside them) narrowed with kms:ViaService (AWS KMS developer guide, "kms:ViaService";
    the AWS managed aws/ebs key policy uses the same pair of conditions)."""
    through_ec2 = {"kms:CallerAccount": account_id, "kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return [
        iam.allow(
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
            [key_arn],
            Sid="EbsVolumeEncryptionThroughEc2",
            Condition={"StringEquals": through_ec2},
        ),
        iam.allow(
            ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            [key_arn],
            Sid="EbsVolumeGrantsForAwsResources",
            Condition={"StringEquals": through_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
    ]
