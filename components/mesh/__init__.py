"""The service mesh layer: Istio (istiod, CNI), STRICT mTLS, default deny, per-service policy.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

# Istiod and the mesh-wide policies.
ROOT_NAMESPACE = "istio-system"
# The Istio CNI node agent runs with the system's DaemonSets.
CNI_NAMESPACE = "kube-system"
TRUST_DOMAIN = "cluster.local"
