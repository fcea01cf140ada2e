"""Run the real program (Pulumi.yaml's `main`) under the SDK's mock monitor and capture the plan."""

from __future__ import annotations

import asyncio
import logging
import runpy
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockSettings
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.settings import _get_rpc_manager as get_rpc_manager
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from rampart.config import PlatformConfig, StackFiles, load_stack, namespace_values
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


def run_plan(stack: str, root: Path | None = None, overrides: Mapping[str, str] | None = None) -> Plan:
    """Plan ``stack`` offline, its config values (``namespace:key`` -> the CLI string, JSON for objects)
    replaced by ``overrides`` (e.g. a change under review). Raises ConfigError / StackFileError on bad
    input."""
    project = load_project(root or project_root())
    stack_config = load_stack_config(project, stack)
    values = {**stack_config.values, **(overrides or {})}

    def program() -> None:
        # Exactly what the language host does with `main`: run it as __main__.
        runpy.run_path(str(project.main), run_name="__main__")

    sys.path.insert(0, str(project.root))
    try:
        registrations = capture(
            program,
            project=project.name,
            stack=stack,
            config=values,
            secret_keys=stack_config.secret_keys,
            root_directory=project.root,
        )
    finally:
        sys.path.remove(str(project.root))
    return Plan.from_registrations(project.name, stack, registrations, stack_config.export_secrets_provider())


def capture(
    program: Callable[[], None],
    *,
    project: str = "rampart",
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    monitor: CapturingMonitor | None = None,
    root_directory: Path | None = None,
) -> list[dict[str, Any]]:
    """Run ``program`` inside a fresh root Stack under the capturing mock monitor and
    return every registration once all outstanding work (and so every output) has settled.
    ``root_directory`` is the project root the engine would report (pulumi.get_root_directory())."""
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
            # Always set, so no earlier run's root leaks into this one.
            root_directory=str(root_directory.resolve()) if root_directory else None,
        )
    )
    # A fresh root: run_in_stack registers the Stack resource, as the language host does.
    runtime_settings.ROOT.set(None)
    set_all_config(config, secret_keys or [])
    _sync_await(run_in_stack(_settled(program)))
    return monitor.registrations


def _settled(program: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """``program``, then a wait until every output and RPC it started has finished.

    The SDK's own wait (pulumi.runtime.stack.wait_for_rpcs) waits for outstanding outputs with
    ``asyncio.wait(FIRST_COMPLETED)`` and puts the rest back: it attaches a callback to every pending
    output each time one finishes, so a program with n pending outputs costs O(n²) there. This wait
    gathers each round's pending outputs and RPCs at once (O(n) per round) and leaves them to the SDK
    (done, failed ones still tracked), whose wait then re-raises any failure exactly as before.
    """

    def run() -> Awaitable[None]:
        program()
        return _settle()

    return run


async def _settle() -> None:
    rpc_manager = get_rpc_manager()
    while True:
        with SETTINGS.lock:
            pending = [task for task in SETTINGS.outputs if not task.done()]
        pending += [rpc for rpc in rpc_manager.rpcs if isinstance(rpc, asyncio.Future) and not rpc.done()]
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


def _region(config: dict[str, str]) -> str:
    """The AWS region the program will use, so mock ARNs and endpoints name it."""
    settings = namespace_values(config).get("aws")
    if isinstance(settings, dict) and isinstance(settings.get("region"), str):
        return str(settings["region"])
    return config.get("aws:region", DEFAULT_REGION)


def stack_platform_config(stack: str, root: Path | None = None) -> PlatformConfig:
    """The stack's validated platform config, through the program's own loader (catalog merged)."""
    project = load_project(root or project_root())
    settings = load_stack_config(project, stack)
    files = StackFiles(root=project.root, config_dir=project.stack_config_dir, stack=stack)
    return load_stack(namespace_values(settings.values), files, settings.secret_keys)
