"""The typed platform configuration: the one source of truth the program is built from.

A stack file's ``rampart:`` keys map one to one onto :class:`PlatformConfig`'s fields
(``rampart:services`` -> ``services``). Every model forbids unknown keys, so a typo is
an error rather than a silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

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


class PlatformConfig(StrictModel):
    environment: Environment
    target: Target
    owner: NonEmptyStr
    cost_center: NonEmptyStr
    kubernetes: KubernetesTarget = KubernetesTarget()
    sizing: Sizing = Sizing()
    services: list[ServiceSpec] = Field(min_length=1)

    def service(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def callers_of(self, name: str) -> list[str]:
        return [s.name for s in self.services if name in s.calls]
