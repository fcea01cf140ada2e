"""Progress of long runs (resources registered, policies analysed, releases rendered, paths proved).

Work reports with :func:`advance`; a command shows it with :func:`shown`, which draws a transient
line on stderr only when stderr is a terminal. Anywhere else (CI logs, pipes, tests) nothing is
drawn and :func:`advance` costs one global read. The reporter is process-wide, not a context
variable, because the work runs on the SDK's executor threads and the gate's per-pack threads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

Advance = Callable[[str, int], None]
_reporter: Advance | None = None


def advance(what: str, amount: int = 1) -> None:
    """Count ``amount`` more of ``what`` ("resources registered", "policies analysed")."""
    reporter = _reporter
    if reporter is not None:
        reporter(what, amount)


@contextmanager
def shown(stream: TextIO | None = None) -> Iterator[None]:
    """Draw the counts on ``stream`` (stderr) while the block runs, if it is a terminal."""
    target = stream or sys.stderr
    if not target.isatty():
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} {task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=target), transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def report(what: str, amount: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what, total=None)
            progress.advance(tasks[what], amount)

        global _reporter  # noqa: PLW0603 - one progress display per process
        _reporter = report
        try:
            yield
        finally:
            _reporter = None
