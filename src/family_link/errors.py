"""One exception family. A ``FamilyLinkError`` is a user error: the CLI prints its message
(no traceback) and exits with its ``exit_code``. Anything else is a bug and keeps its
traceback."""

from __future__ import annotations

__all__ = [
    "FamilyLinkError",
    "ExportError",
    "RulesError",
    "OutputError",
    "RunFolderError",
    "KeyFileError",
    "BatchIncompleteError",
    "WorkerStoppedError",
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


class RunFolderError(FamilyLinkError):
    """A report folder given as input (``check --previous``, ``audit RUN_DIR``) cannot be
    used. Same exit code as an unusable export: an input the user gave cannot be read."""

    exit_code = 3
    headline = "The report folder cannot be used"


class KeyFileError(FamilyLinkError):
    """The pseudonymisation key is missing, unreadable, too short or too weak. No key, no
    auditor's report: there is never a default key."""

    exit_code = 6
    headline = "The key cannot be used"


class BatchIncompleteError(FamilyLinkError):
    """A batch ran to the end but at least one export failed (each is listed, and recorded
    in summary.csv); the other practices' reports were written."""

    exit_code = 7
    headline = "The batch finished, but some exports failed"


class WorkerStoppedError(FamilyLinkError):
    """A worker process of the run (``check --jobs``, ``batch --jobs``) ended before it
    finished: most often the system stopped it for lack of memory. Nothing is wrong with
    the inputs, and no report was written for what it held."""

    exit_code = 8
    headline = "The run could not finish on this machine"
    hint = "run again with fewer --jobs (or --jobs 1), or on a machine with more memory"
