"""The typed platform configuration: the one source of truth the program is built from.

A stack file's ``rampart:`` keys map one to one onto :class:`PlatformConfig`'s fields
(``rampart:services`` -> ``services``). Every model forbids unknown keys, so a typo is
an error rather than a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictStr, model_validator

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


HttpsUrl = Annotated[StrictStr, Field(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$")]
Origin = Annotated[StrictStr, Field(pattern=r"^https?://[A-Za-z0-9.*-]+(:[0-9]+)?$")]


class Route(StrictModel):
    host: Hostname
    path: HttpPath = "/"
    # Secure by default: a public route demands a valid JWT unless it says otherwise.
    auth: StrictBool = True
    rate_limit: RateLimit | None = None
    ip_allowlist: list[Cidr] = []
    # Largest request body accepted at the gateway; the gateway's default when unset.
    max_body_mb: int | None = Field(default=None, ge=1, le=1024, strict=True)
    # Browser origins allowed by CORS; none means CORS stays off for the route.
    cors_origins: list[Origin] = []


class Traffic(StrictModel):
    """How callers reach the service through the mesh."""

    timeout_seconds: float = Field(default=15.0, ge=0.001, le=300)
    retries: int = Field(default=2, ge=0, le=10, strict=True)
    per_try_timeout_seconds: float = Field(default=5.0, ge=0.001, le=300)
    max_connections: PositiveInt = 100
    max_pending_requests: PositiveInt = 100
    # Outlier detection: eject an endpoint after this many consecutive 5xx.
    consecutive_5xx_errors: PositiveInt = 5

    @model_validator(mode="after")
    def _per_try_within_timeout(self) -> Traffic:
        if self.per_try_timeout_seconds > self.timeout_seconds:
            raise ValueError(
                f"per_try_timeout_seconds ({self.per_try_timeout_seconds}) exceeds timeout_seconds "
                f"({self.timeout_seconds})"
            )
        return self


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
    traffic: Traffic = Traffic()
    # External hosts the service may call (the mesh allows registered hosts only).
    egress: list[Hostname] = []
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


class Jwt(StrictModel):
    """The identity provider whose tokens public routes with `auth: true` require."""

    issuer: HttpsUrl
    jwks_uri: HttpsUrl
    audiences: list[NonEmptyStr] = []


class Mesh(StrictModel):
    istiod_replicas: PositiveInt = 1
    access_logs: StrictBool = True
    # Percentage of requests traced (0-100).
    trace_sampling: float = Field(default=1.0, ge=0, le=100)


class Gateway(StrictModel):
    replicas: PositiveInt = 2
    # Who may reach the gateway's load balancer at all.
    source_ranges: list[Cidr] = Field(default=["0.0.0.0/0"], min_length=1)
    default_max_body_mb: int = Field(default=8, ge=1, le=1024, strict=True)


class Certificates(StrictModel):
    """Where TLS certificates come from: a self-signed root (local) or ACME over Route 53."""

    issuer: Literal["self_signed", "acme"] = "self_signed"
    acme_email: Annotated[StrictStr, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")] | None = None
    acme_server: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    hosted_zone_id: Annotated[StrictStr, Field(pattern=r"^Z[A-Z0-9]{4,32}$")] | None = None

    @model_validator(mode="after")
    def _acme_needs(self) -> Certificates:
        if self.issuer == "acme" and (self.acme_email is None or self.hosted_zone_id is None):
            raise ValueError("issuer 'acme' needs acme_email and hosted_zone_id (DNS-01 through Route 53)")
        return self


class Vault(StrictModel):
    """The secret store. Configuring Vault needs Vault up and initialised: a second, explicit step."""

    # 1: standalone raft; 3 or more: HA raft across zones.
    replicas: PositiveInt = 1
    storage_gb: int = Field(default=10, ge=1, le=1000, strict=True)
    # Phase 2, after `vault operator init`: configure auth, engines, policies and roles.
    configure: StrictBool = False
    # Where Pulumi reaches Vault in phase 2 (in-cluster DNS, or a port-forward from CI).
    address: HttpsUrl = "https://vault.vault.svc:8200"

    @model_validator(mode="after")
    def _quorum(self) -> Vault:
        if self.replicas == 2:
            raise ValueError("replicas: raft needs 1 (standalone) or at least 3 (a quorum survives a loss)")
        return self


# Performance Insights keeps 7 days free, or whole months (31-day steps) up to two years.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *range(31, 31 * 24, 31), 731)


class Databases(StrictModel):
    """How every service database of the stack runs: RDS or Aurora PostgreSQL on aws, a
    CloudNativePG cluster on kubernetes. A service only says that it has one, and how big."""

    # aws: one RDS instance per service, or an Aurora cluster with `instances` members.
    flavour: Literal["rds", "aurora"] = "rds"
    # PostgreSQL major (RDS picks the newest minor and upgrades minors in the maintenance window).
    engine_version: StrictStr = Field(default="16", pattern=r"^1[4-9]$")
    instance_class: StrictStr = Field(default="db.t4g.medium", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    # RDS: a standby in another zone. Aurora and CloudNativePG get their replicas from `instances`.
    multi_az: StrictBool = False
    # Aurora members / CloudNativePG instances (1 primary + replicas).
    instances: PositiveInt = 1
    # Days of automated backups, which is also the point-in-time recovery window.
    backup_retention_days: int = Field(default=7, ge=1, le=35, strict=True)
    # Storage autoscaling ceiling, as a multiple of each service's storage_gb.
    max_storage_factor: int = Field(default=2, ge=2, le=10, strict=True)
    performance_insights_retention_days: int = Field(default=7, strict=True)
    # Enhanced monitoring granularity (seconds).
    monitoring_interval_seconds: Literal[1, 5, 10, 15, 30, 60] = 60

    @model_validator(mode="after")
    def _checks(self) -> Databases:
        if self.performance_insights_retention_days not in PERFORMANCE_INSIGHTS_RETENTION_DAYS:
            raise ValueError(
                f"performance_insights_retention_days {self.performance_insights_retention_days} must be 7, "
                "a multiple of 31 up to 713, or 731"
            )
        return self


class Messaging(StrictModel):
    """The RabbitMQ broker asynchronous work goes through: Amazon MQ on aws, the RabbitMQ cluster
    operator on kubernetes. Created only when some service publishes or consumes a queue."""

    # RabbitMQ major.minor (Amazon MQ applies patch releases itself).
    engine_version: StrictStr = Field(default="3.13", pattern=r"^[34]\.[0-9]+$")
    # aws: the broker instance type, and a single instance or a three-node cluster across zones.
    instance_type: StrictStr = Field(default="mq.m5.large", pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")
    deployment: Literal["single_instance", "cluster"] = "single_instance"
    # kubernetes: RabbitmqCluster nodes (1, or an odd 3+ so quorum queues keep a majority).
    replicas: PositiveInt = 1
    storage_gb: int = Field(default=10, ge=1, le=1000, strict=True)

    @model_validator(mode="after")
    def _checks(self) -> Messaging:
        if self.replicas > 1 and self.replicas % 2 == 0:
            raise ValueError(f"replicas {self.replicas}: quorum queues need 1 or an odd number of nodes")
        if self.deployment == "cluster" and self.instance_type.startswith("mq.t3."):
            raise ValueError(f"instance_type {self.instance_type}: a cluster deployment needs mq.m5 or up")
        return self


class Observability(StrictModel):
    prometheus_replicas: PositiveInt = 1
    alertmanager_replicas: PositiveInt = 1
    retention_days: int = Field(default=15, ge=1, le=3650, strict=True)
    storage_gb: int = Field(default=50, ge=1, le=10000, strict=True)
    log_retention_days: int = Field(default=14, ge=1, le=3650, strict=True)


class PlatformConfig(StrictModel):
    environment: Environment
    target: Target
    owner: NonEmptyStr
    cost_center: NonEmptyStr
    kubernetes: KubernetesTarget = KubernetesTarget()
    # Required when target is aws.
    aws: AwsTarget | None = None
    sizing: Sizing = Sizing()
    # Required when any route has auth: true.
    jwt: Jwt | None = None
    mesh: Mesh = Mesh()
    gateway: Gateway = Gateway()
    certificates: Certificates = Certificates()
    vault: Vault = Vault()
    observability: Observability = Observability()
    databases: Databases = Databases()
    messaging: Messaging = Messaging()
    # The phase-2 token for configuring Vault (`pulumi config set --secret rampart:vault_token`).
    vault_token: SecretStr | None = None
    services: list[ServiceSpec] = Field(min_length=1)

    def service(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def callers_of(self, name: str) -> list[str]:
        return [s.name for s in self.services if name in s.calls]

    def publisher_of(self, queue: str) -> str:
        """The service that publishes ``queue`` (config loading guarantees exactly one)."""
        return next(s.name for s in self.services if queue in s.queue.publishes)

    @property
    def uses_queues(self) -> bool:
        return any(s.queue.publishes or s.queue.consumes for s in self.services)
