"""Every rule Rampart enforces, by pack."""

from __future__ import annotations

from policies.model import Pack, Rule
from policies.rules import aws, data, kubernetes, lifecycle, mesh, platform, releases, workload_reliability

RULES: tuple[Rule, ...] = (
    *kubernetes.RULES,
    *aws.RULES,
    *data.RULES,
    *platform.RULES,
    *mesh.RULES,
    *releases.RULES,
    *workload_reliability.RULES,
    *lifecycle.RULES,
)

PACKS: tuple[Pack, ...] = ("security", "reliability")


def rules_for(pack: Pack) -> tuple[Rule, ...]:
    return tuple(rule for rule in RULES if rule.pack == pack)


def rule(name: str) -> Rule:
    return next(r for r in RULES if r.name == name)
