"""Month to month: compare this run's flags with last month's report folder.

Each current flag is ``new`` (not in the previous ``flags.csv``) or ``open`` (it was, and its
``first_flagged`` date is carried forward). Each previous flag that is gone is ``resolved``,
and the current run's own data says why:

- the patient is still in scope of the rule and their record now satisfies it:
  ``alert coded``;
- the patient is in the export but no longer in scope of the rule (the trigger ended, e.g.
  a plan closed or a code aged out of its window, or the household changed):
  ``trigger ended or household changed``;
- the patient is not in the export at all: ``patient no longer in the export``.

Without a previous report, every flag's ``status`` is ``not compared`` and its
``first_flagged`` is empty (the tool cannot know how long it has been open).
"""

from __future__ import annotations

__all__ = [
    "PreviousRun",
    "load_previous_run",
    "mark_flags",
    "resolved_flags",
    "STATUS_NEW",
    "STATUS_OPEN",
    "STATUS_RESOLVED",
    "STATUS_NOT_COMPARED",
    "RESOLVED_COLUMNS",
    "RESOLVED_ALERT_CODED",
    "RESOLVED_OUT_OF_SCOPE",
    "RESOLVED_PATIENT_GONE",
]

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ._frames import isin
from .errors import Problem, RunFolderError

STATUS_NEW = "new"
STATUS_OPEN = "open"
STATUS_RESOLVED = "resolved"
STATUS_NOT_COMPARED = "not compared"

RESOLVED_ALERT_CODED = "alert coded"
RESOLVED_OUT_OF_SCOPE = "trigger ended or household changed"
RESOLVED_PATIENT_GONE = "patient no longer in the export"

RESOLVED_COLUMNS = ["patient_id", "household_id", "rule_id", "severity", "title",
                    "first_flagged", "last_flagged", "resolved_by", "resolution"]


@dataclass(frozen=True)
class PreviousRun:
    """The parts of last month's report the comparison needs."""

    as_of: date
    flags: pd.DataFrame  # patient_id, household_id, rule_id, severity, title, first_flagged (ISO)


def load_previous_run(folder: Path | str) -> PreviousRun:
    """Read ``run.json`` and ``flags.csv`` from a previous report folder. A report written
    before ``first_flagged`` existed counts its flags as first flagged on its as-of date."""
    folder = Path(folder)
    run_json, flags_csv = folder / "run.json", folder / "flags.csv"
    hint = "give --previous the folder last month's check wrote (it holds run.json and flags.csv)"
    missing = [p for p in (run_json, flags_csv) if not p.is_file()]
    if not folder.is_dir() or missing:
        what = str(folder) if not folder.is_dir() else ", ".join(str(p) for p in missing)
        raise RunFolderError([Problem(what, "not found", hint=hint)])
    try:
        meta = json.loads(run_json.read_text(encoding="utf-8"))
        as_of = date.fromisoformat(meta["as_of"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError([Problem(str(run_json), "is not a family_link run.json (no readable as_of)",
                                      hint=hint)]) from None
    try:
        flags = pd.read_csv(flags_csv, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        raise RunFolderError([Problem(str(flags_csv), "is not a readable CSV file", hint=hint)]) from None
    need = {"patient_id", "rule_id"}
    if not need <= set(flags.columns):
        raise RunFolderError([Problem(str(flags_csv), "lacks the columns patient_id and rule_id", hint=hint)])
    for col in ("household_id", "severity", "title"):
        if col not in flags.columns:
            flags[col] = ""
    if "first_flagged" not in flags.columns:
        flags["first_flagged"] = ""
    flags["first_flagged"] = flags["first_flagged"].where(flags["first_flagged"] != "", as_of.isoformat())
    flags = flags[["patient_id", "household_id", "rule_id", "severity", "title", "first_flagged"]]
    return PreviousRun(as_of, flags.drop_duplicates(["patient_id", "rule_id"]).reset_index(drop=True))


def mark_flags(flags: pd.DataFrame, previous: PreviousRun | None, as_of: date) -> pd.DataFrame:
    """``flags`` with ``status`` and ``first_flagged`` (ISO date) appended."""
    out = flags.copy()
    if previous is None:
        out["status"] = STATUS_NOT_COMPARED
        out["first_flagged"] = ""
        return out
    before = previous.flags.set_index(["patient_id", "rule_id"])["first_flagged"]
    keys = pd.MultiIndex.from_frame(out[["patient_id", "rule_id"]]) if len(out) else pd.MultiIndex.from_arrays([[], []])
    carried = pd.Series(before.reindex(keys).to_numpy(), index=out.index, dtype=object)
    seen = carried.notna()
    out["status"] = STATUS_NEW
    out.loc[seen, "status"] = STATUS_OPEN
    out["first_flagged"] = carried.where(seen, as_of.isoformat())
    return out


def _pairs_in(frame: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """Whether each (patient_id, rule_id) pair of ``frame`` is one of ``other``'s."""
    keys = other[["patient_id", "rule_id"]].drop_duplicates()
    found = frame[["patient_id", "rule_id"]].merge(keys, on=["patient_id", "rule_id"], how="left", indicator=True)
    return (found["_merge"] == "both").to_numpy()


def resolved_flags(previous: PreviousRun | None, flags: pd.DataFrame, scope: pd.DataFrame,
                   patients: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Previous flags that this run no longer raises, each with why (see the module doc)."""
    if previous is None or previous.flags.empty:
        return pd.DataFrame(columns=RESOLVED_COLUMNS)
    prev = previous.flags
    gone = prev[~_pairs_in(prev, flags)].copy()
    present = isin(gone["patient_id"], patients["patient_id"]).to_numpy()
    in_scope = _pairs_in(gone, scope)  # in scope and not flagged: satisfied
    gone["resolution"] = np.select([~present, in_scope], [RESOLVED_PATIENT_GONE, RESOLVED_ALERT_CODED],
                                   RESOLVED_OUT_OF_SCOPE).astype(object)
    gone["last_flagged"] = previous.as_of.isoformat()
    gone["resolved_by"] = as_of.isoformat()
    return gone.sort_values(["rule_id", "patient_id"], kind="mergesort")[RESOLVED_COLUMNS].reset_index(drop=True)
