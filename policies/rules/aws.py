"""AWS rules: encryption at rest and in transit, network exposure, data-store reliability and
database ownership (checkov, CIS EKS Benchmark sections 2 and 5, AWS Foundational Security Best
Practices).

Property names are the camelCase input names pulumi-aws 7 sends to analyzers. Blocks the provider
flattened to single objects (``vpcConfig``, ``metadataOptions``...) are also read when they arrive
as one-item lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from policies.model import (
    Resource,
    ResourceCheck,
    Rule,
    Violation,
    boolean,
    number,
    of_types,
    positive_integer,
)
from policies.table import on, table_rules, whole_plan

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
RDS_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
DATABASES = (RDS_INSTANCE, RDS_CLUSTER)
EKS_CLUSTER = "aws:eks/cluster:Cluster"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASSES = tuple(f"kubernetes:karpenter.k8s.aws/{version}:EC2NodeClass" for version in ("v1", "v1beta1"))
EBS_VOLUME = "aws:ebs/volume:Volume"
KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
MQ_BROKER = "aws:mq/broker:Broker"
LB_LISTENER = "aws:lb/listener:Listener"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STATEFUL = (RDS_INSTANCE, RDS_CLUSTER, MQ_BROKER, S3_BUCKET, KMS_KEY, EKS_CLUSTER)

SERVICE_TAG = "rampart.dev/service"
TIER_TAG = "rampart.dev/tier"
PRIVATE_TIERS = ("private", "isolated")
PUBLIC_GATEWAY_TAG = "rampart.dev/public-gateway"
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
S3_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
# ELB security policies that negotiate TLS 1.2 or later only.
TLS12_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
)


# -- reading properties ------------------------------------------------------------------------


def _true(value: Any) -> bool:
    """A true flag; some provider flags are strings (LaunchTemplate ``ebs.encrypted: "true"``)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _set(value: Any) -> bool:
    """A non-empty string, e.g. a KMS key ARN."""
    return isinstance(value, str) and bool(value.strip())


def _block(value: Any) -> Mapping[str, Any]:
    """A nested block: an object, or the first object of a one-item list."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    return {}


def _blocks(value: Any) -> list[Mapping[str, Any]]:
    """A list of blocks (a lone object counts as a list of one)."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _values(value: Any) -> list[Any]:
    """IAM-style "one or many": a scalar or a list, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _strings(value: Any) -> list[str]:
    return [str(item) for item in _values(value) if item is not None]


def _tags(resource: Resource) -> Mapping[str, Any]:
    tags = resource.get("tags")
    return tags if isinstance(tags, Mapping) else {}


def _show(value: Any) -> str:
    """A number as the user wrote it (3.0 -> "3"), or "unset"."""
    if value is None:
        return "unset"
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    return repr(value)


def _kind(resource: Resource) -> str:
    """``aws:rds/instance:Instance`` -> ``rds/instance``."""
    return resource.type.split(":")[1]


def _document(value: Any) -> Mapping[str, Any] | None:
    """An IAM / bucket policy document: a JSON string (as the engine sends it) or a dict."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _blocks(document.get("Statement"))


def _identifiers(resource: Resource, *props: str) -> set[str]:
    """Every value another resource may use to reference this one.

    Stack rules match companions (a BucketPolicy's ``bucket``, a FlowLog's ``vpcId``, a DB
    instance's ``parameterGroupName``, a subnet group's ``subnetIds``) to their target by value. In
    the offline plan those inputs hold the target's *output* id or name, so a target is known by
    its ``id`` output, the given name properties (e.g. ``bucket``, ``name``), its Pulumi resource
    name and its URN.
    """
    keys = {resource.name, resource.urn}
    for prop in ("id", *props):
        value = resource.get(prop)
        if _set(value):
            keys.add(value)
    return keys


def _referencing(resources: list[Resource], type_: str, prop: str, keys: set[str]) -> list[Resource]:
    """Resources of ``type_`` whose ``prop`` references one of ``keys``."""
    return [r for r in of_types(resources, type_) if isinstance(r.get(prop), str) and r.get(prop) in keys]


# -- encryption --------------------------------------------------------------------------------


def _kms_key_rotation(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    spec = resource.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT":
        return  # KMS rotates symmetric encryption keys only; asymmetric and HMAC keys cannot rotate.
    if not _true(resource.get("enableKeyRotation")):
        yield f"{resource.name}: enableKeyRotation is not true"


def _eks_secrets_encryption(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    config = _block(resource.get("encryptionConfig"))
    if not config:
        yield f"{resource.name}: no encryptionConfig, so secrets are not envelope-encrypted with KMS"
        return
    if "secrets" not in _strings(config.get("resources")):
        yield f"{resource.name}: encryptionConfig.resources does not include 'secrets'"
    if not _set(_block(config.get("provider")).get("keyArn")):
        yield f"{resource.name}: encryptionConfig.provider.keyArn is not set"


def _encrypted_with_cmk(resource: Resource, flag: str, what: str) -> Iterator[str]:
    """``flag`` is true and ``kmsKeyId`` names the customer-managed key ``what`` is encrypted with."""
    if not _true(resource.get(flag)):
        yield f"{resource.name}: {flag} is not true"
    if not _set(resource.get("kmsKeyId")):
        yield f"{resource.name}: no kmsKeyId, so {what} is not encrypted with a customer-managed key"


def _rds_storage_encrypted(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    return _encrypted_with_cmk(resource, "storageEncrypted", "storage")


def _rds_performance_insights_cmk(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if _true(resource.get("performanceInsightsEnabled")) and not _set(
        resource.get("performanceInsightsKmsKeyId")
    ):
        yield f"{resource.name}: Performance Insights is enabled without performanceInsightsKmsKeyId"


def _force_ssl(group: Resource) -> bool:
    return any(
        parameter.get("name") == "rds.force_ssl" and number(parameter.get("value")) == 1
        for parameter in _blocks(group.get("parameters"))
    )


def _rds_force_ssl(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # Instances name their group in parameterGroupName, clusters in dbClusterParameterGroupName;
    # a group is matched by its `name` (or id / Pulumi name, see _identifiers).
    for database in of_types(resources, *DATABASES):
        if database.type == RDS_INSTANCE:
            prop, group_type = "parameterGroupName", RDS_PARAMETER_GROUP
        else:
            prop, group_type = "dbClusterParameterGroupName", RDS_CLUSTER_PARAMETER_GROUP
        wanted = database.get(prop)
        if not _set(wanted):
            yield Violation(
                f"{database.name}: no {prop}; the default group does not set rds.force_ssl", database.urn
            )
            continue
        groups = [g for g in of_types(resources, group_type) if wanted in _identifiers(g, "name")]
        if not groups:
            yield Violation(
                f"{database.name}: {prop} {wanted!r} is not a parameter group in this stack, "
                "so rds.force_ssl = 1 cannot be confirmed",
                database.urn,
            )
        elif not any(_force_ssl(g) for g in groups):
            yield Violation(
                f"{database.name}: parameter group {wanted!r} does not set rds.force_ssl = 1", database.urn
            )


def _mq_broker_encrypted(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    options = _block(resource.get("encryptionOptions"))
    if str(resource.get("engineType") or "").lower() == "rabbitmq":
        # Amazon MQ encrypts RabbitMQ storage with an AWS-owned key only ("EncryptionOptions ... does
        # not apply to RabbitMQ brokers"): a customer-managed key is not an option, privacy is the control.
        if _false(options.get("useAwsOwnedKey")) or _set(options.get("kmsKeyId")):
            yield (
                f"{resource.name}: encryptionOptions asks for a customer-managed key, which Amazon MQ does "
                "not support for RabbitMQ (the broker would be rejected)"
            )
        if _true(resource.get("publiclyAccessible")):
            yield f"{resource.name}: a RabbitMQ broker without a customer-managed key must not be public"
        return
    if not _false(options.get("useAwsOwnedKey")):
        yield f"{resource.name}: encryptionOptions.useAwsOwnedKey is not false (AWS defaults it to true)"
    if not _set(options.get("kmsKeyId")):
        yield f"{resource.name}: encryptionOptions.kmsKeyId is not set, so no customer-managed key is used"


def _mq_broker_logs(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if not _true(_block(resource.get("logs")).get("general")):
        yield f"{resource.name}: logs.general is not true, so broker logs do not reach CloudWatch"


def _sse_uses_kms(configuration: Resource) -> bool:
    for rule in _blocks(configuration.get("rules")):
        default = _block(rule.get("applyServerSideEncryptionByDefault"))
        if default.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and _set(default.get("kmsMasterKeyId")):
            return True
    return False


def _says_false(value: Any) -> bool:
    """A condition value of false: ``"false"``, ``false`` or ``["false"]``."""
    values = _values(value)
    return bool(values) and all(str(v).lower() == "false" for v in values)


def _denies_insecure_transport(policy: Resource) -> bool:
    document = _document(policy.get("policy"))
    if document is None:
        return False
    for statement in _statements(document):
        condition = statement.get("Condition")
        if statement.get("Effect") != "Deny" or not isinstance(condition, Mapping):
            continue
        for operator, keys in condition.items():
            if str(operator).lower() not in ("bool", "boolifexists") or not isinstance(keys, Mapping):
                continue
            for key, value in keys.items():
                if str(key).lower() == "aws:securetransport" and _says_false(value):
                    return True
    return False


def _open_flags(block: Resource) -> list[str]:
    return [flag for flag in S3_BLOCK_FLAGS if not _true(block.get(flag))]


def _versioning_enabled(versioning: Resource) -> bool:
    return _block(versioning.get("versioningConfiguration")).get("status") == "Enabled"


def _missing_or_wrong(
    companions: list[Resource], missing: str, good: Callable[[Resource], bool], wrong: str
) -> str | None:
    """``missing`` without a companion, ``wrong`` when none of them is good, else nothing."""
    if not companions:
        return missing
    return None if any(good(companion) for companion in companions) else wrong


def _public_access_problem(blocks: list[Resource]) -> str | None:
    if not blocks:
        return "no BucketPublicAccessBlock"
    gaps = min((_open_flags(b) for b in blocks), key=len)
    return f"the public access block does not set {', '.join(gaps)} to true" if gaps else None


def _s3_bucket_hardened(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # A companion belongs to a bucket when its `bucket` input equals the bucket's `bucket` or `id`
    # output, its Pulumi name or its URN (see _identifiers).
    for bucket in of_types(resources, S3_BUCKET):
        keys = _identifiers(bucket, "bucket")

        def companions(type_: str, keys: set[str] = keys) -> list[Resource]:
            return _referencing(resources, type_, "bucket", keys)

        problems = [
            _missing_or_wrong(
                companions(S3_ENCRYPTION),
                "no BucketServerSideEncryptionConfiguration",
                _sse_uses_kms,
                "default encryption is not sseAlgorithm 'aws:kms' with a kmsMasterKeyId",
            ),
            _public_access_problem(companions(S3_PUBLIC_ACCESS_BLOCK)),
            _missing_or_wrong(
                companions(S3_VERSIONING),
                "no BucketVersioning",
                _versioning_enabled,
                "versioningConfiguration.status is not 'Enabled'",
            ),
            _missing_or_wrong(
                companions(S3_POLICY),
                "no BucketPolicy denying requests where aws:SecureTransport is false",
                _denies_insecure_transport,
                "the bucket policy does not deny requests where aws:SecureTransport is false",
            ),
        ]
        for problem in problems:
            if problem is not None:
                yield Violation(f"bucket {bucket.name}: {problem}", bucket.urn)


def _ebs_encrypted(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    return _encrypted_with_cmk(resource, "encrypted", "the volume")


def _instance_hardening(name: str, metadata_options: Any, mappings: Any, key_field: str) -> Iterator[str]:
    """IMDSv2 with a hop limit of 1 (pods cannot reach the node's credentials), and every EBS device
    encrypted with a customer-managed key: a launch template's and a Karpenter EC2NodeClass's alike."""
    metadata = _block(metadata_options)
    if metadata.get("httpEndpoint") != "disabled":
        tokens = metadata.get("httpTokens")
        if tokens != "required":
            yield f"{name}: metadataOptions.httpTokens is {_show(tokens)}, not 'required' (IMDSv2)"
        hops = metadata.get("httpPutResponseHopLimit")
        if hops is None or number(hops) != 1:
            yield f"{name}: metadataOptions.httpPutResponseHopLimit is {_show(hops)}, not 1"
    for index, mapping in enumerate(_blocks(mappings)):
        ebs = _block(mapping.get("ebs"))
        if not ebs:
            continue
        device = mapping.get("deviceName") or f"#{index}"
        if not _true(ebs.get("encrypted")):
            yield f"{name}: block device {device} is not encrypted"
        if not _set(ebs.get(key_field)):
            yield f"{name}: block device {device} has no {key_field} (customer-managed key)"


def _launch_template_hardened(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    yield from _instance_hardening(
        resource.name, resource.get("metadataOptions"), resource.get("blockDeviceMappings"), "kmsKeyId"
    )


def _node_class_hardened(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    """Karpenter launches its nodes from the EC2NodeClass, not from a launch template: the same
    hardening, spelled out rather than left to Karpenter's defaults
    (https://karpenter.sh/docs/concepts/nodeclasses/#specmetadataoptions), with a root volume."""
    name = f"EC2NodeClass {resource.object_name}"
    metadata, mappings = resource.get("spec.metadataOptions"), resource.get("spec.blockDeviceMappings")
    if not metadata:
        yield f"{name}: no metadataOptions (IMDSv2 and a hop limit of 1 are left to defaults)"
    if not any(_true(mapping.get("rootVolume")) for mapping in _blocks(mappings)):
        yield f"{name}: no blockDeviceMappings entry with rootVolume: true (root encryption left to the AMI)"
    if _true(resource.get("spec.associatePublicIPAddress")):
        yield f"{name}: associatePublicIPAddress is true (nodes get public addresses)"
    yield from _instance_hardening(name, metadata or {}, mappings, "kmsKeyID")


def _log_group_encrypted(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if not _set(resource.get("kmsKeyId")):
        yield f"{resource.name}: no kmsKeyId, so log events are not encrypted with a customer-managed key"


def _log_group_retention(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    days = resource.get("retentionInDays")
    minimum = config["minLogRetentionDays"]
    if days is None:
        yield f"{resource.name}: retentionInDays is unset (needs >= {minimum})"
    elif number(days) != 0 and number(days) < minimum:  # 0 keeps events forever
        yield f"{resource.name}: retentionInDays is {_show(days)} (needs >= {minimum})"


def _redirects_to_https(action: Mapping[str, Any]) -> bool:
    redirect = _block(action.get("redirect"))
    return action.get("type") == "redirect" and str(redirect.get("protocol", "")).upper() == "HTTPS"


def _lb_listener_tls(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    protocol = str(resource.get("protocol") or "").upper()
    port = _show(resource.get("port"))
    if protocol in ("HTTPS", "TLS"):
        policy = resource.get("sslPolicy")
        if policy not in TLS12_POLICIES:
            yield f"{resource.name}: {protocol} listener has sslPolicy {_show(policy)}, not a TLS 1.2+ policy"
    elif protocol == "HTTP":
        actions = _blocks(resource.get("defaultActions"))
        if not actions or not all(_redirects_to_https(action) for action in actions):
            yield f"{resource.name}: HTTP listener on port {port} does not redirect to HTTPS"
    elif not (protocol == "TCP" and config["allowTcpPassthrough"] and number(resource.get("port")) == 443):
        allowed = "HTTPS, TLS, HTTP redirecting to HTTPS" + (
            ", TCP passthrough on 443" if config["allowTcpPassthrough"] else ""
        )
        yield f"{resource.name}: protocol {protocol or 'unset'} on port {port} is not one of: {allowed}"


# -- network -----------------------------------------------------------------------------------


def _ingress_entries(resource: Resource) -> Iterator[tuple[str, list[str], Mapping[str, Any], str]]:
    """(label, cidrs, the block holding fromPort/toPort, its protocol key) for each ingress rule."""
    if resource.type == SECURITY_GROUP:
        for index, entry in enumerate(_blocks(resource.get("ingress"))):
            cidrs = _strings(entry.get("cidrBlocks")) + _strings(entry.get("ipv6CidrBlocks"))
            yield f"ingress #{index}", cidrs, entry, "protocol"
    elif resource.type == SECURITY_GROUP_INGRESS_RULE:
        cidrs = _strings(resource.get("cidrIpv4")) + _strings(resource.get("cidrIpv6"))
        yield "ingress rule", cidrs, resource.props, "ipProtocol"
    elif resource.type == SECURITY_GROUP_RULE and resource.get("type") == "ingress":
        cidrs = _strings(resource.get("cidrBlocks")) + _strings(resource.get("ipv6CidrBlocks"))
        yield "ingress rule", cidrs, resource.props, "protocol"


def _sg_no_public_ingress(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    # Only the public gateway's load balancer may take 443 from anywhere; it says so with a tag.
    # (aws:ec2/securityGroupRule has no tags, so it can never claim the exception.)
    gateway = _true(_tags(resource).get(PUBLIC_GATEWAY_TAG))
    for label, cidrs, entry, protocol_key in _ingress_entries(resource):
        public = [cidr for cidr in cidrs if cidr in OPEN_CIDRS]
        if not public:
            continue
        protocol = entry.get(protocol_key)
        low, high = number(entry.get("fromPort"), -1), number(entry.get("toPort"), -1)
        all_traffic = str(protocol).lower() in ("-1", "all")
        if gateway and not all_traffic and low == high == 443:
            continue
        if all_traffic:
            ports = "all traffic"
        elif low == high:
            ports = f"{protocol} port {_show(entry.get('fromPort'))}"
        else:
            ports = f"{protocol} ports {_show(entry.get('fromPort'))}-{_show(entry.get('toPort'))}"
        yield f"{resource.name}: {label} allows {ports} from {', '.join(public)}"


def _vpc_default_sg_closed(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for direction in ("ingress", "egress"):
        entries = _blocks(resource.get(direction))
        if entries:
            yield f"{resource.name}: the default security group has {len(entries)} {direction} rule(s)"


def _vpc_flow_logs(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # A FlowLog covers a VPC when its vpcId equals the VPC's id output or Pulumi name (see _identifiers).
    for vpc in of_types(resources, VPC):
        if not _referencing(resources, FLOW_LOG, "vpcId", _identifiers(vpc)):
            yield Violation(f"vpc {vpc.name}: no FlowLog has vpcId pointing at it", vpc.urn)


def _not_public(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if _true(resource.get("publiclyAccessible")):
        yield f"{resource.name}: publiclyAccessible is true"


def _db_private_subnets(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # A subnet is known by its id output or Pulumi name (see _identifiers); its tier comes from tags.
    tiers: dict[str, Any] = {}
    for subnet in of_types(resources, SUBNET):
        for key in _identifiers(subnet):
            tiers[key] = _tags(subnet).get(TIER_TAG)
    for owner in of_types(resources, RDS_SUBNET_GROUP, MQ_BROKER):
        subnet_ids = _strings(owner.get("subnetIds"))
        if not subnet_ids:
            yield Violation(f"{owner.name}: no subnetIds, so AWS picks the subnets", owner.urn)
        for subnet_id in subnet_ids:
            if subnet_id not in tiers:
                yield Violation(
                    f"{owner.name}: subnet {subnet_id!r} is not a subnet in this stack", owner.urn
                )
            elif tiers[subnet_id] not in PRIVATE_TIERS:
                yield Violation(
                    f"{owner.name}: subnet {subnet_id!r} has {TIER_TAG} {_show(tiers[subnet_id])}, "
                    f"not one of {', '.join(PRIVATE_TIERS)}",
                    owner.urn,
                )


def _public_endpoint(vpc_config: Mapping[str, Any]) -> bool:
    return not _false(vpc_config.get("endpointPublicAccess"))  # AWS defaults it to true


def _eks_endpoint_private(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    vpc_config = _block(resource.get("vpcConfig"))
    if not _true(vpc_config.get("endpointPrivateAccess")):
        yield f"{resource.name}: vpcConfig.endpointPrivateAccess is not true"
    if _public_endpoint(vpc_config):
        cidrs = _strings(vpc_config.get("publicAccessCidrs"))
        if not cidrs:
            yield f"{resource.name}: the public endpoint has no publicAccessCidrs (EKS defaults to 0.0.0.0/0)"
        open_cidrs = [cidr for cidr in cidrs if cidr in OPEN_CIDRS]
        if open_cidrs:
            yield f"{resource.name}: the public endpoint is open to {', '.join(open_cidrs)}"


def _eks_no_public_endpoint(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if _public_endpoint(_block(resource.get("vpcConfig"))):
        yield f"{resource.name}: vpcConfig.endpointPublicAccess is not false (AWS defaults it to true)"


def _eks_control_plane_logging(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    enabled = set(_strings(resource.get("enabledClusterLogTypes")))
    missing = [kind for kind in EKS_LOG_TYPES if kind not in enabled]
    if missing:
        yield f"{resource.name}: enabledClusterLogTypes is missing {', '.join(missing)}"


def _iam_no_wildcard_action(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    document = _document(resource.get("policy"))
    if document is None:
        return  # unknown during preview, or not JSON: nothing to judge
    for index, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        wildcards = [action for action in _strings(statement.get("Action")) if action in ("*", "*:*")]
        if wildcards:
            label = statement.get("Sid") or f"#{index}"
            yield f"{resource.name}: statement {label} allows Action {wildcards[0]!r}"


# -- reliability -------------------------------------------------------------------------------


def _rds_final_snapshot(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if _true(resource.get("skipFinalSnapshot")):
        yield f"{resource.name}: skipFinalSnapshot is true"
    if not _set(resource.get("finalSnapshotIdentifier")):
        yield f"{resource.name}: finalSnapshotIdentifier is not set"


def _rds_backup_retention(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    days = resource.get("backupRetentionPeriod")
    minimum = config["minBackupRetentionDays"]
    if days is None or number(days) < minimum:
        yield f"{resource.name}: backupRetentionPeriod is {_show(days)} (needs >= {minimum} days)"


def _stateful_protected(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if not resource.protect:
        yield f"{resource.name}: stateful {_kind(resource)} is not protected (set the Pulumi protect option)"


# -- ownership ---------------------------------------------------------------------------------


def _database_owned_by_one_service(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    owners: dict[str, list[Resource]] = {}
    for database in of_types(resources, *DATABASES):
        service = _tags(database).get(SERVICE_TAG)
        if not isinstance(service, str) or not service.strip():
            yield Violation(f"{database.name}: no {SERVICE_TAG} tag naming its owning service", database.urn)
        elif not _set(database.get("replicateSourceDb")):  # a read replica is its source's database
            owners.setdefault(service, []).append(database)
    for service, databases in owners.items():
        if len(databases) > 1:
            for database in databases:
                others = ", ".join(d.name for d in databases if d is not database)
                yield Violation(
                    f"{database.name}: service {service!r} also owns {others} (a service owns one database)",
                    database.urn,
                )


# -- rules -------------------------------------------------------------------------------------


def _flag(flag: str) -> ResourceCheck:
    """A check that wants one flag true (its remediation: "Set <flag>: true.")."""

    def check(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
        if not _true(resource.get(flag)):
            yield f"{resource.name}: {flag} is not true"

    return check


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        # -- encryption
        "kms-key-rotation": on((KMS_KEY,), _kms_key_rotation),
        "eks-secrets-encryption": on((EKS_CLUSTER,), _eks_secrets_encryption),
        "rds-storage-encrypted": on(DATABASES, _rds_storage_encrypted),
        "rds-performance-insights-cmk": on(DATABASES, _rds_performance_insights_cmk),
        "rds-force-ssl": whole_plan(_rds_force_ssl),
        "rds-iam-auth": on(DATABASES, _flag("iamDatabaseAuthenticationEnabled")),
        "mq-broker-encrypted": on((MQ_BROKER,), _mq_broker_encrypted),
        "mq-broker-logs": on((MQ_BROKER,), _mq_broker_logs),
        "s3-bucket-hardened": whole_plan(_s3_bucket_hardened),
        "ebs-encrypted": on((EBS_VOLUME,), _ebs_encrypted),
        "launch-template-hardened": on((LAUNCH_TEMPLATE,), _launch_template_hardened),
        "karpenter-node-class-hardened": on(NODE_CLASSES, _node_class_hardened),
        "log-group-encrypted": on((LOG_GROUP,), _log_group_encrypted),
        "log-group-retention": on(
            (LOG_GROUP,), _log_group_retention, {"minLogRetentionDays": positive_integer(90)}
        ),
        "lb-listener-tls": on(
            (LB_LISTENER,),
            _lb_listener_tls,
            {
                # The gateway's NLB passes TLS through to Kong on 443.
                "allowTcpPassthrough": boolean(True),
            },
        ),
        # -- network
        "sg-no-public-ingress": on(
            (SECURITY_GROUP, SECURITY_GROUP_INGRESS_RULE, SECURITY_GROUP_RULE), _sg_no_public_ingress
        ),
        "vpc-default-sg-closed": on((DEFAULT_SECURITY_GROUP,), _vpc_default_sg_closed),
        "vpc-flow-logs": whole_plan(_vpc_flow_logs),
        "rds-not-public": on((RDS_INSTANCE,), _not_public),
        "mq-broker-not-public": on((MQ_BROKER,), _not_public),
        "db-private-subnets": whole_plan(_db_private_subnets),
        "eks-endpoint-private": on((EKS_CLUSTER,), _eks_endpoint_private),
        "eks-no-public-endpoint": on((EKS_CLUSTER,), _eks_no_public_endpoint),
        "eks-control-plane-logging": on((EKS_CLUSTER,), _eks_control_plane_logging),
        "iam-no-wildcard-action": on((IAM_POLICY, IAM_ROLE_POLICY), _iam_no_wildcard_action),
        # -- reliability
        "rds-deletion-protection": on(DATABASES, _flag("deletionProtection")),
        "rds-final-snapshot": on(DATABASES, _rds_final_snapshot),
        "rds-backup-retention": on(
            DATABASES, _rds_backup_retention, {"minBackupRetentionDays": positive_integer(14)}
        ),
        "rds-multi-az": on((RDS_INSTANCE,), _flag("multiAz")),
        "stateful-protected": on(STATEFUL, _stateful_protected),
        # -- ownership
        "database-owned-by-one-service": whole_plan(_database_owned_by_one_service),
    },
    params={
        "tls12_policies": ", ".join(TLS12_POLICIES),
        "public_gateway_tag": PUBLIC_GATEWAY_TAG,
        "tier_tag": TIER_TAG,
        "eks_log_types": ", ".join(EKS_LOG_TYPES),
        "service_tag": SERVICE_TAG,
    },
)
