"""The ends of a path as the network layers see them: a pod (namespace, labels, security groups, named
ports) or an address outside the cluster's pods."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Where pod addresses come from (RFC 1918 and the shared range some CNIs use).
PRIVATE: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicy sees it: its namespace and labels (on aws, the security groups its
    traffic leaves with; its named container ports, for policies that name ports)."""

    namespace: str
    labels: Mapping[str, str]
    security_groups: frozenset[str] = field(default_factory=frozenset)
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Address:
    """An address outside the cluster's pods: an internet client, an RDS instance, the metadata
    endpoint, a node or load balancer address."""

    ip: str

    @cached_property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.ip)

    @property
    def private(self) -> bool:
        return any(self.address in network for network in PRIVATE)


Endpoint = Pod | Address
