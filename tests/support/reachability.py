"""Who can open a TCP connection to whom, read from a plan: the product's path proof models
(rampart/paths), re-exported for the tests written against this module."""

from __future__ import annotations

from rampart.paths.endpoints import PRIVATE, Address, Pod
from rampart.paths.network import NAMESPACE, NETWORK_POLICY, Network
from rampart.paths.security_groups import INGRESS_RULE, SECURITY_GROUP, SG_POLICY, SecurityGroups

__all__ = [
    "INGRESS_RULE",
    "NAMESPACE",
    "NETWORK_POLICY",
    "PRIVATE",
    "SECURITY_GROUP",
    "SG_POLICY",
    "Address",
    "Network",
    "Pod",
    "SecurityGroups",
]
