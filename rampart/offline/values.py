"""Property values as the Pulumi engine stores them (the `pulumi stack export` format).

A secret is stored as ``{SIG: SECRET_SIG, "ciphertext": ...}``. The offline plan never
holds a real secret, and it never writes even a placeholder's value: every secret's
ciphertext is the constant :data:`REDACTED`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import struct_pb2

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # nosec B105 # noqa: S105 - the engine's secret marker, not a secret
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED = "rampart-offline-plan:redacted"


def secret() -> dict[str, str]:
    return {SIG: SECRET_SIG, "ciphertext": REDACTED}


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def from_struct(struct: struct_pb2.Struct, strings: dict[str, str] | None = None) -> dict[str, Any]:
    """A gRPC property struct as plain JSON, secrets redacted, whole numbers as ints.

    The same as ``_normalise(json_format.MessageToDict(struct))``, in one pass. ``strings``, when
    given, makes equal strings one object (protobuf returns a new ``str`` on every access, and a
    plan repeats the same few thousand keys and values across all its resources).
    """
    return _from_fields(struct.fields, {} if strings is None else strings)


def _from_fields(fields: Any, strings: dict[str, str]) -> dict[str, Any]:
    marker = fields.get(SIG)
    if marker is not None and marker.string_value == SECRET_SIG:  # "" unless a string
        return secret()
    return {strings.setdefault(key, key): _from_value(value, strings) for key, value in fields.items()}


def _from_value(value: struct_pb2.Value, strings: dict[str, str]) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        return strings.setdefault(text, text)
    if kind == "struct_value":
        return _from_fields(value.struct_value.fields, strings)
    if kind == "list_value":
        return [_from_value(item, strings) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        if math.isinf(number) or math.isnan(number):  # as json_format.MessageToDict refuses them
            raise ValueError(f"Fail to serialize {number} for Value.number_value")
        return int(number) if number.is_integer() else number
    if kind == "bool_value":
        return bool(value.bool_value)
    return None  # null_value, or unset (json_format: null)


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


def replace_secrets(value: Any, replacement: Callable[[], Any]) -> Any:
    """``value`` with every secret in it, at any depth of its dicts and lists, replaced by a fresh
    ``replacement()``."""
    if is_secret(value):
        return replacement()
    if isinstance(value, dict):
        return {key: replace_secrets(item, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_secrets(item, replacement) for item in value]
    return value


def reveal_structure(value: Any) -> Any:
    """Values with secrets shown as the marker string, for human-facing output (manifests)."""
    return replace_secrets(value, lambda: "<secret>")
