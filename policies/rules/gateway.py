"""Edge rules for the API gateway: what every public route carries at Kong before it reaches a service.

Kong's ingress controller attaches the KongPlugins an Ingress names in its `konghq.com/plugins`
annotation, from the Ingress's own namespace; a name it cannot find is skipped and the route runs
without it (https://developer.konghq.com/kubernetes-ingress-controller/reference/annotations/#konghqcomplugins).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, Violation, number, of_types

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
KONG_PLUGIN = "kubernetes:configuration.konghq.com/v1:KongPlugin"
PLUGINS_ANNOTATION = "konghq.com/plugins"
RATE_LIMIT_WINDOWS = ("second", "minute", "hour", "day", "month", "year")


def _attached(ingress: Resource) -> list[str]:
    annotations = ingress.get("metadata.annotations") or {}
    listed = str(annotations.get(PLUGINS_ANNOTATION, "") if isinstance(annotations, Mapping) else "")
    return [name.strip() for name in listed.split(",") if name.strip()]


def _allows_everyone(cidrs: list[Any]) -> bool:
    for cidr in cidrs:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def _plugin_problem(plugin: Resource) -> str | None:
    """What makes a plugin Rampart relies on at the edge ineffective, if anything."""
    config = plugin.get("config") or {}
    kind = plugin.get("plugin")
    if kind == "rate-limiting" and not any(number(config.get(w)) > 0 for w in RATE_LIMIT_WINDOWS):
        return "rate-limiting sets no positive limit"
    if kind == "request-size-limiting" and number(config.get("allowed_payload_size")) <= 0:
        return "request-size-limiting sets no allowed_payload_size"
    if kind == "ip-restriction":
        allow = list(config.get("allow") or [])
        if not allow and not config.get("deny"):
            return "ip-restriction lists no addresses"
        if _allows_everyone(allow):
            return f"ip-restriction allows everyone ({allow})"
    return None


def _edge_plugins(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    plugins = {(p.namespace, p.object_name): p for p in of_types(resources, KONG_PLUGIN)}
    attached_anywhere: set[tuple[str | None, str]] = set()
    for ingress in of_types(resources, INGRESS):
        where = f"Ingress {ingress.namespace}/{ingress.object_name}"
        kinds: set[str] = set()
        for name in _attached(ingress):
            plugin = plugins.get((ingress.namespace, name))
            attached_anywhere.add((ingress.namespace, name))
            if plugin is None:
                yield Violation(f"{where}: names KongPlugin {name!r}, which its namespace lacks", ingress.urn)
            elif plugin.get("disabled") is True:
                yield Violation(f"{where}: KongPlugin {name!r} is disabled", ingress.urn)
            elif problem := _plugin_problem(plugin):
                yield Violation(f"{where}: KongPlugin {name!r}: {problem}", ingress.urn)
            else:
                kinds.add(str(plugin.get("plugin")))
        if "request-size-limiting" not in kinds:
            yield Violation(
                f"{where}: no request-size-limiting plugin (request size is unbounded)", ingress.urn
            )
        if not kinds & {"rate-limiting", "ip-restriction"}:
            yield Violation(
                f"{where}: open to every address with no rate-limiting plugin (add a rate limit or an "
                "IP allowlist)",
                ingress.urn,
            )
    # A route's configured protection that no Ingress carries protects nothing.
    for key, plugin in sorted(plugins.items(), key=lambda item: str(item[0])):
        if key not in attached_anywhere:
            yield Violation(
                f"KongPlugin {plugin.namespace}/{plugin.object_name} ({plugin.get('plugin')}) is attached "
                "to no Ingress",
                plugin.urn,
            )


RULES: tuple[Rule, ...] = (
    Rule.of(
        "gateway-route-edge-plugins",
        "Every public Ingress carries its KongPlugins: a request-size limit, a rate limit unless an IP "
        "allowlist restricts it, and every plugin configured for a route is attached and effective.",
        "high",
        "List the route's KongPlugins in the Ingress's konghq.com/plugins annotation (from the same "
        "namespace); give each route rate_limit or ip_allowlist, and keep max_body_mb.",
        group="network",
        controls=("rampart-baseline", "OWASP-API4-2023"),
        stack_check=_edge_plugins,
    ),
)
