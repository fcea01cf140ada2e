"""What each resource waits for: Pulumi's create and destroy ordering over a plan's dependency graph.

One model, used by the lifecycle policies (`policies/rules/lifecycle.py`, which see the engine's
stack-validation view of a preview) and by `rampart order` (`rampart/order.py`, which reads a
`pulumi stack export`), so the gate and the order report can never disagree. Pure functions over
`Node`s: a resource's recorded edges, nothing else.

Create (`pulumi up`): a resource is registered only once its `dependsOn`, every input's resources,
its provider and its parent have resolved (Python SDK `pulumi/runtime/resource.py`,
`prepare_resource`); a custom resource's URN resolves after its create step has finished, so
"waits for" means "starts after it is created".
https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/
https://www.pulumi.com/docs/iac/guides/basics/how-pulumi-works/ ("Creation and deletion order")
- `dependencies` already hold the SDK's expansion of a local component into its custom (and remote)
  descendants (SDK `pulumi/runtime/rpc.py` `_add_dependency`; pulumi#7732); a component that still
  appears there is expanded the same way here.
- A local component registers at once (no provider call) but waits for its own `dependsOn` and
  parent, and its children wait for it: its prerequisites are folded into each child.
- A remote (multi-language) component such as `kubernetes:yaml/v2:ConfigFile` is one step whose
  registration returns once the provider has created its children (pulumi#7541).

Destroy (`pulumi destroy`): the engine's `DependenciesOf` is a resource's provider, parent,
`dependencies` and, for a component dependency, that component's descendants registered earlier
(pulumi `pkg/resource/graph/dependency_graph.go`); `ScheduleDeletes` deletes dependents before what
they depend on (`pkg/resource/deploy/step_generator.go`). So whatever a resource transitively waits
for is deleted after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

PROVIDER_PREFIX = "pulumi:providers:"
STACK_TYPE = "pulumi:pulumi:Stack"
# pulumi-kubernetes' multi-language components: served by the provider, not custom resources.
REMOTE_COMPONENT_TYPES = frozenset(
    {
        "kubernetes:yaml/v2:ConfigFile",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:kustomize/v2:Directory",
    }
)


@dataclass(frozen=True)
class Node:
    """A resource as far as ordering goes."""

    urn: str
    type: str
    custom: bool  # a custom resource or a provider (not a component)
    step: bool  # a create step: a custom resource, a provider or a remote component
    dependencies: tuple[str, ...] = ()  # incl. property dependencies
    provider: str | None = None  # the provider's URN
    parent: str | None = None


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def provider_urn(reference: str | None) -> str | None:
    """A provider reference is "<provider URN>::<provider id>"; the URN itself contains "::"."""
    return reference.rsplit("::", 1)[0] if reference else None


def _children(nodes: Iterable[Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        children[node.parent or ""].append(node.urn)
    return children


def _descendants(
    children: Mapping[str, list[str]], urn: str, until: Callable[[str], bool] | None = None
) -> set[str]:
    """The descendants of `urn`; with `until`, only those it accepts, none below an accepted one."""
    found: set[str] = set()
    stack = list(children.get(urn, []))
    while stack:
        child = stack.pop()
        if until is None or until(child):
            found.add(child)
        if until is None or not until(child):
            stack.extend(children.get(child, []))
    return found


def create_prereqs(nodes: Sequence[Node]) -> dict[str, frozenset[str]]:
    """Every create step -> the steps it waits for directly, with components folded away: a step
    waits for the steps behind its dependencies, its provider and its parent (a component parent
    stands for that component's own prerequisites)."""
    by_urn = {node.urn: node for node in nodes}
    children = _children(nodes)

    def descendant_steps(urn: str) -> set[str]:
        # SDK `_add_dependency`: a local component stands for its custom and remote descendants;
        # the children of a custom resource or a remote component are not added.
        return _descendants(children, urn, until=lambda child: by_urn[child].step)

    registration: dict[str, frozenset[str]] = {}

    def registered_after(component: str) -> frozenset[str]:
        """The steps a local component's registration waits for (its dependsOn, inputs, parent)."""
        if component not in registration:
            registration[component] = frozenset()  # guards a malformed cyclic parent chain
            registration[component] = frozenset(waits_for(component))
        return registration[component]

    def waits_for(urn: str) -> set[str]:
        node = by_urn[urn]
        found: set[str] = set()
        for dep in node.dependencies:
            if dep in by_urn:
                found |= {dep} if by_urn[dep].step else descendant_steps(dep)
        for gate in (node.provider, node.parent):
            if gate and gate in by_urn:
                found |= {gate} if by_urn[gate].step else registered_after(gate)
        found.discard(urn)
        return found

    return {node.urn: frozenset(waits_for(node.urn)) for node in nodes if node.step}


def destroy_prereqs(nodes: Sequence[Node]) -> dict[str, set[str]]:
    """The engine's `DependenciesOf` for every resource (components and the stack included): what
    must still exist while it is deleted, i.e. what is deleted after it."""
    by_urn = {node.urn: node for node in nodes}
    index = {node.urn: i for i, node in enumerate(nodes)}
    children = _children(nodes)

    result: dict[str, set[str]] = {}
    for node in nodes:
        found = {d for d in node.dependencies if d in by_urn}
        for dep in list(found):
            if not by_urn[dep].custom:
                # A component dependency also means its descendants registered before this resource.
                found |= {d for d in _descendants(children, dep) if index[d] < index[node.urn]}
        found |= {g for g in (node.provider, node.parent) if g and g in by_urn}
        found.discard(node.urn)
        result[node.urn] = found
    return result


def closure(prereqs: Mapping[str, Iterable[str]], urn: str) -> set[str]:
    """Everything `urn` waits for, transitively."""
    seen: set[str] = set()
    stack = list(prereqs.get(urn, ()))
    while stack:
        pre = stack.pop()
        if pre not in seen:
            seen.add(pre)
            stack.extend(prereqs.get(pre, ()))
    return seen


class Waits:
    """Transitive create and destroy prerequisites of one plan, computed once.

    Rules ask whether a resource waits for one of a few given resources (the injector, a CRD's
    installers, a role's attachments), so the answer is computed per target: everything that waits
    for it, found once by walking the edges backwards from it. Materialising every resource's whole
    closure instead costs its size per resource, which grows with the catalog (a service waits for
    the services it calls, and they for theirs): quadratic in the plan.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = {node.urn: node for node in nodes}
        self.create = create_prereqs(nodes)
        self.destroy = destroy_prereqs(nodes)
        self._dependents = {"create": _reversed(self.create), "destroy": _reversed(self.destroy)}
        self._behind: dict[tuple[str, str], frozenset[str]] = {}

    def created_after(self, urn: str, targets: Iterable[str]) -> frozenset[str]:
        """Those of ``targets`` that `urn` waits for, transitively, on `pulumi up`."""
        return frozenset(t for t in targets if urn in self._waiting_for("create", t))

    def deleted_after(self, urn: str, targets: Iterable[str]) -> frozenset[str]:
        """Those of ``targets`` that `pulumi destroy` deletes only after `urn` is gone."""
        return frozenset(t for t in targets if urn in self._waiting_for("destroy", t))

    def _waiting_for(self, direction: str, target: str) -> frozenset[str]:
        """Everything whose closure holds ``target`` (``target`` itself only on a cycle)."""
        if (direction, target) not in self._behind:
            # The closure over the reversed edges: what reaches ``target``.
            self._behind[(direction, target)] = frozenset(closure(self._dependents[direction], target))
        return self._behind[(direction, target)]


def _reversed(prereqs: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    dependents: dict[str, list[str]] = defaultdict(list)
    for urn, pres in prereqs.items():
        for pre in pres:
            dependents[pre].append(urn)
    return dependents
