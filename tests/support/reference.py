"""Where the offline reference data lives (never copied into the project).

RAMPART_REFERENCE_DIR overrides the base directory; RAMPART_CRD_SCHEMAS and
RAMPART_HELM_VALUES override one part each. Defaults: ../shared/reference, then
.reference/ (what `make schemas` downloads).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DEFAULTS = (PROJECT_ROOT.parent / "shared" / "reference", PROJECT_ROOT / ".reference")


def reference_dir() -> Path | None:
    configured = os.environ.get("RAMPART_REFERENCE_DIR")
    candidates = (Path(configured),) if configured else _DEFAULTS
    return next((path for path in candidates if path.is_dir()), None)


def reference_path(part: str, env: str | None = None) -> Path:
    """The reference sub-directory or file ``part``, or skip the test saying how to get it."""
    if env and os.environ.get(env):
        path = Path(os.environ[env])
    else:
        base = reference_dir()
        path = base / part if base else Path(part)
    if not path.exists():
        pytest.skip(
            f"reference data {part!r} not found at {path} "
            "(set RAMPART_REFERENCE_DIR, or run `make schemas` to download it)"
        )
    return path


def crd_schemas() -> Path:
    return reference_path("crd-schemas", "RAMPART_CRD_SCHEMAS")


def helm_values() -> Path:
    return reference_path("helm-values", "RAMPART_HELM_VALUES")
