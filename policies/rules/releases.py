"""Rules over the values of third-party software installed as Helm releases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# `tls_disable = 1`, `tls_disable = "true"`, ... inside a Vault listener stanza.
_TLS_DISABLED = re.compile(r"tls_disable\s*=\s*\"?(1|true)\"?", re.IGNORECASE)


def _vault_server_configs(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    server = values.get("server") or {}
    for path in (("standalone", "config"), ("ha", "config"), ("ha", "raft", "config")):
        node: Any = server
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, str):
            yield "server." + ".".join(path), node


def _vault_tls(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("chart") != "vault":
        return
    values = resource.get("values") or {}
    if (values.get("global") or {}).get("tlsDisable", True) is not False:
        yield f"{resource.name}: global.tlsDisable is not false"
    for path, config in _vault_server_configs(values):
        if _TLS_DISABLED.search(config):
            yield f"{resource.name}: {path} disables TLS on a listener"


def _vault(resource: Resource) -> Mapping[str, Any] | None:
    return (resource.get("values") or {}) if resource.get("chart") == "vault" else None


def _vault_ha(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if values is None:
        return
    ha = (values.get("server") or {}).get("ha") or {}
    if ha.get("enabled") is not True or (ha.get("raft") or {}).get("enabled") is not True:
        yield f"{resource.name}: Vault is not HA with integrated raft storage"
    elif float(ha.get("replicas") or 0) < config["minReplicas"]:
        yield f"{resource.name}: {ha.get('replicas')} raft peers (needs at least {config['minReplicas']})"


def _vault_audit(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if (
        values is not None
        and ((values.get("server") or {}).get("auditStorage") or {}).get("enabled") is not True
    ):
        yield f"{resource.name}: server.auditStorage is not enabled (the audit device needs it)"


def _vault_kms_seal(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    values = _vault(resource)
    if values is None or not config["requireKmsSeal"]:
        return
    configs = [text for _, text in _vault_server_configs(values)]
    if not any(re.search(r'seal\s+"awskms"', text) for text in configs):
        yield f"{resource.name}: no awskms seal: Vault would need manual unsealing"


RULES: tuple[Rule, ...] = (
    Rule(
        name="vault-tls",
        description="Vault serves TLS end to end (global.tlsDisable false, no listener tls_disable).",
        severity="critical",
        remediation="Set global.tlsDisable: false, mount a cert-manager certificate, and drop tls_disable "
        "from the listener config.",
        controls=("vault-production-hardening",),
        pack="security",
        group="encryption",
        types=(HELM_RELEASE,),
        check=_vault_tls,
    ),
    Rule(
        name="vault-ha-raft",
        description="Vault runs HA on integrated raft storage with a quorum of peers.",
        severity="high",
        remediation="Set rampart:vault.replicas to 3 or more.",
        controls=("vault-production-hardening",),
        pack="reliability",
        group="reliability",
        types=(HELM_RELEASE,),
        check=_vault_ha,
        config_schema={"minReplicas": {"type": "integer", "minimum": 1, "default": 3}},
    ),
    Rule(
        name="vault-audit",
        description="Vault keeps an audit log (audit storage for the audit device).",
        severity="medium",
        remediation="Enable server.auditStorage; the configuration layer enables the audit device.",
        controls=("vault-production-hardening",),
        pack="security",
        group="encryption",
        types=(HELM_RELEASE,),
        check=_vault_audit,
    ),
    Rule(
        name="vault-kms-seal",
        description="On AWS, Vault auto-unseals with a dedicated KMS key.",
        severity="high",
        remediation='Add seal "awskms" with the platform\'s Vault key to the server config.',
        controls=("vault-production-hardening",),
        pack="security",
        group="encryption",
        types=(HELM_RELEASE,),
        check=_vault_kms_seal,
        config_schema={"requireKmsSeal": {"type": "boolean", "default": False}},
    ),
)
