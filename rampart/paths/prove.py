"""Walk every path of a stack through every layer and collect the verdicts."""

from __future__ import annotations

from rampart import progress
from rampart.config import PlatformConfig
from rampart.offline.plan import Plan
from rampart.paths.catalog import paths
from rampart.paths.model import PathResult, Proof, combine
from rampart.paths.world import World


def prove(plan: Plan, config: PlatformConfig) -> Proof:
    """Every must-carry and must-refuse path of the stack, each with a verdict per layer."""
    world = World(plan, config)
    results = tuple(_proved(PathResult(path.spec, combine(path.evaluate()))) for path in paths(world))
    notes: list[str] = []
    if not world.phase2:
        notes.append(
            "Vault's per-service configuration (phase 2) is not in this plan: credential and "
            "broker-permission checks that need it are pending; plan with vault.configure: true "
            "to prove them."
        )
    return Proof(plan.stack, results, tuple(notes))


def _proved(result: PathResult) -> PathResult:
    progress.advance("paths proved")
    return result
