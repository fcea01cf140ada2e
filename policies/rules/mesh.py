"""Service-mesh rules: STRICT mTLS, deny by default, positive ALLOW rules, registry-only egress.

They apply once the mesh layer is in the plan; before that they report not-applicable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components import mesh
from policies.model import NotApplicable, Resource, Rule, Violation, of_types

PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
ISTIO_CHARTS = ("istiod", "base")
NEGATIVE_SOURCE_KEYS = ("notPrincipals", "notNamespaces", "notRequestPrincipals", "notIpBlocks")
ROOT_NAMESPACE = {"meshRootNamespace": {"type": "string", "default": mesh.ROOT_NAMESPACE}}


def _mesh_present(resources: list[Resource]) -> bool:
    if any(
        r.type.startswith(("kubernetes:security.istio.io/", "kubernetes:networking.istio.io/"))
        for r in resources
    ):
        return True
    return any(r.get("chart") in ISTIO_CHARTS for r in of_types(resources, HELM_RELEASE))


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


def _positive_allow(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("spec.action", "ALLOW") != "ALLOW":
        return
    rules = resource.get("spec.rules")
    if isinstance(rules, list) and any(not rule for rule in rules):
        yield f"{resource.object_name}: an empty ALLOW rule allows every request"
    for rule in rules or []:
        for entry in rule.get("from") or []:
            source = entry.get("source") or {}
            if "*" in (source.get("principals") or []) or "*" in (source.get("namespaces") or []):
                yield f"{resource.object_name}: ALLOW rule matches any principal ('*')"
            negative = [key for key in NEGATIVE_SOURCE_KEYS if source.get(key)]
            if negative:
                yield f"{resource.object_name}: ALLOW rule uses negative matches {negative}"


def _registry_only(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("chart") != "istiod":
        return
    mode = resource.get("values.meshConfig.outboundTrafficPolicy.mode", "ALLOW_ANY")
    if mode != "REGISTRY_ONLY":
        yield f"{resource.name}: meshConfig.outboundTrafficPolicy.mode is {mode} (needs REGISTRY_ONLY)"


RULES: tuple[Rule, ...] = (
    Rule.of(
        "mesh-mtls-strict",
        "The mesh enforces STRICT mutual TLS everywhere.",
        "critical",
        "Add a PeerAuthentication with mtls.mode STRICT and no selector in the mesh root "
        "namespace; remove PERMISSIVE/DISABLE overrides.",
        group="encryption",
        controls=("istio-security-best-practices",),
        stack_check=_mtls_strict,
        config_schema=ROOT_NAMESPACE,
    ),
    Rule.of(
        "mesh-default-deny",
        "A mesh-wide allow-nothing AuthorizationPolicy denies every call not explicitly allowed.",
        "critical",
        "Add an AuthorizationPolicy with an empty spec in the mesh root namespace.",
        group="mesh",
        controls=("istio-security-best-practices",),
        stack_check=_allow_nothing,
        config_schema=ROOT_NAMESPACE,
    ),
    Rule.of(
        "mesh-allow-rules-positive",
        "ALLOW AuthorizationPolicies match explicit principals only: no wildcard or negation.",
        "high",
        "List the callers' service-account principals explicitly; deny with DENY policies.",
        group="mesh",
        controls=("istio-security-best-practices",),
        types=(AUTHORIZATION_POLICY,),
        check=_positive_allow,
    ),
    Rule.of(
        "mesh-egress-registry-only",
        "Outbound traffic from the mesh reaches only registered hosts (REGISTRY_ONLY).",
        "high",
        "Set meshConfig.outboundTrafficPolicy.mode: REGISTRY_ONLY and declare external hosts as "
        "ServiceEntries.",
        group="network",
        controls=("istio-security-best-practices",),
        types=(HELM_RELEASE,),
        check=_registry_only,
    ),
)
