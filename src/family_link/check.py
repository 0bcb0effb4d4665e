"""The monthly check, end to end: ``run_check`` reads the rules (first, so invalid rules fail
before any patient data is read), the export, links households, evaluates the rules and
writes the report atomically."""

from __future__ import annotations

__all__ = ["CheckResult", "run_check", "REPORT_FILES"]

import json
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from . import __version__
from ._export import ISSUE_COLUMNS, Export, load_export
from .engine import FLAG_COLUMNS, Evaluation, evaluate_rules
from .households import link_households, summarise_households
from .report import render_csv, write_report_files
from .rules import RuleSet, load_ruleset
from .worklist import render_worklist_html, worklist_rows

log = logging.getLogger("family_link")

HOUSEHOLD_COLUMNS = ["patient_id", "household_id", "dwelling_id", "dwelling_kind", "role",
                     "household_size", "communal", "ambiguous", "address_key", "link_evidence",
                     "relationship_notes"]
REPORT_FILES = ["flags.csv", "households.csv", "rejected.csv", "warnings.csv", "run.json",
                "worklist.html", "timings.json"]


@dataclass(frozen=True)
class CheckResult:
    out_dir: Path
    flags_per_rule: dict[str, int]
    patients: int
    rejected_rows: int
    seconds: float


def _run_summary(ruleset: RuleSet, export: Export, households: pd.DataFrame, evaluation: Evaluation,
                 as_of: date) -> dict:
    flags, scope = evaluation.flags, evaluation.scope
    per_rule = {}
    for rule in ruleset.rules:
        s = scope[scope["rule_id"] == rule.id]
        per_rule[rule.id] = {
            "flags": int((flags["rule_id"] == rule.id).sum()),
            "in_scope": int(len(s)),
            "already_coded": int((~s["flagged"].astype(bool)).sum()),
            "households_in_scope": int(s["household_id"].nunique()),
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
        "households": summarise_households(households),
        "flags_per_rule": {k: v["flags"] for k, v in per_rule.items()},
        "rules_detail": per_rule,
        "timings_file": "timings.json",
    }


def run_check(export_path: Path | str, out_dir: Path | str, *, as_of: date,
              rules_dir: Path | str | None = None, force: bool = False) -> CheckResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    t = time.perf_counter()
    ruleset = load_ruleset(rules_dir)
    t = lap("rules", t)
    export = load_export(export_path, as_of)
    t = lap("read_export", t)
    log.info("export read: %d patients, %d events, %d relationships, %d rows rejected",
             len(export.patients), len(export.events), len(export.relationships), len(export.rejected))
    households = link_households(export.patients, export.relationships, as_of)
    t = lap("link_households", t)
    evaluation = evaluate_rules(ruleset, export.patients, export.events, households, as_of,
                                export.relationships)
    t = lap("evaluate_rules", t)

    summary = _run_summary(ruleset, export, households, evaluation, as_of)
    rejected = export.rejected.sort_values(["file", "row", "column"], kind="mergesort")
    warnings = export.warnings.sort_values(["file", "row", "column"], kind="mergesort")
    rows = worklist_rows(evaluation.flags, export.patients, households)
    hh = summary["households"]
    facts = [
        ("As-of date", as_of.strftime("%d/%m/%Y")),
        ("Export date", export.export_date.strftime("%d/%m/%Y") if export.export_date else "not recorded in the export"),
        *[(f"Rows in {f.name}", f"{f.rows_read} read, {f.rows_used} used, {f.rows_rejected} rejected")
          for f in export.files],
        ("Households", str(hh.get("households", ""))),
        ("Ambiguous addresses (resolve by hand)", str(hh.get("ambiguous_records", ""))),
        ("Input warnings", str(len(warnings))),
        ("Flags", str(len(evaluation.flags))),
    ]
    notes = ["Events marked 'safeguarding relevant' are hidden from exporting users without safeguarding "
             "access rights, and SystmOne's safeguarding node can hold information with no code: this "
             "list cannot see either. Run the export as a user with safeguarding access."]
    if len(rejected):
        notes.append(f"{len(rejected)} input rows were rejected and not checked: see rejected.csv.")
    files = {
        "flags.csv": render_csv(evaluation.flags, FLAG_COLUMNS),
        "households.csv": render_csv(households, [c for c in HOUSEHOLD_COLUMNS if c in households.columns]),
        "rejected.csv": render_csv(rejected, ISSUE_COLUMNS),
        "warnings.csv": render_csv(warnings, ISSUE_COLUMNS),
        "run.json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "worklist.html": render_worklist_html(
            rows, rule_titles={r.id: r.title for r in ruleset.rules}, as_of=as_of.strftime("%d/%m/%Y"),
            facts=facts, warnings=notes),
    }
    t = lap("render_outputs", t)
    timings["total_before_write"] = round(time.perf_counter() - started, 3)
    files["timings.json"] = (json.dumps({"seconds": timings}, indent=2, sort_keys=True) + "\n").encode()
    write_report_files(out_dir, files, force=force)
    seconds = time.perf_counter() - started
    return CheckResult(Path(out_dir), summary["flags_per_rule"], len(export.patients), len(rejected), seconds)
