"""What each service may do in Vault, Postgres and RabbitMQ: pure functions, no Pulumi.

Every grant names the service's own path exactly, or its own folder followed by Vault's prefix glob
(``kv/data/<service>/*``): never ``kv/data/<service>*``, which would also match ``<service>-admin``.
Names are checked to be DNS labels first, so nothing a caller passes can widen a grant (no ``*``,
``+``, ``/``, quotes or regex metacharacters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Required, TypedDict, Unpack

KV_MOUNT = "kv"
DATABASE_MOUNT = "database"
BROKER_MOUNT = "rabbitmq"
# Postgres: the NOLOGIN role that owns a service database's objects (see database_creation_statements).
OWNER_ROLE_SUFFIX = "_owner"
# Data, not DDL on others' objects: no TRUNCATE, REFERENCES or TRIGGER on tables the user does not own.
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"

READ_LIST: tuple[str, ...] = ("read", "list")
READ: tuple[str, ...] = ("read",)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Database names (components.data_names.database_name): no quotes, no dashes, nothing to escape.
_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
_BLOCK = re.compile(r'path\s+"([^"\s]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}')
_CAPABILITY = re.compile(r'^"([a-z]+)"$')
_CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "deny"})


def dns_label(value: str, what: str = "name") -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{what} {value!r} is not a DNS label (lowercase letters, digits and '-')")
    return value


# -- Vault policies ------------------------------------------------------------------------------


def readable_paths(
    service: str,
    *,
    kv_mount: str = KV_MOUNT,
    database: bool,
    broker: bool,
    database_mount: str = DATABASE_MOUNT,
    broker_mount: str = BROKER_MOUNT,
) -> dict[str, tuple[str, ...]]:
    """Every path the service's policy grants, with its capabilities: the single source of the HCL."""
    dns_label(service, "service")
    for mount in (kv_mount, database_mount, broker_mount):
        dns_label(mount, "mount")
    grants: dict[str, tuple[str, ...]] = {
        # KV v2: secret values live under data/, their versions and listings under metadata/.
        f"{kv_mount}/data/{service}/*": READ_LIST,
        f"{kv_mount}/metadata/{service}/*": READ_LIST,
    }
    if database:
        grants[f"{database_mount}/creds/{service}"] = READ
    if broker:
        grants[f"{broker_mount}/creds/{service}"] = READ
    return grants


def render_policy(grants: Mapping[str, Iterable[str]], comment: str) -> str:
    blocks = [f"# {comment}"]
    for path, capabilities in grants.items():
        listed = ", ".join(f'"{capability}"' for capability in capabilities)
        blocks.append(f'path "{path}" {{\n  capabilities = [{listed}]\n}}')
    return "\n\n".join(blocks) + "\n"


class Grants(TypedDict, total=False):
    """What a service reads besides its KV folder, and where (the mounts default to the platform's)."""

    database: Required[bool]
    broker: Required[bool]
    kv_mount: str
    database_mount: str
    broker_mount: str


def service_policy(service: str, **grants: Unpack[Grants]) -> str:
    """The Vault policy HCL of one service: its KV folder, its database and broker credentials."""
    return render_policy(
        readable_paths(service, **grants),
        f"Rampart: what service {service!r} may read. Nothing else is granted.",
    )


def parse_policy(hcl: str) -> dict[str, set[str]]:
    """Path -> capabilities of a policy in the subset :func:`render_policy` writes.

    Anything else (another stanza, a parameter constraint, an unknown capability) is an error,
    so a test reading a policy back cannot overlook a grant it does not understand.
    """
    text = "\n".join(line for line in hcl.splitlines() if not line.strip().startswith("#"))
    grants: dict[str, set[str]] = {}
    for match in _BLOCK.finditer(text):
        path, listed = match.groups()
        items = [item.strip() for item in listed.split(",") if item.strip()]
        capabilities = set()
        for item in items:
            found = _CAPABILITY.match(item)
            if not found or found.group(1) not in _CAPABILITIES:
                raise ValueError(f"path {path!r}: unknown capability {item}")
            capabilities.add(found.group(1))
        grants.setdefault(path, set()).update(capabilities)
    leftover = _BLOCK.sub("", text).strip()
    if leftover:
        raise ValueError(f"not a policy in the generated subset: {leftover[:60]!r}")
    return grants


# -- Postgres dynamic users ----------------------------------------------------------------------


def pg_identifier(value: str, what: str) -> str:
    if not _PG_IDENTIFIER.match(value):
        raise ValueError(f"{what} {value!r} is not a plain Postgres identifier (a-z, 0-9, '_')")
    return value


def owner_role(database: str) -> str:
    return f"{database}{OWNER_ROLE_SUFFIX}"


def database_creation_statements(service: str, database: str) -> list[str]:
    """SQL Vault runs, connected to ``database``, to create one short-lived user for ``service``.

    Every grant is on that database or on objects inside it (Vault is connected to it, so ``ALL
    TABLES IN SCHEMA public`` is that database's tables). The user is a member of the database's
    NOLOGIN owner role and acts as it by default: tables it creates (migrations) belong to the
    owner, so the next user sees them and revoking this one never orphans or drops data.

    The owner role is created on first use (the data layer only creates the database and Vault's
    admin), the same way on RDS and CloudNativePG; Vault runs a ``DO ... END`` block as one statement.
    Grants go to the owner role, because a user that has switched to it acts with its privileges.
    """
    dns_label(service, "service")
    pg_identifier(database, "database")
    user, owner = '"{{name}}"', f'"{owner_role(database)}"'
    return [
        # Created by Vault's admin, who then holds it (PostgreSQL 16+ needs membership to grant on it).
        f"DO $$ BEGIN CREATE ROLE {owner} NOLOGIN; GRANT {owner} TO CURRENT_USER; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {owner};",
        f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {owner};",
        f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA public TO {owner};",
        # Objects Vault's admin creates later in this database (it runs these statements) are usable
        # by the owner role, hence by every service user; idempotent, so rerunning it is harmless.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {TABLE_PRIVILEGES} ON TABLES TO {owner};",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {owner};",
        f"CREATE ROLE {user} WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}';",
        # PostgreSQL 16+ gives the creator of a role only ADMIN OPTION on it (unless its
        # createrole_self_grant says more, which RDS's master user does not): revocation's
        # pg_terminate_backend, REASSIGN OWNED and DROP OWNED need the user's privileges. The explicit
        # grant does what createrole_self_grant = 'set, inherit' would, on RDS and CloudNativePG alike
        # (rampart/paths/postgres_roles.py models it).
        f"GRANT {user} TO CURRENT_USER;",
        f'GRANT CONNECT ON DATABASE "{database}" TO {user};',
        f"GRANT {owner} TO {user};",
        f"ALTER ROLE {user} SET role = '{owner_role(database)}';",
    ]


def database_revocation_statements(service: str, database: str) -> list[str]:
    """SQL that ends a user when its lease ends: sessions cut, anything it owns kept, role dropped."""
    dns_label(service, "service")
    pg_identifier(database, "database")
    user, owner = '"{{name}}"', f'"{owner_role(database)}"'
    return [
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';",
        f"REASSIGN OWNED BY {user} TO {owner};",
        f"DROP OWNED BY {user};",
        f"DROP ROLE IF EXISTS {user};",
    ]


def database_root_rotation_statements() -> list[str]:
    """How Vault changes its own admin password (``rotate-root``): only Vault knows it afterwards."""
    return ["ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';"]
