"""Validate raw stack configuration into a :class:`PlatformConfig`, reporting every problem at once.

Each problem is one line: the key path, a colon, what is wrong
(``services[2].calls[0]: unknown service 'paymnts'``).
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from rampart.config.models import PlatformConfig

NAMESPACE = "rampart"

# Namespaces the platform layers own; a service may not take one of these names.
PLATFORM_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "istio-system",
        "kong",
        "cert-manager",
        "vault",
        "vault-secrets-operator-system",
        "cnpg-system",
        "rabbitmq-system",
        "messaging",
        "monitoring",
        "karpenter",
    }
)

Loc = Sequence[int | str]


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


def format_path(loc: Loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(root)"


def load_platform_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the ``rampart:`` keys of a stack (namespace already stripped)."""
    problems: list[str] = []
    config: PlatformConfig | None = None
    try:
        config = PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    problems.extend(catalog_problems(raw.get("services")))
    if config is not None:
        problems.extend(_target_problems(config))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert config is not None
    return config


def catalog_problems(services: object) -> Iterator[str]:
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
            yield f"services[{i}].name: duplicate service {name!r} (first declared at services[{first}])"
        else:
            first_index[name] = i
        if name in PLATFORM_NAMESPACES:
            yield f"services[{i}].name: {name!r} is reserved for a platform namespace"
    publishers: dict[str, int] = {}
    yield from _publisher_problems(entries, publishers)
    for i, entry in enumerate(entries):
        for j, callee in _strings(entry.get("calls")):
            if callee == entry.get("name"):
                yield f"services[{i}].calls[{j}]: a service does not call itself through the platform"
            elif callee not in known:
                yield f"services[{i}].calls[{j}]: unknown service {callee!r}{_suggest(callee, known)}"
        for j, queue in _strings(_mapping(entry.get("queue")).get("consumes")):
            if queue not in publishers:
                hint = _suggest(queue, publishers)
                yield f"services[{i}].queue.consumes[{j}]: no service publishes {queue!r}{hint}"


def _publisher_problems(entries: list[Mapping[str, Any]], publishers: dict[str, int]) -> Iterator[str]:
    """Fills ``publishers`` (queue -> index of its service): a queue has one publishing service."""
    for i, entry in enumerate(entries):
        for j, queue in _strings(_mapping(entry.get("queue")).get("publishes")):
            if queue in publishers and publishers[queue] != i:
                yield (
                    f"services[{i}].queue.publishes[{j}]: {queue!r} is already published by "
                    f"services[{publishers[queue]}] (a queue has one publishing service)"
                )
            publishers.setdefault(queue, i)


def _target_problems(config: PlatformConfig) -> Iterator[str]:
    if config.jwt is None:
        for i, service in enumerate(config.services):
            for j, route in enumerate(service.routes):
                if route.auth:
                    yield f"services[{i}].routes[{j}].auth: needs jwt (issuer and jwks_uri) to check tokens"
    if config.vault.configure and config.vault_token is None:
        yield "vault.configure: needs vault_token (pulumi config set --secret rampart:vault_token <token>)"
    if config.environment in ("staging", "prod") and config.vault.replicas < 3:
        yield f"vault.replicas: {config.environment} runs Vault HA (at least 3 raft peers)"
    if config.certificates.issuer == "acme" and config.target != "aws":
        yield "certificates.issuer: 'acme' solves DNS-01 through Route 53 and needs target 'aws'"
    if config.target == "aws" and config.aws is None:
        yield "aws: required when target is 'aws' (region, availability_zones, admin_principal_arns, ...)"
    if config.target == "kubernetes" and config.aws is not None:
        yield "aws: only used when target is 'aws'"
    if (
        config.aws is not None
        and config.aws.endpoint_public_access
        and config.environment in ("staging", "prod")
    ):
        yield f"aws.endpoint_public_access: never in {config.environment}; reach the API through the VPC"
    if config.environment == "prod" and config.sizing.min_replicas < 2:
        yield "sizing.min_replicas: prod needs at least 2 replicas of every service"
    yield from _data_problems(config)


# Stateful layers: what staging and prod must keep through the loss of a zone or a bad deploy.
PROD_BACKUP_RETENTION_DAYS = 14
RDS_MIN_STORAGE_GB = 20


def _data_problems(config: PlatformConfig) -> Iterator[str]:
    databases, messaging = config.databases, config.messaging
    if config.environment == "prod" and databases.backup_retention_days < PROD_BACKUP_RETENTION_DAYS:
        yield (
            f"databases.backup_retention_days: prod keeps at least {PROD_BACKUP_RETENTION_DAYS} days "
            f"of backups (got {databases.backup_retention_days})"
        )
    if config.target == "aws" and databases.flavour == "rds":
        for i, service in enumerate(config.services):
            if service.database and service.database.storage_gb < RDS_MIN_STORAGE_GB:
                yield (
                    f"services[{i}].database.storage_gb: RDS (gp3) starts at {RDS_MIN_STORAGE_GB} GiB "
                    f"(got {service.database.storage_gb})"
                )
    if config.environment != "prod":
        return
    if config.target == "aws" and databases.flavour == "rds" and not databases.multi_az:
        yield "databases.multi_az: prod RDS instances keep a standby in another zone"
    if (config.target != "aws" or databases.flavour == "aurora") and databases.instances < 2:
        yield "databases.instances: prod databases run a primary and at least one replica"
    if config.target == "aws" and messaging.deployment != "cluster":
        yield "messaging.deployment: prod runs the broker as a cluster across zones"
    if config.target == "kubernetes" and messaging.replicas < 3:
        yield "messaging.replicas: prod runs at least 3 RabbitMQ nodes"


def _describe(error: Any) -> str:
    loc: Loc = error["loc"]
    kind: str = error["type"]
    path = format_path(loc)
    if kind == "extra_forbidden":
        siblings = _field_names_at(loc[:-1])
        hint = _suggest(str(loc[-1]), siblings) if siblings else ""
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
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
    return f"{path}: {message}"


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


def _suggest(word: str, candidates: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[tuple[int, str]]:
    """The string items of a raw list, with their positions (other items are reported by pydantic)."""
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []
