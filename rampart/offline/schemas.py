"""Validate Kubernetes objects: core kinds with kubernetes-validate (strict: unknown fields are
errors), custom resources against JSON schemas: the CRD schemas of the reference directory
(datreeio CRDs-catalog layout: ``<group>/<kind>_<version>.json``) or, for a kind the reference
lacks, the ``openAPIV3Schema`` of a CustomResourceDefinition rendered beside it.

kubernetes-validate and jsonschema are development dependencies (``pip install -e '.[dev]'``):
import this module only where validating is the point (tests, ``rampart render``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]

# Groups whose kinds ship with Kubernetes itself (validated by kubernetes-validate).
CORE_GROUPS = {
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
}


def group_version(manifest: Mapping[str, Any]) -> tuple[str, str]:
    api_version: str = manifest["apiVersion"]
    group, _, version = api_version.rpartition("/")
    return group, version


def is_core(manifest: Mapping[str, Any]) -> bool:
    return group_version(manifest)[0] in CORE_GROUPS


def validate_core(manifest: Mapping[str, Any], kubernetes_version: str) -> list[str]:
    """Problems found by the strict upstream OpenAPI schema (unknown fields are errors); a kind
    the Kubernetes version does not serve (e.g. ``policy/v1beta1 PodSecurityPolicy``) is one too."""
    version = kubernetes_version if kubernetes_version.count(".") == 2 else f"{kubernetes_version}.0"
    try:
        kubernetes_validate.validate(dict(manifest), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path) or '(root)'}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"Kubernetes {kubernetes_version} serves no {manifest['apiVersion']} {manifest['kind']}"]
    return []


def schema_path(manifest: Mapping[str, Any], schemas: Path) -> Path:
    group, version = group_version(manifest)
    return schemas / group / f"{manifest['kind'].lower()}_{version}.json"


def validate_custom(manifest: Mapping[str, Any], schemas: Path) -> list[str]:
    path = schema_path(manifest, schemas)
    if not path.is_file():
        return [f"no schema for {manifest['apiVersion']} {manifest['kind']} at {path}"]
    return _errors(_validator(path), manifest)


def validate_with_schema(manifest: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Problems against a schema given as a document (e.g. a rendered CRD's openAPIV3Schema)."""
    return _errors(_validator_for(json.dumps(schema, sort_keys=True)), manifest)


def crd_schemas(crd: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> openAPIV3Schema`` for each version a CustomResourceDefinition serves."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for version in spec.get("versions") or []:
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
        if version.get("served", True) and schema:
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


def _errors(validator: Any, manifest: Mapping[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(dict(manifest))
    ]


@functools.cache
def _validator(path: Path) -> Any:
    return _validator_for(path.read_text())


@functools.cache
def _validator_for(text: str) -> Any:
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)


def reference_crd_schemas(project_root: Path) -> Path | None:
    """The CRD schema directory the tests use: RAMPART_CRD_SCHEMAS, else
    RAMPART_REFERENCE_DIR/crd-schemas, else ../shared/reference/crd-schemas, else .reference/crd-schemas
    (what `make schemas` downloads); None when none exists."""
    if os.environ.get("RAMPART_CRD_SCHEMAS"):
        candidates = [Path(os.environ["RAMPART_CRD_SCHEMAS"])]
    elif os.environ.get("RAMPART_REFERENCE_DIR"):
        candidates = [Path(os.environ["RAMPART_REFERENCE_DIR"]) / "crd-schemas"]
    else:
        candidates = [
            project_root.parent / "shared" / "reference" / "crd-schemas",
            project_root / ".reference" / "crd-schemas",
        ]
    return next((path for path in candidates if path.is_dir()), None)
