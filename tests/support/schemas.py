"""Validate Kubernetes objects: moved to :mod:`rampart.offline.schemas` (``rampart render`` uses it
too); re-exported here for the tests that import it from this place."""

from __future__ import annotations

from rampart.offline.schemas import (
    CORE_GROUPS,
    crd_schemas,
    group_version,
    is_core,
    validate_core,
    validate_custom,
    validate_with_schema,
)

__all__ = [
    "CORE_GROUPS",
    "crd_schemas",
    "group_version",
    "is_core",
    "validate_core",
    "validate_custom",
    "validate_with_schema",
]
