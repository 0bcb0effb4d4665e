"""The monthly check, end to end: ``run_check`` reads the rules (first, so invalid rules fail
before any patient data is read), the export, links households, evaluates the rules and
writes the report atomically."""

from __future__ import annotations

__all__ = ["CheckResult", "run_check", "REPORT_FILES"]

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from . import __version__
from ._export import ISSUE_COLUMNS, Export, HeavyRejection, heavy_rejections
from .engine import (FLAG_COLUMNS, RULE_PATIENT_COLUMNS, SCOPE_COLUMNS, Evaluation, PreparedRules, evaluate_rules,
                     prepare_rules, rule_triggers)
from .households import HOUSEHOLD_COLUMNS, link_households, summarise_households
from .layouts import start_any_export
from .report import check_destination, only_writer, open_report
from .rules import RuleSet, load_ruleset
from .previous import RESOLVED_COLUMNS, PreviousRun, load_previous_run, mark_flags, resolved_flags
from .worklist import WorklistFacts, build_worklist, unplaced_patients

log = logging.getLogger("family_link")

REPORT_FILES = ["flags.csv", "households.csv", "rejected.csv", "warnings.csv", "run.json",
                "worklist.html", "worklist.csv", "worklist.xlsx", "scope.csv", "resolved.csv",
                "timings.json"]
# flags.csv: the engine's columns, then the month-to-month marking (appended, so readers of
# the original columns are unaffected).
FLAGS_CSV_COLUMNS = [*FLAG_COLUMNS, "status", "first_flagged"]


@dataclass(frozen=True)
class CheckResult:
    out_dir: Path
    flags_per_rule: dict[str, int]
    patients: int
    rejected_rows: int
    seconds: float
    compared_with: dict | None = field(default=None)  # as_of, new, open, resolved (with --previous)
    layout: str = "canonical"  # the export layout read (layouts.LAYOUTS)
    export_date: date | None = None  # when the clinical system ran the export, where it says
    heavy_rejections: tuple[HeavyRejection, ...] = ()  # files with many rows rejected, to warn of


def _run_summary(ruleset: RuleSet, export: Export, household_counts: dict, evaluation: Evaluation,
                 as_of: date) -> dict:
    """run.json's content; ``household_counts`` is ``summarise_households(households)``."""
    flags, scope = evaluation.flags, evaluation.scope
    # One pass over scope per count, grouped by rule (not one boolean filter per rule).
    rule_of = scope["rule_id"]
    in_scope = rule_of.value_counts()
    coded = (~scope["flagged"].astype(bool)).groupby(rule_of).sum()
    households_in_scope = scope.groupby("rule_id")["household_id"].nunique()
    flag_counts = flags["rule_id"].value_counts()
    per_rule = {
        rule.id: {
            "flags": int(flag_counts.get(rule.id, 0)),
            "in_scope": int(in_scope.get(rule.id, 0)),
            "already_coded": int(coded.get(rule.id, 0)),
            "households_in_scope": int(households_in_scope.get(rule.id, 0)),
        }
        for rule in ruleset.rules
    }
    return {
        "tool": "family_link",
        "version": __version__,
        "as_of": as_of.isoformat(),
        "export_layout": export.layout,
        "export_date": export.export_date.isoformat() if export.export_date else None,
        "rules": {"sha256": ruleset.sha256, "rule_ids": [r.id for r in ruleset.rules]},
        "inputs": [
            {"file": f.name, "sha256": f.sha256, "encoding": f.encoding, "rows_read": f.rows_read,
             "rows_used": f.rows_used, "rows_rejected": f.rows_rejected}
            for f in export.files if f.sha256  # an absent optional file is not listed
        ],
        "warnings": int(len(export.warnings)),
        "households": household_counts,
        "flags_per_rule": {k: v["flags"] for k, v in per_rule.items()},
        "rules_detail": per_rule,
        "timings_file": "timings.json",
    }


def _evaluate_and_write(ruleset: RuleSet, export: Export, households: pd.DataFrame, as_of: date,
                        out_dir: Path | str, *, force: bool, last_run: PreviousRun | None,
                        heavy: tuple[HeavyRejection, ...],
                        timings: dict[str, float], lap, since: float, started: float,
                        prepared: PreparedRules | None = None) -> dict:
    """Everything after linkage: the rules, the summary and the report's files (written
    atomically); returns the run summary. ``lap(name, since)`` records each stage's time."""
    t = since
    # The report folder is opened before the rules run: households.csv (240 MB at 1M
    # patients) and the household counts depend on the linkage alone, so a second thread
    # writes and counts them while the rules run (Arrow's kernels, its hashing and the file
    # writes release the GIL). Leaving the block waits for that thread, so an error here
    # removes the temporary folder only once nothing writes into it.
    with open_report(out_dir, force=force) as report, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-report") as aside:
        household_counts = aside.submit(summarise_households, households)  # first: the summary needs it first
        households_csv = aside.submit(report.write_csv, "households.csv", households, HOUSEHOLD_COLUMNS)
        # The rules run in this process whatever --jobs says: at 1M patients they took about
        # 0.4 s, less than forking and partitioning cost (about 0.75 s with 2 processes:
        # benchmarks/partitions.py), and what is left of them here, the part needing the
        # households, about 0.2 s (the rest was prepared beside the linkage: run_check).
        # parallel.evaluate_rules_partitioned remains the per-partition form.
        evaluation = evaluate_rules(ruleset, export.patients, export.events, households, as_of, export.relationships,
                                    event_codes=export.event_codes, prepared=prepared)
        t = lap("evaluate_rules", t)

        marked = mark_flags(evaluation.flags, last_run, as_of)
        resolved = resolved_flags(last_run, evaluation.flags, evaluation.scope, export.patients, as_of)
        hh = household_counts.result()
        facts = WorklistFacts(
            as_of=as_of, rule_titles={r.id: r.title for r in ruleset.rules},
            rule_severities={r.id: r.severity for r in ruleset.rules}, export_date=export.export_date,
            input_files=tuple((f.name, f.rows_read, f.rows_used, f.rows_rejected) for f in export.files),
            rejected_rows=len(export.rejected), warning_rows=len(export.warnings), households=hh.get("households"),
            heavy_rejections=tuple(h.sentence() for h in heavy),
            ambiguous_records=hh.get("ambiguous_records"),
            previous_as_of=last_run.as_of if last_run is not None else None)
        t = lap("summarise", t)
        # Each file goes into the report's temporary folder as soon as it is rendered (no
        # copy of a 240 MB households.csv held in memory); the folder replaces out_dir only
        # when every file is written. The run summary, the other CSVs and run.json are
        # made and written on the report thread, while this one renders the worklist: its
        # xlsx (zlib over the whole sheet, ~0.4 s at 1M patients) is the run's last long
        # step, so it starts first.

        def write_the_rest() -> dict:
            summary = _run_summary(ruleset, export, hh, evaluation, as_of)
            if last_run is not None:
                summary["compared_with"] = {"as_of": last_run.as_of.isoformat(),
                                            "new": int((marked["status"] == "new").sum()),
                                            "open": int((marked["status"] == "open").sum()),
                                            "resolved": int(len(resolved))}
            report.write_csv("flags.csv", marked, FLAGS_CSV_COLUMNS)
            rejected = export.rejected.sort_values(["file", "row", "column"], kind="mergesort")
            report.write_csv("rejected.csv", rejected, ISSUE_COLUMNS)
            warnings = export.warnings.sort_values(["file", "row", "column"], kind="mergesort")
            report.write_csv("warnings.csv", warnings, ISSUE_COLUMNS)
            report.write_csv("scope.csv", evaluation.scope, SCOPE_COLUMNS)
            report.write_csv("resolved.csv", resolved, RESOLVED_COLUMNS)
            report.write_bytes("run.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            return summary

        the_rest = aside.submit(write_the_rest)
        households_csv_synced = aside.submit(report.sync, "households.csv")  # its fsync, away from the end

        # The worklist lists unplaced (ambiguous) records with any codes of theirs that trigger
        # a rule: only their own coded events are needed, which the evaluation kept (computed
        # by build_worklist once the xlsx is under way on its own thread).
        def triggers() -> pd.DataFrame:
            coded = evaluation.coded_events if evaluation.coded_events is not None else export.events
            return rule_triggers(ruleset, unplaced_patients(households, export.patients), coded, households, as_of)

        build_worklist(marked, resolved, export.patients, households, facts, triggers, write=report.write_bytes)
        t = lap("render_worklist", t)
        for written in (households_csv, the_rest, households_csv_synced):
            written.result()  # an error of the report thread's is raised here
        summary = the_rest.result()
        t = lap("render_csv", t)  # what is left of it once the worklist is rendered
        timings["total_before_write"] = round(time.perf_counter() - started, 3)
        report.write_bytes("timings.json", (json.dumps({"seconds": timings}, indent=2, sort_keys=True) + "\n").encode())
    return summary


def run_check(export_path: Path | str, out_dir: Path | str, *, as_of: date,
              rules_dir: Path | str | None = None, force: bool = False,
              previous: Path | str | None = None, layout: str | None = None,
              profile: Path | str | None = None, jobs: int = 1) -> CheckResult:
    # The only run writing out_dir from its first check of the folder to its report's
    # last rename: a second run to the same folder is refused at once (report.only_writer).
    with only_writer(out_dir):
        return _run_check(export_path, out_dir, as_of=as_of, rules_dir=rules_dir, force=force,
                          previous=previous, layout=layout, profile=profile, jobs=jobs)


def _run_check(export_path: Path | str, out_dir: Path | str, *, as_of: date,
               rules_dir: Path | str | None, force: bool, previous: Path | str | None,
               layout: str | None, profile: Path | str | None, jobs: int) -> CheckResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    t = time.perf_counter()
    ruleset = load_ruleset(rules_dir)
    t = lap("rules", t)
    check_destination(Path(out_dir), force)  # refuse early, not after minutes of work
    last_run: PreviousRun | None = load_previous_run(previous, as_of) if previous is not None else None
    # The layout (canonical, EMIS Web, SystmOne ...) is detected unless given: layouts.py.
    # The linkage needs only the patients and relationships: a canonical export's events
    # (five million rows at a million patients) are checked on a background thread while
    # it runs (on the other core: the linkage is mostly one thread). Not with --jobs > 1,
    # whose linkage forks: a child forked while another thread holds a lock (Arrow's
    # allocator, say) can hang, so the export is read in full first.
    reading = start_any_export(export_path, as_of, layout=layout, profile=profile, defer_events=jobs <= 1)
    # What the rules can do without the households (the coded events, who meets each
    # condition) is done as soon as the events are parsed, beside the linkage.
    rule_patients = reading.patients[RULE_PATIENT_COLUMNS]  # taken here, not beside the linkage
    rules_prepared = reading.after_events(
        lambda export: prepare_rules(ruleset, rule_patients, export.events, as_of, export.event_codes))
    # Laps: "read_export" is the read's cost on the critical path: up to the patients and
    # relationships here, plus any wait for the events after the linkage (below);
    # "link_households" is the linkage alone (the events' check running beside it).
    read_before_linkage = time.perf_counter() - t
    t = time.perf_counter()
    # --jobs splits the linkage, the costly step, into groups of records that cannot affect
    # one another (households.link_groups), linked in forked processes: identical output.
    try:
        households = link_households(reading.patients, reading.relationships, as_of, jobs=jobs)
    except Exception:
        reading.export()  # an ExportError of the events' comes first, as when read before the linkage
        # The rules' preparation (rules_prepared) is not waited for: it writes nothing, and
        # the linkage's error is the one to report; its thread ends on its own.
        raise
    t = lap("link_households", t)
    export = reading.export()  # waits for the events (raising their ExportError, exit code 3)
    timings["read_export"] = round(read_before_linkage + time.perf_counter() - t, 3)
    t = time.perf_counter()
    prepared = rules_prepared.result()
    timings["prepare_rules"] = round(time.perf_counter() - t, 3)  # what is left of it once the linkage ends
    t = time.perf_counter()
    log.info("export read: %d patients, %d events, %d relationships, %d rows rejected",
             len(export.patients), len(export.events), len(export.relationships), len(export.rejected))
    heavy = heavy_rejections(export)  # files with many rows rejected: the worklist's and the CLI's warning
    summary = _evaluate_and_write(ruleset, export, households, as_of, out_dir, force=force, last_run=last_run,
                                  heavy=heavy, timings=timings, lap=lap, since=t, started=started, prepared=prepared)
    seconds = time.perf_counter() - started
    return CheckResult(Path(out_dir), summary["flags_per_rule"], len(export.patients), len(export.rejected), seconds,
                       summary.get("compared_with"), layout=export.layout, export_date=export.export_date,
                       heavy_rejections=heavy)
