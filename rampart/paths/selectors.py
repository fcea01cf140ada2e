"""Kubernetes label selectors, as every layer model reads them (NetworkPolicy, SecurityGroupPolicy,
Istio ``selector.matchLabels``, Prometheus monitors).

Semantics: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
and the LabelSelector API (meta/v1): ``matchLabels`` and ``matchExpressions`` are ANDed; an empty
selector (``{}``) selects everything; an absent one selects nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def expression_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One ``matchExpressions`` entry: In, NotIn, Exists, DoesNotExist."""
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    present = key in labels
    return {
        "In": present and labels.get(key) in values,
        "NotIn": not (present and labels.get(key) in values),
        "Exists": present,
        "DoesNotExist": not present,
    }[operator]


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; None matches nothing (an absent selector), {} matches everything."""
    if selector is None:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        expression_holds(e, labels) for e in selector.get("matchExpressions") or []
    )


def matches_labels(match_labels: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Istio's ``selector.matchLabels`` (workloadSelector): None or {} selects every workload of the
    namespace (https://istio.io/latest/docs/reference/config/type/workload-selector/)."""
    return all(labels.get(k) == v for k, v in (match_labels or {}).items())
