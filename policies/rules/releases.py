"""Rules over the values of third-party software installed as Helm releases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.controllers import chart_name
from policies.model import Resource, Rule, boolean, number, positive_integer, string_list
from policies.rules.kubernetes import MIN_UID
from policies.table import on, table_rules

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# `tls_disable = 1`, `tls_disable = "true"`, ... inside a Vault listener stanza.
_TLS_DISABLED = re.compile(r"tls_disable\s*=\s*\"?(1|true)\"?", re.IGNORECASE)


def _vault_server_configs(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    server = values.get("server") or {}
    for path in (("standalone", "config"), ("ha", "config"), ("ha", "raft", "config")):
        node: Any = server
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, str):
            yield "server." + ".".join(path), node


def _vault_tls(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if _chart(resource) != "vault":
        return
    values = resource.get("values") or {}
    if (values.get("global") or {}).get("tlsDisable", True) is not False:
        yield f"{resource.name}: global.tlsDisable is not false"
    for path, config in _vault_server_configs(values):
        if _TLS_DISABLED.search(config):
            yield f"{resource.name}: {path} disables TLS on a listener"


def _vault(resource: Resource) -> Mapping[str, Any] | None:
    return (resource.get("values") or {}) if _chart(resource) == "vault" else None


def _vault_ha(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if values is None:
        return
    ha = (values.get("server") or {}).get("ha") or {}
    if ha.get("enabled") is not True or (ha.get("raft") or {}).get("enabled") is not True:
        yield f"{resource.name}: Vault is not HA with integrated raft storage"
    elif float(ha.get("replicas") or 0) < config["minReplicas"]:
        yield f"{resource.name}: {ha.get('replicas')} raft peers (needs at least {config['minReplicas']})"


def _vault_audit(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if (
        values is not None
        and ((values.get("server") or {}).get("auditStorage") or {}).get("enabled") is not True
    ):
        yield f"{resource.name}: server.auditStorage is not enabled (the audit device needs it)"


def _vault_kms_seal(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if values is None or not config["requireKmsSeal"]:
        return
    configs = [text for _, text in _vault_server_configs(values)]
    if not any(re.search(r'seal\s+"awskms"', text) for text in configs):
        yield f"{resource.name}: no awskms seal: Vault would need manual unsealing"


# Where each chart takes its containers' security context (chart -> values paths): Rampart sets each
# one in full, so a plan where one is missing or weakened runs the chart's own (or no) context.
# Charts whose defaults are hardened (cert-manager, kube-prometheus-stack's containers) are not listed;
# whatever their values do set is still read by the field checks below.
CONTAINER_CONTEXTS: dict[str, tuple[str, ...]] = {
    "cloudnative-pg": ("containerSecurityContext",),
    "ingress": ("controller.containerSecurityContext", "gateway.containerSecurityContext"),
    "kong": ("containerSecurityContext",),
    "alloy": ("alloy.securityContext",),
    "tempo": ("tempo.securityContext",),
    "vault": ("server.statefulSet.securityContext.container",),
    "vault-secrets-operator": ("controller.securityContext",),
}
# Node agents that need more than `restricted` (istio-cni installs the CNI plugin on each node).
NODE_AGENT_CHARTS = ("cni", "ztunnel")


def _chart(resource: Resource) -> str:
    """The chart's name, also when given as a repository URL (oci://.../karpenter) or a mirror's archive."""
    return chart_name(resource.props)


def _at(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, Mapping) else None
    return values


def _security_contexts(values: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, context) of every security context in a chart's values: keys named securityContext or
    ending in SecurityContext (podSecurityContext, containerSecurityContext), and the pod/container
    halves of a context that has them (the vault chart's server.statefulSet.securityContext)."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower().endswith("securitycontext") and isinstance(value, Mapping):
                halves = [half for half in ("pod", "container") if isinstance(value.get(half), Mapping)]
                if halves:
                    for half in halves:
                        yield f"{where}.{half}", value[half]
                else:
                    yield where, value
            else:
                yield from _security_contexts(value, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _security_contexts(item, f"{path}[{index}]")


def _weakened(context: Mapping[str, Any]) -> Iterator[str]:
    """What a security context set in values explicitly gives away (the workload rules' checks)."""
    if context.get("enabled") is False:
        yield "enabled is false (the chart renders no security context)"
    if context.get("privileged") is True:
        yield "privileged is true"
    if context.get("allowPrivilegeEscalation") is True:
        yield "allowPrivilegeEscalation is true"
    if context.get("runAsNonRoot") is False:
        yield "runAsNonRoot is false"
    if "runAsUser" in context and number(context["runAsUser"], -1) < MIN_UID:
        yield f"runAsUser is {context['runAsUser']} (needs >= {MIN_UID})"
    if context.get("readOnlyRootFilesystem") is False:
        yield "readOnlyRootFilesystem is false"
    capabilities = context.get("capabilities") or {}
    added = [c for c in capabilities.get("add") or [] if c != "NET_BIND_SERVICE"]
    if added:
        yield f"adds capabilities {added}"
    if "drop" in capabilities and "ALL" not in (capabilities.get("drop") or []):
        yield "does not drop ALL capabilities"
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield "seccompProfile is Unconfined"


def _incomplete(context: Mapping[str, Any]) -> Iterator[str]:
    """What a container's context must say (container-non-root, container-no-privilege,
    container-drop-all-capabilities, container-read-only-root-fs)."""
    if context.get("runAsNonRoot") is not True:
        yield "does not set runAsNonRoot: true"
    if context.get("allowPrivilegeEscalation") is not False:
        yield "does not set allowPrivilegeEscalation: false"
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        yield "does not drop ALL capabilities"
    if context.get("readOnlyRootFilesystem") is not True:
        yield "does not set readOnlyRootFilesystem: true"


def _release_security_contexts(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    chart = _chart(resource)
    if chart in config["exemptCharts"]:
        return
    values = resource.get("values") or {}
    for path, context in _security_contexts(values):
        for problem in _weakened(context):
            yield f"{resource.name}: values {path} {problem}"
    for path in CONTAINER_CONTEXTS.get(chart, ()):
        context = _at(values, path)
        if not isinstance(context, Mapping):
            yield f"{resource.name}: values {path} is not set (the chart's containers run with its defaults)"
            continue
        for problem in _incomplete(context):
            yield f"{resource.name}: values {path} {problem}"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "vault-tls": on((HELM_RELEASE,), _vault_tls),
        "release-security-contexts": on(
            (HELM_RELEASE,), _release_security_contexts, {"exemptCharts": string_list(NODE_AGENT_CHARTS)}
        ),
        "vault-ha-raft": on((HELM_RELEASE,), _vault_ha, {"minReplicas": positive_integer(3)}),
        "vault-audit": on((HELM_RELEASE,), _vault_audit),
        "vault-kms-seal": on((HELM_RELEASE,), _vault_kms_seal, {"requireKmsSeal": boolean(False)}),
    },
    params={
        "min_uid": str(MIN_UID),
    },
)
