"""Namespace quota sized from the service's own declaration."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rampart.config import ServiceSpec
from rampart.config.types import cpu_millicores, memory_bytes

# A rolling update may run 25% extra pods (Kubernetes' default maxSurge), rounded up.
SURGE_FRACTION = 0.25


@dataclass(frozen=True)
class Sidecar:
    """Resources of a container injected next to the service's own (the mesh proxy)."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


# The mesh proxy's size, set per pod through Istio's annotations and counted in the quota.
MESH_PROXY = Sidecar(cpu_request="50m", cpu_limit="500m", memory_request="64Mi", memory_limit="256Mi")


def with_surge(replicas: int) -> int:
    """Replicas plus the pods a rolling update surges."""
    return replicas + math.ceil(replicas * SURGE_FRACTION)


def pod_budget(spec: ServiceSpec) -> int:
    return with_surge(spec.replicas.max)


def quota_hard(spec: ServiceSpec, headroom: float, sidecar: Sidecar | None = None) -> dict[str, str]:
    pods = pod_budget(spec)

    def cpu(amount: str, extra: str | None) -> str:
        per_pod = cpu_millicores(amount) + (cpu_millicores(extra) if extra else 0)
        return f"{math.ceil(per_pod * pods * headroom)}m"

    def memory(amount: str, extra: str | None) -> str:
        per_pod = memory_bytes(amount) + (memory_bytes(extra) if extra else 0)
        return f"{math.ceil(per_pod * pods * headroom / 2**20)}Mi"

    resources = spec.resources
    extra = sidecar or Sidecar(cpu_request="", cpu_limit="", memory_request="", memory_limit="")
    return {
        "pods": str(math.ceil(pods * headroom)),
        "requests.cpu": cpu(resources.requests.cpu, extra.cpu_request),
        "requests.memory": memory(resources.requests.memory, extra.memory_request),
        "limits.cpu": cpu(resources.limits.cpu, extra.cpu_limit),
        "limits.memory": memory(resources.limits.memory, extra.memory_limit),
        # Stateless by construction, and never exposed except through the gateway.
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


# requests/limits -> cpu/memory -> quantity, as a container declares its resources.
Resources = Mapping[str, Mapping[str, str]]
# Nothing in a platform namespace is exposed but through the gateway: no LoadBalancer, no NodePort.
NOT_EXPOSED = {"services.loadbalancers": "0", "services.nodeports": "0"}


def resources(*, requests: tuple[str, str], limits: tuple[str, str]) -> dict[str, dict[str, str]]:
    """A container's resources from (cpu, memory) requests and limits."""
    return {
        "requests": {"cpu": requests[0], "memory": requests[1]},
        "limits": {"cpu": limits[0], "memory": limits[1]},
    }


def guaranteed(amounts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A container's resources with requests equal to limits: the Guaranteed QoS class, evicted last
    under node pressure (https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/#guaranteed)."""
    return {"requests": dict(amounts), "limits": dict(amounts)}


def containers_total(containers: Sequence[tuple[Resources, int]]) -> dict[str, str]:
    """requests/limits of cpu and memory for ``count`` containers of each declared size."""
    hard: dict[str, str] = {}
    for kind in ("requests", "limits"):
        cpu = sum(cpu_millicores(resources[kind]["cpu"]) * count for resources, count in containers)
        memory = sum(memory_bytes(resources[kind]["memory"]) * count for resources, count in containers)
        hard[f"{kind}.cpu"] = f"{cpu}m"
        hard[f"{kind}.memory"] = f"{math.ceil(memory / 2**20)}Mi"
    return hard


def times(amount: str, count: int) -> str:
    """A quantity ``count`` times over, in its own unit: whole (or fractional) cores, or Gi."""
    if amount.endswith("Gi"):
        return f"{int(amount[:-2]) * count}Gi"
    return str(math.ceil(float(amount) * count))


def pods_total(pods: int, containers: Sequence[tuple[Resources, int]]) -> dict[str, str]:
    """``pods`` pods running ``count`` containers of each declared size between them."""
    return {"pods": str(pods)} | containers_total(containers)


def storage_total(volumes: Sequence[tuple[str, int]]) -> str:
    """``count`` volumes of each size together, in whole Gi (rounded up)."""
    return f"{math.ceil(sum(memory_bytes(size) * count for size, count in volumes) / 2**30)}Gi"


def volumes(claims: int, size_gb: int) -> dict[str, str]:
    """``claims`` persistent volumes of ``size_gb`` each."""
    return {"persistentvolumeclaims": str(claims), "requests.storage": f"{claims * size_gb}Gi"}


def combine(own: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Two quotas added key by key: what a namespace's own workloads and another layer's (a
    database, Loki and Tempo) need together."""
    return {key: _sum_quantities(key, own.get(key), extra.get(key)) for key in sorted({*own, *extra})}


def _sum_quantities(key: str, first: str | None, second: str | None) -> str:
    amounts = [amount for amount in (first, second) if amount is not None]
    if key.endswith(".cpu"):
        return f"{sum(cpu_millicores(amount) for amount in amounts)}m"
    if key.endswith((".memory", ".storage")):
        total = sum(memory_bytes(amount) for amount in amounts)
        return (
            f"{math.ceil(total / 2**30)}Gi" if key.endswith(".storage") else f"{math.ceil(total / 2**20)}Mi"
        )
    return str(sum(int(amount) for amount in amounts))
