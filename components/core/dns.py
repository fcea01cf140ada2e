"""The names a Service answers to inside the cluster, as certificates must list them."""

from __future__ import annotations


def service_names(service: str, namespace: str, *, bare: bool = True) -> list[str]:
    """``service`` (from its own namespace, unless ``bare`` is False), then ever more qualified."""
    qualified = f"{service}.{namespace}"
    names = [qualified, f"{qualified}.svc", f"{qualified}.svc.cluster.local"]
    return [service, *names] if bare else names
