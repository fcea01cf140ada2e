"""The baseline every namespace that runs workloads gets, platform layers and services alike:
Pod Security Standards labels, deny-all networking plus DNS, a ResourceQuota and a LimitRange.
The policy packs enforce exactly this (namespace-default-deny, namespace-quota, PSS restricted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core import labels, netpol
from components.core.quota import Resources


@dataclass(frozen=True)
class ContainerDefaults:
    """What a container that declares no resources (e.g. an injected sidecar) gets."""

    requests: Mapping[str, str]
    limits: Mapping[str, str]

    @classmethod
    def of(cls, resources: Resources) -> ContainerDefaults:
        """The size of the namespace's main container, for whatever declares none."""
        return cls(requests=resources["requests"], limits=resources["limits"])


@dataclass(frozen=True)
class Baseline:
    namespace: k8s.core.v1.Namespace
    name: pulumi.Output[str]
    # Quota, limits and network policies: install workloads only once they exist.
    resources: list[pulumi.Resource]


def namespace_baseline(
    name: str,
    *,
    namespace: str,
    labels_: Mapping[str, str],
    quota: Mapping[str, str],
    container_defaults: ContainerDefaults,
    policies: Mapping[str, k8s.networking.v1.NetworkPolicySpecArgs],
    opts: pulumi.ResourceOptions,
    extra_namespace_labels: Mapping[str, str] | None = None,
) -> Baseline:
    """``policies`` come on top of default-deny and DNS; ``labels_`` go on every object."""
    created = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=namespace, labels={**labels_, **labels.PSS_LABELS, **(extra_namespace_labels or {})}
        ),
        opts=opts,
    )
    ns = created.metadata.name
    resources = baseline_objects(
        name,
        namespace=ns,
        labels_=labels_,
        quota=quota,
        container_defaults=container_defaults,
        policies=policies,
        opts=opts,
    )
    return Baseline(namespace=created, name=ns, resources=resources)


def baseline_objects(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels_: Mapping[str, str],
    quota: Mapping[str, str],
    container_defaults: ContainerDefaults,
    policies: Mapping[str, k8s.networking.v1.NetworkPolicySpecArgs],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """The quota, limits and network policies of a namespace, also one that something else creates (an
    operator's bundle): default-deny and DNS first, then ``policies``."""

    def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=dict(labels_))

    resources: list[pulumi.Resource] = [
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=dict(quota)),
            opts=opts,
        ),
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("limits"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default=dict(container_defaults.limits),
                        default_request=dict(container_defaults.requests),
                    )
                ]
            ),
            opts=opts,
        ),
    ]
    all_policies = {"default-deny": netpol.default_deny(), "allow-dns": netpol.allow_dns(), **policies}
    for policy_name, policy_spec in all_policies.items():
        resources.append(
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy_name}", metadata=meta(policy_name), spec=policy_spec, opts=opts
            )
        )
    return resources
