"""Layer models: credentials delivered into the pod (Vault Secrets Operator -> Secret -> pod template),
and the broker permissions those credentials carry.

Semantics:
- A VaultDynamicSecret writes ``spec.destination.name`` in its own namespace, authenticating through its
  VaultAuth (a Kubernetes-auth role bound to a service account), and restarts its
  ``rolloutRestartTargets`` on rotation.
  https://developer.hashicorp.com/vault/docs/platform/k8s/vso/api-reference#vaultdynamicsecretspec
- A Secret reaches a container only through the pod template: a ``secret`` volume mounted by the
  container, ``envFrom.secretRef`` or ``env.valueFrom.secretKeyRef``; Secrets are namespaced and only
  pods of their namespace can use them. https://kubernetes.io/docs/concepts/configuration/secret/
- A Vault token reads ``<mount>/creds/<role>`` only when a policy attached to it grants that path
  (globs ``*`` at the end, ``+`` one segment). https://developer.hashicorp.com/vault/docs/concepts/policies
- Vault's RabbitMQ secrets engine creates users with the role's per-vhost configure/write/read
  regular expressions (https://developer.hashicorp.com/vault/docs/secrets/rabbitmq); RabbitMQ
  matches them against resource names (https://www.rabbitmq.com/docs/access-control).
The Secret names are the paved road's contract (components/secrets/vault_config.py): ``<svc>-db-credentials``
and ``<svc>-broker-credentials``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rampart.paths.model import Check, allows, pending, refuses
from rampart.paths.workloads import CONFIG_MAP, DEPLOYMENT
from rampart.paths.world import VAULT_DYNAMIC_SECRET, World

SECRET = "kubernetes:core/v1:Secret"  # nosec B105 # noqa: S105 - a type name, not a credential
VAULT_AUTH = "kubernetes:secrets.hashicorp.com/v1beta1:VaultAuth"
VAULT_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
VAULT_POLICY = "vault:index/policy:Policy"
RABBITMQ_ROLE = "vault:rabbitMq/secretBackendRole:SecretBackendRole"
PHASE_2 = "Vault's per-service configuration is phase 2 (vault.configure: false in this plan)"


def database_secret(service: str) -> str:
    return f"{service}-db-credentials"


def broker_secret(service: str) -> str:
    return f"{service}-broker-credentials"


def pod_template(world: World, namespace: str, name: str) -> Mapping[str, Any] | None:
    for deployment in world.of_type(DEPLOYMENT):
        meta = deployment["metadata"]
        if meta.get("namespace") == namespace and meta.get("name") == name:
            return dict(deployment["spec"]["template"])
    return None


def secret_reference(template: Mapping[str, Any], secret: str) -> str | None:
    """How the pod template hands ``secret`` to a container (None: it does not)."""
    spec = template.get("spec") or {}
    volumes = {
        v["name"] for v in spec.get("volumes") or [] if (v.get("secret") or {}).get("secretName") == secret
    } | {
        v["name"]
        for v in spec.get("volumes") or []
        for source in (v.get("projected") or {}).get("sources") or []
        if (source.get("secret") or {}).get("name") == secret
    }
    for container in spec.get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") in volumes:
                return f"mounted at {mount.get('mountPath')} in {container.get('name')}"
        for source in container.get("envFrom") or []:
            if (source.get("secretRef") or {}).get("name") == secret:
                return f"envFrom in {container.get('name')}"
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret:
                return f"env {env.get('name')} in {container.get('name')}"
    return None


def _referenced_objects(template: Mapping[str, Any]) -> set[tuple[str, str]]:
    spec = template.get("spec") or {}
    found: set[tuple[str, str]] = set()
    for volume in spec.get("volumes") or []:
        if volume.get("configMap"):
            found.add(("ConfigMap", volume["configMap"].get("name", "")))
        if volume.get("secret"):
            found.add(("Secret", volume["secret"].get("secretName", "")))
    for container in spec.get("containers") or []:
        for source in container.get("envFrom") or []:
            if source.get("configMapRef"):
                found.add(("ConfigMap", source["configMapRef"].get("name", "")))
            if source.get("secretRef"):
                found.add(("Secret", source["secretRef"].get("name", "")))
    return found


def told(world: World, namespace: str, template: Mapping[str, Any], endpoint: str) -> str | None:
    """Where the pod learns ``endpoint`` (a host name): an env value, a ConfigMap or Secret of the
    plan it references, or a VaultDynamicSecret template writing into one it references."""
    for container in (template.get("spec") or {}).get("containers") or []:
        for env in container.get("env") or []:
            if endpoint in str(env.get("value") or ""):
                return f"env {env.get('name')}"
    referenced = _referenced_objects(template)
    for kind, type_ in (("ConfigMap", CONFIG_MAP), ("Secret", SECRET)):
        for obj in world.of_type(type_):
            meta = obj["metadata"]
            content = str(obj.get("data") or {}) + str(obj.get("stringData") or {})
            if (
                meta.get("namespace") == namespace
                and (kind, meta.get("name")) in referenced
                and endpoint in content
            ):
                return f"{kind} {meta.get('name')}"
    for secret in world.of_type(VAULT_DYNAMIC_SECRET):
        spec = secret.get("spec") or {}
        destination = spec.get("destination") or {}
        if (
            secret["metadata"].get("namespace") == namespace
            and ("Secret", destination.get("name")) in referenced
            and endpoint in str(destination.get("transformation") or {})
        ):
            return f"VaultDynamicSecret {secret['metadata']['name']} template"
    return None


def _policy_paths(text: str) -> list[str]:
    return re.findall(r'path\s+"([^"]+)"', text)


def glob_matches(pattern: str, path: str) -> bool:
    """Vault policy path globs: a trailing ``*`` is a prefix match, ``+`` one path segment."""
    regex = "".join(
        "[^/]+" if part == "+" else re.escape(part) for part in re.split(r"(\+)", pattern.rstrip("*"))
    )
    return re.fullmatch(regex + (".*" if pattern.endswith("*") else ""), path) is not None


def vault_grants(world: World, namespace: str, service_account: str, path: str) -> str | None:
    """The Vault role bound to this service account whose policies grant ``path`` (phase 2)."""
    policies = {p.get("name"): str(p.get("policy") or "") for p in world.of_type(VAULT_POLICY)}
    for role in world.of_type(VAULT_ROLE):
        if service_account in (role.get("boundServiceAccountNames") or []) and namespace in (
            role.get("boundServiceAccountNamespaces") or []
        ):
            for name in role.get("tokenPolicies") or []:
                if any(glob_matches(p, path) for p in _policy_paths(policies.get(name, ""))):
                    return f"Vault role {role.get('roleName')} (policy {name})"
    return None


def delivery(  # noqa: PLR0911 - one return per documented outcome
    world: World,
    *,
    service: str,
    namespace: str,
    secret: str,
    mount: str,
    endpoints: Iterable[str],
    what: str,
) -> Check:
    """Whether ``service``'s pods receive their ``what`` credentials and where to use them."""
    template = pod_template(world, namespace, service)
    if template is None:
        return refuses("credentials", f"no Deployment {namespace}/{service}")
    if world.phase2:
        secrets = [
            s
            for s in world.of_type(VAULT_DYNAMIC_SECRET)
            if s["metadata"].get("namespace") == namespace
            and (s.get("spec") or {}).get("destination", {}).get("name") == secret
        ]
        if not secrets:
            return refuses("credentials", f"no VaultDynamicSecret writes {namespace}/{secret}")
        spec = secrets[0].get("spec") or {}
        if spec.get("mount") != mount:
            return refuses(
                "credentials", f"VaultDynamicSecret for {secret} reads mount {spec.get('mount')}, not {mount}"
            )
        granted = vault_grants(world, namespace, service, f"{mount}/{spec.get('path', '')}")
        if granted is None:
            return refuses(
                "credentials",
                f"no Vault role bound to {namespace}/{service} grants {mount}/{spec.get('path')}",
            )
    reference = secret_reference(template, secret)
    if reference is None:
        return refuses(
            "credentials",
            f"the pod template of {service} mounts nothing from {secret} "
            "(no volume, envFrom or secretKeyRef)",
        )
    missing = [e for e in endpoints if told(world, namespace, template, e) is None]
    if missing:
        return refuses(
            "credentials", f"{secret} is {reference}, but the pod is not told {what} endpoint {missing[0]}"
        )
    if not world.phase2:
        return pending("credentials", f"{secret} is {reference}; {PHASE_2}")
    return allows("credentials", f"{secret} is {reference}, written by the Vault Secrets Operator")


def foreign_credentials(world: World, *, source: str, owner: str, path: str, what: str) -> Check:
    """Whether ``source`` could obtain ``owner``'s credentials: the Secret lives in the owner's
    namespace (unusable by other namespaces' pods), so only a Vault grant could give them."""
    granted = vault_grants(world, source, source, path) if world.phase2 else None
    if granted is not None:
        return allows("credentials", f"{granted} grants {path} to {source}")
    reason = (
        f"{owner}'s {what} credentials live in namespace {owner}; no Vault policy of {source} grants {path}"
    )
    return refuses("credentials", reason if world.phase2 else f"{reason} ({PHASE_2}: none exist)")


def broker_permission(  # noqa: PLR0911 - one return per documented outcome
    world: World, *, service: str, vhost: str, write: Iterable[str], read: Iterable[str]
) -> Check:
    """Whether ``service``'s broker user may write the exchanges / read the queues on ``vhost``."""
    write, read = list(write), list(read)
    if not world.phase2:
        if not write and not read:
            return refuses(
                "broker-permissions",
                f"no RabbitMQ user of {service} on vhost {vhost} (users come from Vault's RabbitMQ role)",
            )
        return pending("broker-permissions", PHASE_2)
    role = next((r for r in world.of_type(RABBITMQ_ROLE) if r.get("name") == service), None)
    entry = next((v for v in (role or {}).get("vhosts") or [] if v.get("host") == vhost), None)
    if entry is None:
        if not write and not read:
            return refuses(
                "broker-permissions", f"Vault's RabbitMQ role {service} has no permission on vhost {vhost}"
            )
        return refuses(
            "broker-permissions", f"Vault's RabbitMQ role {service} grants nothing on vhost {vhost}"
        )
    if not write and not read:
        if (
            entry.get("write", "^$") == "^$"
            and entry.get("read", "^$") == "^$"
            and entry.get("configure", "^$") == "^$"
        ):
            return refuses(
                "broker-permissions", f"role {service} on vhost {vhost}: nothing readable or writable"
            )
        return allows("broker-permissions", f"role {service} has permissions on vhost {vhost} it should not")
    for exchange in write:
        if not re.search(str(entry.get("write", "^$")), exchange):
            return refuses(
                "broker-permissions",
                f"role {service} may not write {exchange} on {vhost} (write {entry.get('write')})",
            )
    for queue in read:
        if not re.search(str(entry.get("read", "^$")), queue):
            return refuses(
                "broker-permissions",
                f"role {service} may not read {queue} on {vhost} (read {entry.get('read')})",
            )
    return allows(
        "broker-permissions",
        f"role {service} on vhost {vhost}: write {entry.get('write')}, read {entry.get('read')}",
    )
