"""A private S3 bucket as the security baseline wants every bucket: SSE-KMS with a key of its own, public
access blocked, versioned, and a policy that refuses plain HTTP and old TLS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.targets.aws.kms import Account, customer_key

# The SDK's names for nested S3 blocks, shortened.
_SseByDefault = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs


@dataclass(frozen=True)
class Bucket:
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    # Encryption, public access block, versioning, policy, lifecycle: what finishes the bucket.
    companions: list[pulumi.Resource]


def tls_only_policy(bucket_arn: str) -> str:
    """Deny any request over plain HTTP or TLS older than 1.2 (a Deny on s3:*, so not iam.document)."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": resources}
    statements = [
        deny | {"Sid": "DenyInsecureTransport", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        deny | {"Sid": "DenyOldTls", "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def secure_bucket(
    name: str,
    *,
    key_description: str,
    key_account: Account,
    lifecycle: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgs],
    protect: bool,
    parent: pulumi.Resource,
) -> Bucket:
    """The bucket ``name`` and its companions (each named ``<name>-<part>``), children of ``parent``."""
    key = customer_key(
        f"{name}-key",
        key_description,
        key_account,
        protect=protect,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    bucket = aws.s3.Bucket(
        name,
        # A versioned bucket is deleted only once every object version is: where the stack is not
        # protected (dev, local), destroy empties it (force_destroy, terraform-provider-aws s3_bucket);
        # staging and prod keep it (protect).
        force_destroy=not protect,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )

    def after(*first: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, depends_on=[bucket, *first])

    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=_SseByDefault(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn
                ),
                # One data key per bucket rather than per object: far fewer KMS calls.
                bucket_key_enabled=True,
            )
        ],
        opts=after(),
    )
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=after(),
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=after(),
    )
    # S3 rejects concurrent changes to one bucket's policy and its public access block.
    policy = aws.s3.BucketPolicy(
        f"{name}-tls-only", bucket=bucket.id, policy=bucket.arn.apply(tls_only_policy), opts=after(block)
    )
    # Expiration in a versioned bucket makes noncurrent versions: versioning first.
    rules = aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle", bucket=bucket.id, rules=list(lifecycle), opts=after(versioning)
    )
    return Bucket(bucket=bucket, key=key, companions=[encryption, block, versioning, policy, rules])
