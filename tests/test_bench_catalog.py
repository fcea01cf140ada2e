"""The benchmark's synthetic catalogs stay valid (a benchmark that cannot run measures nothing)."""

from __future__ import annotations

import importlib.util
import json

from rampart.config import load_platform_config, namespace_values
from tests.support.reference import PROJECT_ROOT


def test_synthetic_catalogs_are_valid() -> None:
    spec = importlib.util.spec_from_file_location("plan_bench", PROJECT_ROOT / "bench" / "plan_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for size in (10, 100):
        raw = {
            key: json.dumps(value) if not isinstance(value, str) else value
            for key, value in bench.stack_config(size).items()
        }
        config = load_platform_config(namespace_values(raw))
        assert len(config.services) == size
        assert sum(len(s.calls) for s in config.services) > size // 2
