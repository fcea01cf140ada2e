"""Compare two plan exports resource by resource, ignoring what carries no meaning.

Two exports of the same program may list resources and dependencies in a different order and
carry a different timestamp; neither changes what Pulumi would do. Everything else counts: a
refactor that keeps every URN, input, parent, provider and dependency keeps the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rampart.offline.plan import Plan


@dataclass(frozen=True)
class Change:
    urn: str
    # The top-level export fields that differ (inputs, dependencies, parent, protect, ...).
    fields: tuple[str, ...]


@dataclass(frozen=True)
class PlanComparison:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        return (
            [f"- {urn}" for urn in self.removed]
            + [f"+ {urn}" for urn in self.added]
            + [f"~ {change.urn} ({', '.join(change.fields)})" for change in self.changed]
        )


def normalised(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as Pulumi would act on it: dependency lists as sets."""
    result = dict(resource)
    result["dependencies"] = sorted(resource.get("dependencies") or [])
    result["propertyDependencies"] = {
        key: sorted(urns) for key, urns in (resource.get("propertyDependencies") or {}).items()
    }
    return result


def compare(before: Plan, after: Plan) -> PlanComparison:
    old = {r["urn"]: normalised(r) for r in before.resources}
    new = {r["urn"]: normalised(r) for r in after.resources}
    changed = []
    for urn in sorted(old.keys() & new.keys()):
        keys = old[urn].keys() | new[urn].keys()
        differing = tuple(sorted(k for k in keys if old[urn].get(k) != new[urn].get(k)))
        if differing:
            changed.append(Change(urn, differing))
    return PlanComparison(
        added=sorted(new.keys() - old.keys()), removed=sorted(old.keys() - new.keys()), changed=changed
    )
