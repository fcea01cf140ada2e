"""Shared building blocks of every layer: namespace baseline, NetworkPolicy pieces, quota, labels,
charts, restricted security contexts, scheduling (spread, anti-affinity) and in-cluster DNS names.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

# Namespaces every cluster has; no service may take one.
KUBERNETES_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
