"""`rampart order`: the create waves, a first-`pulumi up` estimate with its critical path, and the
destroy order with what would hang or leak, all read from a plan's dependency graph.

Pure functions over a `Plan` (a `pulumi stack export` v3). The model follows Pulumi's documented and
implemented semantics; each rule cites where it comes from.

Create (`pulumi up` on an empty stack)
- A resource is registered only when its inputs, its `dependsOn`, its provider and its parent have
  resolved (Python SDK `pulumi/runtime/resource.py`, `prepare_resource`: awaits the `depends_on`
  URNs, every input's resources, `opts.parent.urn` and the provider reference). A custom
  resource's URN resolves when the engine answers RegisterResource, i.e. after its create step has
  finished; so "waits for" means "starts after it is created".
  https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/
  https://www.pulumi.com/docs/iac/guides/basics/how-pulumi-works/ ("Creation and deletion order")
- The export's `dependencies` already hold the SDK's expansion of a component: depending on a local
  ComponentResource means depending on every custom (and remote-component) descendant, not
  descending below a custom resource (SDK `pulumi/runtime/rpc.py`, `_add_dependency`; pulumi#7732
  "Depending on a component now depends on the transitive closure of its child resources"). The
  real stacks' exports hold no local component in any `dependencies` list (tests check this); a
  hand-made one is expanded here the same way.
- A local component's registration is immediate (no provider call), but it does wait for its own
  `dependsOn` and parent; its children wait for it. So a component's `dependsOn` gates all its
  children: those edges are folded into each child here, and components take no time and appear in
  no wave.
- A remote (multi-language) component such as `kubernetes:yaml/v2:ConfigFile` is one step: its
  registration returns after the provider has created its children (pulumi#7541).
- The engine runs every registration whose prerequisites are done, in parallel (`--parallel`
  defaults to unbounded for `up`), so the estimate is the longest path through the graph, weighted
  by the typical times in `TYPICAL`.

Destroy (`pulumi destroy`)
- The engine builds `DependenciesOf` for each resource: its provider, parent, `dependencies`,
  `propertyDependencies` and `deletedWith`, plus, for a component dependency, that component's
  descendants registered earlier (pulumi `pkg/resource/graph/dependency_graph.go`).
- `ScheduleDeletes` peels the graph into antichains from the bottom and reverses them; each
  antichain is deleted in parallel and must finish before the next starts (pulumi
  `pkg/resource/deploy/step_generator.go` `ScheduleDeletes`, `deployment_executor.go`). So destroy
  is the reverse of the dependency layering, and a recorded dependency is never deleted first.
- What the graph cannot see is a dependency that exists only at runtime: an object carrying a
  finalizer that only a controller removes. If the controller's release is not a (transitive)
  prerequisite of the object, nothing stops destroy from uninstalling the controller first; the
  object then hangs in Terminating until Pulumi's delete timeout and its cloud resource leaks.
  Those are the findings; `CONTROLLERS` and `finalized_objects` say which objects carry which
  finalizer, with their sources.
- A `protect`ed resource fails its delete step ("cannot be deleted because it is protected",
  pulumi `pkg/resource/deploy/step.go` `DeleteStep.Apply`); the executor stops after that antichain,
  so everything it depends on stays. A `retainOnDelete` resource's delete is a no-op, but the
  resources it uses are still deleted after it: AWS refuses some ("in use") and accepts others with
  damage (a KMS key scheduled for deletion under a live database).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policies import controllers as cluster_facts
from policies import waits
from policies.controllers import (
    CONTROLLERS,
    Controller,
    FinalizedObject,
    chart_name,
    service_type,
)
from policies.waits import provider_urn
from rampart.offline.plan import PROVIDER_PREFIX, STACK_TYPE, Plan

Resource = dict[str, Any]
# The shared ordering model's helpers, as `rampart order`'s readers (order_report, tests) know them.
name_of = waits.name_of
closure = waits.closure

# ------------------------------------------------------------------------------ typical create times


@dataclass(frozen=True)
class Typical:
    seconds: int
    source: str


# Where a figure comes from, in short: AWS = the service's own documentation; TF = the Terraform AWS
# provider's default create timeout for the resource (an upper bound the provider allows, which the
# Pulumi AWS provider inherits); K8S = pulumi-kubernetes' await logic (each resource's registry page,
# "waits until ... ready"); observed = typical figure from running these services, when no document
# gives one. Figures are for a first create in one region, on a quiet account.
_TF = "TF create timeout"
TYPICAL: dict[str, Typical] = {
    # --- AWS: slow, control planes and managed data services
    "aws:eks/cluster:Cluster": Typical(
        600, "AWS EKS user guide: 'Cluster provisioning takes several minutes'; ~10 min observed; TF 30m"
    ),
    "aws:eks/nodeGroup:NodeGroup": Typical(240, f"observed 3-5 min (EC2 launch, kubelet join); {_TF} 60m"),
    "aws:eks/addon:Addon": Typical(60, f"observed; ACTIVE needs the add-on's pods ready; {_TF} 20m"),
    "aws:eks/fargateProfile:FargateProfile": Typical(180, f"observed; {_TF} 10m"),
    "aws:rds/instance:Instance": Typical(
        480, f"observed 6-10 min single-AZ (AWS documents no figure); {_TF} 40m"
    ),
    "aws:rds/instance:Instance#multi-az": Typical(
        900, f"observed 12-20 min: Multi-AZ also builds and syncs the standby; {_TF} 40m"
    ),
    "aws:rds/cluster:Cluster": Typical(180, f"observed: Aurora cluster (storage volume) 2-4 min; {_TF} 120m"),
    "aws:rds/clusterInstance:ClusterInstance": Typical(600, f"observed: Aurora instance 8-12 min; {_TF} 90m"),
    "aws:mq/broker:Broker": Typical(
        900, "AWS Amazon MQ getting started: 'Creating the broker takes about 15 minutes'; TF 30m"
    ),
    "aws:mq/broker:Broker#cluster": Typical(
        1200, "observed ~20 min: three nodes behind an NLB across AZs (AWS says ~15 min for one); TF 30m"
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": Typical(600, f"observed; {_TF} 60m"),
    "aws:ec2/natGateway:NatGateway": Typical(120, f"observed 1-2 min until 'available'; {_TF} 10m"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": Typical(
        90, f"interface endpoint: ENIs per AZ, observed ~1.5 min; {_TF} 10m"
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint#gateway": Typical(5, "gateway endpoint: route table entries only"),
    "aws:lb/loadBalancer:LoadBalancer": Typical(
        180, f"observed: ALB/NLB 'provisioning' to 'active'; {_TF} 10m"
    ),
    "aws:acm/certificateValidation:CertificateValidation": Typical(120, "observed: DNS validation; TF 75m"),
    # --- AWS: quick API calls (seconds), with the provider's propagation waits
    "aws:kms/key:Key": Typical(10, "provider waits for the key to be enabled and its policy to propagate"),
    "aws:iam/role:Role": Typical(5, "IAM is eventually consistent; the provider retries on propagation"),
    "aws:sqs/queue:Queue": Typical(20, "provider waits for the queue attributes to propagate"),
    "aws:ec2/vpc:Vpc": Typical(5, "one API call; the provider waits for 'available'"),
    "aws:ec2/subnet:Subnet": Typical(5, "one API call; the provider waits for 'available'"),
    # --- Kubernetes: a Release "waits until all resources are in a ready state" unless skipAwait,
    # timeout 300 s (pulumi-kubernetes `helm_release.go`), like `helm install --wait`: Deployments
    # ready, RollingUpdate StatefulSets/DaemonSets ready (OnDelete ones skipped), PVCs bound, a
    # LoadBalancer Service has its address (helm `pkg/kube/ready.go`); hook Jobs run first. Per chart:
    "helm": Typical(60, "helm --wait, observed ~1 min for a small chart"),
    "helm:aws-load-balancer-controller": Typical(60, "2 replicas + webhook, observed"),
    "helm:karpenter": Typical(60, "controller Deployment, observed"),
    "helm:cert-manager": Typical(90, "3 Deployments + webhook, observed 1-2 min"),
    "helm:base": Typical(10, "istio-base: CRDs and a ServiceAccount only"),
    "helm:istiod": Typical(60, "istiod Deployment, observed"),
    "helm:cni": Typical(45, "istio-cni DaemonSet on every node, observed"),
    "helm:kube-prometheus-stack": Typical(
        150,
        "CRDs, admission-webhook hook Jobs, operator, Grafana, kube-state-metrics, node-exporter; observed. "
        "Prometheus and Alertmanager come after, from the operator, and are not awaited",
    ),
    "helm:loki": Typical(150, "StatefulSets with volumes, observed 2-3 min"),
    "helm:tempo": Typical(90, "StatefulSet with a volume, observed"),
    "helm:alloy": Typical(60, "DaemonSet on every node, observed"),
    "helm:vault": Typical(
        30,
        "StatefulSet with updateStrategy OnDelete (chart default): helm --wait does not wait for its pods "
        "(helm pkg/kube/ready.go), which stay unready while sealed anyway",
    ),
    "helm:vault-secrets-operator": Typical(45, "operator Deployment, observed"),
    "helm:cloudnative-pg": Typical(45, "operator Deployment + webhook, observed"),
    "helm:ingress": Typical(
        120, "Kong; a LoadBalancer proxy waits for its address (NLB via the LB controller)"
    ),
    "helm:kong": Typical(120, "Kong; a LoadBalancer proxy waits for its address"),
    "kubernetes:yaml/v2:ConfigFile": Typical(
        60, "operator manifest; each object awaited like a standalone one"
    ),
    # pulumi-kubernetes awaits these kinds until ready (registry pages, "waits until ... ready");
    # any other object is one API call, and a custom resource is not awaited by default.
    "kubernetes:apps/v1:Deployment": Typical(60, "K8S: until the rollout's pods are ready; observed"),
    "kubernetes:apps/v1:StatefulSet": Typical(90, "K8S: until all replicas are ready; observed"),
    "kubernetes:apps/v1:DaemonSet": Typical(45, "K8S: until scheduled pods are ready; observed"),
    "kubernetes:batch/v1:Job": Typical(60, "K8S: until the Job completes; observed"),
    "kubernetes:core/v1:Service": Typical(15, "K8S: until it has endpoints (ClusterIP)"),
    "kubernetes:core/v1:Service#lb": Typical(120, "K8S: until the load balancer has an address"),
    "kubernetes:networking.k8s.io/v1:Ingress": Typical(30, "K8S: until the controller publishes its status"),
    "kubernetes:postgresql.cnpg.io/v1:Cluster": Typical(
        5, "not awaited (custom resource); the operator builds the instances afterwards"
    ),
    # --- fallbacks by package
    "aws": Typical(3, "one API call"),
    "kubernetes": Typical(2, "one API call"),
    "random": Typical(0, "computed locally by the provider"),
    "tls": Typical(0, "computed locally by the provider"),
    "provider": Typical(0, "provider configuration, no cloud call"),
    "component": Typical(0, "a component registers at once: no provider call"),
}


def typical_key(resource: Resource) -> str:
    """The `TYPICAL` row a resource's create time comes from."""
    type_ = str(resource["type"])
    inputs = resource.get("inputs") or {}
    if type_.startswith(PROVIDER_PREFIX):
        return "provider"
    if type_ == "kubernetes:helm.sh/v3:Release":
        return f"helm:{_chart(resource)}" if f"helm:{_chart(resource)}" in TYPICAL else "helm"
    variant = {
        "aws:rds/instance:Instance": "#multi-az" if inputs.get("multiAz") else "",
        "aws:mq/broker:Broker": "#cluster" if "MULTI_AZ" in str(inputs.get("deploymentMode") or "") else "",
        "aws:ec2/vpcEndpoint:VpcEndpoint": "#gateway" if inputs.get("vpcEndpointType") == "Gateway" else "",
        "kubernetes:core/v1:Service": "#lb" if _service_type(inputs) == "LoadBalancer" else "",
    }.get(type_, "")
    if type_ + variant in TYPICAL:
        return type_ + variant
    if not resource["custom"]:
        return "component"
    package = type_.split(":", 1)[0]
    return package if package in TYPICAL else "aws"


def typical_seconds(resource: Resource) -> int:
    return TYPICAL[typical_key(resource)].seconds


# ------------------------------------------------------------------------------------- the graph


def _provider_packages_of(resources: Iterable[Resource]) -> set[str]:
    return {
        r["type"].removeprefix(PROVIDER_PREFIX) for r in resources if r["type"].startswith(PROVIDER_PREFIX)
    }


def _is_remote(resource: Resource, provider_packages: set[str]) -> bool:
    """A multi-language component (e.g. kubernetes:yaml/v2:ConfigFile): not custom, but served by a
    provider plugin, so one step whose registration returns once its children exist."""
    if resource["custom"] or resource["type"] == STACK_TYPE:
        return False
    package = resource["type"].split(":", 1)[0]
    return bool(resource.get("provider")) or package in provider_packages


def recorded_edges(resource: Resource) -> tuple[list[str], str | None, str | None]:
    """(dependencies incl. property dependencies, provider URN, parent URN) as recorded."""
    deps = list(resource.get("dependencies") or [])
    for urns in (resource.get("propertyDependencies") or {}).values():
        deps.extend(urns)
    return list(dict.fromkeys(deps)), provider_urn(resource.get("provider")), resource.get("parent")


def nodes_of(plan: Plan) -> list[waits.Node]:
    """The plan's resources as the shared ordering model (policies/waits.py) sees them."""
    packages = _provider_packages_of(plan.resources)
    nodes = []
    for resource in plan.resources:
        deps, provider, parent = recorded_edges(resource)
        custom = bool(resource["custom"])
        step = custom or _is_remote(resource, packages)
        nodes.append(
            waits.Node(resource["urn"], resource["type"], custom, step, tuple(deps), provider, parent)
        )
    return nodes


@dataclass(frozen=True)
class Graph:
    """Create steps (custom resources, providers, remote components) and what each waits for."""

    resources: Mapping[str, Resource]  # every resource of the plan, by URN
    steps: tuple[str, ...]  # the steps, in plan order
    prereqs: Mapping[str, frozenset[str]]  # step -> steps it waits for (directly)

    def name(self, urn: str) -> str:
        return name_of(urn)

    def type(self, urn: str) -> str:
        return str(self.resources[urn]["type"])


def build_graph(plan: Plan) -> Graph:
    """Fold components away: each step waits for the steps behind its dependencies, its provider and
    its parent (a component parent stands for that component's own prerequisites). The model is
    `policies.waits.create_prereqs`, which the lifecycle policies use too."""
    nodes = nodes_of(plan)
    return Graph(plan.by_urn(), tuple(n.urn for n in nodes if n.step), waits.create_prereqs(nodes))


def _layers(nodes: Iterable[str], prereqs: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Longest-path layering: layer k holds the nodes whose every prerequisite is in layers < k.
    Kahn's algorithm; raises ValueError on a cycle (the engine would refuse the program too)."""
    order = list(nodes)
    index = {u: i for i, u in enumerate(order)}
    dependents: dict[str, list[str]] = defaultdict(list)
    missing = dict.fromkeys(order, 0)
    for urn in order:
        for pre in set(prereqs.get(urn, ())):
            if pre in index:
                dependents[pre].append(urn)
                missing[urn] += 1
    layer_of: dict[str, int] = {}
    current = [u for u in order if missing[u] == 0]
    layers: list[list[str]] = []
    while current:
        layers.append(sorted(current, key=index.__getitem__))
        upcoming: list[str] = []
        for urn in current:
            layer_of[urn] = len(layers) - 1
            for dependent in dependents[urn]:
                missing[dependent] -= 1
                if missing[dependent] == 0:
                    upcoming.append(dependent)
        current = upcoming
    if len(layer_of) != len(order):
        stuck = [u for u in order if u not in layer_of]
        raise ValueError(f"dependency cycle among {len(stuck)} resources, e.g. {stuck[0]}")
    return layers


def create_waves(graph: Graph) -> list[list[str]]:
    """Wave k: the steps whose every prerequisite is created in waves < k."""
    return _layers(graph.steps, graph.prereqs)


# --------------------------------------------------------------------------- estimate, critical path


@dataclass(frozen=True)
class Schedule:
    start: Mapping[str, int]
    finish: Mapping[str, int]
    critical_path: tuple[str, ...]  # first step to last

    @property
    def total(self) -> int:
        return max(self.finish.values(), default=0)


def schedule(graph: Graph, seconds: Callable[[Resource], int] = typical_seconds) -> Schedule:
    """Earliest start of every step with unbounded parallelism, and the longest (critical) path."""
    start: dict[str, int] = {}
    finish: dict[str, int] = {}
    via: dict[str, str | None] = {}
    for wave in create_waves(graph):
        for urn in wave:
            before = max(graph.prereqs[urn], key=lambda p: (finish[p], p), default=None)
            start[urn] = finish[before] if before else 0
            finish[urn] = start[urn] + seconds(graph.resources[urn])
            via[urn] = before
    path: list[str] = []
    last = max(finish, key=lambda u: (finish[u], u), default=None)
    while last is not None:
        path.append(last)
        last = via[last]
    return Schedule(start, finish, tuple(reversed(path)))


# -------------------------------------------------------------------------------------------- destroy


def destroy_prereqs(plan: Plan) -> dict[str, set[str]]:
    """The engine's `DependenciesOf` for every resource (components and the stack included): what
    must still exist while it is deleted, i.e. what is deleted after it (`policies.waits`)."""
    return waits.destroy_prereqs(nodes_of(plan))


def destroy_waves(plan: Plan) -> list[list[str]]:
    """`ScheduleDeletes`: antichains peeled from the dependency side, reversed. Wave 0 is deleted
    first; each wave finishes before the next begins."""
    return list(reversed(_layers((r["urn"] for r in plan.resources), destroy_prereqs(plan))))


# ----------------------------------------------------------------- runtime dependencies: finalizers


# Which objects carry which controller finalizer, and which plan resource installs each controller,
# live in policies/controllers.py (with their sources), shared with the lifecycle policies.


def _chart(resource: Resource) -> str:
    return chart_name(resource.get("inputs") or {})


def _service_type(inputs: Mapping[str, Any]) -> str:
    return service_type(inputs)


def finalized_objects(resource: Resource) -> list[FinalizedObject]:
    """The objects this plan resource creates that keep a controller finalizer until the controller
    has cleaned up (the resource itself, or what its Helm chart renders)."""
    return cluster_facts.finalized_objects(resource["type"], resource.get("inputs") or {})


def controller_steps(plan: Plan, controller: Controller) -> list[str]:
    """The plan resources that install `controller`: a Helm release of its chart or its manifest."""
    return [
        r["urn"]
        for r in plan.resources
        if controller.installs(r["type"], r.get("inputs") or {}, name_of(r["urn"]))
    ]


# ------------------------------------------------------------------------------------------ findings

# A retained resource's prerequisites that are still deleted after it, and what then happens.
RETAIN_HAZARDS: dict[str, str] = {
    "aws:kms/key:Key": "scheduled for deletion under the live resource",
    "aws:rds/subnetGroup:SubnetGroup": "refused: in use",
    "aws:ec2/securityGroup:SecurityGroup": "refused: DependencyViolation, its ENIs use it",
    "aws:ec2/subnet:Subnet": "refused: DependencyViolation, its ENIs are in it",
    "aws:rds/parameterGroup:ParameterGroup": "refused: in use",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": "refused: in use",
    "aws:mq/configuration:Configuration": "the broker keeps a configuration that no longer exists",
}


@dataclass(frozen=True)
class Finding:
    kind: Literal["finalizer", "retained"]
    urn: str  # the plan resource the finding is about
    message: str
    needs: str = ""  # finalizer: the controller's URN, the dependency that fixes it


@dataclass(frozen=True)
class Protected:
    urn: str
    destroy_wave: int
    retained_note: str  # what would happen after `pulumi state unprotect`, if it is also retained


@dataclass(frozen=True)
class DestroyReport:
    waves: list[list[str]]
    findings: list[Finding]
    protected: list[Protected]

    @property
    def stops_at(self) -> int | None:
        """The destroy wave whose protected resource fails and ends `pulumi destroy`."""
        return min((p.destroy_wave for p in self.protected), default=None)


def destroy_report(plan: Plan) -> DestroyReport:
    waves = destroy_waves(plan)
    wave_of = {u: i for i, wave in enumerate(waves) for u in wave}
    before = destroy_prereqs(plan)  # deleted after the resource
    by_urn = plan.by_urn()
    findings: list[Finding] = []
    for resource in plan.resources:
        objects = finalized_objects(resource)
        if not objects:
            continue
        outlives = closure(before, resource["urn"])
        for obj in objects:
            steps = controller_steps(plan, CONTROLLERS[obj.controller])
            if not steps or any(s in outlives for s in steps):
                continue  # not managed by this stack, or deleted after the object: fine
            controller = steps[0]
            mine, theirs = wave_of[resource["urn"]], wave_of[controller]
            today = (
                "the controller goes in the same or an earlier antichain: destroy hangs"
                if theirs <= mine
                else "the order holds by depth alone, which a new edge, `--target` or `--exclude` can flip"
            )
            findings.append(
                Finding(
                    "finalizer",
                    resource["urn"],
                    f"{obj.label} ({name_of(resource['urn'])}) keeps finalizer {obj.finalizer} until "
                    f"{obj.controller} has cleaned up, but {name_of(controller)} is not among its "
                    "prerequisites, so nothing orders the two: if the controller goes first, the object "
                    "hangs in Terminating until the delete times out and its cloud resource leaks. "
                    f"Today's antichains delete it in destroy wave {mine} and the controller in wave "
                    f"{theirs}: {today}. Fix: make {name_of(resource['urn'])} depend on "
                    f"{name_of(controller)}. [{obj.source}]",
                    needs=controller,
                )
            )
    protected: list[Protected] = []
    for resource in plan.resources:
        hazards = sorted(
            {
                f"{by_urn[p]['type'].rsplit(':', 1)[-1]} {name_of(p)} ({RETAIN_HAZARDS[by_urn[p]['type']]})"
                for p in before[resource["urn"]]
                # a protected prerequisite is not reached: destroy fails on it first
                if by_urn[p]["type"] in RETAIN_HAZARDS and not by_urn[p].get("protect")
            }
        )
        if resource.get("protect"):
            note = "; ".join(hazards) if resource.get("retainOnDelete") else ""
            protected.append(Protected(resource["urn"], wave_of[resource["urn"]], note))
        elif resource.get("retainOnDelete") and hazards:
            findings.append(
                Finding(
                    "retained",
                    resource["urn"],
                    f"{name_of(resource['urn'])} is retainOnDelete (not protected), but destroy still "
                    f"deletes what it uses: {'; '.join(hazards)}.",
                )
            )
    return DestroyReport(waves, findings, protected)


# ------------------------------------------------------------------------------------------- summary


def layer_of(plan: Plan) -> dict[str, str]:
    """Each resource's layer: its outermost component below the program's root component (`cluster`,
    `mesh`, `data`, ...), so a summary can collapse components. Resources right under the root:
    "(root)"."""
    by_urn = plan.by_urn()
    roots = {r["urn"] for r in plan.resources if r["type"] == STACK_TYPE}
    tops = [u for u, r in by_urn.items() if not r["custom"] and r.get("parent") in roots]
    if len(tops) == 1:
        roots.add(tops[0])  # one root component (the Platform): its children are the layers
    result: dict[str, str] = {}
    for urn in by_urn:
        node = urn
        while (parent := by_urn[node].get("parent")) in by_urn and parent not in roots:
            node = parent
        result[urn] = "(root)" if node == urn and (urn in roots or by_urn[urn]["custom"]) else name_of(node)
    return result


def short_type(type_: str) -> str:
    """aws:rds/instance:Instance -> rds:Instance; kubernetes:helm.sh/v3:Release -> Release."""
    package, _, rest = type_.partition(":")
    module, _, kind = rest.rpartition(":")
    if package == "kubernetes":
        return kind
    if type_.startswith(PROVIDER_PREFIX):
        return "provider:" + type_.removeprefix(PROVIDER_PREFIX)
    return f"{module.split('/', 1)[0]}:{kind}" if module else type_


def type_counts(graph: Graph, urns: Iterable[str]) -> Counter[str]:
    return Counter(short_type(graph.type(u)) for u in urns)
