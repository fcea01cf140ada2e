"""What the tests of the aws stacks share: the stacks themselves, one test run each."""

from __future__ import annotations

import pytest

# The stack files whose target is aws.
AWS_STACKS = ["dev", "staging", "prod"]


@pytest.fixture(params=AWS_STACKS)
def aws_stack(request: pytest.FixtureRequest) -> str:
    """Each aws stack's name in turn."""
    return str(request.param)
