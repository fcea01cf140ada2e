"""Where a service connects: the non-secret half of what its pods get (the credentials are files
mounted from the Secrets Vault's Secrets Operator writes, components/paved_road/workload.py).

The data layer writes one ConfigMap per client service, ``<svc>-connection``, once its servers
exist (the RDS and Amazon MQ endpoints are known only then); the pod template takes it with
``envFrom`` (https://kubernetes.io/docs/concepts/configuration/configmap/#configmaps-and-pods).
The database half uses libpq's own variables, so a PostgreSQL client connects with no code
(https://www.postgresql.org/docs/current/libpq-envars.html); the user and password are the files
``username`` and ``password`` of the database credentials directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from components import paved_road as road
from components.data.names import POSTGRES_PORT, database_name


def qualified(host: str) -> str:
    """In-cluster names fully qualified (the server certificates list them, core/dns.py): a pod's
    DNS search path then plays no part."""
    return f"{host}.cluster.local" if host.endswith(".svc") else host


def database_env(service: str, host: str, port: int = POSTGRES_PORT) -> dict[str, str]:
    return {
        "PGHOST": qualified(host),
        "PGPORT": str(port),
        "PGDATABASE": database_name(service),
        # The server refuses plaintext; the client must not try it either. `require` encrypts but does
        # not verify the server: the database CA (the platform CA, or the RDS bundle Vault verifies
        # with) is not yet mounted in service pods, so verify-full would fail. Known gap (issue 14).
        "PGSSLMODE": "require",
        "DATABASE_CREDENTIALS_DIR": road.DATABASE_CREDENTIALS_DIR,
    }


def database_env_at(service: str, address: str) -> dict[str, str]:
    """``database_env`` from the ``host:port`` the data layer hands Vault."""
    return database_env(service, *split_host_port(address))


def split_host_port(address: str, default_port: int = POSTGRES_PORT) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (address, default_port)


def broker_env_for(vhosts: Sequence[str], endpoints: Sequence[str]) -> dict[str, str]:
    return broker_env(list(endpoints), vhosts)


def broker_env(endpoints: Sequence[str], vhosts: Sequence[str]) -> dict[str, str]:
    """The broker's AMQPS endpoints and the vhosts the service's Vault role grants it."""
    endpoints = [
        f"{u.scheme}://{qualified(u.hostname or '')}" + (f":{u.port}" if u.port else "")
        for u in map(urlsplit, endpoints)
    ]
    first = urlsplit(endpoints[0]) if endpoints else None
    return {
        "AMQP_ENDPOINTS": ",".join(endpoints),
        "RABBITMQ_HOST": (first.hostname or "") if first else "",
        "RABBITMQ_PORT": str(first.port or 5671) if first else "5671",
        "RABBITMQ_VHOSTS": ",".join(sorted(vhosts)),
        "BROKER_CREDENTIALS_DIR": road.BROKER_CREDENTIALS_DIR,
    }
