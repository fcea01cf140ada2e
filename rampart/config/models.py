"""The typed platform configuration: the one source of truth the program is built from.

A stack file's ``rampart:`` keys map one to one onto :class:`PlatformConfig`'s fields
(``rampart:services`` -> ``services``). Every model forbids unknown keys, so a typo is
an error rather than a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from rampart.config.types import (
    Cidr,
    CpuQuantity,
    DnsLabel,
    Hostname,
    HttpPath,
    MemoryQuantity,
    NonEmptyStr,
    PinnedImage,
    Port,
    PositiveInt,
    cpu_millicores,
    memory_bytes,
)

Environment = Literal["local", "dev", "staging", "prod"]
Target = Literal["kubernetes", "aws"]
LoadBalancing = Literal["round_robin", "least_request", "source_ip_hash"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Replicas(StrictModel):
    min: PositiveInt = 2
    max: PositiveInt = 4

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ComputeAmount(StrictModel):
    cpu: CpuQuantity
    memory: MemoryQuantity


class Resources(StrictModel):
    requests: ComputeAmount = ComputeAmount(cpu="100m", memory="128Mi")
    limits: ComputeAmount = ComputeAmount(cpu="500m", memory="256Mi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if cpu_millicores(self.requests.cpu) > cpu_millicores(self.limits.cpu):
            raise ValueError(f"requests.cpu {self.requests.cpu} exceeds limits.cpu {self.limits.cpu}")
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"requests.memory {self.requests.memory} exceeds limits.memory {self.limits.memory}"
            )
        return self


class Health(StrictModel):
    liveness: HttpPath = "/healthz"
    readiness: HttpPath = "/readyz"
    # Slow starters get a startup probe so liveness does not kill them while booting.
    startup: HttpPath | None = None


class Autoscaling(StrictModel):
    cpu_utilization: int = Field(default=70, ge=10, le=95, strict=True)


class Database(StrictModel):
    engine: Literal["postgres"] = "postgres"
    storage_gb: int = Field(default=20, ge=1, le=16384, strict=True)


class Queues(StrictModel):
    publishes: list[DnsLabel] = []
    consumes: list[DnsLabel] = []


class RateLimit(StrictModel):
    requests_per_minute: PositiveInt


class Route(StrictModel):
    host: Hostname
    path: HttpPath = "/"
    # Secure by default: a public route demands a valid JWT unless it says otherwise.
    auth: StrictBool = True
    rate_limit: RateLimit | None = None
    ip_allowlist: list[Cidr] = []


class ServiceSpec(StrictModel):
    """One service on the paved road, as a team declares it."""

    name: DnsLabel
    image: PinnedImage
    port: Port = 8080
    replicas: Replicas = Replicas()
    resources: Resources = Resources()
    health: Health = Health()
    autoscaling: Autoscaling = Autoscaling()
    calls: list[DnsLabel] = []
    database: Database | None = None
    queue: Queues = Queues()
    routes: list[Route] = []
    load_balancing: LoadBalancing = "round_robin"
    env: dict[StrictStr, StrictStr] = {}
    # The pod gets a Kubernetes API token only when it truly talks to the API server.
    kubernetes_api_access: StrictBool = False
    run_as_user: int = Field(default=10001, ge=10000, le=2**31 - 1, strict=True)


class Sizing(StrictModel):
    """What differs between environments beyond the services themselves."""

    # Floor applied to every service's replicas.min (prod wants at least 2 everywhere).
    min_replicas: PositiveInt = 1
    # Quota = per-pod limits x (max replicas + rollout surge) x headroom (room for sidecars).
    quota_headroom: float = Field(default=1.5, ge=1.0, le=10.0)
    # 'required' refuses to schedule pods that would break zone spread; single-zone
    # clusters (kind, k3d) need 'preferred'.
    zone_spread: Literal["required", "preferred"] = "preferred"


class KubernetesTarget(StrictModel):
    """The existing cluster the `kubernetes` target deploys onto."""

    # kubeconfig context; the current context when unset.
    context: NonEmptyStr | None = None
    # Whether the nodes span availability zones (carry topology.kubernetes.io/zone): only
    # then can zone spread be required.
    multi_zone: StrictBool = False
    # Kubernetes minor version the objects are validated against.
    version: StrictStr = Field(default="1.33", pattern=r"^1\.[0-9]{2}$")


# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class NodeGroup(StrictModel):
    """The managed node group that runs the system add-ons (Karpenter itself among them)."""

    instance_types: list[Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")]] = Field(
        default=["m6i.large"], min_length=1
    )
    min_size: PositiveInt = 2
    max_size: PositiveInt = 4
    desired_size: PositiveInt = 2
    disk_gb: int = Field(default=50, ge=20, le=1000, strict=True)

    @model_validator(mode="after")
    def _sizes_ordered(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"sizes must satisfy min_size <= desired_size <= max_size "
                f"(got {self.min_size}, {self.desired_size}, {self.max_size})"
            )
        return self


class Karpenter(StrictModel):
    """Workload capacity: what Karpenter may launch, and how much of it at most."""

    cpu_limit: PositiveInt = 64
    memory_limit_gb: PositiveInt = 256
    capacity_types: list[Literal["on-demand", "spot"]] = Field(default=["on-demand"], min_length=1)
    instance_categories: list[Literal["c", "m", "r", "t"]] = Field(default=["c", "m", "r"], min_length=1)


class AwsTarget(StrictModel):
    """The `aws` target: a VPC and an EKS cluster built by Rampart."""

    region: StrictStr = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    availability_zones: list[Annotated[StrictStr, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")]] = (
        Field(min_length=2, max_length=6)
    )
    vpc_cidr: Cidr = "10.20.0.0/16"
    # A NAT gateway per availability zone survives the loss of a zone; one is cheaper.
    nat_gateways: Literal["per_az", "single"] = "per_az"
    flow_log_retention_days: int = Field(default=90, strict=True)
    control_plane_log_retention_days: int = Field(default=90, strict=True)
    endpoint_public_access: StrictBool = False
    public_access_cidrs: list[Cidr] = []
    admin_principal_arns: list[
        Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$")]
    ] = Field(min_length=1)
    permissions_boundary_arn: (
        Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$")] | None
    ) = None
    system_nodes: NodeGroup = NodeGroup()
    karpenter: Karpenter = Karpenter()

    @model_validator(mode="after")
    def _checks(self) -> AwsTarget:
        for key in ("flow_log_retention_days", "control_plane_log_retention_days"):
            if getattr(self, key) not in LOG_RETENTION_DAYS:
                raise ValueError(f"{key} {getattr(self, key)} is not a CloudWatch retention period")
        network = ipaddress.ip_network(self.vpc_cidr)
        if network.version != 4 or not 16 <= network.prefixlen <= 22:
            raise ValueError(f"vpc_cidr {self.vpc_cidr} must be an IPv4 block from /16 to /22")
        if any(zone[:-1] != self.region for zone in self.availability_zones):
            raise ValueError(f"availability_zones must all be in {self.region}")
        if len(set(self.availability_zones)) != len(self.availability_zones):
            raise ValueError("availability_zones has duplicates")
        if self.endpoint_public_access:
            if not self.public_access_cidrs:
                raise ValueError("endpoint_public_access needs an explicit public_access_cidrs allowlist")
            if {"0.0.0.0/0", "::/0"} & set(self.public_access_cidrs):
                raise ValueError("public_access_cidrs may not contain 0.0.0.0/0 or ::/0")
        return self


class PlatformConfig(StrictModel):
    environment: Environment
    target: Target
    owner: NonEmptyStr
    cost_center: NonEmptyStr
    kubernetes: KubernetesTarget = KubernetesTarget()
    # Required when target is aws.
    aws: AwsTarget | None = None
    sizing: Sizing = Sizing()
    services: list[ServiceSpec] = Field(min_length=1)

    def service(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def callers_of(self, name: str) -> list[str]:
        return [s.name for s in self.services if name in s.calls]
