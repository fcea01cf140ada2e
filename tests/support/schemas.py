"""Validate Kubernetes objects: core kinds with kubernetes-validate, custom resources
against the CRD JSON schemas (datreeio CRDs-catalog layout: <group>/<kind>_<version>.json)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

# Groups whose kinds ship with Kubernetes itself (validated by kubernetes-validate).
CORE_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
}


def group_version(manifest: dict[str, Any]) -> tuple[str, str]:
    api_version: str = manifest["apiVersion"]
    group, _, version = api_version.rpartition("/")
    return group, version


def is_core(manifest: dict[str, Any]) -> bool:
    return group_version(manifest)[0] in CORE_GROUPS


def validate_core(manifest: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems found by the strict upstream OpenAPI schema (unknown fields are errors)."""
    version = kubernetes_version if kubernetes_version.count(".") == 2 else f"{kubernetes_version}.0"
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"]
    return []


def validate_custom(manifest: dict[str, Any], schemas: Path) -> list[str]:
    group, version = group_version(manifest)
    path = schemas / group / f"{manifest['kind'].lower()}_{version}.json"
    if not path.is_file():
        return [f"no schema for {manifest['apiVersion']} {manifest['kind']} at {path}"]
    validator = _validator(path)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


@functools.cache
def _validator(path: Path) -> Any:
    schema = json.loads(path.read_text())
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)
