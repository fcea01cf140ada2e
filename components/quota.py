"""Namespace quota sized from the service's own declaration."""

from __future__ import annotations

import math

from rampart.config import ServiceSpec
from rampart.config.types import cpu_millicores, memory_bytes

# A rolling update may run 25% extra pods (Kubernetes' default maxSurge), rounded up.
SURGE_FRACTION = 0.25


def pod_budget(spec: ServiceSpec) -> int:
    return spec.replicas.max + math.ceil(spec.replicas.max * SURGE_FRACTION)


def quota_hard(spec: ServiceSpec, headroom: float) -> dict[str, str]:
    pods = pod_budget(spec)

    def cpu(amount: str) -> str:
        return f"{math.ceil(cpu_millicores(amount) * pods * headroom)}m"

    def memory(amount: str) -> str:
        return f"{math.ceil(memory_bytes(amount) * pods * headroom / 2**20)}Mi"

    return {
        "pods": str(math.ceil(pods * headroom)),
        "requests.cpu": cpu(spec.resources.requests.cpu),
        "requests.memory": memory(spec.resources.requests.memory),
        "limits.cpu": cpu(spec.resources.limits.cpu),
        "limits.memory": memory(spec.resources.limits.memory),
        # Stateless by construction, and never exposed except through the gateway.
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
