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
)
