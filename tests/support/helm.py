"""Helm values against the charts' own defaults (Helm silently ignores unknown keys).

Walk rules: a key must exist in the defaults; a ``{}`` default is a free-form map; a non-empty
dict default is walked; any ``resources`` is a Kubernetes ResourceRequirements and any
``*securityContext`` a Kubernetes security context; the istiod chart's free-form ``meshConfig``
is walked against the MeshConfig fields the platform uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from tests.support.reference import helm_values

# Any `resources` value is a Kubernetes ResourceRequirements, whatever the chart's example default.
RESOURCE_REQUIREMENTS = {"requests": {"cpu": "", "memory": ""}, "limits": {"cpu": "", "memory": ""}}
# Keys whose value is a Kubernetes security context: any of its fields is valid.
SECURITY_CONTEXTS = {"securityContext", "podSecurityContext", "containerSecurityContext"}
# The Istio MeshConfig (istio.mesh.v1alpha1, istio/api 1.30.3 mesh/v1alpha1/config.proto; defaultConfig
# is a ProxyConfig, proxy.proto) fields the platform sets: the istiod chart takes `meshConfig` free-form.
MESH_CONFIG_FIELDS: dict[str, Any] = {
    "trustDomain": None,
    "rootNamespace": None,
    "outboundTrafficPolicy": {"mode": None},
    "pathNormalization": {"normalization": None},
    "accessLogFile": None,
    "accessLogEncoding": None,
    "enableTracing": None,
    "enablePrometheusMerge": None,
    "defaultConfig": {"tracing": {"sampling": None}, "holdApplicationUntilProxyStarts": None},
    "extensionProviders": None,
}
# Keys a chart passes through although its defaults do not list them: Kong's `env` entries all
# become KONG_* settings; Loki's documented bucket names; Tempo's receivers go to Tempo as they are.
PASS_THROUGH = {
    "gateway.env.ssl_cert",
    "gateway.env.ssl_cert_key",
    # Not in the kong chart's defaults, read by its templates/_helpers.tpl ("kong.service") for
    # every Service it renders from the proxy values.
    "gateway.proxy.externalTrafficPolicy",
    "loki.storage.bucketNames",
    "tempo.receivers.zipkin",
    # Commented in the grafana chart's defaults (values.yaml `rbac:`), read by its
    # clusterrolebinding.yaml: the ClusterRole to bind instead of the chart's own.
    "grafana.rbac.useExistingClusterRole",
}
# chart reference (as a Release names it) -> reference directory; kong's `ingress` chart nests two
# aliases of the `kong` chart, checked against the kong chart's defaults.
CHART_DIRECTORIES = {
    "base": "istio-base",
    "cni": "istio-cni",
    "istiod": "istiod",
    "cert-manager": "cert-manager",
    "ingress": "kong-ingress",
    "oci://public.ecr.aws/karpenter/karpenter": "karpenter",
    "aws-load-balancer-controller": "aws-load-balancer-controller",
    "loki": "loki",
    "alloy": "alloy",
    "tempo": "tempo",
    "vault": "vault",
    "vault-secrets-operator": "vault-secrets-operator",
    "kube-prometheus-stack": "kube-prometheus-stack",
    "cloudnative-pg": "cloudnative-pg",
}
SUB_CHARTS = {
    "kong-ingress": {"controller": "kong", "gateway": "kong"},
    "kube-prometheus-stack": {"grafana": "grafana"},
}


@functools.cache
def chart_defaults(directory: str) -> dict[str, Any]:
    loaded = yaml.safe_load((helm_values() / directory / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    # Istio charts keep their defaults under this key and merge user values over it (zzz_profile.yaml):
    # users set `foo`, never `_internal_defaults_do_not_set.foo`.
    internal = loaded.pop("_internal_defaults_do_not_set", {})
    return {**internal, **loaded}


def unknown_keys(values: Mapping[str, Any], defaults: Mapping[str, Any], path: str = "") -> Iterator[str]:
    for key, value in values.items():
        here = f"{path}{key}"
        if key not in defaults:
            yield here
            continue
        default = defaults[key]
        if key in SECURITY_CONTEXTS:
            continue  # a Kubernetes (Pod)SecurityContext, whatever subset the chart's default shows
        if key == "resources" and isinstance(value, Mapping):
            default = RESOURCE_REQUIREMENTS
        elif here == "meshConfig":
            default = MESH_CONFIG_FIELDS
        if isinstance(value, Mapping) and isinstance(default, Mapping) and default:
            yield from unknown_keys(value, default, f"{here}.")


def unknown_release_keys(directory: str, values: Mapping[str, Any]) -> set[str]:
    """Keys a release sets that its chart (and its aliased sub-charts) do not declare."""
    sub_charts = SUB_CHARTS.get(directory, {})
    top = {k: v for k, v in values.items() if k not in sub_charts}
    found = set(unknown_keys(top, chart_defaults(directory)))
    for alias, sub_chart in sub_charts.items():
        # The parent's own `<alias>:` block is part of the sub-chart's values too (kube-prometheus-stack's
        # grafana.additionalDataSources, rendered by its grafana templates).
        defaults = _deep_merge(chart_defaults(sub_chart), chart_defaults(directory).get(alias) or {})
        found |= set(unknown_keys(values.get(alias) or {}, defaults, f"{alias}."))
    return found - PASS_THROUGH


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged.setdefault(key, value)
    return merged
