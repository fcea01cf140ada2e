"""`rampart order`: the create/destroy model on hand-made plans whose answer is known, mutations that
must flip it, and structural facts of the four real stacks."""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rampart import order
from rampart.offline.plan import STACK_TYPE, Plan
from tests.conftest import planned

RAMPART = str(Path(sys.executable).parent / "rampart")
PREFIX = "urn:pulumi:t::p::"
STACK = f"{PREFIX}{STACK_TYPE}::p-t"
LB_TYPE = "external"


def urn(name: str, type_: str = "aws:ec2/vpc:Vpc") -> str:
    return f"{PREFIX}{type_}::{name}"


def res(
    name: str,
    type_: str = "aws:ec2/vpc:Vpc",
    *,
    deps: tuple[str, ...] = (),
    prop: dict[str, list[str]] | None = None,
    parent: str | None = STACK,
    provider: str | None = None,
    custom: bool = True,
    protect: bool = False,
    retain: bool = False,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "urn": urn(name, type_),
        "type": type_,
        "custom": custom,
        "parent": parent,
        "provider": f"{provider}::id-1" if provider else None,
        "dependencies": list(deps),
        "propertyDependencies": prop or {},
        "protect": protect,
        "retainOnDelete": retain,
        "inputs": inputs or {},
    }


def stack_plan(*resources: dict[str, Any]) -> Plan:
    return Plan("p", "t", [{"urn": STACK, "type": STACK_TYPE, "custom": False, "parent": None}, *resources])


def names(wave: list[str]) -> list[str]:
    return sorted(order.name_of(u) for u in wave)


def wave_names(plan: Plan) -> list[list[str]]:
    return [names(w) for w in order.create_waves(order.build_graph(plan))]


# ------------------------------------------------------------------------------------ create waves


def test_a_chain_is_one_wave_per_link() -> None:
    plan = stack_plan(res("a"), res("b", deps=(urn("a"),)), res("c", prop={"x": [urn("b")]}))
    assert wave_names(plan) == [["a"], ["b"], ["c"]]


def test_a_diamond_runs_its_middle_in_parallel_and_the_critical_path_takes_the_slow_side() -> None:
    plan = stack_plan(
        res("a"),
        res("b", deps=(urn("a"),)),
        res("c", deps=(urn("a"),)),
        res("d", deps=(urn("b"), urn("c"))),
    )
    assert wave_names(plan) == [["a"], ["b", "c"], ["d"]]
    took = {"a": 5, "b": 10, "c": 30, "d": 1}
    timed = order.schedule(order.build_graph(plan), lambda r: took[order.name_of(r["urn"])])
    assert [order.name_of(u) for u in timed.critical_path] == ["a", "c", "d"]
    assert timed.total == 36
    assert timed.start[urn("d")] == 35
    # Mutation: make the other side slow and the path moves with it.
    took["b"] = 60
    timed = order.schedule(order.build_graph(plan), lambda r: took[order.name_of(r["urn"])])
    assert [order.name_of(u) for u in timed.critical_path] == ["a", "b", "d"]
    assert timed.total == 66


def test_depending_on_a_component_waits_for_all_its_children() -> None:
    comp = urn("comp", "my:index:Comp")
    plan = stack_plan(
        res("comp", "my:index:Comp", custom=False),
        res("x", parent=comp),
        res("slow", parent=comp, deps=(urn("x"),)),
        # A component in a dependencies list (the SDK would have expanded it; the engine does too).
        res("z", deps=(comp,)),
    )
    graph = order.build_graph(plan)
    assert comp not in graph.steps
    assert graph.prereqs[urn("z")] == {urn("x"), urn("slow")}
    assert wave_names(plan) == [["x"], ["slow"], ["z"]]


def test_a_components_depends_on_gates_its_children_and_the_component_takes_no_wave() -> None:
    comp = urn("comp", "my:index:Comp")
    plan = stack_plan(
        res("q"),
        res("comp", "my:index:Comp", custom=False, deps=(urn("q"),)),
        res("child", parent=comp),
    )
    graph = order.build_graph(plan)
    assert graph.prereqs[urn("child")] == {urn("q")}
    assert wave_names(plan) == [["q"], ["child"]]
    # Mutation: without the component's dependsOn, the child starts at once.
    plan.resources[2]["dependencies"] = []
    assert wave_names(plan) == [["child", "q"]]


def test_a_resource_waits_for_its_provider_and_the_provider_for_its_inputs() -> None:
    provider = urn("k8s", "pulumi:providers:kubernetes")
    plan = stack_plan(
        res("cluster", "aws:eks/cluster:Cluster"),
        res("k8s", "pulumi:providers:kubernetes", deps=(urn("cluster", "aws:eks/cluster:Cluster"),)),
        res("ns", "kubernetes:core/v1:Namespace", provider=provider),
    )
    assert wave_names(plan) == [["cluster"], ["k8s"], ["ns"]]
    destroy = [names(w) for w in order.destroy_waves(plan)]
    assert destroy.index(["ns"]) < destroy.index(["k8s"]) < destroy.index(["cluster"])


def test_a_child_of_a_custom_resource_waits_for_it() -> None:
    plan = stack_plan(res("bucket"), res("policy", parent=urn("bucket")))
    assert wave_names(plan) == [["bucket"], ["policy"]]


def test_a_remote_component_is_one_step() -> None:
    provider = urn("k8s", "pulumi:providers:kubernetes")
    operator = urn("operator", "kubernetes:yaml/v2:ConfigFile")
    plan = stack_plan(
        res("k8s", "pulumi:providers:kubernetes"),
        res("operator", "kubernetes:yaml/v2:ConfigFile", custom=False, provider=provider),
        res("queue", "kubernetes:rabbitmq.com/v1beta1:Queue", provider=provider, deps=(operator,)),
    )
    graph = order.build_graph(plan)
    assert operator in graph.steps
    assert order.typical_key(graph.resources[operator]) == "kubernetes:yaml/v2:ConfigFile"
    assert wave_names(plan) == [["k8s"], ["operator"], ["queue"]]


def test_a_cycle_is_an_error_not_a_wrong_answer() -> None:
    plan = stack_plan(res("a", deps=(urn("b"),)), res("b", deps=(urn("a"),)))
    with pytest.raises(ValueError, match="cycle"):
        order.create_waves(order.build_graph(plan))


def test_destroy_is_the_reverse_of_the_dependency_layering() -> None:
    plan = stack_plan(res("a"), res("b", deps=(urn("a"),)), res("c", deps=(urn("b"),)))
    destroy = [names(w) for w in order.destroy_waves(plan)]
    assert destroy == [["c"], ["b"], ["a"], ["p-t"]]


def test_typical_times_come_from_the_inputs_where_they_matter() -> None:
    rds = res("db", "aws:rds/instance:Instance", inputs={"multiAz": False})
    assert order.typical_key(rds) == "aws:rds/instance:Instance"
    rds["inputs"]["multiAz"] = True
    assert order.typical_key(rds) == "aws:rds/instance:Instance#multi-az"
    broker = res("mq", "aws:mq/broker:Broker", inputs={"deploymentMode": "CLUSTER_MULTI_AZ"})
    assert order.typical_seconds(broker) > order.typical_seconds(res("mq", "aws:mq/broker:Broker"))
    release = res(
        "r", "kubernetes:helm.sh/v3:Release", inputs={"chart": "oci://public.ecr.aws/karpenter/karpenter"}
    )
    assert order.typical_key(release) == "helm:karpenter"
    assert order.typical_key(res("r", "kubernetes:helm.sh/v3:Release", inputs={"chart": "unknown"})) == "helm"
    assert all(t.source for t in order.TYPICAL.values())


# ------------------------------------------------------------------------------------ destroy findings

PROVIDER = urn("k8s", "pulumi:providers:kubernetes")
LBC = urn("lbc", "kubernetes:helm.sh/v3:Release")


def lb_plan(*, service_deps: tuple[str, ...], annotated: bool = True) -> Plan:
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": LB_TYPE} if annotated else {}
    return stack_plan(
        res("k8s", "pulumi:providers:kubernetes"),
        res(
            "lbc",
            "kubernetes:helm.sh/v3:Release",
            provider=PROVIDER,
            inputs={"chart": "aws-load-balancer-controller", "name": "aws-load-balancer-controller"},
        ),
        res(
            "mesh",
            "kubernetes:helm.sh/v3:Release",
            provider=PROVIDER,
            deps=(LBC,),
            inputs={"chart": "istiod"},
        ),
        res(
            "proxy",
            "kubernetes:core/v1:Service",
            provider=PROVIDER,
            deps=service_deps,
            inputs={
                "metadata": {"name": "proxy", "namespace": "kong", "annotations": annotations},
                "spec": {"type": "LoadBalancer"},
            },
        ),
    )


def finding_urns(plan: Plan) -> list[str]:
    return [f.urn for f in order.destroy_report(plan).findings]


def test_a_load_balancer_service_not_waiting_for_the_lb_controller_is_flagged() -> None:
    plan = lb_plan(service_deps=())
    report = order.destroy_report(plan)
    assert [f.urn for f in report.findings] == [urn("proxy", "kubernetes:core/v1:Service")]
    message = report.findings[0].message
    assert "service.k8s.aws/resources" in message and "depend on lbc" in message


def test_a_load_balancer_service_that_waits_for_the_lb_controller_is_not_flagged() -> None:
    assert finding_urns(lb_plan(service_deps=(LBC,))) == []
    # ... nor when it waits transitively, through another release that waits for the controller.
    assert finding_urns(lb_plan(service_deps=(urn("mesh", "kubernetes:helm.sh/v3:Release"),))) == []
    # An unannotated LoadBalancer belongs to the in-tree cloud provider (control plane): no finding.
    assert finding_urns(lb_plan(service_deps=(), annotated=False)) == []


def test_a_chart_that_renders_an_nlb_service_is_checked_like_the_service() -> None:
    values = {
        "gateway": {
            "proxy": {
                "type": "LoadBalancer",
                "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": LB_TYPE},
            }
        }
    }
    kong = res(
        "kong",
        "kubernetes:helm.sh/v3:Release",
        provider=PROVIDER,
        inputs={"chart": "ingress", "values": values},
    )
    plan = stack_plan(*lb_plan(service_deps=(LBC,)).resources[1:], kong)
    assert finding_urns(plan) == [kong["urn"]]
    kong["dependencies"] = [LBC]
    assert finding_urns(plan) == []


def test_rabbitmq_topology_objects_must_wait_for_the_topology_operator() -> None:
    operator = urn("topology", "kubernetes:yaml/v2:ConfigFile")
    manifest = "https://github.com/rabbitmq/messaging-topology-operator/releases/download/v1.20.1/x.yaml"
    queue = res(
        "queue",
        "kubernetes:rabbitmq.com/v1beta1:Queue",
        provider=PROVIDER,
        inputs={"metadata": {"name": "q"}},
    )
    plan = stack_plan(
        res("k8s", "pulumi:providers:kubernetes"),
        res(
            "topology",
            "kubernetes:yaml/v2:ConfigFile",
            custom=False,
            provider=PROVIDER,
            inputs={"file": manifest},
        ),
        queue,
    )
    assert finding_urns(plan) == [queue["urn"]]
    queue["dependencies"] = [operator]
    assert finding_urns(plan) == []


def test_a_controller_outside_the_stack_is_not_a_finding() -> None:
    plan = stack_plan(
        res("k8s", "pulumi:providers:kubernetes"),
        res("queue", "kubernetes:rabbitmq.com/v1beta1:Queue", provider=PROVIDER),
    )
    assert finding_urns(plan) == []


def test_protected_resources_stop_destroy_and_retained_ones_keep_their_prerequisites_in_view() -> None:
    key = urn("key", "aws:kms/key:Key")
    sg = urn("sg", "aws:ec2/securityGroup:SecurityGroup")
    db = res("db", "aws:rds/instance:Instance", deps=(key, sg), retain=True)
    plan = stack_plan(res("key", "aws:kms/key:Key"), res("sg", "aws:ec2/securityGroup:SecurityGroup"), db)
    report = order.destroy_report(plan)
    assert [f.kind for f in report.findings] == ["retained"]
    assert "key" in report.findings[0].message and "sg" in report.findings[0].message
    assert report.protected == [] and report.stops_at is None
    # Protected too: destroy stops at the database, so its key and group are never reached.
    db["protect"] = True
    report = order.destroy_report(plan)
    assert report.findings == []
    assert [order.name_of(p.urn) for p in report.protected] == ["db"]
    assert report.stops_at == 0
    assert "Key key" in report.protected[0].retained_note
    # A protected key is never reached either: no longer in the note.
    plan.resources[1]["protect"] = True
    assert "Key key" not in order.destroy_report(plan).protected[-1].retained_note


# ------------------------------------------------------------------------------------ the real stacks


def test_every_step_of_a_real_stack_is_in_exactly_one_wave_after_all_it_waits_for(stack: str) -> None:
    plan = planned(stack)
    graph = order.build_graph(plan)
    waves = order.create_waves(graph)
    wave_of = {u: i for i, wave in enumerate(waves) for u in wave}
    assert sorted(wave_of) == sorted(graph.steps)
    assert sum(len(w) for w in waves) == len(graph.steps)
    assert set(graph.steps) == {r["urn"] for r in plan.resources if r["custom"]} | {
        r["urn"] for r in plan.resources if r["type"] == "kubernetes:yaml/v2:ConfigFile"
    }
    for step in graph.steps:
        for pre in graph.prereqs[step]:
            assert wave_of[pre] < wave_of[step], (step, pre)
        # Every recorded dependency that is a step is a prerequisite: nothing is dropped by folding.
        deps, provider, _ = order.recorded_edges(plan.by_urn()[step])
        assert {d for d in [*deps, provider] if d in graph.prereqs} <= graph.prereqs[step]


def test_the_sdk_already_expands_components_in_the_recorded_dependencies(stack: str) -> None:
    # Python SDK `_add_dependency`: a local component in dependsOn or in an input's resources is
    # replaced by its custom descendants before registration, so the export names steps only.
    plan = planned(stack)
    steps = set(order.build_graph(plan).steps)
    for resource in plan.resources:
        deps, _, _ = order.recorded_edges(resource)
        assert [d for d in deps if d not in steps] == [], resource["urn"]


def test_destroy_of_a_real_stack_deletes_everything_once_and_dependents_first(stack: str) -> None:
    plan = planned(stack)
    waves = order.destroy_waves(plan)
    wave_of = {u: i for i, wave in enumerate(waves) for u in wave}
    assert sorted(wave_of) == sorted(r["urn"] for r in plan.resources)
    for urn_, needed in order.destroy_prereqs(plan).items():
        for still_there in needed:
            assert wave_of[urn_] < wave_of[still_there], (urn_, still_there)


def test_the_suggested_fix_clears_every_finalizer_finding_of_a_real_stack(stack: str) -> None:
    plan = copy.deepcopy(planned(stack))
    by_urn = plan.by_urn()
    findings = [f for f in order.destroy_report(plan).findings if f.kind == "finalizer"]
    for finding in findings:
        by_urn[finding.urn]["dependencies"].append(finding.needs)
    assert [f for f in order.destroy_report(plan).findings if f.kind == "finalizer"] == []
    order.create_waves(order.build_graph(plan))  # and the fix makes no cycle


def test_the_critical_path_of_a_real_stack_is_a_chain_of_prerequisites(stack: str) -> None:
    graph = order.build_graph(planned(stack))
    timed = order.schedule(graph)
    path = timed.critical_path
    for before, after in itertools.pairwise(path):
        assert before in graph.prereqs[after]
        assert timed.start[after] == timed.finish[before]
    assert timed.total == timed.finish[path[-1]] == max(timed.finish.values())
    assert all(order.typical_key(graph.resources[u]) in order.TYPICAL for u in graph.steps)


def test_the_aws_stacks_wait_for_the_eks_cluster_before_any_kubernetes_object(stack: str) -> None:
    plan = planned(stack)
    graph = order.build_graph(plan)
    clusters = [u for u in graph.steps if graph.type(u) == "aws:eks/cluster:Cluster"]
    if not clusters:
        pytest.skip("not an AWS stack")
    for step in graph.steps:
        if graph.type(step).startswith("kubernetes:"):
            assert clusters[0] in order.closure(graph.prereqs, step), step


# ------------------------------------------------------------------------------------------------- CLI


def run_order(tmp_path: Path, plan: Plan) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "plan.json"
    plan.write(path)
    return subprocess.run(
        [RAMPART, "order", "--file", str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_command_exits_1_on_a_destroy_finding_and_says_so_last(tmp_path: Path) -> None:
    result = run_order(tmp_path, lb_plan(service_deps=()))
    assert result.returncode == 1, result.stderr
    # The verdict closes the output (on stderr, since it failed).
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"order FAILED: 1 destroy finding; first up ≈ \d+:\d\d", last), last
    assert "Create: 3 waves" in result.stdout

    result = run_order(tmp_path, lb_plan(service_deps=(LBC,)))
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"order passed: first up ≈ \d+:\d\d; no destroy findings", last), last


def test_the_command_wants_one_source_and_reads_exports_only(tmp_path: Path) -> None:
    both = subprocess.run([RAMPART, "order"], capture_output=True, text=True, timeout=120, check=False)
    assert both.returncode == 2 and "exactly one of --stack or --file" in both.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 2}))
    result = subprocess.run(
        [RAMPART, "order", "--file", str(bad)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
