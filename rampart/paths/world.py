"""Everything the layer models read, built once from a plan and its stack's config."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rampart.config import PlatformConfig
from rampart.offline.plan import Plan
from rampart.paths.endpoints import Address
from rampart.paths.mesh import Mesh
from rampart.paths.network import Network
from rampart.paths.security_groups import SecurityGroups
from rampart.paths.workloads import RELEASE, Workload, chart_name, inventory

VAULT_DYNAMIC_SECRET = "kubernetes:secrets.hashicorp.com/v1beta1:VaultDynamicSecret"  # nosec B105 # noqa: S105


@dataclass
class World:
    plan: Plan
    config: PlatformConfig
    workloads: dict[str, Workload] = field(init=False)

    def __post_init__(self) -> None:
        self.workloads = inventory(self.plan)

    @cached_property
    def network(self) -> Network:
        return Network(self.plan)

    @cached_property
    def groups(self) -> SecurityGroups:
        return SecurityGroups(self.plan)

    @cached_property
    def mesh(self) -> Mesh:
        return Mesh(self.plan)

    @property
    def aws(self) -> bool:
        return self.config.target == "aws"

    @cached_property
    def phase2(self) -> bool:
        """Whether Vault's per-service configuration is in the plan (``vault.configure``)."""
        return bool(self.plan.of_type(VAULT_DYNAMIC_SECRET)) or any(
            r["type"].startswith("vault:") for r in self.plan.resources
        )

    @cached_property
    def pod_address(self) -> Address:
        """A pod's address as the VPC sees it (aws: pods take VPC addresses) or a typical pod CIDR's."""
        cidr = self.config.aws.vpc_cidr if self.config.aws is not None else "10.244.0.0/16"
        return Address(str(ipaddress.ip_network(cidr, strict=False).network_address + 100))

    def workload(self, key: str) -> Workload | None:
        return self.workloads.get(key)

    def service(self, name: str) -> Workload | None:
        found = self.workloads.get(name)
        return found if found is not None and found.role == "service" else None

    def release(self, chart: str) -> Mapping[str, Any] | None:
        for inputs in self._inputs_by_type.get(RELEASE, ()):
            if chart_name(inputs) == chart:
                return dict(inputs)
        return None

    @cached_property
    def _inputs_by_type(self) -> dict[str, list[dict[str, Any]]]:
        # Paths look objects up by type once per service: one pass over the plan, not one per lookup.
        found: dict[str, list[dict[str, Any]]] = {}
        for resource in self.plan.resources:
            found.setdefault(resource["type"], []).append(resource["inputs"])
        return found

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return list(self._inputs_by_type.get(type_, ()))
