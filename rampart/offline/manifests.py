"""Every Kubernetes object of a plan as a manifest, ready for kubeconform or checkov."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from rampart.offline import values
from rampart.offline.plan import Plan

# Resources of the kubernetes package that are not Kubernetes objects: Helm releases are
# rendered by Helm at deploy time and have no manifest of their own here; `...Patch` resources are
# server-side-apply patches of objects created elsewhere (partial by design).
NOT_OBJECTS = ("kubernetes:helm.sh/v3:Release",)


def is_object(resource_type: str) -> bool:
    return (
        resource_type.startswith("kubernetes:")
        and resource_type not in NOT_OBJECTS
        and not resource_type.endswith("Patch")
    )


CLUSTER_SCOPED_DIR = "_cluster"


def kubernetes_objects(plan: Plan) -> Iterator[dict[str, Any]]:
    for resource in plan.custom():
        if not is_object(resource["type"]):
            continue
        yield to_manifest(resource)


# A Secret whose whole data map is secret: the keys are unknown too, so one stand-in entry.
REDACTED_DATA = {"data": {"redacted": "PHNlY3JldD4="}, "stringData": {"redacted": "<secret>"}}


def to_manifest(resource: dict[str, Any]) -> dict[str, Any]:
    """The object as it would be applied: its inputs, with the name the provider gave it."""
    inputs = dict(resource["inputs"])
    for key, stand_in in REDACTED_DATA.items():
        if values.is_secret(inputs.get(key)):
            inputs[key] = stand_in
    manifest: dict[str, Any] = values.reveal_structure(inputs)
    metadata = dict(manifest.get("metadata") or {})
    output_name = (resource.get("outputs") or {}).get("metadata", {}).get("name")
    if "name" not in metadata and output_name:
        metadata["name"] = output_name
    ordered = {"apiVersion": manifest.pop("apiVersion"), "kind": manifest.pop("kind"), "metadata": metadata}
    manifest.pop("metadata", None)
    return ordered | manifest


def write_manifests(plan: Plan, out_dir: Path) -> list[Path]:
    written: list[Path] = []
    for manifest in kubernetes_objects(plan):
        metadata = manifest["metadata"]
        folder = out_dir / (metadata.get("namespace") or CLUSTER_SCOPED_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{manifest['kind'].lower()}-{metadata['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    return written
