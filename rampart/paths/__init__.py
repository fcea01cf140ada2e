"""The path proof: from a plan and its stack's catalog, every path the platform must carry and every
path it must refuse, walked through each layer's model (NetworkPolicy, security groups for pods, the
Istio mesh, Kong and the load balancer, DNS, credentials delivery, observability).

`rampart paths --stack <s>` prints the matrix; :func:`prove` is the API.
"""

from __future__ import annotations

from rampart.paths.endpoints import Address, Pod
from rampart.paths.model import LAYERS, Check, PathResult, PathSpec, Proof
from rampart.paths.network import NETWORK_POLICY, Network
from rampart.paths.prove import prove
from rampart.paths.security_groups import SG_POLICY, SecurityGroups

__all__ = [
    "LAYERS",
    "NETWORK_POLICY",
    "SG_POLICY",
    "Address",
    "Check",
    "Network",
    "PathResult",
    "PathSpec",
    "Pod",
    "Proof",
    "SecurityGroups",
    "prove",
]
