"""Rules over the values of third-party software installed as Helm releases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, boolean, positive_integer

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
    Rule.of(
        "vault-tls",
        "Vault serves TLS end to end (global.tlsDisable false, no listener tls_disable).",
        "critical",
        "Set global.tlsDisable: false, mount a cert-manager certificate, and drop tls_disable "
        "from the listener config.",
        group="encryption",
        controls=("vault-production-hardening",),
        types=(HELM_RELEASE,),
        check=_vault_tls,
    ),
    Rule.of(
        "vault-ha-raft",
        "Vault runs HA on integrated raft storage with a quorum of peers.",
        "high",
        "Set rampart:vault.replicas to 3 or more.",
        group="reliability",
        controls=("vault-production-hardening",),
        types=(HELM_RELEASE,),
        check=_vault_ha,
        config_schema={"minReplicas": positive_integer(3)},
    ),
    Rule.of(
        "vault-audit",
        "Vault keeps an audit log (audit storage for the audit device).",
        "medium",
        "Enable server.auditStorage; the configuration layer enables the audit device.",
        group="encryption",
        controls=("vault-production-hardening",),
        types=(HELM_RELEASE,),
        check=_vault_audit,
    ),
    Rule.of(
        "vault-kms-seal",
        "On AWS, Vault auto-unseals with a dedicated KMS key.",
        "high",
        'Add seal "awskms" with the platform\'s Vault key to the server config.',
        group="encryption",
        controls=("vault-production-hardening",),
        types=(HELM_RELEASE,),
        check=_vault_kms_seal,
        config_schema={"requireKmsSeal": boolean(False)},
    ),
)
