"""The benchmark's synthetic catalogs stay valid (a benchmark that cannot run measures nothing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rampart.offline.runner import stack_platform_config
from tests.support.reference import PROJECT_ROOT


def test_synthetic_catalogs_are_valid(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("plan_bench", PROJECT_ROOT / "bench" / "plan_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for size in (10, 100):
        # The project the benchmark plans: a stack file naming a catalog of one file per service.
        root = tmp_path / str(size)
        root.mkdir()
        bench.write_project(root, size)
        config = stack_platform_config("bench", root)
        assert len(config.services) == size
        assert sum(len(s.calls) for s in config.services) > size // 2
