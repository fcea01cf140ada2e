"""Ownership and key hygiene in the dev, staging and prod plans: the provider's default tags reach what AWS
and the controllers create (components/targets/aws/ownership.py), the EBS CSI role's KMS use is
conditioned, and the ownership policies read the real resources (a mutation of each flips its verdict)."""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import json
from collections.abc import Callable
from typing import Any

import celpy
import pytest

from components.messaging.amazon_mq import log_group_settings
from components.targets.aws.ownership import (
    OWNERSHIP_KEYS,
    ebs_key_statements,
    ownership_tags,
    storage_class_tag_parameters,
)
from policies.model import Resource
from policies.rules import ownership as rules
from rampart.config import load_platform_config
from rampart.offline.manifests import to_manifest
from rampart.offline.mocks import ACCOUNT_ID
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support import schemas
from tests.support.plans import of, one, policy_resources
from tests.support.reference import crd_schemas
from tests.test_config import problems, with_change

AWS_STACKS = ["dev", "staging", "prod"]
NODE_CLASS_CRD = "karpenter.k8s.aws/ec2nodeclass_v1.json"


@pytest.fixture(params=AWS_STACKS)
def aws_stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def provider_tags(plan: Plan) -> dict[str, str]:
    """The AWS provider's default tags: the keys and values everything else must repeat."""
    (provider,) = plan.of_type("pulumi:providers:aws")
    default_tags = provider["inputs"]["defaultTags"]
    default_tags = json.loads(default_tags) if isinstance(default_tags, str) else default_tags
    return dict(default_tags["tags"])


def test_the_provider_tags_are_the_ownership_tags_of_the_stack(aws_stack: str) -> None:
    config = stack_config(aws_stack)
    tags = provider_tags(planned(aws_stack))
    assert tuple(tags) == OWNERSHIP_KEYS
    assert tags == ownership_tags(config.environment, config.owner, config.cost_center)


@pytest.mark.parametrize(
    ("path", "value"), [("owner", "{{ .PVCName }}"), ("cost_center", "cc#1"), ("owner", "x" * 257)]
)
def test_an_owner_tag_aws_would_refuse_is_a_config_error(path: str, value: str) -> None:
    found = problems(with_change(path, value))
    assert any(line.startswith(f"{path}: ") and "AWS tag value" in line for line in found), found


def test_an_owner_with_spaces_and_tag_punctuation_loads() -> None:
    config = load_platform_config(with_change("owner", "Platform Team @ acme/eu"))
    assert config.owner == "Platform Team @ acme/eu"


def test_system_nodes_tag_instances_volumes_and_interfaces(aws_stack: str) -> None:
    plan = planned(aws_stack)
    template = one(plan, "LaunchTemplate")["inputs"]
    by_type = {spec["resourceType"]: spec["tags"] for spec in template["tagSpecifications"]}
    assert set(by_type) == {"instance", "volume", "network-interface"}
    for kind, tags in by_type.items():
        assert {key: tags[key] for key in OWNERSHIP_KEYS} == provider_tags(plan), kind
    # The node group launches from this template (its tags reach the nodes only that way).
    group = one(plan, "NodeGroup")["inputs"]
    assert group["launchTemplate"]["id"] == one(plan, "LaunchTemplate")["outputs"]["id"]


def test_karpenter_nodes_carry_the_tags_and_the_crd_admits_them(aws_stack: str) -> None:
    plan = planned(aws_stack)
    node_class = one(plan, "EC2NodeClass")
    tags = node_class["inputs"]["spec"]["tags"]
    assert {key: tags[key] for key in OWNERSHIP_KEYS} == provider_tags(plan)
    assert schemas.validate_custom(to_manifest(node_class), crd_schemas()) == []
    # The CRD's CEL rules on spec.tags (Karpenter's reserved keys), evaluated as the API server would.
    assert refused_tags(tags) == []


def crd_tag_rules() -> list[dict[str, str]]:
    crd = json.loads((crd_schemas() / NODE_CLASS_CRD).read_text())
    return list(crd["properties"]["spec"]["properties"]["tags"]["x-kubernetes-validations"])


def refused_tags(tags: dict[str, str]) -> list[str]:
    environment = celpy.Environment()
    refused = []
    for rule in crd_tag_rules():
        program = environment.program(environment.compile(rule["rule"]))
        if not bool(program.evaluate({"self": celpy.json_to_cel(tags)})):
            refused.append(rule["message"])
    return refused


def test_the_crd_rules_would_refuse_a_reserved_key() -> None:
    assert refused_tags({"owner": "x"}) == []
    assert refused_tags({"owner": "x", "karpenter.sh/nodepool": "default"}) == [
        "tag contains a restricted tag matching karpenter.sh/nodepool"
    ]
    assert refused_tags({"kubernetes.io/cluster/rampart-dev": "owned"})


def test_persistent_volumes_are_tagged_through_the_storage_class(aws_stack: str) -> None:
    plan = planned(aws_stack)
    storage_class = one(plan, "StorageClass", name="gp3-encrypted")["inputs"]
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    # As the driver reads them: every tagSpecification* parameter is one key=value tag.
    assert rules.storage_class_tags(storage_class["parameters"]) == provider_tags(plan)
    assert storage_class["parameters"]["kmsKeyId"].startswith("arn:aws:kms:")


def test_storage_class_parameters_refuse_what_the_driver_would_misread() -> None:
    assert storage_class_tag_parameters({"environment": "dev", "owner": "a", "cost-center": "b"}) == {
        "tagSpecification_1": "cost-center=b",
        "tagSpecification_2": "environment=dev",
        "tagSpecification_3": "owner=a",
    }
    with pytest.raises(ValueError, match="tagSpecification"):
        storage_class_tag_parameters({"environment": "dev", "owner": "{{ .PVCName }}", "cost-center": "b"})
    with pytest.raises(ValueError, match="cost-center"):
        storage_class_tag_parameters({"environment": "dev", "owner": "a"})


def test_load_balancers_and_target_groups_are_tagged_by_the_controller(aws_stack: str) -> None:
    plan = planned(aws_stack)
    (release,) = [r for r in of(plan, "Release") if r["inputs"]["chart"] == "aws-load-balancer-controller"]
    assert release["inputs"]["values"]["defaultTags"] == provider_tags(plan)


# -- the EBS key -----------------------------------------------------------------------------


def policy_named(plan: Plan, suffix: str) -> dict[str, Any]:
    (found,) = [
        r for r in plan.custom() if r["type"] == "aws:iam/policy:Policy" and r["urn"].endswith(f"::{suffix}")
    ]
    return dict(json.loads(found["inputs"]["policy"]))


def test_the_ebs_csi_role_uses_the_key_only_through_ec2_and_grants_only_for_aws_resources(
    aws_stack: str,
) -> None:
    plan = planned(aws_stack)
    region = stack_config(aws_stack).aws.region  # type: ignore[union-attr]
    document = policy_named(plan, "cluster-eks-ebs-csi-policy")
    ebs_key = next(
        r["outputs"]["arn"] for r in plan.of_type("aws:kms/key:Key") if r["urn"].endswith("::cluster-eks-ebs")
    )
    statements = document["Statement"]
    assert statements and all(s["Resource"] == [ebs_key] for s in statements)
    for statement in statements:
        equals = statement["Condition"]["StringEquals"]
        assert equals["kms:ViaService"] == f"ec2.{region}.amazonaws.com", statement["Sid"]
        assert equals["kms:CallerAccount"], statement["Sid"]
    (grants,) = [s for s in statements if "kms:CreateGrant" in s["Action"]]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    # The key policy admits EC2 on the caller's behalf under the same two conditions: the role's
    # statements add no reach beyond it (ownership.ebs_key_statements says why they stay).
    key_policy = ebs_key_policy(plan)
    (through_ec2,) = [s for s in key_policy["Statement"] if s.get("Sid") == "UseThroughEC2"]
    assert through_ec2["Condition"]["StringEquals"]["kms:ViaService"] == f"ec2.{region}.amazonaws.com"


def ebs_key_policy(plan: Plan) -> dict[str, Any]:
    (key,) = [r for r in plan.of_type("aws:kms/key:Key") if r["urn"].endswith("::cluster-eks-ebs")]
    return dict(json.loads(key["inputs"]["policy"]))


def test_ebs_key_statements_carry_their_conditions() -> None:
    statements = ebs_key_statements("arn:aws:kms:eu-west-1:1:key/k", "eu-west-1", "1")
    assert rules.grant_problems({"Statement": statements}) == []
    unconditioned = copy.deepcopy(statements)
    del unconditioned[1]["Condition"]["Bool"]
    assert rules.grant_problems({"Statement": unconditioned})


# -- the log group Amazon MQ creates -------------------------------------------------------------

BROKER = "aws:mq/broker:Broker"
KMS_KEY = "aws:kms/key:Key"


def broker_log_settings(plan: Plan) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The broker, the key of its logs and the command that sets its log group."""
    (broker,) = plan.of_type(BROKER)
    (key,) = [r for r in plan.of_type(KMS_KEY) if r["urn"].endswith("::messaging-logs")]
    (settings,) = plan.of_type(rules.LOCAL_COMMAND)
    return broker, key, settings


def test_the_broker_log_group_gets_a_customer_key_and_the_stack_retention_after_the_broker(
    aws_stack: str,
) -> None:
    plan = planned(aws_stack)
    settings_config = stack_config(aws_stack).aws
    assert settings_config is not None
    region, retention = settings_config.region, settings_config.control_plane_log_retention_days
    broker, key, settings = broker_log_settings(plan)
    # It runs once the broker (and so its group: Amazon MQ creates it with the broker) and the key exist.
    assert {broker["urn"], key["urn"]} <= set(settings["dependencies"])
    # The group is named after the broker's id as AWS reports it, the key is the plan's own (its ARN as
    # the provider returns it), the retention the stack's AWS log retention, as for the databases' logs.
    group = f"/aws/amazonmq/broker/{broker['outputs']['id']}/general"
    where = ["--log-group-name", group, "--region", region]
    assert rules.shell_steps(settings["inputs"]["create"]) == [
        ["aws", "logs", "associate-kms-key", *where, "--kms-key-id", key["outputs"]["arn"]],
        ["aws", "logs", "put-retention-policy", *where, "--retention-in-days", str(retention)],
    ]
    assert retention in {
        r["inputs"]["retentionInDays"] for r in plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    # A new broker, key or retention replaces the command, which runs it again; nothing runs on delete,
    # so neither a replacement nor a destroy deletes the group (amazon_mq._log_settings).
    assert settings["inputs"]["triggers"] == [broker["outputs"]["id"], key["outputs"]["arn"], retention]
    assert not settings["inputs"].get("delete") and not settings["inputs"].get("update")
    # Through a provider of the stack's own, not a default one.
    provider_urn = settings["provider"].rsplit("::", 1)[0]
    (provider,) = [r for r in plan.resources if r["urn"] == provider_urn]
    assert provider["type"] == "pulumi:providers:command" and not provider.get("defaultProvider")
    # The key: rotated, protected where the broker is, and usable by CloudWatch Logs for this group.
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["protect"] is broker["protect"] is (aws_stack != "dev")
    statements = json.loads(key["inputs"]["policy"])["Statement"]
    (logs,) = [s for s in statements if s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}]
    (patterns,) = logs["Condition"]["ArnLike"].values()
    assert list(logs["Condition"]["ArnLike"]) == ["kms:EncryptionContext:aws:logs:arn"]
    # ArnLike: * matches any run of characters (IAM user guide, "ARN condition operators").
    group_arn = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}"
    assert [p for p in patterns if fnmatch.fnmatchcase(group_arn, p)] == patterns
    assert not any(
        fnmatch.fnmatchcase(f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:/aws/eks/x", p) for p in patterns
    )


def test_the_script_is_quoted_for_the_shell() -> None:
    script = log_group_settings("/aws/amazonmq/broker/b-1 x/general", "arn:aws:kms:r:1:key/k", 7, "eu-west-1")
    # A word with a space stays one word; a `;` in a value is data, not a second command.
    (first, second) = rules.shell_steps(script) or []
    assert first[first.index("--log-group-name") + 1] == "/aws/amazonmq/broker/b-1 x/general"
    assert second[-2:] == ["--retention-in-days", "7"]
    hostile = rules.shell_steps(log_group_settings("g; rm -rf /", "k", 7, "r")) or []
    assert [step[:3] for step in hostile] == [
        ["aws", "logs", "associate-kms-key"],
        ["aws", "logs", "put-retention-policy"],
    ]
    assert all(step[step.index("--log-group-name") + 1] == "g; rm -rf /" for step in hostile)


# -- the policies on the real plan -------------------------------------------------------------

OWNERSHIP_RULES = {rule.name: rule for rule in rules.RULES}


@functools.cache
def resources(stack: str) -> list[Resource]:
    return policy_resources(planned(stack))


@functools.cache
def stack_resources(stack: str) -> list[Resource]:
    return policy_resources(planned(stack), "outputs")


def violations(items: list[Resource], stack_items: list[Resource]) -> dict[str, list[str]]:
    """Resource rules over inputs, stack rules over outputs, as the engine runs them."""
    found: dict[str, list[str]] = {}
    for rule in rules.RULES:
        if rule.is_stack_rule:
            found[rule.name] = [v.message for v in rule.evaluate_stack(stack_items)]
            continue
        for item in items:
            found.setdefault(rule.name, []).extend(rule.evaluate(item))
    return {name: problems for name, problems in found.items() if problems}


def test_the_ownership_rules_pass_on_every_aws_plan(aws_stack: str) -> None:
    items, stack_items = resources(aws_stack), stack_resources(aws_stack)
    assert violations(items, stack_items) == {}
    # ...and not because they found nothing to read.
    for type_ in (rules.NODE_CLASS, rules.STORAGE_CLASS, "aws:ec2/launchTemplate:LaunchTemplate"):
        assert any(item.type == type_ for item in items), type_
    for type_ in (BROKER, rules.LOCAL_COMMAND):
        assert any(item.type == type_ for item in stack_items), type_


def _drop_owner_from_interfaces(props: dict[str, Any]) -> None:
    for spec in props["tagSpecifications"]:
        if spec["resourceType"] == "network-interface":
            del spec["tags"]["owner"]


def _drop_storage_tag(props: dict[str, Any]) -> None:
    for key in [k for k, v in props["parameters"].items() if str(v).startswith("cost-center=")]:
        del props["parameters"][key]


def _unconditioned_grant(props: dict[str, Any]) -> None:
    document = json.loads(props["policy"])
    for statement in document["Statement"]:
        statement.pop("Condition", None)
    props["policy"] = json.dumps(document)


def _forever(props: dict[str, Any]) -> None:
    props["retentionInDays"] = 0


def _no_broker_retention(props: dict[str, Any]) -> None:
    # Only the key is set: the group Amazon MQ made keeps its logs forever.
    (associate, _retain) = props["create"].split(" && ")
    props["create"] = associate


# rule -> (which resource to break, how)
MUTATIONS: dict[str, tuple[Callable[[Resource], bool], Callable[[dict[str, Any]], None]]] = {
    "launch-template-ownership-tags": (
        lambda r: r.type == "aws:ec2/launchTemplate:LaunchTemplate",
        _drop_owner_from_interfaces,
    ),
    "karpenter-node-class-ownership-tags": (
        lambda r: r.type == rules.NODE_CLASS,
        lambda props: props["spec"]["tags"].pop("cost-center"),
    ),
    "ebs-storage-class-ownership-tags": (lambda r: r.type == rules.STORAGE_CLASS, _drop_storage_tag),
    "lb-controller-default-tags": (
        lambda r: r.type == rules.HELM_RELEASE and r.get("chart") == "aws-load-balancer-controller",
        lambda props: props["values"].pop("defaultTags"),
    ),
    "kms-grants-for-aws-resources": (
        lambda r: r.type == "aws:iam/policy:Policy" and r.name == "cluster-eks-ebs-csi-policy",
        _unconditioned_grant,
    ),
    "log-group-expires": (
        lambda r: r.type == "aws:cloudwatch/logGroup:LogGroup" and r.name == "cluster-eks-control-plane",
        _forever,
    ),
    "mq-log-group-encrypted-and-expiring": (lambda r: r.type == rules.LOCAL_COMMAND, _no_broker_retention),
}


def test_every_ownership_rule_has_a_mutation() -> None:
    assert set(MUTATIONS) == set(OWNERSHIP_RULES)


@pytest.mark.parametrize("rule_name", sorted(MUTATIONS))
def test_a_mutation_of_the_dev_plan_flips_each_rule(rule_name: str) -> None:
    select, mutate = MUTATIONS[rule_name]
    items, stack_items = resources("dev"), stack_resources("dev")
    # A stack rule reads outputs, a resource rule inputs: break the view the rule reads.
    stack_rule = OWNERSHIP_RULES[rule_name].is_stack_rule
    view = stack_items if stack_rule else items
    (target,) = [item for item in view if select(item)]
    props = copy.deepcopy(dict(target.props))
    mutate(props)
    broken = dataclasses.replace(target, props=props)
    mutated = [broken if item is target else item for item in view]
    found = violations(items, mutated) if stack_rule else violations(mutated, stack_items)
    assert list(found) == [rule_name]
