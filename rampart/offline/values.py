"""Property values as the Pulumi engine stores them (the `pulumi stack export` format).

A secret is stored as ``{SIG: SECRET_SIG, "ciphertext": ...}``. The offline plan never
holds a real secret, and it never writes even a placeholder's value: every secret's
ciphertext is the constant :data:`REDACTED`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # nosec B105 # noqa: S105 - the engine's secret marker, not a secret
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED = "rampart-offline-plan:redacted"


def secret() -> dict[str, str]:
    return {SIG: SECRET_SIG, "ciphertext": REDACTED}


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A gRPC property struct as plain JSON, secrets redacted, whole numbers as ints."""
    return _normalise(json_format.MessageToDict(struct))  # type: ignore[no-any-return]


def from_python(value: Any) -> Any:
    """Mock outputs (plain Python) as JSON, the same way."""
    return _normalise(value)


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG) == SECRET_SIG:
            return secret()
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def mark_secret(properties: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Replace top-level properties the provider declares secret (additionalSecretOutputs)."""
    return {key: secret() if key in keys else value for key, value in properties.items()}


def reveal_structure(value: Any) -> Any:
    """Values with secrets shown as the marker string, for human-facing output (manifests)."""
    if is_secret(value):
        return "<secret>"
    if isinstance(value, dict):
        return {key: reveal_structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal_structure(item) for item in value]
    return value
