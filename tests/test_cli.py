"""The `rampart` command as a user runs it: exit codes, messages, files, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.conftest import stack_config
from tests.support.catalog import SHOP
from tests.support.project import shop_stack, temp_project
from tests.support.reference import PROJECT_ROOT

RAMPART = str(Path(sys.executable).parent / "rampart")


def rampart(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAMPART, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def project_with_stack(tmp_path: Path, config: dict[str, Any]) -> Path:
    """A project running the real infra/ program and the tests' catalog with a stack file of our making."""
    return temp_project(tmp_path, {"bad": {"config": config}}, catalog=SHOP)


def local_config() -> dict[str, Any]:
    """The local stack's platform settings, running the tests' catalog (SHOP), without overrides yet."""
    return dict(shop_stack("local")["config"]) | {"rampart:service_overrides": {name: {} for name in SHOP}}


def test_plan_prints_the_summary_and_writes_the_export(tmp_path: Path) -> None:
    # As `make plan` does on a fresh clone: the output directory does not exist yet.
    out = tmp_path / "out" / "p.json"
    result = rampart("plan", "--stack", "local", "--out", str(out), "--verbose")
    assert result.returncode == 0, result.stderr
    assert "Plan for stack 'local'" in result.stdout
    assert "kubernetes:apps/v1:Deployment" in result.stdout
    for service in stack_config("local").services:
        assert service.name in result.stdout
    resources = json.loads(out.read_text())["deployment"]["resources"]
    assert len(resources) > 80


def test_unknown_key_fails_with_the_file_and_key_path_and_no_traceback(tmp_path: Path) -> None:
    config = local_config()
    config["rampart:service_overrides"]["payments"]["replicaz"] = 3
    project = project_with_stack(tmp_path, config)
    (project / "stacks" / "services" / "cart.yaml").write_text("image: ghcr.io/acme/cart:1.0.0\nprot: 80\n")
    result = rampart("plan", "--stack", "bad", "--project", str(project))
    assert result.returncode == 1
    assert (
        "stacks/Pulumi.bad.yaml: rampart:service_overrides.payments.replicaz: unknown key "
        "(did you mean 'replicas'?)" in result.stderr
    )
    assert "stacks/services/cart.yaml: prot: unknown key (did you mean 'port'?)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_calls_target_fails_with_the_key_path(tmp_path: Path) -> None:
    config = local_config()
    config["rampart:service_overrides"]["orders"]["calls"] = ["payments", "paymnts"]
    result = rampart("plan", "--stack", "bad", "--project", str(project_with_stack(tmp_path, config)))
    assert result.returncode == 1
    assert (
        "stacks/Pulumi.bad.yaml: rampart:service_overrides.orders.calls[1]: unknown service 'paymnts' "
        "(did you mean 'payments'?)" in result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_stack_and_broken_yaml_are_one_line_errors(tmp_path: Path) -> None:
    missing = rampart("plan", "--stack", "nope")
    assert missing.returncode == 1
    assert "no stack file for 'nope'" in missing.stderr and "local" in missing.stderr
    project = project_with_stack(tmp_path, {})
    (project / "stacks" / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    broken = rampart("plan", "--stack", "bad", "--project", str(project))
    assert broken.returncode == 1
    assert "not valid YAML at line" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_manifests_from_a_stack_and_from_an_export(tmp_path: Path) -> None:
    result = rampart("manifests", "--stack", "dev", "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "m").rglob("*.yaml"))
    assert len(files) >= 70
    export = tmp_path / "p.json"
    assert rampart("plan", "-s", "dev", "-o", str(export)).returncode == 0
    again = rampart("manifests", "--file", str(export), "--out", str(tmp_path / "m2"))
    assert again.returncode == 0, again.stderr
    assert sorted(p.relative_to(tmp_path / "m2") for p in (tmp_path / "m2").rglob("*.yaml")) == [
        p.relative_to(tmp_path / "m") for p in files
    ]


def test_graph_writes_a_diagram_for_each_stack(tmp_path: Path) -> None:
    for stack in ("local", "dev", "staging", "prod"):
        svg = tmp_path / f"{stack}.svg"
        result = rampart("graph", "--stack", stack, "--out", str(svg))
        assert result.returncode == 0, result.stderr
        assert ET.parse(svg).getroot().tag.endswith("svg")
    mermaid = tmp_path / "local.mmd"
    assert rampart("graph", "-s", "local", "-o", str(mermaid)).returncode == 0
    assert mermaid.read_text().startswith("flowchart LR")
    bad = rampart("graph", "-s", "local", "-o", str(tmp_path / "g.png"))
    assert bad.returncode == 2 and "cannot draw" in bad.stderr and "Traceback" not in bad.stderr
