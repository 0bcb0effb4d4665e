"""Reading the clinical systems' own exports: EMIS Web list reports, SystmOne Strategic
Reporting Extracts, SystmOne Clinical Reporting CSVs, and any other CSV through a
column-map profile (a small YAML file; see docs/exports.md).

Every layout is converted to frames of strings laid out as the canonical export and handed
to ``parse_export_frames``, so every layout gets the same value rules (dates, codes, NHS
numbers) and the same rejected-row accounting. What this module adds:

- ``detect_layout(path)`` says which layout a file or folder holds (or raises an
  ``ExportError`` naming what was expected);
- each row keeps its number in the ORIGINAL file (as a spreadsheet shows it: metadata lines,
  the header and quoted line breaks counted as the file holds them), and rejected rows are
  listed under the original file name;
- for every input (a file, or the patient and event parts of a one-file report),
  rows read = rows used + rows rejected.

All work is vectorised: continuation rows are a forward fill, repeated column groups are
stacked column by column, the address in force is one sort and one ``drop_duplicates``.
Nothing here prints or logs a patient value.
"""

from __future__ import annotations

__all__ = [
    "LAYOUTS",
    "LAYOUT_CHOICES",
    "Profile",
    "builtin_profile",
    "detect_layout",
    "load_any_export",
    "start_any_export",
    "load_profile",
]

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ._export import (ADDRESS_LINES, ISSUE_COLUMNS, PATIENT_COLUMNS, REPEATED_ROW_WITHOUT_EVENT, Export,
                      ExportReading, InputFile, _csv_error, _first_row_problem, _norm_header, _not_a_file,
                      columns_found, decode_bytes, export_files, headerless, parse_dates, parse_export_frames,
                      start_export)
from ._frames import isin, release_arrow_memory
from .errors import ExportError, Problem

# Layout name -> what the user sees in the terminal and in run.json's export_layout.
LAYOUTS: dict[str, str] = {
    "canonical": "canonical export (patients.csv, events.csv, relationships.csv)",
    "emis": "EMIS Web list report",
    "systmone-sre": "SystmOne Strategic Reporting Extract",
    "systmone-cr": "SystmOne Clinical Reporting CSV",
    "profile": "CSV read through a column-map profile",
}
LAYOUT_CHOICES = ["canonical", "emis", "systmone-sre", "systmone-cr", "profile"]

EXPECTED = (
    "expected one of: a folder holding patients.csv and events.csv (the canonical export); "
    "a folder holding SRPatient.csv, SRPatientAddressHistory.csv and SRCode.csv (a SystmOne "
    "Strategic Reporting Extract); an EMIS Web list report CSV (a header row with 'EMIS Number' "
    "or 'Anonymised Identifier' and 'Date of Birth'); a SystmOne Clinical Reporting CSV (header "
    "on line 1 with 'Patient ID' and 'Date of birth'); or any CSV with --profile FILE. "
    "See docs/exports.md"
)

_PATIENT_FIELDS = list(PATIENT_COLUMNS)
_EVENT_ONLY_FIELDS = ["code", "term", "date", "code_system"]


# ---------------------------------------------------------------------------------------
# Column-map profiles


class Profile(BaseModel):
    """A column map: which of the file's headers holds each canonical field.

    A header may be given as one name or a list of alternatives (the first present is
    used), compared case-insensitively ignoring spaces and punctuation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    # event_rows: one row per event (patient columns on each row, or blank on continuation
    # rows); patient_rows: one row per patient, events in repeated column groups.
    shape: Literal["event_rows", "patient_rows"]
    # first_line: the header is line 1; find: the first row holding the patient_id and
    # date_of_birth headers (metadata lines before it are skipped, never counted by number).
    header: Literal["first_line", "find"] = "first_line"
    continuation_rows: bool = False
    export_date_line: str | None = None  # text on a metadata line holding the run time
    date_format: str | None = None  # strptime format; None: the canonical date forms
    patients: dict[str, str | list[str]]
    events: dict[str, str | list[str]]

    @field_validator("patients")
    @classmethod
    def _patient_fields(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        return _check_fields(value, _PATIENT_FIELDS, ["patient_id", "date_of_birth"])

    @field_validator("events")
    @classmethod
    def _event_fields(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        return _check_fields(value, _EVENT_ONLY_FIELDS, ["code", "date"])

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not all(any(d in value for d in group) for group in (("%d",), ("%m", "%b", "%B"), ("%Y",))):
            raise ValueError(f"'{value}' needs a day (%d), a month (%m or %b) and a 4-digit year (%Y)")
        try:
            datetime(2026, 11, 1).strftime(value)
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a strptime format ({exc})") from None
        return value

    @model_validator(mode="after")
    def _shape_options(self) -> Profile:
        if self.continuation_rows and self.shape != "event_rows":
            raise ValueError("continuation_rows applies only to shape: event_rows")
        return self

    def names(self, part: Literal["patients", "events"], field_name: str) -> list[str]:
        value = getattr(self, part).get(field_name)
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


def _check_fields(value: dict[str, str | list[str]], allowed: list[str], required: list[str]
                  ) -> dict[str, str | list[str]]:
    problems = []
    unknown = [k for k in value if k not in allowed]
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}; known fields: {', '.join(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        problems.append(f"required field(s) missing: {', '.join(missing)}")
    empty = [k for k, v in value.items() if not v or (isinstance(v, list) and not all(
        isinstance(x, str) and x.strip() for x in v)) or (isinstance(v, str) and not v.strip())]
    if empty:
        problems.append(f"field(s) with no header name: {', '.join(empty)}")
    if problems:
        raise ValueError("; ".join(problems))
    return value


def load_profile(path: Path | str) -> Profile:
    """Read and validate a profile YAML file; every problem is reported at once."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ExportError([Problem(str(path), f"cannot be read ({exc.strerror})",
                                   hint="give --profile the path of a profile YAML file")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ExportError([Problem(str(path), f"is not valid YAML ({getattr(exc, 'problem', exc)})",
                                   row=mark.line + 1 if mark else None,
                                   hint="compare with the shipped profiles in src/family_link/profiles/")]) from None
    if not isinstance(data, dict):
        raise ExportError([Problem(str(path), "is not a profile (a YAML mapping with name, shape, "
                                   "patients and events)", hint="see docs/exports.md, 'Column-map profiles'")])
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(str(path), f"{'.'.join(str(x) for x in err['loc']) or 'profile'}: "
                            f"{err['msg'].removeprefix('Value error, ')}",
                            hint="see docs/exports.md, 'Column-map profiles'") for err in exc.errors()]
        raise ExportError(problems) from None


def builtin_profile(name: str) -> Profile:
    """A profile shipped with family_link (src/family_link/profiles/NAME.yaml)."""
    ref = resources.files("family_link") / "profiles" / f"{name}.yaml"
    with resources.as_file(ref) as path:
        return load_profile(path)


# ---------------------------------------------------------------------------------------
# Reading a CSV with original row numbers


@dataclass
class _Sheet:
    file: str  # the file's name, as rejected.csv shows it
    header: list[str]
    body: pd.DataFrame  # columns 0..n-1 by position, stripped strings; empty rows removed
    rows: np.ndarray  # each body row's number in the file (header and metadata counted)
    meta: list[list[str]]  # records before the header
    sha256: str
    encoding: str


def _records_with_offsets(text: str):
    """Yield (record, offset just after it) for a CSV text, records parsed by the csv module
    (quoted commas and line breaks included)."""
    consumed = [0]

    def lines():
        for line in io.StringIO(text):
            consumed[0] += len(line)
            yield line
    for record in csv.reader(lines()):
        yield [c.strip() for c in record], consumed[0]


def _read_file(path: Path) -> tuple[str, str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportError([Problem(str(path), f"cannot be read ({exc.strerror})")]) from None
    text, encoding = decode_bytes(raw, str(path))
    # One line ending: CRLF and lone CR (old Mac exports) become LF, inside quoted cells too.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, encoding, hashlib.sha256(raw).hexdigest()


def _read_sheet(path: Path, find: list[list[str]] | None = None, scan: int = 200,
                expected: str = EXPECTED) -> _Sheet:
    """Read a CSV; the header is line 1, or (``find``) the first of the first ``scan``
    records holding one name from each group of ``find`` (normalised header names)."""
    text, encoding, sha = _read_file(path)
    label = str(path)
    if not text.strip():
        raise ExportError([Problem(label, "is empty", hint="re-run the export; the file has no header row")])
    meta: list[list[str]] = []
    header: list[str] | None = None
    offset = 0  # where the header record starts
    csv.field_size_limit(2**31 - 1)
    try:
        for record, end in _records_with_offsets(text):
            normal = {_norm_header(c) for c in record}
            if find is None or all(normal & set(group) for group in find):
                header = record
                break
            meta.append(record)
            offset = end
            if len(meta) >= scan:
                break
    except csv.Error as exc:
        raise ExportError([Problem(label, f"is not a readable CSV file ({exc})",
                                   hint="check the file opens in a spreadsheet as columns")]) from None
    if header is None:
        where = "line 1 is not" if scan == 1 else f"none of the first {scan} rows is"
        raise ExportError([Problem(label, f"{where} a header with the expected column names", hint=expected)])
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in header[0]:
                raise ExportError([Problem(label, f"is separated by {name}, not commas", row=len(meta) + 1,
                                           hint="export as comma-separated CSV")])
    rest = text[offset:]
    width = len(header)
    if "\n" in rest.strip("\n"):
        try:
            # Read from the header record itself (then drop it): the header sets the width, so
            # a row with more cells than the header is an error, never silently cut.
            body = pd.read_csv(io.StringIO(rest), header=None, dtype=str, keep_default_na=False,
                               na_filter=False, skip_blank_lines=False).iloc[1:].reset_index(drop=True)
            if body.shape[1] != width:
                raise ValueError(f"the header has {width} columns but the rows have {body.shape[1]}")
        except (pd.errors.ParserError, csv.Error, ValueError) as exc:
            # Named as the canonical reader names it: the row as a spreadsheet counts it, a
            # quote never closed, a stray quote, a row wider than the header.
            raise _csv_error(label, exc, first_row=len(meta) + 1, text=rest, width=width) from None
        # More lines than rows: a quoted cell holds a line break. Free text may; a stray
        # quote that swallowed the lines after it may not (read only then: the scan is slow).
        # No line break at the end: the last row may be cut short, which pandas would read
        # with blanks. With no row spanning lines, its own line is the whole row.
        last = rest[rest.rfind("\n") + 1:]
        if rest.count("\n") + (not rest.endswith("\n")) > len(body) + 1 or (
                last and 0 < len(next(csv.reader([last]))) < width):
            problem = _first_row_problem(rest, width, label, first_row=len(meta) + 1,
                                         first_line=text.count("\n", 0, offset) + 1)
            if problem is not None:
                raise ExportError([problem])
        body = body.fillna("").astype(str)
        for col in body.columns:
            body[col] = body[col].str.strip()
    else:
        body = pd.DataFrame({i: pd.Series(dtype=object) for i in range(width)})
    header_row = len(meta) + 1
    rows = np.arange(len(body), dtype=np.int64) + header_row + 1
    filled = (body != "").any(axis=1).to_numpy() if len(body) else np.zeros(0, dtype=bool)
    body = body[filled].reset_index(drop=True)
    return _Sheet(path.name, header, body, rows[filled], meta, sha, encoding)


def _issues(file: str, rows: np.ndarray, column: str, values, reason: str) -> pd.DataFrame:
    return pd.DataFrame({"file": file, "row": np.asarray(rows, dtype=np.int64), "column": column,
                         "value": np.asarray(values, dtype=object) if values is not None else "",
                         "reason": reason})


def _empty_issues() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS})


# ---------------------------------------------------------------------------------------
# Turning converted parts into an Export


@dataclass
class _Part:
    """One canonical table converted from a vendor file."""

    file: str  # the original file name (rejected.csv's file column)
    label: str  # the input's name in run.json (the file, or "file (events)" for one-file reports)
    frame: pd.DataFrame  # canonical column names, strings
    rows: np.ndarray  # original row number per frame row
    sha256: str = ""
    encoding: str = ""
    pre_rejected: pd.DataFrame = field(default_factory=_empty_issues)
    history: int = 0  # rows read and weighed but describing the past (ended relationships)


def _assemble(parts: dict[str, _Part | None], as_of: date, layout: str, export_date: date | None,
              extra_files: tuple[InputFile, ...] = (), extra_warnings: pd.DataFrame | None = None) -> Export:
    rel = parts.get("relationships.csv")
    labels = {k: (p.label if p is not None else k) for k, p in
              (("patients.csv", parts["patients.csv"]), ("events.csv", parts["events.csv"]),
               ("relationships.csv", rel))}
    export = parse_export_frames(
        parts["patients.csv"].frame, parts["events.csv"].frame, rel.frame if rel is not None else None,
        as_of, labels=labels,
        row_numbers={k: p.rows for k, p in parts.items() if p is not None})
    to_file = {p.label: p.file for p in parts.values() if p is not None}
    rejected = pd.concat([export.rejected, *[p.pre_rejected for p in parts.values() if p is not None]],
                         ignore_index=True)
    # Each row's input (run.json's name) before the file column names the file: the parsed
    # rows carry their part's label, a part's own rejections its file, so they take its label.
    inputs = pd.concat([export.rejected["file"],
                        *[pd.Series(p.label, index=p.pre_rejected.index, dtype=object)
                          for p in parts.values() if p is not None]], ignore_index=True)
    warnings = pd.concat([export.warnings, *([extra_warnings] if extra_warnings is not None else [])],
                         ignore_index=True)
    files = []
    for key, f in zip(("patients.csv", "events.csv", "relationships.csv"), export.files):
        p = parts.get(key)
        if p is None:  # a table this layout does not hold (no file to list)
            continue
        pre = len(p.pre_rejected)
        files.append(InputFile(p.label, p.sha256, p.encoding, f.rows_read + pre + p.history,
                               f.rows_used + p.history, f.rows_rejected + pre))
    # The canonical reasons name patients.csv; here the patients came from another file.
    rejected["reason"] = rejected["reason"].astype(str).str.replace(
        "patients.csv", parts["patients.csv"].file, regex=False)
    rejected["file"] = rejected["file"].map(lambda v: to_file.get(v, v))
    warnings["file"] = warnings["file"].map(lambda v: to_file.get(v, v))
    return Export(export.patients, export.events, export.relationships, rejected[ISSUE_COLUMNS],
                  warnings[ISSUE_COLUMNS], tuple(files) + extra_files, export_date, layout,
                  event_codes=export.event_codes, rejected_inputs=inputs, events_input=export.events_input)


def _apply_date_format(part: _Part, columns: list[str], fmt: str | None) -> pd.Series:
    """With a profile date_format, read those columns with it (to YYYY-MM-DD); a value that
    does not match is rejected here, never guessed. Returns the rows kept."""
    keep = pd.Series(True, index=part.frame.index)
    if fmt is None:
        return keep
    for col in columns:
        if col not in part.frame.columns:
            continue
        raw = part.frame[col]
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce")
        bad = (raw != "") & parsed.isna() & keep
        if bad.any():
            part.pre_rejected = pd.concat([part.pre_rejected, _issues(
                part.file, part.rows[bad.to_numpy()], col, raw[bad],
                f"date does not match the profile's date_format '{fmt}'")], ignore_index=True)
        keep &= ~bad
        part.frame[col] = np.where(parsed.notna(), parsed.dt.strftime("%Y-%m-%d"), raw)
    return keep


def _drop(part: _Part, keep: pd.Series) -> None:
    mask = keep.to_numpy()
    part.frame = part.frame[mask].reset_index(drop=True)
    part.rows = part.rows[mask]


# ---------------------------------------------------------------------------------------
# Profile-driven reading (EMIS Web, SystmOne Clinical Reporting, any other CSV)


def _positions(sheet: _Sheet, names: list[str]) -> list[int]:
    normal = [_norm_header(h) for h in sheet.header]
    for name in names:
        hits = [i for i, h in enumerate(normal) if h == _norm_header(name)]
        if hits:
            return hits
    return []


def _export_date(meta: list[list[str]], marker: str | None, label: str = "") -> date | None:
    """The run date on the metadata line whose first cell opens with ``marker`` (EMIS:
    "Last Run", 01/11/2026 09:30), day first as the system writes it, or ISO (as a spreadsheet may
    re-save it); None without such a line. Only a line whose first cell is the marker is
    that line: a report's title may mention "last run". A line holding no date that can be
    read is refused (exit 3), never taken as absent: the warning of a stale export rests
    on it."""
    if not marker:
        return None
    for row, record in enumerate(meta, start=1):
        line = " ".join(record)
        if record and record[0].strip().lower().startswith(marker.lower()):
            found = re.search(r"\b(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{1,2}-\d{1,2})\b", line)
            when = parse_dates(pd.Series([found.group(1)]))[0] if found else pd.NaT
            if pd.isna(when):
                raise ExportError([Problem(label, f"the '{marker}' line holds no date that can be read", row=row,
                                           hint="it should hold the export's run date as dd/mm/yyyy hh:mm, as the "
                                                "clinical system writes it: export the report again rather than "
                                                "editing it")])
            return when.date()
    return None


def read_with_profile(path: Path, profile: Profile, as_of: date, layout: str = "profile") -> Export:
    """Read one CSV file through a column-map profile."""
    find = [[_norm_header(n) for n in profile.names("patients", "patient_id")],
            [_norm_header(n) for n in profile.names("patients", "date_of_birth")]]
    wanted = " and ".join("'" + "' or '".join(profile.names("patients", f)) + "'"
                          for f in ("patient_id", "date_of_birth"))
    sheet = _read_sheet(path, find, scan=1 if profile.header == "first_line" else 200,
                        expected=f"a {profile.name} has a header row with {wanted}")
    label = str(path)
    header_row = len(sheet.meta) + 1
    problems: list[Problem] = []
    patient_pos: dict[str, int] = {}
    for name in profile.patients:
        pos = _positions(sheet, profile.names("patients", name))
        if len(pos) > 1:
            problems.append(Problem(label, f"the column for {name} ('{sheet.header[pos[0]]}') appears "
                                    f"{len(pos)} times", row=header_row, hint="keep one of them"))
        elif pos:
            patient_pos[name] = pos[0]
    event_pos: dict[str, list[int]] = {}
    for name in profile.events:
        pos = _positions(sheet, profile.names("events", name))
        if pos:
            event_pos[name] = pos
    missing = [f"{n} ('{' or '.join(profile.names('patients', n))}')" for n in ("patient_id", "date_of_birth")
               if n not in patient_pos]
    missing += [f"{n} ('{' or '.join(profile.names('events', n))}')" for n in ("code", "date")
                if n not in event_pos]
    if missing:
        # The header row holds the patient_id and date_of_birth names (it was found by them),
        # so it is a header, not a patient: its cells may be shown.
        problems.append(Problem(label, f"missing column(s) for the {profile.name} layout: {', '.join(missing)}",
                                row=header_row, hint=f"columns found: {columns_found(sheet.header)}"))
    groups = {len(v) for v in event_pos.values()}
    if profile.shape == "event_rows" and groups - {1}:
        problems.append(Problem(label, "an event column appears more than once in a one-row-per-event "
                                "layout", row=header_row, hint="keep one Code, Term and Date column"))
    elif len(groups) > 1:
        counts = ", ".join(f"{k} {len(v)}" for k, v in event_pos.items())
        problems.append(Problem(label, f"the repeated event columns do not come in whole groups ({counts})",
                                row=header_row, hint="each Code column needs its own Date column"))
    if problems:
        raise ExportError(problems)

    body = sheet.body
    patients_frame = pd.DataFrame({name: body[pos] for name, pos in patient_pos.items()})
    p_label, e_label = f"{sheet.file} (patients)", f"{sheet.file} (events)"
    common = {"sha256": sheet.sha256, "encoding": sheet.encoding}
    if profile.shape == "event_rows":
        event_cols = pd.DataFrame({name: body[pos[0]] for name, pos in event_pos.items()})
        has_event = (event_cols != "").any(axis=1)
        if profile.continuation_rows:
            is_patient = (patients_frame != "").any(axis=1)
            # A continuation row belongs to the patient above it: one forward fill.
            pid = patients_frame["patient_id"].where(is_patient).ffill()
        else:
            is_patient = pd.Series(True, index=body.index)
            pid = patients_frame["patient_id"]
        # A patient row repeating an earlier one exactly (patient details on every event row)
        # is the same patient: its event is read, its patient part is not read twice. A repeat
        # with no event adds nothing and is listed as such. Repeats that differ stay, and the
        # canonical rule rejects every row of that id (we cannot know which is right).
        repeat = is_patient & patients_frame.duplicated(keep="first")
        is_patient &= ~(repeat & has_event)
        patients = _Part(sheet.file, p_label, patients_frame[is_patient].reset_index(drop=True),
                         sheet.rows[is_patient.to_numpy()], **common)
        empty_repeat = (repeat & ~has_event)[is_patient].reset_index(drop=True)
        if empty_repeat.any():
            patients.pre_rejected = _issues(sheet.file, patients.rows[empty_repeat.to_numpy()], "patient_id",
                                            patients.frame.loc[empty_repeat, "patient_id"],
                                            REPEATED_ROW_WITHOUT_EVENT)
            _drop(patients, ~empty_repeat)
        events_frame = event_cols.assign(patient_id=pid.fillna(""))[has_event].reset_index(drop=True)
        events = _Part(sheet.file, e_label, events_frame, sheet.rows[has_event.to_numpy()], **common)
        orphan = pid.isna() & has_event
        if orphan.any():
            keep = ~orphan[has_event].reset_index(drop=True)
            events.pre_rejected = _issues(sheet.file, sheet.rows[orphan.to_numpy()], "patient_id", None,
                                          "continuation row (patient columns blank) with no patient row "
                                          "above it")
            _drop(events, keep)
    else:
        patients = _Part(sheet.file, p_label, patients_frame, sheet.rows, **common)
        stacked = []
        for k in range(groups.pop() if groups else 0):
            group = pd.DataFrame({name: body[pos[k]] for name, pos in event_pos.items()})
            group["patient_id"] = patients_frame["patient_id"]
            group["_row"] = sheet.rows
            group["_pos"] = np.arange(len(body), dtype=np.int64)
            group["_k"] = k
            stacked.append(group[(group[list(event_pos)] != "").any(axis=1)])
        # Events in file order: by patient row, then by group within the row.
        ev = (pd.concat(stacked, ignore_index=True).sort_values(["_pos", "_k"], kind="mergesort")
              if stacked else pd.DataFrame({c: pd.Series(dtype=object) for c in [*event_pos, "patient_id",
                                                                                 "_row"]}))
        events = _Part(sheet.file, e_label, ev.drop(columns=["_row", "_pos", "_k"], errors="ignore")
                       .reset_index(drop=True), ev["_row"].to_numpy(dtype=np.int64), **common)
    keep = _apply_date_format(patients, ["date_of_birth"], profile.date_format)
    gone = set(patients.frame.loc[~keep, "patient_id"])
    _drop(patients, keep)
    keep = _apply_date_format(events, ["date"], profile.date_format)
    if gone:
        orphans = isin(events.frame["patient_id"], gone) & keep
        events.pre_rejected = pd.concat([events.pre_rejected, _issues(
            events.file, events.rows[orphans.to_numpy()], "patient_id", events.frame.loc[orphans, "patient_id"],
            "this patient's row was rejected (see its entry)")], ignore_index=True)
        keep &= ~orphans
    _drop(events, keep)
    return _assemble({"patients.csv": patients, "events.csv": events}, as_of, layout,
                     _export_date(sheet.meta, profile.export_date_line, label))


# ---------------------------------------------------------------------------------------
# SystmOne Strategic Reporting Extract


_ADDRESS_TYPES = {"permanent": "permanent", "0": "permanent", "temporary": "temporary", "1": "temporary",
                  "correspondence": "correspondence", "3": "correspondence"}
_PARENT_WORDS = {"mother", "father", "parent", "guardian", "legal guardian", "stepmother", "stepfather"}
_TRUE = {"true", "1", "y", "yes"}
_FALSE = {"false", "0", "n", "no", ""}
SRE_FILES = {
    "SRPatient.csv": ["RowIdentifier", "DateBirth"],
    "SRPatientAddressHistory.csv": ["IDPatient", "AddressType"],
    "SRCode.csv": ["IDPatient", "DateEvent"],
}
# Every column read from each SRE file (docs/exports.md): a header row holding none of them
# is taken for a file without its header row, whose row 1 (a patient) is never echoed.
SRE_COLUMNS = {
    "SRPatient.csv": ["RowIdentifier", "NHSNumber", "FirstName", "MiddleNames", "Surname", "DateBirth", "Gender"],
    "SRPatientAddressHistory.csv": ["IDPatient", "AddressType", "DateEvent", "DateTo", "NameOfBuilding",
                                    "NumberOfBuilding", "NameOfRoad", "NameOfLocality", "NameOfTown",
                                    "NameOfCounty", "FullPostCode"],
    "SRCode.csv": ["IDPatient", "DateEvent", "CTV3Code", "CTV3Text", "SNOMEDCode", "SNOMEDText"],
    "SRPatientRelationship.csv": ["IDPatient", "IDPatientRelationshipWith", "RelationshipType",
                                  "HasParentalResponsibility", "DateEnded"],
}


def _sre_sheet(folder: Path, names: dict[str, Path], name: str, problems: list[Problem]) -> _Sheet | None:
    path = names.get(name.lower())
    if path is None:
        if name in SRE_FILES:
            problems.append(Problem(str(folder / name), "not found",
                                    hint="a SystmOne Strategic Reporting Extract needs SRPatient.csv, "
                                         "SRPatientAddressHistory.csv and SRCode.csv"))
        return None
    try:
        sheet = _read_sheet(path)
    except ExportError as exc:
        problems.extend(exc.problems)
        return None
    normal = [_norm_header(h) for h in sheet.header]
    known = {_norm_header(c): c for c in SRE_COLUMNS[name]}
    required = SRE_FILES.get(name, ["IDPatient", "IDPatientRelationshipWith", "RelationshipType"])
    missing = [c for c in required if _norm_header(c) not in normal]
    if name == "SRCode.csv" and not set(normal) & {"snomedcode", "ctv3code"}:
        missing.append("SNOMEDCode or CTV3Code")
    if missing and not known.keys() & set(normal):
        # No known name on row 1: the file may lack its header row, so row 1 may be a
        # patient, and is never echoed (it would reach the terminal and a batch's summary.csv).
        problems.append(Problem(str(path), headerless(missing, len(normal)), row=1,
                                hint="the file may lack its header row; the columns read are listed in "
                                     "docs/exports.md"))
    elif missing:
        problems.append(Problem(str(path), f"missing required column(s): {', '.join(missing)}", row=1,
                                hint=f"columns found: {columns_found(sheet.header)}"))
    # A known column twice: which copy is right cannot be known (the canonical reader refuses it too).
    for key, column in known.items():
        if normal.count(key) > 1:
            problems.append(Problem(str(path), f"column '{column}' appears more than once", row=1,
                                    hint="remove or rename one of them"))
    return sheet


def _col(sheet: _Sheet, name: str) -> pd.Series:
    normal = [_norm_header(h) for h in sheet.header]
    key = _norm_header(name)
    if key in normal:
        return sheet.body[normal.index(key)]
    return pd.Series("", index=sheet.body.index, dtype=object)


def _join(*parts: pd.Series) -> pd.Series:
    out = parts[0]
    for p in parts[1:]:
        out = (out + " " + p).str.strip()
    return out


def _choose_addresses(sheet: _Sheet, patient_ids: pd.Series, as_of: date
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """The permanent address in force at the as-of date, per patient.

    In force: DateEvent empty or on/before the as-of date, and DateTo empty or on/after it.
    Several in force (overlapping rows): the latest DateEvent wins (an empty DateEvent counts
    as earliest), then the later row in the file; the others are listed in warnings. Rows
    not chosen are history: read, weighed, counted as used. Malformed rows are rejected.
    Returns (addresses by patient_id, rejected, warnings, rows read)."""
    file = sheet.file
    rows = sheet.rows
    stamp = pd.Timestamp(as_of)
    pid = _col(sheet, "IDPatient")
    kind_raw = _col(sheet, "AddressType")
    kind = kind_raw.str.lower().map(_ADDRESS_TYPES)
    start_raw, end_raw = _col(sheet, "DateEvent"), _col(sheet, "DateTo")
    start, end = parse_dates(start_raw), parse_dates(end_raw)
    keep = pd.Series(True, index=sheet.body.index)
    rejected = []
    for mask, column, values, reason in (
        (pid == "", "IDPatient", pid, "IDPatient is empty"),
        (~isin(pid, patient_ids), "IDPatient", pid, "no patient with this id in SRPatient.csv"),
        (kind.isna(), "AddressType", kind_raw,
         "unknown AddressType; expected Permanent (0), Temporary (1) or Correspondence (3)"),
        ((start_raw != "") & start.isna(), "DateEvent", start_raw, "DateEvent is not a date"),
        ((end_raw != "") & end.isna(), "DateTo", end_raw, "DateTo is not a date"),
    ):
        hit = (mask & keep).to_numpy()
        if hit.any():
            rejected.append(_issues(file, rows[hit], column, values[hit], reason))
        keep &= ~mask
    in_force = keep & (kind == "permanent") & (start.isna() | (start <= stamp)) & (end.isna() | (end >= stamp))
    cand = pd.DataFrame({"patient_id": pid, "start": start.fillna(pd.Timestamp("1800-01-01")),
                         "row": rows})[in_force]
    cand = cand.sort_values(["patient_id", "start", "row"], kind="mergesort")
    chosen_idx = cand.drop_duplicates("patient_id", keep="last").index
    overlap = cand.index.difference(chosen_idx)
    warnings = _issues(file, rows[overlap], "DateEvent", start_raw[overlap],
                       "another permanent address of this patient is also in force at the as-of date; the "
                       "one with the latest DateEvent (then the later row) was used: end one of them") \
        if len(overlap) else _empty_issues()
    b = sheet.body.loc[chosen_idx]
    sub = sheet.body.index.isin(chosen_idx)
    lines = [_col(sheet, "NameOfBuilding")[sub],
             _join(_col(sheet, "NumberOfBuilding")[sub], _col(sheet, "NameOfRoad")[sub]),
             _col(sheet, "NameOfLocality")[sub], _col(sheet, "NameOfTown")[sub],
             _col(sheet, "NameOfCounty")[sub]]
    addresses = pd.DataFrame({"patient_id": pid[sub], **dict(zip(ADDRESS_LINES, lines)),
                              "postcode": _col(sheet, "FullPostCode")[sub]}, index=b.index)
    rej = pd.concat(rejected, ignore_index=True) if rejected else _empty_issues()
    return addresses.set_index("patient_id"), rej, warnings, len(sheet.body)


def _meta(sheet: _Sheet) -> dict[str, str]:
    return {"sha256": sheet.sha256, "encoding": sheet.encoding}


def read_systmone_sre(folder: Path, as_of: date) -> Export:
    """Read a SystmOne Strategic Reporting Extract folder (SRPatient, SRPatientAddressHistory,
    SRCode and, optionally, SRPatientRelationship)."""
    names = export_files(folder, {n.lower() for n in SRE_COLUMNS})
    problems: list[Problem] = []
    sheets = {n: _sre_sheet(folder, names, n, problems) for n in [*SRE_FILES, "SRPatientRelationship.csv"]}
    if problems:
        raise ExportError(problems)
    pat, addr, code, rel = (sheets["SRPatient.csv"], sheets["SRPatientAddressHistory.csv"],
                            sheets["SRCode.csv"], sheets["SRPatientRelationship.csv"])
    assert pat is not None and addr is not None and code is not None

    pid = _col(pat, "RowIdentifier")
    addresses, addr_rej, addr_warn, addr_read = _choose_addresses(addr, pid[pid != ""], as_of)
    addresses = addresses[~addresses.index.duplicated()]
    patients_frame = pd.DataFrame({
        "patient_id": pid, "nhs_number": _col(pat, "NHSNumber"), "surname": _col(pat, "Surname"),
        "forenames": _join(_col(pat, "FirstName"), _col(pat, "MiddleNames")),
        "date_of_birth": _col(pat, "DateBirth"), "sex": _col(pat, "Gender"),
    })
    located = patients_frame[["patient_id"]].join(addresses, on="patient_id")
    for c in [*ADDRESS_LINES, "postcode"]:
        patients_frame[c] = located[c].fillna("").astype(str)
    patients = _Part(pat.file, pat.file, patients_frame, pat.rows, **_meta(pat))

    snomed, ctv3 = _col(code, "SNOMEDCode"), _col(code, "CTV3Code")
    use_snomed = snomed != ""
    # SNOMED CT first: the codelists are SNOMED CT, and a mangled SNOMED code is rejected
    # with its reason rather than quietly replaced by the CTV3 code beside it.
    events_frame = pd.DataFrame({
        "patient_id": _col(code, "IDPatient"),
        "code": snomed.where(use_snomed, ctv3),
        "term": _col(code, "SNOMEDText").where(use_snomed, _col(code, "CTV3Text")),
        "date": _col(code, "DateEvent"),
        "code_system": np.where(use_snomed, "snomedct", np.where(ctv3 != "", "ctv3", "")),
    })
    events = _Part(code.file, code.file, events_frame, code.rows, **_meta(code))

    parts: dict[str, _Part | None] = {"patients.csv": patients, "events.csv": events, "relationships.csv": None}
    rel_warn = _empty_issues()
    if rel is not None:
        ended_raw = _col(rel, "DateEnded")
        ended = parse_dates(ended_raw)
        bad_date = (ended_raw != "") & ended.isna()
        history = ended.notna() & (ended < pd.Timestamp(as_of))  # ended before the as-of date
        pr_raw = _col(rel, "HasParentalResponsibility")
        pr = pr_raw.str.lower()
        word = _col(rel, "RelationshipType").str.lower()
        # Parental responsibility makes a carer a parent figure for household roles.
        word = word.where(~(pr.isin(_TRUE) & ~word.isin(_PARENT_WORDS) & (word != "")), "guardian")
        rel_frame = pd.DataFrame({"patient_id": _col(rel, "IDPatient"),
                                  "related_patient_id": _col(rel, "IDPatientRelationshipWith"),
                                  "relationship": word})
        part = _Part(rel.file, rel.file, rel_frame, rel.rows, **_meta(rel))
        part.pre_rejected = _issues(rel.file, rel.rows[bad_date.to_numpy()], "DateEnded", ended_raw[bad_date],
                                    "DateEnded is not a date")
        part.history = int((history & ~bad_date).sum())
        odd = ~pr.isin(_TRUE | _FALSE) & ~bad_date & ~history
        if odd.any():
            rel_warn = _issues(rel.file, rel.rows[odd.to_numpy()], "HasParentalResponsibility", pr_raw[odd],
                               "HasParentalResponsibility is not TRUE or FALSE; read as not known")
        _drop(part, ~(bad_date | history))
        parts["relationships.csv"] = part

    export = _assemble(parts, as_of, "systmone-sre", None)
    # Address rows of patients whose own row was rejected are rejected too; the rest were
    # used (the chosen address, or history weighed and passed over).
    accepted = export.patients["patient_id"]
    addr_pid = _col(addr, "IDPatient")
    already = np.zeros(len(addr.body), dtype=bool)
    if len(addr_rej):
        already = np.isin(addr.rows, addr_rej["row"].to_numpy(dtype=np.int64))
    orphan = (~isin(addr_pid, accepted) & ~already).to_numpy()
    addr_rej = pd.concat([addr_rej, _issues(addr.file, addr.rows[orphan], "IDPatient", addr_pid[orphan],
                                            "this patient's row in SRPatient.csv was rejected (see its entry)")],
                         ignore_index=True)
    no_home = ~isin(accepted, addresses.index)
    rows_of = pd.Series(pat.rows, index=pid.to_numpy())
    rows_of = rows_of[~rows_of.index.duplicated()]
    home_warn = _issues(pat.file, rows_of.reindex(accepted[no_home]).to_numpy(dtype=np.int64), "RowIdentifier",
                        accepted[no_home],
                        "no permanent address in force at the as-of date in SRPatientAddressHistory.csv; the "
                        "patient is placed in a household only through recorded relationships")
    addr_file = InputFile(addr.file, addr.sha256, addr.encoding, addr_read, addr_read - len(addr_rej),
                          len(addr_rej))
    files = list(export.files)
    files.insert(1, addr_file)
    # No rejected_inputs here: each of this layout's inputs is named by its own file.
    rejected = pd.concat([export.rejected, addr_rej], ignore_index=True)[ISSUE_COLUMNS]
    warnings = pd.concat([export.warnings, addr_warn, home_warn, rel_warn], ignore_index=True)[ISSUE_COLUMNS]
    return Export(export.patients, export.events, export.relationships, rejected, warnings, tuple(files),
                  None, "systmone-sre", event_codes=export.event_codes, events_input=export.events_input)


# ---------------------------------------------------------------------------------------
# Detection and dispatch


def detect_layout(path: Path | str) -> str:
    """Which layout ``path`` holds: canonical, systmone-sre (folders), emis or systmone-cr
    (files). Raises ``ExportError`` naming what was expected when it is none of them."""
    path = Path(path)
    if not path.exists():
        raise ExportError([Problem(str(path), "not found", hint=EXPECTED)])
    if path.is_dir():
        # Every entry, not only readable files: a patients.csv that is a broken link is a
        # canonical export whose reader says what is wrong with it, not an unknown folder.
        names = {p.name.lower() for p in path.iterdir()}
        if "srpatient.csv" in names:
            return "systmone-sre"
        if "patients.csv" in names or "events.csv" in names:
            return "canonical"
        csvs = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv"]
        if len(csvs) == 1:
            return detect_layout(csvs[0])
        raise ExportError([Problem(str(path / "patients.csv"), "not found",
                                   hint="the export folder must hold patients.csv and events.csv"),
                           Problem(str(path / "events.csv"), "not found", hint=EXPECTED)])
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)  # the header is near the top: never decode a whole 1 GB file twice
        if len(head) == 1 << 20 and b"\n" in head:
            head = head[: head.rfind(b"\n") + 1]  # never cut a UTF-8 character in two
    except OSError as exc:
        raise ExportError([Problem(str(path), f"cannot be read ({exc.strerror})")]) from None
    text, _ = decode_bytes(head, str(path))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    emis = builtin_profile("emis")
    cr = builtin_profile("systmone-cr")
    want_emis = [{_norm_header(n) for n in emis.names("patients", f)} for f in ("patient_id", "date_of_birth")]
    want_cr = [{_norm_header(n) for n in cr.names("patients", f)} for f in ("patient_id", "date_of_birth")]
    try:
        for i, (record, _) in enumerate(_records_with_offsets(text)):
            normal = {_norm_header(c) for c in record}
            if i == 0 and all(normal & w for w in want_cr) and normal & {_norm_header(n) for n in
                                                                           cr.names("events", "code")}:
                return "systmone-cr"
            if all(normal & w for w in want_emis):
                return "emis"
            if i == 0 and {"patient_id", "date_of_birth"} <= normal:
                raise ExportError([Problem(str(path), "is a file, not a folder: it looks like the canonical "
                                           "patients.csv on its own",
                                           hint="give the folder holding patients.csv and events.csv")])
            if i >= 200:
                break
    except csv.Error:
        pass
    raise ExportError([Problem(str(path), "is not a layout family_link recognises", hint=EXPECTED)])


def load_any_export(path: Path | str, as_of: date, *, layout: str | None = None,
                    profile: Path | str | None = None) -> Export:
    """Read EXPORT in its layout: detected, or ``layout`` (one of LAYOUT_CHOICES); a
    ``profile`` file implies the profile layout."""
    return start_any_export(path, as_of, layout=layout, profile=profile).export()


def start_any_export(path: Path | str, as_of: date, *, layout: str | None = None,
                     profile: Path | str | None = None, defer_events: bool = False) -> ExportReading:
    """``load_any_export`` as an ``ExportReading``; ``defer_events``: a canonical export's
    events are still being parsed on a background thread when this returns (``start_export``).
    Vendor layouts are read in full."""
    path = Path(path)
    if path.exists() and not path.is_dir() and (why := _not_a_file(path)) is not None:
        # A named pipe would be waited on for ever; a device read as an export.
        raise ExportError([Problem(str(path), why, hint=EXPECTED)])
    if profile is not None:
        layout = "profile"
    if layout is None:
        layout = detect_layout(path)
    if layout not in LAYOUTS:
        raise ExportError([Problem(str(path), f"unknown layout '{layout}'",
                                   hint="use one of: " + ", ".join(LAYOUT_CHOICES))])
    if layout == "canonical":
        return start_export(path, as_of, defer_events=defer_events)  # which releases Arrow's spare memory itself
    export = _load_vendor_export(path, as_of, layout, profile)
    release_arrow_memory()
    return ExportReading.of(export)


def _load_vendor_export(path: Path, as_of: date, layout: str, profile: Path | str | None) -> Export:
    if not path.exists():
        raise ExportError([Problem(str(path), "not found", hint=EXPECTED)])
    if layout == "systmone-sre":
        if not path.is_dir():
            raise ExportError([Problem(str(path), "is a file, not a folder",
                                       hint="a SystmOne Strategic Reporting Extract is a folder of SR*.csv files")])
        return read_systmone_sre(path, as_of)
    if path.is_dir():
        csvs = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        if len(csvs) != 1:
            raise ExportError([Problem(str(path), f"is a folder; the {LAYOUTS[layout]} layout reads one CSV file",
                                       hint="give the CSV file itself")])
        path = csvs[0]
    if layout == "profile":
        if profile is None:
            raise ExportError([Problem(str(path), "--format profile needs --profile FILE",
                                       hint="give the column-map YAML file with --profile")])
        return read_with_profile(path, load_profile(profile), as_of, "profile")
    return read_with_profile(path, builtin_profile(layout), as_of, layout)
