"""Amazon MQ for RabbitMQ: the broker of the aws target, private, in the private subnets, behind a
security group of its own.

- **Reach**: AMQPS (5671) from the pod security groups of the services that publish or consume, the
  management API (443) from those of its platform clients (the topology operator, Vault's RabbitMQ
  engine). Never the cluster security group, which every pod and node carries. Nothing else: not
  public, no CIDR rules, and the broker itself opens no connections (no egress rules).
- **Encryption at rest**: Amazon MQ encrypts RabbitMQ brokers with an AWS-owned key and accepts no
  customer-managed key ("EncryptionOptions ... does not apply to RabbitMQ brokers"), so no
  encryption options are sent: asking for a CMK would be rejected. In transit: AMQPS and HTTPS only
  (Amazon MQ for RabbitMQ offers no plaintext listener).
- **Resilience**: a three-node cluster across three zones (``deployment: cluster``) or a single
  instance; minor versions upgraded by AWS in the weekly maintenance window; general logs to
  CloudWatch; Pulumi protect and retain-on-delete in staging and prod.
- **Logs**: the group Amazon MQ creates for them, ``/aws/amazonmq/broker/<broker-id>/general``, is
  given a customer-managed key of its own and the stack's log retention by a ``pulumi-command`` step
  once the broker exists (``_log_settings``; the comment at the broker's ``logs`` says why no LogGroup).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from components.targets.aws import kms
from components.targets.aws.handles import NetworkHandle
from rampart.config.models import Messaging as MessagingConfig

ENGINE = "RabbitMQ"
AMQPS_PORT = 5671
MANAGEMENT_PORT = 443
ADMIN_USER = "rampart-admin"
# A cluster deployment puts one node in each of three zones, each in its own subnet.
CLUSTER_SUBNETS = 3
DEPLOYMENT_MODES = {"single_instance": "SINGLE_INSTANCE", "cluster": "CLUSTER_MULTI_AZ"}
LAYER_TAG = "rampart.dev/layer"
# UTC, after the databases' window (sun 04:30-05:30) so the two never restart together.
MAINTENANCE_DAY = "SUNDAY"
MAINTENANCE_TIME = "06:00"
# Amazon MQ's log groups: /aws/amazonmq/broker/<broker-id>/general (Amazon MQ developer guide,
# "Configuring Amazon MQ for ActiveMQ logs"; DescribeBroker Logs.GeneralLogGroup names a RabbitMQ
# broker's). A RabbitMQ broker has general logs only: audit logging "doesn't apply to RabbitMQ brokers"
# (Amazon MQ API, Logs.Audit), so there is no second group.
LOG_GROUP_PREFIX = "/aws/amazonmq/broker/"


@dataclass(frozen=True)
class MessagingAws:
    """The aws target: where Amazon MQ goes and who may reach it."""

    network: NetworkHandle
    # label -> security group whose members publish and consume (AMQPS), e.g. the services' pods.
    amqp_clients: Mapping[str, pulumi.Input[str]]
    # label -> security group whose members use the management API (topology operator, Vault).
    management_clients: Mapping[str, pulumi.Input[str]]
    # Where the key of the broker's logs is made (account, partition, region: the AWS provider's).
    account: kms.Account
    # Days the broker's log group keeps events (a CloudWatch retention period; the stack's AWS log retention).
    log_retention_days: int
    # Added to every AWS resource (the provider's default tags still apply).
    tags: Mapping[str, str] = field(default_factory=dict)
    # The groups the topology operator's pods carry (its own first, then the cluster's): its
    # SecurityGroupPolicy gives them to its pods, whose own group the management API admits.
    topology_operator_security_groups: Sequence[pulumi.Input[str]] = ()


@dataclass(frozen=True)
class AmazonMqArgs:
    environment: str
    settings: MessagingConfig
    target: MessagingAws
    # A secret Output (pulumi-random): 12 to 250 characters, none of , : =.
    admin_password: pulumi.Output[str]
    protect: bool = False


@dataclass(frozen=True)
class AmazonMqBroker:
    broker: aws.mq.Broker
    security_group: aws.ec2.SecurityGroup
    # https://<broker-id>.mq.<region>.amazonaws.com: the management API and console.
    console_url: pulumi.Output[str]
    # amqps://<broker-id>.mq.<region>.amazonaws.com:5671
    amqp_endpoints: pulumi.Output[list[str]]
    # Encrypts the broker's general log group; the step that sets its key and retention.
    log_key: aws.kms.Key
    log_settings: command.local.Command


def deployment_mode(settings: MessagingConfig) -> str:
    return DEPLOYMENT_MODES[settings.deployment]


def broker_subnets(settings: MessagingConfig, network: NetworkHandle) -> list[pulumi.Output[str]]:
    """One private subnet per node's zone: three for a cluster, one for a single instance. The
    network lists its subnets in zone order, so the choice is stable."""
    wanted = CLUSTER_SUBNETS if settings.deployment == "cluster" else 1
    if len(network.private_subnet_ids) < wanted:
        raise ValueError(
            f"messaging.deployment {settings.deployment!r} needs {wanted} private subnets in distinct zones; "
            f"the network has {len(network.private_subnet_ids)}"
        )
    return list(network.private_subnet_ids[:wanted])


def general_log_group(broker_id: str) -> str:
    return f"{LOG_GROUP_PREFIX}{broker_id}/general"


def log_group_settings(log_group: str, key_arn: str, retention_days: int, region: str) -> str:
    """The shell command that gives an existing log group a KMS key and a retention period: AWS CLI
    `aws logs associate-kms-key --log-group-name --kms-key-id` (the key's ARN; CloudWatch Logs then
    encrypts new events with it) and `aws logs put-retention-policy --log-group-name
    --retention-in-days`. Both calls are idempotent; `&&` makes the step fail when either fails."""
    where = ["--log-group-name", log_group, "--region", region]
    steps = [
        ["aws", "logs", "associate-kms-key", *where, "--kms-key-id", key_arn],
        ["aws", "logs", "put-retention-policy", *where, "--retention-in-days", str(retention_days)],
    ]
    return " && ".join(shlex.join(step) for step in steps)


def broker_name(environment: str) -> str:
    # Amazon MQ broker names are unique per account and region; the stack's environment tells them apart.
    return f"rampart-{environment}-broker"


_Rule = type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule]


def _security_group(
    name: str, args: AmazonMqArgs, tags: Mapping[str, str], opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """The broker's group, and a rule per client on each side, as separate resources.

    The group itself names no other group: a client group (the cluster security group EKS creates with
    the cluster) inside the group's inline rules would make the group, and the broker behind it, wait
    for the cluster (~10 minutes in prod) although the broker needs none of it to start. Separate rules
    (aws.vpc.SecurityGroupIngressRule, one per rule, "the current best practice" of
    terraform-provider-aws' aws_security_group docs) let the group and the broker start with the VPC;
    only the rules wait for the clients' groups. A group with no `ingress` argument manages no inline
    ingress, so the separate rules stay."""
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=args.target.network.vpc_id,
        description=f"Amazon MQ for RabbitMQ ({args.environment}): AMQPS and management from named clients",
        # The broker only answers, and answers need no egress rule (security groups are stateful).
        egress=[],
        tags=dict(tags),
        opts=opts,
    )
    for clients, port, what in (
        (args.target.amqp_clients, AMQPS_PORT, "AMQPS"),
        (args.target.management_clients, MANAGEMENT_PORT, "Management API"),
    ):
        for label in sorted(clients):
            # The broker's side, then the clients' side, as separate rules: inline rules on their
            # groups would be authoritative.
            client = clients[label]
            sides: tuple[tuple[_Rule, str, pulumi.Input[str], pulumi.Input[str], str], ...] = (
                (aws.vpc.SecurityGroupIngressRule, "ingress", group.id, client, f"{what} from {label}"),
                (aws.vpc.SecurityGroupEgressRule, "egress", client, group.id, f"{what} to the broker"),
            )
            for rule, direction, own, peer, description in sides:
                rule(
                    f"{name}-{label}-{port}-{direction}",
                    security_group_id=own,
                    referenced_security_group_id=peer,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=description,
                    tags=dict(tags),
                    opts=opts,
                )
    return group


def _first_instance(
    instances: Sequence[aws.mq.outputs.BrokerInstance] | None,
) -> aws.mq.outputs.BrokerInstance:
    # A RabbitMQ broker, single or clustered, has one entry: a cluster is reached through one endpoint.
    if not instances:
        raise ValueError("Amazon MQ reported no broker instance, so the broker has no endpoint")
    return instances[0]


def amazon_mq(name: str, args: AmazonMqArgs, parent: pulumi.Resource) -> AmazonMqBroker:
    if isinstance(args.admin_password, str):
        raise TypeError("admin_password must be a secret Output (pulumi-random), not a plain str")
    tags = {**args.target.tags, "Name": broker_name(args.environment), LAYER_TAG: "messaging"}
    child = pulumi.ResourceOptions(parent=parent)
    group = _security_group(name, args, tags, child)
    broker = aws.mq.Broker(
        f"{name}-broker",
        broker_name=broker_name(args.environment),
        engine_type=ENGINE,
        engine_version=args.settings.engine_version,
        host_instance_type=args.settings.instance_type,
        deployment_mode=deployment_mode(args.settings),
        authentication_strategy="simple",
        publicly_accessible=False,
        subnet_ids=broker_subnets(args.settings, args.target.network),
        security_groups=[group.id],
        # RabbitMQ 3.13 and later: AWS applies patch releases itself, in the maintenance window.
        auto_minor_version_upgrade=True,
        maintenance_window_start_time=aws.mq.BrokerMaintenanceWindowStartTimeArgs(
            day_of_week=MAINTENANCE_DAY, time_of_day=MAINTENANCE_TIME, time_zone="UTC"
        ),
        # General logs go to /aws/amazonmq/broker/<broker-id>/general, a group Amazon MQ creates itself
        # when the broker is created (or rebooted) with logs on, without a key and kept forever. It cannot
        # be ours from the start: CreateBroker's Logs takes only booleans (no group name,
        # terraform-provider-aws#39545), the name holds an id AWS assigns at creation, and a LogGroup made
        # after the broker fails with ResourceAlreadyExistsException (nor can `import_` take an Output).
        # So _log_settings sets its key and retention once the broker exists.
        logs=aws.mq.BrokerLogsArgs(general=True),
        # The one user Amazon MQ creates for RabbitMQ: the administrator the topology operator and
        # Vault's RabbitMQ engine log in as. Services get short-lived users from Vault.
        users=[
            aws.mq.BrokerUserArgs(username=ADMIN_USER, password=pulumi.Output.secret(args.admin_password))
        ],
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, protect=args.protect, retain_on_delete=args.protect),
    )
    log_key, log_settings = _log_settings(name, args, broker, child)
    instance = broker.instances.apply(_first_instance)
    return AmazonMqBroker(
        broker=broker,
        security_group=group,
        console_url=instance.apply(lambda i: str(i.console_url)),
        amqp_endpoints=instance.apply(lambda i: [str(e) for e in i.endpoints or []]),
        log_key=log_key,
        log_settings=log_settings,
    )


def _log_settings(
    name: str, args: AmazonMqArgs, broker: aws.mq.Broker, opts: pulumi.ResourceOptions
) -> tuple[aws.kms.Key, command.local.Command]:
    """A key for the broker's logs, and a local command (pulumi-command, run by the engine on the
    deploying machine with its AWS credentials and the AWS CLI) that, once the broker exists, associates
    the key with the broker's general log group and sets the group's retention.

    The key admits CloudWatch Logs for groups under LOG_GROUP_PREFIX only (the broker's id, and so its
    group's exact name, is unknown until the broker exists). The command's text names the broker's id,
    the key's ARN and the retention; when any changes (a replaced broker, another key, another retention)
    it runs again: an update re-runs `create`, and ``triggers`` replace it outright. AssociateKmsKey
    encrypts only events ingested after it: those of the minutes between the broker's start and this step
    stay under CloudWatch Logs' own encryption, and expire with the rest.

    Destroy: the command has no `delete`. Amazon MQ does not delete the group with the broker, and
    neither does this: the group keeps its key and retention, so what is left in it expires (where the
    key is not protected, dev, a destroy schedules the key's deletion, kms.DELETION_WINDOW_DAYS later,
    after which those events are unreadable). A `delete` that removed the group would also run whenever
    the command is replaced (create before delete) and take the live broker's logs with it."""
    target = args.target
    region = target.account.region
    key = kms.customer_key(
        f"{name}-logs",
        f"Amazon MQ broker logs ({args.environment})",
        target.account,
        log_group_prefixes=[LOG_GROUP_PREFIX],
        protect=args.protect,
        # Kept where the broker is: the group outlives a destroy, and its events need the key.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=args.protect)),
    )
    retention = target.log_retention_days
    script = pulumi.Output.all(broker.id, key.arn).apply(
        lambda values: log_group_settings(
            general_log_group(str(values[0])), str(values[1]), retention, region
        )
    )
    provider = command.Provider(f"{name}-command", opts=opts)
    settings = command.local.Command(
        f"{name}-log-group",
        create=script,
        triggers=[broker.id, key.arn, retention],
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(provider=provider, depends_on=[broker, key])
        ),
    )
    return key, settings
