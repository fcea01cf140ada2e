"""The messaging layer: RabbitMQ (cluster operator in the cluster, Amazon MQ on aws) and its topology.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

# The in-cluster broker.
NAMESPACE = "messaging"
# The cluster and messaging-topology operators.
OPERATOR_NAMESPACE = "rabbitmq-system"
# The topology operator's Deployment and its pods' app.kubernetes.io/name (its release bundle's).
TOPOLOGY_OPERATOR_WORKLOAD = "messaging-topology-operator"
