"""The certificates layer in the composition root."""

from __future__ import annotations

from components.certificates.cert_manager import AcmeAws, Certificates, CertificatesArgs, CertificatesHandle
from components.contract import LayerContext
from rampart.config.models import Certificates as CertificatesConfig


def build(ctx: LayerContext, config: CertificatesConfig) -> CertificatesHandle:
    identity = ctx.aws.pod_identity if ctx.aws else None
    acme = (
        # Only the ACME issuer on EKS answers DNS-01 challenges in Route 53, through Pod Identity.
        AcmeAws(
            cluster_name=identity.cluster_name,
            cluster_arn=identity.cluster_arn,
            partition=identity.partition,
            permissions_boundary=identity.permissions_boundary,
        )
        if identity and config.issuer == "acme"
        else None
    )
    return Certificates(
        "certificates",
        CertificatesArgs(
            config=config,
            aws=acme,
            **ctx.in_cluster(),
        ),
        opts=ctx.cloud_opts,
    ).handle
