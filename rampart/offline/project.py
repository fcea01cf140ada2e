"""Read Pulumi.yaml and a stack file the way the Pulumi CLI would, without the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER_PREFIX = "rampart-offline-secret:"
PASSPHRASE = "passphrase"  # nosec B105 # noqa: S105 - a provider name, not a secret
# Secrets providers a stack file may name (`pulumi stack init --secrets-provider`): the passphrase,
# the Pulumi Cloud service ("default"), or a cloud KMS URL. https://www.pulumi.com/docs/iac/concepts/secrets/
NAMED_PROVIDERS = (PASSPHRASE, "default", "service")
KMS_SCHEMES = ("awskms://", "azurekeyvault://", "gcpkms://", "hashivault://")


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
    # A cloud secrets provider's data key, encrypted by the KMS key (written by `pulumi stack init`).
    encrypted_key: str | None = None

    @property
    def is_cloud_provider(self) -> bool:
        return self.secrets_provider.startswith(KMS_SCHEMES)

    def export_secrets_provider(self) -> dict[str, object]:
        """``secrets_providers`` as `pulumi stack export` writes it for this stack's provider."""
        if self.is_cloud_provider:
            state = {"url": self.secrets_provider}
            return {
                "type": "cloud",
                "state": state | ({"encryptedkey": self.encrypted_key} if self.encrypted_key else {}),
            }
        if self.secrets_provider == PASSPHRASE:
            return {
                "type": PASSPHRASE,
                "state": {"salt": self.encryption_salt} if self.encryption_salt else {},
            }
        return {"type": "service", "state": {}}


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
    config = StackConfig(
        values=values,
        secret_keys=secret_keys,
        secrets_provider=str(document.get("secretsprovider", PASSPHRASE)),
        encryption_salt=_optional_text(document.get("encryptionsalt")),
        encrypted_key=_optional_text(document.get("encryptedkey")),
    )
    _check_secrets_provider(path, config)
    return config


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _check_secrets_provider(path: Path, config: StackConfig) -> None:
    """The provider line and what it encrypted with must agree, or the Pulumi CLI cannot decrypt
    the stack's `secure:` values (the offline plan never decrypts them, so it checks instead)."""
    provider = config.secrets_provider
    if provider not in NAMED_PROVIDERS and not config.is_cloud_provider:
        accepted = ", ".join([*NAMED_PROVIDERS, *(f"{scheme}..." for scheme in KMS_SCHEMES)])
        raise StackFileError(f"{path}: secretsprovider {provider!r} is not a secrets provider ({accepted})")
    if config.is_cloud_provider and config.encryption_salt:
        raise StackFileError(
            f"{path}: encryptionsalt belongs to a passphrase; with {provider} the stack keeps an "
            "encryptedkey (move with `pulumi stack change-secrets-provider`)"
        )
    if not config.is_cloud_provider and config.encrypted_key:
        raise StackFileError(f"{path}: encryptedkey belongs to a cloud secrets provider, not {provider!r}")
    if config.secret_keys and provider == PASSPHRASE and not config.encryption_salt:
        raise StackFileError(
            f"{path}: {config.secret_keys[0]} is secure but there is no encryptionsalt: "
            "set it again with `pulumi config set --secret` (from stdin)"
        )
    if config.secret_keys and config.is_cloud_provider and not config.encrypted_key:
        raise StackFileError(
            f"{path}: {config.secret_keys[0]} is secure but there is no encryptedkey for {provider}: "
            "`pulumi stack init --secrets-provider` writes it; then set the value again"
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
