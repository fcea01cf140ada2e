"""Platform wiring rules: explicit providers, required tags, NetworkPolicy enforcement on EKS."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, Violation, of_types, string_list
from policies.table import on, table_rules, whole_plan

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_ADDON = "aws:eks/addon:Addon"
AWS_PROVIDER = "pulumi:providers:aws"
MANAGED_PACKAGES = ("aws", "kubernetes")
REQUIRED_TAGS = {"requiredTags": string_list(["environment", "owner", "cost-center"])}


def _explicit_providers(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    # A default provider deploys wherever the ambient credentials or kubeconfig point.
    for resource in resources:
        if resource.type.split(":")[0] not in MANAGED_PACKAGES or not resource.provider:
            continue
        provider_name = resource.provider.rsplit("::", 1)[-1]
        if provider_name.startswith("default"):
            yield Violation(
                f"{resource.name}: uses the default {resource.type.split(':')[0]} provider", resource.urn
            )


def _missing_tags(tags: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    return [tag for tag in config["requiredTags"] if not tags.get(tag)]


def _provider_default_tags(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    default_tags = resource.get("defaultTags") or {}
    if isinstance(default_tags, str):  # providers receive nested config as JSON text
        default_tags = json.loads(default_tags) if default_tags.startswith("{") else {}
    tags = default_tags.get("tags") or {}
    missing = _missing_tags(tags, config)
    if missing:
        yield f"{resource.name}: defaultTags lack {', '.join(missing)}"


def _tagged(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    for resource in resources:
        if not resource.type.startswith("aws:") or "tagsAll" not in resource.props:
            continue
        tags = resource.get("tagsAll") or {}
        missing = _missing_tags(tags, config)
        if missing:
            yield Violation(f"{resource.name}: not tagged {', '.join(missing)}", resource.urn)


def _network_policy_enforced(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    enforcing: set[str] = set()
    for addon in of_types(resources, EKS_ADDON):
        if addon.get("addonName") != "vpc-cni":
            continue
        try:
            configuration = json.loads(addon.get("configurationValues") or "{}")
        except json.JSONDecodeError:
            continue
        if str(configuration.get("enableNetworkPolicy", "")).lower() == "true":
            enforcing.add(str(addon.get("clusterName")))
    for cluster in of_types(resources, EKS_CLUSTER):
        names = {str(cluster.get("name")), cluster.name, str(cluster.get("id"))}
        if not names & enforcing:
            yield Violation(
                f"{cluster.name}: no vpc-cni add-on with enableNetworkPolicy: NetworkPolicies go unenforced",
                cluster.urn,
            )


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "explicit-providers": whole_plan(_explicit_providers),
        "aws-provider-default-tags": on((AWS_PROVIDER,), _provider_default_tags, REQUIRED_TAGS),
        "aws-resources-tagged": whole_plan(_tagged, REQUIRED_TAGS),
        "eks-network-policy-enforced": whole_plan(_network_policy_enforced),
    },
)
