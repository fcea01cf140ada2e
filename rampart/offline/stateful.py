"""Nothing lost on change: the URNs of every stateful resource of a stack, recorded in a golden file.

Pulumi identifies a resource by its URN. A refactor that changes one (a renamed component, a new
parent, a name derived from a list position) makes the engine delete the old resource and create a
new one: for a database, a broker, a key or a namespace that is data loss. Each stack's stateful
URNs are recorded in ``stacks/stateful/<stack>.txt``; a plan that no longer has one of them (under
its URN or as an alias of a resource that does) fails, and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rampart.offline.plan import Plan

# Resources whose deletion or replacement destroys data (or everything inside them).
STATEFUL_TYPES = frozenset(
    {
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:mq/broker:Broker",
        # Deleting a key makes everything encrypted with it unreadable.
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:eks/cluster:Cluster",
        # Deleting a namespace deletes every object in it: a service's database cluster with it.
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:postgresql.cnpg.io/v1:Cluster",
        "kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster",
        # Deleting a vhost or a queue drops the messages in it.
        "kubernetes:rabbitmq.com/v1beta1:Vhost",
        "kubernetes:rabbitmq.com/v1beta1:Queue",
    }
)
HEADER = (
    "# Stateful resources of this stack, one URN per line: `rampart stateful --record` writes it.\n"
    "# A plan without one of them fails (tests, `rampart plan`): see docs/nothing-lost.md.\n"
)


def golden_path(project: Path, stack: str) -> Path:
    return project / "stacks" / "stateful" / f"{stack}.txt"


def stateful_urns(plan: Plan) -> list[str]:
    return sorted(r["urn"] for r in plan.resources if r["type"] in STATEFUL_TYPES)


def read_golden(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_golden(path: Path, plan: Plan) -> int:
    urns = stateful_urns(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{urn}\n" for urn in urns))
    return len(urns)


@dataclass(frozen=True)
class Drift:
    # Recorded URNs the plan no longer has, under that URN or as an alias: the engine would delete them.
    lost: list[str]
    # Stateful URNs the golden file does not list yet.
    new: list[str]

    def problems(self, stack: str, protected: bool) -> list[str]:
        return self.lost_messages(stack, protected) + self.new_messages(stack)

    def lost_messages(self, stack: str, protected: bool) -> list[str]:
        """One line per recorded resource the plan would lose: what happens, and what to do."""
        return [_lost_message(urn, stack, protected) for urn in self.lost]

    def new_messages(self, stack: str) -> list[str]:
        """One line per stateful resource the golden file does not list yet (not a failure of the plan)."""
        return [
            f"{urn}: a new stateful resource, not recorded yet (`{record_command(stack)}`)"
            for urn in self.new
        ]


def record_command(stack: str) -> str:
    """The exact command that records a stack's stateful URNs."""
    return f"rampart stateful --stack {stack} --record"


def compare(golden: list[str], plan: Plan) -> Drift:
    present = {r["urn"] for r in plan.resources}
    aliased = {alias for r in plan.resources for alias in r.get("aliases") or []}
    current = stateful_urns(plan)
    return Drift(
        lost=[urn for urn in golden if urn not in present and urn not in aliased],
        new=[urn for urn in current if urn not in set(golden)],
    )


def _lost_message(urn: str, stack: str, protected: bool) -> str:
    name = urn.rsplit("::", 1)[-1]
    if protected:
        consequence = "`pulumi up` stops on it (protected); nothing is deleted"
    else:
        consequence = "`pulumi up` would DELETE it"
    return (
        f"{urn}: gone from the plan, so {consequence}. If it was renamed or moved, add "
        f"`aliases=[pulumi.Alias(name={name!r}, ...)]` to keep it; if its service was removed on purpose, "
        f"see docs/nothing-lost.md, then `{record_command(stack)}`"
    )
