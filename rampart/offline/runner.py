"""Run the real program (Pulumi.yaml's `main`) under the SDK's mock monitor and capture the plan."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockSettings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from rampart.config import PlatformConfig, load_platform_config, namespace_values
from rampart.offline.mocks import DEFAULT_REGION, PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.project import Project, load_project, load_stack_config

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
    region = stack_config.values.get("aws:region", DEFAULT_REGION)
    monitor = CapturingMonitor(PlanMocks(region=region))
    _run_under_mocks(project, stack, monitor, stack_config.values, stack_config.secret_keys)
    provider_state = {"salt": stack_config.encryption_salt} if stack_config.encryption_salt else {}
    return Plan.from_registrations(
        project.name,
        stack,
        monitor.registrations,
        {"type": stack_config.secrets_provider, "state": provider_state},
    )


def _run_under_mocks(
    project: Project,
    stack: str,
    monitor: CapturingMonitor,
    config: dict[str, str],
    secret_keys: list[str],
) -> None:
    runtime_settings.configure(
        MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=MockEngine(logging.getLogger("rampart.plan")),
            project=project.name,
            stack=stack,
            dry_run=False,
            organization=ORGANIZATION,
            callbacks=None,
        )
    )
    # A fresh root: run_in_stack registers the Stack resource, as the language host does.
    runtime_settings.ROOT.set(None)
    set_all_config(config, secret_keys)

    def program() -> None:
        # Exactly what the language host does with `main`: run it as __main__.
        runpy.run_path(str(project.main), run_name="__main__")

    sys.path.insert(0, str(project.root))
    try:
        _sync_await(run_in_stack(program))
    finally:
        sys.path.remove(str(project.root))


def stack_platform_config(stack: str, root: Path | None = None) -> PlatformConfig:
    """The stack's validated platform config, read the same way the program reads it."""
    project = load_project(root or project_root())
    return load_platform_config(namespace_values(load_stack_config(project, stack).values))
