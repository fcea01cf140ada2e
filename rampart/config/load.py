"""Validate raw stack configuration into a :class:`PlatformConfig`, reporting every problem at once.

Each problem is one line: the key path, a colon, what is wrong
(``services[2].calls[0]: unknown service 'paymnts'``).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from components.core.supply_chain import from_registry, has_digest, requires_digest
from components.namespaces import PLATFORM_NAMESPACES
from rampart.config import team_rules  # noqa: F401 - registers the teams' rules
from rampart.config.models import PlatformConfig
from rampart.config.rules import Problem, cross_key_problems, rule

__all__ = ["NAMESPACE", "ConfigError", "Problem", "load_platform_config", "namespace_values", "suggest"]

NAMESPACE = "rampart"


Loc = Sequence[int | str]
# Where a problem at a key path is reported: the path itself, or (for a stack merged from the
# service catalog, see rampart.config.catalog) the file and key the user has to edit.
Locate = Callable[[Loc], str]


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. ``str()`` is one line per problem, no traceback needed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def namespace_values(config: Mapping[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
    """``ns:key`` entries, as the CLI hands them to a program, as ``{key: value}`` (JSON decoded)."""
    prefix = f"{namespace}:"
    return {
        key.removeprefix(prefix): _decode(value) for key, value in config.items() if key.startswith(prefix)
    }


def _decode(value: Any) -> Any:
    # The CLI passes structured values as JSON text and scalars as plain strings.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def format_path(loc: Loc, names: Sequence[object] = ()) -> str:
    """``services[7] (shipping).replicaz``: a service's position, and its name when ``names`` has it."""
    path = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
            if position == 1 and loc[0] == "services" and part < len(names) and isinstance(names[part], str):
                path += f" ({names[part]})"
        else:
            path += f".{part}" if path else part
    return path or "(root)"


def service_locator(raw: Mapping[str, Any]) -> Locate:
    """Key paths that name each service by its position and its name."""
    services = raw.get("services")
    entries = services if isinstance(services, list) else []
    names = [entry.get("name") if isinstance(entry, Mapping) else None for entry in entries]
    return lambda loc: format_path(loc, names)


def load_platform_config(
    raw: Mapping[str, Any], locate: Locate | None = None, *, root: Path | None = None
) -> PlatformConfig:
    """Validate the ``rampart:`` keys of a stack (namespace already stripped, ``services`` the
    full declarations). ``locate`` turns each problem's key path into the place it is reported at
    (default: the key path, services named by position and name). Relative file paths in the config
    (``vault.ca_cert_file``) start at ``root``, the project directory (default: the working directory)."""
    locate = locate or service_locator(raw)
    problems: list[Problem] = []
    config: PlatformConfig | None = None
    try:
        config = PlatformConfig.model_validate(dict(raw), context={"root": root})
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    problems.extend(catalog_problems(raw.get("services")))
    if config is not None:
        problems.extend(cross_key_problems(config))
    if problems:
        raise ConfigError(list(dict.fromkeys(f"{locate(p.loc)}: {p.message}" for p in problems)))
    assert config is not None
    return config


def catalog_problems(services: object) -> Iterator[Problem]:
    """Cross-service checks. They read the raw list, so they run even when some
    entries are malformed: the user sees every problem in one pass."""
    if not isinstance(services, list):
        return
    entries = [s if isinstance(s, Mapping) else {} for s in services]
    names = [e.get("name") for e in entries]
    known = {n for n in names if isinstance(n, str)}
    first_index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in first_index:
            first = first_index[name]
            yield Problem(
                ("services", i, "name"), f"duplicate service {name!r} (first declared at services[{first}])"
            )
        else:
            first_index[name] = i
        if name in PLATFORM_NAMESPACES:
            yield Problem(("services", i, "name"), f"{name!r} is reserved for a platform namespace")
    publishers: dict[str, int] = {}
    yield from _publisher_problems(entries, publishers)
    for i, entry in enumerate(entries):
        for j, callee in _strings(entry.get("calls")):
            if callee == entry.get("name"):
                yield Problem(
                    ("services", i, "calls", j), "a service does not call itself through the platform"
                )
            elif callee not in known:
                yield Problem(
                    ("services", i, "calls", j), f"unknown service {callee!r}{suggest(callee, known)}"
                )
        for j, queue in _strings(_mapping(entry.get("queue")).get("consumes")):
            if queue not in publishers:
                hint = suggest(queue, publishers)
                yield Problem(
                    ("services", i, "queue", "consumes", j), f"no service publishes {queue!r}{hint}"
                )


def _publisher_problems(entries: list[Mapping[str, Any]], publishers: dict[str, int]) -> Iterator[Problem]:
    """Fills ``publishers`` (queue -> index of its service): a queue has one publishing service."""
    for i, entry in enumerate(entries):
        for j, queue in _strings(_mapping(entry.get("queue")).get("publishes")):
            if queue in publishers and publishers[queue] != i:
                first = publishers[queue]
                yield Problem(
                    ("services", i, "queue", "publishes", j),
                    f"{queue!r} is already published by services[{first}] ({entries[first].get('name')}); "
                    "a queue has one publishing service",
                )
            publishers.setdefault(queue, i)


# Stateful layers: what staging and prod must keep through the loss of a zone or a bad deploy.
PROD_BACKUP_RETENTION_DAYS = 14
RDS_MIN_STORAGE_GB = 20
HA_ENVIRONMENTS = ("staging", "prod")


@rule(
    "services[].routes[].auth",
    "jwt",
    when="always",
    text="a route with auth: true needs jwt (issuer, jwks_uri or jwks)",
)
def _auth_needs_jwt(config: PlatformConfig) -> Iterator[Problem]:
    if config.jwt is not None:
        return
    for i, service in enumerate(config.services):
        for j, route in enumerate(service.routes):
            if route.auth:
                yield Problem(
                    ("services", i, "routes", j, "auth"),
                    "needs jwt (issuer and jwks_uri or jwks) to check tokens",
                )


@rule(
    "services[].routes[].rate_limit.requests_per_minute",
    "gateway.replicas",
    when="always",
    text="at least gateway.replicas (each Kong node allows its share, rounded down)",
)
def _rate_limit_per_replica(config: PlatformConfig) -> Iterator[Problem]:
    for i, service in enumerate(config.services):
        for j, route in enumerate(service.routes):
            if (
                route.rate_limit is not None
                and route.rate_limit.requests_per_minute < config.gateway.replicas
            ):
                yield Problem(
                    ("services", i, "routes", j, "rate_limit", "requests_per_minute"),
                    f"{route.rate_limit.requests_per_minute} is below gateway.replicas "
                    f"({config.gateway.replicas}): each Kong node would allow less than one request a minute",
                )


@rule(
    "services[].egress[].cidr",
    "aws.vpc_cidr",
    when="target aws",
    text="outside the VPC (the pods, databases and brokers live there)",
)
def _egress_outside_the_vpc(config: PlatformConfig) -> Iterator[Problem]:
    if config.aws is None:
        return
    vpc = ipaddress.ip_network(config.aws.vpc_cidr, strict=False)
    for i, service in enumerate(config.services):
        for j, destination in enumerate(service.egress):
            if destination.cidr is not None and ipaddress.ip_network(destination.cidr, strict=False).overlaps(
                vpc
            ):
                yield Problem(
                    ("services", i, "egress", j, "cidr"),
                    f"{destination.cidr} overlaps the VPC ({vpc}): the NetworkPolicy would admit its pods, "
                    "databases and brokers on that port",
                )


@rule("vault.configure", "vault_token", when="always", text="configuring Vault (phase 2) needs vault_token")
def _configure_needs_token(config: PlatformConfig) -> Iterator[Problem]:
    if config.vault.configure and config.vault_token is None:
        yield Problem(
            ("vault", "configure"),
            "needs vault_token (from stdin: `pulumi config set --secret rampart:vault_token < token-file`)",
        )


@rule(
    "vault.ca_cert_file",
    "vault.configure",
    when="always",
    text="configuring Vault (phase 2) needs the CA of Vault's certificate",
)
def _configure_needs_ca(config: PlatformConfig) -> Iterator[Problem]:
    if config.vault.configure and config.vault.ca_cert_file is None:
        yield Problem(
            ("vault", "ca_cert_file"),
            "needed with vault.configure: true, so the provider verifies Vault "
            "(`rampart vault-phase2 --stack <stack>` pins it from the vault-tls Secret)",
        )


@rule(
    "databases.ca_bundle_file",
    "vault.configure",
    when="target aws",
    text="configuring Vault (phase 2) with databases needs the RDS CA bundle",
)
def _configure_needs_rds_ca(config: PlatformConfig) -> Iterator[Problem]:
    with_database = any(service.database for service in config.services)
    if (
        config.target == "aws"
        and with_database
        and config.vault.configure
        and config.databases.ca_bundle_file is None
    ):
        yield Problem(
            ("databases", "ca_bundle_file"),
            "needed with vault.configure: true, so Vault verifies the RDS servers (sslmode=verify-full); "
            "`make rds-ca-bundle REGION=<region>` downloads it",
        )


@rule("vault.replicas", when="environment staging, prod", text="at least 3 (Vault HA on raft)")
def _vault_ha(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment in HA_ENVIRONMENTS and config.vault.replicas < 3:
        yield Problem(("vault", "replicas"), f"{config.environment} runs Vault HA (at least 3 raft peers)")


@rule(
    "certificates.hosted_zone_id",
    "services[].routes[].host",
    when="target aws",
    text="required when any route is public (each host gets a Route 53 alias to the gateway's NLB)",
)
def _public_hosts_need_a_zone(config: PlatformConfig) -> Iterator[Problem]:
    if config.target != "aws" or config.certificates.hosted_zone_id is not None:
        return
    if any(service.routes for service in config.services):
        yield Problem(
            ("certificates", "hosted_zone_id"),
            "required on aws with public routes: each route's host gets a Route 53 alias record to "
            "the gateway's load balancer in this zone",
        )


@rule("certificates.issuer", when="target kubernetes", text="not acme (DNS-01 through Route 53 needs aws)")
def _acme_needs_aws(config: PlatformConfig) -> Iterator[Problem]:
    if config.certificates.issuer == "acme" and config.target != "aws":
        yield Problem(
            ("certificates", "issuer"), "'acme' solves DNS-01 through Route 53 and needs target 'aws'"
        )


@rule(
    "gateway.service_type",
    when="target aws",
    text="LoadBalancer or unset (the gateway is the internet-facing NLB)",
)
def _gateway_is_the_nlb_on_aws(config: PlatformConfig) -> Iterator[Problem]:
    if config.target == "aws" and config.gateway.service_type not in (None, "LoadBalancer"):
        yield Problem(
            ("gateway", "service_type"),
            f"{config.gateway.service_type} is not possible on target aws: the gateway is the "
            "internet-facing NLB (LoadBalancer); leave it unset",
        )


@rule("aws", when="target aws", text="required (only used when target is aws)")
def _aws_settings(config: PlatformConfig) -> Iterator[Problem]:
    if config.target == "aws" and config.aws is None:
        yield Problem(
            ("aws",), "required when target is 'aws' (region, availability_zones, admin_principal_arns, ...)"
        )
    if config.target == "kubernetes" and config.aws is not None:
        yield Problem(("aws",), "only used when target is 'aws'")


@rule(
    "aws.endpoint_public_access",
    when="environment staging, prod",
    text="false (reach the API through the VPC)",
)
def _private_endpoint(config: PlatformConfig) -> Iterator[Problem]:
    if config.aws is not None and config.aws.endpoint_public_access and config.environment in HA_ENVIRONMENTS:
        yield Problem(
            ("aws", "endpoint_public_access"), f"never in {config.environment}; reach the API through the VPC"
        )


@rule(
    "aws.node_ami_release",
    "kubernetes.version",
    when="target aws",
    text="set in staging and prod (no node follows the latest AMI there); "
    "its Kubernetes minor is kubernetes.version",
)
def _pinned_node_ami(config: PlatformConfig) -> Iterator[Problem]:
    if config.aws is None:
        return
    release = config.aws.node_ami_release
    if release is None:
        if config.environment in HA_ENVIRONMENTS:
            yield Problem(
                ("aws", "node_ami_release"),
                f"required in {config.environment}: pin the AMI release dev runs (docs/node-ami.md)",
            )
        return
    minor = ".".join(release.split(".")[:2])
    if minor != config.kubernetes.version:
        yield Problem(
            ("aws", "node_ami_release"),
            f"{release} is a Kubernetes {minor} AMI but kubernetes.version is {config.kubernetes.version}",
        )


@rule("sizing.min_replicas", when="environment prod", text="at least 2")
def _prod_replicas(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment == "prod" and config.sizing.min_replicas < 2:
        yield Problem(("sizing", "min_replicas"), "prod needs at least 2 replicas of every service")


@rule(
    "databases.backup_retention_days",
    when="environment prod",
    text=f"at least {PROD_BACKUP_RETENTION_DAYS} days",
)
def _prod_backups(config: PlatformConfig) -> Iterator[Problem]:
    retention = config.databases.backup_retention_days
    if config.environment == "prod" and retention < PROD_BACKUP_RETENTION_DAYS:
        yield Problem(
            ("databases", "backup_retention_days"),
            f"prod keeps at least {PROD_BACKUP_RETENTION_DAYS} days of backups (got {retention})",
        )


@rule(
    "services[].database.storage_gb",
    when="target aws, flavour rds",
    text=f"at least {RDS_MIN_STORAGE_GB} (RDS gp3)",
)
def _rds_storage(config: PlatformConfig) -> Iterator[Problem]:
    if config.target != "aws" or config.databases.flavour != "rds":
        return
    for i, service in enumerate(config.services):
        if service.database and service.database.storage_gb < RDS_MIN_STORAGE_GB:
            yield Problem(
                ("services", i, "database", "storage_gb"),
                f"RDS (gp3) starts at {RDS_MIN_STORAGE_GB} GiB (got {service.database.storage_gb})",
            )


@rule("databases.multi_az", when="environment prod, target aws, flavour rds", text="true (a standby)")
def _prod_multi_az(config: PlatformConfig) -> Iterator[Problem]:
    rds = config.target == "aws" and config.databases.flavour == "rds"
    if config.environment == "prod" and rds and not config.databases.multi_az:
        yield Problem(("databases", "multi_az"), "prod RDS instances keep a standby in another zone")


@rule(
    "databases.apply_immediately",
    when="always",
    text="true with allow_major_version_upgrade (the upgrade is applied in the same `pulumi up`)",
)
def _major_upgrade_applies_now(config: PlatformConfig) -> Iterator[Problem]:
    if config.databases.allow_major_version_upgrade and not config.databases.apply_immediately:
        yield Problem(
            ("databases", "apply_immediately"),
            "must be true with allow_major_version_upgrade: deferred to the maintenance window, the "
            "upgrade would still use the old parameter group that the same `pulumi up` deletes",
        )


@rule("charts.mirror", when="always", text="holds `<chart>-<version>.tgz` of every chart the stack installs")
def _mirror_has_every_chart(config: PlatformConfig) -> Iterator[Problem]:
    if config.charts.mirror is None:
        return
    # Imported here: the layers' chart pins import the config models.
    from components.chart_pins import installed_charts  # noqa: PLC0415
    from components.core.charts import ChartMirror  # noqa: PLC0415

    missing = ChartMirror(Path(config.charts.mirror)).missing(installed_charts(config))
    if missing:
        yield Problem(
            ("charts", "mirror"),
            f"{config.charts.mirror} lacks {', '.join(missing)} (scripts/build_chart_mirror.py --out <dir>)",
        )


@rule(
    "databases.instances",
    when="environment prod, CloudNativePG or Aurora",
    text="at least 2 (a primary and a replica)",
)
def _prod_instances(config: PlatformConfig) -> Iterator[Problem]:
    in_cluster_or_aurora = config.target != "aws" or config.databases.flavour == "aurora"
    if config.environment == "prod" and in_cluster_or_aurora and config.databases.instances < 2:
        yield Problem(("databases", "instances"), "prod databases run a primary and at least one replica")


@rule("messaging.deployment", when="environment prod, target aws", text="cluster (across zones)")
def _prod_broker_cluster(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment == "prod" and config.target == "aws" and config.messaging.deployment != "cluster":
        yield Problem(("messaging", "deployment"), "prod runs the broker as a cluster across zones")


@rule("messaging.replicas", when="environment prod, target kubernetes", text="at least 3 RabbitMQ nodes")
def _prod_broker_nodes(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment == "prod" and config.target == "kubernetes" and config.messaging.replicas < 3:
        yield Problem(("messaging", "replicas"), "prod runs at least 3 RabbitMQ nodes")


@rule(
    "aws.nat_gateways",
    when="environment prod, target aws",
    text="per_az (a single NAT gateway takes every zone's egress down with its own zone)",
)
def _prod_nat_per_zone(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment == "prod" and config.aws is not None and config.aws.nat_gateways != "per_az":
        yield Problem(
            ("aws", "nat_gateways"),
            f"prod runs a NAT gateway per availability zone (got {config.aws.nat_gateways!r}); "
            "one gateway takes every zone's egress down with its own zone",
        )


PROD_MIN_ISTIOD_REPLICAS = 2


@rule("mesh.istiod_replicas", when="environment prod", text=f"at least {PROD_MIN_ISTIOD_REPLICAS}")
def _prod_istiod_ha(config: PlatformConfig) -> Iterator[Problem]:
    if config.environment == "prod" and config.mesh.istiod_replicas < PROD_MIN_ISTIOD_REPLICAS:
        yield Problem(
            ("mesh", "istiod_replicas"),
            f"prod runs at least {PROD_MIN_ISTIOD_REPLICAS} istiod replicas "
            f"(got {config.mesh.istiod_replicas}); with one, a drained node stops sidecar injection "
            "and certificate rotation",
        )


@rule("supply_chain", when="environment staging, prod", text="required (the registries images may come from)")
def _supply_chain_required(config: PlatformConfig) -> Iterator[Problem]:
    if config.supply_chain is None and requires_digest(config.environment):
        yield Problem(
            ("supply_chain",),
            f"required in {config.environment}: set allowed_registries (e.g. [ghcr.io/acme])",
        )


@rule(
    "services[].image",
    "supply_chain.allowed_registries",
    when="always",
    text="from an allowed registry; pinned by digest (@sha256:...) in staging and prod",
)
def _image_supply_chain(config: PlatformConfig) -> Iterator[Problem]:
    allowed = config.supply_chain.allowed_registries if config.supply_chain else None
    for i, service in enumerate(config.services):
        if allowed is not None and not from_registry(service.image, allowed):
            yield Problem(
                ("services", i, "image"),
                f"{service.image} is not from an allowed registry (supply_chain.allowed_registries: "
                f"{', '.join(allowed)})",
            )
        if requires_digest(config.environment) and not has_digest(service.image):
            yield Problem(
                ("services", i, "image"),
                f"{service.image} is not pinned by digest; {config.environment} runs images as "
                "name:tag@sha256:<64 hex> (a tag can be moved, a digest cannot)",
            )


# admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is served from Kubernetes 1.30 (GA).
ADMISSION_POLICY_MINOR = 30


@rule(
    "kubernetes.version",
    "supply_chain",
    when="supply_chain set, or environment staging, prod",
    text=f"1.{ADMISSION_POLICY_MINOR} or later (the image admission policy is a ValidatingAdmissionPolicy)",
)
def _admission_policy_served(config: PlatformConfig) -> Iterator[Problem]:
    enforced = config.supply_chain is not None or requires_digest(config.environment)
    minor = int(config.kubernetes.version.split(".")[1])
    if enforced and minor < ADMISSION_POLICY_MINOR:
        yield Problem(
            ("kubernetes", "version"),
            f"{config.kubernetes.version} does not serve admissionregistration.k8s.io/v1 "
            f"ValidatingAdmissionPolicy (1.{ADMISSION_POLICY_MINOR}+), which enforces the image rules",
        )


# Environment variable names that carry a secret: a value in a catalog or stack file is in git for good.
SECRET_ENV_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|CREDENTIAL|DSN)", re.IGNORECASE
)


@rule(
    "services[].env",
    when="always",
    text="no secret-bearing names (passwords, tokens, keys): secrets come from Vault",
)
def _no_secrets_in_env(config: PlatformConfig) -> Iterator[Problem]:
    for i, service in enumerate(config.services):
        for name in service.env:
            if SECRET_ENV_NAME.search(name):
                yield Problem(
                    ("services", i, "env", name),
                    "a secret in plain text in a versioned file; remove it: credentials come from Vault "
                    "(database:/queue: mount them), other secrets through Vault, never env:",
                )


def _describe(error: Any) -> Problem:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    kind: str = error["type"]
    if kind == "extra_forbidden":
        siblings = _field_names_at(loc[:-1])
        hint = suggest(str(loc[-1]), siblings) if siblings else ""
        return Problem(loc, f"unknown key{hint}")
    if kind == "missing":
        return Problem(loc, "required key is missing")
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    value = error.get("input")
    sensitive = any(word in str(part) for part in loc for word in ("token", "password", "secret"))
    if (
        not sensitive
        and kind not in {"value_error", "assertion_error"}
        and isinstance(value, str | int | float | bool)
    ):
        message = f"{message}, got {value!r}"
    return Problem(loc, message)


def _field_names_at(loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc``, to suggest a correction for a typo."""
    annotation: Any = PlatformConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return options[0] if len(options) == 1 else annotation
    return annotation


def suggest(word: str, candidates: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[tuple[int, str]]:
    """The string items of a raw list, with their positions (other items are reported by pydantic)."""
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []
