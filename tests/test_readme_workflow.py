"""The README's "Adding, changing and removing a service", performed literally on a copy of the project:
declare a service with a database, a public route and a call; plan; record; test; remove it and see
the deletion guard. The commands and the YAML come from the README itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rampart.offline import stateful
from tests.support.cli import merged
from tests.support.reference import PROJECT_ROOT

SECTION = "### Adding, changing and removing a service"
STAMP = ".venv/.installed-stamp"
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "out", "__pycache__", "*.egg-info", ".*cache", ".hypothesis", ".charts", ".reference",
    ".pulumi-state", ".pulumi-passphrase",
)  # fmt: skip


def readme_section() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n### ", start + len(SECTION))]


def yaml_blocks(section: str) -> list[str]:
    """The README's ```yaml blocks, as written (list items indent them; dedented here)."""
    return [textwrap.dedent(block) for block in re.findall(r"```yaml\n(.*?)\n *```", section, re.DOTALL)]


def commands(section: str) -> list[str]:
    """Every `make ...` command the section names, in order."""
    return re.findall(r"`(make [a-z-]+(?: [A-Z]+=[a-z]+)*)`", section)


def copy_project(tmp_path: Path) -> Path:
    """The project as a fresh clone has it, using the installed virtualenv (nothing is installed)."""
    root = tmp_path / "rampart"
    shutil.copytree(PROJECT_ROOT, root, ignore=IGNORED, symlinks=True)
    (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    return root


def make(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    """A README `make` command, run in the copy against the copy's code. `-o` keeps make from
    re-creating the shared virtualenv when copied files look newer than its stamp."""
    args = command.split()
    environment = {k: v for k, v in os.environ.items() if k not in ("PULUMI_STACK", "MAKEFLAGS", "MAKELEVEL")}
    return merged(
        [args[0], "-s", "-o", STAMP, *args[1:]],
        cwd=root,
        env=environment | {"PYTHONPATH": str(root)},
        timeout=900,
    )


def add_to_stack(stack_file: Path, snippet: dict[str, Any]) -> None:
    """Step 2 as an editor would do it: the names appended to rampart:services, the overrides
    added under rampart:service_overrides; comments and the schema line stay."""
    lines = stack_file.read_text().splitlines()
    start = lines.index("  rampart:services:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  - "))
    lines[end:end] = [f"  - {name}" for name in snippet["rampart:services"]]
    overrides = yaml.safe_dump(snippet["rampart:service_overrides"], sort_keys=False).splitlines()
    at = lines.index("  rampart:service_overrides:") + 1
    lines[at:at] = [f"    {line}" for line in overrides]
    stack_file.write_text("\n".join(lines) + "\n")


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's verdict: its last line, before make's own `make: *** ... Error` on a failure."""
    return [line for line in result.stdout.splitlines() if not line.startswith("make: ")][-1]


def test_adding_and_removing_a_service_as_the_readme_says(tmp_path: Path) -> None:
    section = readme_section()
    service_yaml, stack_yaml = yaml_blocks(section)[:2]
    plan_command, record_command, test_command = (
        "make plan STACK=local",
        "make record STACK=local",
        "make test-stacks STACKS=local",
    )
    assert [plan_command, record_command, test_command] == [
        c for c in commands(section) if c in (plan_command, record_command, test_command)
    ][:3]
    first_line, *_ = service_yaml.splitlines()
    assert first_line == "# yaml-language-server: $schema=../schemas/service.schema.json"
    declaration = yaml.safe_load(service_yaml)
    assert declaration["database"] and declaration["routes"] and declaration["calls"]
    root = copy_project(tmp_path)
    stack_file = root / "stacks" / "Pulumi.local.yaml"
    original_stack, golden = stack_file.read_text(), stateful.golden_path(root, "local")
    original_golden = golden.read_text()
    callee = declaration["calls"][0]
    assert f"  - {callee}\n" in original_stack, "the README's example calls a service the local stack runs"

    # 1-2: declare it and name it in the stack.
    (root / "stacks" / "services" / "shipping.yaml").write_text(service_yaml + "\n")
    add_to_stack(stack_file, yaml.safe_load(stack_yaml))

    # 3: the plan passes and notes the new stateful resources, not as deletions.
    planned = make(root, plan_command)
    assert planned.returncode == 0, planned.stdout[-3000:]
    notes = [
        line for line in planned.stdout.splitlines() if line.startswith("note: ") and "new stateful" in line
    ]
    assert notes and all("shipping" in line for line in notes)
    assert "✗" not in planned.stdout
    new = len(notes)
    assert re.fullmatch(
        rf"plan passed: \d+ resources; {new} new stateful resources? not recorded "
        r"\(`rampart stateful --stack local --record`\); policy gate passed \(0 mandatory, \d+ advisory\)",
        last_line(planned),
    ), last_line(planned)

    # 4: record them.
    recorded = make(root, record_command)
    before = sum(line.startswith("urn:") for line in original_golden.splitlines())
    assert last_line(recorded) == (
        f"stateful passed: recorded {before + new} stateful URNs in stacks/stateful/local.txt"
    ), recorded.stdout[-2000:]
    assert sum("shipping" in urn for urn in stateful.read_golden(golden)) == new

    # 5: the quick tests pass with the new service in the catalog.
    tested = make(root, test_command)
    assert tested.returncode == 0, tested.stdout[-5000:]
    assert re.search(r"\d+ passed", tested.stdout)

    # Removing it: the plan fails, naming each stateful resource `pulumi up` would delete.
    stack_file.write_text(original_stack)
    (root / "stacks" / "services" / "shipping.yaml").unlink()
    guarded = make(root, plan_command)
    assert guarded.returncode != 0
    lost = [line for line in guarded.stdout.splitlines() if line.startswith("✗ stateful resource lost: ")]
    assert len(lost) == new and all("shipping" in line and "would DELETE" in line for line in lost)
    assert re.fullmatch(
        rf"plan FAILED: {new} stateful resources? would be deleted; \d+ resources; "
        r"policy gate passed \(0 mandatory, \d+ advisory\)",
        last_line(guarded),
    ), last_line(guarded)
    # ... and recording again, on purpose, gives back the golden file as it was.
    assert make(root, record_command).returncode == 0
    assert golden.read_text() == original_golden


@pytest.mark.parametrize(
    "command", ["make plan STACK=local", "make record STACK=local", "make test-stacks STACKS=local"]
)
def test_the_readme_commands_are_make_targets(command: str) -> None:
    target = command.split()[1]
    assert re.search(rf"^{target}:", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert command in readme_section()


def test_make_policy_defaults_to_the_last_plan_of_the_stack() -> None:
    result = subprocess.run(
        ["make", "-s", "-n", "-o", STAMP, "policy", "STACK=dev"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ".venv/bin/rampart policy --file out/plan-dev.json" in result.stdout


def test_make_env_gives_raw_pulumi_the_local_backend(tmp_path: Path) -> None:
    """`eval "$(make -s env STACK=local)"`: exports only, the passphrase created on first use."""
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    result = subprocess.run(
        ["make", "-s", "env", "STACK=local"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export PULUMI_STACK=local",
        f"export PULUMI_BACKEND_URL=file://{tmp_path}/.pulumi-state "
        f"PULUMI_CONFIG_PASSPHRASE_FILE={tmp_path}/.pulumi-passphrase",
    ]
    assert (tmp_path / ".pulumi-passphrase").stat().st_mode & 0o077 == 0
    dev = subprocess.run(
        ["make", "-s", "env", "STACK=dev"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert dev.stdout.splitlines() == ["export PULUMI_STACK=dev"]


@pytest.mark.parametrize("stack", ["local", "dev"])
def test_make_preview_creates_the_stack_with_the_provider_its_file_names(stack: str) -> None:
    provider = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())[
        "secretsprovider"
    ]
    result = subprocess.run(
        ["make", "-s", "-n", "-o", STAMP, "-o", "local-backend", "preview", f"STACK={stack}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"pulumi stack select --create --secrets-provider '{provider}' {stack}" in result.stdout
