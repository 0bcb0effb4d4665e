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
    "check_previous_not_later",
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

from ._export import parse_dates
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
    folder: Path | None = None  # where it was read from, for messages


def check_previous_not_later(previous_as_of: date, as_of: date, where: Path | str) -> None:
    """Raise ``RunFolderError`` where the report read from ``where`` was made as of a date
    after this run's (folders swapped, --as-of mistyped): every flag would be open since a
    date that has not come yet. One of the same date is allowed: the lead who corrects
    records and checks again that day sees what the corrections resolved."""
    if previous_as_of > as_of:
        raise RunFolderError([Problem(str(where), f"is a report as of {previous_as_of.isoformat()}, after "
                                      f"this run's as-of date {as_of.isoformat()}",
                                      hint="give --previous the report of an earlier month, or check --as-of")])


def load_previous_run(folder: Path | str, as_of: date | None = None) -> PreviousRun:
    """Read ``run.json`` and ``flags.csv`` from a previous report folder. A report written
    before ``first_flagged`` existed counts its flags as first flagged on its as-of date.
    With ``as_of`` (this run's), a report made after it is refused."""
    folder = Path(folder)
    run_json, flags_csv = folder / "run.json", folder / "flags.csv"
    hint = "give --previous the folder last month's check wrote (it holds run.json and flags.csv)"
    missing = [p for p in (run_json, flags_csv) if not p.is_file()]
    if not folder.is_dir() or missing:
        what = str(folder) if not folder.is_dir() else ", ".join(str(p) for p in missing)
        raise RunFolderError([Problem(what, "not found", hint=hint)])
    try:
        meta = json.loads(run_json.read_text(encoding="utf-8"))
        previous_as_of = date.fromisoformat(meta["as_of"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError([Problem(str(run_json), "is not a family_link run.json (no readable as_of)",
                                      hint=hint)]) from None
    if as_of is not None:
        check_previous_not_later(previous_as_of, as_of, folder)
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
    flags["first_flagged"] = _first_flagged_dates(flags["first_flagged"], previous_as_of, flags_csv)
    flags = flags[["patient_id", "household_id", "rule_id", "severity", "title", "first_flagged"]]
    return PreviousRun(previous_as_of, flags.drop_duplicates(["patient_id", "rule_id"]).reset_index(drop=True),
                       folder)


def _first_flagged_dates(values: pd.Series, previous_as_of: date, flags_csv: Path) -> pd.Series:
    """``first_flagged`` as ISO dates. A flags.csv opened and saved in a spreadsheet comes
    back with UK dates (01/10/2026), so the forms an export's dates may take are read here
    too (``parse_dates``: YYYY-MM-DD or DD/MM/YYYY, day first); an empty one is the
    report's own as-of date. Anything else, or a date after that report's as-of date, is
    refused: it would be carried forward into every later month."""
    values = values.str.strip()
    empty = values == ""
    parsed = parse_dates(values.where(~empty, previous_as_of.isoformat()))
    bad = parsed.isna() | (parsed > pd.Timestamp(previous_as_of))
    if bad.any():
        # The first bad row is named, and how many others there are; never a value.
        rows = (np.flatnonzero(bad.to_numpy()) + 2).tolist()  # the header is row 1
        also = f" ({len(rows) - 1} other row{'s' if len(rows) > 2 else ''} too)" if len(rows) > 1 else ""
        raise RunFolderError([Problem(str(flags_csv), "is not a date in YYYY-MM-DD or DD/MM/YYYY form on or before "
                                      f"that report's as-of date {previous_as_of.isoformat()}{also}",
                                      row=rows[0], column="first_flagged",
                                      hint="correct the date (or clear it: an empty first_flagged counts from "
                                           "that report's as-of date), or give --previous the report as "
                                           "family_link wrote it")])
    return parsed.dt.strftime("%Y-%m-%d").astype(object)


def mark_flags(flags: pd.DataFrame, previous: PreviousRun | None, as_of: date) -> pd.DataFrame:
    """``flags`` with ``status`` and ``first_flagged`` (ISO date) appended."""
    out = flags.copy()
    if previous is not None:  # where the caller did not have load_previous_run check it already
        check_previous_not_later(previous.as_of, as_of, previous.folder or "the report given to --previous")
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
