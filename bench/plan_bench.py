"""Benchmark the offline plan and the policy gate on synthetic catalogs (`make bench`).

For each catalog size, in fresh processes: the plan of the real program (seconds, resources, peak
memory), its replay floor (the plan's own resources, with the same types, names, parents and
inputs, registered flat under the same mocks, with none of our code in between), the ratio of the
two, the policy gate on that plan, and the stack-wide proofs a pull request also runs (`rampart
paths`, `rampart access`). Then the marginal cost per service between sizes, and the
figures as JSON in ``out/bench.json``. ``--profile N`` says where an N-service plan's time goes.

  python bench/plan_bench.py                     # 10, 100, 500 and 1,000 services
  python bench/plan_bench.py --sizes 10 100      # (or BENCH_SIZES=10,100 make bench)
  python bench/plan_bench.py --profile 100
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import yaml

from rampart.access import evaluate
from rampart.offline import values
from rampart.offline.gate import discover_packs, run_gate
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import STACK_TYPE, Plan
from rampart.offline.runner import capture, run_plan, stack_platform_config
from rampart.paths import prove

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SIZES = (10, 100, 500, 1000)
# A well-formed digest: the staging stack the catalog runs in requires images pinned by digest.
DIGEST = "sha256:" + "0123456789abcdef" * 4
TEAMS = ("alpha", "bravo", "charlie")
T = TypeVar("T")


def synthetic_catalog(size: int, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` services; each calls up to three earlier ones, every fifth has a public route,
    every third a database."""
    rng = random.Random(seed)
    services = []
    for i in range(size):
        name = f"svc-{i:04d}"
        earlier = [f"svc-{j:04d}" for j in range(i)]
        service: dict[str, Any] = {
            "name": name,
            "image": f"ghcr.io/acme/{name}:1.{i}.0@{DIGEST}",
            "team": TEAMS[i % len(TEAMS)],
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
        "rampart:mesh": {"istiod_replicas": 2},
        "rampart:teams": [{"name": team, "group": f"team-{team}"} for team in TEAMS],
        "rampart:supply_chain": {"allowed_registries": ["ghcr.io/acme"]},
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


# --- children: each measurement in a fresh process ------------------------------------------------


def child_plan(size: int, export: Path) -> dict[str, Any]:
    """Plan the catalog; write the export for the replay; then run the gate, the path proof and the
    access matrix on it (the stack-wide checks a pull request runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_project(Path(tmp), size)
        start = time.perf_counter()
        plan = run_plan("bench", Path(tmp))
        seconds = time.perf_counter() - start
        config = stack_platform_config("bench", Path(tmp))
    peak = _peak_mb()
    plan.write(export)
    paths_s, proof = _timed(lambda: prove(plan, config))
    access_s, _ = _timed(lambda: evaluate(plan, config))
    return {
        "plan_s": seconds,
        "resources": len(plan.resources),
        "peak_mb": peak,
        "gate_s": _gate_seconds(plan),
        "paths": len(proof.results),
        "paths_s": paths_s,
        "access_s": access_s,
    }


def _timed(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def _gate_seconds(plan: Plan) -> float:
    """The gate with the staging stacks' enforcement, the environment the bench stack declares."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(PROJECT_ROOT / "policies" / "config" / "staging", Path(tmp) / plan.stack)
        return run_gate(plan, discover_packs(PROJECT_ROOT), Path(tmp)).seconds


def child_replay(export: Path) -> dict[str, Any]:
    """The replay floor: the plan's resources registered flat, as they were, with no program."""
    plan = Plan.read(export)
    resources = [
        r | {"inputs": _replayable(r.get("inputs") or {})} for r in plan.resources if r["type"] != STACK_TYPE
    ]

    def program() -> None:
        registered: dict[str, pulumi.Resource] = {}
        for r in resources:
            name = r["urn"].rsplit("::", 1)[-1]
            opts = pulumi.ResourceOptions(parent=registered.get(r.get("parent") or ""))
            if r["type"].startswith("pulumi:providers:"):
                package = r["type"].rsplit(":", 1)[-1]
                registered[r["urn"]] = pulumi.ProviderResource(package, name, r["inputs"], opts)
            elif r.get("custom", True):
                registered[r["urn"]] = pulumi.CustomResource(r["type"], name, r["inputs"], opts)
            else:
                registered[r["urn"]] = pulumi.ComponentResource(r["type"], name, None, opts)

    start = time.perf_counter()
    registrations = capture(program, project=plan.project, stack=plan.stack)
    return {"replay_floor_s": time.perf_counter() - start, "resources": len(registrations)}


def _replayable(value: Any) -> Any:
    """The export's inputs as a program would give them: a redacted secret becomes a secret again."""
    return values.replace_secrets(value, lambda: pulumi.Output.secret("[secret]"))


def child_profile(size: int) -> None:
    """Where an N-service plan's time goes: cProfile's cumulative times on the main thread, and the
    registrations (the SDK's mock monitor and our capture), which run on the SDK's executor threads,
    timed directly."""
    registering = [0.0]
    register = CapturingMonitor.RegisterResource

    def timed(monitor: CapturingMonitor, request: Any) -> Any:
        start = time.perf_counter()
        try:
            return register(monitor, request)
        finally:
            registering[0] += time.perf_counter() - start

    CapturingMonitor.RegisterResource = timed  # type: ignore[method-assign,assignment]
    with tempfile.TemporaryDirectory() as tmp:
        write_project(Path(tmp), size)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        run_plan("bench", Path(tmp))
        profile.disable()
        total = time.perf_counter() - start
    stats = pstats.Stats(profile)
    cumulative = {
        f"{Path(file).name}:{func}": row[3]
        for (file, _, func), row in stats.stats.items()  # type: ignore[attr-defined]
    }

    def spent(name: str) -> float:
        return float(cumulative.get(name, 0.0))

    program = spent("<frozen runpy>:run_path")
    imports = spent("<frozen importlib._bootstrap>:_find_and_load")
    export = spent("plan.py:from_registrations")
    parts = {
        "imports (providers, SDK and components, on first use)": imports,
        "component construction (the program's body, less its imports)": program - imports,
        "output resolution (after the body returns, until every output settles)": (
            spent("runner.py:capture") - program
        ),
        "  of which registrations (mock monitor + capture, on executor threads, overlapping)": registering[0],
        "export (Plan.from_registrations)": export,
    }
    print(f"{size} services: {total:.2f} s in all")
    for label, seconds in parts.items():
        print(f"  {seconds:7.2f} s  {100 * seconds / total:5.1f}%  {label}")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# --- the table ------------------------------------------------------------------------------------


def measure(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "plan.json"
        plan = run_child("plan", str(size), str(export))
        replay = run_child("replay", str(export))
    return {
        "services": size,
        "resources": plan["resources"],
        "plan_s": round(plan["plan_s"], 2),
        "replay_floor_s": round(replay["replay_floor_s"], 2),
        "gate_s": round(plan["gate_s"], 2),
        "peak_mb": round(plan["peak_mb"]),
        "paths": plan["paths"],
        "paths_s": round(plan["paths_s"], 2),
        "access_s": round(plan["access_s"], 2),
    }


def marginal_ms(rows: list[dict[str, Any]], key: str) -> list[tuple[int, int, float]]:
    """Milliseconds per added service between consecutive sizes."""
    return [
        (a["services"], b["services"], 1000 * (b[key] - a[key]) / (b["services"] - a["services"]))
        for a, b in itertools.pairwise(rows)
    ]


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "| services | resources | plan (s) | replay floor (s) | ratio | gate (s) | peak MB "
        "| paths | path proof (s) | access (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        ratio = row["plan_s"] / row["replay_floor_s"] if row["replay_floor_s"] else float("nan")
        print(
            f"| {row['services']:,} | {row['resources']:,} | {row['plan_s']:.2f} | "
            f"{row['replay_floor_s']:.2f} | {ratio:.2f} | {row['gate_s']:.2f} | {row['peak_mb']} | "
            f"{row['paths']:,} | {row['paths_s']:.2f} | {row['access_s']:.2f} |"
        )
    if len(rows) > 1:
        print()
        print("| between | plan ms/service | gate ms/service | path proof ms/service | access ms/service |")
        print("| --- | ---: | ---: | ---: | ---: |")
        columns = [marginal_ms(rows, key) for key in ("plan_s", "gate_s", "paths_s", "access_s")]
        for (a, b, plan), (_, _, gate), (_, _, paths), (_, _, access) in zip(*columns, strict=True):
            print(f"| {a:,} → {b:,} | {plan:.1f} | {gate:.1f} | {paths:.1f} | {access:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    sizes = os.environ.get("BENCH_SIZES")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[int(s) for s in sizes.split(",")] if sizes else list(SIZES)
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "out" / "bench.json")
    parser.add_argument("--profile", type=int, metavar="N", help="where an N-service plan's time goes")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "plan":
            print(json.dumps(child_plan(int(rest[0]), Path(rest[1]))))
        elif kind == "replay":
            print(json.dumps(child_replay(Path(rest[0]))))
        return
    if args.profile:
        child_profile(args.profile)
        return
    rows = []
    for size in args.sizes:
        rows.append(measure(size))
        print(f"measured {size} services", file=sys.stderr, flush=True)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
