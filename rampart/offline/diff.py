"""What `pulumi up` would do to go from one plan export to another: create, update, replace, delete.

The engine matches resources by URN (or by an alias naming the old URN), creates what is new,
deletes what is gone, and asks each matched resource's provider to diff its old inputs against
its new ones; the provider answers "update in place" or "replace" when a property that cannot
change in place differs (https://www.pulumi.com/docs/iac/concepts/how-pulumi-works/). No provider
runs here, so the replacement decision is modelled: :data:`REPLACE_KEYS` lists, per type, the
properties each provider documents as forcing a new resource, with the source beside each entry.
A property not listed is an update. Stateful resources (rampart.offline.stateful) that would be
replaced or deleted are what a reviewer must see first: their data goes with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rampart.offline.plan import STACK_TYPE, Plan
from rampart.offline.stateful import STATEFUL_TYPES

Op = Literal["create", "update", "replace", "delete"]
OPS: tuple[Op, ...] = ("create", "update", "replace", "delete")

# --- which property changes replace a resource -------------------------------------------------------

# pulumi-kubernetes decides replacement in provider/pkg/provider/diff.go (forceNewProperties):
# .metadata.name and .metadata.namespace of every kind, plus immutable fields per kind. ConfigMap and
# Secret contents replace too unless the provider sets enableConfigMapMutable / enableSecretMutable.
KUBERNETES_METADATA = ("metadata.name", "metadata.namespace")
KUBERNETES_KINDS: dict[str, tuple[str, ...]] = {
    "apps/Deployment": ("spec.selector",),
    "apps/DaemonSet": ("spec.selector",),
    "apps/StatefulSet": (
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
    ),
    "batch/Job": ("spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
    "core/PersistentVolumeClaim": ("spec",),
    "core/Service": ("spec.clusterIP",),
    "core/ResourceQuota": ("spec.scopes",),
    "rbac.authorization.k8s.io/RoleBinding": ("roleRef",),
    "rbac.authorization.k8s.io/ClusterRoleBinding": ("roleRef",),
    "storage.k8s.io/StorageClass": ("parameters", "provisioner"),
}
MUTABLE_OPTIONS = {
    "core/ConfigMap": ("enableConfigMapMutable", ("data", "binaryData")),
    "core/Secret": ("enableSecretMutable", ("type", "stringData", "data")),
}
# pulumi-aws bridges the Terraform AWS provider: the arguments its registry docs mark "Forces new
# resource" (registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/<resource>), for the
# types whose replacement loses data, and for the database parameter groups (db_parameter_group,
# rds_cluster_parameter_group), whose replacement (a new family) comes with a major engine upgrade.
AWS_REPLACE_KEYS: dict[str, tuple[str, ...]] = {
    "aws:rds/parameterGroup:ParameterGroup": ("description", "family", "name", "namePrefix"),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": ("description", "family", "name", "namePrefix"),
    "aws:rds/instance:Instance": (
        "availabilityZone",
        "characterSetName",
        "customIamInstanceProfile",
        "dbName",
        "engine",
        "identifier",
        "identifierPrefix",
        "kmsKeyId",
        "ncharCharacterSetName",
        "restoreToPointInTime",
        "s3Import",
        "snapshotIdentifier",
        "storageEncrypted",
        "timezone",
        "username",
    ),
    "aws:rds/cluster:Cluster": (
        "availabilityZones",
        "clusterIdentifier",
        "clusterIdentifierPrefix",
        "databaseName",
        "dbSubnetGroupName",
        "engine",
        "engineMode",
        "kmsKeyId",
        "masterUsername",
        "restoreToPointInTime",
        "s3Import",
        "snapshotIdentifier",
        "storageEncrypted",
    ),
    "aws:mq/broker:Broker": (
        "brokerName",
        "deploymentMode",
        "encryptionOptions",
        "engineType",
        "publiclyAccessible",
        "storageType",
        "subnetIds",
    ),
    "aws:kms/key:Key": ("customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion"),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:eks/cluster:Cluster": (
        "bootstrapSelfManagedAddons",
        "kubernetesNetworkConfig",
        "name",
        "outpostConfig",
    ),
}
# RDS / Aurora major upgrades (ModifyDBInstance / ModifyDBCluster, docs.aws.amazon.com/AmazonRDS/latest/
# APIReference): an EngineVersion of another major is refused without AllowMajorVersionUpgrade, and
# without ApplyImmediately the engine and parameter-group change wait for the maintenance window while
# the same `pulumi up` deletes the replaced parameter group still in use: both must be true.
MAJOR_UPGRADE_TYPES = ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster")
MAJOR_UPGRADE_NEEDS = ("allowMajorVersionUpgrade", "applyImmediately")

# pulumi-random: every argument of its resources forces a new value (registry.terraform.io/providers/
# hashicorp/random/latest/docs: "any change ... forces a new resource").
ALL_INPUTS = ("*",)


def replace_keys(resource: Mapping[str, Any], providers: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The property paths whose change makes the provider replace ``resource`` rather than update it."""
    type_ = str(resource["type"])
    if type_.startswith("random:"):
        return ALL_INPUTS
    if type_ in AWS_REPLACE_KEYS:
        return AWS_REPLACE_KEYS[type_]
    if not type_.startswith("kubernetes:") or type_.startswith("kubernetes:helm.sh/"):
        return ()
    group_kind = _group_kind(type_)
    keys = KUBERNETES_METADATA + KUBERNETES_KINDS.get(group_kind, ())
    if group_kind in MUTABLE_OPTIONS:
        option, contents = MUTABLE_OPTIONS[group_kind]
        provider = providers.get(str(resource.get("provider") or "").rsplit("::", 1)[0], {})
        if str(provider.get(option, "")).lower() != "true":
            keys += contents
    return keys


def _group_kind(type_: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``apps/Deployment``."""
    _, group_version, kind = type_.split(":", 2)
    return f"{group_version.rsplit('/', 1)[0]}/{kind}"


# --- the diff ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    op: Op
    urn: str
    type: str
    # Top-level properties that differ, Pulumi-style: +added, -removed, ~changed.
    diff: tuple[str, ...] = ()
    # The changed property paths that force the replacement.
    replaced_by: tuple[str, ...] = ()
    stateful: bool = False
    # The old resource is protected: `pulumi up` stops instead of deleting it.
    protected: bool = False
    # The URN the resource had before, when it is matched through an alias.
    aliased_from: str | None = None
    delete_before_replace: bool = False
    # Why `pulumi up` would fail at this step (a modelled provider / API refusal), if it would.
    fails: str | None = None

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def loses_data(self) -> bool:
        return self.stateful and self.op in ("replace", "delete")


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    steps: tuple[Step, ...]
    unchanged: int

    @property
    def lost(self) -> list[Step]:
        """Stateful resources that would be replaced or deleted, replacements first."""
        return sorted((s for s in self.steps if s.loses_data), key=lambda s: (s.op != "replace", s.urn))

    @property
    def others(self) -> list[Step]:
        """Every other step, the riskiest kind first: replace, delete, update, create."""
        rank = {"replace": 0, "delete": 1, "update": 2, "create": 3}
        return sorted((s for s in self.steps if not s.loses_data), key=lambda s: (rank[s.op], s.urn))

    @property
    def failing(self) -> list[Step]:
        """Steps `pulumi up` would fail at."""
        return sorted((s for s in self.steps if s.fails), key=lambda s: s.urn)

    def counts(self) -> Counter[str]:
        return Counter(s.op for s in self.steps)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


class DiffError(ValueError):
    """Two exports that cannot be compared. ``str()`` is one line."""


def diff(before: Plan, after: Plan) -> PlanDiff:
    """The steps `pulumi up` would take from ``before`` to ``after`` (two exports of one stack)."""
    if (before.project, before.stack) != (after.project, after.stack):
        raise DiffError(
            f"the plans are of different stacks ({before.project}/{before.stack}, "
            f"{after.project}/{after.stack}): URNs name their stack, so no resource would match"
        )
    old = {r["urn"]: r for r in before.resources if r["type"] != STACK_TYPE}
    new = {r["urn"]: r for r in after.resources if r["type"] != STACK_TYPE}
    matched = _match(old, new)
    providers = {r["urn"]: r.get("inputs") or {} for r in after.resources}
    steps: list[Step] = []
    unchanged = 0
    for new_urn, old_urn in matched.items():
        step = _compare(old[old_urn], new[new_urn], providers)
        if step is None:
            unchanged += 1
        else:
            steps.append(step)
    steps += [_step("create", r) for urn, r in new.items() if urn not in matched]
    kept = set(matched.values())
    steps += [_step("delete", r) for urn, r in old.items() if urn not in kept]
    return PlanDiff(after.stack, tuple(steps), unchanged)


def _match(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, str]:
    """New URN -> the old URN it continues: the same URN, else an alias naming an old URN."""
    matched = {urn: urn for urn in new if urn in old}
    taken = set(matched.values())
    for urn, resource in new.items():
        if urn in matched:
            continue
        alias = next((a for a in resource.get("aliases") or [] if a in old and a not in taken), None)
        if alias is not None:
            matched[urn] = alias
            taken.add(alias)
    return matched


def _step(op: Op, resource: Mapping[str, Any], **extra: Any) -> Step:
    return Step(
        op=op,
        urn=str(resource["urn"]),
        type=str(resource["type"]),
        stateful=resource["type"] in STATEFUL_TYPES,
        protected=bool(resource.get("protect")) and op in ("delete", "replace"),
        **extra,
    )


def _compare(
    old: Mapping[str, Any], new: Mapping[str, Any], providers: Mapping[str, Mapping[str, Any]]
) -> Step | None:
    before, after = old.get("inputs") or {}, new.get("inputs") or {}
    paths = sorted(set(changed_paths(before, after)))
    aliased = None if old["urn"] == new["urn"] else str(old["urn"])
    if not paths:
        return None if aliased is None else _step("update", new, aliased_from=aliased)
    keys = replace_keys(new, providers)
    forcing = tuple(p for p in paths if any(_covers(key, p) for key in keys))
    return Step(
        op="replace" if forcing else "update",
        urn=str(new["urn"]),
        type=str(new["type"]),
        diff=_top_level(before, after),
        replaced_by=forcing,
        stateful=new["type"] in STATEFUL_TYPES,
        protected=bool(old.get("protect")) and bool(forcing),
        aliased_from=aliased,
        delete_before_replace=bool(new.get("deleteBeforeReplace")) and bool(forcing),
        fails=None if forcing else _major_upgrade_refused(new["type"], before, after),
    )


def _major(version: object) -> str:
    """PostgreSQL's major: the first component from 10 on (``16.4`` -> ``16``), two before (``9.6``)."""
    parts = str(version).split(".")
    return ".".join(parts[:2]) if parts[0] == "9" else parts[0]


def _major_upgrade_refused(type_: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Why an in-place major engine upgrade of an RDS instance / Aurora cluster would fail, if it would."""
    if type_ not in MAJOR_UPGRADE_TYPES or "engineVersion" not in before or "engineVersion" not in after:
        return None
    old, new = _major(before["engineVersion"]), _major(after["engineVersion"])
    missing = [key for key in MAJOR_UPGRADE_NEEDS if after.get(key) is not True]
    if old == new or not missing:
        return None
    return f"major upgrade {old} -> {new} without {' and '.join(missing)}"


def changed_paths(before: Any, after: Any, at: str = "") -> Iterator[str]:
    """Dotted paths (list items as ``[*]``) where ``after`` differs from ``before``, as deep as they agree."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() | after.keys():
            if before.get(key) != after.get(key):
                yield from changed_paths(before.get(key), after.get(key), f"{at}.{key}" if at else str(key))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for old_item, new_item in zip(before, after, strict=True):
            if old_item != new_item:
                yield from changed_paths(old_item, new_item, f"{at}[*]")
    elif before != after:
        yield at


def _covers(key: str, path: str) -> bool:
    """A replace key covers the paths beneath it, and the paths above it (a whole object added)."""
    if key == "*":
        return True
    return path == key or path.startswith((f"{key}.", f"{key}[")) or key.startswith(f"{path}.")


def _top_level(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    marks = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            marks.append(f"+{key}")
        elif key not in after:
            marks.append(f"-{key}")
        elif before[key] != after[key]:
            marks.append(f"~{key}")
    return tuple(marks)
