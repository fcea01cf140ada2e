"""PostgreSQL 16's role rules, as far as Vault's dynamic database users meet them: whether the
statements Vault runs as its admin create a user and, when the lease ends, really remove it.

The rules, from the PostgreSQL 16 documentation:

- A role's *privileges* are its own plus those of every role it reaches through memberships granted
  WITH INHERIT TRUE (https://www.postgresql.org/docs/16/role-membership.html).
- ``CREATE ROLE`` needs CREATEROLE. A creator that is not a superuser is granted the new role WITH
  ADMIN OPTION only (INHERIT FALSE, SET FALSE), plus the options listed in its
  ``createrole_self_grant`` (default empty) (https://www.postgresql.org/docs/16/sql-createrole.html,
  https://www.postgresql.org/docs/16/runtime-config-client.html#GUC-CREATEROLE-SELF-GRANT; the setting
  "isn't a security feature, because the grant that this feature triggers can also be performed
  explicitly": commit e5b8a4c0).
- ``GRANT role TO member`` needs ADMIN OPTION on ``role``; the membership inherits as the member's
  INHERIT attribute says and allows SET (https://www.postgresql.org/docs/16/sql-grant.html). A grant
  that would make a role a member of itself is refused.
- ``ALTER ROLE r SET ...`` on another role needs CREATEROLE and ADMIN OPTION on ``r``
  (https://www.postgresql.org/docs/16/sql-alterrole.html).
- ``REASSIGN OWNED BY old TO new`` needs the privileges of both; ``DROP OWNED BY r`` those of ``r``
  (https://www.postgresql.org/docs/16/sql-reassign-owned.html, .../sql-drop-owned.html).
- ``DROP ROLE`` needs CREATEROLE and ADMIN OPTION on the role, and fails while the role owns objects
  (https://www.postgresql.org/docs/16/sql-droprole.html).
- ``pg_terminate_backend`` of another role's session needs that role's privileges or those of
  ``pg_signal_backend`` (https://www.postgresql.org/docs/16/functions-admin.html).

Grants on schemas, tables and the database, and default privileges, are object privileges outside this
model: Vault's admin owns the database and its public schema, so it may grant them. A statement of any
other shape is an error, so nothing Vault would run goes unexamined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SIGNAL_BACKEND = "pg_signal_backend"
# Placeholders Vault fills in (https://developer.hashicorp.com/vault/docs/secrets/databases/postgresql).
PLACEHOLDERS = {"{{password}}": "secret", "{{expiration}}": "2030-01-01 00:00:00+00"}

_NAME = r'"([^"]+)"|([a-z_][a-z0-9_]*)'
_DO_BLOCK = re.compile(r"^DO \$\$ BEGIN (.*?) EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;$", re.S)
_CREATE_ROLE = re.compile(rf"^CREATE ROLE ({_NAME})(?: WITH)?(?P<options>[^;]*);$")
_GRANT_ROLE = re.compile(rf"^GRANT ({_NAME}) TO ({_NAME}|CURRENT_USER)(?P<admin> WITH ADMIN OPTION)?;$")
_OBJECT_GRANT = re.compile(
    r"^GRANT [A-Z, ]+ ON (SCHEMA|ALL TABLES IN SCHEMA|ALL SEQUENCES IN SCHEMA|DATABASE) "
)
_DEFAULT_PRIVILEGES = re.compile(r"^ALTER DEFAULT PRIVILEGES IN SCHEMA \w+ GRANT ")
_ALTER_ROLE_SET = re.compile(rf"^ALTER ROLE ({_NAME}) SET [a-z_]+ = '[^']*';$")
_ALTER_ROLE_PASSWORD = re.compile(rf"^ALTER ROLE ({_NAME}) WITH PASSWORD '[^']*';$")
_TERMINATE = re.compile(
    r"^SELECT pg_terminate_backend\(pid\) FROM pg_stat_activity WHERE usename = '([^']+)';$"
)
_REASSIGN = re.compile(rf"^REASSIGN OWNED BY ({_NAME}) TO ({_NAME});$")
_DROP_OWNED = re.compile(rf"^DROP OWNED BY ({_NAME});$")
_DROP_ROLE = re.compile(rf"^DROP ROLE (IF EXISTS )?({_NAME});$")


class PgError(Exception):
    """What PostgreSQL would answer with ERROR: the statement (and its transaction) fails."""


@dataclass
class Role:
    name: str
    superuser: bool = False
    createrole: bool = False
    inherit: bool = True
    # The role's createrole_self_grant in its sessions (ALTER ROLE ... SET, or the server default).
    self_grant: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Membership:
    admin: bool = False
    inherit: bool = False
    set: bool = False

    def __or__(self, other: Membership) -> Membership:
        return Membership(self.admin or other.admin, self.inherit or other.inherit, self.set or other.set)


@dataclass
class Server:
    """Roles, memberships (role, member) -> options, what each role owns and who has a session."""

    roles: dict[str, Role] = field(default_factory=dict)
    members: dict[tuple[str, str], Membership] = field(default_factory=dict)
    owned: dict[str, set[str]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)

    def add(self, role: Role) -> Role:
        self.roles[role.name] = role
        return role

    # --- membership ----------------------------------------------------------------------------
    def _reach(self, start: str, *, inherit_only: bool) -> set[str]:
        found, todo = {start}, [start]
        while todo:
            member = todo.pop()
            for (role, who), options in self.members.items():
                if who == member and role not in found and (options.inherit or not inherit_only):
                    found.add(role)
                    todo.append(role)
        return found

    def has_privs_of(self, who: str, role: str) -> bool:
        return self.roles[who].superuser or role in self._reach(who, inherit_only=True)

    def is_admin_of(self, who: str, role: str) -> bool:
        if self.roles[who].superuser:
            return True
        return any(
            self.members.get((role, holder), Membership()).admin
            for holder in self._reach(who, inherit_only=True)
        )

    def _grant(self, role: str, member: str, options: Membership) -> None:
        if role == member or member in self._reach(role, inherit_only=False) - {role}:
            raise PgError(f'role "{member}" is a member of role "{role}": the grant would be circular')
        key = (role, member)
        self.members[key] = self.members.get(key, Membership()) | options

    # --- statements ----------------------------------------------------------------------------
    def run(self, user: str, statements: Iterable[str], name: str) -> None:
        """Run ``statements`` as ``user``, with Vault's ``{{name}}`` standing for ``name``."""
        for statement in statements:
            text = statement.replace("{{name}}", name)
            for placeholder, value in PLACEHOLDERS.items():
                text = text.replace(placeholder, value)
            self._statement(user, " ".join(text.split()))

    def _statement(self, user: str, text: str) -> None:
        block = _DO_BLOCK.match(text)
        if block:
            saved = (dict(self.roles), dict(self.members))
            try:
                for inner in re.findall(r"[^;]+;", block.group(1)):
                    self._statement(user, inner.strip())
            except _DuplicateError:
                self.roles, self.members = saved
            return
        for pattern, action in (
            (_CREATE_ROLE, self._create_role),
            (_GRANT_ROLE, self._grant_role),
            (_ALTER_ROLE_SET, self._alter_role),
            (_ALTER_ROLE_PASSWORD, self._alter_role),
            (_TERMINATE, self._terminate),
            (_REASSIGN, self._reassign),
            (_DROP_OWNED, self._drop_owned),
            (_DROP_ROLE, self._drop_role),
        ):
            found = pattern.match(text)
            if found:
                action(user, found)
                return
        if _OBJECT_GRANT.match(text) or _DEFAULT_PRIVILEGES.match(text):
            return
        raise ValueError(f"a statement outside the model: {text[:80]!r}")

    def _create_role(self, user: str, found: re.Match[str]) -> None:
        name = _name(found, 2)
        creator = self.roles[user]
        if not (creator.superuser or creator.createrole):
            raise PgError(f'permission denied to create role "{name}"')
        if name in self.roles:
            raise _DuplicateError(f'role "{name}" already exists')
        self.add(Role(name, inherit="NOINHERIT" not in found.group("options")))
        if not creator.superuser:
            grant = creator.self_grant
            self._grant(name, user, Membership(admin=True, inherit="inherit" in grant, set="set" in grant))

    def _grant_role(self, user: str, found: re.Match[str]) -> None:
        role = _name(found, 2)
        member = user if found.group(4) == "CURRENT_USER" else _name(found, 5)
        self._exists(role, member)
        if not self.is_admin_of(user, role):
            raise PgError(f'permission to grant role "{role}": only roles with ADMIN OPTION on it')
        options = Membership(admin=bool(found.group("admin")), inherit=self.roles[member].inherit, set=True)
        self._grant(role, member, options)

    def _alter_role(self, user: str, found: re.Match[str]) -> None:
        role = _name(found, 2)
        self._exists(role)
        if role != user and not (
            self.roles[user].superuser or (self.roles[user].createrole and self.is_admin_of(user, role))
        ):
            raise PgError(f'permission denied to alter role "{role}"')

    def _terminate(self, user: str, found: re.Match[str]) -> None:
        role = found.group(1)
        if role not in self.sessions:
            return
        signal = SIGNAL_BACKEND in self.roles and self.has_privs_of(user, SIGNAL_BACKEND)
        if not (self.has_privs_of(user, role) or signal):
            raise PgError(f'permission denied to terminate the sessions of "{role}"')
        self.sessions.discard(role)

    def _reassign(self, user: str, found: re.Match[str]) -> None:
        old, new = _name(found, 2), _name(found, 5)
        self._exists(old, new)
        for role in (old, new):
            if not self.has_privs_of(user, role):
                raise PgError(f'permission denied to reassign objects: no privileges of role "{role}"')
        self.owned.setdefault(new, set()).update(self.owned.pop(old, set()))

    def _drop_owned(self, user: str, found: re.Match[str]) -> None:
        role = _name(found, 2)
        self._exists(role)
        if not self.has_privs_of(user, role):
            raise PgError(f'permission denied to drop objects: no privileges of role "{role}"')
        self.owned.pop(role, None)

    def _drop_role(self, user: str, found: re.Match[str]) -> None:
        role = _name(found, 3)
        if role not in self.roles:
            if found.group(1):
                return
            raise PgError(f'role "{role}" does not exist')
        if role == user or not (
            self.roles[user].superuser or (self.roles[user].createrole and self.is_admin_of(user, role))
        ):
            raise PgError(f'permission denied to drop role "{role}"')
        if self.owned.get(role) or role in self.sessions:
            raise PgError(f'role "{role}" cannot be dropped because some objects depend on it')
        del self.roles[role]
        self.members = {key: value for key, value in self.members.items() if role not in key}

    def _exists(self, *roles: str) -> None:
        for role in roles:
            if role not in self.roles:
                raise PgError(f'role "{role}" does not exist')


class _DuplicateError(PgError):
    """duplicate_object: the DO block's handler swallows it."""


def _name(found: re.Match[str], group: int) -> str:
    return found.group(group) or found.group(group + 1)


def self_grant_options(value: str) -> frozenset[str]:
    """createrole_self_grant's value: empty, or a comma-separated list of 'set' and 'inherit'."""
    options = frozenset(part.strip().lower() for part in value.split(",") if part.strip())
    if options - {"set", "inherit"}:
        raise ValueError(f"createrole_self_grant {value!r}: only 'set' and 'inherit' are allowed")
    return options


@dataclass(frozen=True)
class Lifecycle:
    """What happened to one dynamic user: created, used, then revoked."""

    created: bool
    revoked: bool
    error: str = ""


def lease_lifecycle(
    admin: Role,
    creation: Sequence[str],
    revocation: Sequence[str],
    *,
    name: str = "v-k8s-service-abc123",
) -> Lifecycle:
    """Vault's admin creates a user; the user logs in and leaves an object it owns (a leaked credential
    that created a table after ``RESET ROLE``); the lease ends and Vault's admin runs the revocation.
    Revoked means: no session, no role, its objects handed to someone who still exists."""
    server = Server()
    server.add(admin)
    try:
        server.run(admin.name, creation, name)
    except PgError as error:
        return Lifecycle(False, False, f"creation fails: {error}")
    server.sessions.add(name)
    server.owned.setdefault(name, set()).add("table left by the user")
    try:
        server.run(admin.name, revocation, name)
    except PgError as error:
        return Lifecycle(True, False, f"revocation fails: {error}")
    if name in server.roles or name in server.sessions:
        return Lifecycle(True, False, f"revocation leaves role {name} in place")
    return Lifecycle(True, True)
