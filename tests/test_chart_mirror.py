"""Issue 13, `rampart:charts.mirror`: air-gapped installs take every chart from a local chart mirror.

Helm installs a chart given as a path to a chart archive without contacting any repository (helm's
ChartPathOptions.LocateChart returns a local path as is; pulumi-kubernetes' Release hands `chart` to
it), so from a mirror each release's `chart` is `<mirror>/<chart>-<version>.tgz` and it has no
`repositoryOpts`. The real program is planned with a mirror of empty placeholder archives named like
the charts (nothing reads their content at plan time); policies must still know each chart.
"""

from __future__ import annotations

import copy
import json
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.chart_pins import installed_charts
from components.core.chart_archive import chart_name
from components.core.charts import Chart, ChartMirror
from rampart.config import ConfigError
from rampart.offline.gate import discover_packs, run_gate
from rampart.offline.mocks import PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.project import load_project, load_stack_config
from rampart.offline.render import pinned_charts
from rampart.offline.runner import capture, run_plan
from tests.conftest import PROJECT_ROOT, planned, stack_config

RELEASE = "kubernetes:helm.sh/v3:Release"
STACK = "local"


def placeholders(directory: Path, charts: list[Chart]) -> Path:
    """Empty files named like the mirror's archives: `<chart>-<version>.tgz`."""
    directory.mkdir(exist_ok=True)
    for chart in charts:
        (directory / f"{chart.short_name}-{chart.version}.tgz").touch()
    return directory


def mirror_config(directory: Path) -> dict[str, str]:
    return {"rampart:charts": json.dumps({"mirror": str(directory)})}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return placeholders(tmp_path_factory.mktemp("charts"), installed_charts(stack_config(STACK)))


@pytest.fixture(scope="module")
def from_mirror(mirror: Path) -> Plan:
    return run_plan(STACK, PROJECT_ROOT, mirror_config(mirror))


def program(main: Path) -> Callable[[], None]:
    """What the language host does with Pulumi.yaml's `main`."""
    return lambda: runpy.run_path(str(main), run_name="__main__")


def releases(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r["inputs"] for r in plan.of_type(RELEASE)}


def test_without_a_mirror_releases_come_from_their_repositories() -> None:
    for inputs in releases(planned(STACK)).values():
        assert inputs["repositoryOpts"]["repo"].startswith(("https://", "oci://"))
        assert not inputs["chart"].endswith(".tgz")


def test_every_release_installs_from_the_mirror(mirror: Path, from_mirror: Plan) -> None:
    online = releases(planned(STACK))
    offline = releases(from_mirror)
    assert offline.keys() == online.keys() and offline
    for urn, inputs in offline.items():
        name, version = chart_name(online[urn]["chart"]), online[urn]["version"]
        assert inputs["chart"] == str(mirror / f"{name}-{version}.tgz")
        assert inputs["version"] == version
        assert "repositoryOpts" not in inputs
        # Everything else of the release is as online: the values, the name, the namespace.
        rest = {k: v for k, v in inputs.items() if k not in ("chart", "repositoryOpts")}
        assert rest == {k: v for k, v in online[urn].items() if k not in ("chart", "repositoryOpts")}
    # `rampart render --charts` finds the same charts in the mirror.
    assert [(c.name, c.version) for c in pinned_charts([from_mirror])] == [
        (c.name, c.version) for c in pinned_charts([planned(STACK)])
    ]


def test_policies_know_the_charts_installed_from_the_mirror(from_mirror: Plan) -> None:
    packs, config = discover_packs(PROJECT_ROOT), PROJECT_ROOT / "policies" / "config"
    assert run_gate(from_mirror, packs, config).mandatory == []
    # Mutation: Vault without TLS must still be caught when its chart is a mirror archive.
    weakened = copy.deepcopy(from_mirror)
    (vault,) = [
        r
        for r in weakened.of_type(RELEASE)
        if chart_name(r["inputs"]["chart"], r["inputs"]["version"]) == "vault"
    ]
    vault["inputs"]["values"]["global"]["tlsDisable"] = True
    found = run_gate(weakened, packs, config).mandatory
    assert [d.policy for d in found] == ["vault-tls"], found


def test_a_mirror_without_every_chart_is_refused_before_any_resource(tmp_path: Path) -> None:
    charts = installed_charts(stack_config(STACK))
    dropped = [c for c in charts if c.short_name in ("istiod", "loki")]
    directory = placeholders(tmp_path / "mirror", [c for c in charts if c not in dropped])
    project = load_project(PROJECT_ROOT)
    values = dict(load_stack_config(project, STACK).values) | mirror_config(directory)
    monitor = CapturingMonitor(PlanMocks())
    missing = ", ".join(sorted(f"{c.short_name}-{c.version}.tgz" for c in dropped))
    with pytest.raises(ConfigError) as caught:
        capture(program(project.main), stack=STACK, config=values, monitor=monitor)
    (problem,) = caught.value.problems
    assert problem.endswith(
        f"charts.mirror: {directory} lacks {missing} (scripts/build_chart_mirror.py --out <dir>)"
    )
    assert [r["type"] for r in monitor.registrations] == ["pulumi:pulumi:Stack"]


def test_a_mirror_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    project = load_project(PROJECT_ROOT)
    values = dict(load_stack_config(project, STACK).values) | mirror_config(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"charts\.mirror: .*absent is not a directory"):
        capture(program(project.main), stack=STACK, config=values)


def test_the_mirror_takes_helm_pull_names_with_or_without_the_leading_v(tmp_path: Path) -> None:
    cert_manager = Chart("https://charts.jetstack.io", "cert-manager", "v1.21.1")
    karpenter = Chart("oci://public.ecr.aws/karpenter", "oci://public.ecr.aws/karpenter/karpenter", "1.14.1")
    mirror = ChartMirror(tmp_path)
    assert mirror.missing([cert_manager, karpenter]) == ["cert-manager-v1.21.1.tgz", "karpenter-1.14.1.tgz"]
    (tmp_path / "cert-manager-1.21.1.tgz").touch()
    (tmp_path / "karpenter-1.14.1.tgz").touch()
    assert mirror.missing([cert_manager, karpenter]) == []
    assert mirror.archive(karpenter) == tmp_path / "karpenter-1.14.1.tgz"
    assert chart_name(str(tmp_path / "cert-manager-1.21.1.tgz"), "v1.21.1") == "cert-manager"


def test_the_chart_pins_are_the_charts_of_each_stack(stack: str) -> None:
    # installed_charts (what the config check asks of a mirror) is exactly what the plan installs.
    pinned = [(c.short_name, c.version) for c in installed_charts(stack_config(stack))]
    assert pinned == [(c.name, c.version) for c in pinned_charts([planned(stack)])]
