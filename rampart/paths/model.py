"""The proof's vocabulary: a path the platform must carry or refuse, each layer's verdict on it, and
the overall verdict.

A layer *allows* or *refuses* a path; it is *n/a* when the path does not cross it (an unmeshed pod
has no sidecar to decide) and *pending* when the plan cannot decide yet (Vault's per-service
configuration before phase 2). A must-carry path is carried when no layer refuses it. A must-refuse
path is refused when at least ``minimum`` independent enforcement points refuse it, and every layer in
``required`` does (so a widened rule in one of them shows even while another layer still holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["allows", "refuses", "n/a", "pending"]
Expect = Literal["carry", "refuse"]

# The layers, in the order a request meets them, and the enforcement point each belongs to: layers of
# one system count once toward a path's independent refusals.
LAYERS: dict[str, str] = {
    "dns": "dns",
    "load-balancer": "load-balancer",
    "gateway": "gateway",
    "jwt": "istio",
    "network": "kubernetes-network",
    "security-groups": "aws-vpc",
    "mesh-mtls": "istio",
    "mesh-authz": "istio",
    "mesh-egress": "istio",
    "tls": "tls",
    "credentials": "credentials",
    "broker-permissions": "broker",
    "imds": "imds",
    "telemetry": "telemetry",
}


@dataclass(frozen=True)
class Check:
    """One layer's verdict on one path, and what in the plan decided it."""

    layer: str
    verdict: Verdict
    reason: str

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}")


def allows(layer: str, reason: str) -> Check:
    return Check(layer, "allows", reason)


def refuses(layer: str, reason: str) -> Check:
    return Check(layer, "refuses", reason)


def not_applicable(layer: str, reason: str) -> Check:
    return Check(layer, "n/a", reason)


def pending(layer: str, reason: str) -> Check:
    return Check(layer, "pending", reason)


def verdict(layer: str, allowed: bool, reason: str) -> Check:
    return allows(layer, reason) if allowed else refuses(layer, reason)


def combine(checks: Iterable[Check]) -> tuple[Check, ...]:
    """One check per layer over a path's hops: the first refusal decides, else an allow, else a
    pending, else n/a. Reasons of the deciding kind are joined."""
    by_layer: dict[str, list[Check]] = {}
    for check in checks:
        by_layer.setdefault(check.layer, []).append(check)
    combined: list[Check] = []
    for layer in LAYERS:
        found = by_layer.get(layer)
        if not found:
            continue
        for kind in ("refuses", "allows", "pending", "n/a"):
            deciding = [c for c in found if c.verdict == kind]
            if deciding:
                reasons = list(dict.fromkeys(c.reason for c in deciding))
                combined.append(Check(layer, deciding[0].verdict, "; ".join(reasons)))
                break
    return tuple(combined)


@dataclass(frozen=True)
class PathSpec:
    """A path the catalog implies: who reaches what, and whether the platform must carry it."""

    kind: str
    source: str
    destination: str
    expect: Expect
    detail: str = ""
    # Must-refuse paths: layers that must each refuse it, and how many enforcement points at least.
    required: frozenset[str] = field(default_factory=frozenset)
    minimum: int = 1

    @property
    def name(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}: {self.source} -> {self.destination}{detail}"


@dataclass(frozen=True)
class PathResult:
    spec: PathSpec
    checks: tuple[Check, ...]

    def check(self, layer: str) -> Check | None:
        return next((c for c in self.checks if c.layer == layer), None)

    @property
    def refusing(self) -> tuple[str, ...]:
        return tuple(c.layer for c in self.checks if c.verdict == "refuses")

    @property
    def independent_refusals(self) -> int:
        return len({LAYERS[layer] for layer in self.refusing})

    @property
    def carried(self) -> bool:
        return not self.refusing

    @property
    def problems(self) -> tuple[str, ...]:
        """What is wrong with this path, one line each (empty: as it must be)."""
        spec = self.spec
        if spec.expect == "carry":
            return tuple(
                f"{spec.name}: must be carried, but {c.layer} refuses it: {c.reason}"
                for c in self.checks
                if c.verdict == "refuses"
            )
        found: list[str] = []
        if self.carried:
            found.append(f"{spec.name}: must be refused, but every layer lets it through")
        for layer in sorted(spec.required):
            check = self.check(layer)
            if check is not None and check.verdict == "allows":
                found.append(f"{spec.name}: {layer} must refuse it, but allows it: {check.reason}")
        if not self.carried and self.independent_refusals < spec.minimum:
            found.append(
                f"{spec.name}: refused by {self.independent_refusals} independent layer(s) "
                f"({', '.join(self.refusing)}), fewer than {spec.minimum}"
            )
        return tuple(found)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def overall(self) -> str:
        if self.spec.expect == "carry":
            return "carried" if self.ok else "BROKEN"
        return "refused" if self.ok else ("OPEN" if self.carried else "WEAK")


@dataclass(frozen=True)
class Proof:
    """Every path of a stack and its verdicts."""

    stack: str
    results: tuple[PathResult, ...]
    notes: tuple[str, ...] = ()

    def of_kind(self, kind: str) -> list[PathResult]:
        return [r for r in self.results if r.spec.kind == kind]

    @property
    def carry(self) -> list[PathResult]:
        return [r for r in self.results if r.spec.expect == "carry"]

    @property
    def refuse(self) -> list[PathResult]:
        return [r for r in self.results if r.spec.expect == "refuse"]

    @property
    def failures(self) -> list[PathResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def problems(self) -> list[str]:
        return [line for result in self.failures for line in result.problems]

    def verdict_failures(self) -> list[str]:
        """One line per kind of failure, naming the first path and its layer."""
        lines = []
        for expect, noun, what in (
            ("carry", "must-carry path", "broken"),
            ("refuse", "must-refuse path", "not refused as required"),
        ):
            failing = [r for r in self.failures if r.spec.expect == expect]
            if not failing:
                continue
            first = failing[0]
            if expect == "carry":
                layer = first.refusing[0]
            else:
                layer = (
                    ", ".join(sorted(x for x in first.spec.required if x not in first.refusing)) or "refusals"
                )
            total = len(self.carry if expect == "carry" else self.refuse)
            lines.append(f"{len(failing)} of {total} {noun}s {what} (first: {first.spec.name} at {layer})")
        return lines

    def verdict_counts(self) -> str:
        carried = sum(1 for r in self.carry if r.ok)
        refused = sum(1 for r in self.refuse if r.ok)
        return (
            f"{carried} of {len(self.carry)} must-carry paths carried, "
            f"{refused} of {len(self.refuse)} must-refuse paths refused"
        )

    def verdict_line(self) -> str:
        status = "passed" if self.ok else "FAILED"
        return f"paths {status}: " + "; ".join([*self.verdict_failures(), self.verdict_counts()])


def summary_by_layer(results: Sequence[PathResult]) -> dict[str, int]:
    """How many failing paths each layer is responsible for."""
    counts: dict[str, int] = {}
    for result in results:
        if result.ok:
            continue
        layers = (
            result.refusing
            if result.spec.expect == "carry"
            else tuple(sorted(result.spec.required - set(result.refusing)))
        )
        for layer in layers or ("(too few layers)",):
            counts[layer] = counts.get(layer, 0) + 1
    return counts
