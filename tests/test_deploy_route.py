"""CI reaches each stack's cluster API: the deploy workflow's route agrees with the stack's endpoint.

The model (the documented semantics, checked on the workflow files and the stack files):
- EKS, private-only endpoint: "you can only access the API server from within your VPC or a connected
  network", and only what the control plane security group admits on 443 (EKS user guide,
  cluster-endpoint, "Accessing a private only API server").
- A public endpoint admits only its public_access_cidrs. A GitHub-hosted runner's address is one of
  the ranges GitHub publishes and changes ("We do not recommend allowing by IP address", About GitHub's
  IP addresses), so a hosted runner would reach only an endpoint open to every address, which the config
  refuses (public_access_cidrs never holds 0.0.0.0/0).
- GitHub picks a runner that carries every label in `runs-on` (Using self-hosted runners in a workflow).
So every deployed AWS stack must run on a self-hosted runner with its own label ``rampart-<stack>``, and
staging and prod (private-only endpoints) above all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.rules.aws import RULES as AWS_RULES
from rampart.config import ConfigError, load_platform_config
from rampart.config.models import AwsTarget
from rampart.offline.first_up import first_up_targets, needs_kubernetes_api
from rampart.offline.plan import Plan
from rampart.offline.runner import run_plan
from tests.conftest import planned, stack_config
from tests.support.cli import rampart
from tests.support.plans import policy_resources
from tests.support.project import stack_document, temp_project
from tests.support.reference import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
UP = "./.github/workflows/up.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
EVERYONE = {"0.0.0.0/0", "::/0"}
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def workflow(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def render(text: str, inputs: Mapping[str, str]) -> str:
    """``${{ inputs.<name> }}`` replaced; any other expression is a failure of this model, not a guess."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression.startswith("inputs."), f"runs-on uses {expression!r}: extend the model"
        return inputs[expression.removeprefix("inputs.")]

    return EXPRESSION.sub(value, text)


def runner_labels(up: Mapping[str, Any], stack: str) -> list[str]:
    runs_on = up["jobs"]["up"]["runs-on"]
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    return [render(str(label), {"stack": stack}) for label in labels]


def deployed_stacks(deploy: Mapping[str, Any]) -> list[str]:
    return [job["with"]["stack"] for job in deploy["jobs"].values() if job.get("uses") == UP]


def hosted_runner_reaches(aws: AwsTarget) -> bool:
    """Only an endpoint public to every address: a hosted runner's address cannot be allowlisted."""
    return aws.endpoint_public_access and bool(EVERYONE & set(aws.public_access_cidrs))


def in_vpc_route(labels: list[str], stack: str) -> bool:
    return "self-hosted" in labels and f"rampart-{stack}" in labels


def route_problems(
    up: Mapping[str, Any], deploy: Mapping[str, Any], targets: Mapping[str, AwsTarget]
) -> list[str]:
    problems = []
    for stack in deployed_stacks(deploy):
        aws = targets.get(stack)
        if aws is None:
            problems.append(f"{stack}: deployed by CI but not an aws stack")
            continue
        labels = runner_labels(up, stack)
        if not hosted_runner_reaches(aws) and not in_vpc_route(labels, stack):
            endpoint = "public to its allowlist only" if aws.endpoint_public_access else "private only"
            problems.append(f"{stack}: endpoint {endpoint}, yet runs on {labels}")
    return problems


@pytest.fixture(scope="module")
def targets() -> dict[str, AwsTarget]:
    found = {}
    for stack in deployed_stacks(workflow("deploy.yml")):
        aws = stack_config(stack).aws
        if aws is not None:
            found[stack] = aws
    return found


def test_every_deployed_stack_runs_where_its_api_endpoint_answers(targets: dict[str, AwsTarget]) -> None:
    assert route_problems(workflow("up.yml"), workflow("deploy.yml"), targets) == []


def test_private_stacks_deploy_from_their_own_in_vpc_runner(targets: dict[str, AwsTarget]) -> None:
    private = sorted(stack for stack, aws in targets.items() if not aws.endpoint_public_access)
    assert private == ["prod", "staging"]
    for stack in private:
        labels = runner_labels(workflow("up.yml"), stack)
        assert labels == ["self-hosted", "linux", f"rampart-{stack}"]
        assert not [label for label in labels if label.startswith(("ubuntu-", "windows-", "macos-"))]


@pytest.mark.parametrize(
    ("runs_on", "refused"),
    [
        ("ubuntu-latest", ["dev", "staging", "prod"]),
        (["self-hosted", "linux"], ["dev", "staging", "prod"]),  # any environment's runner, any network
        (["self-hosted", "linux", "rampart-prod"], ["dev", "staging"]),  # prod's runner for every stack
    ],
)
def test_the_model_refuses_a_runner_outside_the_stacks_network(
    targets: dict[str, AwsTarget], runs_on: str | list[str], refused: list[str]
) -> None:
    up = copy.deepcopy(workflow("up.yml"))
    up["jobs"]["up"]["runs-on"] = runs_on
    problems = route_problems(up, workflow("deploy.yml"), targets)
    assert [problem.split(":")[0] for problem in problems] == refused


def test_the_model_lets_a_hosted_runner_reach_only_an_endpoint_open_to_everyone(
    targets: dict[str, AwsTarget],
) -> None:
    private = targets["prod"]
    assert not hosted_runner_reaches(private)
    assert not hosted_runner_reaches(targets["dev"])  # public, but to an allowlist
    # The config never lets a stack get here; the model still says why a hosted runner would do.
    opened = private.model_copy(update={"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]})
    assert hosted_runner_reaches(opened)


def steps(up: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = up["jobs"]["up"]["steps"]
    return found


def position(up: Mapping[str, Any], needle: str) -> int:
    (index,) = [
        i for i, step in enumerate(steps(up)) if needle in f"{step.get('uses', '')} {step.get('run', '')}"
    ]
    return index


def test_the_api_is_reached_and_vault_routed_before_pulumi_up() -> None:
    """Credentials, then a check that this runner reaches the API (once the cluster exists: the first up
    creates it), then `pulumi up` through `rampart vault-phase2`, which opens the verified route to Vault
    when phase 2 is configured and runs the command as is otherwise."""
    up = workflow("up.yml")
    credentials = position(up, "aws-actions/configure-aws-credentials")
    reach = position(up, "kubectl get --raw /readyz")
    deploy = position(up, "rampart vault-phase2")
    assert credentials < reach < deploy
    command = str(steps(up)[deploy]["run"]).split()
    assert command[:6] == [
        ".venv/bin/rampart",
        "vault-phase2",
        "--stack",
        '"$STACK"',
        "--if-configured",
        "--",
    ]
    assert command[6:9] == ["pulumi", "up", "--yes"]
    assert "ResourceNotFoundException" in str(steps(up)[reach]["run"])  # only a missing cluster is skipped


# -- the network side: the runner's network is admitted to the private endpoint ----------------------------

RUNNER_NETWORK = "10.99.0.0/24"


def admission_rules(plan: Plan) -> list[dict[str, Any]]:
    """Rules on the cluster security group (EksCluster's own), not the data layer's."""
    return [r for r in plan.of_type(INGRESS_RULE) if "$rampart:aws:EksCluster$" in r["urn"]]


@pytest.fixture(scope="module")
def admitted(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """prod, with its deploy runner's network named in aws.private_access_cidrs."""
    document = stack_document("prod")
    document["config"]["rampart:aws"]["private_access_cidrs"] = [RUNNER_NETWORK]
    return run_plan("prod", temp_project(tmp_path_factory.mktemp("private-access"), {"prod": document}))


def test_the_runner_network_reaches_the_private_endpoint_before_any_kubernetes_object(admitted: Plan) -> None:
    (rule,) = admission_rules(admitted)
    (cluster,) = admitted.of_type("aws:eks/cluster:Cluster")
    inputs = rule["inputs"]
    assert (inputs["cidrIpv4"], inputs["ipProtocol"], inputs["fromPort"], inputs["toPort"]) == (
        RUNNER_NETWORK,
        "tcp",
        443,
        443,
    )
    # The security group EKS made for the control plane (the mocks echo the cluster's vpcConfig output).
    assert inputs["securityGroupId"] == cluster["outputs"]["vpcConfig"]["clusterSecurityGroupId"]
    # Every Kubernetes object goes through the cluster's provider, which waits for the rule.
    (provider,) = [
        p for p in admitted.of_type("pulumi:providers:kubernetes") if p["urn"].endswith("::cluster-eks-k8s")
    ]
    assert rule["urn"] in provider["dependencies"]
    (sg_rule,) = [r for r in AWS_RULES if r.name == "sg-no-public-ingress"]
    assert [
        v for r in policy_resources(admitted) if r.type == INGRESS_RULE for v in sg_rule.evaluate(r)
    ] == []


def test_without_private_access_cidrs_nothing_is_admitted() -> None:
    assert admission_rules(planned("prod")) == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "203.0.113.0/24", "fd00::/8"])
def test_only_private_networks_may_be_admitted(cidr: str) -> None:
    raw = stack_config("prod").model_dump(mode="json")
    raw["aws"]["private_access_cidrs"] = [cidr]
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw)
    assert [p.split(":")[0] for p in caught.value.problems] == ["aws.private_access_cidrs"]


# -- the first up of a private stack: its VPC does not exist yet, so no network reaches its API ------------


def untargeted_prerequisites(plan: Plan, targets: list[str]) -> dict[str, set[str]]:
    """Target -> what it needs that `pulumi up --target` would neither find nor create: Pulumi refuses a
    target whose dependency, parent or provider is neither targeted nor already in the state (here: a
    first up, so nothing is); the root stack and default providers are the engine's own."""
    by_urn = {r["urn"]: r for r in plan.resources}
    implicit = {
        u for u, r in by_urn.items() if r["type"] == "pulumi:pulumi:Stack" or r.get("defaultProvider")
    }
    chosen = set(targets) | implicit
    found = {}
    for urn in targets:
        resource = by_urn[urn]
        provider = str(resource.get("provider") or "").rsplit("::", 1)[0]
        needs = {*resource["dependencies"], resource.get("parent"), provider} - {None, ""}
        if needs - chosen:
            found[urn] = needs - chosen
    return found


def test_the_first_up_of_a_private_stack_creates_what_needs_no_kubernetes_api(admitted: Plan) -> None:
    targets = first_up_targets(admitted)
    by_urn = {r["urn"]: r for r in admitted.resources}
    assert untargeted_prerequisites(admitted, targets) == {}
    assert not [urn for urn in targets if needs_kubernetes_api(by_urn[urn])]
    types = {by_urn[urn]["type"] for urn in targets}
    # The network, the cluster and the stateful services: everything the runner's route needs first.
    assert {"aws:ec2/vpc:Vpc", "aws:eks/cluster:Cluster", "aws:rds/instance:Instance"} <= types
    # The rule admitting the runner's network to the private endpoint is created in the first run.
    (rule,) = admission_rules(admitted)
    assert rule["urn"] in targets
    # Everything else waits for the second run, and only because it needs the API, itself or through
    # what it waits for: every release and object, the Kubernetes provider, what depends on them.
    left = [r for r in admitted.resources if r["urn"] not in targets and r["type"] != "pulumi:pulumi:Stack"]
    assert all(r["urn"] not in targets for r in admitted.of_type("kubernetes:helm.sh/v3:Release"))
    for resource in left:
        if resource.get("defaultProvider"):
            continue
        needs = [resource, *(by_urn[u] for u in _closure(admitted, resource["urn"]))]
        assert any(needs_kubernetes_api(r) for r in needs), resource["urn"]


def _closure(plan: Plan, urn: str) -> set[str]:
    by_urn = {r["urn"]: r for r in plan.resources}
    seen: set[str] = set()
    pending = [urn]
    while pending:
        resource = by_urn[pending.pop()]
        provider = str(resource.get("provider") or "").rsplit("::", 1)[0]
        for other in {*resource["dependencies"], resource.get("parent"), provider} - {None, ""}:
            if other not in seen and other in by_urn:
                seen.add(other)
                pending.append(other)
    return seen


def test_a_resource_that_waits_for_a_kubernetes_object_is_left_to_the_second_run(admitted: Plan) -> None:
    changed = copy.deepcopy(admitted)
    release = changed.of_type("kubernetes:helm.sh/v3:Release")[0]
    database = changed.of_type("aws:rds/instance:Instance")[0]
    assert database["urn"] in first_up_targets(changed)
    database["dependencies"].append(release["urn"])
    assert database["urn"] not in first_up_targets(changed)


def test_a_public_endpoint_needs_no_first_phase() -> None:
    assert first_up_targets(planned("dev")) == []
    assert first_up_targets(planned("prod"))


def test_the_workflow_runs_the_first_phase_only_when_the_cluster_is_absent(
    admitted: Plan, tmp_path: Path
) -> None:
    up = workflow("up.yml")
    reach, first, deploy = (
        position(up, needle) for needle in ("/readyz", "rampart first-up", "vault-phase2")
    )
    assert position(up, "pulumi/actions") < first < deploy and reach < first
    assert (
        steps(up)[reach]["id"] == "reach"
        and 'echo "cluster=absent" >> "$GITHUB_OUTPUT"' in steps(up)[reach]["run"]
    )
    assert steps(up)[first]["if"] == "steps.reach.outputs.cluster == 'absent'"
    script = str(steps(up)[first]["run"])
    assert (
        'targets+=(--target "$urn")' in script
        and 'pulumi up --yes --stack "$STACK" "${targets[@]}"' in script
    )
    assert script.index("pulumi up") < script.index('echo "phase=network" >> "$GITHUB_OUTPUT"')
    # The full up is skipped after a first phase (the runner cannot reach the API yet), runs otherwise.
    assert steps(up)[deploy]["if"] == "steps.first.outputs.phase != 'network'"
    # `rampart first-up` prints exactly the targets, one URN per line.
    export = tmp_path / "plan.json"
    admitted.write(export)
    run = rampart("first-up", "--file", str(export), timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == first_up_targets(admitted)
