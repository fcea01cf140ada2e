"""Lifecycle invariants: one `pulumi up` from nothing and one clean `pulumi destroy`, checked on the
plan's dependency graph (dependencies, parents, providers) as the engine will order it.

Every rule is a stack rule over `policies.waits` (Pulumi's create/destroy ordering, shared with
`rampart order`) and `policies.controllers` (what installs each CRD, which controller finalizes what,
which webhook injects the sidecar). A finding names the resource and the missing edge; its key
("<resource> -> <prerequisite>" or "<resource>: <what>") is what a stack's policy config lists under
`knownViolations` while a fix is pending: known findings are not reported, a listed finding that no
longer occurs is (so the list only shrinks), anything new fails the gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.controllers import (
    CONTROLLERS,
    CRD,
    HELM_RELEASE,
    INJECTION_LABEL,
    INJECTOR_CHARTS,
    LB_CONTROLLER,
    POD_TEMPLATES,
    PODLESS_CHARTS,
    REVISION_LABEL,
    CrdSource,
    chart_name,
    crd_object_installs,
    crd_sources,
    custom_resource,
    finalized_objects,
    injected_revision,
    injector_revisions,
    path,
)
from policies.model import NotApplicable, Resource, Rule, Violation, boolean, string_list
from policies.rules.aws import EKS_CLUSTER, KMS_KEY, MQ_BROKER, RDS_CLUSTER, RDS_INSTANCE, S3_BUCKET
from policies.rules.data import POSTGRES_CLUSTER, RABBITMQ_CLUSTER, RABBITMQ_QUEUE, RABBITMQ_VHOST
from policies.table import Check, table_rules, whole_plan
from policies.waits import PROVIDER_PREFIX, REMOTE_COMPONENT_TYPES, Node, Waits

NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
IAM_ROLE = "aws:iam/role:Role"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
EC2_TAG = "aws:ec2/tag:Tag"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"

# --------------------------------------------------------------------------------------- plumbing


@dataclass(frozen=True)
class Finding:
    urn: str | None
    key: str  # stable and short: "<resource> -> <prerequisite>" or "<resource>: <what>"
    message: str


KNOWN_VIOLATIONS: dict[str, Any] = {
    "knownViolations": string_list(
        description="Finding keys accepted until the fix lands; a listed key that no longer occurs "
        "is itself a violation, so the list only shrinks."
    )
}

Findings = Callable[[list[Resource], Mapping[str, Any]], Iterable[Finding]]


def ratchet(findings: Iterable[Finding], config: Mapping[str, Any]) -> Iterator[Violation]:
    """Report every finding not listed as known, and every known one that no longer occurs."""
    known = {str(key) for key in config.get("knownViolations") or []}
    seen: set[str] = set()
    for finding in findings:
        if finding.key in known:
            seen.add(finding.key)
            continue
        yield Violation(f"{finding.message} [key: {finding.key}]", finding.urn)
    for stale in sorted(known - seen):
        yield Violation(
            f"knownViolations lists {stale!r}, which no longer occurs: remove it from this stack's "
            "policy config (policies/config/<stack>/<pack>.json)"
        )


def ratcheted(check: Findings) -> Callable[[list[Resource], Mapping[str, Any]], Iterator[Violation]]:
    def stack_check(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
        return ratchet(check(resources, config), config)

    return stack_check


def node(resource: Resource, provider_packages: frozenset[str] = frozenset()) -> Node:
    """A resource as the ordering model sees it. In the engine's stack view a custom resource (and a
    remote component) has a provider and a local component has none; a resource of a package some
    provider of the plan serves counts as managed too (as `rampart order` decides remote components)."""
    is_provider = resource.type.startswith(PROVIDER_PREFIX)
    managed = resource.provider is not None or resource.type.split(":", 1)[0] in provider_packages
    return Node(
        urn=resource.urn,
        type=resource.type,
        custom=is_provider or (managed and resource.type not in REMOTE_COMPONENT_TYPES),
        step=is_provider or managed,
        dependencies=resource.dependencies,
        provider=resource.provider,
        parent=resource.parent,
    )


def waits(resources: Sequence[Resource]) -> Waits:
    packages = frozenset(
        r.type.removeprefix(PROVIDER_PREFIX) for r in resources if r.type.startswith(PROVIDER_PREFIX)
    )
    return Waits([node(r, packages) for r in resources])


def kind(resource: Resource) -> str:
    return resource.type.rsplit(":", 1)[-1]


def label(resource: Resource) -> str:
    """`Deployment orders/orders (orders-deployment)`, `Release kong/kong (gateway-release)`."""
    if resource.type == HELM_RELEASE:
        where = f"{resource.get('namespace')}/{resource.get('name')}"
    elif resource.namespace:
        where = f"{resource.namespace}/{resource.object_name}"
    else:
        where = resource.object_name
    return f"{kind(resource)} {where} ({resource.name})"


def strings(props: Mapping[str, Any], dotted: str) -> list[str]:
    """The string values at a path; `a[].b` walks every item of list `a`."""
    nodes: list[Any] = [props]
    for part in dotted.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        nodes = [n.get(key) for n in nodes if isinstance(n, Mapping)]
        if many:
            nodes = [item for n in nodes if isinstance(n, list) for item in n]
    return [n for n in nodes if isinstance(n, str) and n]


# ------------------------------------------------------------------ custom resources wait for CRDs


def installs_crd(resource: Resource, sources: Sequence[CrdSource], group: str, kind_: str) -> bool:
    if resource.type == CRD:
        return crd_object_installs(resource.props, group, kind_)
    return any(
        s.installer.matches(resource.type, resource.props, resource.name) and s.renders(resource.props, kind_)
        for s in sources
    )


def _crd_findings(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Finding]:
    # A custom resource created before its CRD fails: pulumi-kubernetes reports "the Kubernetes API
    # server reported that the apiVersion for this resource does not exist. Verify that any required
    # CRDs have been created: no matches for kind ..." (pulumi/pulumi-kubernetes#1144, #1735); it does
    # not wait for a CRD it is not told about. Helm installs a chart's CRDs before anything else and a
    # Release completes after them, so waiting for the installing release (or manifest, or the CRD
    # object) is enough. On destroy the reverse holds: the object goes before the release that owns its
    # CRD and controller. https://helm.sh/docs/chart_best_practices/custom_resource_definitions/
    external = {str(g) for g in config["externalCrdGroups"]}
    graph = waits(resources)
    installers_of: dict[tuple[str, str], list[Resource]] = {}
    for resource in resources:
        group_kind = custom_resource(resource.type)
        if group_kind is None or group_kind[0] in external:
            continue
        group, kind_ = group_kind
        sources = crd_sources(group, kind_)
        if group_kind not in installers_of:
            installers_of[group_kind] = [r for r in resources if installs_crd(r, sources, group, kind_)]
        installers = installers_of[group_kind]
        if not installers:
            yield _no_installer(resource, resources, sources, group, kind_)
            continue
        if graph.created_after(resource.urn, (i.urn for i in installers)):
            continue
        first = installers[0]
        via = f" [{sources[0].source}]" if sources else ""
        yield Finding(
            resource.urn,
            f"{resource.name} -> {first.name}",
            f"{label(resource)} does not wait for {label(first)}, which installs the CRD of "
            f"{kind_}.{group}: the first `pulumi up` can create it before the CRD exists ('no matches "
            f"for kind {kind_}'), and destroy can remove the CRD's release first. Make {resource.name} "
            f"depend on {first.name}.{via}",
        )


def _no_installer(
    resource: Resource, resources: list[Resource], sources: Sequence[CrdSource], group: str, kind_: str
) -> Finding:
    if not sources:
        return Finding(
            resource.urn,
            f"{resource.name}: no known installer of {group}",
            f"{label(resource)}: no entry for API group {group} in the CRD table (policies/controllers.py "
            "CRD_SOURCES), so nothing proves its CRD exists first. Add the chart or manifest that "
            "installs it, or list the group in externalCrdGroups if the cluster already has it.",
        )
    present = [r for r in resources if any(s.installer.matches(r.type, r.props, r.name) for s in sources)]
    names = ", ".join(s.name for s in sources)
    if present:
        reason = (
            f"{label(present[0])} is in the plan but its values do not render the CRDs ({sources[0].source})"
        )
    else:
        reason = f"nothing in the plan installs it (expected: {names})"
    return Finding(
        resource.urn,
        f"{resource.name}: no installer of {group}",
        f"{label(resource)} needs the CRD of {kind_}.{group}, but {reason}: the first `pulumi up` fails "
        "with 'no matches for kind'. Install the CRDs with the plan, or list the group in "
        "externalCrdGroups for a cluster that already has them.",
    )


# -------------------------------------------------------------- pods wait for the sidecar injector


def namespace_labels(resources: Iterable[Resource]) -> dict[str, dict[str, Any]]:
    """Each namespace's labels, from its Namespace and any NamespacePatch (server-side apply merges)."""
    labels: dict[str, dict[str, Any]] = {}
    for resource in resources:
        if resource.type in (NAMESPACE, NAMESPACE_PATCH):
            own = resource.get("metadata.labels") or {}
            labels.setdefault(resource.object_name, {}).update(own if isinstance(own, Mapping) else {})
    return labels


def pod_metadata(resource: Resource) -> tuple[str, Mapping[str, Any]] | None:
    """(namespace, pod template metadata) of a pod-creating resource; a Helm release counts with its
    own namespace and no pod labels (what its chart renders is not in the plan)."""
    if resource.type in POD_TEMPLATES:
        meta = path(resource.props, POD_TEMPLATES[resource.type]) or {}
        return resource.namespace or "default", meta if isinstance(meta, Mapping) else {}
    if resource.type == HELM_RELEASE:
        chart = chart_name(resource.props)
        if chart in PODLESS_CHARTS or chart in INJECTOR_CHARTS:
            return None
        return str(resource.get("namespace") or "default"), {}
    return None


def _injector_findings(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Finding]:
    # The sidecar is added by istiod's mutating webhook when a pod is created; a pod created before the
    # webhook exists runs without one until it is recreated. Istio, "Installing the sidecar" /
    # "Controlling the injection policy":
    # https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/
    injectors = [
        (r, injector_revisions(r.props))
        for r in resources
        if r.type == HELM_RELEASE and chart_name(r.props) in INJECTOR_CHARTS
    ]
    if not injectors:
        raise NotApplicable("no sidecar injector (istiod release) in this plan")
    labels = namespace_labels(resources)
    graph = waits(resources)
    for resource in resources:
        found = pod_metadata(resource)
        if found is None:
            continue
        namespace, meta = found
        revision = injected_revision(labels.get(namespace, {}), meta)
        if revision is None:
            continue
        why = (
            f"{INJECTION_LABEL}=enabled"
            if str(labels.get(namespace, {}).get(INJECTION_LABEL, "")).lower() == "enabled"
            else f"{REVISION_LABEL}={revision or 'default'}"
        )
        candidates = [r for r, served in injectors if revision in served]
        if not candidates:
            yield Finding(
                resource.urn,
                f"{resource.name}: no injector for revision {revision or 'default'}",
                f"{label(resource)} runs pods in namespace {namespace} ({why}), but no istiod release in "
                f"the plan serves revision {revision or 'default'}: its pods get no sidecar.",
            )
        elif not graph.created_after(resource.urn, (c.urn for c in candidates)):
            injector = candidates[0]
            yield Finding(
                resource.urn,
                f"{resource.name} -> {injector.name}",
                f"{label(resource)} runs pods in namespace {namespace}, where Istio injects sidecars "
                f"({why}), but does not wait for {label(injector)}, the injector: its first pods can "
                "start before the webhook exists and run without a sidecar (no mTLS, no JWT check; "
                f"STRICT peers refuse them). Make {resource.name} depend on {injector.name}.",
            )


# ------------------------------------------------- finalized objects wait for their controller


def _finalizer_findings(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Finding]:
    # Destroy deletes a resource before everything it waits for (policies/waits.py). An object whose
    # finalizer only a controller removes must therefore (transitively) wait for that controller's
    # release: otherwise destroy may uninstall the controller first and the object hangs in
    # Terminating until the delete times out, leaking its cloud resource (NLB, instances, ...).
    # https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
    # Same model as `rampart order`'s destroy findings (rampart/order.py destroy_report).
    graph = waits(resources)
    installers: dict[str, list[Resource]] = {}
    for resource in resources:
        for obj in finalized_objects(resource.type, resource.props):
            if obj.controller not in installers:
                controller = CONTROLLERS[obj.controller]
                installers[obj.controller] = [
                    r for r in resources if controller.installs(r.type, r.props, r.name)
                ]
            steps = installers[obj.controller]
            if not steps or graph.deleted_after(resource.urn, (s.urn for s in steps)):
                continue  # not managed by this stack, or deleted after the object: fine
            first = steps[0]
            yield Finding(
                resource.urn,
                f"{resource.name} -> {first.name}",
                f"{obj.label} ({resource.name}) keeps finalizer {obj.finalizer} until {obj.controller} "
                f"has cleaned up, but does not wait for {label(first)}: destroy can remove the "
                "controller first, and the object then hangs in Terminating while its cloud resource "
                f"leaks. Make {resource.name} depend on {first.name}. [{obj.source}]",
            )


# ------------------------------------------------ IAM permissions before the role's consumers

# What grants a role its permissions: type -> paths holding the role's name (or ARN).
ROLE_GRANTS: dict[str, tuple[str, ...]] = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role",),
    "aws:iam/rolePolicy:RolePolicy": ("role",),
    "aws:iam/policyAttachment:PolicyAttachment": ("roles[]",),
    "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive": ("roleName",),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("roleName",),
}
# What acts with a role's permissions as soon as it exists: type -> paths holding the role's ARN (or,
# for an EC2NodeClass, its name).
ROLE_CONSUMERS: dict[str, tuple[str, ...]] = {
    EKS_CLUSTER: ("roleArn",),
    "aws:eks/nodeGroup:NodeGroup": ("nodeRoleArn",),
    "aws:eks/fargateProfile:FargateProfile": ("podExecutionRoleArn",),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("roleArn",),
    "aws:eks/addon:Addon": ("serviceAccountRoleArn", "podIdentityAssociations[].roleArn"),
    "aws:ec2/flowLog:FlowLog": ("iamRoleArn",),
    RDS_INSTANCE: ("monitoringRoleArn",),
    "aws:lambda/function:Function": ("role",),
    "aws:ecs/taskDefinition:TaskDefinition": ("executionRoleArn", "taskRoleArn"),
    NODE_CLASS: ("spec.role",),
}


def role_ids(role: Resource) -> set[str]:
    return {v for v in (role.get("arn"), role.get("name"), role.get("id")) if isinstance(v, str) and v}


def _iam_findings(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Finding]:
    # Pulumi AWS registry, aws.eks.Cluster / aws.eks.NodeGroup examples: "Ensure that IAM Role
    # permissions are created before and deleted after EKS Cluster [Node Group] handling. Otherwise,
    # EKS will not be able to properly delete EKS managed EC2 infrastructure such as Security Groups
    # [EC2 Instances and Elastic Network Interfaces]." A consumer that only waits for the role (its
    # ARN) races the attachments on create and outlives them on destroy.
    # https://www.pulumi.com/registry/packages/aws/api-docs/eks/cluster/
    # Indexed by the ids a consumer or a grant names a role by, so the rule stays linear in the plan.
    roles_by_id: dict[str, list[Resource]] = {}
    for role in (r for r in resources if r.type == IAM_ROLE):
        for role_id in role_ids(role):
            roles_by_id.setdefault(role_id, []).append(role)
    grants_by_ref: dict[str, list[tuple[int, Resource]]] = {}
    for index, grant in enumerate(g for g in resources if g.type in ROLE_GRANTS):
        for ref in {ref for p in ROLE_GRANTS[grant.type] for ref in strings(grant.props, p)}:
            grants_by_ref.setdefault(ref, []).append((index, grant))
    graph = waits(resources)
    for consumer in resources:
        for role_path in ROLE_CONSUMERS.get(consumer.type, ()):
            for value in strings(consumer.props, role_path):
                for role in roles_by_id.get(value, ()):
                    granting = _granting(role, grants_by_ref)
                    waited = graph.created_after(consumer.urn, (grant.urn for grant in granting))
                    for grant in granting:
                        if grant.urn not in waited:
                            yield Finding(
                                consumer.urn,
                                f"{consumer.name} -> {grant.name}",
                                f"{label(consumer)} uses role {role.name} ({role_path}) but does not wait "
                                f"for {grant.name} ({kind(grant)}), which grants the role its permissions: "
                                "on create it can act before the permissions exist, on destroy they are "
                                f"removed while it still needs them. Make {consumer.name} depend on "
                                f"{grant.name}.",
                            )


def _granting(role: Resource, grants_by_ref: Mapping[str, list[tuple[int, Resource]]]) -> list[Resource]:
    """The grants naming ``role`` by any of its ids, once each, in plan order."""
    found = {index: grant for role_id in role_ids(role) for index, grant in grants_by_ref.get(role_id, ())}
    return [found[index] for index in sorted(found)]


# -------------------------------------------------- discovery selectors match tagged resources


def tags_of(resource: Resource) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key in ("tags", "tagsAll"):
        value = resource.get(key) or {}
        if isinstance(value, Mapping):
            tags.update({str(k): str(v) for k, v in value.items()})
    return tags


def tagged(resources: Sequence[Resource], type_: str, id_prefix: str) -> dict[str, dict[str, str]]:
    """Resources of `type_` by id with their tags, plus the EKS-created cluster security group and
    whatever aws:ec2/tag:Tag resources add to an id (as eksctl and terraform-aws-eks tag it)."""
    found = {str(r.get("id") or r.urn): tags_of(r) for r in resources if r.type == type_}
    if type_ == SECURITY_GROUP:
        # EKS creates and tags the cluster security group (EKS user guide, "View Amazon EKS security
        # group requirements for clusters": aws:eks:cluster-name, kubernetes.io/cluster/<name>: owned).
        for cluster in (r for r in resources if r.type == EKS_CLUSTER):
            group = path(cluster.props, "vpcConfig.clusterSecurityGroupId")
            name = str(cluster.get("name") or cluster.name)
            if isinstance(group, str) and group:
                found.setdefault(group, {}).update(
                    {"aws:eks:cluster-name": name, f"kubernetes.io/cluster/{name}": "owned"}
                )
    for tag in (r for r in resources if r.type == EC2_TAG):
        target = str(tag.get("resourceId") or "")
        if target in found or target.startswith(id_prefix):
            found.setdefault(target, {})[str(tag.get("key"))] = str(tag.get("value") or "")
    return found


def term_matches(term: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    # Karpenter: within a term every tag must match; the value "*" matches any value.
    # https://karpenter.sh/docs/concepts/nodeclasses/ (subnetSelectorTerms, securityGroupSelectorTerms)
    wanted = term.get("tags") or {}
    return all(k in tags and (str(v) == "*" or tags[k] == str(v)) for k, v in wanted.items())


def _node_class_findings(resources: list[Resource]) -> Iterator[Finding]:
    # Each term is ORed with the others, so one empty term is dead configuration and an EC2NodeClass
    # whose terms all match nothing cannot launch a node at all.
    candidates = {
        "subnetSelectorTerms": ("subnet", tagged(resources, SUBNET, "subnet-")),
        "securityGroupSelectorTerms": ("security group", tagged(resources, SECURITY_GROUP, "sg-")),
    }
    for node_class in (r for r in resources if r.type == NODE_CLASS):
        for field, (what, by_id) in candidates.items():
            for index, term in enumerate(path(node_class.props, f"spec.{field}") or []):
                if not isinstance(term, Mapping) or not term.get("tags"):
                    continue  # id / name terms name their target; nothing to discover
                if not any(term_matches(term, tags) for tags in by_id.values()):
                    yield Finding(
                        node_class.urn,
                        f"{node_class.name}: {field}[{index}]",
                        f"{label(node_class)}: {field}[{index}] selects {what}s tagged "
                        f"{dict(term['tags'])}, and no {what} in the plan carries those tags (directly or "
                        "through an aws:ec2/tag:Tag): Karpenter cannot launch nodes with it. Tag the "
                        f"{what} (e.g. the cluster security group, as eksctl does) or fix the selector.",
                    )


LB_ROLE_TAGS = {"internet-facing": "kubernetes.io/role/elb", "internal": "kubernetes.io/role/internal-elb"}


def _lb_subnet_findings(resources: list[Resource]) -> Iterator[Finding]:
    # AWS Load Balancer Controller subnet auto-discovery: internet-facing load balancers use subnets
    # tagged kubernetes.io/role/elb, internal ones kubernetes.io/role/internal-elb (value 1 or empty),
    # unless the object names its subnets; an ALB needs two zones.
    # https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/subnet_discovery/
    if not any(LB_CONTROLLER.installs(r.type, r.props, r.name) for r in resources):
        return
    subnets = [r for r in resources if r.type == SUBNET]
    extra = tagged(resources, SUBNET, "subnet-")
    for resource in resources:
        for obj in finalized_objects(resource.type, resource.props):
            if obj.controller != LB_CONTROLLER.name or obj.explicit_subnets:
                continue
            tag = LB_ROLE_TAGS.get(obj.scheme, LB_ROLE_TAGS["internal"])
            matching = [s for s in subnets if extra.get(str(s.get("id") or s.urn), {}).get(tag) in ("1", "")]
            zones = {s.get("availabilityZone") for s in matching}
            needed = 2 if obj.label.startswith("Ingress") else 1
            if len(zones) < needed:
                yield Finding(
                    resource.urn,
                    f"{resource.name}: {tag}",
                    f"{obj.label} ({resource.name}) is a {obj.scheme} load balancer of the AWS Load "
                    f"Balancer Controller, which discovers its subnets by the tag {tag} (1 or empty); "
                    f"{len(matching)} subnet(s) in {len(zones)} zone(s) of the plan carry it, {needed} "
                    "zone(s) needed: the load balancer is never provisioned. Tag the subnets.",
                )


def _discovery_findings(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Finding]:
    yield from _node_class_findings(resources)
    yield from _lb_subnet_findings(resources)


# ------------------------------------------------------------------ IAM permissions boundaries


def _boundary_findings(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Finding]:
    # With a boundary configured, a deploy role restricted to iam:CreateRole with
    # iam:PermissionsBoundary may create no role without it; and every role without one escapes the
    # ceiling the account relies on.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
    roles = [r for r in resources if r.type == IAM_ROLE]
    expected = str(config["permissionsBoundaryArn"] or "")
    carried = sorted({str(r.get("permissionsBoundary")) for r in roles if r.get("permissionsBoundary")})
    if not expected and not config["requirePermissionsBoundary"] and not carried:
        return
    why = (
        f"the stack's policy config requires {expected}"
        if expected
        else "the stack's policy config requires one"
        if config["requirePermissionsBoundary"]
        else f"other roles of this plan carry {', '.join(carried)}"
    )
    for role in roles:
        boundary = str(role.get("permissionsBoundary") or "")
        if (expected and boundary != expected) or not boundary:
            has = f"carries {boundary}" if boundary else "has no permissions boundary"
            yield Finding(
                role.urn,
                f"{role.name}: permissions boundary",
                f"IAM role {role.name} {has}, but {why}: a deploy role limited to boundary-carrying "
                "iam:CreateRole is denied, and the role escapes the account's permission ceiling. Pass "
                "the configured boundary (rampart:aws.permissions_boundary_arn) to the role.",
            )


# ------------------------------------------------------------- protection follows the environment

STATEFUL_TYPES = (
    RDS_INSTANCE,
    RDS_CLUSTER,
    MQ_BROKER,
    S3_BUCKET,
    KMS_KEY,
    EKS_CLUSTER,
    POSTGRES_CLUSTER,
    RABBITMQ_CLUSTER,
    RABBITMQ_QUEUE,
    RABBITMQ_VHOST,
)


def _protection_findings(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Finding]:
    # One rule per environment (components/core/protection.py): staging and prod protect exactly their
    # stateful resources; local and dev protect nothing, so `pulumi destroy` tears them down. A
    # protected resource fails its delete step and stops the destroy ("cannot be deleted because it is
    # protected"). https://www.pulumi.com/docs/iac/concepts/resources/options/protect/
    # retainOnDelete is not part of the Analyzer protocol (AnalyzerResourceOptions carries protect,
    # not retainOnDelete), so no policy can see it; tests/policies/test_lifecycle.py checks it on the
    # plans with the same rule.
    stateful = {str(t) for t in config["statefulTypes"]}
    protect = bool(config["protectStateful"])
    for resource in resources:
        should = protect and resource.type in stateful
        if resource.protect == should:
            continue
        if should:
            message = (
                f"{label(resource)} is stateful and not protected, but this environment protects "
                "stateful resources: a destroy or a removed declaration deletes its data. Pass "
                "protect=ctx.protect (components.core.protection.is_protected)."
            )
        else:
            reason = "is not stateful" if protect else "is protected in an environment that protects nothing"
            message = (
                f"{label(resource)} {reason}: `pulumi destroy` stops at it. Derive protect from "
                "components.core.protection.is_protected(environment) instead of setting it."
            )
        yield Finding(resource.urn, f"{resource.name}: protect", message)


# -------------------------------------------------------------------------------------------- rules

REMEDIATION_EDGE = (
    "Add the missing dependency (depends_on, or pass the handle's `ready` resources) in the component "
    "that builds the resource; the message names both ends. While the fix is pending, list the key in "
    "this rule's knownViolations in policies/config/<stack>/<pack>.json."
)


def _ratcheted(findings: Findings, extra_schema: Mapping[str, Any] | None = None) -> Check:
    """A stack check whose findings are ratcheted by the stack's knownViolations."""
    return whole_plan(ratcheted(findings), {**KNOWN_VIOLATIONS, **(extra_schema or {})})


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "crd-installed-first": _ratcheted(
            _crd_findings,
            {
                "externalCrdGroups": string_list(
                    description="API groups whose CRDs the cluster already has (installed outside the stack)."
                ),
            },
        ),
        "workload-waits-for-injector": _ratcheted(_injector_findings),
        "finalized-waits-for-controller": _ratcheted(_finalizer_findings),
        "iam-attachments-before-consumers": _ratcheted(_iam_findings),
        "discovery-selectors-match": _ratcheted(_discovery_findings),
        "iam-role-permissions-boundary": _ratcheted(
            _boundary_findings,
            {
                "requirePermissionsBoundary": boolean(False),
                "permissionsBoundaryArn": {"type": "string", "default": ""},
            },
        ),
        "protection-follows-environment": _ratcheted(
            _protection_findings,
            {"protectStateful": boolean(True), "statefulTypes": string_list(STATEFUL_TYPES)},
        ),
    },
    params={"edge": REMEDIATION_EDGE},
)
