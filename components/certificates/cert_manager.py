"""TLS for the platform: cert-manager and the one ClusterIssuer every other layer asks for certificates.

``self_signed`` (local): a self-signed root CA made by cert-manager, and a CA ClusterIssuer on it.
``acme`` (AWS): Let's Encrypt (or the configured ACME server) with DNS-01 through Route 53; on EKS
cert-manager gets its Route 53 rights through Pod Identity, limited to TXT ``_acme-challenge``
records of the one configured hosted zone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.certificates import NAMESPACE, SERVICE_ACCOUNT
from components.core import charts, labels, netpol, quota, scheduling
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.core.quota import Resources
from components.targets.aws import iam
from rampart.config.models import Certificates as CertificatesConfig

# The release name makes the controller's service account `cert-manager` (the chart's fullname).
RELEASE_NAME = "cert-manager"
CHART = "cert-manager"
CHART_REPOSITORY = "https://charts.jetstack.io"
CHART_VERSION = "v1.21.1"

API_VERSION = "cert-manager.io/v1"
SELF_SIGNED_ISSUER = "rampart-selfsigned-root"
CA_ISSUER = "rampart-ca"
ACME_ISSUER = "rampart-acme"
# Names of the Secrets cert-manager writes the key pairs to.
ROOT_CA_KEYPAIR = "rampart-root-ca"
ACME_ACCOUNT_KEY = "rampart-acme-account"
# Ten years: a root that rotates often breaks every client that pinned it.
ROOT_CA_DURATION = "87600h"
# Leaf certificates: 90 days, renewed 15 days before they expire.
CERTIFICATE_DURATION = "2160h"
CERTIFICATE_RENEW_BEFORE = "360h"
ECDSA_P256 = {"algorithm": "ECDSA", "size": 256}

# The webhook's port (chart default `webhook.securePort`); the API server calls it.
WEBHOOK_PORT = 10250
# The API server (443 on EKS, 6443 on kubeadm/kind clusters) and the ACME server / Route 53 (443).
API_AND_ACME_PORTS = (443, 6443)

# Requests and limits per chart component. The controller caches Certificates and Secrets, so it
# gets the most memory; the webhook only validates and converts.
RESOURCES: Mapping[str, Resources] = {
    "controller": quota.resources(requests=("50m", "128Mi"), limits=("500m", "512Mi")),
    "webhook": quota.resources(requests=("20m", "64Mi"), limits=("250m", "128Mi")),
    "cainjector": quota.resources(requests=("20m", "128Mi"), limits=("250m", "512Mi")),
    "startupapicheck": quota.resources(requests=("10m", "32Mi"), limits=("100m", "64Mi")),
}
DEPLOYMENTS = ("controller", "webhook", "cainjector")
# Selector labels the chart puts on each Deployment's pods (app.kubernetes.io/name).
POD_NAMES = {"controller": "cert-manager", "webhook": "webhook", "cainjector": "cainjector"}


@dataclass(frozen=True)
class AcmeAws:
    """What cert-manager needs from the AWS target to answer DNS-01 challenges in Route 53."""

    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    partition: pulumi.Input[str]
    permissions_boundary: str | None


@dataclass(frozen=True, kw_only=True)
class CertificatesArgs(InClusterArgs):
    config: CertificatesConfig
    # Only for the `acme` issuer on EKS: a Pod Identity role for Route 53.
    aws: AcmeAws | None = None


@dataclass(frozen=True)
class CertificatesHandle:
    """What other layers need to get a certificate: the issuer, and what to wait for."""

    # Public names (the gateway's hosts): ACME on AWS, the internal CA elsewhere.
    cluster_issuer: str
    # In-cluster names (Vault, brokers, databases): always the platform's own CA.
    internal_issuer: str
    namespace: str
    ready: list[pulumi.Resource]

    def internal(self, *after: pulumi.Resource) -> CertificatesHandle:
        """This handle for in-cluster names, which only the platform's own CA can sign (its Secrets
        also carry the ca.crt clients verify with); certificates also wait for ``after``."""
        return dataclasses.replace(self, cluster_issuer=self.internal_issuer, ready=[*self.ready, *after])


def replicas_for(environment: str) -> int:
    # Two of each in prod: a drained node must not stop issuance or the admission webhook.
    return 2 if environment == "prod" else 1


def route53_policy(partition: str, hosted_zone_id: str) -> str:
    """DNS-01 in one hosted zone: TXT records named _acme-challenge.* only."""
    zone = f"arn:{partition}:route53:::hostedzone/{hosted_zone_id}"
    return iam.document(
        [
            iam.allow(["route53:GetChange"], [f"arn:{partition}:route53:::change/*"], Sid="WatchChanges"),
            iam.allow(
                ["route53:ChangeResourceRecordSets"],
                [zone],
                Sid="WriteChallengeRecords",
                Condition={
                    "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]
                    },
                },
            ),
            iam.allow(["route53:ListResourceRecordSets"], [zone], Sid="ReadZoneRecords"),
            # cert-manager looks a zone up by name when a solver gives no hostedZoneID (ours always
            # does, an Issuer added later may not); the action supports no resource-level scope.
            iam.allow(["route53:ListHostedZonesByName"], "*", Sid="FindZoneByName"),
        ]
    )


def quota_hard(replicas: int) -> dict[str, str]:
    """Room for every pod the chart runs, plus one surge pod per Deployment during a rollout."""
    pods = dict.fromkeys(DEPLOYMENTS, replicas + 1) | {"startupapicheck": 1}
    containers = [(RESOURCES[component], count) for component, count in pods.items()]
    return (
        quota.pods_total(sum(pods.values()), containers) | {"persistentvolumeclaims": "0"} | quota.NOT_EXPOSED
    )


def _component_values(component: str, replicas: int) -> dict[str, object]:
    values: dict[str, object] = {"replicaCount": replicas, "resources": RESOURCES[component]}
    if replicas > 1:
        values["podDisruptionBudget"] = {"enabled": True}
        # Replicas on different nodes where possible, so one node loss leaves one running.
        values["topologySpreadConstraints"] = [
            scheduling.spread({labels.NAME: POD_NAMES[component]}, scheduling.HOST)
        ]
    return values


def helm_values(config: CertificatesConfig, replicas: int) -> dict[str, object]:
    return {
        # The chart installs and upgrades the CRDs; `keep` leaves them (and every Certificate) on uninstall.
        "crds": {"enabled": True, "keep": True},
        **_component_values("controller", replicas),
        "webhook": _component_values("webhook", replicas),
        "cainjector": _component_values("cainjector", replicas),
        "startupapicheck": {"resources": RESOURCES["startupapicheck"]},
        # Leader-election leases in our own namespace: no RBAC for cert-manager in kube-system.
        "global": {"leaderElection": {"namespace": NAMESPACE}},
        # DNS-01 self-checks through the cluster DNS (allowed by allow-dns) rather than querying
        # the zone's authoritative servers directly, which would need port 53 to the internet.
        "dns01RecursiveNameserversOnly": config.issuer == "acme",
    }


def allow_api_and_acme_egress(aws: bool) -> netpol.Spec:
    """Every cert-manager pod calls the API server; the controller also the ACME server and Route 53.
    Their addresses are not known in advance, so the rule is by port only."""
    rules = [netpol.EgressRule(ports=netpol.tcp(*API_AND_ACME_PORTS))]
    if aws:
        # The Pod Identity agent on the node hands out the Route 53 credentials.
        rules.append(iam.to_pod_identity_agent())
    return netpol.egress(None, rules)


def allow_webhook_ingress() -> netpol.Spec:
    """The API server calls the admission webhook; it is not a pod, so no selector can name it."""
    return netpol.ingress(
        {labels.NAME: POD_NAMES["webhook"]}, [netpol.IngressRule(ports=netpol.tcp(WEBHOOK_PORT))]
    )


def _issuer_ref(issuer: str) -> dict[str, str]:
    return {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}


def root_ca_spec() -> dict[str, object]:
    return {
        "isCA": True,
        "commonName": "rampart-root-ca",
        "subject": {"organizations": ["rampart"]},
        "secretName": ROOT_CA_KEYPAIR,
        "duration": ROOT_CA_DURATION,
        # Keep the key on renewal so certificates signed by the old root still verify.
        "privateKey": ECDSA_P256 | {"rotationPolicy": "Never"},
        "issuerRef": _issuer_ref(SELF_SIGNED_ISSUER),
    }


def acme_issuer_spec(config: CertificatesConfig, region: pulumi.Input[str] | None) -> dict[str, object]:
    route53: dict[str, object] = {"hostedZoneID": config.hosted_zone_id}
    if region is not None:
        route53["region"] = region
    return {
        "acme": {
            "email": config.acme_email,
            "server": config.acme_server,
            "privateKeySecretRef": {"name": ACME_ACCOUNT_KEY},
            # No credentials in the issuer: the controller's ambient ones (Pod Identity) are used.
            "solvers": [{"dns01": {"route53": route53}}],
        }
    }


def _region_of(cluster_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    # arn:<partition>:eks:<region>:<account>:cluster/<name>
    return pulumi.Output.from_input(cluster_arn).apply(lambda arn: arn.split(":")[3])


def certificate(
    name: str,
    *,
    namespace: pulumi.Input[str],
    dns_names: Sequence[pulumi.Input[str]],
    secret_name: str,
    handle: CertificatesHandle,
    provider: k8s.Provider,
    parent: pulumi.Resource,
) -> k8s.apiextensions.CustomResource:
    """A certificate from the platform issuer, in ``namespace``, stored in Secret ``secret_name``
    (the Certificate object is named after its Secret)."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="Certificate",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=namespace),
        spec={
            "secretName": secret_name,
            "dnsNames": list(dns_names),
            "duration": CERTIFICATE_DURATION,
            "renewBefore": CERTIFICATE_RENEW_BEFORE,
            # A fresh key on every renewal.
            "privateKey": ECDSA_P256 | {"rotationPolicy": "Always"},
            "issuerRef": _issuer_ref(handle.cluster_issuer),
        },
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=handle.ready),
    )


class Certificates(InClusterComponent):
    handle: CertificatesHandle
    route53_role: iam.PodIdentityRole | None

    def __init__(self, name: str, args: CertificatesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:tls:Certificates", name, provider=args.provider, opts=opts)
        config = args.config
        replicas = replicas_for(args.environment)
        common = labels.common(args.environment) | {labels.NAME: RELEASE_NAME}

        self.route53_role = None
        if config.issuer == "acme" and args.aws is not None:
            self.route53_role = self._route53_role(name, config, args.aws)

        # cert-manager's pods run `restricted`: non-root, RuntimeDefault seccomp, ALL capabilities
        # dropped, no privilege escalation, read-only root fs (the chart's securityContext defaults).
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=common,
            quota=quota_hard(replicas),
            container_defaults=ContainerDefaults.of(RESOURCES["webhook"]),
            policies={
                "allow-api-and-acme-egress": allow_api_and_acme_egress(self.route53_role is not None),
                "allow-webhook-ingress": allow_webhook_ingress(),
            },
            opts=self.on_cluster(),
        )
        ns, baseline = created.name, created.resources
        identity = [self.route53_role] if self.route53_role is not None else []
        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(config, replicas),
            # Pod Identity credentials are injected at pod start: the association must exist first.
            opts=self.on_cluster(depends_on=[*args.depends_on, *baseline, *identity]),
        )

        # The internal CA always exists: in-cluster names (vault.vault.svc, ...) cannot get ACME
        # certificates, and clients of in-cluster TLS need a ca.crt to trust.
        issuers: list[pulumi.Resource] = self._ca_chain(name, release, ns)
        issuer = CA_ISSUER
        if config.issuer == "acme":
            region = _region_of(args.aws.cluster_arn) if args.aws is not None else None
            issuers.append(self._cluster_issuer(name, ACME_ISSUER, acme_issuer_spec(config, region), release))
            issuer = ACME_ISSUER

        self.handle = CertificatesHandle(
            cluster_issuer=issuer, internal_issuer=CA_ISSUER, namespace=NAMESPACE, ready=[release, *issuers]
        )
        self.register_outputs({"clusterIssuer": issuer, "namespace": ns})

    def _route53_role(self, name: str, config: CertificatesConfig, aws: AcmeAws) -> iam.PodIdentityRole:
        assert config.hosted_zone_id is not None  # enforced by the config model for `acme`
        zone_id = config.hosted_zone_id
        return iam.PodIdentityRole(
            f"{name}-route53",
            cluster_name=aws.cluster_name,
            cluster_arn=aws.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy_json=pulumi.Output.from_input(aws.partition).apply(lambda p: route53_policy(p, zone_id)),
            permissions_boundary=aws.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cluster_issuer(
        self, name: str, issuer: str, spec: Mapping[str, object], after: pulumi.Resource
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{issuer}",
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=issuer),
            spec=dict(spec),
            opts=self.on_cluster([after]),
        )

    def _ca_chain(self, name: str, release: pulumi.Resource, ns: pulumi.Input[str]) -> list[pulumi.Resource]:
        """selfSigned issuer -> root CA certificate (its Secret in cert-manager's namespace, where a
        ClusterIssuer reads it) -> CA issuer that signs every platform certificate."""
        self_signed = self._cluster_issuer(name, SELF_SIGNED_ISSUER, {"selfSigned": {}}, release)
        root = k8s.apiextensions.CustomResource(
            f"{name}-root-ca",
            api_version=API_VERSION,
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ROOT_CA_KEYPAIR, namespace=ns),
            spec=root_ca_spec(),
            opts=self.on_cluster([self_signed]),
        )
        ca = self._cluster_issuer(name, CA_ISSUER, {"ca": {"secretName": ROOT_CA_KEYPAIR}}, root)
        return [self_signed, root, ca]
