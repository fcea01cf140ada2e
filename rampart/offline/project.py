"""Read Pulumi.yaml and a stack file the way the Pulumi CLI would, without the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER_PREFIX = "rampart-offline-secret:"


class StackFileError(Exception):
    """A stack or project file that cannot be read. ``str()`` is one line."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    main: Path
    stack_config_dir: Path

    def stack_file(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(
            path.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for path in self.stack_config_dir.glob("Pulumi.*.yaml")
        )


@dataclass(frozen=True)
class StackConfig:
    """Config in the form the CLI hands a program: ``ns:key`` -> string (JSON for structured values)."""

    values: dict[str, str]
    secret_keys: list[str]
    secrets_provider: str
    encryption_salt: str | None


def load_project(root: Path) -> Project:
    path = root / "Pulumi.yaml"
    document = _read_yaml(path)
    name = document.get("name")
    if not isinstance(name, str):
        raise StackFileError(f"{path}: 'name' is missing")
    return Project(
        root=root,
        name=name,
        main=root / str(document.get("main", ".")),
        stack_config_dir=root / str(document.get("stackConfigDir", ".")),
    )


def load_stack_config(project: Project, stack: str) -> StackConfig:
    path = project.stack_file(stack)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise StackFileError(f"no stack file for {stack!r} at {path} (stacks: {known})")
    document = _read_yaml(path)
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{path}: 'config' must be a mapping")
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = key if ":" in key else f"{project.name}:{key}"
        placeholder_value, is_secret = _placeholders(full_key, value)
        values[full_key] = _as_cli_string(placeholder_value)
        if is_secret:
            secret_keys.append(full_key)
    return StackConfig(
        values=values,
        secret_keys=secret_keys,
        secrets_provider=str(document.get("secretsprovider", "passphrase")),
        encryption_salt=document.get("encryptionsalt"),
    )


def _placeholders(path: str, value: Any) -> tuple[Any, bool]:
    """Replace every ``secure:`` value with a placeholder: ciphertext is never decrypted here."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"{PLACEHOLDER_PREFIX}{path}", True
    if isinstance(value, dict):
        items = {k: _placeholders(f"{path}.{k}", v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        entries = [_placeholders(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return [v for v, _ in entries], any(s for _, s in entries)
    return value, False


def _as_cli_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StackFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise StackFileError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: expected a mapping at the top level")
    return document
