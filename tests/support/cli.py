"""Run the installed `rampart` command as a user would, keeping its output apart for the assertions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

RAMPART = str(Path(sys.executable).parent / "rampart")


def rampart(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``rampart *args``: its exit code, stdout and stderr (a non-zero exit is not an error here)."""
    return subprocess.run(
        [RAMPART, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def merged(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``argv`` as CI runs it: output to a pipe, stderr merged into stdout in order, a non-zero exit
    returned rather than raised."""
    into_stdout = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    return subprocess.run(argv, cwd=cwd, env=env, timeout=timeout, text=True, check=False, **into_stdout)
