"""Rules over the in-cluster data layer: CloudNativePG clusters, the RabbitMQ broker and its queues,
and Amazon MQ's deployment mode (the AWS security rules for RDS and MQ live in aws.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, number, positive_integer
from policies.table import on, table_rules

POSTGRES_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RABBITMQ_CLUSTER = "kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster"
RABBITMQ_QUEUE = "kubernetes:rabbitmq.com/v1beta1:Queue"
RABBITMQ_VHOST = "kubernetes:rabbitmq.com/v1beta1:Vhost"
MQ_BROKER = "aws:mq/broker:Broker"
IN_CLUSTER_STATEFUL = (POSTGRES_CLUSTER, RABBITMQ_CLUSTER, RABBITMQ_QUEUE, RABBITMQ_VHOST)
# pg_hba methods that let a client in without proving a password over TLS.
_WEAK_HBA_METHODS = ("trust", "password", "md5", "ident")


def _postgres_hardened(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("spec.enableSuperuserAccess") is True:
        yield f"{resource.name}: enableSuperuserAccess is true (a postgres superuser password in a Secret)"
    if not resource.get("spec.certificates.serverTLSSecret"):
        yield f"{resource.name}: no certificates.serverTLSSecret, so clients cannot verify the server"
    for line in resource.get("spec.postgresql.pg_hba") or []:
        fields = str(line).split()
        if fields and (fields[0] == "host" or any(m in fields for m in _WEAK_HBA_METHODS)):
            yield f"{resource.name}: pg_hba {line!r} admits connections without TLS or a strong password"


def _postgres_instances(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    instances = number(resource.get("spec.instances")) or 1
    if instances < config["minInstances"]:
        yield f"{resource.name}: {instances:g} instance(s); needs {config['minInstances']} to survive a loss"


def _rabbitmq_tls_only(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if not resource.get("spec.tls.secretName"):
        yield f"{resource.name}: no tls.secretName, so AMQP and management are plaintext"
    elif resource.get("spec.tls.disableNonTLSListeners") is not True:
        yield f"{resource.name}: tls.disableNonTLSListeners is not true (plaintext 5672 stays open)"


def _rabbitmq_replicas(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    replicas = number(resource.get("spec.replicas")) or 1
    if replicas < config["minReplicas"]:
        yield f"{resource.name}: {replicas:g} node(s); quorum queues need {config['minReplicas']}"


def _quorum_queue(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("spec.type") != "quorum":
        yield f"{resource.name}: type {resource.get('spec.type')!r}; only quorum queues are replicated"
    if resource.get("spec.durable") is not True:
        yield f"{resource.name}: not durable, so its messages are gone after a broker restart"
    if resource.get("spec.autoDelete") is True:
        yield f"{resource.name}: autoDelete drops the queue (and its messages) when consumers leave"


def _mq_cluster(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("engineType", "").lower() == "rabbitmq" and resource.get("deploymentMode") != (
        "CLUSTER_MULTI_AZ"
    ):
        yield f"{resource.name}: deploymentMode {resource.get('deploymentMode')!r}; one zone loss stops it"


def _in_cluster_protected(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if not resource.protect:
        yield f"{resource.name}: stateful {resource.type.rsplit(':', 1)[-1]} is not protected"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "postgres-cluster-hardened": on((POSTGRES_CLUSTER,), _postgres_hardened),
        "postgres-cluster-instances": on(
            (POSTGRES_CLUSTER,), _postgres_instances, {"minInstances": positive_integer(2)}
        ),
        "rabbitmq-tls-only": on((RABBITMQ_CLUSTER,), _rabbitmq_tls_only),
        "rabbitmq-cluster-replicas": on(
            (RABBITMQ_CLUSTER,), _rabbitmq_replicas, {"minReplicas": positive_integer(3)}
        ),
        "rabbitmq-quorum-queues": on((RABBITMQ_QUEUE,), _quorum_queue),
        "mq-broker-multi-az": on((MQ_BROKER,), _mq_cluster),
        "in-cluster-stateful-protected": on(IN_CLUSTER_STATEFUL, _in_cluster_protected),
    },
)
