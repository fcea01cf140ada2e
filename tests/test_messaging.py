"""The messaging layer built alone under mocks, on both targets, for a small catalog: a publisher
(orders), two consumers (payments, mail) and a service without queues (web).

Checked: the operators' pinned bundles and what waits for them; every object against its schema;
the topology objects against the declarations; TLS; the broker pods' hardening; the network and
quota baselines; Amazon MQ private, clustered, logged and without a customer-managed key; the policy
rules; and the administrator's password, which never appears in the plan in clear.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime import MockResourceArgs

from components.certificates.cert_manager import ACME_ISSUER, CertificatesHandle
from components.core import netpol
from components.mesh.istio import MeshHandle
from components.messaging import amazon_mq as amq
from components.messaging import operators
from components.messaging import rabbitmq as mq
from components.messaging import topology as mt
from components.messaging.amazon_mq import MessagingAws
from components.messaging.broker import BrokerHandle, Messaging, MessagingArgs
from components.secrets import vault_chart as vault_layer
from components.targets.aws.handles import NetworkHandle
from components.targets.aws.kms import Location
from policies import catalog
from policies.model import NotApplicable, Pack, Resource
from policies.rules.kubernetes import POD, STATEFUL_SET
from rampart.config.models import Messaging as MessagingConfig
from rampart.config.models import Queues, ServiceSpec
from rampart.offline import values
from rampart.offline.manifests import to_manifest
from rampart.offline.mocks import PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.runner import capture
from tests.support import pod_rules, schemas
from tests.support.plans import (
    AWS_PROVIDER,
    K8S_PROVIDER,
    TAGS,
    layer_rules,
    name_of,
    network_policies,
    of,
    one,
)
from tests.support.reference import crd_schemas

CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
BROKER = "aws:mq/broker:Broker"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
KMS_KEY = "aws:kms/key:Key"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
LOG_RETENTION_DAYS = 30
ISSUER = "rampart-ca"
# A plaintext stand-in for the generated password: it may appear in the plan only as a secret.
PASSWORD = "broker-admin-password-must-not-leak"
CLIENT_SGS = {"pods": "sg-0pods"}
MANAGEMENT_SGS = {"cluster": "sg-0cluster"}
MESH = MeshHandle(
    root_namespace="istio-system",
    trust_domain="cluster.local",
    injection_labels={"istio-injection": "enabled"},
    ready=[],
)
IMAGE = "ghcr.io/acme/app:1.0.0"
CATALOG = [
    ServiceSpec(name="orders", image=IMAGE, queue=Queues(publishes=["order-created"])),
    ServiceSpec(name="payments", image=IMAGE, queue=Queues(consumes=["order-created"])),
    ServiceSpec(name="mail", image=IMAGE, queue=Queues(consumes=["order-created"])),
    ServiceSpec(name="web", image=IMAGE),
]
TOPOLOGY = mt.topology(CATALOG)
CLIENTS = ["mail", "orders", "payments"]


# -- building the layer ------------------------------------------------------------------------------


class BrokerMocks(PlanMocks):
    """The plan's mocks plus what Amazon MQ reports for a broker (its console and AMQPS endpoint),
    and a record of the Secrets' inputs as the provider would receive them, secrets in clear: the plan
    itself only ever holds them redacted."""

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.secrets: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "kubernetes:core/v1:Secret":
            inputs = dict(args.inputs)
            data: Any = inputs.get("stringData")
            # A secret reaches the provider wrapped: {SIG: SECRET_SIG, "value": ...}.
            inputs["stringData"] = data["value"] if values.is_secret(data) else data
            self.secrets[inputs["metadata"]["name"]] = inputs
        return super().new_resource(args)

    def _aws_shapes(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        if typ == BROKER:
            host = f"{state['id']}.mq.{self.region}.amazonaws.com"
            instance = {
                "consoleUrl": f"https://{host}",
                "endpoints": [f"amqps://{host}:5671"],
                "ipAddress": "10.0.1.5",
            }
            return {"instances": [instance]}
        return super()._aws_shapes(typ, name, state)


def certificates(issuer: str = ISSUER) -> CertificatesHandle:
    return CertificatesHandle(
        cluster_issuer=issuer, internal_issuer=ISSUER, namespace="cert-manager", ready=[]
    )


def network(provider: aws.Provider) -> NetworkHandle:
    """Three private subnets tagged as the network layer tags them (db-private-subnets reads the tier)."""
    opts = pulumi.ResourceOptions(provider=provider)
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.20.0.0/16", opts=opts)
    zones = [f"{REGION}{zone}" for zone in "abc"]
    private = [
        aws.ec2.Subnet(
            f"private-{zone}",
            vpc_id=vpc.id,
            cidr_block=f"10.20.{index}.0/24",
            availability_zone=zone,
            tags={"rampart.dev/tier": "private"},
            opts=opts,
        ).id
        for index, zone in enumerate(zones)
    ]
    return NetworkHandle(
        vpc_id=vpc.id,
        vpc_cidr="10.20.0.0/16",
        availability_zones=zones,
        public_subnet_ids=[],
        private_subnet_ids=private,
        isolated_subnet_ids=[],
    )


def settings(target: str, prod: bool) -> MessagingConfig:
    if target == "aws":
        if prod:
            return MessagingConfig(deployment="cluster", instance_type="mq.m5.large")
        return MessagingConfig(deployment="single_instance", instance_type="mq.t3.micro")
    return MessagingConfig(replicas=3 if prod else 1, storage_gb=20 if prod else 5)


def program_for(
    target: Literal["kubernetes", "aws"],
    prod: bool,
    handles: list[BrokerHandle],
    *,
    services: list[ServiceSpec] = CATALOG,
    issuer: str = ISSUER,
    client_namespaces: list[str] | None = None,
) -> Callable[[], None]:
    def program() -> None:
        opts, target_args = None, None
        if target == "aws":
            provider = aws.Provider("aws", region=REGION, default_tags=aws.ProviderDefaultTagsArgs(tags=TAGS))
            opts = pulumi.ResourceOptions(providers=[provider])
            target_args = MessagingAws(
                network=network(provider),
                amqp_clients=CLIENT_SGS,
                management_clients=MANAGEMENT_SGS,
                account=Location(account_id=ACCOUNT_ID, partition="aws", region=REGION),
                log_retention_days=LOG_RETENTION_DAYS,
                tags={"rampart.dev/owner-team": "platform"},
            )
        layer = Messaging(
            "messaging",
            MessagingArgs(
                environment="prod" if prod else "dev",
                settings=settings(target, prod),
                services=services,
                provider=k8s.Provider("k8s"),
                certificates=certificates(issuer),
                admin_password=pulumi.Output.secret(PASSWORD),
                aws=target_args,
                mesh=MESH if prod else None,
                protect=prod,
                client_namespaces=client_namespaces,
            ),
            opts=opts,
        )
        handles.append(layer.handle)

    return program


def plan_for(program: Callable[[], None], mocks: BrokerMocks | None = None) -> Plan:
    """tests.support.harness.plan_of, with the broker's outputs and the Secrets' record."""
    monitor = CapturingMonitor(mocks or BrokerMocks(region=REGION))
    registrations = capture(program, stack="test", monitor=monitor)
    return Plan.from_registrations("rampart", "test", registrations, {"type": "passphrase"})


@functools.cache
def built_with(target: Literal["kubernetes", "aws"], prod: bool) -> tuple[Plan, BrokerHandle, BrokerMocks]:
    handles: list[BrokerHandle] = []
    mocks = BrokerMocks(region=REGION)
    plan = plan_for(program_for(target, prod, handles), mocks)
    return plan, handles[0], mocks


def built(target: Literal["kubernetes", "aws"], prod: bool) -> tuple[Plan, BrokerHandle]:
    plan, handle, _ = built_with(target, prod)
    return plan, handle


PLANS: dict[str, Callable[[], Plan]] = {
    "kubernetes-dev": lambda: built("kubernetes", False)[0],
    "kubernetes-prod": lambda: built("kubernetes", True)[0],
    "aws-dev": lambda: built("aws", False)[0],
    "aws-prod": lambda: built("aws", True)[0],
}
K8S_PLANS = ["kubernetes-dev", "kubernetes-prod"]
AWS_PLANS = ["aws-dev", "aws-prod"]


def spec_of(plan: Plan, kind: str, name: str) -> dict[str, Any]:
    return one(plan, kind, name)["inputs"]["spec"]  # type: ignore[no-any-return]


def bundle(plan: Plan, which: mq.OperatorBundle) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(CONFIG_FILE) if r["inputs"]["file"] == which.url]
    return found


def views(plan: Plan, props: Literal["inputs", "outputs"] = "inputs") -> list[Resource]:
    """The plan as policies see it: inputs for resource rules, outputs for stack rules."""
    return [
        Resource(
            r["urn"],
            r["type"],
            name_of(r),
            r.get(props) or {},
            protect=bool(r.get("protect")),
            parent=r.get("parent"),
            dependencies=tuple(r.get("dependencies") or ()),
            provider=r.get("provider"),
        )
        for r in plan.resources
        if r["custom"] or r["type"] == CONFIG_FILE
    ]


def findings(plan: Plan, pack: Pack, extra: list[Resource] = ()) -> dict[str, list[str]]:  # type: ignore[assignment]
    """Violations of a pack's rules by the layer's own resources (not the test's VPC): resource rules
    over inputs, stack rules over outputs, as the engine runs them."""
    ours = {r["urn"] for r in plan.descendants(one_component(plan)["urn"])} | {r.urn for r in extra}
    inputs, outputs = [*views(plan), *extra], [*views(plan, "outputs"), *extra]
    found: dict[str, list[str]] = {}
    for rule in layer_rules(pack):
        try:
            if rule.is_stack_rule:
                hits = [(v.message, v.urn) for v in rule.evaluate_stack(outputs)]
            else:
                hits = [(message, r.urn) for r in inputs for message in rule.evaluate(r)]
        except NotApplicable:
            continue
        messages = [message for message, urn in hits if urn in ours]
        if messages:
            found[rule.name] = messages
    return found


def one_component(plan: Plan) -> dict[str, Any]:
    (component,) = plan.of_type("rampart:messaging:Messaging")
    return component


# -- operators ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_both_operators_come_from_their_pinned_release_bundles(plan: str) -> None:
    found = PLANS[plan]()
    urls = sorted(
        r["inputs"]["file"] for r in found.of_type(CONFIG_FILE) if "/config/crd/" not in r["inputs"]["file"]
    )
    assert urls == [
        "https://github.com/rabbitmq/cluster-operator/releases/download/v2.22.3/cluster-operator.yml",
        "https://github.com/rabbitmq/messaging-topology-operator/releases/download/v1.20.1/"
        "messaging-topology-operator-with-certmanager.yaml",
    ]
    for resource in found.of_type(CONFIG_FILE):
        # Remote components register no children under mocks: the pin and the provider are what we see.
        assert resource["provider"].startswith(K8S_PROVIDER)
        assert "latest" not in resource["inputs"]["file"]
    # The topology operator watches RabbitmqClusters: it starts after their CRD exists.
    assert bundle(found, mq.CLUSTER_OPERATOR)["urn"] in bundle(found, mq.TOPOLOGY_OPERATOR)["dependencies"]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_custom_resources_wait_for_the_operator_that_serves_them(plan: str) -> None:
    found = PLANS[plan]()
    cluster_operator = bundle(found, mq.CLUSTER_OPERATOR)["urn"]
    topology_operator = bundle(found, mq.TOPOLOGY_OPERATOR)["urn"]
    rabbitmq = [r for r in found.custom() if r["type"].startswith("kubernetes:rabbitmq.com/")]
    assert rabbitmq
    for resource in rabbitmq:
        wanted = cluster_operator if resource["type"].endswith(":RabbitmqCluster") else topology_operator
        assert wanted in resource["dependencies"], name_of(resource)


def test_the_topology_operator_trusts_the_internal_ca_in_the_cluster_only() -> None:
    plan, _ = built("kubernetes", True)
    copy_ = one(plan, "Certificate", "rabbitmq-ca", "rabbitmq-system")
    assert copy_["inputs"]["spec"]["issuerRef"]["name"] == ISSUER
    (patch,) = of(plan, "DeploymentPatch")
    inputs = patch["inputs"]
    assert inputs["metadata"] == {"name": "messaging-topology-operator", "namespace": "rabbitmq-system"}
    pod = inputs["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "rabbitmq-ca",
            "secret": {"secretName": "rabbitmq-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
        }
    ]
    (container,) = pod["containers"]
    assert container["name"] == "manager"
    assert container["volumeMounts"] == [
        {
            "name": "rabbitmq-ca",
            "mountPath": "/etc/ssl/certs/rampart-ca.crt",
            "subPath": "ca.crt",
            "readOnly": True,
        }
    ]
    assert {copy_["urn"], bundle(plan, mq.TOPOLOGY_OPERATOR)["urn"]} <= set(patch["dependencies"])
    # Topology objects are reconciled only by an operator that can verify the broker.
    assert patch["urn"] in one(plan, "Vhost", "orders")["dependencies"]
    # Amazon MQ's certificate chains to a public root: nothing to mount.
    assert not of(built("aws", True)[0], "DeploymentPatch")


def test_the_trust_patch_is_a_valid_change_of_the_bundles_deployment() -> None:
    """Applied to the Deployment as the bundle declares it, the patch still validates strictly."""
    (patch,) = of(built("kubernetes", True)[0], "DeploymentPatch")
    pod = patch["inputs"]["spec"]["template"]["spec"]
    selector = dict(mq.TOPOLOGY_OPERATOR_PODS)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": patch["inputs"]["metadata"],
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "volumes": pod["volumes"],
                    "containers": [
                        pod["containers"][0]
                        | {"image": "ghcr.io/rabbitmq/messaging-topology-operator:v1.20.1"}
                    ],
                },
            },
        },
    }
    assert schemas.validate_core(deployment, "1.33") == []


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_operators_namespace_gets_the_platform_baseline(plan: str) -> None:
    found = PLANS[plan]()
    (labels_patch,) = of(found, "NamespacePatch")
    labels = labels_patch["inputs"]["metadata"]["labels"]
    assert labels_patch["inputs"]["metadata"]["name"] == "rabbitmq-system"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels.get("istio-injection") == ("disabled" if plan.endswith("prod") else None)
    policies = network_policies(found, "rabbitmq-system")
    expected = {"default-deny", "allow-dns", "allow-kubernetes-api", "allow-webhooks"}
    assert set(policies) == expected | (
        {"allow-topology-to-broker"} if plan.startswith("kubernetes") else set()
    )
    (webhooks,) = policies["allow-webhooks"]["ingress"]
    assert [p["port"] for p in webhooks["ports"]] == [9443]
    hard = one(found, "ResourceQuota", namespace="rabbitmq-system")["inputs"]["spec"]["hard"]
    # One controller of each operator, and one surge pod each.
    assert hard["pods"] == "4"
    assert (hard["requests.cpu"], hard["limits.cpu"]) == ("1000m", "1400m")
    assert (hard["requests.memory"], hard["limits.memory"]) == ("1256Mi", "2024Mi")
    for resource in [*of(found, "NetworkPolicy"), *of(found, "ResourceQuota"), labels_patch]:
        if resource["inputs"]["metadata"].get("namespace", "rabbitmq-system") == "rabbitmq-system":
            # The bundles create the namespace: nothing goes in before it exists.
            assert bundle(found, mq.CLUSTER_OPERATOR)["urn"] in resource["dependencies"]
            assert bundle(found, mq.TOPOLOGY_OPERATOR)["urn"] in resource["dependencies"]


def test_the_topology_operator_reaches_the_broker_management_api_only() -> None:
    policies = network_policies(built("kubernetes", False)[0], "rabbitmq-system")
    (rule,) = policies["allow-topology-to-broker"]["egress"]
    assert policies["allow-topology-to-broker"]["podSelector"] == {"matchLabels": mq.TOPOLOGY_OPERATOR_PODS}
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "messaging"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "rabbitmq"}},
        }
    ]
    assert [p["port"] for p in rule["ports"]] == [15671]


# -- schemas ---------------------------------------------------------------------------------------------

PATCHES = ("kubernetes:apps/v1:DeploymentPatch", "kubernetes:core/v1:NamespacePatch")


def kubernetes_objects(plan: Plan) -> list[dict[str, Any]]:
    # Patches are partial objects (validated as applied, above); ConfigFiles are components.
    return [r for r in plan.custom() if r["type"].startswith("kubernetes:") and r["type"] not in PATCHES]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_custom_resources_validate_against_their_crd_schemas(plan: str) -> None:
    schema_dir = crd_schemas()
    kinds = []
    for resource in kubernetes_objects(PLANS[plan]()):
        manifest = to_manifest(resource)
        if not schemas.is_core(manifest):
            kinds.append(manifest["kind"])
            assert schemas.validate_custom(manifest, schema_dir) == [], name_of(resource)
    topology = ["Binding"] * 3 + ["Exchange"] * 2 + ["Policy"] + ["Queue"] * 3 + ["Vhost"]
    if plan.startswith("kubernetes"):
        expected = ["Certificate", "Certificate", "RabbitmqCluster", "User", *topology]
    else:
        expected = [*topology, *(["ServiceEntry"] if plan.endswith("prod") else [])]
    assert sorted(kinds) == sorted(expected)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_core_objects_validate_strictly(plan: str) -> None:
    found = 0
    for resource in kubernetes_objects(PLANS[plan]()):
        manifest = to_manifest(resource)
        if schemas.is_core(manifest):
            found += 1
            assert schemas.validate_core(manifest, "1.33") == [], name_of(resource)
    assert found >= 10


def test_schema_check_would_catch_a_misspelled_field() -> None:
    manifest = to_manifest(one(built("kubernetes", True)[0], "RabbitmqCluster"))
    manifest["spec"]["tls"]["disableNonTlsListeners"] = True
    assert schemas.validate_custom(manifest, crd_schemas())


# -- the topology ------------------------------------------------------------------------------------------


def reference_of(target: str) -> dict[str, Any]:
    if target == "kubernetes":
        return {"name": "rabbitmq"}
    return {"connectionSecret": {"name": "rabbitmq-connection"}}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_vhosts_exchanges_queues_and_bindings_are_the_declared_topology(plan: str) -> None:
    found, ref = PLANS[plan](), reference_of(plan.split("-", maxsplit=1)[0])
    specs = {
        (r["type"].rsplit(":", 1)[1], r["inputs"]["metadata"]["name"]): r["inputs"]["spec"]
        for r in of(found, "Vhost")
        + of(found, "Exchange")
        + of(found, "Queue")
        + of(found, "Binding")
        + of(found, "Policy")
    }
    for spec in specs.values():
        # One way of naming the broker, never both (the operator refuses that).
        assert spec["rabbitmqClusterReference"] == ref
    assert {name for kind, name in specs if kind == "Vhost"} == set(TOPOLOGY.vhosts) == {"orders"}
    assert specs[("Vhost", "orders")] == {
        "name": "orders",
        "defaultQueueType": "quorum",
        "deletionPolicy": "retain",
        "rabbitmqClusterReference": ref,
    }
    fanout = {
        "vhost": "orders",
        "type": "fanout",
        "durable": True,
        "autoDelete": False,
        "rabbitmqClusterReference": ref,
    }
    assert specs[("Exchange", "orders.order-created")] == fanout | {"name": "order-created"}
    assert specs[("Exchange", "orders.dead-letter")] == fanout | {"name": "dead-letter"}
    quorum = {
        "vhost": "orders",
        "type": "quorum",
        "durable": True,
        "autoDelete": False,
        "deletionPolicy": "retain",
    }
    for consumer in ("payments", "mail"):
        queue = f"order-created.{consumer}"
        assert specs[("Queue", f"orders.{queue}")] == quorum | {
            "name": queue,
            "rabbitmqClusterReference": ref,
        }
        assert specs[("Binding", f"orders.{queue}")] == {
            "vhost": "orders",
            "source": "order-created",
            "destination": queue,
            "destinationType": "queue",
            "rabbitmqClusterReference": ref,
        }
    assert specs[("Queue", "orders.dead-letter")]["name"] == "dead-letter"
    assert specs[("Binding", "orders.dead-letter")]["source"] == "dead-letter"
    policy = specs[("Policy", "orders.subscriptions")]
    assert policy["pattern"] == r"^(order-created\.mail|order-created\.payments)$"
    assert policy["applyTo"] == "queues"
    assert policy["definition"] == mt.subscription_policy()
    # Every consumer's queue is a subscription in the topology, and nothing else is.
    assert {name for kind, name in specs if kind == "Queue"} == {
        f"orders.{sub.queue}" for sub in TOPOLOGY.subscriptions
    } | {"orders.dead-letter"}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_quorum_queue_rule_passes_and_would_catch_a_classic_queue(plan: str) -> None:
    rule = catalog.rule("rabbitmq-quorum-queues")
    queues = [r for r in views(PLANS[plan]()) if r.type.endswith(":Queue")]
    assert len(queues) == 3
    assert [message for q in queues for message in rule.evaluate(q)] == []
    classic = copy.deepcopy(dict(queues[0].props))
    classic["spec"]["type"] = "classic"
    assert rule.evaluate(Resource(queues[0].urn, queues[0].type, queues[0].name, classic))


@pytest.mark.parametrize("target", ["kubernetes", "aws"])
def test_names_come_from_declarations_not_positions(target: Literal["kubernetes", "aws"]) -> None:
    shuffled = [CATALOG[2], CATALOG[3], CATALOG[0], CATALOG[1]]
    plan = plan_for(program_for(target, True, [], services=shuffled))

    def shapes(found: Plan) -> dict[str, Any]:
        return {r["urn"]: r["inputs"] for r in found.custom()}

    assert shapes(plan) == shapes(built(target, True)[0])


@pytest.mark.parametrize("plan", ["kubernetes-prod", "aws-prod"])
def test_vhosts_queues_and_the_broker_are_protected_in_prod(plan: str) -> None:
    found = PLANS[plan]()
    stateful = [
        r
        for r in found.custom()
        if r["type"].endswith((":Vhost", ":Queue", ":RabbitmqCluster")) or r["type"] in (BROKER, KMS_KEY)
    ]
    # Amazon MQ's: the broker and the key of its logs; in-cluster: the RabbitmqCluster.
    assert len(stateful) == (6 if plan == "aws-prod" else 5)
    for resource in stateful:
        assert resource["protect"] is True, name_of(resource)
        assert resource.get("retainOnDelete") is True, name_of(resource)
    # Objects that hold no messages stay freely replaceable.
    assert all(not r["protect"] for r in of(found, "Exchange") + of(found, "Binding"))
    dev = PLANS[plan.replace("prod", "dev")]()
    assert not [r for r in dev.custom() if r["protect"]]
    rules = [catalog.rule("stateful-protected"), catalog.rule("in-cluster-stateful-protected")]
    assert [message for rule in rules for r in views(found) for message in rule.evaluate(r)] == []
    assert len([message for rule in rules for r in views(dev) for message in rule.evaluate(r)]) == len(
        stateful
    )


# -- the topology operator's CRDs outlive its bundle and the objects ---------------------------------------


def topology_crds(plan: Plan) -> list[dict[str, Any]]:
    return [r for r in plan.of_type(CONFIG_FILE) if "/config/crd/bases/" in r["inputs"]["file"]]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_topology_crds_are_managed_apart_from_the_bundle_and_outlive_the_objects(plan: str) -> None:
    """Deleting a CRD deletes every object of its kind (https://kubernetes.io/docs/tasks/extend-kubernetes/
    custom-resources/custom-resource-definitions/#delete-a-customresourcedefinition): the retained Vhosts
    and Queues are safe only if no bundle delete or replacement can take their CRDs with it."""
    found = PLANS[plan]()
    crds = topology_crds(found)
    pinned = mq.TOPOLOGY_OPERATOR.version
    assert sorted(r["inputs"]["file"] for r in crds) == sorted(
        f"https://raw.githubusercontent.com/rabbitmq/messaging-topology-operator/{pinned}/config/crd/bases/"
        f"rabbitmq.com_{plural}.yaml"
        for plural in mq.TOPOLOGY_CRD_PLURALS
    )
    urns = {r["urn"] for r in crds}
    for crd in crds:
        # Not protected (a CRD holds no data, a destroy must pass it); its CRD children are retained
        # per environment by a transform (test_the_crd_transforms_retain_only_crds).
        assert crd["protect"] is False, name_of(crd)
        assert crd["provider"].startswith(K8S_PROVIDER)
    # The bundle comes after them (so destroy removes the operator first) and keeps its own copies.
    topology_operator = bundle(found, mq.TOPOLOGY_OPERATOR)
    assert urns <= set(topology_operator["dependencies"])
    # Every topology object waits for the CRDs (create), directly or through the bundle, and so is
    # deleted before them (destroy).
    by_urn = {r["urn"]: r for r in found.resources}

    def waits_for(urn: str) -> set[str]:
        seen: set[str] = set()
        todo = list(by_urn[urn].get("dependencies") or [])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo += by_urn[dep].get("dependencies") or [] if dep in by_urn else []
        return seen

    for resource in found.custom():
        if resource["type"].startswith("kubernetes:rabbitmq.com/") and not resource["type"].endswith(
            ":RabbitmqCluster"
        ):
            assert urns <= waits_for(resource["urn"]), name_of(resource)


def _transformed(transform: Any, type_: str) -> pulumi.ResourceOptions | None:
    args = pulumi.ResourceTransformArgs(
        custom=True, type_=type_, name="x", props={}, opts=pulumi.ResourceOptions()
    )
    result = transform(args)
    return None if result is None else result.opts


def test_the_crd_transforms_retain_only_crds() -> None:
    crd = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    # The bundle never deletes a CRD it shipped, in any environment.
    kept = _transformed(operators.bundle_keeps_its_crds, crd)
    assert kept is not None and kept.retain_on_delete is True
    assert _transformed(operators.bundle_keeps_its_crds, "kubernetes:apps/v1:Deployment") is None
    # The managed CRDs are retained where the environment keeps its stateful resources.
    for retain in (True, False):
        opts = _transformed(operators.keep_crds(retain=retain), crd)
        assert opts is not None and opts.retain_on_delete is retain and not opts.protect
    assert _transformed(operators.keep_crds(retain=True), "kubernetes:core/v1:Namespace") is None


# -- the in-cluster broker ---------------------------------------------------------------------------------


def test_the_cluster_serves_tls_only_with_an_internal_ca_certificate() -> None:
    # Public names come from ACME here: the broker's in-cluster names still need the internal CA.
    plan = plan_for(program_for("kubernetes", True, [], issuer=ACME_ISSUER))
    cluster = spec_of(plan, "RabbitmqCluster", "rabbitmq")
    assert cluster["tls"] == {"secretName": "rabbitmq-tls", "disableNonTLSListeners": True}
    tls = one(plan, "Certificate", "rabbitmq-tls", "messaging")
    assert tls["inputs"]["spec"]["secretName"] == "rabbitmq-tls"
    assert tls["inputs"]["spec"]["issuerRef"]["name"] == ISSUER
    assert tls["urn"] in one(plan, "RabbitmqCluster")["dependencies"]
    names = tls["inputs"]["spec"]["dnsNames"]
    # The client Service, and every node through the headless Service (peers verify each other's names).
    assert {"rabbitmq.messaging.svc", "*.rabbitmq-nodes.messaging"} <= set(names)
    assert mq.MANAGEMENT_URI.removeprefix("https://").removesuffix(":15671") in names
    # TLS 1.2 and 1.3 only, on AMQPS and the management API.
    assert sorted(cluster["rabbitmq"]["additionalConfig"].splitlines()) == [
        "management.ssl.versions.1 = tlsv1.3",
        "management.ssl.versions.2 = tlsv1.2",
        "ssl_options.versions.1 = tlsv1.3",
        "ssl_options.versions.2 = tlsv1.2",
    ]
    rule = catalog.rule("rabbitmq-tls-only")
    (view,) = [r for r in views(plan) if r.type.endswith(":RabbitmqCluster")]
    assert rule.evaluate(view) == []


@pytest.mark.parametrize("prod", [False, True])
def test_the_cluster_is_pinned_persistent_and_spread(prod: bool) -> None:
    plan, _ = built("kubernetes", prod)
    cluster = one(plan, "RabbitmqCluster", "rabbitmq")
    spec = cluster["inputs"]["spec"]
    assert spec["image"] == "rabbitmq:3.13.7-management"
    assert re.fullmatch(r"rabbitmq:\d+\.\d+\.\d+-management", spec["image"])
    assert spec["replicas"] == (3 if prod else 1)
    assert spec["persistence"] == {"storage": "20Gi" if prod else "5Gi"}
    assert spec["resources"] == (mq.LARGE_BROKER if prod else mq.SMALL_BROKER)
    assert spec["resources"]["requests"]["memory"] == spec["resources"]["limits"]["memory"]
    anti = (
        spec.get("affinity", {})
        .get("podAntiAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if prod:
        assert anti == [
            {"labelSelector": {"matchLabels": mq.BROKER_PODS}, "topologyKey": "kubernetes.io/hostname"}
        ]
        budget = one(plan, "PodDisruptionBudget", "rabbitmq")["inputs"]["spec"]
        assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": mq.BROKER_PODS}}
    else:
        assert anti is None and not of(plan, "PodDisruptionBudget")
    # Topology objects from `messaging` only.
    assert cluster["inputs"]["metadata"]["annotations"] == {
        "rabbitmq.com/topology-allowed-namespaces": "messaging"
    }
    replicas = catalog.rule("rabbitmq-cluster-replicas")
    (view,) = [r for r in views(plan) if r.type.endswith(":RabbitmqCluster")]
    assert bool(replicas.evaluate(view, {"minReplicas": 3})) is not prod


def stand_in_broker_pod() -> dict[str, Any]:
    """The broker pod as the pinned operator (v2.22.3, statefulset.go) builds it, with our override
    merged in: what the API server would admit into `messaging`."""
    spec = spec_of(built("kubernetes", True)[0], "RabbitmqCluster", "rabbitmq")
    template = spec["override"]["statefulSet"]["spec"]["template"]
    override = {c["name"]: c for c in template["spec"]["containers"] + template["spec"]["initContainers"]}
    mounts = [
        {"name": "rabbitmq-erlang-cookie", "mountPath": "/var/lib/rabbitmq/"},
        {"name": "persistence", "mountPath": "/var/lib/rabbitmq/mnesia/"},
    ]
    broker = {
        "name": "rabbitmq",
        "image": spec["image"],
        "resources": spec["resources"],
        "securityContext": override["rabbitmq"]["securityContext"],
        "volumeMounts": [
            *mounts,
            {"name": "rabbitmq-tls", "mountPath": "/etc/rabbitmq-tls/", "readOnly": True},
        ],
        "readinessProbe": {"tcpSocket": {"port": "amqps"}},
        "startupProbe": {
            "httpGet": {
                "path": "/api/health/checks/reached-target-cluster-size",
                "port": "management-tls",
                "scheme": "HTTPS",
            }
        },
        "ports": [
            {"name": "amqps", "containerPort": 5671},
            {"name": "management-tls", "containerPort": 15671},
        ],
    }
    setup = {
        "name": "setup-container",
        "image": spec["image"],
        "resources": {
            "requests": {"cpu": "20m", "memory": "64Mi"},
            "limits": {"cpu": "20m", "memory": "64Mi"},
        },
        "securityContext": override["setup-container"]["securityContext"],
        "volumeMounts": mounts,
    }
    volumes = [
        {"name": "rabbitmq-erlang-cookie", "emptyDir": {}},
        {"name": "persistence", "persistentVolumeClaim": {"claimName": "persistence-rabbitmq-server-0"}},
        {"name": "rabbitmq-tls", "projected": {"sources": [{"secret": {"name": "rabbitmq-tls"}}]}},
        {
            "name": "pod-info",
            "downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "metadata.name"}}]},
        },
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "rabbitmq-server-0",
            "namespace": "messaging",
            "labels": template["metadata"]["labels"] | mq.BROKER_PODS,
        },
        "spec": {
            "securityContext": template["spec"]["securityContext"],
            "initContainers": [setup],
            "containers": [broker],
            "volumes": volumes,
            "affinity": spec["affinity"],
        },
    }


def test_broker_pods_meet_the_platform_workload_rules() -> None:
    manifest = stand_in_broker_pod()
    assert schemas.validate_core(manifest, "1.33") == []
    assert pod_rules.violations(manifest) == {}
    resource = Resource("urn:stand-in", POD, "rabbitmq-server-0", manifest)
    assert manifest["spec"]["securityContext"]["runAsUser"] >= 10000
    # Out of the mesh: the broker terminates its own TLS and authenticates clients by password.
    assert manifest["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    # No liveness probe, on purpose (the operator's default, after RabbitMQ's advice: restarting a node
    # that is syncing or paused in a partition does harm). The probes rule says that and nothing else.
    assert catalog.rule("container-probes").evaluate(resource) == [
        "rabbitmq-server-0: container 'rabbitmq' has no livenessProbe"
    ]


def test_stand_in_pod_would_fail_without_the_override() -> None:
    manifest = stand_in_broker_pod()
    manifest["spec"]["securityContext"] = {"runAsUser": 999, "fsGroup": 0}
    manifest["spec"]["containers"][0]["securityContext"] = {}
    resource = Resource("urn:stand-in", POD, "rabbitmq-server-0", manifest)
    assert catalog.rule("container-non-root").evaluate(resource)
    assert catalog.rule("container-read-only-root-fs").evaluate(resource)


@pytest.mark.parametrize("prod", [False, True])
def test_the_broker_namespace_is_restricted_and_sized_for_the_cluster(prod: bool) -> None:
    plan, _ = built("kubernetes", prod)
    namespace = one(plan, "Namespace", "messaging")["inputs"]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.get("istio-injection") == ("disabled" if prod else None)
    hard = one(plan, "ResourceQuota", namespace="messaging")["inputs"]["spec"]["hard"]
    replicas = 3 if prod else 1
    resources = mq.LARGE_BROKER if prod else mq.SMALL_BROKER
    assert hard["pods"] == hard["persistentvolumeclaims"] == str(replicas)
    assert hard["requests.storage"] == f"{replicas * (20 if prod else 5)}Gi"
    assert hard["limits.memory"] == f"{replicas * (2048 if prod else 1024)}Mi"
    assert hard["requests.cpu"] == f"{replicas * (1000 if prod else 250)}m"
    assert (hard["services.loadbalancers"], hard["services.nodeports"]) == ("0", "0")
    limits = one(plan, "LimitRange", namespace="messaging")["inputs"]["spec"]["limits"][0]
    assert limits["default"] == resources["limits"]
    # The quota admits the broker: every pod's requests and limits fit.
    assert one(plan, "RabbitmqCluster")["inputs"]["spec"]["resources"] == resources


def test_broker_network_admits_only_clients_the_operator_vault_and_peers() -> None:
    policies = network_policies(built("kubernetes", True)[0], "messaging")
    assert set(policies) == {
        "default-deny",
        "allow-dns",
        "allow-amqps",
        "allow-management",
        "allow-cluster-peers",
        "allow-kubernetes-api",
    }
    (amqps,) = policies["allow-amqps"]["ingress"]
    assert [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in amqps["from"]
    ] == CLIENTS
    assert all("podSelector" not in peer for peer in amqps["from"])
    assert [p["port"] for p in amqps["ports"]] == [5671]
    (management,) = policies["allow-management"]["ingress"]
    assert management["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "rabbitmq-system"}},
            "podSelector": {"matchLabels": mq.TOPOLOGY_OPERATOR_PODS},
        },
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vault"}},
            "podSelector": {"matchLabels": vault_layer.SERVER_PODS},
        },
    ]
    assert [p["port"] for p in management["ports"]] == [15671]
    peers = policies["allow-cluster-peers"]
    broker = [{"podSelector": {"matchLabels": mq.BROKER_PODS}}]
    assert peers["ingress"][0]["from"] == broker and peers["egress"][0]["to"] == broker
    assert [(p["port"], p.get("endPort")) for p in peers["ingress"][0]["ports"]] == [
        (4369, None),
        (25672, None),
        (35672, 35682),
    ]
    (api,) = policies["allow-kubernetes-api"]["egress"]
    assert [p["port"] for p in api["ports"]] == [443, 6443]
    assert "0.0.0.0/0" not in json.dumps(policies)
    # Every allow selects the broker pods; nothing else runs here.
    for name, policy in policies.items():
        if name not in ("default-deny", "allow-dns"):
            assert policy["podSelector"] == {"matchLabels": mq.BROKER_PODS}, name


def test_explicit_client_namespaces_replace_the_service_names() -> None:
    plan = plan_for(program_for("kubernetes", False, [], client_namespaces=["team-b", "team-a", "team-b"]))
    (amqps,) = network_policies(plan, "messaging")["allow-amqps"]["ingress"]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in amqps["from"]] == [
        "team-a",
        "team-b",
    ]


def test_the_administrator_is_imported_from_a_labelled_secret() -> None:
    plan, _ = built("kubernetes", True)
    credentials = one(plan, "Secret", "rabbitmq-admin", "messaging")["inputs"]
    assert credentials["metadata"]["labels"]["rabbitmq.com/topology-operator"] == "true"
    # In the plan the whole map is a secret; the provider receives the keys the operator reads.
    assert values.is_secret(credentials["stringData"])
    sent = built_with("kubernetes", True)[2].secrets["rabbitmq-admin"]["stringData"]
    assert sent == {"username": "rampart-admin", "password": PASSWORD}
    user = one(plan, "User", "rampart-admin", "messaging")
    assert user["inputs"]["spec"] == {
        "tags": ["administrator"],
        "importCredentialsSecret": {"name": "rabbitmq-admin"},
        "rabbitmqClusterReference": {"name": "rabbitmq"},
    }
    assert one(plan, "Secret", "rabbitmq-admin")["urn"] in user["dependencies"]
    assert one(plan, "RabbitmqCluster")["urn"] in user["dependencies"]


# -- Amazon MQ -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prod", [False, True])
def test_amazon_mq_is_private_logged_and_upgraded_by_aws(prod: bool) -> None:
    plan, _ = built("aws", prod)
    (broker,) = plan.of_type(BROKER)
    inputs = broker["inputs"]
    assert (inputs["engineType"], inputs["engineVersion"]) == ("RabbitMQ", "3.13")
    assert inputs["publiclyAccessible"] is False
    assert inputs["logs"] == {"general": True}
    assert inputs["autoMinorVersionUpgrade"] is True
    assert inputs["maintenanceWindowStartTime"] == {
        "dayOfWeek": "SUNDAY",
        "timeOfDay": "06:00",
        "timeZone": "UTC",
    }
    assert inputs["authenticationStrategy"] == "simple"
    # No customer-managed key: Amazon MQ does not take one for RabbitMQ and would reject the broker.
    assert "encryptionOptions" not in inputs
    subnets = {name_of(s): s["outputs"]["id"] for s in plan.of_type("aws:ec2/subnet:Subnet")}
    if prod:
        assert inputs["deploymentMode"] == "CLUSTER_MULTI_AZ" and inputs["hostInstanceType"] == "mq.m5.large"
        assert inputs["subnetIds"] == [subnets[f"private-{REGION}{zone}"] for zone in "abc"]
    else:
        assert inputs["deploymentMode"] == "SINGLE_INSTANCE" and inputs["hostInstanceType"] == "mq.t3.micro"
        assert inputs["subnetIds"] == [subnets[f"private-{REGION}a"]]
    (group,) = plan.of_type(SECURITY_GROUP)
    assert inputs["securityGroups"] == [group["outputs"]["id"]]
    (user,) = inputs["users"]
    assert user["username"] == "rampart-admin" and values.is_secret(user["password"])
    assert inputs["tags"] == {
        "rampart.dev/owner-team": "platform",
        "Name": f"rampart-{'prod' if prod else 'dev'}-broker",
        "rampart.dev/layer": "messaging",
    }
    assert broker["provider"].startswith(AWS_PROVIDER)


def test_the_broker_security_group_admits_named_clients_on_two_ports() -> None:
    plan, _ = built("aws", True)
    (group,) = plan.of_type(SECURITY_GROUP)
    # Separate rules, not inline ones: the group names no client group, so it (and the broker) need not
    # wait for the clients' groups (the EKS cluster's among them).
    assert "ingress" not in group["inputs"]
    rules = [r["inputs"] for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert sorted((r["fromPort"], r["toPort"], r["referencedSecurityGroupId"]) for r in rules) == [
        (443, 443, "sg-0cluster"),
        (5671, 5671, "sg-0pods"),
    ]
    assert all(r["securityGroupId"] == group["outputs"]["id"] for r in rules)
    assert all(not r.get("cidrIpv4") and not r.get("cidrIpv6") for r in rules)
    assert group["inputs"]["egress"] == []
    egress = {
        name_of(r): r["inputs"]
        for r in plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    }
    assert {name: (e["securityGroupId"], e["fromPort"]) for name, e in egress.items()} == {
        "messaging-pods-5671-egress": ("sg-0pods", 5671),
        "messaging-cluster-443-egress": ("sg-0cluster", 443),
    }
    assert all(e["referencedSecurityGroupId"] == group["outputs"]["id"] for e in egress.values())


@pytest.mark.parametrize("plan", AWS_PLANS)
def test_the_aws_rules_pass(plan: str) -> None:
    found = PLANS[plan]()
    inputs, outputs = views(found), views(found, "outputs")
    for name in ("mq-broker-not-public", "mq-broker-logs", "mq-broker-encrypted", "sg-no-public-ingress"):
        rule = catalog.rule(name)
        checked = [r for r in inputs if r.type in rule.types]
        assert checked, name
        assert [message for r in checked for message in rule.evaluate(r)] == [], name
    for name in ("aws-resources-tagged", "db-private-subnets", "explicit-providers"):
        assert [v.message for v in catalog.rule(name).evaluate_stack(outputs)] == [], name
    multi_az = [
        message
        for r in inputs
        for message in catalog.rule("mq-broker-multi-az").evaluate(r)
        if r.type == BROKER
    ]
    assert bool(multi_az) is (plan == "aws-dev")


def test_the_encryption_rule_would_catch_a_customer_managed_key_or_a_public_broker() -> None:
    (view,) = [r for r in views(built("aws", True)[0]) if r.type == BROKER]
    rule = catalog.rule("mq-broker-encrypted")
    for change in (
        {
            "encryptionOptions": {
                "useAwsOwnedKey": False,
                "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/x",
            }
        },
        {"publiclyAccessible": True},
    ):
        assert rule.evaluate(Resource(view.urn, view.type, view.name, dict(view.props) | change)), change


def test_the_topology_operator_reaches_amazon_mq_through_a_labelled_connection_secret() -> None:
    plan, _, mocks = built_with("aws", True)
    connection = one(plan, "Secret", "rabbitmq-connection", "messaging")
    assert connection["inputs"]["metadata"]["labels"]["rabbitmq.com/topology-operator"] == "true"
    assert values.is_secret(connection["inputs"]["stringData"])
    (broker,) = plan.of_type(BROKER)
    console = broker["outputs"]["instances"][0]["consoleUrl"]
    assert mocks.secrets["rabbitmq-connection"]["stringData"] == {
        "uri": console,
        "username": "rampart-admin",
        "password": PASSWORD,
    }
    assert connection["urn"] in one(plan, "Queue", "orders.order-created.payments")["dependencies"]
    # No cluster of our own on aws: nothing runs in `messaging`.
    assert not of(plan, "RabbitmqCluster") and not of(plan, "User")
    hard = one(plan, "ResourceQuota", namespace="messaging")["inputs"]["spec"]["hard"]
    assert (hard["pods"], hard["persistentvolumeclaims"]) == ("0", "0")
    assert set(network_policies(plan, "messaging")) == {"default-deny", "allow-dns"}


def test_services_reach_amazon_mq_through_the_mesh_only_from_client_namespaces() -> None:
    plan, _ = built("aws", True)
    entry = one(plan, "ServiceEntry", "amazon-mq", "messaging")["inputs"]["spec"]
    (broker,) = plan.of_type(BROKER)
    host = broker["outputs"]["instances"][0]["endpoints"][0].removeprefix("amqps://").removesuffix(":5671")
    assert entry == {
        "hosts": [host],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 5671, "name": "amqps", "protocol": "TLS"}],
        "resolution": "DNS",
        "exportTo": CLIENTS,
    }
    assert not of(built("aws", False)[0], "ServiceEntry")


def test_a_cluster_needs_three_private_subnets() -> None:
    network = NetworkHandle(
        vpc_id=pulumi.Output.from_input("vpc-1"),
        vpc_cidr="10.0.0.0/16",
        availability_zones=["a", "b"],
        public_subnet_ids=[],
        private_subnet_ids=[pulumi.Output.from_input("subnet-a"), pulumi.Output.from_input("subnet-b")],
        isolated_subnet_ids=[],
    )
    with pytest.raises(ValueError, match="needs 3 private subnets in distinct zones; the network has 2"):
        amq.broker_subnets(MessagingConfig(deployment="cluster"), network)
    assert len(amq.broker_subnets(MessagingConfig(), network)) == 1


# -- credentials and the handle ----------------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_admin_password_never_appears_in_the_export(plan: str) -> None:
    exported = json.dumps(PLANS[plan]().to_export())
    assert PASSWORD not in exported
    assert "rampart-offline-plan:redacted" in exported


@pytest.mark.parametrize("target", ["kubernetes", "aws"])
def test_the_handle_names_what_vault_and_the_services_need(target: Literal["kubernetes", "aws"]) -> None:
    plan, handle = built(target, True)
    resolved: dict[str, Any] = {}

    def program() -> None:
        fresh = built_fresh(target)
        pulumi.Output.all(
            uri=fresh.management_uri, endpoints=fresh.amqp_endpoints, password=fresh.admin_password
        ).apply(resolved.update)
        is_secret: Any = fresh.admin_password.is_secret()
        pulumi.Output.from_input(is_secret).apply(lambda secret: resolved.update(secret=secret))

    plan_for(program)
    assert (handle.namespace, handle.admin_username, handle.amqp_port) == ("messaging", "rampart-admin", 5671)
    assert resolved["password"] == PASSWORD and resolved["secret"] is True
    if target == "kubernetes":
        assert resolved["uri"] == "https://rabbitmq.messaging.svc:15671"
        assert resolved["endpoints"] == ["amqps://rabbitmq.messaging.svc:5671"]
        assert handle.internal_ca is True
        assert [type(r) for r in handle.ready] == [k8s.apiextensions.CustomResource] * 2
    else:
        (broker,) = plan.of_type(BROKER)
        instance = broker["outputs"]["instances"][0]
        assert resolved["uri"] == instance["consoleUrl"] and resolved["uri"].startswith("https://")
        assert resolved["endpoints"] == instance["endpoints"]
        assert handle.internal_ca is False
        assert [type(r) for r in handle.ready] == [aws.mq.Broker]
    assert handle.vault_broker() == (handle.management_uri, "rampart-admin", handle.admin_password)


def built_fresh(target: Literal["kubernetes", "aws"]) -> BrokerHandle:
    """The layer inside the calling program, so its outputs resolve there."""
    handles: list[BrokerHandle] = []
    program_for(target, True, handles)()
    return handles[0]


def test_a_plain_password_or_a_pointless_broker_is_refused() -> None:
    def args(**changes: Any) -> Callable[[], None]:
        def program() -> None:
            base: dict[str, Any] = {
                "environment": "dev",
                "settings": MessagingConfig(),
                "services": CATALOG,
                "provider": k8s.Provider("k8s"),
                "certificates": certificates(),
                "admin_password": pulumi.Output.secret(PASSWORD),
            }
            Messaging("messaging", MessagingArgs(**(base | changes)))

        return program

    with pytest.raises(TypeError, match="secret Output"):
        plan_for(args(admin_password=PASSWORD))
    with pytest.raises(ValueError, match="no service publishes or consumes"):
        plan_for(args(services=[CATALOG[3]]))
    reserved = [ServiceSpec(name="orders", image=IMAGE, queue=Queues(publishes=["dead-letter"]))]
    with pytest.raises(ValueError, match="'dead-letter' is reserved"):
        plan_for(args(services=reserved))
    with pytest.raises(ValueError, match=r"engine_version '4\.0': no pinned image"):
        plan_for(args(settings=MessagingConfig(engine_version="4.0")))


IN_CLUSTER_BROKER = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "messaging"}},
        "podSelector": {"matchLabels": mq.BROKER_PODS},
    }
]


@pytest.mark.parametrize(
    ("on_aws", "vpc_cidr", "peers"),
    [
        (False, None, IN_CLUSTER_BROKER),
        (True, "10.20.0.0/16", [{"ipBlock": {"cidr": "10.20.0.0/16"}}]),
        (True, None, [{"ipBlock": {"cidr": cidr}} for cidr in netpol.PRIVATE_RANGES]),
    ],
)
def test_service_namespaces_get_an_egress_rule_to_the_broker_only(
    on_aws: bool, vpc_cidr: str | None, peers: list[dict[str, Any]]
) -> None:
    def program() -> None:
        k8s.networking.v1.NetworkPolicy(
            "allow-broker",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-broker", namespace="orders"),
            spec=mq.broker_egress(on_aws, vpc_cidr),
            opts=pulumi.ResourceOptions(provider=k8s.Provider("k8s")),
        )

    (policy,) = of(plan_for(program), "NetworkPolicy")
    assert schemas.validate_core(to_manifest(policy), "1.33") == []
    assert policy["inputs"]["spec"]["policyTypes"] == ["Egress"]
    (rule,) = policy["inputs"]["spec"]["egress"]
    assert [p["port"] for p in rule["ports"]] == [5671]
    assert rule["to"] == peers


# -- the platform's rules over the whole layer ------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_resource_uses_the_explicit_providers(plan: str) -> None:
    for resource in PLANS[plan]().resources:
        if resource["type"].startswith(("kubernetes:", "aws:")):
            expected = {"kubernetes": K8S_PROVIDER, "aws": AWS_PROVIDER}[resource["type"].split(":")[0]]
            assert resource["provider"].startswith(expected), resource["urn"]


def stand_in_workloads(plan: str) -> list[Resource]:
    """The operators' pods and the broker's are not plan objects: a workload per namespace makes
    each one 'run workloads' for the namespace rules."""
    namespaces = ["rabbitmq-system"] + (["messaging"] if plan.startswith("kubernetes") else [])
    return [
        Resource(f"urn:stand-in:{ns}", STATEFUL_SET, ns, {"metadata": {"name": ns, "namespace": ns}})
        for ns in namespaces
    ]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_security_rule_passes(plan: str) -> None:
    assert findings(PLANS[plan](), "security", stand_in_workloads(plan)) == {}


# Dev runs one node, unprotected: advisory there (policies/config), and exactly these findings.
DEV_RELIABILITY = {
    "kubernetes-dev": {"rabbitmq-cluster-replicas", "in-cluster-stateful-protected"},
    "aws-dev": {"mq-broker-multi-az", "stateful-protected", "in-cluster-stateful-protected"},
}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_reliability_rules_pass_in_prod_and_name_only_dev_choices(plan: str) -> None:
    assert set(findings(PLANS[plan](), "reliability")) == DEV_RELIABILITY.get(plan, set())


def test_the_namespace_rules_look_at_the_layers_namespaces() -> None:
    """Without their baselines, both namespaces that run pods would fail the namespace rules."""
    plan = PLANS["kubernetes-prod"]()
    bare = [r for r in views(plan) if r.type.startswith("kubernetes:rabbitmq.com/")]
    for name in ("namespace-default-deny", "namespace-quota"):
        assert len(catalog.rule(name).evaluate_stack([*bare, *stand_in_workloads("kubernetes-prod")])) == 2, (
            name
        )
