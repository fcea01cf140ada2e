"""Every command ends with one line that states the overall result and agrees with its exit code,
and output to a pipe (a CI log) is plain text: no rich markup, no escape codes."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from rich.console import Console

from rampart.offline import summary
from rampart.offline.stateful import record_command
from tests.conftest import planned, stack_config
from tests.support.catalog import SHOP
from tests.support.cli import RAMPART, merged
from tests.support.project import shop_stack, temp_project
from tests.support.reference import PROJECT_ROOT

VERDICT = re.compile(r"^(?P<command>[a-z-]+) (?P<status>passed|FAILED)(?:: (?P<facts>.+))?$")
MARKUP = re.compile(r"\[/?(?:red|green|yellow|cyan|bold|dim|magenta)\b[^\]]*\]")


def run(*args: str, cwd: Path = PROJECT_ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as CI runs it: output to a pipe, stderr merged into stdout in order."""
    environment = {k: v for k, v in os.environ.items() if k != "PULUMI_STACK"} | env
    return merged([RAMPART, *args], cwd=cwd, env=environment, timeout=300)


def verdict(result: subprocess.CompletedProcess[str], command: str) -> re.Match[str]:
    """The last line, checked to be ``command``'s verdict, to agree with the exit code, and the
    whole output to be plain text."""
    assert "\x1b[" not in result.stdout, "escape codes in piped output"
    assert not MARKUP.findall(result.stdout), MARKUP.findall(result.stdout)
    assert "Traceback" not in result.stdout
    last = result.stdout.rstrip("\n").splitlines()[-1]
    match = VERDICT.match(last)
    assert match is not None and match["command"] == command, last
    assert (match["status"] == "passed") == (result.returncode == 0), (result.returncode, last)
    return match


@pytest.fixture(scope="module")
def export(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    path = tmp_path_factory.mktemp("plan") / "plan-local.json"
    yield path, run("plan", "--out", str(path), PULUMI_STACK="local")


def test_plan_without_stack_uses_pulumi_stack_and_ends_with_its_verdict(
    export: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    path, result = export
    assert result.returncode == 0, result.stdout
    assert "Plan for stack 'local'" in result.stdout
    facts = verdict(result, "plan")["facts"]
    assert facts.startswith(f"{len(planned('local').resources)} resources;")
    assert re.search(r"policy gate passed \(0 mandatory, \d+ advisory\)$", facts)
    assert path.is_file()
    # Counts read as counts: the policy config's numbers are not "2.0".
    assert not re.search(r"\b\d+\.0\b to survive|need \d+\.0\b", result.stdout)


def test_two_plans_in_two_processes_give_the_same_bytes(
    export: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Another process, another hash seed, no policy gate: the same export, byte for byte."""
    path, _ = export
    again = tmp_path / "again.json"
    result = run("plan", "-s", "local", "--no-policy", "-o", str(again), PYTHONHASHSEED="12345")
    assert result.returncode == 0, result.stdout
    assert again.read_bytes() == path.read_bytes()


def test_the_plan_shows_services_and_routes_and_types_only_when_verbose() -> None:
    config = stack_config("local")
    buffer = io.StringIO()
    summary.render(planned("local"), Console(file=buffer, width=100), config)
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100
    services = text[text.index("Services") :]
    # A row starts in the first column; a wrapped cell continues further right.
    rows = [line.split()[0] for line in services.splitlines()[3:] if line[:2] == "  " and line[2:3].strip()]
    assert [name for name in rows if name in {s.name for s in config.services}] == [
        s.name for s in config.services
    ]
    for route in (r for s in config.services for r in s.routes):
        assert f"{route.host}{route.path}" in text, "a route is shown whole, not folded"
    assert "Resources by type" not in text
    buffer = io.StringIO()
    summary.render(planned("local"), Console(file=buffer, width=100), config, verbose=True)
    assert "Resources by type" in buffer.getvalue()


def test_no_stack_at_all_is_a_usage_error_naming_both_ways() -> None:
    result = run("plan")
    assert result.returncode == 2
    assert "give --stack <name> or set PULUMI_STACK" in result.stdout
    assert verdict(result, "plan")["facts"] == "no stack given"


def test_a_config_error_ends_with_the_verdict(tmp_path: Path) -> None:
    document = shop_stack("local")
    document["config"]["rampart:service_overrides"] = {"orders": {"replicaz": 3}}
    project = temp_project(tmp_path, {"bad": document}, catalog=SHOP)
    result = run("plan", "--stack", "bad", "--project", str(project))
    assert result.returncode == 1
    assert (
        "rampart:service_overrides.orders.replicaz: unknown key (did you mean 'replicas'?)" in result.stdout
    )
    assert verdict(result, "plan")["facts"] == "invalid configuration (1 problem)"


def test_policy_manifests_order_and_diff_on_the_export(
    export: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    path, _ = export
    assert verdict(run("policy", "--file", str(path)), "policy")["status"] == "passed"
    manifests = run("manifests", "--file", str(path), "--out", str(tmp_path / "m"))
    facts = verdict(manifests, "manifests")["facts"]
    assert "chart-rendered objects not included (`rampart render --stack local`)" in facts
    assert "not included: the objects" in manifests.stdout and "vault" in manifests.stdout
    order = run("order", "--file", str(path))
    assert verdict(order, "order")["status"] == ("passed" if order.returncode == 0 else "FAILED")
    assert verdict(run("diff", str(path), str(path)), "diff")["facts"].startswith("no changes")
    missing = run("diff", str(path), str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and verdict(missing, "diff")["facts"] == "unusable plan file"


def test_stateful_graph_and_config_schema(tmp_path: Path) -> None:
    stateful = run("stateful", "--stack", "local")
    assert verdict(stateful, "stateful")["facts"].endswith("match stacks/stateful/local.txt")
    graph = run("graph", "--out", str(tmp_path / "g.svg"), PULUMI_STACK="local")
    assert verdict(graph, "graph")["facts"].startswith(f"wrote {tmp_path / 'g.svg'} (svg, ")
    bad = run("graph", "-s", "local", "-o", str(tmp_path / "g.png"))
    assert bad.returncode == 2 and verdict(bad, "graph")["facts"] == "unknown diagram format"
    assert verdict(run("config-schema", "--check"), "config-schema")["status"] == "passed"


def test_a_lost_stateful_resource_fails_the_plan_while_the_gate_passes(tmp_path: Path) -> None:
    """The issue's case: the gate passes, the plan fails, and the last line says both."""
    catalog = {
        # web keeps a database too, so the operator stays and only ledger's resources go.
        "web": {"team": "commerce", "image": "ghcr.io/acme/web:1.0.0", "database": {"storage_gb": 5}},
        "ledger": {"team": "payments", "image": "ghcr.io/acme/ledger:1.0.0", "database": {"storage_gb": 5}},
    }
    document = shop_stack("local")
    document["config"]["rampart:services"] = list(catalog)
    project = temp_project(tmp_path, {"s": document}, catalog=catalog)
    (project / "policies" / "config").mkdir(parents=True)
    (project / "policies" / "config" / "s").symlink_to(PROJECT_ROOT / "policies" / "config" / "local")
    for pack in ("security", "reliability"):
        (project / "policies" / pack).symlink_to(PROJECT_ROOT / "policies" / pack)
    recorded = run("stateful", "--stack", "s", "--record", "--project", str(project))
    assert verdict(recorded, "stateful")["facts"].startswith("recorded ")
    stack_file = project / "stacks" / "Pulumi.s.yaml"
    stack_file.write_text(stack_file.read_text().replace("- ledger\n", ""))
    result = run("plan", "--stack", "s", "--project", str(project))
    assert result.returncode == 1, result.stdout
    lost = [line for line in result.stdout.splitlines() if line.startswith("✗ stateful resource lost: ")]
    assert lost and all("ledger" in line and "would DELETE" in line for line in lost)
    facts = verdict(result, "plan")["facts"]
    assert facts.startswith(f"{len(lost)} stateful resources would be deleted; ")
    assert re.search(r"; policy gate passed \(0 mandatory, \d+ advisory\)$", facts), facts


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert (
        result.stdout.strip()
        == f"rampart {metadata.version('rampart')} (pulumi {metadata.version('pulumi')})"
    )


def test_make_schemas_offline_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location(
        "fetch_reference", PROJECT_ROOT / "scripts" / "fetch_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def offline(url: str) -> bytes:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(module, "get", offline)
    monkeypatch.setattr(sys, "argv", ["fetch_reference.py", "--out", "/nonexistent/never-written"])
    assert module.main() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot download the reference data (")
    assert "Temporary failure in name resolution" in err


def test_new_stateful_resources_are_a_note_not_a_deletion() -> None:
    assert record_command("local") == "rampart stateful --stack local --record"
