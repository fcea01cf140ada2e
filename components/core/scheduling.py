"""Where a chart's replicas go, as Helm values take it: spread over zones or nodes, one per node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def spread(pods: Mapping[str, str], key: str = ZONE, *, required: bool = False) -> dict[str, Any]:
    """A topology spread constraint: at most one more of ``pods`` in any zone (or node) than in
    another; a preference unless ``required``."""
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule" if required else "ScheduleAnyway",
        "labelSelector": {"matchLabels": dict(pods)},
    }


def one_per_node(pods: Mapping[str, str]) -> dict[str, Any]:
    """Pod anti-affinity: never two of ``pods`` on one node, so a node's loss costs one replica."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": dict(pods)}, "topologyKey": HOST}
            ]
        }
    }
