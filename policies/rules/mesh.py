"""Service-mesh rules: STRICT mTLS, deny by default, positive ALLOW rules, registry-only egress.

They apply once the mesh layer is in the plan; before that they report not-applicable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components import mesh
from policies.controllers import chart_name
from policies.model import NotApplicable, Resource, Rule, Violation, of_types
from policies.table import on, table_rules, whole_plan

PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
DESTINATION_RULES = tuple(
    f"kubernetes:networking.istio.io/{version}:DestinationRule" for version in ("v1", "v1beta1", "v1alpha3")
)
SERVICE_ENTRIES = tuple(
    f"kubernetes:networking.istio.io/{version}:ServiceEntry" for version in ("v1", "v1beta1", "v1alpha3")
)
# TLS that a sidecar originates to a host outside the mesh (no peer sidecar to speak ISTIO_MUTUAL to).
EXTERNAL_TLS_MODES = ("SIMPLE", "MUTUAL")
ISTIO_CHARTS = ("istiod", "base")
NEGATIVE_SOURCE_KEYS = ("notPrincipals", "notNamespaces", "notRequestPrincipals", "notIpBlocks")
ROOT_NAMESPACE = {"meshRootNamespace": {"type": "string", "default": mesh.ROOT_NAMESPACE}}


def _mesh_present(resources: list[Resource]) -> bool:
    if any(
        r.type.startswith(("kubernetes:security.istio.io/", "kubernetes:networking.istio.io/"))
        for r in resources
    ):
        return True
    return any(chart_name(r.props) in ISTIO_CHARTS for r in of_types(resources, HELM_RELEASE))


def _require_mesh(resources: list[Resource]) -> None:
    if not _mesh_present(resources):
        raise NotApplicable("no service mesh in this plan")


def _modes(policy: Resource) -> list[str]:
    modes = [str(policy.get("spec.mtls.mode", "UNSET"))]
    modes += [
        str((port or {}).get("mode", "UNSET")) for port in (policy.get("spec.portLevelMtls") or {}).values()
    ]
    return modes


def _mtls_strict(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    _require_mesh(resources)
    root = config["meshRootNamespace"]
    policies = list(of_types(resources, PEER_AUTHENTICATION))
    mesh_wide = [p for p in policies if p.namespace == root and not p.get("spec.selector")]
    if not any(p.get("spec.mtls.mode") == "STRICT" for p in mesh_wide):
        yield Violation(f"no mesh-wide PeerAuthentication with mtls.mode STRICT in namespace {root!r}")
    for policy in policies:
        weak = [m for m in _modes(policy) if m in ("PERMISSIVE", "DISABLE")]
        if weak:
            yield Violation(f"PeerAuthentication {policy.object_name} relaxes mTLS to {weak[0]}", policy.urn)


def _allow_nothing(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    _require_mesh(resources)
    root = config["meshRootNamespace"]
    for policy in of_types(resources, AUTHORIZATION_POLICY):
        if policy.namespace == root and not (policy.get("spec") or {}):
            return
    yield Violation(f"no allow-nothing AuthorizationPolicy (empty spec) in namespace {root!r}")


def _wildcards(source: Mapping[str, Any]) -> list[str]:
    """Istio matches `*`, a `prefix*` and a `*suffix` in principals and namespaces
    (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source): any of
    them admits identities nobody listed (`cluster.local/ns/x/sa/*` is every account of x)."""
    return [
        str(value)
        for key in ("principals", "namespaces", "requestPrincipals")
        for value in source.get(key) or []
        if "*" in str(value)
    ]


def _positive_allow(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("spec.action", "ALLOW") != "ALLOW":
        return
    rules = resource.get("spec.rules")
    if isinstance(rules, list) and any(not rule for rule in rules):
        yield f"{resource.object_name}: an empty ALLOW rule allows every request"
    for rule in rules or []:
        for entry in rule.get("from") or []:
            source = entry.get("source") or {}
            wildcards = _wildcards(source)
            if wildcards:
                yield f"{resource.object_name}: ALLOW rule matches principals by wildcard {wildcards}"
            negative = [key for key in NEGATIVE_SOURCE_KEYS if source.get(key)]
            if negative:
                yield f"{resource.object_name}: ALLOW rule uses negative matches {negative}"


def _tls_modes(policy: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(path, mode) of a traffic policy's TLS and of each of its port-level settings."""
    policy = policy if isinstance(policy, Mapping) else {}
    yield f"{where}.tls.mode", (policy.get("tls") or {}).get("mode")
    for index, port in enumerate(policy.get("portLevelSettings") or []):
        if isinstance(port, Mapping) and "tls" in port:
            yield f"{where}.portLevelSettings[{index}].tls.mode", (port.get("tls") or {}).get("mode")


def _destination_rules_mutual(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """A DestinationRule's TLS settings replace the mesh's automatic mutual TLS for its host: anything
    but ISTIO_MUTUAL to an in-mesh host sends plaintext or unverified TLS
    (https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings-TLSmode).
    A host a MESH_EXTERNAL ServiceEntry declares has no sidecar: TLS origination (SIMPLE, MUTUAL) is
    what it may use there."""
    external = {
        str(host)
        for entry in of_types(resources, *SERVICE_ENTRIES)
        if entry.get("spec.location") == "MESH_EXTERNAL"
        for host in entry.get("spec.hosts") or []
    }
    for rule in of_types(resources, *DESTINATION_RULES):
        host = str(rule.get("spec.host", ""))
        allowed = EXTERNAL_TLS_MODES if host in external else ("ISTIO_MUTUAL",)
        places = list(_tls_modes(rule.get("spec.trafficPolicy"), "trafficPolicy"))
        # A subset's traffic policy overrides the top level's field by field: only TLS it sets counts.
        for index, subset in enumerate(rule.get("spec.subsets") or []):
            policy = subset.get("trafficPolicy") if isinstance(subset, Mapping) else None
            if isinstance(policy, Mapping):
                where = f"subsets[{index}].trafficPolicy"
                places += [
                    (path, mode)
                    for path, mode in _tls_modes(policy, where)
                    if path != f"{where}.tls.mode" or "tls" in policy
                ]
        for path, mode in places:
            if mode not in allowed:
                yield Violation(
                    f"DestinationRule {rule.namespace}/{rule.object_name} ({host}): {path} is "
                    f"{mode or 'unset'} (needs {' or '.join(allowed)})",
                    rule.urn,
                )


def _registry_only(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if chart_name(resource.props) != "istiod":
        return
    mode = resource.get("values.meshConfig.outboundTrafficPolicy.mode", "ALLOW_ANY")
    if mode != "REGISTRY_ONLY":
        yield f"{resource.name}: meshConfig.outboundTrafficPolicy.mode is {mode} (needs REGISTRY_ONLY)"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "mesh-mtls-strict": whole_plan(_mtls_strict, ROOT_NAMESPACE),
        "mesh-default-deny": whole_plan(_allow_nothing, ROOT_NAMESPACE),
        "mesh-allow-rules-positive": on((AUTHORIZATION_POLICY,), _positive_allow),
        "mesh-destination-rules-mutual": whole_plan(_destination_rules_mutual),
        "mesh-egress-registry-only": on((HELM_RELEASE,), _registry_only),
    },
)
