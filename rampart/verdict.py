"""What a `rampart` command prints: styled on a terminal, plain text in logs, and one closing line.

Every command ends with one verdict line that states the overall result and agrees with the exit
code, so a CI log or a terminal tells the outcome from its last line alone:

    plan FAILED: 1 stateful resource would be deleted; policy gate passed
    plan passed: 412 resources; policy gate passed (0 mandatory, 39 advisory)

Rich renders markup as colour on a terminal; on a pipe or file it strips the markup and writes
plain text (no escape codes unless FORCE_COLOR asks for them; NO_COLOR is honoured).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import NoReturn, TextIO

import typer
from rich.console import Console
from rich.text import Text

# Piped output (CI logs) is laid out this wide: a log has no terminal to fit.
LOG_WIDTH = 180
PASSED = "passed"
FAILED = "FAILED"


def console(stream: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): the terminal's width on a terminal, else LOG_WIDTH."""
    target = stream or (sys.stderr if stderr else sys.stdout)
    return Console(file=stream, stderr=stderr, width=None if target.isatty() else LOG_WIDTH)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 resource``, ``2 resources``: numbers in messages read as counts."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


@dataclass
class Verdict:
    """The outcome of one command: what failed (if anything) and what else is worth one line."""

    command: str
    failures: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    # The exit code on failure: 1 for a failed check, 2 for unusable input (as click uses for usage).
    code: int = 1

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, text: str, code: int | None = None) -> Verdict:
        self.failures.append(text)
        if code is not None:
            self.code = code
        return self

    def add(self, text: str) -> Verdict:
        self.facts.append(text)
        return self

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else self.code

    def line(self) -> str:
        status = PASSED if self.passed else FAILED
        parts = [*self.failures, *self.facts]
        return f"{self.command} {status}" + (f": {'; '.join(parts)}" if parts else "")

    def text(self) -> Text:
        status = PASSED if self.passed else FAILED
        line = Text(f"{self.command} ", style="bold")
        line.append(status, style="bold green" if self.passed else "bold red")
        line.append(self.line()[len(self.command) + 1 + len(status) :])
        return line

    def finish(self, out: Console, err: Console) -> None:
        """Print the verdict (stdout when it passed, stderr when it failed); exit with its code."""
        (out if self.passed else err).print(self.text(), highlight=False, soft_wrap=True)
        if not self.passed:
            raise typer.Exit(self.code)

    def stop(self, out: Console, err: Console, text: str, code: int = 1) -> NoReturn:
        """Fail now with ``text`` as the reason."""
        self.fail(text, code)
        self.finish(out, err)
        raise typer.Exit(self.code)  # pragma: no cover - finish raised already
