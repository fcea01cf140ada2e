"""Download the public reference data the offline checks read (`make schemas`).

Lays out the same tree as the shared reference directory:
  crd-schemas/<group>/<kind>_<version>.json  from datreeio/CRDs-catalog
  helm-values/<chart>/{values.yaml,values.schema.json,Chart.yaml}  from each chart's repository
  pulumi/project.schema.json  from pulumi/pulumi
Then point the tests at it: RAMPART_REFERENCE_DIR=<dir> make test.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import yaml

CRD_CATALOG = "datreeio/CRDs-catalog"
CRD_GROUPS = [
    "barmancloud.cnpg.io",
    "cert-manager.io",
    "configuration.konghq.com",
    "elbv2.k8s.aws",
    "gateway.networking.k8s.io",
    "karpenter.k8s.aws",
    "karpenter.sh",
    "monitoring.coreos.com",
    "networking.istio.io",
    "postgresql.cnpg.io",
    "rabbitmq.com",
    "secrets.hashicorp.com",
    "security.istio.io",
    "telemetry.istio.io",
]
ISTIO = "https://istio-release.storage.googleapis.com/charts"
HASHICORP = "https://helm.releases.hashicorp.com"
GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"
# directory name -> (repository, chart, version); kept in step with the versions the platform pins.
CHARTS: dict[str, tuple[str, str, str]] = {
    "istio-base": (ISTIO, "base", "1.30.3"),
    "istiod": (ISTIO, "istiod", "1.30.3"),
    "istio-cni": (ISTIO, "cni", "1.30.3"),
    "istio-gateway": (ISTIO, "gateway", "1.30.3"),
    "istio-ztunnel": (ISTIO, "ztunnel", "1.30.3"),
    "cert-manager": ("https://charts.jetstack.io", "cert-manager", "v1.21.1"),
    "kong-ingress": ("https://charts.konghq.com", "ingress", "0.24.0"),
    "kong": ("https://charts.konghq.com", "kong", "3.4.1"),
    "vault": (HASHICORP, "vault", "0.34.1"),
    "vault-secrets-operator": (HASHICORP, "vault-secrets-operator", "1.4.1"),
    "kube-prometheus-stack": (
        "https://prometheus-community.github.io/helm-charts",
        "kube-prometheus-stack",
        "88.5.3",
    ),
    "loki": (GRAFANA_COMMUNITY, "loki", "18.11.0"),
    "tempo": (GRAFANA_COMMUNITY, "tempo", "2.2.4"),
    "grafana": (GRAFANA_COMMUNITY, "grafana", "12.11.1"),
    "alloy": ("https://grafana.github.io/helm-charts", "alloy", "1.11.1"),
    "cloudnative-pg": ("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0"),
    "aws-load-balancer-controller": (
        "https://aws.github.io/eks-charts",
        "aws-load-balancer-controller",
        "3.5.0",
    ),
    "karpenter": ("oci://public.ecr.aws/karpenter", "karpenter", "1.14.1"),
}
CHART_FILES = ("values.yaml", "values.schema.json", "Chart.yaml")
PULUMI_SCHEMA = "https://raw.githubusercontent.com/pulumi/pulumi/master/sdk/go/common/workspace/project.json"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https sources
        return bytes(response.read())


def fetch_crd_schemas(out: Path) -> int:
    tree = json.loads(get(f"https://api.github.com/repos/{CRD_CATALOG}/git/trees/main?recursive=1"))
    wanted = [
        item["path"]
        for item in tree["tree"]
        if item["type"] == "blob"
        and item["path"].split("/")[0] in CRD_GROUPS
        and item["path"].endswith(".json")
    ]
    for path in wanted:
        target = out / "crd-schemas" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(get(f"https://raw.githubusercontent.com/{CRD_CATALOG}/main/{path}"))
    return len(wanted)


def fetch_chart(out: Path, directory: str, repository: str, chart: str, version: str) -> None:
    target = out / "helm-values" / directory
    target.mkdir(parents=True, exist_ok=True)
    if repository.startswith("oci://"):
        archive = _helm_pull(f"{repository}/{chart}", version)
    else:
        index = yaml.safe_load(get(f"{repository}/index.yaml"))
        entry = next(e for e in index["entries"][chart] if e["version"] == version)
        url = entry["urls"][0]
        archive = get(url if "://" in url else f"{repository}/{url}")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for name in CHART_FILES:
            member = next((m for m in tar.getmembers() if m.name == f"{chart}/{name}"), None)
            if member is not None and (data := tar.extractfile(member)) is not None:
                (target / name).write_bytes(data.read())


def _helm_pull(reference: str, version: str) -> bytes:
    if shutil.which("helm") is None:
        raise SystemExit(f"{reference}: an OCI chart; install helm to fetch it")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["helm", "pull", reference, "--version", version, "--destination", tmp],  # noqa: S607
            check=True,
        )
        return next(Path(tmp).glob("*.tgz")).read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(".reference"))
    args = parser.parse_args()
    try:
        fetch_all(args.out)
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        # No network (or a source moved): one line, not a traceback. URLError is an OSError.
        reason = getattr(exc, "reason", None) or exc
        print(
            f"error: cannot download the reference data ({reason}); "
            "make schemas needs network access, or point RAMPART_REFERENCE_DIR at a copy",
            file=sys.stderr,
        )
        return 1
    return 0


def fetch_all(out: Path) -> None:
    count = fetch_crd_schemas(out)
    print(f"crd-schemas: {count} files")
    for directory, (repository, chart, version) in CHARTS.items():
        fetch_chart(out, directory, repository, chart, version)
        print(f"helm-values/{directory}: {chart} {version}")
    (out / "pulumi").mkdir(parents=True, exist_ok=True)
    (out / "pulumi" / "project.schema.json").write_bytes(get(PULUMI_SCHEMA))
    print(f"reference data in {out}/ — run: RAMPART_REFERENCE_DIR={out} make test")


if __name__ == "__main__":
    sys.exit(main())
