"""Batch runs: every export in a folder (one practice per subfolder), for a scheduler.

``run_batch`` checks each practice into ``OUT/<practice>/`` with ``run_check``, carries on
past an export that fails and records why (the error's message, which names files, rows and
columns, never patient values; for a bug, only the exception's type, exit code 1), then writes ``OUT/summary.csv`` (one row per practice) and
``OUT/batch.json``, and with a key the combined auditor's report in ``OUT/audit/``.

The rules are validated and the key is checked before any practice is read, so a bad
rules folder or key fails the whole batch at once (exit 4 or 6) instead of once per
practice. A failed export makes the batch end with ``BatchIncompleteError`` (exit 7) after
everything else is written. Domain code: no click here; the CLI passes a progress callback.

With ``jobs`` > 1 the practices are checked that many at a time in worker processes (an
ICB's practices are independent exports, so this is where more processes help most);
the files written are the same for any ``jobs``.
"""

from __future__ import annotations

__all__ = ["BatchResult", "PracticeOutcome", "find_exports", "run_batch", "SUMMARY_MARKER"]

import errno
import json
import multiprocessing
import os
import re
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import pandas as pd

from . import __version__
from ._process import command_line_settings
from .audit import load_audit_run, write_audit
from .check import run_check
from .errors import ExportError, FamilyLinkError, OutputError, Problem, RunFolderError, WorkerStoppedError
from .previous import check_previous_not_later
from .report import check_destination, only_writer, resolved_out
from .rules import load_ruleset

SUMMARY_MARKER = "batch.json"  # a folder holding this file holds a batch's output
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PracticeOutcome:
    practice: str
    status: str  # "ok" or "failed"
    exit_code: int
    patients: int | None
    rejected_rows: int | None
    flags_per_rule: dict[str, int]
    error: str
    warning: str = ""  # files with many rows rejected (_export.HeavyRejection.counts), else ""


@dataclass(frozen=True)
class BatchResult:
    out_dir: Path
    outcomes: list[PracticeOutcome]
    audit_dir: Path | None

    @property
    def failed(self) -> list[PracticeOutcome]:
        return [o for o in self.outcomes if o.status != "ok"]


def _may_be_an_export(entry: Path) -> bool:
    """Whether an entry of the batch's folder is, or was meant to be, a practice's export:
    a folder; any symbolic link (one that leads nowhere is a practice whose export went
    missing: an unmounted share); a CSV file (a one-file report put beside the folders).
    Not hidden entries, an office program's lock files (~$...) or other files (Thumbs.db,
    desktop.ini, a list of practices): no export is in them."""
    if entry.name.startswith((".", "~$")):
        return False
    return entry.is_symlink() or entry.is_dir() or entry.suffix.lower() == ".csv"


def find_exports(folder: Path | str) -> list[Path]:
    """The practice exports in ``folder``, in name order (``_may_be_an_export``): its
    subfolders, and the links and CSV files beside them, which their checks then fail
    (``_unusable_entry``): a practice whose export went missing (an unmounted share) must
    show in summary.csv, not vanish from it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError([Problem(str(folder), "not found or not a folder",
                                      hint="give batch a folder holding one subfolder per practice export")])
    exports = sorted((p for p in folder.iterdir() if _may_be_an_export(p)), key=lambda p: p.name)
    if not exports:
        raise RunFolderError([Problem(str(folder), "holds no practice subfolders",
                                      hint="put each practice's export in a subfolder of its own")])
    # A folder's name names its output folder; an entry that is no folder is only a failed row.
    bad = [p.name for p in exports if p.is_dir() and not _NAME.match(p.name)]
    if bad:
        raise RunFolderError([Problem(str(folder / n), "is not a usable practice name (letters, digits, '.', "
                                      "'_' and '-' only; it names an output folder)") for n in bad])
    return exports


def _unusable_entry(export: Path) -> ExportError | None:
    """Why an entry of the batch's folder is not a practice's export folder, or None."""
    hint = "put each practice's export in a subfolder of its own, and move anything else out of the folder"
    try:
        os.stat(export)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ExportError([Problem(str(export), "is a symbolic link that leads back to itself (a loop)",
                                        hint="point the link at the practice's export folder, or remove it")])
        if export.is_symlink():
            return ExportError([Problem(str(export), "is a link to a folder that cannot be reached",
                                        hint="mount or restore the folder it points to (a network share?), "
                                             "or remove the link")])
        return ExportError([Problem(str(export), f"cannot be read ({exc.strerror})",
                                    hint="check the folder is there and readable")])
    if not export.is_dir():
        return ExportError([Problem(str(export), "is a file, not a practice's export folder", hint=hint)])
    return None


def _check_previous_batch(previous: Path, as_of: date) -> None:
    """Refuse, before any practice is checked, a --previous that is not a batch's --out
    folder or is as of a later date: a misspelt one used to leave every flag "not compared"
    without a word.
    A practice new this month simply has no folder in it (``_last_report``)."""
    hint = "give --previous the folder last month's batch wrote (it holds batch.json and summary.csv)"
    marker = previous / SUMMARY_MARKER
    if not previous.is_dir():
        raise RunFolderError([Problem(str(previous), "not found or not a folder", hint=hint)])
    if not marker.is_file():
        what = ("is one practice's report, not a batch's folder" if (previous / "run.json").is_file()
                else f"holds no {SUMMARY_MARKER}: it is not a folder batch wrote")
        raise RunFolderError([Problem(str(previous), what, hint=hint)])
    try:
        previous_as_of = date.fromisoformat(json.loads(marker.read_text(encoding="utf-8"))["as_of"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError([Problem(str(marker), "is not a family_link batch.json (no readable as_of)",
                                      hint=hint)]) from None
    check_previous_not_later(previous_as_of, as_of, previous)


def _refuse_out_inside(folder: Path, out_dir: Path) -> None:
    """An --out inside FOLDER would be checked as a practice by the next batch."""
    inside, out = resolved_out(folder), resolved_out(out_dir)
    if out == inside or inside in out.parents:
        raise OutputError([Problem(str(out_dir), f"lies inside {folder}, the folder of practice exports "
                                   "(next month's batch would take it for a practice)",
                                   hint="give --out a folder outside the exports' folder")])


def _prepare_out(out_dir: Path, exports: list[Path], force: bool) -> None:
    check_destination(out_dir, force, SUMMARY_MARKER, what="batch", restore=False)
    names = {p.name for p in exports}
    if {"audit", "summary.csv", SUMMARY_MARKER} & names:
        raise RunFolderError([Problem(str(exports[0].parent), "holds a practice named audit, summary.csv or "
                                      "batch.json, which the batch's own outputs use",
                                      hint="rename that practice's folder")])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(out_dir, 0o700)
    except OSError as exc:
        raise OutputError([Problem(str(out_dir), f"cannot be created ({exc.strerror})",
                                   hint="check the folder exists and you may write to it")]) from None


def _failure_text(exc: FamilyLinkError, folder: Path) -> str:
    """The error's message with the batch folder's own path cut, on one line."""
    text = exc.render().replace(str(folder.resolve()) + os.sep, "").replace(str(folder) + os.sep, "")
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _last_report(previous: Path | str | None, practice: str) -> Path | None:
    """The practice's report in last month's batch, where it has one."""
    last = Path(previous) / practice if previous is not None else None
    if last is not None and not (last / "flags.csv").is_file():
        return None  # a practice new to this month's batch has nothing to compare with
    return last


def _bug_outcome(practice: str, error: str) -> PracticeOutcome:
    return PracticeOutcome(practice, "failed", 1, None, None, {}, error)


def _check_practice(export: Path, practice_out: Path, as_of: date, rules_dir: Path | str | None,
                    last: Path | None, folder: Path) -> PracticeOutcome:
    """One practice's check into ``practice_out``, as its row of the summary (never raises
    for the export's own problems or a bug met while checking it)."""
    unusable = _unusable_entry(export)
    if unusable is not None:
        return PracticeOutcome(export.name, "failed", unusable.exit_code, None, None, {},
                               _failure_text(unusable, folder))
    try:
        result = run_check(export, practice_out, as_of=as_of, rules_dir=rules_dir, force=True, previous=last)
        return PracticeOutcome(export.name, "ok", 0, result.patients, result.rejected_rows,
                               dict(result.flags_per_rule), "",
                               " ".join(h.counts() for h in result.heavy_rejections))
    except FamilyLinkError as exc:
        return PracticeOutcome(export.name, "failed", exc.exit_code, None, None, {}, _failure_text(exc, folder))
    except Exception as exc:  # noqa: BLE001 - a bug on one export must not stop the others
        # Only the exception's type is recorded: its message could quote a patient value.
        return _bug_outcome(export.name, f"a bug in family_link ({type(exc).__name__}): run family-link check on "
                                         "this export alone to see the traceback, and report it")


def _finished(future: Future, practice: str) -> PracticeOutcome:
    """A worker's outcome; a worker that died (killed for lack of memory, say) fails only
    the practices it, or the pool it broke, had not finished."""
    try:
        return future.result()
    except BrokenProcessPool:
        return PracticeOutcome(practice, "failed", WorkerStoppedError.exit_code, None, None, {},
                               "the process checking this export ended unexpectedly (out of memory?): "
                               "run family-link check on this export alone, or the batch with fewer --jobs")


def _export_bytes(export: Path) -> int:
    """The size of an export's files (0 for what cannot be read: its check will say why)."""
    try:
        return sum(f.stat().st_size for f in export.iterdir() if f.is_file())
    except OSError:
        return 0


def _check_practices_in_processes(tasks: list[tuple], jobs: int,
                                  progress: Callable[[str], None] | None) -> list[PracticeOutcome]:
    """``_check_practice`` for every task on up to ``jobs`` worker processes, the outcomes
    in the tasks' order. Workers are started afresh (spawn), not forked: a fork copies
    whatever locks the parent's threads hold at that moment; each gets the command line's
    process settings (``command_line_settings``)."""
    context = multiprocessing.get_context("spawn")
    # The largest exports first (by their files' bytes), so that no large practice starts
    # last while the other workers sit idle; the order decides only when each is checked.
    order = sorted(range(len(tasks)), key=lambda i: (-_export_bytes(tasks[i][0]), i))
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=context, initializer=command_line_settings) as pool:
        futures = {pool.submit(_check_practice, *tasks[i]): i for i in order}
        outcomes: list[PracticeOutcome | None] = [None] * len(tasks)
        try:
            for future in as_completed(futures):
                i = futures[future]
                outcomes[i] = _finished(future, tasks[i][0].name)
                if progress is not None:
                    progress(tasks[i][0].name)
        except BaseException:  # Ctrl-C, say: no practice waiting in the queue starts
            for future in futures:
                future.cancel()
            raise
    return [o for o in outcomes if o is not None]


def summary_frame(outcomes: list[PracticeOutcome], rule_ids: list[str]) -> pd.DataFrame:
    rows = []
    for o in outcomes:
        row: dict[str, object] = {"practice": o.practice, "status": o.status, "exit_code": o.exit_code,
                                  "patients": "" if o.patients is None else o.patients,
                                  "rejected_rows": "" if o.rejected_rows is None else o.rejected_rows,
                                  "flags": "" if o.status != "ok" else sum(o.flags_per_rule.values())}
        for r in rule_ids:
            row[f"flags_{r}"] = o.flags_per_rule.get(r, "") if o.status == "ok" else ""
        row["error"] = o.error
        row["warning"] = o.warning
        rows.append(row)
    # warning: appended last, so that readers of the earlier columns are unaffected.
    cols = ["practice", "status", "exit_code", "patients", "rejected_rows", "flags",
            *[f"flags_{r}" for r in rule_ids], "error", "warning"]
    return pd.DataFrame(rows, columns=cols)


def run_batch(folder: Path | str, out_dir: Path | str, *, as_of: date, rules_dir: Path | str | None = None,
              key: bytes | None = None, force: bool = False, previous: Path | str | None = None,
              exports: list[Path] | None = None,
              progress: Callable[[str], None] | None = None, jobs: int = 1) -> BatchResult:
    """Check every practice export in ``folder`` into ``out_dir/<practice>/``. Never raises
    for a single bad export; see the module doc for what does fail the whole batch.

    With ``jobs`` > 1, up to that many practices are checked at once, each in a process of
    its own; every file written is the same as with ``jobs`` 1 (``progress`` is then called
    as each practice finishes, in whatever order they do)."""
    folder, out_dir = Path(folder), Path(out_dir)
    ruleset = load_ruleset(rules_dir)  # fail once, up front, on invalid rules
    exports = exports if exports is not None else find_exports(folder)
    _refuse_out_inside(folder, out_dir)
    if previous is not None:
        _check_previous_batch(Path(previous), as_of)
    # The only batch writing out_dir until its batch.json is written (a second one is
    # refused at once; each practice's and the audit's folders have locks of their own).
    with only_writer(out_dir):
        return _run_batch(folder, out_dir, ruleset, exports, as_of=as_of, rules_dir=rules_dir, key=key,
                          force=force, previous=previous, progress=progress, jobs=jobs)


def _run_batch(folder: Path, out_dir: Path, ruleset, exports: list[Path], *, as_of: date,
               rules_dir: Path | str | None, key: bytes | None, force: bool, previous: Path | str | None,
               progress: Callable[[str], None] | None, jobs: int) -> BatchResult:
    _prepare_out(out_dir, exports, force)
    tasks = [(export, out_dir / export.name, as_of, rules_dir, _last_report(previous, export.name), folder)
             for export in exports]
    if jobs <= 1 or len(tasks) <= 1:
        outcomes = []
        for task in tasks:
            outcomes.append(_check_practice(*task))
            if progress is not None:
                progress(task[0].name)
    else:
        outcomes = _check_practices_in_processes(tasks, jobs, progress)
    rule_ids = [r.id for r in ruleset.rules]
    summary = summary_frame(outcomes, rule_ids)
    _write_atomic(out_dir / "summary.csv", summary.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    audit_dir = None
    ok = [o for o in outcomes if o.status == "ok"]
    if key is not None and ok:
        runs = [load_audit_run(out_dir / o.practice, o.practice) for o in ok]
        audit_dir = write_audit(runs, out_dir / "audit", key, force=True,
                                not_included=tuple(o.practice for o in outcomes if o.status != "ok"))
    meta = {"tool": "family_link", "version": __version__, "as_of": as_of.isoformat(),
            "practices": len(outcomes), "failed": [o.practice for o in outcomes if o.status != "ok"],
            "audit": "audit" if audit_dir is not None else None, "summary": "summary.csv"}
    _write_atomic(out_dir / SUMMARY_MARKER, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return BatchResult(out_dir, outcomes, audit_dir)
