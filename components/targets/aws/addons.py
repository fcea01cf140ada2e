"""What the EKS cluster runs that AWS versions: the add-ons, pinned per Kubernetes version in one table,
and the EKS-optimised AL2023 AMI release the nodes boot.

Add-ons: EKS installs "the default version" of an add-on when none is given, chosen at creation and
never moved again, so two clusters built a month apart differ and an upgrade of the control plane leaves
the add-ons behind. Each Kubernetes minor gets its own row here; a cluster upgrade is a new row plus the
`kubernetes.version` bump, reviewed together (`aws eks describe-addon-versions --kubernetes-version <v>
--addon-name <name>` lists what EKS offers; https://docs.aws.amazon.com/eks/latest/userguide/updating-an-add-on.html).
tests/aws/test_lifecycle.py flags a stale row (kube-proxy's version names its Kubernetes minor).
"""

from __future__ import annotations

import re

ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.33": {
        "eks-pod-identity-agent": "v1.3.8-eksbuild.2",
        "vpc-cni": "v1.19.5-eksbuild.1",
        "kube-proxy": "v1.33.0-eksbuild.2",
        "coredns": "v1.12.1-eksbuild.2",
        "aws-ebs-csi-driver": "v1.48.0-eksbuild.1",
        "metrics-server": "v0.8.0-eksbuild.1",
    },
}

# The managed node group's AMI: EKS-optimised AL2023 release `<kubernetes>.<patch>-<yyyymmdd>`
# (https://github.com/awslabs/amazon-eks-ami/releases); Karpenter names the same release `al2023@v<yyyymmdd>`
# (https://karpenter.sh/docs/concepts/nodeclasses/#specamiselectorterms).
AMI_RELEASE = re.compile(r"^(?P<minor>1\.[0-9]{2})\.[0-9]+-(?P<date>[0-9]{8})$")
LATEST_AMI_ALIAS = "al2023@latest"


def addon_version(kubernetes_version: str, addon: str) -> str:
    """The pinned version of ``addon`` for ``kubernetes_version``; a version without a row is an error
    (add the row when the cluster is upgraded)."""
    row = ADDON_VERSIONS.get(kubernetes_version)
    if row is None:
        raise ValueError(
            f"kubernetes.version {kubernetes_version}: no EKS add-on versions pinned for it in "
            f"components/targets/aws/addons.py (pinned: {', '.join(sorted(ADDON_VERSIONS))})"
        )
    return row[addon]


def karpenter_ami_alias(release: str | None) -> str:
    """Karpenter's alias for the node group's release (``1.33.0-20250627`` -> ``al2023@v20250627``);
    ``latest`` only where no release is pinned (config refuses that in staging and prod)."""
    if release is None:
        return LATEST_AMI_ALIAS
    match = AMI_RELEASE.match(release)
    if match is None:
        raise ValueError(f"aws.node_ami_release {release!r} is not <kubernetes>.<patch>-<yyyymmdd>")
    return f"al2023@v{match['date']}"


def stale_pins(table: dict[str, dict[str, str]] = ADDON_VERSIONS) -> list[str]:
    """Rows that cannot be right: kube-proxy follows the control plane's minor version exactly
    ("kube-proxy ... must be the same minor version as your cluster", EKS user guide, managing
    kube-proxy), so a row whose kube-proxy names another minor was copied forward and not updated;
    and every row pins the same add-ons."""
    problems: list[str] = []
    expected = {addon for row in table.values() for addon in row}
    for kubernetes_version, row in sorted(table.items()):
        proxy = row.get("kube-proxy", "")
        if not proxy.startswith(f"v{kubernetes_version}."):
            problems.append(
                f"{kubernetes_version}: kube-proxy {proxy or '(none)'} is not a {kubernetes_version} build"
            )
        for addon in sorted(expected - row.keys()):
            problems.append(f"{kubernetes_version}: {addon} is not pinned")
    return problems
