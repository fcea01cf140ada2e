"""Every Helm release in every stack's plan: a pinned chart, and only values keys the chart has."""

from __future__ import annotations

from tests.conftest import planned
from tests.support.helm import CHART_DIRECTORIES, chart_defaults, unknown_keys, unknown_release_keys

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_every_release_is_pinned_and_sets_only_known_values_keys(stack: str) -> None:
    releases = [r["inputs"] for r in planned(stack).of_type(RELEASE)]
    assert len(releases) >= 5
    for release in releases:
        chart = release["chart"]
        assert chart in CHART_DIRECTORIES, f"{chart}: no reference defaults known for this chart"
        version = str(release.get("version") or "")
        assert version and not any(c in version for c in "^~*x><"), (chart, version)
        assert unknown_release_keys(CHART_DIRECTORIES[chart], release.get("values") or {}) == set(), chart


def test_the_checker_catches_a_misspelt_key() -> None:
    assert set(unknown_keys({"replicaCount": 2, "replicas": 2}, chart_defaults("cert-manager"))) == {
        "replicas"
    }
    assert unknown_release_keys("kong-ingress", {"gateway": {"proxy": {"typ": "LoadBalancer"}}}) == {
        "gateway.proxy.typ"
    }
    assert unknown_release_keys("istiod", {"meshConfig": {"outboundTraficPolicy": {}}}) == {
        "meshConfig.outboundTraficPolicy"
    }
