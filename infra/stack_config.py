"""Read this stack's ``rampart:`` keys from the Pulumi runtime, and find the files behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from rampart.config import NAMESPACE, ConfigError, StackFiles, namespace_values
from rampart.offline.project import load_project

PROJECT_FILE = "Pulumi.yaml"


def raw_namespace_config(namespace: str = NAMESPACE) -> dict[str, Any]:
    """Every ``<namespace>:<key>`` value, structured values decoded, keyed by ``<key>``.

    Read as a whole (not key by key) so that a misspelled key is reported rather than ignored.
    """
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return namespace_values(merged, namespace)


def secret_keys(namespace: str = NAMESPACE) -> list[str]:
    """The ``<namespace>:<key>`` values the engine holds as secrets (`pulumi config set --secret`)."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return [key for key in merged if key.startswith(f"{namespace}:") and runtime_config.is_config_secret(key)]


def stack_files() -> StackFiles:
    """This stack's file and the service catalog, under the project's stackConfigDir."""
    root = project_root()
    return StackFiles(root=root, config_dir=load_project(root).stack_config_dir, stack=pulumi.get_stack())


def project_root() -> Path:
    """The directory holding Pulumi.yaml, never taken from the working directory: with
    `main: infra/` the Python language host runs the program inside infra/.

    The engine says where the project is (``pulumi.get_root_directory()``, sent by recent CLIs,
    pulumi/pulumi#18595; `rampart plan` sets it the same way); with an older CLI it is unset, or
    the SDK's placeholder, and the project is found upwards from this file instead.
    """
    engine = pulumi.get_root_directory()
    candidates = [Path(engine)] if engine and Path(engine).is_absolute() else []
    candidates += Path(__file__).resolve().parents
    for directory in candidates:
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ConfigError([f"no {PROJECT_FILE} found above {Path(__file__).resolve().parent}"])
