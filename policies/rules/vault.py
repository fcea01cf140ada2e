"""Vault configuration rules (phase 2, `vault.configure: true`): what each service's policy grants and
how long the tokens its Kubernetes auth role issues live.

A service policy grants paths under the service's own name only: its KV folder
(``kv/data/<service>/*``) and its own credentials (``database/creds/<service>``). Vault's globs are
``*`` (a prefix match, only at the end) and ``+`` (one whole segment)
(https://developer.hashicorp.com/vault/docs/concepts/policies#policy-syntax).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, number, positive_integer
from policies.table import on, table_rules

VAULT_POLICY = "vault:index/policy:Policy"
KUBERNETES_AUTH_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
# Policies Vault itself owns: `root` is every capability everywhere.
RESERVED_POLICIES = ("root",)
_STANZA = re.compile(r'path\s+"([^"]*)"\s*\{(.*?)\}', re.DOTALL)
_CAPABILITIES = re.compile(r"capabilities\s*=\s*\[([^\]]*)\]")
# Paths that administer Vault itself, never a service's business.
_ADMIN_PREFIXES = ("sys/", "auth/", "identity/", "+/", "*")


def _grants(hcl: str) -> list[tuple[str, list[str]]]:
    """(path, capabilities) of every `path` stanza, comments removed."""
    text = "\n".join(line.split("#", 1)[0] for line in hcl.splitlines())
    found = []
    for path, body in _STANZA.findall(text):
        listed = _CAPABILITIES.search(body)
        capabilities = re.findall(r'"([^"]*)"', listed.group(1)) if listed else []
        found.append((path, capabilities))
    return found


def _path_problem(path: str, owner: str) -> str | None:
    segments = path.split("/")
    if path.startswith(_ADMIN_PREFIXES):
        return "administers Vault itself"
    if "+" in segments:
        return "matches any segment ('+')"
    if "*" in path and not path.endswith("/*"):
        return "uses '*' other than as a whole last segment (it also matches sibling names)"
    if owner not in segments[:-1] and not (segments and segments[-1] == owner):
        return f"is not under the service's own name {owner!r}"
    return None


def _policy_least_privilege(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    owner = str(resource.get("name") or resource.name)
    hcl = resource.get("policy")
    if not isinstance(hcl, str):
        return  # unknown during preview
    grants = _grants(hcl)
    if not grants:
        yield f"policy {owner}: no path stanza Rampart can read"
    for path, capabilities in grants:
        if "sudo" in capabilities:
            yield f"policy {owner}: path {path!r} grants sudo"
        if problem := _path_problem(path, owner):
            yield f"policy {owner}: path {path!r} {problem}"


def _auth_role_bounded(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """A token_ttl or token_max_ttl of 0 (or unset) falls back to the mount's and then the system's
    maximum (32 days by default): https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#token_ttl."""
    role = str(resource.get("roleName") or resource.name)
    ttl, max_ttl = number(resource.get("tokenTtl")), number(resource.get("tokenMaxTtl"))
    limit_ttl, limit_max = config["maxTokenTtlSeconds"], config["maxTokenMaxTtlSeconds"]
    if not 0 < ttl <= limit_ttl:
        yield f"role {role}: token_ttl is {ttl:g}s (needs 1..{limit_ttl}s; 0 is the system maximum)"
    if not 0 < max_ttl <= limit_max:
        yield f"role {role}: token_max_ttl is {max_ttl:g}s (needs 1..{limit_max}s; 0 is the system maximum)"
    elif ttl > max_ttl:
        yield f"role {role}: token_ttl {ttl:g}s exceeds token_max_ttl {max_ttl:g}s"
    for field in ("boundServiceAccountNames", "boundServiceAccountNamespaces"):
        bound = [str(value) for value in resource.get(field) or []]
        if not bound or any("*" in value for value in bound):
            yield f"role {role}: {field} is {bound or 'empty'} (name the service's own account and namespace)"
    policies = [str(p) for p in resource.get("tokenPolicies") or []]
    if reserved := [p for p in policies if p in RESERVED_POLICIES]:
        yield f"role {role}: tokenPolicies include {reserved}"
    if not resource.get("audience"):
        yield f"role {role}: no audience, so a token minted for another audience (the API server's) logs in"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "vault-policy-least-privilege": on((VAULT_POLICY,), _policy_least_privilege),
        "vault-auth-role-bounded": on(
            (KUBERNETES_AUTH_ROLE,),
            _auth_role_bounded,
            {
                "maxTokenTtlSeconds": positive_integer(3600),
                "maxTokenMaxTtlSeconds": positive_integer(3600),
            },
        ),
    },
)
