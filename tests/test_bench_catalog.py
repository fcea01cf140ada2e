"""The benchmark's synthetic catalogs stay valid (a benchmark that cannot run measures nothing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from rampart.offline.runner import stack_platform_config
from tests.support.reference import PROJECT_ROOT


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("plan_bench", PROJECT_ROOT / "bench" / "plan_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_synthetic_catalogs_are_valid(tmp_path: Path) -> None:
    bench = _bench()
    for size in (10, 100):
        # The project the benchmark plans: a stack file naming a catalog of one file per service.
        root = tmp_path / str(size)
        root.mkdir()
        bench.write_project(root, size)
        config = stack_platform_config("bench", root)
        assert len(config.services) == size
        assert sum(len(s.calls) for s in config.services) > size // 2


def test_the_benchmark_measures_a_small_catalog_end_to_end(tmp_path: Path) -> None:
    """`make bench`'s pieces on two services: the plan, its replay floor and the gate run in fresh
    processes, and the row has the shape out/bench.json promises (no timing is asserted)."""
    bench = _bench()
    row = bench.measure(2)
    assert set(row) == {
        "services",
        "resources",
        "plan_s",
        "replay_floor_s",
        "gate_s",
        "peak_mb",
        "paths",
        "paths_s",
        "access_s",
    }
    assert row["services"] == 2
    # The replay registers exactly the plan's resources; a plan of two services has the platform too.
    assert row["resources"] > 100
    assert all(row[key] > 0 for key in ("plan_s", "replay_floor_s", "gate_s", "peak_mb", "paths_s"))
    assert row["access_s"] >= 0  # milliseconds for two services: it may round to 0.00
    # The path proof walked the stack's paths (two services: their calls, routes, refusals, the platform's).
    assert row["paths"] > 50
    rows = [row, {**row, "services": 4, "plan_s": row["plan_s"] + 2}]
    ((first, last, per_service),) = bench.marginal_ms(rows, "plan_s")
    assert (first, last) == (2, 4) and per_service == pytest.approx(1000.0)
