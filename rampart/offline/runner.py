"""Run the real program (Pulumi.yaml's `main`) under the SDK's mock monitor and capture the plan."""

from __future__ import annotations

import logging
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockSettings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from rampart.config import PlatformConfig, load_platform_config, namespace_values
from rampart.offline.mocks import DEFAULT_REGION, PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.project import load_project, load_stack_config

ORGANIZATION = "organization"


def project_root() -> Path:
    """The directory holding Pulumi.yaml: the current one or an ancestor."""
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    return here


def run_plan(stack: str, root: Path | None = None) -> Plan:
    """Plan ``stack`` offline. Raises ConfigError / StackFileError on bad input."""
    project = load_project(root or project_root())
    stack_config = load_stack_config(project, stack)

    def program() -> None:
        # Exactly what the language host does with `main`: run it as __main__.
        runpy.run_path(str(project.main), run_name="__main__")

    sys.path.insert(0, str(project.root))
    try:
        registrations = capture(
            program,
            project=project.name,
            stack=stack,
            config=stack_config.values,
            secret_keys=stack_config.secret_keys,
        )
    finally:
        sys.path.remove(str(project.root))
    provider_state = {"salt": stack_config.encryption_salt} if stack_config.encryption_salt else {}
    return Plan.from_registrations(
        project.name,
        stack,
        registrations,
        {"type": stack_config.secrets_provider, "state": provider_state},
    )


def capture(
    program: Callable[[], None],
    *,
    project: str = "rampart",
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    monitor: CapturingMonitor | None = None,
) -> list[dict[str, Any]]:
    """Run ``program`` inside a fresh root Stack under the capturing mock monitor and
    return every registration once all outstanding work (and so every output) has settled."""
    config = config or {}
    monitor = monitor or CapturingMonitor(PlanMocks(region=_region(config)))
    runtime_settings.configure(
        MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=MockEngine(logging.getLogger("rampart.plan")),
            project=project,
            stack=stack,
            dry_run=False,
            organization=ORGANIZATION,
            callbacks=None,
        )
    )
    # A fresh root: run_in_stack registers the Stack resource, as the language host does.
    runtime_settings.ROOT.set(None)
    set_all_config(config, secret_keys or [])
    _sync_await(run_in_stack(program))
    return monitor.registrations


def _region(config: dict[str, str]) -> str:
    """The AWS region the program will use, so mock ARNs and endpoints name it."""
    settings = namespace_values(config).get("aws")
    if isinstance(settings, dict) and isinstance(settings.get("region"), str):
        return str(settings["region"])
    return config.get("aws:region", DEFAULT_REGION)


def stack_platform_config(stack: str, root: Path | None = None) -> PlatformConfig:
    """The stack's validated platform config, read the same way the program reads it."""
    project = load_project(root or project_root())
    return load_platform_config(namespace_values(load_stack_config(project, stack).values))
