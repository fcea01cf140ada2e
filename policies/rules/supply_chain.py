"""Supply-chain rules: which images service workloads run, and the admission policy that makes the cluster
enforce the same (components/paved_road/admission.py), for plans made elsewhere.

The rules are components.core.supply_chain's, which the config also applies (rampart/config/load.py): an
image comes from an allowed registry when it starts with the registry prefix followed by '/', and is pinned
by digest when it ends in @sha256:<64 hex>. Each stack's policy config (policies/config/<stack>/security.json)
names its allowed registries and whether digests are required (staging, prod).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components.core import labels
from components.core.supply_chain import DIGEST, from_registry, has_digest
from components.namespaces import PLATFORM_NAMESPACES
from policies.model import Resource, Rule, Violation, boolean, of_types, string_list
from policies.rules.kubernetes import NAMESPACE, WORKLOADS, containers
from policies.rules.lifecycle import waits

VALIDATING_POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
VALIDATING_BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"

SUPPLY_CHAIN_CONFIG = {
    "allowedRegistries": string_list(
        (), "Registry prefixes (host and optional path) service images may come from; empty: any."
    ),
    "requireDigest": boolean(True),
}


def service_namespaces(resources: list[Resource]) -> set[str]:
    """Namespaces that run services: those labelled as such, and any namespace with workloads that is not
    a platform namespace (a plan that dropped the label is still checked)."""
    labelled = {
        r.object_name
        for r in of_types(resources, NAMESPACE)
        if (r.get("metadata.labels") or {}).get(labels.TIER) == labels.SERVICE_TIER
    }
    unlisted = {
        r.namespace
        for r in of_types(resources, *WORKLOADS)
        if r.namespace is not None and r.namespace not in PLATFORM_NAMESPACES
    }
    return labelled | unlisted


def _images(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    allowed = [str(registry) for registry in config["allowedRegistries"]]
    namespaces = service_namespaces(resources)
    for workload in of_types(resources, *WORKLOADS):
        if workload.namespace not in namespaces:
            continue
        for label, container in containers(workload):
            image = str(container.get("image", ""))
            where = f"{workload.namespace}/{workload.object_name}: {label} image {image!r}"
            if allowed and not from_registry(image, allowed):
                yield Violation(
                    f"{where} is not from an allowed registry ({', '.join(allowed)})", workload.urn
                )
            if config["requireDigest"] and not has_digest(image):
                yield Violation(f"{where} is not pinned by digest (@sha256:<64 hex>)", workload.urn)


def _selects_services(binding: Resource) -> bool:
    selector = binding.get("spec.matchResources.namespaceSelector.matchLabels") or {}
    return isinstance(selector, Mapping) and selector.get(labels.TIER) == labels.SERVICE_TIER


def _admission(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    namespaces = service_namespaces(resources)
    if not namespaces:
        return
    for namespace in of_types(resources, NAMESPACE):
        name = namespace.object_name
        tier = (namespace.get("metadata.labels") or {}).get(labels.TIER)
        if name in namespaces and tier != labels.SERVICE_TIER:
            yield Violation(
                f"namespace {name} runs services but lacks {labels.TIER}={labels.SERVICE_TIER}: the image "
                "admission policy's binding does not select it",
                namespace.urn,
            )
    policies = {p.object_name: p for p in of_types(resources, VALIDATING_POLICY)}
    bindings = [
        b
        for b in of_types(resources, VALIDATING_BINDING)
        if _selects_services(b)
        and "Deny" in (b.get("spec.validationActions") or [])
        and str(b.get("spec.policyName")) in policies
    ]
    if not bindings:
        yield Violation(
            "no ValidatingAdmissionPolicyBinding denies (validationActions: [Deny]) with an existing policy "
            f"in the namespaces labelled {labels.TIER}={labels.SERVICE_TIER}: the cluster admits any image "
            "there"
        )
        return
    for binding in bindings:
        yield from _policy_problems(policies[str(binding.get("spec.policyName"))], config)
    # The workloads are created once the policy and its binding exist, or their first pods are not checked.
    order = waits(resources)
    binding_urns = {b.urn for b in bindings}
    for workload in of_types(resources, *WORKLOADS):
        if workload.namespace in namespaces and not order.created_after(workload.urn, binding_urns):
            yield Violation(
                f"{workload.namespace}/{workload.object_name} is not created after the image admission "
                "policy's binding: its first pods could start before the cluster checks their images",
                workload.urn,
            )


def _policy_problems(policy: Resource, config: Mapping[str, Any]) -> Iterator[Violation]:
    name = policy.object_name
    if policy.get("spec.failurePolicy", "Fail") != "Fail":
        yield Violation(f"{name}: failurePolicy is not Fail: an error in its CEL admits the pod", policy.urn)
    rules = policy.get("spec.matchConstraints.resourceRules") or []
    if not any(
        "pods" in (rule.get("resources") or [])
        and "" in (rule.get("apiGroups") or [])
        and {"CREATE", "UPDATE"} <= set(rule.get("operations") or [])
        for rule in rules
    ):
        yield Violation(f"{name}: does not match CREATE and UPDATE of pods", policy.urn)
    expressions = " ".join(str(v.get("expression", "")) for v in policy.get("spec.validations") or [])
    for registry in config["allowedRegistries"]:
        if f'"{str(registry).rstrip("/")}/"' not in expressions:
            yield Violation(f"{name}: no validation admits only the registry {registry}", policy.urn)
    if config["requireDigest"] and DIGEST.pattern not in expressions:
        yield Violation(f"{name}: no validation requires images pinned by digest", policy.urn)


RULES: tuple[Rule, ...] = (
    Rule.of(
        "service-images-supply-chain",
        "Service workloads run images from the stack's allowed registries, pinned by digest where required "
        "(staging, prod).",
        "high",
        "Pin the service's image as <registry>/<name>:<tag>@sha256:<digest> from an allowed registry "
        "(rampart:supply_chain.allowed_registries).",
        group="workload",
        controls=("CIS-EKS-5.1.1", "CKV_K8S_43", "SLSA-source"),
        stack_check=_images,
        config_schema=SUPPLY_CHAIN_CONFIG,
    ),
    Rule.of(
        "service-images-admission",
        "The cluster enforces the image rules in every service namespace: a ValidatingAdmissionPolicy "
        "(fail closed, pods on CREATE and UPDATE, each allowed registry and the digest rule) bound with Deny "
        "to the namespaces labelled as services, created before the services' workloads.",
        "high",
        "Keep the paved road's image admission policy (components/paved_road/admission.py) and its binding, "
        "and let service workloads wait for them.",
        group="workload",
        controls=("CIS-EKS-5.1.1", "K8S-VAP"),
        stack_check=_admission,
        config_schema=SUPPLY_CHAIN_CONFIG,
    ),
)
