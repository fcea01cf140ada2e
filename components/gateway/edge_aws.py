"""The gateway's edge on aws: a Network Load Balancer the program owns, bound to Kong's proxy Service,
and a Route 53 alias record for every public host.

Why the program owns the NLB rather than the AWS Load Balancer Controller (a Service of type
LoadBalancer): an alias record needs the NLB's DNS name and hosted zone, which exist only once the
controller has built the NLB at runtime, so records for it need a second tool (external-dns, whose
chart has no reference defaults here) or a lookup after the fact. Owning the NLB makes every name a
plan-time output: the records are written on the first ``up`` and deleted before the NLB on destroy.

- **Load balancer**: internet-facing, in the public subnets, one TCP listener on 443 (Kong terminates
  TLS) to an ``ip`` target group on Kong's 8443 with client IP preservation, health-checked on Kong's
  status listener (``/status/ready`` on 8100). No listener on 80: only 443 is public.
- **Source ranges**: the NLB's own security group admits 443 from ``gateway.source_ranges`` only;
  the pods' group (the cluster security group) admits 8443 and 8100 from the NLB's group alone.
  Referencing the NLB's group lets its traffic in even with client IP preservation, and health checks
  obey the NLB's outbound rules only (Elastic Load Balancing, "Security groups for your Network Load
  Balancer": https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html).
- **Targets**: a ``TargetGroupBinding`` (elbv2.k8s.aws/v1beta1) has the AWS Load Balancer Controller
  register the pods behind Kong's proxy Service (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/targetgroupbinding/).
  The controller finalizes it: it waits for the controller's release, so destroy deletes it (and the
  controller deregisters the targets) before the controller goes, and before the target group.
- **DNS**: an A alias per public host to the NLB, in ``certificates.hosted_zone_id``, evaluating the
  target's health (Route 53 alias records: https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-choosing-alias-non-alias.html).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import labels
from components.targets.aws.handles import NetworkHandle

LISTENER_PORT = 443
TARGET_PORT = 8443
HEALTH_PORT = 8100
HEALTH_PATH = "/status/ready"
# The Service port of Kong's proxy that maps to TARGET_PORT (kong chart: proxy.tls.servicePort).
SERVICE_PORT = 443
BINDING_API = "elbv2.k8s.aws/v1beta1"
BINDING_NAME = "gateway-proxy-tls"
# The one exception the security pack's sg-no-public-ingress makes (policies/rules/aws.py): 443 from
# anywhere, on a rule that says it belongs to the public gateway.
PUBLIC_GATEWAY_TAG = "rampart.dev/public-gateway"


@dataclass(frozen=True)
class GatewayEdgeArgs:
    environment: str
    network: NetworkHandle
    # The group EKS gives every pod without a group of its own (Kong's pods): it admits the NLB.
    cluster_security_group_id: pulumi.Input[str]
    # Who may reach the gateway (gateway.source_ranges).
    source_ranges: Sequence[str]
    # Every public route's host, and the hosted zone their records go to.
    hosts: Sequence[str]
    hosted_zone_id: str
    # Kong's proxy Service and its namespace.
    namespace: str
    proxy_service: str
    provider: k8s.Provider
    # What the TargetGroupBinding waits for: Kong's release (its Service) and the load-balancer
    # controller's (its webhook and finalizer).
    binding_after: Sequence[pulumi.Resource]
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cidr in self.source_ranges:
            ipaddress.ip_network(cidr, strict=False)
        if not re.fullmatch(r"Z[A-Z0-9]{4,32}", self.hosted_zone_id):
            raise ValueError(f"hosted zone id {self.hosted_zone_id!r} is not a Route 53 zone id")


def record_resource_name(host: str) -> str:
    return f"dns-{host.replace('.', '-')}"


class GatewayEdge(pulumi.ComponentResource):
    load_balancer: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    security_group: aws.ec2.SecurityGroup
    binding: k8s.apiextensions.CustomResource
    records: dict[str, aws.route53.Record]

    def __init__(self, name: str, args: GatewayEdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:gateway:GatewayEdge", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "Name": f"rampart-{args.environment}-gateway"}
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-nlb-sg",
            vpc_id=args.network.vpc_id,
            description=f"Gateway NLB ({args.environment}): 443 from the source ranges, to Kong only",
            # Rules are separate resources below; no inline ones (and no default allow-all egress).
            tags=tags,
            opts=child,
        )
        self._rules(name, args, tags, child)
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=False,
            subnets=list(args.network.public_subnet_ids),
            security_groups=[self.security_group.id],
            enable_cross_zone_load_balancing=True,
            tags=tags,
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tls",
            port=TARGET_PORT,
            protocol="TCP",
            target_type="ip",
            vpc_id=args.network.vpc_id,
            # Kong's ip-restriction, per-IP rate limits and NetworkPolicy ipBlocks need the client's
            # address; ip targets over TCP hide it unless asked.
            preserve_client_ip="true",
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTP", port=str(HEALTH_PORT), path=HEALTH_PATH, matcher="200"
            ),
            tags=tags,
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=LISTENER_PORT,
            protocol="TCP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)
            ],
            tags=tags,
            opts=child,
        )
        self.binding = k8s.apiextensions.CustomResource(
            f"{name}-binding",
            api_version=BINDING_API,
            kind="TargetGroupBinding",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=BINDING_NAME,
                namespace=args.namespace,
                labels=labels.common(args.environment),
            ),
            spec={
                "serviceRef": {"name": args.proxy_service, "port": SERVICE_PORT},
                "targetGroupARN": self.target_group.arn,
                "targetType": "ip",
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.binding_after)
            ),
        )
        self.records = {
            host: aws.route53.Record(
                f"{name}-{record_resource_name(host)}",
                zone_id=args.hosted_zone_id,
                name=host,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.load_balancer.dns_name,
                        zone_id=self.load_balancer.zone_id,
                        evaluate_target_health=True,
                    )
                ],
                opts=child,
            )
            for host in sorted(set(args.hosts))
        }
        self.register_outputs({"dnsName": self.load_balancer.dns_name, "hosts": sorted(self.records)})

    def _rules(
        self, name: str, args: GatewayEdgeArgs, tags: Mapping[str, str], opts: pulumi.ResourceOptions
    ) -> None:
        nlb = self.security_group.id
        for index, cidr in enumerate(args.source_ranges):
            v6 = ipaddress.ip_network(cidr, strict=False).version == 6
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nlb-in-{index}",
                security_group_id=nlb,
                cidr_ipv4=None if v6 else cidr,
                cidr_ipv6=cidr if v6 else None,
                ip_protocol="tcp",
                from_port=LISTENER_PORT,
                to_port=LISTENER_PORT,
                description=f"HTTPS from {cidr} (gateway.source_ranges)",
                tags={**tags, PUBLIC_GATEWAY_TAG: "true"},
                opts=opts,
            )
        for port, what in ((TARGET_PORT, "Kong's TLS listener"), (HEALTH_PORT, "Kong's health checks")):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-nlb-out-{port}",
                security_group_id=nlb,
                referenced_security_group_id=args.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"To {what}",
                tags=dict(tags),
                opts=opts,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-pods-in-{port}",
                security_group_id=args.cluster_security_group_id,
                referenced_security_group_id=nlb,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{what} from the gateway NLB",
                tags=dict(tags),
                opts=opts,
            )
