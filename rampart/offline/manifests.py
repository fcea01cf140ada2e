"""Every Kubernetes object of a plan as a manifest, ready for kubeconform or checkov."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


# The files the last run wrote, relative to the output folder: the next run removes those it no
# longer writes (a removed service's objects), and nothing else in the folder.
INDEX = ".rampart-manifests"


@dataclass(frozen=True)
class Written:
    written: list[Path]
    # Files an earlier run wrote that this plan no longer has.
    removed: list[Path]


def write_manifests(plan: Plan, out_dir: Path) -> list[Path]:
    return sync_manifests(plan, out_dir).written


def sync_manifests(plan: Plan, out_dir: Path) -> Written:
    """Write one YAML file per object and remove the files of objects the plan no longer has."""
    written: list[Path] = []
    for manifest in kubernetes_objects(plan):
        metadata = manifest["metadata"]
        folder = out_dir / (metadata.get("namespace") or CLUSTER_SCOPED_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{manifest['kind'].lower()}-{metadata['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    removed = _remove_stale(out_dir, {p.relative_to(out_dir).as_posix() for p in written})
    out_dir.mkdir(parents=True, exist_ok=True)
    index = sorted(p.relative_to(out_dir).as_posix() for p in written)
    (out_dir / INDEX).write_text("".join(f"{line}\n" for line in index))
    return Written(written, removed)


def _remove_stale(out_dir: Path, current: set[str]) -> list[Path]:
    index = out_dir / INDEX
    if not index.is_file():
        return []
    removed: list[Path] = []
    for line in index.read_text().splitlines():
        relative = Path(line.strip())
        if not line.strip() or line.strip() in current or relative.is_absolute() or ".." in relative.parts:
            continue
        path = out_dir / relative
        if path.is_file():
            path.unlink()
            removed.append(path)
            if path.parent != out_dir and not any(path.parent.iterdir()):
                path.parent.rmdir()
    return removed


def chart_releases(plan: Plan) -> list[str]:
    """The Helm releases whose objects are not among the manifests (Helm renders them at deploy time)."""
    return sorted(
        str((r.get("inputs") or {}).get("name") or r["urn"].rsplit("::", 1)[-1])
        for r in plan.custom()
        if r["type"] in NOT_OBJECTS
    )
