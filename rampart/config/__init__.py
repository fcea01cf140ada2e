"""Typed stack configuration: models, and validation of raw config into them."""

from rampart.config.load import (
    NAMESPACE,
    PLATFORM_NAMESPACES,
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
    "load_platform_config",
    "namespace_values",
]
