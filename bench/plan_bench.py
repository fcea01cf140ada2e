"""Benchmark the offline plan and the policy gate on synthetic catalogs (`make bench`).

For each catalog size it plans the real program in a fresh process and prints seconds,
resources registered, peak memory, the ratio to the SDK floor (the same number of bare
resources registered under the same mocks, without any of our components), and the time
the policy gate takes on that plan. Then the gate's time on the prod stack's plan.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pulumi
import yaml

from rampart.offline.gate import discover_packs, run_gate
from rampart.offline.plan import Plan
from rampart.offline.runner import capture, run_plan

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SIZES = (10, 100, 500)


def synthetic_catalog(size: int, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` services; each calls up to three earlier ones, every fifth has a public route."""
    rng = random.Random(seed)
    services = []
    for i in range(size):
        name = f"svc-{i:04d}"
        earlier = [f"svc-{j:04d}" for j in range(i)]
        service: dict[str, Any] = {
            "name": name,
            "image": f"ghcr.io/acme/{name}:1.{i}.0",
            "port": 8080,
            "replicas": {"min": 2, "max": 6},
            "calls": rng.sample(earlier, k=min(len(earlier), rng.randint(0, 3))),
            "load_balancing": rng.choice(["round_robin", "least_request", "source_ip_hash"]),
        }
        if i % 5 == 0:
            service["routes"] = [{"host": "api.example.com", "path": f"/{name}"}]
        if i % 3 == 0:
            service["database"] = {"engine": "postgres", "storage_gb": 10}
        services.append(service)
    return services


def stack_config(size: int) -> dict[str, Any]:
    """The stack file's config: it names the catalog's services (declared in their own files)."""
    return {
        "rampart:environment": "staging",
        "rampart:target": "kubernetes",
        "rampart:owner": "bench",
        "rampart:cost_center": "bench",
        "rampart:sizing": {"min_replicas": 2, "zone_spread": "required"},
        "rampart:jwt": {
            "issuer": "https://auth.example.com/",
            "jwks_uri": "https://auth.example.com/jwks.json",
        },
        "rampart:vault": {"replicas": 3},
        "rampart:services": [service["name"] for service in synthetic_catalog(size)],
    }


def write_project(directory: Path, size: int) -> None:
    """A project running the real program: Pulumi.yaml, the stack file, one catalog file per service."""
    (directory / "Pulumi.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "rampart",
                "runtime": "python",
                "main": str(PROJECT_ROOT / "infra"),
                "stackConfigDir": "stacks",
            }
        )
    )
    (directory / "stacks" / "services").mkdir(parents=True)
    for service in synthetic_catalog(size):
        declaration = {key: value for key, value in service.items() if key != "name"}
        (directory / "stacks" / "services" / f"{service['name']}.yaml").write_text(
            yaml.safe_dump(declaration)
        )
    config = stack_config(size)
    (directory / "stacks" / "Pulumi.bench.yaml").write_text(yaml.safe_dump({"config": config}))


def child_rampart(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        write_project(Path(tmp), size)
        start = time.perf_counter()
        plan = run_plan("bench", Path(tmp))
        seconds = time.perf_counter() - start
    peak = _peak_mb()
    return {
        "seconds": seconds,
        "resources": len(plan.resources),
        "peak_mb": peak,
        "gate": _gate_seconds(plan),
    }


def child_stack(stack: str) -> dict[str, Any]:
    plan = run_plan(stack, PROJECT_ROOT)
    return {"resources": len(plan.resources), "gate": _gate_seconds(plan)}


def _gate_seconds(plan: Plan) -> float:
    return run_gate(plan, discover_packs(PROJECT_ROOT), PROJECT_ROOT / "policies" / "config").seconds


def child_floor(count: int) -> dict[str, Any]:
    def program() -> None:
        for i in range(count):
            pulumi.CustomResource("bench:index:Bare", f"bare-{i}", {"value": i})

    start = time.perf_counter()
    registrations = capture(program)
    return {"seconds": time.perf_counter() - start, "resources": len(registrations), "peak_mb": _peak_mb()}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, number: int | str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(number)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{kind} {number} failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    if args.child:
        kind = args.child[0]
        if kind == "stack":
            print(json.dumps(child_stack(args.child[1])))
        else:
            print(
                json.dumps(
                    child_rampart(int(args.child[1]))
                    if kind == "rampart"
                    else child_floor(int(args.child[1]))
                )
            )
        return
    columns = [("services", 8), ("seconds", 8), ("resources", 9), ("peak MB", 8), ("floor s", 8)]
    header = " ".join(f"{title:>{width}}" for title, width in [*columns, ("ratio", 6), ("gate s", 7)])
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        ours = run_child("rampart", size)
        floor = run_child("floor", ours["resources"])
        ratio = ours["seconds"] / floor["seconds"]
        print(
            f"{size:>8} {ours['seconds']:>8.2f} {ours['resources']:>9} {ours['peak_mb']:>8.0f} "
            f"{floor['seconds']:>8.2f} {ratio:>6.1f} {ours['gate']:>7.2f}",
            flush=True,
        )
    prod = run_child("stack", "prod")
    print(f"policy gate on the prod stack's plan: {prod['gate']:.2f} s for {prod['resources']} resources")


if __name__ == "__main__":
    main()
