"""Names the data layer and its clients (Vault, network policies, tests) must agree on: one place."""

from __future__ import annotations

POSTGRES_PORT = 5432
# The login role every service database is created with (the RDS master user, the CloudNativePG
# initdb owner). Vault's database engine connects as it and rotates its password on first use.
ADMIN_USER = "vault_admin"


def database_name(service: str) -> str:
    """The service's database inside its server: service names are DNS labels, and RDS accepts
    only letters, digits and underscores in a database name."""
    return service.replace("-", "_")


def cluster_name(service: str) -> str:
    """The CloudNativePG Cluster (and the prefix of its Services) in the service's namespace."""
    return f"{service}-db"


def in_cluster_host(service: str, namespace: str) -> str:
    """The read-write Service CloudNativePG puts in front of the current primary."""
    return f"{cluster_name(service)}-rw.{namespace}.svc"
