"""The layer contract: needs merged once, one protection rule, targets chosen without branches."""

from __future__ import annotations

from typing import get_args

import pulumi_kubernetes as k8s
import pytest

from components.contract import ServiceNeeds, merge_needs
from components.core.protection import is_protected
from components.namespaces import PLATFORM_NAMESPACES
from components.targets.select import TARGETS
from rampart.config import ServiceSpec
from rampart.config.models import Target
from tests.conftest import planned, stack_config
from tests.support.catalog import shop_config


def _policy(port: int) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port)]
            )
        ],
    )


class Fixed:
    def __init__(self, needs: ServiceNeeds, only: str | None = None) -> None:
        self.needs, self.only = needs, only

    def service_needs(self, spec: ServiceSpec) -> ServiceNeeds:
        return self.needs if self.only in (None, spec.name) else ServiceNeeds()


def _services() -> list[ServiceSpec]:
    return list(shop_config().services)[:2]


def test_needs_of_every_contributor_reach_each_service() -> None:
    first, second = _services()
    merged = merge_needs(
        [first, second],
        [
            Fixed(ServiceNeeds(policies={"allow-a": _policy(1)})),
            Fixed(ServiceNeeds(policies={"allow-b": _policy(2)}, quota={"pods": "2"}), only=first.name),
            Fixed(ServiceNeeds(quota={"pods": "3", "requests.cpu": "1"}, pod_security_groups=("sg-1",))),
        ],
    )
    assert set(merged[first.name].policies) == {"allow-a", "allow-b"}
    assert set(merged[second.name].policies) == {"allow-a"}
    # Quotas of layers sharing a namespace add up; a single contributor's is kept as written.
    assert merged[first.name].quota == {"pods": "5", "requests.cpu": "1000m"}
    assert merged[second.name].quota == {"pods": "3", "requests.cpu": "1"}
    assert merged[second.name].pod_security_groups == ("sg-1",)


def test_two_layers_naming_one_policy_is_an_error() -> None:
    (spec, _) = _services()
    with pytest.raises(ValueError, match="allow-a"):
        merge_needs([spec], [Fixed(ServiceNeeds(policies={"allow-a": _policy(1)}))] * 2)


def test_no_contributor_means_no_needs() -> None:
    (spec, _) = _services()
    assert merge_needs([spec], []) == {spec.name: ServiceNeeds()}


@pytest.mark.parametrize(
    ("environment", "protected"), [("local", False), ("dev", False), ("staging", True), ("prod", True)]
)
def test_one_protection_rule(environment: str, protected: bool) -> None:
    assert is_protected(environment) is protected


def test_every_target_the_config_accepts_has_a_builder() -> None:
    assert set(TARGETS) == set(get_args(Target))


def test_every_namespace_the_platform_creates_is_reserved(stack: str) -> None:
    """A service named like a platform namespace would share it: the config refuses those names, so
    every namespace the layers create must be in the reserved set."""
    services = {s.name for s in stack_config(stack).services}
    created = {
        r["inputs"]["metadata"]["name"] for r in planned(stack).of_type("kubernetes:core/v1:Namespace")
    }
    assert created - services <= PLATFORM_NAMESPACES
    assert created - services, "the platform creates namespaces of its own"
