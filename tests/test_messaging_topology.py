"""The broker topology and grants derived from random catalogs, judged the way RabbitMQ judges them:
a permission is a regular expression *searched* in a resource name (Erlang re:run, unanchored), so
least privilege is proved by matching every grant against every name in the vhost, not by comparing
strings. Service and queue names are drawn as prefixes of each other (pay, payments, pay-ments) so an
unanchored or unescaped pattern would leak."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.messaging import topology as mt
from components.messaging import topology_objects as objects
from rampart.config.models import Queues, ServiceSpec

IMAGE = "ghcr.io/acme/app:1.0.0"
SERVICE_NAMES = ("pay", "payments", "pay-ments", "orders", "orders2", "a", "ab", "mail")
QUEUE_NAMES = ("q", "q1", "order", "order-created", "created", "order-create", "settled")
REFERENCE = objects.by_cluster_name("rabbitmq")


@st.composite
def catalogs(draw: st.DrawFn) -> list[ServiceSpec]:
    """Unique services; every queue published by exactly one of them (as config loading demands),
    consumed by any of them (the publisher too)."""
    names = draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=6, unique=True))
    queues = draw(st.lists(st.sampled_from(QUEUE_NAMES), max_size=5, unique=True))
    publishes: dict[str, list[str]] = {name: [] for name in names}
    consumes: dict[str, list[str]] = {name: [] for name in names}
    for queue in queues:
        publishes[draw(st.sampled_from(names))].append(queue)
        for consumer in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
            consumes[consumer].append(queue)
    return [
        ServiceSpec(name=name, image=IMAGE, queue=Queues(publishes=publishes[name], consumes=consumes[name]))
        for name in names
    ]


def allowed(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def names_in(topology: mt.Topology, vhost: str) -> set[str]:
    """Everything a permission could be asked about in a vhost: its exchanges, queues, the dead-letter
    pair, RabbitMQ's own amq.* exchanges (the default exchange "" is checked as amq.default) and a
    server-named queue."""
    exchanges = {exchange for v, exchange in topology.exchanges if v == vhost}
    queues = {sub.queue for sub in topology.subscriptions_in(vhost)}
    return (
        exchanges
        | queues
        | {
            mt.DEAD_LETTER,
            "amq.default",
            "amq.direct",
            "amq.fanout",
            "amq.topic",
            "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
        }
    )


@settings(max_examples=200, deadline=None)
@given(catalogs())
def test_grants_are_least_privilege(services: list[ServiceSpec]) -> None:
    topology = mt.topology(services)
    for service in services:
        grants = topology.grants.get(service.name, {})
        # Only services that use queues get anything, and only on vhosts they use.
        own_vhosts = ({service.name} if service.queue.publishes else set()) | {
            sub.vhost for sub in topology.subscriptions if sub.consumer == service.name
        }
        assert set(grants) == own_vhosts
        for vhost in topology.vhosts:
            grant = grants.get(vhost)
            for name in names_in(topology, vhost):
                if grant is None:
                    continue
                # Configure nothing: the platform declares the topology.
                assert not allowed(grant.configure, name), (service.name, vhost, name)
                own_exchange = vhost == service.name and name in service.queue.publishes
                assert allowed(grant.write, name) == own_exchange, (service.name, vhost, name)
                own_queue = any(
                    sub.queue == name and sub.consumer == service.name
                    for sub in topology.subscriptions_in(vhost)
                )
                assert allowed(grant.read, name) == own_queue, (service.name, vhost, name)


@settings(max_examples=200, deadline=None)
@given(catalogs())
def test_every_consumer_gets_its_own_queue_on_the_publishers_exchange(services: list[ServiceSpec]) -> None:
    topology = mt.topology(services)
    publisher = {queue: s.name for s in services for queue in s.queue.publishes}
    expected = {
        (publisher[queue], queue, f"{queue}.{s.name}") for s in services for queue in s.queue.consumes
    }
    assert {(sub.vhost, sub.exchange, sub.queue) for sub in topology.subscriptions} == expected
    assert set(topology.exchanges) == {(publisher[queue], queue) for queue in publisher}
    assert set(topology.vhosts) == {s.name for s in services if s.queue.publishes}


@settings(max_examples=200, deadline=None)
@given(catalogs())
def test_objects_follow_the_topology_and_are_named_by_names(services: list[ServiceSpec]) -> None:
    topology = mt.topology(services)
    created = objects.topology_objects(topology, REFERENCE)
    # Unique Kubernetes names per kind, every dependency created before its dependent.
    assert not [key for key, n in Counter((o.kind, o.name) for o in created).items() if n > 1]
    seen: set[tuple[str, str]] = set()
    for obj in created:
        assert set(obj.after) <= seen, obj
        seen.add((obj.kind, obj.name))
        assert obj.spec["rabbitmqClusterReference"] == REFERENCE
        # Named after the vhost and the RabbitMQ name: never a position in the catalog.
        if obj.kind == "Vhost":
            assert obj.name == obj.spec["name"]
        else:
            named = obj.spec.get("name") or obj.spec["destination"]
            assert obj.name == f"{obj.spec['vhost']}.{named}", obj
    # The same catalog in another order gives the same objects.
    assert objects.topology_objects(mt.topology(list(reversed(services))), REFERENCE) == created
    queues = {(o.spec["vhost"], o.spec["name"]) for o in created if o.kind == "Queue"}
    assert queues == {(s.vhost, s.queue) for s in topology.subscriptions} | {
        (vhost, mt.DEAD_LETTER) for vhost in topology.vhosts
    }


@settings(max_examples=200, deadline=None)
@given(catalogs())
def test_each_vhost_policy_covers_exactly_its_subscription_queues(services: list[ServiceSpec]) -> None:
    topology = mt.topology(services)
    policies = {
        o.spec["vhost"]: o.spec for o in objects.topology_objects(topology, REFERENCE) if o.kind == "Policy"
    }
    assert set(policies) == set(topology.vhosts)
    for vhost, policy in policies.items():
        subscribed = {sub.queue for sub in topology.subscriptions_in(vhost)}
        for name in names_in(topology, vhost):
            # The dead-letter queue itself is not dead-lettered (it would loop).
            assert allowed(policy["pattern"], name) == (name in subscribed), (vhost, name)
        assert policy["definition"]["dead-letter-exchange"] == mt.DEAD_LETTER


def test_reserved_names_are_refused() -> None:
    services = [ServiceSpec(name="orders", image=IMAGE, queue=Queues(publishes=[mt.DEAD_LETTER]))]
    assert mt.reserved_name_problems(services) == [
        "orders: queue 'dead-letter' is reserved for the dead-letter exchange of every vhost"
    ]
    assert mt.reserved_name_problems([ServiceSpec(name="orders", image=IMAGE)]) == []


def test_policy_keeps_messages_rather_than_dropping_them() -> None:
    assert mt.subscription_policy() == {
        "dead-letter-exchange": "dead-letter",
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
        "delivery-limit": mt.DELIVERY_LIMIT,
    }


@pytest.mark.parametrize(
    ("declared", "clients"),
    [
        ({"orders": ([], [])}, []),
        ({"orders": (["q"], []), "mail": ([], ["q"]), "web": ([], [])}, ["mail", "orders"]),
    ],
)
def test_clients_are_the_services_that_use_queues(
    declared: dict[str, tuple[list[str], list[str]]], clients: list[str]
) -> None:
    services = [
        ServiceSpec(name=name, image=IMAGE, queue=Queues(publishes=pub, consumes=con))
        for name, (pub, con) in declared.items()
    ]
    assert mt.clients(services) == clients
