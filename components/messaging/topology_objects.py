"""The broker topology as Messaging Topology Operator objects (rabbitmq.com/v1beta1), the same on
both targets: only the reference to the broker differs (a RabbitmqCluster by name in the cluster,
a connection Secret for Amazon MQ).

Per vhost (one per publishing service): the Vhost, a dead-letter exchange and quorum queue bound to
it, and one policy that sends every subscription queue's rejected or too-often-redelivered messages
there. Per published queue a durable fanout exchange; per consumer a quorum queue bound to it.

Kubernetes object names are the RabbitMQ names, prefixed by their vhost: stable for the life of the
declaration, never derived from positions in the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.messaging import topology as mt

API_VERSION = "rabbitmq.com/v1beta1"
POLICY_NAME = "subscriptions"
# Deleting these objects would drop messages: the operator leaves the vhost or queue in RabbitMQ.
STATEFUL_KINDS = ("Vhost", "Queue")


@dataclass(frozen=True)
class TopologyObject:
    kind: str
    # The Kubernetes object name.
    name: str
    spec: dict[str, Any]
    # (kind, name) of the objects this one is created after.
    after: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ObjectsArgs:
    """Where the objects go and what they wait for."""

    namespace: pulumi.Input[str]
    labels: Mapping[str, str]
    provider: k8s.Provider
    parent: pulumi.Resource
    depends_on: Sequence[pulumi.Resource] = ()
    protect: bool = False


def by_cluster_name(name: str) -> dict[str, Any]:
    """A RabbitmqCluster in the objects' own namespace."""
    return {"name": name}


def by_connection_secret(secret: str) -> dict[str, Any]:
    """A broker the operator does not manage: uri/username/password in a Secret next to the objects."""
    return {"connectionSecret": {"name": secret}}


def object_name(vhost: str, name: str) -> str:
    # Vhosts are service names (DNS labels, no dots): the first segment tells the vhosts apart.
    return f"{vhost}.{name}"


def _durable(vhost: str, name: str, type_: str, reference: Mapping[str, Any]) -> dict[str, Any]:
    """An exchange or queue that survives a broker restart and outlives its last binding or consumer."""
    return {
        "name": name,
        "vhost": vhost,
        "type": type_,
        "durable": True,
        "autoDelete": False,
        "rabbitmqClusterReference": dict(reference),
    }


def _quorum_queue(vhost: str, queue: str, reference: Mapping[str, Any]) -> dict[str, Any]:
    return _durable(vhost, queue, "quorum", reference) | {"deletionPolicy": "retain"}


def _fanout(vhost: str, exchange: str, reference: Mapping[str, Any]) -> dict[str, Any]:
    return _durable(vhost, exchange, "fanout", reference)


def _binding(vhost: str, exchange: str, queue: str, reference: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "vhost": vhost,
        "source": exchange,
        "destination": queue,
        "destinationType": "queue",
        "rabbitmqClusterReference": dict(reference),
    }


def vhost_objects(topology: mt.Topology, vhost: str, reference: Mapping[str, Any]) -> list[TopologyObject]:
    """The vhost itself, its dead-letter exchange and queue, and the policy of its subscriptions."""
    dead_letter = object_name(vhost, mt.DEAD_LETTER)
    return [
        TopologyObject(
            "Vhost",
            vhost,
            {
                "name": vhost,
                "defaultQueueType": "quorum",
                "deletionPolicy": "retain",
                "rabbitmqClusterReference": dict(reference),
            },
        ),
        TopologyObject(
            "Exchange", dead_letter, _fanout(vhost, mt.DEAD_LETTER, reference), (("Vhost", vhost),)
        ),
        TopologyObject(
            "Queue", dead_letter, _quorum_queue(vhost, mt.DEAD_LETTER, reference), (("Vhost", vhost),)
        ),
        TopologyObject(
            "Binding",
            dead_letter,
            _binding(vhost, mt.DEAD_LETTER, mt.DEAD_LETTER, reference),
            (("Exchange", dead_letter), ("Queue", dead_letter)),
        ),
        TopologyObject(
            "Policy",
            object_name(vhost, POLICY_NAME),
            {
                "name": POLICY_NAME,
                "vhost": vhost,
                "pattern": mt.subscription_pattern(topology, vhost),
                "applyTo": "queues",
                "definition": mt.subscription_policy(),
                "rabbitmqClusterReference": dict(reference),
            },
            (("Vhost", vhost),),
        ),
    ]


def topology_objects(topology: mt.Topology, reference: Mapping[str, Any]) -> list[TopologyObject]:
    """Every object of the topology, each after the objects it needs."""
    objects = [obj for vhost in topology.vhosts for obj in vhost_objects(topology, vhost, reference)]
    objects += [
        TopologyObject(
            "Exchange", object_name(vhost, exchange), _fanout(vhost, exchange, reference), (("Vhost", vhost),)
        )
        for vhost, exchange in topology.exchanges
    ]
    for sub in topology.subscriptions:
        name = object_name(sub.vhost, sub.queue)
        objects += [
            TopologyObject(
                "Queue", name, _quorum_queue(sub.vhost, sub.queue, reference), (("Vhost", sub.vhost),)
            ),
            TopologyObject(
                "Binding",
                name,
                _binding(sub.vhost, sub.exchange, sub.queue, reference),
                (("Exchange", object_name(sub.vhost, sub.exchange)), ("Queue", name)),
            ),
        ]
    return objects


def create(
    resource_name: str, objects: Sequence[TopologyObject], args: ObjectsArgs
) -> dict[tuple[str, str], k8s.apiextensions.CustomResource]:
    """Register the objects as custom resources; Vhosts and Queues are protected when asked."""
    created: dict[tuple[str, str], k8s.apiextensions.CustomResource] = {}
    for obj in objects:
        stateful = args.protect and obj.kind in STATEFUL_KINDS
        created[(obj.kind, obj.name)] = k8s.apiextensions.CustomResource(
            f"{resource_name}-{obj.kind.lower()}-{obj.name}",
            api_version=API_VERSION,
            kind=obj.kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=obj.name, namespace=args.namespace, labels=dict(args.labels)
            ),
            spec=obj.spec,
            opts=pulumi.ResourceOptions(
                parent=args.parent,
                provider=args.provider,
                depends_on=[*args.depends_on, *(created[key] for key in obj.after)],
                protect=stateful,
                retain_on_delete=stateful,
            ),
        )
    return created
