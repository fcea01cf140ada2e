"""Compose the platform from the validated stack configuration."""

from __future__ import annotations

import pulumi

from components.platform import Platform
from infra.stack_config import raw_namespace_config
from rampart.config import load_platform_config


def main() -> None:
    # Validated once, before any resource is registered; a ConfigError (a pulumi.RunError)
    # is printed by Pulumi as one line per problem, without a traceback.
    config = load_platform_config(raw_namespace_config())
    platform = Platform("rampart", config)
    pulumi.export("environment", config.environment)
    pulumi.export("target", config.target)
    pulumi.export("services", {name: svc.address for name, svc in platform.services.items()})
