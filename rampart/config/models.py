"""The typed platform configuration: the one source of truth the program is built from.

A stack file's ``rampart:`` keys map one to one onto :class:`PlatformConfig`'s fields, except
``services``: the stack names catalog services, which rampart.config.catalog merges with the
stack's ``rampart:service_overrides`` into full declarations first. Every model forbids unknown
keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.core.supply_chain import REGISTRY_PREFIX
from rampart.config.teams import IamArn, Team, refuse_session
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
    TagValue,
    cpu_millicores,
    memory_bytes,
)

Environment = Literal["local", "dev", "staging", "prod"]
Target = Literal["kubernetes", "aws"]
LoadBalancing = Literal["round_robin", "least_request", "source_ip_hash"]


class StrictModel(BaseModel):
    # A field's docstring is its description: the JSON Schema and docs/configuration.md show it.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Replicas(StrictModel):
    min: PositiveInt = 2
    """Fewest replicas (raised to sizing.min_replicas)."""
    max: PositiveInt = 4
    """Most replicas the HPA scales to."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Replicas:
        """min is at most max."""
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ComputeAmount(StrictModel):
    cpu: CpuQuantity
    """CPU quantity, e.g. 250m or 1."""
    memory: MemoryQuantity
    """Memory quantity, e.g. 256Mi or 1Gi."""


class Resources(StrictModel):
    requests: ComputeAmount = ComputeAmount(cpu="100m", memory="128Mi")
    """What each container is guaranteed."""
    limits: ComputeAmount = ComputeAmount(cpu="500m", memory="256Mi")
    """The most each container may use."""

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        """requests are within limits (cpu and memory)."""
        if cpu_millicores(self.requests.cpu) > cpu_millicores(self.limits.cpu):
            raise ValueError(f"requests.cpu {self.requests.cpu} exceeds limits.cpu {self.limits.cpu}")
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"requests.memory {self.requests.memory} exceeds limits.memory {self.limits.memory}"
            )
        return self


class Health(StrictModel):
    liveness: HttpPath = "/healthz"
    """HTTP path of the liveness probe."""
    readiness: HttpPath = "/readyz"
    """HTTP path of the readiness probe."""
    startup: HttpPath | None = None
    """Slow starters get a startup probe so liveness does not kill them while booting."""


class Autoscaling(StrictModel):
    cpu_utilization: int = Field(default=70, ge=10, le=95, strict=True)
    """Target average CPU utilisation (% of requests) the HPA scales on."""


class Database(StrictModel):
    engine: Literal["postgres"] = "postgres"
    """The database engine (PostgreSQL)."""
    storage_gb: int = Field(default=20, ge=1, le=16384, strict=True)
    """Allocated storage in GiB."""


class Queues(StrictModel):
    publishes: list[DnsLabel] = []
    """Queues this service publishes (it owns them; one publisher per queue)."""
    consumes: list[DnsLabel] = []
    """Queues this service consumes (each consumer gets its own quorum queue)."""


class RateLimit(StrictModel):
    requests_per_minute: PositiveInt
    """Requests per minute per client (IP) at the gateway, all replicas together: each of the
    gateway.replicas Kong nodes counts on its own (DB-less `local` policy) and allows this divided by
    the replicas, rounded down, so the total never exceeds it; a client whose connections all reach
    one node gets that share only. At least gateway.replicas. During a rolling update (one surge
    pod) the total may briefly reach (replicas + 1) / replicas of it."""


HttpsUrl = Annotated[StrictStr, Field(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$")]
Origin = Annotated[StrictStr, Field(pattern=r"^https?://[A-Za-z0-9.*-]+(:[0-9]+)?$")]


class Route(StrictModel):
    host: Hostname
    """The public host name."""
    path: HttpPath = "/"
    """Path prefix routed to the service."""
    auth: StrictBool = True
    """Secure by default: a public route demands a valid JWT unless it says otherwise."""
    rate_limit: RateLimit | None = None
    """Per-client rate limit; none when unset."""
    ip_allowlist: list[Cidr] = []
    """Only these source CIDRs may use the route; anyone when empty."""
    max_body_mb: int | None = Field(default=None, ge=1, le=1024, strict=True)
    """Largest request body accepted at the gateway; the gateway's default when unset."""
    cors_origins: list[Origin] = []
    """Browser origins allowed by CORS; none means CORS stays off for the route."""


class Traffic(StrictModel):
    """How callers reach the service through the mesh."""

    timeout_seconds: float = Field(default=15.0, ge=0.001, le=300)
    """Whole-request timeout, retries included."""
    retries: int = Field(default=2, ge=0, le=10, strict=True)
    """Retries per request. Every method is retried only when the request never reached the service
    (connect-failure, refused-stream); idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) also on
    a reset or a 5xx. POST and PATCH are never re-sent after the service may have acted on them."""
    per_try_timeout_seconds: float = Field(default=5.0, ge=0.001, le=300)
    """Timeout of each try (at most timeout_seconds)."""
    max_connections: PositiveInt = 100
    """Most TCP connections to the service per caller proxy."""
    max_pending_requests: PositiveInt = 100
    """Most requests queued for a connection."""
    consecutive_5xx_errors: PositiveInt = 5
    """Outlier detection: eject an endpoint after this many consecutive 5xx."""

    @model_validator(mode="after")
    def _per_try_within_timeout(self) -> Traffic:
        """per_try_timeout_seconds is at most timeout_seconds."""
        if self.per_try_timeout_seconds > self.timeout_seconds:
            raise ValueError(
                f"per_try_timeout_seconds ({self.per_try_timeout_seconds}) exceeds timeout_seconds "
                f"({self.timeout_seconds})"
            )
        return self


# Where a private egress destination may live: RFC 1918 and carrier-grade NAT, never link-local (the
# instance metadata endpoint) or public space (public hosts need no block: they are matched by name).
EGRESS_PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


class Egress(StrictModel):
    """An external destination a service calls. A bare host name in `egress:` means
    `{host: <name>, port: 443, protocol: HTTPS}`."""

    host: Hostname
    """Its DNS name (a leading `*.` matches subdomains, HTTPS and TLS only)."""
    port: Port = 443
    """The port the service connects to; the mesh and the NetworkPolicy admit this port only."""
    protocol: Literal["HTTPS", "TLS", "TCP"] = "HTTPS"
    """HTTPS or TLS: the application speaks TLS from the first byte and the mesh passes the connection
    on by its SNI. TCP: anything else (SMTP with STARTTLS, a database), matched by port and, with
    `cidr`, by address."""
    cidr: Cidr | None = None
    """A private destination (RFC 1918 or 100.64.0.0/10): the block its addresses are in. The
    NetworkPolicy then admits this block on `port` (instead of public addresses only) and the mesh
    entry lists it. Unset: a public host."""

    @model_validator(mode="after")
    def _consistent(self) -> Egress:
        """A wildcard host needs HTTPS or TLS (SNI); cidr lies in a private range."""
        if self.host.startswith("*.") and self.protocol == "TCP":
            raise ValueError(
                f"host {self.host!r}: a wildcard is matched by SNI, so protocol must be HTTPS or TLS"
            )
        if self.cidr is not None:
            network = ipaddress.ip_network(self.cidr, strict=False)
            if not any(
                network.version == 4 and network.subnet_of(ipaddress.IPv4Network(r))
                for r in EGRESS_PRIVATE_RANGES
            ):
                raise ValueError(
                    f"cidr {self.cidr}: a private destination lies in {', '.join(EGRESS_PRIVATE_RANGES)}; "
                    "public hosts need no cidr"
                )
        return self


def _egress_entries(value: object) -> object:
    """A bare host name is HTTPS on 443."""
    if isinstance(value, list):
        return [{"host": entry} if isinstance(entry, str) else entry for entry in value]
    return value


def _egress_schema(schema: dict[str, Any]) -> None:
    """Editors accept both forms: a host name, or the full entry."""
    items = schema.get("items")
    if items is not None:
        schema["items"] = {"anyOf": [{"type": "string", "description": "a host name: HTTPS on 443"}, items]}


class ServiceSpec(StrictModel):
    """One service on the paved road, as a team declares it."""

    name: DnsLabel
    """The service's name, also its namespace (in the catalog: the file name)."""
    image: PinnedImage
    """Container image, pinned by a version tag or an @sha256 digest (never latest)."""
    port: Port = 8080
    """The port the container serves HTTP on."""
    replicas: Replicas = Replicas()
    """HPA bounds."""
    resources: Resources = Resources()
    """CPU and memory requests and limits per pod."""
    health: Health = Health()
    """Probe paths."""
    autoscaling: Autoscaling = Autoscaling()
    """What the HPA scales on."""
    calls: list[DnsLabel] = []
    """The only services it may reach (NetworkPolicy and mesh policy follow)."""
    database: Database | None = None
    """Its own PostgreSQL; none when unset."""
    queue: Queues = Queues()
    """Queues it publishes and consumes."""
    routes: list[Route] = []
    """Public routes through the gateway."""
    load_balancing: LoadBalancing = "round_robin"
    """How callers spread requests over its pods."""
    traffic: Traffic = Traffic()
    """Timeouts, retries and connection limits for callers."""
    egress: Annotated[
        list[Egress], BeforeValidator(_egress_entries), Field(json_schema_extra=_egress_schema)
    ] = []
    """External destinations the service may call, each a host name (HTTPS on 443) or an entry with its
    port, protocol and, for a private destination, its cidr. Nothing else leaves: the mesh admits
    registered hosts only, on their declared ports."""
    env: dict[StrictStr, StrictStr] = {}
    """Plain environment variables (secrets come from Vault, never here)."""
    kubernetes_api_access: StrictBool = False
    """The pod gets a Kubernetes API token only when it truly talks to the API server."""
    team: DnsLabel | None = None
    """The team that owns the service, one of rampart:teams (required in the catalog): its people may
    operate the service in its namespace (roll its Deployment, read pods, logs, events and ConfigMaps,
    port-forward) and nothing elsewhere."""
    run_as_user: int = Field(default=10001, ge=10000, le=2**31 - 1, strict=True)
    """UID the container runs as (10000 or above)."""


class Sizing(StrictModel):
    """What differs between environments beyond the services themselves."""

    min_replicas: PositiveInt = 1
    """Floor applied to every service's replicas.min (prod wants at least 2 everywhere)."""
    quota_headroom: float = Field(default=1.5, ge=1.0, le=10.0)
    """Quota = per-pod limits x (max replicas + rollout surge) x headroom (room for sidecars)."""
    zone_spread: Literal["required", "preferred"] = "preferred"
    """'required' refuses to schedule pods that would break zone spread; single-zone clusters (kind, k3d)
    need 'preferred'."""


class KubernetesTarget(StrictModel):
    """The existing cluster the `kubernetes` target deploys onto."""

    context: NonEmptyStr | None = None
    """kubeconfig context; the current context when unset."""
    multi_zone: StrictBool = False
    """Whether the nodes span availability zones (carry topology.kubernetes.io/zone): only then can zone
    spread be required."""
    version: StrictStr = Field(default="1.33", pattern=r"^1\.[0-9]{2}$")
    """Kubernetes minor version the objects are validated against."""
    max_nodes: PositiveInt = 3
    """Most nodes the existing cluster has (kubernetes target): DaemonSets (Alloy) run a pod on each, and
    the monitoring namespace's quota is sized for that many."""


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
    """EC2 instance types of the group."""
    min_size: PositiveInt = 2
    """Fewest nodes."""
    max_size: PositiveInt = 4
    """Most nodes."""
    desired_size: PositiveInt = 2
    """Nodes at creation (between min_size and max_size)."""
    disk_gb: int = Field(default=50, ge=20, le=1000, strict=True)
    """Encrypted gp3 root volume size (GiB)."""

    @model_validator(mode="after")
    def _sizes_ordered(self) -> NodeGroup:
        """min_size <= desired_size <= max_size."""
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"sizes must satisfy min_size <= desired_size <= max_size "
                f"(got {self.min_size}, {self.desired_size}, {self.max_size})"
            )
        return self


class Karpenter(StrictModel):
    """Workload capacity: what Karpenter may launch, and how much of it at most."""

    cpu_limit: PositiveInt = 64
    """Most vCPUs Karpenter may launch in total."""
    memory_limit_gb: PositiveInt = 256
    """Most memory (GiB) Karpenter may launch in total."""
    capacity_types: list[Literal["on-demand", "spot"]] = Field(default=["on-demand"], min_length=1)
    """On-demand and/or spot capacity."""
    instance_categories: list[Literal["c", "m", "r", "t"]] = Field(default=["c", "m", "r"], min_length=1)
    """EC2 instance categories Karpenter may choose from."""
    create_spot_service_linked_role: StrictBool = True
    """With spot in capacity_types: create the account's EC2 Spot service-linked role
    (AWSServiceRoleForEC2Spot), without which EC2 refuses spot launches. One per account, and creating it
    fails where it already exists: set false in every stack of an account but the one that creates it."""


# RFC 1918 and the shared address space (RFC 6598): where a deploy runner's network can be.
PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(block)
    for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


class AwsTarget(StrictModel):
    """The `aws` target: a VPC and an EKS cluster built by Rampart."""

    region: StrictStr = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    """AWS region of the VPC and cluster, e.g. eu-west-1."""
    availability_zones: list[Annotated[StrictStr, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")]] = (
        Field(min_length=2, max_length=6)
    )
    """Zones the subnets span (2 to 6, all in the region)."""
    vpc_cidr: Cidr = "10.20.0.0/16"
    """The VPC's IPv4 block, /16 to /22; subnets are carved from it."""
    nat_gateways: Literal["per_az", "single"] = "per_az"
    """A NAT gateway per availability zone survives the loss of a zone; one is cheaper."""
    flow_log_retention_days: int = Field(default=90, strict=True)
    """Days VPC flow logs are kept (a CloudWatch retention period)."""
    control_plane_log_retention_days: int = Field(default=90, strict=True)
    """Days EKS control-plane logs are kept (a CloudWatch retention period)."""
    endpoint_public_access: StrictBool = False
    """Open the EKS API endpoint to public_access_cidrs as well as the VPC (never in staging or prod)."""
    public_access_cidrs: list[Cidr] = []
    """Who may reach a public API endpoint; required with endpoint_public_access, never 0.0.0.0/0."""
    private_access_cidrs: list[Cidr] = []
    """Private networks that reach the private API endpoint on 443 (a rule on the cluster security group):
    the self-hosted runner that deploys this stack, in the VPC or a network routed to it. Private IPv4
    blocks only (10/8, 172.16/12, 192.168/16, 100.64/10)."""
    admin_principal_arns: list[IamArn] = Field(min_length=1)
    """IAM roles or users given cluster-admin access entries (the deployer must be one of them)."""
    permissions_boundary_arn: (
        Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$")] | None
    ) = None
    """Permissions boundary attached to every IAM role Rampart creates."""
    system_nodes: NodeGroup = NodeGroup()
    """The managed node group for system add-ons."""
    node_ami_release: Annotated[StrictStr, Field(pattern=r"^1\.[0-9]{2}\.[0-9]+-[0-9]{8}$")] | None = None
    """EKS-optimised AL2023 AMI release every node boots, `<kubernetes>.<patch>-<yyyymmdd>` (e.g.
    1.33.0-20250627; Karpenter gets al2023@v<yyyymmdd>). Required in staging and prod; promoted
    dev -> staging -> prod (docs/node-ami.md). Unset: the latest release (dev only)."""
    karpenter: Karpenter = Karpenter()
    """What Karpenter may launch for workloads."""

    @field_validator("admin_principal_arns")
    @classmethod
    def _no_sessions(cls, arns: list[str]) -> list[str]:
        """An access entry names an IAM role or user; EKS rejects an STS session (assumed-role) ARN."""
        for arn in arns:
            refuse_session(arn)
        return arns

    @field_validator("private_access_cidrs")
    @classmethod
    def _private_only(cls, cidrs: list[str]) -> list[str]:
        """private_access_cidrs are private IPv4 blocks: the private endpoint is never on the internet."""
        for cidr in cidrs:
            network = ipaddress.ip_network(cidr)
            private = isinstance(network, ipaddress.IPv4Network) and any(
                network.subnet_of(block) for block in PRIVATE_V4
            )
            if not private:
                raise ValueError(f"{cidr} is not private IPv4 (10/8, 172.16/12, 192.168/16, 100.64/10)")
        return cidrs

    @model_validator(mode="after")
    def _checks(self) -> AwsTarget:
        """Retention periods are CloudWatch's; vpc_cidr is IPv4 /16 to /22; availability_zones are distinct
        and in the region; a public endpoint needs public_access_cidrs without 0.0.0.0/0 or ::/0."""
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
    """The token issuer (iss) routes with auth: true accept."""
    jwks_uri: HttpsUrl | None = None
    """Where the issuer's signing keys are published: istiod fetches them, so it must resolve and be
    reachable from inside the cluster. Exactly one of jwks_uri and jwks."""
    jwks: NonEmptyStr | None = None
    """The issuer's public keys inline, a JSON Web Key Set (`{"keys": [...]}`): for a cluster that
    cannot reach the issuer, such as a local kind/k3d one. Exactly one of jwks_uri and jwks."""
    audiences: list[NonEmptyStr] = []
    """Accepted audiences (aud); any when empty."""

    @field_validator("jwks")
    @classmethod
    def _jwks_is_a_key_set(cls, value: str | None) -> str | None:
        # RFC 7517 section 5: a JWK Set is a JSON object whose "keys" member is an array of JWKs,
        # each with a "kty"; Istio's RequestAuthentication takes it as a string (jwtRules[].jwks).
        if value is None:
            return value
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"is not JSON ({error.msg})") from None
        keys = loaded.get("keys") if isinstance(loaded, dict) else None
        if not isinstance(keys, list) or not keys:
            raise ValueError('must be a JSON Web Key Set: an object with a non-empty "keys" list')
        if not all(isinstance(key, dict) and key.get("kty") for key in keys):
            raise ValueError('every key in "keys" needs a "kty"')
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> Jwt:
        if (self.jwks_uri is None) == (self.jwks is None):
            raise ValueError("set exactly one of jwks_uri and jwks")
        return self


class Mesh(StrictModel):
    istiod_replicas: PositiveInt = 1
    """istiod replicas (HA in prod)."""
    access_logs: StrictBool = True
    """Envoy access logs on every sidecar."""
    trace_sampling: float = Field(default=1.0, ge=0, le=100)
    """Percentage of requests traced (0-100)."""


GatewayServiceType = Literal["LoadBalancer", "NodePort", "ClusterIP"]


class Gateway(StrictModel):
    replicas: PositiveInt = 2
    """Kong proxy replicas."""
    source_ranges: list[Cidr] = Field(default=["0.0.0.0/0"], min_length=1)
    """Who may reach the gateway's load balancer at all."""
    default_max_body_mb: int = Field(default=8, ge=1, le=1024, strict=True)
    """Largest request body (MB) for routes that set no max_body_mb."""
    service_type: GatewayServiceType | None = None
    """How Kong's proxy Service is exposed. aws: LoadBalancer only (the NLB), the default there. kubernetes:
    NodePort by default (a bare kind/k3d cluster has no load-balancer implementation, and a LoadBalancer
    Service would keep the release waiting for an address); ClusterIP to reach it by `kubectl
    port-forward` only; LoadBalancer when the cluster has an implementation (cloud, MetalLB, k3d's)."""


class Certificates(StrictModel):
    """Where TLS certificates come from: a self-signed root (local) or ACME over Route 53."""

    issuer: Literal["self_signed", "acme"] = "self_signed"
    """self_signed: a platform CA (local); acme: Let's Encrypt through DNS-01 on Route 53 (aws)."""
    acme_email: Annotated[StrictStr, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")] | None = None
    """Contact address for the ACME account (issuer acme)."""
    acme_server: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    """ACME directory URL."""
    hosted_zone_id: Annotated[StrictStr, Field(pattern=r"^Z[A-Z0-9]{4,32}$")] | None = None
    """Route 53 hosted zone DNS-01 challenges are written to (issuer acme), and on aws the public
    route hosts' alias records to the gateway's load balancer."""

    @model_validator(mode="after")
    def _acme_needs(self) -> Certificates:
        """issuer acme needs acme_email and hosted_zone_id."""
        if self.issuer == "acme" and (self.acme_email is None or self.hosted_zone_id is None):
            raise ValueError("issuer 'acme' needs acme_email and hosted_zone_id (DNS-01 through Route 53)")
        return self


def pem_file(value: str, info: ValidationInfo, hint: str) -> str:
    """The absolute path of a readable file of PEM certificates; relative paths start at the project
    directory (the loader's context ``root``)."""
    root = (info.context or {}).get("root")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(root) if root is not None else Path.cwd()) / path
    try:
        pem = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {value} ({exc.strerror}); {hint}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise ValueError(f"{value} holds no PEM certificate") from None
    return str(path.resolve())


class Vault(StrictModel):
    """The secret store. Configuring Vault needs Vault up and initialised: a second, explicit step."""

    replicas: PositiveInt = 1
    """1: standalone raft; 3 or more: HA raft across zones."""
    storage_gb: int = Field(default=10, ge=1, le=1000, strict=True)
    """Raft storage per Vault pod (GiB)."""
    configure: StrictBool = False
    """Phase 2, after `vault operator init`: configure auth, engines, policies and roles."""
    address: HttpsUrl = "https://vault.vault.svc:8200"
    """Where Pulumi reaches Vault in phase 2: https://127.0.0.1:<port> is the port-forward `rampart
    vault-phase2` opens; the provider verifies Vault's in-cluster name (vault.vault.svc) on any route."""
    ca_cert_file: NonEmptyStr | None = None
    """Phase 2: the CA that signed Vault's certificate, a PEM file (relative to the project directory),
    pinned from the vault-tls Secret by `rampart vault-phase2`; the Vault provider verifies against it."""

    @field_validator("ca_cert_file")
    @classmethod
    def _ca_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """ca_cert_file is a readable PEM certificate; relative paths start at the project directory."""
        if value is None:
            return None
        return pem_file(
            value, info, "`rampart vault-phase2 --stack <stack>` writes it from the vault-tls Secret"
        )

    @model_validator(mode="after")
    def _quorum(self) -> Vault:
        """replicas is 1 or at least 3 (a raft quorum survives the loss of one)."""
        if self.replicas == 2:
            raise ValueError("replicas: raft needs 1 (standalone) or at least 3 (a quorum survives a loss)")
        return self


# Performance Insights keeps 7 days free, or whole months (31-day steps) up to two years.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *range(31, 31 * 24, 31), 731)


class Databases(StrictModel):
    """How every service database of the stack runs: RDS or Aurora PostgreSQL on aws, a
    CloudNativePG cluster on kubernetes. A service only says that it has one, and how big."""

    flavour: Literal["rds", "aurora"] = "rds"
    """aws: one RDS instance per service, or an Aurora cluster with `instances` members."""
    engine_version: StrictStr = Field(default="16", pattern=r"^1[4-9]$")
    """PostgreSQL major (RDS picks the newest minor and upgrades minors in the maintenance window).
    Raising it on aws is a major upgrade: set allow_major_version_upgrade and apply_immediately in the
    same change (docs/nothing-lost.md, "I raised the PostgreSQL major")."""
    allow_major_version_upgrade: StrictBool = False
    """aws: let RDS / Aurora move to a new major when engine_version changes (RDS refuses a new major
    without it). Opt-in per upgrade: set it with the engine_version change, remove it afterwards.
    Requires apply_immediately."""
    apply_immediately: StrictBool = False
    """aws: apply database changes during `pulumi up` (short outage on engine / instance class changes)
    instead of in the next maintenance window. A major upgrade needs it: deferred, the instance keeps
    the old parameter group (old family) while Pulumi deletes that group, and the update fails."""
    instance_class: StrictStr = Field(default="db.t4g.medium", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    """RDS / Aurora instance class."""
    multi_az: StrictBool = False
    """RDS: a standby in another zone. Aurora and CloudNativePG get their replicas from `instances`."""
    instances: PositiveInt = 1
    """Aurora members / CloudNativePG instances (1 primary + replicas)."""
    backup_retention_days: int = Field(default=7, ge=1, le=35, strict=True)
    """Days of automated backups, which is also the point-in-time recovery window."""
    max_storage_factor: int = Field(default=2, ge=2, le=10, strict=True)
    """Storage autoscaling ceiling, as a multiple of each service's storage_gb."""
    performance_insights_retention_days: int = Field(default=7, strict=True)
    """Days Performance Insights keeps: 7, a multiple of 31 up to 713, or 731."""
    monitoring_interval_seconds: Literal[1, 5, 10, 15, 30, 60] = 60
    """Enhanced monitoring granularity (seconds)."""
    ca_bundle_file: NonEmptyStr | None = None
    """aws: the RDS CA bundle (PEM, relative to the project directory) that Vault's database connections
    verify the servers against (sslmode=verify-full). `make rds-ca-bundle` downloads AWS's bundle for the
    stack's region; commit it, so plans need no network. Required with vault.configure on aws."""

    @field_validator("ca_bundle_file")
    @classmethod
    def _ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        """ca_bundle_file is a readable PEM file; relative paths start at the project directory."""
        if value is None:
            return None
        return pem_file(value, info, "`make rds-ca-bundle REGION=<region>` downloads it")

    @model_validator(mode="after")
    def _checks(self) -> Databases:
        """performance_insights_retention_days is 7, a multiple of 31 up to 713, or 731."""
        if self.performance_insights_retention_days not in PERFORMANCE_INSIGHTS_RETENTION_DAYS:
            raise ValueError(
                f"performance_insights_retention_days {self.performance_insights_retention_days} must be 7, "
                "a multiple of 31 up to 713, or 731"
            )
        return self


class Messaging(StrictModel):
    """The RabbitMQ broker asynchronous work goes through: Amazon MQ on aws, the RabbitMQ cluster
    operator on kubernetes. Created only when some service publishes or consumes a queue."""

    engine_version: StrictStr = Field(default="3.13", pattern=r"^[34]\.[0-9]+$")
    """RabbitMQ major.minor (Amazon MQ applies patch releases itself)."""
    instance_type: StrictStr = Field(default="mq.m5.large", pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")
    """aws: the broker instance type, and a single instance or a three-node cluster across zones."""
    deployment: Literal["single_instance", "cluster"] = "single_instance"
    """aws: one broker instance, or a three-node cluster across zones."""
    replicas: PositiveInt = 1
    """kubernetes: RabbitmqCluster nodes (1, or an odd 3+ so quorum queues keep a majority)."""
    storage_gb: int = Field(default=10, ge=1, le=1000, strict=True)
    """kubernetes: persistent storage per RabbitMQ node (GiB)."""

    @model_validator(mode="after")
    def _checks(self) -> Messaging:
        """replicas is 1 or odd (quorum queues keep a majority); a cluster deployment needs mq.m5 or
        larger."""
        if self.replicas > 1 and self.replicas % 2 == 0:
            raise ValueError(f"replicas {self.replicas}: quorum queues need 1 or an odd number of nodes")
        if self.deployment == "cluster" and self.instance_type.startswith("mq.t3."):
            raise ValueError(f"instance_type {self.instance_type}: a cluster deployment needs mq.m5 or up")
        return self


class Observability(StrictModel):
    prometheus_replicas: PositiveInt = 1
    """Prometheus replicas."""
    alertmanager_replicas: PositiveInt = 1
    """Alertmanager replicas."""
    retention_days: int = Field(default=15, ge=1, le=3650, strict=True)
    """Days Prometheus keeps metrics."""
    storage_gb: int = Field(default=50, ge=1, le=10000, strict=True)
    """Prometheus persistent storage (GiB)."""
    log_retention_days: int = Field(default=14, ge=1, le=3650, strict=True)
    """Days Loki keeps logs."""


class Charts(StrictModel):
    """Where the Helm releases' charts come from: their repositories, or a local chart mirror."""

    mirror: NonEmptyStr | None = None
    """A chart mirror for air-gapped installs: a directory holding `<chart>-<version>.tgz` of every chart
    the stack installs, at its pinned version (`scripts/build_chart_mirror.py --out <dir>`; relative
    paths start at the project directory). Set, every Helm release installs from it and no chart
    repository is contacted; `rampart render --charts <dir>` renders from the same mirror."""

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, value: str | None, info: ValidationInfo) -> str | None:
        """mirror is an existing directory; relative paths start at the project directory."""
        if value is None:
            return None
        root = (info.context or {}).get("root")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (Path(root) if root is not None else Path.cwd()) / path
        if not path.is_dir():
            raise ValueError(
                f"{value} is not a directory (build one: scripts/build_chart_mirror.py --out {value})"
            )
        return str(path.resolve())


RegistryPrefix = Annotated[StrictStr, Field(pattern=REGISTRY_PREFIX)]


class SupplyChain(StrictModel):
    """Which images may run: checked at config time, by the policy pack and by the cluster's admission
    policy. Staging and prod also require every service image pinned by digest (not relaxable here)."""

    allowed_registries: list[RegistryPrefix] = Field(min_length=1)
    """Registry hosts with an optional path prefix (e.g. ghcr.io/acme): an image comes from one when it
    starts with it followed by '/' (ghcr.io/acme-evil/x does not). Images are compared as written:
    Docker Hub images name their registry (docker.io/library/nginx)."""


class PlatformConfig(StrictModel):
    environment: Environment
    """Which environment this stack is: it decides protection, HA minimums and policy enforcement."""
    target: Target
    """kubernetes: an existing cluster from the kubeconfig; aws: a VPC and EKS cluster Rampart builds."""
    owner: TagValue
    """Team that owns the stack (tagged on every resource, and on what AWS and the controllers launch)."""
    cost_center: TagValue
    """Cost center (tagged on every resource, and on what AWS and the controllers launch)."""
    kubernetes: KubernetesTarget = KubernetesTarget()
    """The cluster: context, version, zones."""
    aws: AwsTarget | None = None
    """Required when target is aws."""
    sizing: Sizing = Sizing()
    """Environment-wide sizing."""
    jwt: Jwt | None = None
    """Required when any route has auth: true."""
    mesh: Mesh = Mesh()
    """Istio settings."""
    gateway: Gateway = Gateway()
    """Kong, the API gateway."""
    certificates: Certificates = Certificates()
    """Where TLS certificates come from."""
    vault: Vault = Vault()
    """The Vault server and its configuration phase."""
    observability: Observability = Observability()
    """Prometheus, Alertmanager, Loki."""
    databases: Databases = Databases()
    """How every service database runs."""
    messaging: Messaging = Messaging()
    """The RabbitMQ broker."""
    charts: Charts = Charts()
    """Where the Helm charts come from (a local chart mirror for air-gapped installs)."""
    supply_chain: SupplyChain | None = None
    """Allowed image registries (required in staging and prod); unset: any registry (local, dev)."""
    teams: list[Team] = []
    """The teams that own the services (required in a stack file): each service's `team:` names one."""
    vault_token: SecretStr | None = None
    """The phase-2 token for configuring Vault, a secret set from stdin (`pulumi config set --secret
    rampart:vault_token < token-file`)."""
    services: list[ServiceSpec] = Field(min_length=1)
    """The services the stack runs (in a stack file: names from stacks/services/)."""

    def service(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def team(self, name: str) -> Team:
        return next(t for t in self.teams if t.name == name)

    def services_of(self, team: str) -> list[str]:
        """The services (each its own namespace) ``team`` owns."""
        return [s.name for s in self.services if s.team == team]

    def callers_of(self, name: str) -> list[str]:
        return [s.name for s in self.services if name in s.calls]

    def publisher_of(self, queue: str) -> str:
        """The service that publishes ``queue`` (config loading guarantees exactly one)."""
        return next(s.name for s in self.services if queue in s.queue.publishes)

    @property
    def uses_queues(self) -> bool:
        return any(s.queue.publishes or s.queue.consumes for s in self.services)
