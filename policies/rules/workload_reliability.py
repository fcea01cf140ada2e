"""Reliability rules for workloads: enough replicas, a disruption budget, zone spread."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, Violation, boolean, number, of_types, positive_integer
from policies.rules.kubernetes import DEPLOYMENT, STATEFUL_SET, pod_spec
from policies.table import on, table_rules, whole_plan

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
ZONE_KEY = "topology.kubernetes.io/zone"
MIN_REPLICAS = {"minReplicas": positive_integer(2)}


def _replicas(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    minimum = config["minReplicas"]
    if resource.type == HPA:
        replicas = number(resource.get("spec.minReplicas"), 1)
        what = "minReplicas"
    else:
        replicas = number(resource.get("spec.replicas"), 1)
        what = "replicas"
    if replicas < minimum:
        yield f"{resource.object_name}: {what} is {replicas:g} (needs at least {minimum:g})"


def _hpa_can_scale(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    # minReplicas defaults to 1 (autoscaling/v2 HorizontalPodAutoscalerSpec).
    low, high = number(resource.get("spec.minReplicas"), 1), number(resource.get("spec.maxReplicas"))
    if high <= low:
        yield f"{resource.object_name}: maxReplicas {high:g} is not above minReplicas {low:g}, cannot scale"


def _template_labels(workload: Resource) -> Mapping[str, Any]:
    labels = workload.get("spec.template.metadata.labels") or {}
    return labels if isinstance(labels, Mapping) else {}


def _selector(budget: Resource) -> dict[str, str]:
    selector = budget.get("spec.selector.matchLabels") or {}
    return {str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) else {}


def _pdb(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # A budget covers a workload in its namespace whose pod labels include all of its matchLabels. Each
    # budget is indexed under its rarest label, so a workload looks only at budgets that could match it
    # (a label every budget shares would make this quadratic in the catalog).
    budgets = [(b.namespace, _selector(b)) for b in of_types(resources, PDB)]
    frequency = Counter((namespace, item) for namespace, selector in budgets for item in selector.items())
    index: dict[tuple[str | None, tuple[str, str]], list[dict[str, str]]] = defaultdict(list)
    for namespace, selector in budgets:
        if selector:
            rarest = min(selector.items(), key=lambda item: frequency[(namespace, item)])
            index[(namespace, rarest)].append(selector)
    for workload in of_types(resources, DEPLOYMENT, STATEFUL_SET):
        labels = {str(k): str(v) for k, v in _template_labels(workload).items()}
        covered = any(
            all(labels.get(key) == value for key, value in selector.items())
            for item in labels.items()
            for selector in index.get((workload.namespace, item), ())
        )
        if not covered:
            yield Violation(f"{workload.object_name}: no PodDisruptionBudget selects its pods", workload.urn)


def _zone_spread(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    constraints = pod_spec(resource).get("topologySpreadConstraints") or []
    zone = [c for c in constraints if c.get("topologyKey") == ZONE_KEY]
    if not zone:
        yield f"{resource.object_name}: no topology spread across zones ({ZONE_KEY})"
    elif config["requireHardSpread"] and not any(c.get("whenUnsatisfiable") == "DoNotSchedule" for c in zone):
        yield f"{resource.object_name}: zone spread is only preferred (whenUnsatisfiable: ScheduleAnyway)"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "workload-replicas": on((DEPLOYMENT, STATEFUL_SET, HPA), _replicas, MIN_REPLICAS),
        "hpa-can-scale": on((HPA,), _hpa_can_scale),
        "workload-disruption-budget": whole_plan(_pdb),
        "workload-zone-spread": on(
            (DEPLOYMENT, STATEFUL_SET), _zone_spread, {"requireHardSpread": boolean(True)}
        ),
    },
)
