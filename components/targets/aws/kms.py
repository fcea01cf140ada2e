"""Customer-managed KMS keys: one per purpose, rotation on, key policy built in Python."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_aws as aws

from components.targets.aws import iam

# What a principal needs to encrypt and decrypt with a key (not to administer it).
KEY_USE = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
# Deleting a key makes everything it encrypted unreadable: give people time to notice.
DELETION_WINDOW_DAYS = 30


def key_policy(
    account_id: str,
    partition: str,
    region: str,
    *,
    service_principals: Sequence[str] = (),
    log_group_prefixes: Sequence[str] = (),
    via_ec2: bool = False,
) -> str:
    """The account administers the key (IAM policies decide who may use it); the named AWS
    services may use it directly, CloudWatch Logs only for log groups under the given prefixes."""
    root = f"arn:{partition}:iam::{account_id}:root"
    statements: list[iam.PolicyStatement] = [
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            # kms:* on the key itself is how AWS delegates key access to IAM; it is scoped to this key.
            "Action": ["kms:*"],
            "Resource": "*",
        }
    ]
    if service_principals:
        statements.append(
            {
                "Sid": "ServicesUse",
                "Effect": "Allow",
                "Principal": {"Service": sorted(service_principals)},
                "Action": KEY_USE,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    if log_group_prefixes:
        arns = [
            f"arn:{partition}:logs:{region}:{account_id}:log-group:{prefix}*" for prefix in log_group_prefixes
        ]
        statements.append(
            {
                "Sid": "CloudWatchLogsUse",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": KEY_USE,
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": sorted(arns)}},
            }
        )
    if via_ec2:
        # EBS volumes: whoever launches through EC2 in this account (Auto Scaling, EC2 Fleet for
        # Karpenter, the EBS CSI driver) may use the key, and only through EC2: the pattern of
        # AWS's own aws/ebs key, which needs no service-linked role to exist beforehand.
        statements.append(
            {
                "Sid": "UseThroughEC2",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                # EC2 attaches volumes through grants.
                "Action": ["kms:CreateGrant", *KEY_USE],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account_id,
                        "kms:ViaService": f"ec2.{region}.amazonaws.com",
                    }
                },
            }
        )
    return json_document(statements)


def json_document(statements: list[iam.PolicyStatement]) -> str:
    # Not iam.document(): a key policy grants the account root kms:* on this one key.
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class Account(Protocol):
    """Where a key is made: any handle or arguments naming the account, partition and region."""

    @property
    def account_id(self) -> pulumi.Input[str]: ...

    @property
    def partition(self) -> pulumi.Input[str]: ...

    @property
    def region(self) -> str: ...


@dataclass(frozen=True)
class Location:
    """An :class:`Account` for callers that hold the three apart."""

    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str


def customer_key(
    name: str,
    description: str,
    account: Account,
    *,
    service_principals: Sequence[str] = (),
    log_group_prefixes: Sequence[str] = (),
    via_ec2: bool = False,
    protect: bool,
    opts: pulumi.ResourceOptions | None = None,
) -> aws.kms.Key:
    """A symmetric key with yearly rotation. ``protect`` is the stack's one rule
    (components.core.protection.is_protected, handed down through the layers' context): staging and prod
    keep their keys through a `pulumi destroy`; dev and local can be torn down in one go. An unprotected
    key is still only scheduled for deletion, DELETION_WINDOW_DAYS later (KMS ScheduleKeyDeletion)."""

    def policy_for(args: list[str]) -> str:
        return key_policy(
            str(args[0]),
            str(args[1]),
            account.region,
            service_principals=service_principals,
            log_group_prefixes=log_group_prefixes,
            via_ec2=via_ec2,
        )

    policy = pulumi.Output.all(account.account_id, account.partition).apply(policy_for)
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        policy=policy,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )
    aws.kms.Alias(
        f"{name}-alias",
        # Stacks may share an account and region: the stack name keeps aliases apart.
        name=f"alias/rampart/{pulumi.get_stack()}/{name}",
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[key])),
    )
    return key
