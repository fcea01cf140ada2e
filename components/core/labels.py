"""Label conventions shared by every component."""

from __future__ import annotations

NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
ENVIRONMENT = "rampart.dev/environment"
# The label Kubernetes puts on every namespace (since 1.21): selects a namespace by name.
NAMESPACE_NAME = "kubernetes.io/metadata.name"
# Every service namespace (the paved road's) carries TIER: SERVICE_TIER, no platform namespace does: the
# image admission policy's binding and the supply-chain policy select service namespaces by it.
TIER = "rampart.dev/tier"
SERVICE_TIER = "service"

PSS_LEVEL = "restricted"
PSS_LABELS = {f"pod-security.kubernetes.io/{mode}": PSS_LEVEL for mode in ("enforce", "audit", "warn")} | {
    f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")
}


def common(environment: str) -> dict[str, str]:
    return {PART_OF: "rampart", MANAGED_BY: "pulumi", ENVIRONMENT: environment}


def selector(service: str) -> dict[str, str]:
    """The labels that select a service's pods: stable for the life of the service."""
    return {NAME: service}


def workload_selector(service: str) -> dict[str, dict[str, str]]:
    """A service's pods as Istio's policies select them (``selector.matchLabels``)."""
    return {"matchLabels": selector(service)}
