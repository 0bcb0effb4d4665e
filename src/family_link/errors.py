"""One exception family. A ``FamilyLinkError`` is a user error: the CLI prints its message
(no traceback) and exits with its ``exit_code``. Anything else is a bug and keeps its
traceback."""

from __future__ import annotations

__all__ = [
    "FamilyLinkError",
    "ExportError",
    "RulesError",
    "OutputError",
    "Problem",
]

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's input, precise enough to fix by hand."""

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column '{self.column}'"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f"\n  HINT: {self.hint}"
        return text


class FamilyLinkError(Exception):
    """A problem the user can fix. Carries every problem found, not just the first."""

    exit_code = 1
    headline = "family_link cannot continue"

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(file="", message=problems)]
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.headline} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        for p in self.problems:
            text = str(p).lstrip(": ")
            lines.append("- " + text.replace("\n", "\n  "))
        return "\n".join(lines)


class ExportError(FamilyLinkError):
    exit_code = 3
    headline = "The export cannot be used"


class RulesError(FamilyLinkError):
    exit_code = 4
    headline = "The rules are invalid"


class OutputError(FamilyLinkError):
    exit_code = 5
    headline = "The report cannot be written"
