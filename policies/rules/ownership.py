"""Ownership and key hygiene on aws: what costs money carries the owner's tags, KMS grants go only to AWS
resources, and logs expire.

The AWS provider's default tags (checked by ``aws-provider-default-tags``) stop at what Pulumi creates.
Instances, volumes and interfaces launched from a template, Karpenter's nodes, the CSI driver's persistent
volumes and the load-balancer controller's NLBs and target groups are created by AWS or a controller,
and carry only the tags their own configuration names (components/targets/aws/ownership.py). These rules
read that configuration in the plan, with the same ``requiredTags`` as the provider rules.

Amazon MQ creates its brokers' log groups itself, so no LogGroup in the plan carries their key and
retention: ``mq-log-group-encrypted-and-expiring`` reads the command that sets them instead.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from policies.controllers import chart_name
from policies.model import Resource, Rule, Violation, number, of_types, string_list
from policies.rules.aws import IAM_POLICY, IAM_ROLE_POLICY, KMS_KEY, LAUNCH_TEMPLATE, LOG_GROUP, MQ_BROKER
from policies.rules.platform import REQUIRED_TAGS
from policies.table import on, table_rules, whole_plan

NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
IAM_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
IAM_GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
# The driver takes every parameter whose key starts with this (case as written) as one "key=value" tag
# (aws-ebs-csi-driver docs/tagging.md, "StorageClass Tagging").
TAG_SPECIFICATION_PREFIX = "tagSpecification"
LB_CONTROLLER_CHART = "aws-load-balancer-controller"
LAUNCHED = {
    "launchedResourceTypes": string_list(
        ["instance", "volume", "network-interface"],
        "The launch template TagSpecifications resource types that must carry the required tags.",
    )
}
GRANT_CONDITION = "kms:GrantIsForAWSResource"
LOCAL_COMMAND = "command:local:Command"
# Where Amazon MQ sends a broker's general logs (its only ones on RabbitMQ): DescribeBroker
# Logs.GeneralLogGroup, /aws/amazonmq/broker/<broker-id>/general.
MQ_LOG_GROUP = re.compile(r"/aws/amazonmq/broker/[^/]+/general")
# What runs a local.Command's text when `interpreter` is unset: /bin/sh -c (pulumi-command docs).
SHELLS = ("sh", "bash", "dash")


def _missing(tags: Any, config: Mapping[str, Any]) -> list[str]:
    tags = tags if isinstance(tags, Mapping) else {}
    return [key for key in config["requiredTags"] if not tags.get(key)]


# -- tags past the provider's default tags -----------------------------------------------------


def _launch_template_tags(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    specifications = resource.get("tagSpecifications") or []
    by_type: dict[str, Mapping[str, Any]] = {}
    for specification in specifications if isinstance(specifications, list) else []:
        if isinstance(specification, Mapping) and isinstance(specification.get("resourceType"), str):
            by_type[specification["resourceType"]] = specification.get("tags") or {}
    for kind in config["launchedResourceTypes"]:
        if kind not in by_type:
            yield f"{resource.name}: no tagSpecifications for {kind}, so launched {kind}s carry no owner tags"
            continue
        missing = _missing(by_type[kind], config)
        if missing:
            yield f"{resource.name}: tagSpecifications for {kind} lack {', '.join(missing)}"


def _node_class_tags(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    missing = _missing(resource.get("spec.tags"), config)
    if missing:
        yield (
            f"{resource.object_name}: spec.tags lack {', '.join(missing)}, so Karpenter's instances, volumes "
            "and interfaces carry no owner tags"
        )


def storage_class_tags(parameters: Mapping[str, Any]) -> dict[str, str]:
    """The tags the EBS CSI driver puts on a StorageClass's volumes: each ``tagSpecification*`` value
    split at its first ``=``."""
    tags: dict[str, str] = {}
    for key, value in parameters.items():
        if str(key).startswith(TAG_SPECIFICATION_PREFIX) and isinstance(value, str) and "=" in value:
            tag, _, tag_value = value.partition("=")
            tags[tag.strip()] = tag_value.strip()
    return tags


def _storage_class_tags(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("provisioner") != EBS_CSI_PROVISIONER:
        return
    parameters = resource.get("parameters")
    missing = _missing(storage_class_tags(parameters if isinstance(parameters, Mapping) else {}), config)
    if missing:
        yield (
            f"{resource.object_name}: no tagSpecification parameter for {', '.join(missing)}, so its "
            "persistent volumes carry no owner tags"
        )


def _lb_controller_tags(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if chart_name(resource.props) != LB_CONTROLLER_CHART:
        return
    values = resource.get("values")
    default_tags = values.get("defaultTags") if isinstance(values, Mapping) else None
    missing = _missing(default_tags, config)
    if missing:
        yield (
            f"{resource.name}: values.defaultTags lack {', '.join(missing)}, so its load balancers and "
            "target groups carry no owner tags"
        )


# -- KMS grants --------------------------------------------------------------------------------


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _grants(action: str) -> bool:
    """Whether an IAM action pattern (``kms:*``, ``kms:Create*``, ``*``) allows kms:CreateGrant: IAM
    matches actions case-insensitively, ``*`` any run of characters and ``?`` one (IAM user guide, "IAM
    JSON policy elements: Action")."""
    pattern = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in action)
    return re.fullmatch(pattern, "kms:creategrant", re.IGNORECASE) is not None


def _grant_is_for_aws_resource(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator, keys in condition.items():
        if str(operator).lower() != "bool" or not isinstance(keys, Mapping):
            continue  # BoolIfExists would pass a request without the key: not a restriction
        for key, value in keys.items():
            values = _values(value)
            if str(key).lower() == GRANT_CONDITION.lower() and values:
                return all(str(v).lower() == "true" for v in values)
    return False


def grant_problems(document: Mapping[str, Any]) -> list[str]:
    """Allow statements that let a principal create KMS grants for anything, not only AWS resources."""
    problems = []
    statements = document.get("Statement")
    for index, statement in enumerate(_values(statements)):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"statement {statement.get('Sid') or index} allows by NotAction")
            continue
        if not any(_grants(str(action)) for action in _values(statement.get("Action"))):
            continue
        if not _grant_is_for_aws_resource(statement.get("Condition")):
            problems.append(
                f"statement {statement.get('Sid') or index} allows kms:CreateGrant without "
                f"Bool {GRANT_CONDITION}: true"
            )
    return problems


def _kms_grants(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    policy = resource.get("policy")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return  # unknown until apply (a preview's computed document): nothing to read yet
    if not isinstance(policy, Mapping):
        return
    for problem in grant_problems(policy):
        yield f"{resource.name}: {problem}"


# -- logs --------------------------------------------------------------------------------------


def _log_group_expires(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    days = resource.get("retentionInDays")
    if days is None or number(days) <= 0:
        shown = "unset" if days is None else days
        yield f"{resource.name}: retentionInDays is {shown}, so logs never expire"


def shell_steps(script: str) -> list[list[str]] | None:
    """The words of each simple command of a ``a && b && c`` chain, as a POSIX shell splits them; None
    for anything else (``;``, ``||``, pipes, redirects, subshells), where a failed step can pass unnoticed
    or the text is not what runs."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote
        return None
    steps: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            steps.append([])
        elif word and set(word) <= set(lexer.punctuation_chars):
            return None
        else:
            steps[-1].append(word)
    return steps if all(steps) else None


def _cli_call(words: list[str]) -> tuple[list[str], dict[str, str]]:
    """An AWS CLI call's positional words (``aws logs put-retention-policy``) and its ``--option value``
    / ``--option=value`` options."""
    positional: list[str] = []
    options: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            name, equals, value = word[2:].partition("=")
            if not equals and index + 1 < len(words) and not words[index + 1].startswith("--"):
                index += 1
                value = words[index]
            options[name] = value
        else:
            positional.append(word)
        index += 1
    return positional, options


def _log_group_problems(script: str, group: str | None, keys: set[str]) -> list[str]:
    """What a script fails to do for ``group`` (any Amazon MQ general group when the broker's id is
    unknown): associate one of ``keys`` and set a retention of at least one day."""
    steps = shell_steps(script)
    if steps is None:
        return ["its command is not a plain `&&` chain, so a failed step could pass unnoticed"]
    calls = [_cli_call(words) for words in steps]

    def for_group(operation: str) -> list[dict[str, str]]:
        return [
            options
            for positional, options in calls
            if positional[:3] == ["aws", "logs", operation]
            and (
                options.get("log-group-name") == group
                if group
                else MQ_LOG_GROUP.fullmatch(options.get("log-group-name", ""))
            )
        ]

    problems = []
    where = group or "the broker's general log group"
    associations = for_group("associate-kms-key")
    if not associations:
        problems.append(f"no `aws logs associate-kms-key` for {where}")
    elif not any(options.get("kms-key-id") in keys for options in associations):
        shown = ", ".join(sorted(str(options.get("kms-key-id")) for options in associations))
        problems.append(f"kms-key-id {shown} is not the ARN of a customer-managed key of the plan")
    retentions = for_group("put-retention-policy")
    if not retentions:
        problems.append(f"no `aws logs put-retention-policy` for {where}, so its logs never expire")
    elif not any(number(options.get("retention-in-days")) >= 1 for options in retentions):
        shown = ", ".join(sorted(str(options.get("retention-in-days")) for options in retentions))
        problems.append(f"retention-in-days {shown} is not a number of days, so its logs never expire")
    return problems


def _command_problems(command: Resource, group: str | None, keys: set[str]) -> list[str]:
    interpreter = command.get("interpreter")
    if interpreter and (
        not isinstance(interpreter, list) or PurePosixPath(str(interpreter[0])).name not in SHELLS
    ):
        return [f"{command.name}: interpreter {interpreter} is not a POSIX shell"]
    scripts = {"create": command.get("create"), "update": command.get("update")}
    if not isinstance(scripts["create"], str) or not scripts["create"].strip():
        return [f"{command.name}: no create command"]
    problems: list[str] = []
    for step, script in scripts.items():
        # An update without its own command runs `create` again (pulumi-command local.Command docs).
        if isinstance(script, str) and script:
            problems.extend(f"{command.name} ({step}): {p}" for p in _log_group_problems(script, group, keys))
    return problems


def _mq_log_groups(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    keys = {str(key.get("arn")) for key in of_types(resources, KMS_KEY) if key.get("arn")}
    commands = list(of_types(resources, LOCAL_COMMAND))
    for broker in of_types(resources, MQ_BROKER):
        if broker.get("logs.general") is not True:
            continue  # no log group (mq-broker-logs asks for one)
        broker_id = broker.get("id")
        group = (
            f"/aws/amazonmq/broker/{broker_id}/general" if isinstance(broker_id, str) and broker_id else None
        )
        # Only a command that runs after the broker exists finds its group.
        after = [c for c in commands if broker.urn in c.dependencies]
        found = [_command_problems(c, group, keys) for c in after]
        if any(not problems for problems in found):
            continue
        where = group or "its log group"
        reasons = [p for problems in found for p in problems] or [
            f"no command that depends on it sets a customer-managed key and a retention on {where}"
        ]
        yield Violation(f"{broker.name}: " + "; ".join(reasons), broker.urn)


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "launch-template-ownership-tags": on(
            (LAUNCH_TEMPLATE,), _launch_template_tags, {**REQUIRED_TAGS, **LAUNCHED}
        ),
        "karpenter-node-class-ownership-tags": on((NODE_CLASS,), _node_class_tags, REQUIRED_TAGS),
        "ebs-storage-class-ownership-tags": on((STORAGE_CLASS,), _storage_class_tags, REQUIRED_TAGS),
        "lb-controller-default-tags": on((HELM_RELEASE,), _lb_controller_tags, REQUIRED_TAGS),
        "kms-grants-for-aws-resources": on(
            (IAM_POLICY, IAM_ROLE_POLICY, IAM_USER_POLICY, IAM_GROUP_POLICY), _kms_grants
        ),
        "log-group-expires": on((LOG_GROUP,), _log_group_expires),
        "mq-log-group-encrypted-and-expiring": whole_plan(_mq_log_groups),
    },
)
