"""Download every chart the stacks' Helm releases pin into a chart mirror for `rampart render`.

Each chart comes from its own repository with `helm pull` (HTTP repositories and OCI registries
alike), saved as ``<out>/<chart>-<version>.tgz`` with its dependencies inside, the mirror layout
`rampart render --charts <out>` reads. Needs network access and a `helm` binary (RAMPART_HELM or
`--helm`). Charts already in the mirror are kept. Never commit the mirror.

  python scripts/build_chart_mirror.py --out .charts                      # every stack, planned now
  python scripts/build_chart_mirror.py --out .charts --file out/plan-dev.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rampart.offline.plan import Plan
from rampart.offline.project import load_project
from rampart.offline.render import helm_error, helm_pull_args, mirror_chart, pinned_charts, run_helm
from rampart.offline.runner import project_root, run_plan


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(".charts"), help="the mirror directory")
    parser.add_argument("--stack", action="append", default=[], help="plan this stack (default: every stack)")
    parser.add_argument("--file", action="append", type=Path, default=[], help="an existing plan export")
    parser.add_argument("--helm", default=os.environ.get("RAMPART_HELM", "helm"), help="the helm binary")
    args = parser.parse_args()
    root = project_root()
    plans = [Plan.read(path) for path in args.file]
    stacks = args.stack or ([] if args.file else load_project(root).stacks())
    plans += [run_plan(stack, root) for stack in stacks]
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for chart in pinned_charts(plans):
        if mirror_chart(args.out, chart) is not None:
            print(f"kept     {chart.name} {chart.version}")
            continue
        run = run_helm(args.helm, helm_pull_args(chart, args.out))
        if run.returncode == 0:
            print(f"pulled   {chart.name} {chart.version}")
        else:
            failed += 1
            print(f"FAILED   {chart.name} {chart.version}: {helm_error(run)}", file=sys.stderr)
    print(f"chart mirror in {args.out}/ — run: rampart render --stack <stack> --charts {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
