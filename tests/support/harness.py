"""Build components under the capturing mock monitor and get back what they registered."""

from __future__ import annotations

from collections.abc import Callable

import pulumi_kubernetes as k8s

from components.contract import ClusterHandle
from components.platform import Platform
from rampart.config import PlatformConfig
from rampart.offline.plan import Plan
from rampart.offline.runner import capture


def plan_of(program: Callable[[], None], stack: str = "test") -> Plan:
    return Plan.from_registrations("rampart", stack, capture(program, stack=stack), {"type": "passphrase"})


def cluster_handle(multi_zone: bool = False) -> ClusterHandle:
    """A cluster handle with an explicit provider, as the cluster layer hands it over."""
    return ClusterHandle(
        provider=k8s.Provider("test-k8s"), name="test", kubernetes_version="1.33", multi_zone=multi_zone
    )


def platform_plan(config: PlatformConfig, stack: str) -> Plan:
    """The whole platform from an already validated config (a variant of a stack's), named as the
    real program names it, so its URNs compare with the stack's plan."""

    def program() -> None:
        Platform("rampart", config)

    return plan_of(program, stack=stack)
