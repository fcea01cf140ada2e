"""Compose the platform from the validated stack configuration."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.core import charts
from components.core.charts import ChartMirror
from components.platform import Platform
from infra.stack_config import raw_namespace_config, secret_keys, stack_files
from rampart.config import load_stack


def main() -> None:
    # Validated once, catalog and overrides merged, before any resource is registered; a
    # ConfigError (a pulumi.RunError) is printed by Pulumi as one line per problem, no traceback.
    config = load_stack(raw_namespace_config(), stack_files(), secret_keys())
    mirror = ChartMirror(Path(config.charts.mirror)) if config.charts.mirror else None
    # Every Helm release installs from the chart mirror when the stack names one (air-gapped).
    with charts.installing_from(mirror):
        platform = Platform("rampart", config)
    pulumi.export("environment", config.environment)
    pulumi.export("target", config.target)
    pulumi.export("services", {name: svc.address for name, svc in platform.services.items()})
