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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

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


@dataclass(frozen=True)
class MessagingAws:
    """The aws target: where Amazon MQ goes and who may reach it."""

    network: NetworkHandle
    # label -> security group whose members publish and consume (AMQPS), e.g. the services' pods.
    amqp_clients: Mapping[str, pulumi.Input[str]]
    # label -> security group whose members use the management API (topology operator, Vault).
    management_clients: Mapping[str, pulumi.Input[str]]
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
        # KNOWN GAP (issue 15, item 5): the group these logs go to, /aws/amazonmq/broker/<broker-id>/general,
        # is created by Amazon MQ itself when the broker is created or rebooted with logs on (developer
        # guide, "Configuring Amazon MQ for ActiveMQ logs": the user who "creates or reboots the broker"
        # needs logs:CreateLogGroup; RabbitMQ brokers name theirs the same way, DescribeBroker
        # Logs.GeneralLogGroup), so it has no customer key and never expires. Nothing in one `pulumi up`
        # can change that with pulumi-aws alone: CreateBroker's Logs takes only booleans (no group name,
        # terraform-provider-aws#39545 is the open request); the name holds an id AWS assigns at creation,
        # so our aws.cloudwatch.LogGroup cannot exist first, and one made after the broker fails with
        # ResourceAlreadyExistsException; turning logs on only after our group exists would need a second
        # update of this same broker (pending until a reboot, DescribeBroker Logs.Pending) in a second run.
        # Until then: set retention and a key on that group out of band (PutRetentionPolicy, AssociateKmsKey).
        logs=aws.mq.BrokerLogsArgs(general=True),
        # The one user Amazon MQ creates for RabbitMQ: the administrator the topology operator and
        # Vault's RabbitMQ engine log in as. Services get short-lived users from Vault.
        users=[
            aws.mq.BrokerUserArgs(username=ADMIN_USER, password=pulumi.Output.secret(args.admin_password))
        ],
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, protect=args.protect, retain_on_delete=args.protect),
    )
    instance = broker.instances.apply(_first_instance)
    return AmazonMqBroker(
        broker=broker,
        security_group=group,
        console_url=instance.apply(lambda i: str(i.console_url)),
        amqp_endpoints=instance.apply(lambda i: [str(e) for e in i.endpoints or []]),
    )
