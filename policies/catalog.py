"""Every rule Rampart enforces, by pack."""

from __future__ import annotations

from policies.model import Pack, Rule
from policies.rules import (
    aws,
    data,
    gateway,
    kubernetes,
    lifecycle,
    mesh,
    ownership,
    platform,
    releases,
    supply_chain,
    vault,
    workload_reliability,
    zonal,
)

RULES: tuple[Rule, ...] = (
    *kubernetes.RULES,
    *aws.RULES,
    *data.RULES,
    *platform.RULES,
    *mesh.RULES,
    *releases.RULES,
    *workload_reliability.RULES,
    *lifecycle.RULES,
    *ownership.RULES,
    *gateway.RULES,
    *supply_chain.RULES,
    *zonal.RULES,
    *vault.RULES,
)

PACKS: tuple[Pack, ...] = ("security", "reliability")


def rules_for(pack: Pack) -> tuple[Rule, ...]:
    return tuple(rule for rule in RULES if rule.pack == pack)


def rule(name: str) -> Rule:
    return next(r for r in RULES if r.name == name)
