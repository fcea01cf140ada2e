"""Which images may run, enforced by the cluster: a ValidatingAdmissionPolicy and its binding.

Built into Kubernetes (admissionregistration.k8s.io/v1, GA in 1.30): the API server evaluates the CEL
itself, no webhook or controller to run. It refuses, in every service namespace (selected by the label
only service namespaces carry, components.core.labels.TIER), a pod or a workload controller whose
containers, initContainers or ephemeralContainers use an image from a registry the stack does not allow
or, in staging and prod, an image not pinned by digest. The rules are components.core.supply_chain's,
which the config and the policy pack also apply: what was checked at plan time is what the cluster
admits. https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/

Workload controllers are matched as well as pods so that a refused image fails `pulumi up` on the
Deployment itself instead of leaving a ReplicaSet that silently cannot create its pods; pods are matched
for everything else (a `kubectl run`, a controller Rampart does not know, `kubectl debug`'s ephemeral
containers through the pods/ephemeralcontainers subresource).

The CEL uses standard functions and macros only (has, all, exists, startsWith, matches), the parameters
are inlined (no paramKind: the allowed registries are the stack's config, and changing them is a
`pulumi up` like any other). tests/test_image_admission.py evaluates it against sample objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.admissionregistration import v1 as admission

from components.core import labels
from components.core.base import InClusterComponent
from components.core.supply_chain import DIGEST, requires_digest
from components.data.postgres import OPERATOR_IMAGE, postgres_image
from components.mesh.istio import PROXY_IMAGE

POLICY_NAME = "rampart-service-images"
# Kinds whose pod template the policy reads, with where it sits (Pod: the object itself).
POD_SPEC = (
    "object.kind == 'Pod' ? object.spec : "
    "object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : "
    "object.spec.template.spec"
)
IMAGES = (
    "variables.spec.containers.map(c, c.image)"
    " + (has(variables.spec.initContainers) ? variables.spec.initContainers.map(c, c.image) : [])"
    " + (has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers.map(c, c.image) : [])"
)
# What the policy matches: pods (and their ephemeral containers) and every built-in workload controller.
RESOURCE_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "v1", ("pods", "pods/ephemeralcontainers")),
    ("apps", "v1", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", "v1", ("jobs", "cronjobs")),
)


def _cel_string(value: str) -> str:
    """A CEL string literal (JSON's escaping is CEL's for the characters registries and patterns use)."""
    return json.dumps(value)


def _cel_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_cel_string(value) for value in values) + "]"


def registry_expression(registries: Sequence[str], platform_images: Sequence[str] = ()) -> str:
    """Every image is one of the platform's own (exactly) or starts with an allowed registry followed by
    '/' (so ghcr.io/acme-evil/x is refused)."""
    prefixes = _cel_list([registry.rstrip("/") + "/" for registry in registries])
    return (
        f"variables.images.all(image, image in {_cel_list(platform_images)}"
        f" || {prefixes}.exists(prefix, image.startsWith(prefix)))"
    )


def digest_expression(platform_images: Sequence[str] = ()) -> str:
    """Every image is one of the platform's own (exactly) or ends in @sha256:<64 hex> (name@sha256:...
    or name:tag@sha256:...)."""
    return (
        f"variables.images.all(image, image in {_cel_list(platform_images)}"
        f" || image.matches({_cel_string(DIGEST.pattern)}))"
    )


def platform_images(*, in_cluster_databases: bool, postgres_engine: str) -> tuple[str, ...]:
    """The images the platform itself puts into service pods, admitted by their exact reference (each pinned
    by Rampart's own version constants, not by digest): the mesh's injected sidecar (istio-proxy, and
    istio-validation as an init container), and on an existing cluster the CloudNativePG instances that run
    in a service's namespace (PostgreSQL, and the operator's image as their bootstrap-controller)."""
    images = [PROXY_IMAGE]
    if in_cluster_databases:
        images += [postgres_image(postgres_engine), OPERATOR_IMAGE]
    return tuple(images)


@dataclass(frozen=True)
class ImageRules:
    """What the cluster admits in service namespaces."""

    # Registry prefixes images must start with (followed by '/'); None: any registry.
    allowed_registries: tuple[str, ...] | None
    require_digest: bool
    # Exact references admitted whatever the registry and pinning (platform_images()).
    platform_images: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, environment: str, allowed_registries: Sequence[str] | None, platform: Sequence[str] = ()
    ) -> ImageRules:
        return cls(
            allowed_registries=tuple(allowed_registries) if allowed_registries is not None else None,
            require_digest=requires_digest(environment),
            platform_images=tuple(platform),
        )

    @property
    def enforced(self) -> bool:
        return self.allowed_registries is not None or self.require_digest

    def validations(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        if self.allowed_registries is not None:
            found.append(
                {
                    "expression": registry_expression(self.allowed_registries, self.platform_images),
                    "message": "every image of a service pod comes from an allowed registry: "
                    + ", ".join(self.allowed_registries)
                    + " (rampart:supply_chain.allowed_registries)",
                    "reason": "Forbidden",
                }
            )
        if self.require_digest:
            found.append(
                {
                    "expression": digest_expression(self.platform_images),
                    "message": "every image of a service pod is pinned by digest (name:tag@sha256:<64 hex>)",
                    "reason": "Forbidden",
                }
            )
        return found


def policy_spec(rules: ImageRules) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec (camelCase, as the API serves it)."""
    return {
        # An error evaluating the CEL refuses the object rather than letting it through.
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [group],
                    "apiVersions": [version],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": list(resources),
                }
                for group, version, resources in RESOURCE_RULES
            ]
        },
        "variables": [{"name": "spec", "expression": POD_SPEC}, {"name": "images", "expression": IMAGES}],
        "validations": rules.validations(),
    }


def binding_spec() -> dict[str, Any]:
    """The binding: the policy, in service namespaces only, denying (and auditing) what it refuses."""
    return {
        "policyName": POLICY_NAME,
        "validationActions": ["Deny", "Audit"],
        "matchResources": {"namespaceSelector": {"matchLabels": {labels.TIER: labels.SERVICE_TIER}}},
    }


def _policy_args(spec: dict[str, Any]) -> admission.ValidatingAdmissionPolicySpecArgs:
    """policy_spec() as the SDK's typed arguments (field for field, so the tests' spec is the object's)."""
    return admission.ValidatingAdmissionPolicySpecArgs(
        failure_policy=spec["failurePolicy"],
        match_constraints=admission.MatchResourcesArgs(
            resource_rules=[
                admission.NamedRuleWithOperationsArgs(
                    api_groups=rule["apiGroups"],
                    api_versions=rule["apiVersions"],
                    operations=rule["operations"],
                    resources=rule["resources"],
                )
                for rule in spec["matchConstraints"]["resourceRules"]
            ]
        ),
        variables=[
            admission.VariableArgs(name=v["name"], expression=v["expression"]) for v in spec["variables"]
        ],
        validations=[
            admission.ValidationArgs(expression=v["expression"], message=v["message"], reason=v["reason"])
            for v in spec["validations"]
        ],
    )


def _binding_args(spec: dict[str, Any]) -> admission.ValidatingAdmissionPolicyBindingSpecArgs:
    return admission.ValidatingAdmissionPolicyBindingSpecArgs(
        policy_name=spec["policyName"],
        validation_actions=spec["validationActions"],
        match_resources=admission.MatchResourcesArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels=spec["matchResources"]["namespaceSelector"]["matchLabels"]
            )
        ),
    )


class ImageAdmission(InClusterComponent):
    """The policy and its binding; ``ready`` is what a service's workloads are created after."""

    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        rules: ImageRules,
        *,
        environment: str,
        provider: k8s.Provider,
        waits_for: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            "rampart:paved:ImageAdmission", name, provider=provider, waits_for=waits_for, opts=opts
        )
        metadata = k8s.meta.v1.ObjectMetaArgs(name=POLICY_NAME, labels=labels.common(environment))
        policy = admission.ValidatingAdmissionPolicy(
            f"{name}-policy", metadata=metadata, spec=_policy_args(policy_spec(rules)), opts=self.on_cluster()
        )
        binding = admission.ValidatingAdmissionPolicyBinding(
            f"{name}-binding",
            metadata=metadata,
            spec=_binding_args(binding_spec()),
            opts=self.on_cluster([policy]),
        )
        # A binding to a policy that does not exist yet is ignored: workloads wait for both.
        self.ready = [policy, binding]
        self.register_outputs({})
