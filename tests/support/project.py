"""Throwaway projects that run the real infra/ program on stack files and catalogs of a test's making."""

from __future__ import annotations

import runpy
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rampart.config import ConfigError
from rampart.offline.mocks import PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.project import load_project, load_stack_config
from rampart.offline.runner import capture
from tests.support.catalog import SHOP, write_catalog
from tests.support.reference import PROJECT_ROOT

CATALOG = PROJECT_ROOT / "stacks" / "services"


def stack_document(stack: str) -> dict[str, Any]:
    """A copy of the real stack file's document, to change before writing it elsewhere."""
    document: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    return document


def shop_stack(stack: str) -> dict[str, Any]:
    """A real stack file's platform settings running the tests' own catalog (tests.support.catalog.SHOP)."""
    document = stack_document(stack)
    config = dict(document["config"])
    config.pop("rampart:service_overrides", None)
    config["rampart:services"] = list(SHOP)
    return document | {"config": config}


def temp_project(
    root: Path, stacks: dict[str, dict[str, Any]], catalog: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """``root`` as a project: Pulumi.yaml (main: the real infra/), a service catalog (``catalog``, or
    a copy of the real one), and one stack file per entry of ``stacks`` (name -> the file's document)."""
    project = {
        "name": "rampart",
        "runtime": "python",
        "main": str(PROJECT_ROOT / "infra"),
        "stackConfigDir": "stacks",
    }
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    if catalog is None:
        shutil.copytree(CATALOG, root / "stacks" / "services")
    else:
        write_catalog(root / "stacks" / "services", catalog)
    for name, document in stacks.items():
        (root / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return root


def refused_problems(root: Path, stack: str) -> tuple[list[str], list[str]]:
    """Run the real program of the project at ``root`` on ``stack``, which must stop with a ConfigError:
    its problems, and the types the program registered before it stopped."""
    project = load_project(root)
    values = load_stack_config(project, stack).values
    monitor = CapturingMonitor(PlanMocks())

    def program() -> None:
        runpy.run_path(str(project.main), run_name="__main__")

    with pytest.raises(ConfigError) as caught:
        capture(program, stack=stack, config=values, monitor=monitor, root_directory=root)
    return caught.value.problems, [r["type"] for r in monitor.registrations]
