"""Typed stack configuration: models, and validation of raw config into them."""

from components.namespaces import PLATFORM_NAMESPACES
from rampart.config.catalog import StackFiles, load_stack
from rampart.config.load import (
    NAMESPACE,
    ConfigError,
    load_platform_config,
    namespace_values,
)
from rampart.config.models import (
    Database,
    Environment,
    PlatformConfig,
    Route,
    ServiceSpec,
    Sizing,
)

__all__ = [
    "NAMESPACE",
    "PLATFORM_NAMESPACES",
    "ConfigError",
    "Database",
    "Environment",
    "PlatformConfig",
    "Route",
    "ServiceSpec",
    "Sizing",
    "StackFiles",
    "load_platform_config",
    "load_stack",
    "namespace_values",
]
