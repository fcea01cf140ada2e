"""The capture's one-pass reading of gRPC property structs (rampart.offline.values.from_struct)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from rampart.offline import values

# Every kind a google.protobuf.Value holds, secrets at the top and deep in lists and maps, a
# signature that is not the secret one, and whole and fractional numbers.
PROPERTIES: dict[str, Any] = {
    "name": "orders",
    "replicas": 3.0,
    "ratio": 0.25,
    "enabled": True,
    "nothing": None,
    "password": {values.SIG: values.SECRET_SIG, "value": "hunter2"},
    "spec": {
        "containers": [
            {"env": [{"name": "TOKEN", "value": {values.SIG: values.SECRET_SIG, "value": "t0k3n"}}]},
            [],
            [1.0, "a", None, False],
        ],
        "asset": {values.SIG: "c44067f5952c0a294b673a41bacd8c17", "path": "x"},
        "labels": {"app": "orders", "team": "orders"},
    },
}


def _struct(properties: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(properties)
    return struct


def test_from_struct_reads_what_json_format_and_the_engine_rules_read() -> None:
    struct = _struct(PROPERTIES)
    reference = values.from_python(json_format.MessageToDict(struct))

    read = values.from_struct(struct)

    assert read == reference
    # Same types, not only equal values: 3.0 is stored as the int 3, as the engine writes it.
    assert repr(read) == repr(reference)
    assert read["password"] == values.secret()
    assert read["spec"]["containers"][0]["env"][0]["value"] == values.secret()
    assert "hunter2" not in repr(read) and "t0k3n" not in repr(read)


def test_equal_strings_are_one_object_across_structs() -> None:
    strings: dict[str, str] = {}
    first = values.from_struct(_struct(PROPERTIES), strings)
    second = values.from_struct(_struct(PROPERTIES), strings)

    assert first == second
    assert first["name"] is second["name"]
    assert first["spec"]["labels"]["team"] is second["name"]
    assert next(iter(first["spec"]["labels"])) is next(iter(second["spec"]["labels"]))
