"""Alertmanager's routing from the stack's ``alert_receivers``: the route and receivers go into the chart's
values, every credential in them into a Secret the receivers read as files (``<field>_file``).

Watchdog (always firing, proves the pipeline works) goes to the null receiver; everything else to the
configured route, or to the null receiver when none is configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

# The operator mounts each Secret listed in alertmanagerSpec.secrets at <dir>/<secret name>.
RECEIVERS_SECRET = "alertmanager-receivers"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "null"
_SECRET_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")

# Alertmanager receiver fields that hold credentials, by receiver kind: each has a `<field>_file`
# twin that reads the value from a file instead.
RECEIVER_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "slack_configs": (("api_url",),),
    "pagerduty_configs": (("routing_key",), ("service_key",)),
    "webhook_configs": (("url",),),
    "opsgenie_configs": (("api_key",),),
    "email_configs": (("auth_password",),),
    "msteams_configs": (("webhook_url",),),
    "msteamsv2_configs": (("webhook_url",),),
    "discord_configs": (("webhook_url",),),
    "telegram_configs": (("bot_token",),),
    "pushover_configs": (("user_key",), ("token",)),
    "victorops_configs": (("api_key",),),
}
HTTP_CONFIG_CREDENTIALS: tuple[tuple[str, ...], ...] = (
    ("http_config", "basic_auth", "password"),
    ("http_config", "authorization", "credentials"),
    ("http_config", "oauth2", "client_secret"),
    ("http_config", "bearer_token"),
)
# Keys the top-level route may set (the chart's default route has exactly these).
ROUTE_KEYS = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "routes"}


@dataclass(frozen=True)
class Routing:
    """The Alertmanager config for the values (no credentials) and the credentials for the Secret."""

    config: dict[str, Any]
    credentials: dict[str, pulumi.Input[str]]


def _secret_key(*parts: object) -> str:
    return _SECRET_KEY_CHARS.sub("-", ".".join(str(part) for part in parts))


def _pop_path(node: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """Remove ``path`` from nested dicts (copied on the way); (found, value)."""
    head, *rest = path
    if head not in node:
        return False, None
    if not rest:
        return True, node.pop(head)
    child = node[head]
    if not isinstance(child, Mapping):
        return False, None
    node[head] = dict(child)
    return _pop_path(node[head], tuple(rest))


def _set_path(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _no_outputs(value: Any, where: str) -> None:
    if isinstance(value, pulumi.Output):
        raise ValueError(
            f"{where}: only credential fields may be Outputs (the rest goes into the Helm values)"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _no_outputs(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _no_outputs(item, f"{where}[{index}]")


def _receiver(receiver: Mapping[str, Any], credentials: dict[str, pulumi.Input[str]]) -> dict[str, Any]:
    """One receiver with each credential replaced by `<field>_file` pointing into the mounted Secret."""
    name = str(receiver["name"])
    result: dict[str, Any] = {"name": name}
    for kind, configs in receiver.items():
        if kind == "name":
            continue
        fields = RECEIVER_CREDENTIALS.get(kind, ()) + HTTP_CONFIG_CREDENTIALS
        moved_configs = []
        for index, config in enumerate(configs):
            moved = dict(config)
            for path in fields:
                found, value = _pop_path(moved, path)
                if found:
                    key = _secret_key(name, kind, index, *path)
                    credentials[key] = value
                    file_path = (*path[:-1], f"{path[-1]}_file")
                    _set_path(moved, file_path, f"{ALERTMANAGER_SECRETS_DIR}/{RECEIVERS_SECRET}/{key}")
            _no_outputs(moved, f"receiver {name}.{kind}[{index}]")
            moved_configs.append(moved)
        result[kind] = moved_configs
    return result


def _receivers_named(route: Mapping[str, Any]) -> Iterator[str]:
    if "receiver" in route:
        yield str(route["receiver"])
    for child in route.get("routes") or []:
        yield from _receivers_named(child)


def alertmanager_routing(alert_receivers: Mapping[str, Any] | None) -> Routing:
    """The chart's `alertmanager.config` route and receivers from ``alert_receivers``.

    Watchdog (always firing, proves the pipeline works) goes to the null receiver; everything else to
    the configured route, or to the null receiver when none is configured.
    """
    given = alert_receivers or {}
    unknown = set(given) - {"route", "receivers"}
    if unknown:
        raise ValueError(f"alert_receivers: unknown keys {sorted(unknown)} (expected route, receivers)")
    route = dict(given.get("route") or {"receiver": NULL_RECEIVER})
    if set(route) - ROUTE_KEYS:
        raise ValueError(f"alert_receivers.route: unknown keys {sorted(set(route) - ROUTE_KEYS)}")
    credentials: dict[str, pulumi.Input[str]] = {}
    receivers = [_receiver(receiver, credentials) for receiver in given.get("receivers") or []]
    names = [receiver["name"] for receiver in receivers]
    if len(set(names)) != len(names) or NULL_RECEIVER in names:
        raise ValueError(f"alert_receivers.receivers: names must be unique and not {NULL_RECEIVER!r}")
    missing = set(_receivers_named(route)) - {*names, NULL_RECEIVER}
    if missing:
        raise ValueError(f"alert_receivers.route: unknown receivers {sorted(missing)}")
    _no_outputs(route, "alert_receivers.route")
    watchdog = {"receiver": NULL_RECEIVER, "matchers": ['alertname = "Watchdog"']}
    route["routes"] = [watchdog, *(route.get("routes") or [])]
    return Routing(
        config={"route": route, "receivers": [{"name": NULL_RECEIVER}, *receivers]},
        credentials=credentials,
    )
