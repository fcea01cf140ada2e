"""Shared fixtures: plans of the real stack files, computed once per test process."""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

from rampart.config import PlatformConfig
from rampart.offline.plan import Plan
from rampart.offline.project import load_project
from rampart.offline.runner import run_plan, stack_platform_config
from tests.support.reference import PROJECT_ROOT

# No test may depend on how fast the machine is: CI runs on a busy two-core box.
settings.register_profile(
    "rampart", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.load_profile("rampart")

# RAMPART_TEST_STACKS=local,dev limits the tests of the stack files to those stacks (`make test-stacks`).
_ONLY = {name for name in os.environ.get("RAMPART_TEST_STACKS", "").split(",") if name}
STACKS = [name for name in load_project(PROJECT_ROOT).stacks() if not _ONLY or name in _ONLY]


@functools.cache
def planned(stack: str) -> Plan:
    return run_plan(stack, PROJECT_ROOT)


@functools.cache
def stack_config(stack: str) -> PlatformConfig:
    return stack_platform_config(stack, PROJECT_ROOT)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)
