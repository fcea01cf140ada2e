"""A phase-2 plan: a real stack with `vault.configure: true`, as `rampart vault-phase2` sets it up (the
port-forward's address, the CA it pinned, a secret token), so Vault's policies, auth roles and engines
are in the plan. Every stack file keeps `vault.configure: false`; this is how tests see the rest."""

from __future__ import annotations

import os
from pathlib import Path

from rampart.offline.plan import Plan
from rampart.offline.runner import run_plan
from tests.support.project import stack_document, temp_project
from tests.support.tls import TEST_CA_PEM

# A `secure:` value as `pulumi config set --secret` writes it (never decrypted offline).
CIPHERTEXT = "v1:cGhhc2UyLXRva2Vu:c2VjcmV0"
LOCAL_ADDRESS = "https://127.0.0.1:8200"
CA_FILE = "stacks/vault-ca/{stack}.pem"
# As `make rds-ca-bundle` writes it (the test CA stands in for AWS's bundle).
RDS_CA_FILE = "stacks/rds-ca/eu-west-1-bundle.pem"


def phase2_plan(stack: str, directory: Path, cache: Path) -> Plan:
    """Plan ``stack`` with Vault configured, in a throwaway project under ``directory``; the provider's
    CA copy goes under ``cache`` (XDG_CACHE_HOME while the program runs)."""
    document = stack_document(stack)
    config = document["config"]
    ca_file = CA_FILE.format(stack=stack)
    config["rampart:vault"] |= {"configure": True, "address": LOCAL_ADDRESS, "ca_cert_file": ca_file}
    config["rampart:vault_token"] = {"secure": CIPHERTEXT}
    if config.get("rampart:target") == "aws":
        config["rampart:databases"] = dict(config.get("rampart:databases") or {}) | {
            "ca_bundle_file": RDS_CA_FILE
        }
    # What `pulumi stack init --secrets-provider awskms://...` writes beside the first secret.
    document["encryptedkey"] = "cmFtcGFydC1vZmZsaW5lLWRhdGEta2V5"
    root = temp_project(directory, {stack: document})
    for pem in (ca_file, RDS_CA_FILE):
        (root / pem).parent.mkdir(parents=True, exist_ok=True)
        (root / pem).write_text(TEST_CA_PEM)
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        return run_plan(stack, root)
    finally:
        if before is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = before
