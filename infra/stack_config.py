"""Read this stack's ``rampart:`` keys from the Pulumi runtime, as the CLI hands them over."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import config as runtime_config

from rampart.config import NAMESPACE, namespace_values


def raw_namespace_config(namespace: str = NAMESPACE) -> dict[str, Any]:
    """Every ``<namespace>:<key>`` value, structured values decoded, keyed by ``<key>``.

    Read as a whole (not key by key) so that a misspelled key is reported rather than ignored.
    """
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return namespace_values(merged, namespace)
