"""The VPC every AWS stack runs in: three subnet tiers per zone, NAT, flow logs, private AWS endpoints.

Tiers, one subnet of each per availability zone:
- public: the NAT gateways and the gateway's NLB (tagged for the load-balancer controller); nothing
  gets a public address on launch.
- private: nodes and pods (VPC CNI gives pods VPC addresses, hence the big blocks); out to the
  internet through the zone's NAT gateway; discovered by Karpenter and internal load balancers.
- isolated: databases and brokers; no route to or from the internet at all.

AWS APIs the cluster calls all the time (ECR, STS, KMS, logs, SQS, EKS Pod Identity, EC2) are
reached through interface endpoints, S3 through a gateway endpoint, so that traffic stays in the VPC.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.targets.aws import iam, kms
from components.targets.aws.handles import NetworkHandle

Tier = Literal["public", "private", "isolated"]
TIERS: tuple[Tier, ...] = ("public", "private", "isolated")
TIER_TAG = "rampart.dev/tier"

# Subnet layout inside a VPC CIDR of prefix /P, fixed whatever the number of zones, so adding a
# zone never moves an existing subnet (a subnet whose CIDR changes is replaced). Zone i is the
# i-th entry of availability_zones: append new zones, never reorder.
#   eighths 0-5 of the VPC, /P+3 each:   private, zones 0-5   (/16 VPC: /19 = 8,192 addresses)
#   eighth 6, cut in eight, /P+6 each:   isolated, zones 0-5  (/16 VPC: /22 = 1,024 addresses)
#   eighth 7, cut in eight, /P+6 each:   public, zones 0-5    (/16 VPC: /22 = 1,024 addresses)
# Two /P+6 slots in each of eighths 6 and 7 stay free for later tiers.
# Example, 10.20.0.0/16: private 10.20.0.0/19, 10.20.32.0/19, ...; isolated 10.20.192.0/22,
# 10.20.196.0/22, ...; public 10.20.224.0/22, 10.20.228.0/22, ...
MAX_ZONES = 6
PRIVATE_EXTRA_BITS = 3
SMALL_EXTRA_BITS = 6
LARGEST_VPC_PREFIX = 16  # AWS: a VPC CIDR is /16 to /28
SMALLEST_SUBNET_PREFIX = 28  # AWS: a subnet is at most /28
SMALLEST_VPC_PREFIX = SMALLEST_SUBNET_PREFIX - SMALL_EXTRA_BITS  # /22

# Interface endpoints in the private subnets, as com.amazonaws.<region>.<service>.
INTERFACE_ENDPOINTS: tuple[str, ...] = (
    "ecr.api",
    "ecr.dkr",
    "sts",
    "kms",
    "logs",
    "sqs",
    "eks-auth",  # EKS Pod Identity: pods exchange their token for role credentials here
    "ec2",  # VPC CNI, the EBS CSI driver and Karpenter call the EC2 API constantly
)
HTTPS = 443
ANYWHERE = "0.0.0.0/0"
FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"


@dataclass(frozen=True)
class NetworkArgs:
    environment: str
    cluster_name: str
    vpc_cidr: str
    availability_zones: list[str]
    nat_gateways: Literal["per_az", "single"]
    flow_log_retention_days: int
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    # Every IAM role Rampart creates carries the stack's boundary (aws.permissions_boundary_arn).
    permissions_boundary: str | None = None
    # The stack's one protection rule (components.core.protection): keeps the flow-log key in staging/prod.
    protect: bool = False


@dataclass(frozen=True)
class SubnetCidrs:
    """Per tier, one CIDR per zone, in the order of the zones."""

    public: list[str]
    private: list[str]
    isolated: list[str]

    def of(self, tier: Tier) -> list[str]:
        return {"public": self.public, "private": self.private, "isolated": self.isolated}[tier]


def subnet_cidrs(vpc_cidr: str, zones: int) -> SubnetCidrs:
    """Split ``vpc_cidr`` into the three tiers for ``zones`` zones (see the layout above).

    Raises ValueError, naming the limit, when the CIDR or the zone count does not fit."""
    try:
        vpc = ipaddress.ip_network(vpc_cidr)
    except ValueError as exc:
        raise ValueError(f"vpc_cidr {vpc_cidr!r} is not a network CIDR: {exc}") from None
    if not isinstance(vpc, ipaddress.IPv4Network):
        raise ValueError(f"vpc_cidr {vpc_cidr} is not IPv4; a VPC's primary CIDR is an IPv4 block")
    if not 1 <= zones <= MAX_ZONES:
        raise ValueError(f"{zones} availability zones: the subnet layout takes 1 to {MAX_ZONES}")
    if vpc.prefixlen < LARGEST_VPC_PREFIX:
        raise ValueError(
            f"vpc_cidr {vpc_cidr} is larger than /{LARGEST_VPC_PREFIX}, the largest VPC AWS allows"
        )
    if vpc.prefixlen > SMALLEST_VPC_PREFIX:
        raise ValueError(
            f"vpc_cidr {vpc_cidr} is too small for {zones} availability zones: its public and isolated "
            f"subnets would be /{vpc.prefixlen + SMALL_EXTRA_BITS}, but an AWS subnet is at most "
            f"/{SMALLEST_SUBNET_PREFIX}; use a /{SMALLEST_VPC_PREFIX} or larger (a /16 is recommended)"
        )
    eighths = list(vpc.subnets(prefixlen_diff=PRIVATE_EXTRA_BITS))
    small = SMALL_EXTRA_BITS - PRIVATE_EXTRA_BITS
    isolated = list(eighths[6].subnets(prefixlen_diff=small))
    public = list(eighths[7].subnets(prefixlen_diff=small))
    return SubnetCidrs(
        public=[str(n) for n in public[:zones]],
        private=[str(n) for n in eighths[:zones]],
        isolated=[str(n) for n in isolated[:zones]],
    )


def flow_log_group_name(cluster_name: str) -> str:
    return f"/rampart/{cluster_name}/vpc-flow-logs"


def flow_log_policy(log_group_arn: str) -> str:
    """Least privilege for the flow-logs service: write streams of this one log group."""
    return iam.document(
        [
            iam.allow(
                [
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                [log_group_arn, f"{log_group_arn}:*"],
            )
        ]
    )


class Network(pulumi.ComponentResource):
    handle: NetworkHandle

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        zones = list(args.availability_zones)
        if len(set(zones)) != len(zones):
            raise ValueError(f"availability_zones has duplicates: {zones}")
        if args.nat_gateways not in ("per_az", "single"):
            raise ValueError(f"nat_gateways must be 'per_az' or 'single', not {args.nat_gateways!r}")
        # Everything that can fail is checked before the first resource is registered.
        cidrs = subnet_cidrs(args.vpc_cidr, len(zones))
        super().__init__("rampart:aws:Network", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.cluster_name

        def tags(label: str, extra: dict[str, str] | None = None) -> dict[str, str]:
            return {"Name": f"{prefix}-{label}", **(extra or {})}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags("vpc"),
            opts=child,
        )
        # Take over the default security group and strip it of every rule: nothing may use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=tags("default-closed"),
            opts=child,
        )

        # -- subnets
        tier_tags: dict[Tier, dict[str, str]] = {
            "public": {"kubernetes.io/role/elb": "1"},
            "private": {
                "kubernetes.io/role/internal-elb": "1",
                "karpenter.sh/discovery": args.cluster_name,
                f"kubernetes.io/cluster/{args.cluster_name}": "shared",
            },
            "isolated": {},
        }
        subnets: dict[Tier, list[aws.ec2.Subnet]] = {tier: [] for tier in TIERS}
        for tier in TIERS:
            for zone, cidr in zip(zones, cidrs.of(tier), strict=True):
                subnets[tier].append(
                    aws.ec2.Subnet(
                        f"{name}-{tier}-{zone}",
                        vpc_id=vpc.id,
                        cidr_block=cidr,
                        availability_zone=zone,
                        # Public subnets hold NAT gateways and the NLB, which get their own addresses.
                        map_public_ip_on_launch=False,
                        tags=tags(f"{tier}-{zone}", {TIER_TAG: tier, **tier_tags[tier]}),
                        opts=child,
                    )
                )

        def associate(tier: Tier, index: int, route_table: aws.ec2.RouteTable) -> None:
            aws.ec2.RouteTableAssociation(
                f"{name}-{tier}-{zones[index]}",
                subnet_id=subnets[tier][index].id,
                route_table_id=route_table.id,
                opts=child,
            )

        # -- public: the internet gateway
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags=tags("public", {TIER_TAG: "public"}), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=igw.id,
            opts=child,
        )
        for index in range(len(zones)):
            associate("public", index, public_rt)

        # -- private: out through a NAT gateway, the zone's own one when there is one per zone
        after_igw = pulumi.ResourceOptions(parent=self, depends_on=[igw])
        nat_zones = zones if args.nat_gateways == "per_az" else zones[:1]
        nats: list[aws.ec2.NatGateway] = []
        for index, zone in enumerate(nat_zones):
            eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags(f"nat-{zone}"), opts=after_igw)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,  # an EIP's id is its allocation id
                    subnet_id=subnets["public"][index].id,
                    connectivity_type="public",
                    tags=tags(f"nat-{zone}"),
                    opts=after_igw,
                )
            )
        private_rts: list[aws.ec2.RouteTable] = []
        for index, zone in enumerate(zones):
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                tags=tags(f"private-{zone}", {TIER_TAG: "private"}),
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{zone}-default",
                route_table_id=route_table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nats[index if args.nat_gateways == "per_az" else 0].id,
                opts=child,
            )
            associate("private", index, route_table)
            private_rts.append(route_table)

        # -- isolated: the local route only (plus the S3 gateway endpoint below)
        isolated_rt = aws.ec2.RouteTable(
            f"{name}-isolated", vpc_id=vpc.id, tags=tags("isolated", {TIER_TAG: "isolated"}), opts=child
        )
        for index in range(len(zones)):
            associate("isolated", index, isolated_rt)

        # -- flow logs: every packet's metadata, into a log group encrypted with its own key
        log_group_name = flow_log_group_name(args.cluster_name)
        key = kms.customer_key(
            f"{name}-flow-logs",
            f"VPC flow logs of {args.cluster_name} ({args.environment})",
            args,
            log_group_prefixes=[log_group_name],
            protect=args.protect,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=log_group_name,
            kms_key_id=key.arn,
            retention_in_days=args.flow_log_retention_days,
            tags=tags("vpc-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=iam.service_trust(FLOW_LOGS_SERVICE),
            # Like every other role: a deploy identity allowed only boundary-carrying iam:CreateRole is
            # otherwise denied (IAM user guide, "Permissions boundaries for IAM entities").
            permissions_boundary=args.permissions_boundary,
            description=f"VPC flow logs of {args.cluster_name} into {log_group_name}",
            tags=tags("vpc-flow-logs"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,  # a role's id is its name
            policy=log_group.arn.apply(flow_log_policy),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags=tags("vpc-flow-logs"),
            # The role must be able to write before the first records are delivered.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        # -- endpoints: AWS APIs without leaving the VPC
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in [*private_rts, isolated_rt]],
            tags=tags("s3"),
            opts=child,
        )
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description=f"Interface VPC endpoints of {args.cluster_name}: HTTPS from inside the VPC only",
            # Inline rules are authoritative: a rule added by hand is removed on the next update.
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from the VPC",
                    protocol="tcp",
                    from_port=HTTPS,
                    to_port=HTTPS,
                    cidr_blocks=[args.vpc_cidr],
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="Only within the VPC",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=[args.vpc_cidr],
                )
            ],
            tags=tags("endpoints"),
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in subnets["private"]],
                security_group_ids=[endpoint_sg.id],
                tags=tags(service.replace(".", "-")),
                opts=child,
            )

        self.handle = NetworkHandle(
            vpc_id=vpc.id,
            vpc_cidr=args.vpc_cidr,
            availability_zones=zones,
            public_subnet_ids=[subnet.id for subnet in subnets["public"]],
            private_subnet_ids=[subnet.id for subnet in subnets["private"]],
            isolated_subnet_ids=[subnet.id for subnet in subnets["isolated"]],
        )
        self.register_outputs(
            {
                "vpcId": vpc.id,
                "publicSubnetIds": self.handle.public_subnet_ids,
                "privateSubnetIds": self.handle.private_subnet_ids,
                "isolatedSubnetIds": self.handle.isolated_subnet_ids,
                "flowLogGroup": log_group_name,
            }
        )
