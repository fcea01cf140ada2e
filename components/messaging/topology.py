"""The broker topology and each service's permissions, derived from the services' ``queue:``
declarations. Pure data: the messaging layer turns it into RabbitMQ objects, Vault into roles.

- Every publishing service owns a vhost named after it.
- Every queue it publishes is a durable fanout exchange of that name in its vhost.
- Every consumer of that queue gets its own quorum queue ``<queue>.<consumer>`` bound to the
  exchange: each consumer sees every message, and consumers never compete with each other.
- Publishers may write to their exchanges only, consumers read their own queues only; nobody may
  configure (declare or delete) anything: the topology is the platform's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rampart.config import ServiceSpec

NOTHING = "^$"
# Messages rejected or redelivered too often land here, in every vhost, instead of being dropped.
DEAD_LETTER = "dead-letter"
# Redeliveries before a message is dead-lettered (a poison message cannot loop forever).
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Grant:
    """RabbitMQ's configure / write / read regular expressions on one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class Subscription:
    vhost: str
    exchange: str
    queue: str
    consumer: str


@dataclass(frozen=True)
class Topology:
    vhosts: tuple[str, ...]
    # (vhost, exchange), one per published queue.
    exchanges: tuple[tuple[str, str], ...]
    subscriptions: tuple[Subscription, ...]
    # service -> vhost -> what its broker users may do there.
    grants: Mapping[str, Mapping[str, Grant]]

    def subscriptions_in(self, vhost: str) -> list[Subscription]:
        return [s for s in self.subscriptions if s.vhost == vhost]


def subscription_queue(queue: str, consumer: str) -> str:
    return f"{queue}.{consumer}"


def exactly(names: Iterable[str]) -> str:
    """A regex matching exactly these names (and nothing at all when there are none). Names are DNS
    labels joined by dots, so the dot is the only character to escape."""
    alternatives = "|".join(name.replace(".", r"\.") for name in sorted(set(names)))
    return f"^({alternatives})$" if alternatives else NOTHING


def topology(services: Sequence[ServiceSpec]) -> Topology:
    publisher = {queue: s.name for s in services for queue in s.queue.publishes}
    vhosts = tuple(sorted({s.name for s in services if s.queue.publishes}))
    exchanges = tuple(sorted((publisher[queue], queue) for queue in publisher))
    subscriptions = tuple(
        sorted(
            (
                Subscription(
                    vhost=publisher[queue],
                    exchange=queue,
                    queue=subscription_queue(queue, s.name),
                    consumer=s.name,
                )
                for s in services
                for queue in set(s.queue.consumes)
            ),
            key=lambda sub: (sub.vhost, sub.queue),
        )
    )
    grants: dict[str, dict[str, Grant]] = {}
    for s in services:
        writes: dict[str, list[str]] = {}
        reads: dict[str, list[str]] = {}
        for queue in s.queue.publishes:
            writes.setdefault(s.name, []).append(queue)
        for sub in subscriptions:
            if sub.consumer == s.name:
                reads.setdefault(sub.vhost, []).append(sub.queue)
        for vhost in sorted(writes.keys() | reads.keys()):
            grants.setdefault(s.name, {})[vhost] = Grant(
                configure=NOTHING, write=exactly(writes.get(vhost, [])), read=exactly(reads.get(vhost, []))
            )
    return Topology(vhosts=vhosts, exchanges=exchanges, subscriptions=subscriptions, grants=grants)


def grants_as_dicts(grants: Mapping[str, Grant]) -> dict[str, dict[str, str]]:
    return {v: {"configure": g.configure, "write": g.write, "read": g.read} for v, g in grants.items()}


# -- helpers for the messaging layer -------------------------------------------------------------


def subscription_policy() -> dict[str, str | int]:
    """What every subscription queue of a vhost gets (a RabbitMQ policy definition)."""
    return {
        "dead-letter-exchange": DEAD_LETTER,
        # Quorum queues dead-letter at-least-once (the message stays until the dead-letter queue
        # confirms it) only together with reject-publish: a full queue refuses new messages, so the
        # publisher's confirm fails, instead of silently dropping the oldest.
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
        "delivery-limit": DELIVERY_LIMIT,
    }


def subscription_pattern(topology: Topology, vhost: str) -> str:
    """The policy pattern of a vhost: exactly its subscription queues (nothing when it has none)."""
    return exactly(sub.queue for sub in topology.subscriptions_in(vhost))


def clients(services: Sequence[ServiceSpec]) -> list[str]:
    """The services that publish or consume: the broker's only AMQP clients."""
    return sorted(s.name for s in services if s.queue.publishes or s.queue.consumes)


def reserved_name_problems(services: Sequence[ServiceSpec]) -> list[str]:
    """Declared queues whose exchange would take a name the topology keeps for itself."""
    return [
        f"{s.name}: queue {queue!r} is reserved for the dead-letter exchange of every vhost"
        for s in services
        for queue in s.queue.publishes
        if queue == DEAD_LETTER
    ]
