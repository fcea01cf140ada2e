"""Progress is drawn on a terminal only: logs and pipes get the command's output and nothing else."""

from __future__ import annotations

import io

import pulumi

from rampart import progress
from rampart.offline.runner import capture


def minimal_program() -> None:
    for index in range(3):
        pulumi.CustomResource("test:index:Thing", f"thing-{index}", {"index": index})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with progress.shown(stream):
        capture(minimal_program)
    assert stream.getvalue() == ""


def test_a_terminal_sees_the_resources_registered() -> None:
    stream = Terminal()
    counted: list[int] = []
    with progress.shown(stream):
        registrations = capture(minimal_program)
        counted.append(len(registrations))
    assert "resources registered" in stream.getvalue()
    assert counted[0] == 4  # the stack and three things
    # Outside the block nothing reports anywhere (and nothing fails).
    progress.advance("resources registered")
