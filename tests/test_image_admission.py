"""The image admission policy (components/paved_road/admission.py): its CEL, evaluated with cel-python
against sample objects the way the API server evaluates it, its objects validated, its place in the plan.

How Kubernetes evaluates a ValidatingAdmissionPolicy
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/): `object` is the
object being admitted; each of `spec.variables` is evaluated in order and read as `variables.<name>`;
the object is refused when any validation evaluates to false, and, with failurePolicy Fail, when one
cannot be evaluated. The binding's validationActions decide what a refusal does (Deny: the request fails).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import celpy
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from components.core import labels
from components.data.postgres import OPERATOR_IMAGE, postgres_image
from components.mesh.istio import PROXY_IMAGE
from components.paved_road.admission import (
    POLICY_NAME,
    ImageRules,
    binding_spec,
    platform_images,
    policy_spec,
)
from rampart.offline.manifests import kubernetes_objects
from tests.conftest import planned, stack_config
from tests.support import schemas

DIGEST = "sha256:9b2d0f3c8c1e4a7f6d5b3a2918e7c6d5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9"
ALLOWED = ["ghcr.io/acme"]
PROD = ImageRules.of("prod", ALLOWED, platform_images(in_cluster_databases=False, postgres_engine="16"))
DEV = ImageRules.of("dev", ALLOWED, platform_images(in_cluster_databases=False, postgres_engine="16"))
ENVIRONMENT = celpy.Environment()


def admitted(spec: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Whether the policy admits ``obj``: its variables in order, then every validation, in CEL."""
    variables: dict[str, Any] = {}
    activation: dict[str, Any] = {"object": json_to_cel(dict(obj))}
    for variable in spec.get("variables", []):
        activation["variables"] = _cel_map(variables)
        variables[variable["name"]] = _evaluate(variable["expression"], activation)
    activation["variables"] = _cel_map(variables)
    # failurePolicy Fail: a validation that cannot be evaluated refuses, exactly like false.
    return all(_evaluate(v["expression"], activation) is True for v in spec["validations"])


def _cel_map(values: Mapping[str, Any]) -> Any:
    return celtypes.MapType({celtypes.StringType(k): v for k, v in values.items()})


def _evaluate(expression: str, activation: Mapping[str, Any]) -> Any:
    """The value of ``expression``: a Python bool for a CEL bool, an error object when evaluation fails."""
    program = ENVIRONMENT.program(ENVIRONMENT.compile(expression))
    try:
        value = program.evaluate(dict(activation))
    except CELEvalError as error:
        return error
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    return value


def pod(*images: str, init: tuple[str, ...] = (), ephemeral: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    }
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": image} for i, image in enumerate(init)]
    if ephemeral:
        spec["ephemeralContainers"] = [{"name": f"e{i}", "image": image} for i, image in enumerate(ephemeral)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "orders"}, "spec": spec}


def deployment(*images: str) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": pod(*images)["spec"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template}}


def cron_job(*images: str) -> dict[str, Any]:
    template = {"spec": pod(*images)["spec"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }


PINNED = f"ghcr.io/acme/orders:1.4.2@{DIGEST}"


@pytest.mark.parametrize(
    ("obj", "prod", "dev"),
    [
        (pod(PINNED), True, True),
        (pod(f"ghcr.io/acme/orders@{DIGEST}"), True, True),
        # A service pod after the mesh injected its sidecar and validation init container.
        (pod(PINNED, PROXY_IMAGE, init=(PROXY_IMAGE,)), True, True),
        (pod(f"docker.io/acme/orders@{DIGEST}"), False, False),
        (pod(f"ghcr.io/acme-evil/orders@{DIGEST}"), False, False),
        (pod(f"ghcr.io/acmeorders@{DIGEST}"), False, False),
        (pod(f"evil.example/ghcr.io/acme/orders@{DIGEST}"), False, False),
        (pod("ghcr.io/acme/orders:1.4.2"), False, True),
        (pod(f"ghcr.io/acme/orders:1.4.2@sha256:{'a' * 63}"), False, True),
        (pod(PINNED, init=(f"quay.io/evil/migrate@{DIGEST}",)), False, False),
        (pod(PINNED, ephemeral=("docker.io/library/busybox:1.36",)), False, False),
        # The exemption is the exact reference: another proxyv2 tag is not the platform's.
        (pod(PINNED, "docker.io/istio/proxyv2:1.0.0"), False, False),
        (deployment(PINNED), True, True),
        (deployment("ghcr.io/acme/orders:1.4.2"), False, True),
        (deployment(PINNED, f"docker.io/acme/sidecar@{DIGEST}"), False, False),
        (cron_job(PINNED), True, True),
        (cron_job(f"ghcr.io/acme-evil/job@{DIGEST}"), False, False),
    ],
)
def test_the_cel_admits_and_refuses(obj: dict[str, Any], prod: bool, dev: bool) -> None:
    assert admitted(policy_spec(PROD), obj) is prod
    assert admitted(policy_spec(DEV), obj) is dev


def test_a_mutation_of_the_expressions_flips_the_verdict() -> None:
    """The evaluator is not vacuous: without the '/' after the prefix, the prefix trick gets through."""
    trick = pod(f"ghcr.io/acme-evil/orders@{DIGEST}")
    weakened = copy.deepcopy(policy_spec(PROD))
    weakened["validations"][0]["expression"] = weakened["validations"][0]["expression"].replace(
        '"ghcr.io/acme/"', '"ghcr.io/acme"'
    )
    assert not admitted(policy_spec(PROD), trick)
    assert admitted(weakened, trick)


def test_in_cluster_databases_add_exactly_their_images() -> None:
    local = ImageRules.of("local", ALLOWED, platform_images(in_cluster_databases=True, postgres_engine="16"))
    database = pod(postgres_image("16"), init=(OPERATOR_IMAGE,))
    assert admitted(policy_spec(local), database)
    assert not admitted(policy_spec(DEV), database)
    assert not admitted(policy_spec(local), pod(postgres_image("17")))


def test_without_rules_there_is_nothing_to_enforce() -> None:
    assert not ImageRules.of("dev", None).enforced
    assert ImageRules.of("prod", None).enforced and ImageRules.of("dev", ALLOWED).enforced


def test_the_objects_validate_and_the_binding_selects_only_service_namespaces() -> None:
    metadata = {"name": POLICY_NAME}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata,
        "spec": policy_spec(PROD),
    }
    binding: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata,
        "spec": binding_spec(),
    }
    assert schemas.validate_core(policy, "1.33") == []
    assert schemas.validate_core(binding, "1.33") == []
    # kubernetes-validate would catch a wrong field (the check is not vacuous).
    assert schemas.validate_core(
        {**binding, "spec": {**binding_spec(), "validationAction": ["Deny"]}}, "1.33"
    )
    assert binding["spec"]["validationActions"] == ["Deny", "Audit"]
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {labels.TIER: labels.SERVICE_TIER}}
    }


def test_the_planned_policy_is_the_tested_one_and_service_workloads_wait_for_it(stack: str) -> None:
    plan = planned(stack)
    config = stack_config(stack)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in kubernetes_objects(plan)}
    policy = objects[("ValidatingAdmissionPolicy", POLICY_NAME)]
    assert config.supply_chain is not None
    in_cluster = config.target == "kubernetes" and any(s.database for s in config.services)
    expected = ImageRules.of(
        config.environment,
        config.supply_chain.allowed_registries,
        platform_images(in_cluster_databases=in_cluster, postgres_engine=config.databases.engine_version),
    )
    # Staging and prod check digests in the cluster too; every stack checks its registries.
    assert len(policy["spec"]["validations"]) == (2 if config.environment in ("staging", "prod") else 1)
    assert policy["spec"] == policy_spec(expected)
    assert objects[("ValidatingAdmissionPolicyBinding", POLICY_NAME)]["spec"] == binding_spec()
    binding = next(r["urn"] for r in plan.custom() if r["type"].endswith("ValidatingAdmissionPolicyBinding"))
    for service in config.services:
        namespace = objects[("Namespace", service.name)]
        assert namespace["metadata"]["labels"][labels.TIER] == labels.SERVICE_TIER
        created = next(
            r for r in plan.custom() if r["urn"].endswith(f"Deployment::{service.name}-deployment")
        )
        assert binding in created["dependencies"], service.name
        # Every image the service itself runs is admitted in its namespace.
        assert admitted(policy["spec"], {"kind": "Deployment", "spec": created["inputs"]["spec"]})
    # No platform namespace carries the label.
    services = {s.name for s in config.services}
    tiered = {
        o["metadata"]["name"]
        for o in objects.values()
        if o["kind"] == "Namespace" and (o["metadata"].get("labels") or {}).get(labels.TIER)
    }
    assert tiered == services
