"""Every Kubernetes object of every plan validates: core kinds with kubernetes-validate (strict),
custom resources against the CRD JSON schemas of the reference directory."""

from __future__ import annotations

from pathlib import Path

import yaml

from rampart.offline.manifests import chart_releases, kubernetes_objects, sync_manifests, write_manifests
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support import schemas
from tests.support.reference import crd_schemas


def test_every_core_object_validates_strictly(stack: str) -> None:
    version = stack_config(stack).kubernetes.version
    objects = [o for o in kubernetes_objects(planned(stack)) if schemas.is_core(o)]
    assert len(objects) >= 70
    problems = {
        f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}": found
        for o in objects
        if (found := schemas.validate_core(o, version))
    }
    assert problems == {}


# Kinds the reference data has no schema for, each with the test that asserts its exact structure.
NO_REFERENCE_SCHEMA = {
    ("vpcresources.k8s.aws/v1beta1", "SecurityGroupPolicy"): "tests/aws/test_databases.py",
}


def test_every_custom_resource_validates_against_its_crd_schema(stack: str) -> None:
    directory = crd_schemas()
    custom = [
        o
        for o in kubernetes_objects(planned(stack))
        if not schemas.is_core(o) and (o["apiVersion"], o["kind"]) not in NO_REFERENCE_SCHEMA
    ]
    problems = {
        f"{o['apiVersion']} {o['kind']} {o['metadata']['name']}": found
        for o in custom
        if (found := schemas.validate_custom(o, directory))
    }
    assert problems == {}


def test_the_validators_reject_bad_objects() -> None:
    """The checks above would catch a real mistake (a typo'd field, an out-of-enum value)."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labelz": {}}}
    assert schemas.validate_core(namespace, "1.33")
    peer_authentication = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICTLY"}},
    }
    assert schemas.validate_custom(peer_authentication, crd_schemas())
    peer_authentication["spec"] = {"mtls": {"mode": "STRICT"}}
    assert schemas.validate_custom(peer_authentication, crd_schemas()) == []


def test_manifests_are_written_one_file_per_object(tmp_path: Path) -> None:
    plan = planned("local")
    written = write_manifests(plan, tmp_path)
    assert len(written) == len(list(kubernetes_objects(plan)))
    assert len(set(written)) == len(written)
    for service in stack_config("local").services:
        deployment = yaml.safe_load((tmp_path / service.name / f"deployment-{service.name}.yaml").read_text())
        assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
        assert list(deployment)[:3] == ["apiVersion", "kind", "metadata"]
        assert (tmp_path / "_cluster" / f"namespace-{service.name}.yaml").is_file()


def test_a_second_run_removes_what_the_plan_no_longer_has_and_nothing_else(tmp_path: Path) -> None:
    plan = planned("local")
    gone = stack_config("local").services[-1].name
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "vault.yaml").write_text("# rampart render's output\n")
    (tmp_path / "notes.yaml").write_text("mine\n")
    first = sync_manifests(plan, tmp_path)
    assert first.removed == [] and (tmp_path / gone / f"deployment-{gone}.yaml").is_file()
    kept = [r for r in plan.resources if gone not in (r["inputs"].get("metadata") or {}).values()]
    without = Plan(plan.project, plan.stack, kept)
    second = sync_manifests(without, tmp_path)
    assert second.removed and all(path.is_relative_to(tmp_path) for path in second.removed)
    assert not (tmp_path / gone).exists(), "a removed service's folder goes with its files"
    assert not (tmp_path / "_cluster" / f"namespace-{gone}.yaml").exists()
    assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*.yaml")} == {
        p.relative_to(tmp_path) for p in second.written
    } | {Path("charts/vault.yaml"), Path("notes.yaml")}


def test_the_releases_charts_render_are_named_as_not_included() -> None:
    plan = planned("local")
    releases = chart_releases(plan)
    assert releases == sorted(r["inputs"]["name"] for r in plan.of_type("kubernetes:helm.sh/v3:Release"))
    assert "vault" in releases
