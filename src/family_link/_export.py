"""Reading the canonical export: three CSV files in a folder.

Open and parse are separate: ``load_export(folder, as_of)`` reads the files and calls
``parse_export_frames(...)``, which takes frames of strings, so tests and the generator can
feed frames directly.

Every input row ends up either used or in ``rejected`` (file, row, column, value, reason);
rows that are used but have something worth knowing (an NHS number failing its check digit,
an invalid postcode) are also listed in ``warnings``. Row numbers count the header as row 1,
as a spreadsheet shows them.
"""

from __future__ import annotations

__all__ = [
    "AfterEvents",
    "Export",
    "ExportReading",
    "EVENT_AFTER_AS_OF",
    "LEFT_OUT_ON_PURPOSE",
    "REPEATED_ROW_WITHOUT_EVENT",
    "HEAVY_REJECTION_ROWS",
    "HEAVY_REJECTION_SHARE",
    "HeavyRejection",
    "EventCodes",
    "InputFile",
    "heavy_rejections",
    "COLUMN_SYNONYMS",
    "load_export",
    "start_export",
    "parse_export_frames",
    "parse_dates",
    "read_csv_text",
    "nhs_number_valid",
    "normalise_codes",
]

import csv
import errno
import hashlib
import io
import math
import mmap
import os
import re
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import (MAY_BE_SPACE, arrow_text, factorize_text, filter_text, index_in_runs, isin, may_hold_bytes,
                      release_arrow_memory, short_index_in, strip_text, take_values, text_offsets_and_bytes,
                      text_series)
from . import _read_ahead
from .address import normalise_postcode
from .errors import ExportError, Problem

ADDRESS_LINES = [f"address_line_{i}" for i in range(1, 6)]

# Canonical column -> accepted header spellings. Headers are compared after lower-casing
# and turning every run of non-letters/digits into "_" (so "Date of Birth" == "date_of_birth").
COLUMN_SYNONYMS: dict[str, dict[str, list[str]]] = {
    "patients.csv": {
        "patient_id": ["patient_id", "patient id", "patientid", "patient number", "emis number",
                       "id patient", "idpatient", "rowidentifier"],
        "nhs_number": ["nhs_number", "nhs number", "nhs no", "nhsnumber", "nhs_no"],
        "surname": ["surname", "last name", "family name", "lastname"],
        "forenames": ["forenames", "forename", "first name", "first names", "given name",
                      "given names", "firstname"],
        "date_of_birth": ["date_of_birth", "date of birth", "dob", "birth date", "datebirth"],
        "sex": ["sex", "gender"],
        **{line: [line, f"address line {i}", f"address {i}", f"address{i}", f"addr{i}"]
           for i, line in enumerate(ADDRESS_LINES, start=1)},
        "postcode": ["postcode", "post code", "postal code", "fullpostcode", "full postcode"],
        "household_id": ["household_id", "household id", "household", "family group",
                         "family_group_id"],
        "uprn": ["uprn"],
    },
    "events.csv": {
        "patient_id": ["patient_id", "patient id", "patientid", "emis number", "idpatient"],
        "code": ["code", "snomed code", "snomed ct code", "concept id", "conceptid", "read code",
                 "clinical code"],
        "term": ["term", "description", "rubric", "code term", "snomed term"],
        "date": ["date", "event date", "effective date", "dateevent", "date recorded",
                 "consultation date"],
        "code_system": ["code_system", "code system", "coding system", "system", "code type"],
    },
    "relationships.csv": {
        "patient_id": ["patient_id", "patient id", "idpatient"],
        "related_patient_id": ["related_patient_id", "related patient id", "related patient",
                               "idpatientrelationshipwith", "related_to"],
        "relationship": ["relationship", "relationship type", "relationshiptype", "relation"],
    },
}
REQUIRED = {
    "patients.csv": ["patient_id", "date_of_birth"],
    "events.csv": ["patient_id", "code", "date"],
    "relationships.csv": ["patient_id", "related_patient_id", "relationship"],
}
OPTIONAL_FILES = {"relationships.csv"}

PATIENT_COLUMNS = ["patient_id", "nhs_number", "surname", "forenames", "date_of_birth", "sex",
                   *ADDRESS_LINES, "postcode", "household_id", "uprn"]
RELATIONSHIP_COLUMNS = ["patient_id", "related_patient_id", "relationship"]
ISSUE_COLUMNS = ["file", "row", "column", "value", "reason"]

_EARLIEST = pd.Timestamp("1880-01-01")
_SPACE_OR_DASH = MAY_BE_SPACE.copy()
_SPACE_OR_DASH[ord("-")] = True


def _norm_header(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lstrip("\ufeff").lower()).strip("_")


_SYNONYM_LOOKUP = {
    file: {_norm_header(s): canon for canon, names in spec.items() for s in names}
    for file, spec in COLUMN_SYNONYMS.items()
}


@dataclass(frozen=True)
class InputFile:
    name: str
    sha256: str
    encoding: str
    rows_read: int
    rows_used: int
    rows_rejected: int


@dataclass(frozen=True)
class Export:
    patients: pd.DataFrame
    events: pd.DataFrame
    relationships: pd.DataFrame
    rejected: pd.DataFrame  # ISSUE_COLUMNS: rows not used
    warnings: pd.DataFrame  # ISSUE_COLUMNS: rows used, with something worth knowing
    files: tuple[InputFile, ...]
    export_date: date | None = None
    layout: str = "canonical"
    # The events' code column as the reader factorised it (None where not known): lets the
    # rule engine test the few thousand distinct codes rather than five million rows.
    event_codes: EventCodes | None = field(default=None, repr=False, compare=False)
    # Each rejected row's input (its ``InputFile.name``), where that is not rejected.csv's
    # file: the patients or the events of a one-file layout ("report.csv (events)").
    # None: every rejected row's input is its file.
    rejected_inputs: pd.Series | None = field(default=None, repr=False, compare=False)
    # The events' input (its ``InputFile.name``): named when it holds no event rows at all.
    events_input: str = "events.csv"


# An input more than this share of whose rows were rejected for a fault, and at least
# HEAVY_REJECTION_ROWS of them, is named to the lead with its commonest reason: so many rows
# usually means a systematic fault (dates in another form, a column mapped wrongly, a cut-off
# file), and the alerts resting on them are missing. Generated practices' ordinary noise
# rejects about 0.25% of events; a handful of rows in a small file is the odd slip.
HEAVY_REJECTION_SHARE = 0.01
HEAVY_REJECTION_ROWS = 10
# Rows rejected for no fault of the export's, left out on purpose and nothing lost: events
# after the as-of date (the rules look only up to it) and a one-file report's repeat of a
# patient's row holding no event (layouts). Not counted towards a heavy rejection.
EVENT_AFTER_AS_OF = "event is dated after the as-of date; the rules look only at events up to it"
REPEATED_ROW_WITHOUT_EVENT = "repeats an earlier row of this patient and holds no event"
LEFT_OUT_ON_PURPOSE = (EVENT_AFTER_AS_OF, REPEATED_ROW_WITHOUT_EVENT)


@dataclass(frozen=True)
class HeavyRejection:
    """An input of the export more than ``HEAVY_REJECTION_SHARE`` of whose rows (and at least
    ``HEAVY_REJECTION_ROWS``) were rejected for a fault, with the commonest (column, reason)
    among them and its count. ``on_purpose``: its rows left out on
    purpose (``LEFT_OUT_ON_PURPOSE``), not counted in ``rows_rejected``. Counts and the
    reader's own reason texts only, never a value."""
    file: str
    rows_read: int
    rows_rejected: int
    column: str
    reason: str
    reason_rows: int
    on_purpose: int = 0

    def counts(self) -> str:
        """What was rejected: '964 of 1,925 rows of events.csv (50%) were rejected, most
        often in column date: "..." (963 rows).' (batch's summary.csv)."""
        share = 100 * self.rows_rejected / self.rows_read  # shown rounded down: never overstated
        pct = f"{math.floor(share)}%" if share >= 10 else f"{math.floor(share * 10) / 10}%"
        besides = (f" (not counting {_rows(self.on_purpose)} left out on purpose: events after the as-of date, "
                   "or repeated rows holding no event)") if self.on_purpose else ""
        return (f"{self.rows_rejected:,} of {_rows(self.rows_read)} of {self.file} ({pct}) were rejected"
                f'{besides}, most often in column {self.column}: "{self.reason}" ({_rows(self.reason_rows)}).')

    def sentence(self) -> str:
        """``counts`` and what it means for the worklist (the lead's warning)."""
        return (f"{self.counts()} Alerts resting on those rows are missing from this list: read "
                "rejected.csv and correct what it names before relying on the list.")


@dataclass(frozen=True)
class NoEventRows(HeavyRejection):
    """An events input holding no event rows at all (a header only; a one-file report whose
    event columns are all blank). Not refused: a tiny practice may have no coded entry in
    the codelists; but a practice's export nearly always has some, so the lead is told, by
    the same channels as a heavy rejection, that nothing could be flagged."""

    def counts(self) -> str:
        return f"{self.file} holds no event rows: nothing in this export could be flagged."

    def sentence(self) -> str:
        return (f"{self.counts()} Check that the search or extract returned the coded entries (all dates, run "
                "by a user with safeguarding access: docs/exports.md) before relying on the list.")


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def heavy_rejections(export: Export) -> tuple[HeavyRejection, ...]:
    """The export's inputs, in their order, more than ``HEAVY_REJECTION_SHARE`` of whose rows
    (and at least ``HEAVY_REJECTION_ROWS``) were rejected for a fault (rows left out on
    purpose, ``LEFT_OUT_ON_PURPOSE``, do not count), each with the commonest (column,
    reason) among those rows (ties: column, then reason, alphabetically)."""
    rejected = export.rejected
    inputs = export.rejected_inputs if export.rejected_inputs is not None else rejected["file"]
    inputs = pd.Series(np.asarray(inputs, dtype=object), index=rejected.index)
    by_design = rejected["reason"].isin(LEFT_OUT_ON_PURPOSE).to_numpy()
    found = []
    for f in export.files:
        mine = (inputs == f.name).to_numpy()
        faults = rejected[mine & ~by_design]
        if len(faults) < HEAVY_REJECTION_ROWS or len(faults) <= HEAVY_REJECTION_SHARE * f.rows_read:
            continue
        counts = faults.groupby(["column", "reason"]).size().reset_index(name="rows")
        top = counts.sort_values(["rows", "column", "reason"], ascending=[False, True, True],
                                 kind="mergesort").iloc[0]
        found.append(HeavyRejection(f.name, f.rows_read, len(faults), str(top["column"]), str(top["reason"]),
                                    int(top["rows"]), int((mine & by_design).sum())))
    events_read = next((f.rows_read for f in export.files if f.name == export.events_input), None)
    if export.events.empty and events_read == 0:
        found.append(NoEventRows(export.events_input, 0, 0, "", "", 0))
    return tuple(found)


@dataclass(frozen=True, eq=False)
class EventCodes:
    """``events["code"]`` as integers: row ``i``'s code is ``distinct[of[i]]`` (a practice's
    five million events hold a few thousand distinct codes; ``distinct`` may repeat a code,
    as two raw spellings can normalise to one). ``column`` is the code column's own array,
    so that ``describes`` can tell that a frame's code column is still the one factorised."""
    of: np.ndarray
    distinct: np.ndarray
    column: np.ndarray

    def describes(self, events: pd.DataFrame) -> bool:
        """Whether ``events["code"]`` is the column these codes were taken from (the same
        array, not a copy or a replacement). A value changed in place in that array is not
        seen: a caller who edits ``events["code"]`` in place must not pass these codes on."""
        if "code" not in events.columns or len(events) != len(self.of):
            return False
        values = events["code"].array
        values = getattr(values, "_ndarray", None)
        return (isinstance(values, np.ndarray) and values.dtype == self.column.dtype
                and values.__array_interface__["data"][0] == self.column.__array_interface__["data"][0])


class ExportReading:
    """An export read as far as the household linkage needs it. ``patients`` and
    ``relationships`` are final (the frames ``export()`` returns); the events may still be
    being parsed on a background thread. ``export()`` waits for them and returns the whole
    ``Export`` (the same, call after call), or raises the events' ExportError: every
    problem that would have been raised before theirs has already been raised by the loader.

    This lets ``run_check`` link households while the events (five million rows at a
    million patients) are checked on the other core."""

    def __init__(self, patients: pd.DataFrame, relationships: pd.DataFrame, finish: Callable[[], Export],
                 parsed: Callable[[], Export] | None = None):
        self.patients = patients
        self.relationships = relationships
        self._finish: Callable[[], Export] | None = finish
        # ``finish`` without its side effects (handing Arrow's spare memory back, which
        # belongs to the thread that goes on with the export): for after_events.
        self._parsed = parsed
        self._export: Export | None = None
        self._lock = threading.Lock()  # export() may be called from two threads (after_events)

    @classmethod
    def of(cls, export: Export) -> ExportReading:
        """An export already read in full."""
        reading = cls(export.patients, export.relationships, lambda: export)
        reading.export()
        return reading

    def export(self) -> Export:
        with self._lock:
            if self._export is None:
                assert self._finish is not None
                self._export = self._finish()  # raises (again, if called again) until it succeeds
                self._finish = None
            return self._export

    def after_events(self, func: Callable[[Export], object]) -> AfterEvents:
        """``func(export)`` as soon as the events are parsed: on a background thread (of the
        events' low priority) when they are still being parsed, so that work needing the
        events but not the households (the rules' coded events) is done beside the linkage;
        otherwise on the thread asking for ``result()`` (no thread is started beside a
        linkage that may fork). The export's own ExportError is raised by ``export()`` as
        ever (and by ``result()``)."""
        if self._export is not None:
            export = self._export
            return AfterEvents(lambda: func(export))
        background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-after-events")
        try:
            future = background.submit(_in_background, lambda: func((self._parsed or self.export)()))
        finally:
            background.shutdown(wait=False)
        return AfterEvents(future.result)


class AfterEvents:
    """``ExportReading.after_events``'s outcome: ``result()`` gives ``func``'s value (computed
    once) or raises its exception."""

    def __init__(self, compute: Callable[[], object]):
        self._compute: Callable[[], object] | None = compute
        self._value: object = None
        self._lock = threading.Lock()

    def result(self) -> object:
        with self._lock:
            if self._compute is not None:
                self._value = self._compute()
                self._compute = None
            return self._value


# ---------------------------------------------------------------------------------------
# Text and CSV


def decode_bytes(raw: bytes, label: str) -> tuple[str, str]:
    """UTF-8 with or without BOM, else cp1252. Binary content is refused."""
    if b"\x00" in raw[:65536]:
        raise ExportError([Problem(label, "is not a text file (it contains NUL bytes)",
                                   hint="export the report as CSV (comma-separated text)")])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and not raw[:exc.start].isascii():
            # Valid UTF-8, accented letters included, up to a character cut in two at the
            # very end: a file cut short, which read as Windows-1252 would turn every
            # accented name into mojibake. (All ASCII before it: a Windows-1252 file
            # ending in, say, "é" reads the same either way, and is read as before.)
            row = raw.count(b"\n") + 1
            raise ExportError([Problem(label, "the file ends in the middle of a character", row=row,
                                       hint=_CUT_SHORT_HINT)]) from None
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        # Name the row (as a spreadsheet counts it) and the byte, never the text around it.
        row = raw.count(b"\n", 0, exc.start) + 1
        raise ExportError([Problem(
            label, f"is neither UTF-8 nor Windows-1252 text: byte 0x{raw[exc.start]:02X} on row {row} "
            "is not a character in either", row=row,
            hint="save the file as 'CSV UTF-8' from the clinical system or spreadsheet, "
                 "or check it is really the CSV export")]) from None


_WIDE_ROW = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_WIDE_HINT = ("a value holding a comma must be in double quotes; re-export the file as CSV from the "
              "clinical system rather than editing it by hand")


_CUT_SHORT_HINT = "the file is cut short (an interrupted copy or export): copy or export it again"
_STRAY_QUOTE_HINT = ('a cell holds a stray double quote ("): remove it (inside a quoted cell, write it as ""), '
                     "or re-export the file from the clinical system")


def _csv_error(label: str, exc: Exception, first_row: int = 1, text: str | None = None,
               width: int | None = None) -> ExportError:
    """A parser error as a message naming the row (never the row's values). ``first_row``:
    the row number of the parsed text's first row (its header). ``text``, ``width``: the
    text parsed and its header's width, to look for a stray quote, which explains a row of
    the wrong width better than the parser can (``_first_row_problem``)."""
    detail = str(exc)
    if m := _OPEN_QUOTE.search(detail):
        row = int(m.group(1)) + first_row  # the parser counts from 0
        return ExportError([Problem(label, "a double quote opened on this row is never closed", row=row,
                                    hint="the file is cut short or a cell holds a stray \"; re-export it")])
    if text is not None and width is not None:
        problem = _first_row_problem(text, width, label, first_row)
        if problem is not None and problem.hint == _STRAY_QUOTE_HINT:
            return ExportError([problem])
    if m := _WIDE_ROW.search(detail):
        expected, row, saw = (int(g) for g in m.groups())
        return ExportError([Problem(label, f"has {saw} cells but the header row has {expected}",
                                    row=row + first_row - 1, hint=_WIDE_HINT)])
    first = detail.splitlines()[0][:200] if detail else type(exc).__name__
    return ExportError([Problem(label, f"is not a readable CSV file ({first})",
                                hint="check the file opens in a spreadsheet as columns")])


def _first_row_problem(text: str, width: int, label: str, first_row: int = 1, first_line: int = 1
                       ) -> Problem | None:
    """The first row of ``text`` (a CSV, its header first) that would lose data if read:
    one holding a non-empty cell beyond the header's ``width`` (an unquoted comma), or one
    whose quoted cell runs over several lines and has swallowed lines that are rows of
    their own (a stray quote: ``_swallows_rows``). A quoted cell may hold line breaks (free
    text), but lines are never lost silently. ``first_row``, ``first_line``: the row (as a
    spreadsheet counts them) and line of the file where ``text`` starts."""
    row_lines: list[str] = []  # the lines of the row being read (the reader asks for them one by one)

    def lines():
        for line in io.StringIO(text, newline=""):
            row_lines.append(line)
            yield line

    reader = csv.reader(lines())
    end = 0  # the last line of the row read so far (csv's own count)
    row, cells = first_row - 1, []
    try:
        for row, cells in enumerate(reader, start=first_row):
            start, end = end + 1, reader.line_num
            if end > start and _swallows_rows(row_lines):
                opened, closed = start + first_line - 1, end + first_line - 1
                where = "" if opened == row else f" (line {opened} of the file)"
                return Problem(label, f"a double quote opened on this row{where} is closed only on line {closed}, "
                               f"so the rows on lines {opened + 1} to {closed} were read as part of one cell",
                               row=row, hint=_STRAY_QUOTE_HINT)
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                return Problem(label, f"has {len(cells)} cells but the header row has {width}", row=row,
                               hint=_WIDE_HINT)
            row_lines.clear()
    except csv.Error:  # the parser that read the text has said what is wrong with it
        return None
    if row > first_row and 0 < len(cells) < width and not text.endswith(("\n", "\r")):
        # The last row stops short, with no line break after it: the file was cut (an
        # interrupted copy), and the row would be read with its last cells blank.
        return Problem(label, f"the file ends in the middle of this row ({len(cells)} of the header's {width} "
                       "cells)", row=row, hint=_CUT_SHORT_HINT)
    return None


_SHAPES = str.maketrans("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "9" * 10 + "A" * 52)


def _shape(cell: str) -> str:
    """A cell's shape: digits as 9, letters as A ("P000005" and "P000006": "A999999")."""
    return cell.strip().strip('"').strip().translate(_SHAPES)


def _swallows_rows(lines: list[str]) -> bool:
    """Whether a row read over several ``lines`` is a stray quote's work: one of its later
    lines is a row of its own, its cells (split at the commas) shaped as the row's first
    line's are where those hold a digit (an id, a date, an NHS number, a postcode: "P000006"
    where the first line has "P000005") — two of them, or the only one. Of the last line,
    only what comes before the quote that closes the cell is looked at (what follows is
    the rest of the row, in other columns), and one such cell is enough there: a stray
    quote may close early in it. Free text holding line breaks (an address, a
    consultation's term, commas and all) has no such line, and is read."""
    first = [_shape(c) for c in lines[0].split(",")]
    marked = [i for i, shape in enumerate(first) if "9" in shape]
    if not marked:
        return False
    for n, line in enumerate(lines[1:], start=2):
        last = n == len(lines)
        cells = (line[:_closing_quote(line)] if last else line).split(",")
        alike = sum(1 for i in marked if i < len(cells) and _shape(cells[i]) == first[i])
        if alike >= (1 if last else min(2, len(marked))):
            return True
    return False


def _closing_quote(line: str) -> int:
    """Where the quote closing a cell begun on an earlier line stands in ``line``: its
    first quote that is not a doubled one ("" stands for a quote in the text)."""
    at = line.find('"')
    while at >= 0 and line[at + 1:at + 2] == '"':
        at = line.find('"', at + 2)
    return at if at >= 0 else len(line)


def _arrow_frame(data: bytes | memoryview, *, valid_utf8: bool = False, strip: bool = True) -> pd.DataFrame | None:
    """Arrow's multi-threaded reader: about 5x faster than pandas' C parser on a practice's
    export. It refuses anything irregular (rows wider or narrower than the header, lines
    longer than its 1 MB block); those files return None and take pandas' parser, which
    explains or accepts them exactly as before. So do blank header cells. ``valid_utf8``:
    ``data`` is known to be valid UTF-8, so Arrow need not check each value again.
    ``strip``: False leaves the values unstripped (the caller strips them later)."""
    return _frame_of_table(_read_ahead.arrow_table(data, valid_utf8=valid_utf8), data, strip=strip)


def _frame_of_table(table: pa.Table | None, data: bytes | memoryview, *, strip: bool = True) -> pd.DataFrame | None:
    """``_arrow_frame`` once Arrow has parsed ``data`` as ``table`` (None: refused)."""
    if table is None:
        return None
    names = table.column_names
    if any(n == "" or n.startswith("Unnamed") for n in names):
        return None  # blank header cells: let the careful parser name them as it always has
    if len(set(names)) != len(names):
        return _read_with_pandas_arrow(data)  # pandas renames a repeat "X.1", which _map_columns reports
    if not strip:
        return pd.DataFrame({name: text_series(table.column(i)) for i, name in enumerate(table.column_names)})
    return _stripped_frame(table)


def _read_with_arrow(text: str) -> pd.DataFrame | None:
    return _arrow_frame(text.encode("utf-8"), valid_utf8=True)  # a str encodes to valid UTF-8 or raises


def _read_with_pandas_arrow(data: bytes | memoryview) -> pd.DataFrame | None:
    try:
        frame = pd.read_csv(io.BytesIO(data), engine="pyarrow", dtype=str, keep_default_na=False,
                            na_values=[])
    except Exception:  # noqa: BLE001 - any refusal means "use the careful parser"
        return None
    if any(str(c) == "" or str(c).startswith("Unnamed") for c in frame.columns):
        return None
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:
        frame[col] = frame[col].fillna("").astype(str).str.strip()
    return frame


def _stripped_frame(table: pa.Table) -> pd.DataFrame:
    """A table of text columns as a frame of stripped "str" columns (Arrow-backed, no copy
    where nothing needs stripping)."""
    return pd.DataFrame({name: text_series(strip_text(table.column(i)))
                         for i, name in enumerate(table.column_names)})


def read_csv_text(text: str, label: str) -> pd.DataFrame:
    """Parse CSV text into a frame of stripped strings (no type guessing, no NA magic)."""
    if not text.strip():
        raise ExportError([Problem(label, "is empty", hint="re-run the export; the file has no header row")])
    first_line = text.split("\n", 1)[0]
    if "," not in first_line:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in first_line:
                raise ExportError([Problem(label, f"is separated by {name}, not commas", row=1,
                                           hint="export as comma-separated CSV")])
    frame = _read_with_arrow(text)
    if frame is not None:
        return frame
    return _read_with_pandas(text, label)


def _read_with_pandas(text: str, label: str) -> pd.DataFrame:
    csv.field_size_limit(2**31 - 1)
    try:
        # index_col=False: without it, rows holding one cell more than the header silently
        # become the index and every value of the row shifts one column left. pandas then
        # drops a wider row's extra cells with a ParserWarning, which is not relied on:
        # warnings are process-wide, and with files read on two threads (and pandas
        # catching warnings inside its own functions) a warning can be caught by another
        # thread's catch_warnings, or restored away, and the data loss go unnoticed.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                                skipinitialspace=False, index_col=False, engine="c")
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise _csv_error(label, exc, text=text, width=_header_width(text)) from None
    # Rows wider than the header: harmless when the extra cells are empty (trailing commas),
    # data loss otherwise; and rows that swallowed others through a stray quote. Always
    # looked for: this path is taken when Arrow could not read the file, mostly for rows of
    # another width, as a stray quote makes (a scan of 5M events rows takes ~3 s).
    problem = _first_row_problem(text, len(frame.columns), label)
    if problem is not None:
        raise ExportError([problem])
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:
        frame[col] = frame[col].astype(str).str.strip()
    return frame


def _header_width(text: str) -> int | None:
    """The number of cells in the header row of CSV ``text`` (None: it cannot be read)."""
    try:
        return len(next(csv.reader(io.StringIO(text, newline=""))))
    except (csv.Error, StopIteration):
        return None


_MAP_FROM = _read_ahead.MAP_FROM  # files at least this large are mapped, not read into a copy


def _file_contents(path: Path) -> bytes | mmap.mmap:
    """The bytes of a file: a large file mapped read-only from the page cache (the
    system's copy, already in memory), a small or unmappable one read. Reading 400 MB into
    a new bytes object costs as much in first touches of fresh memory as the copy itself.
    Errors are those of ``Path.read_bytes``."""
    return _read_ahead.open_contents(path, _MAP_FROM)[0]


_close_contents = _read_ahead.close_contents


def _read_export_file(raw: bytes | mmap.mmap, label: str, strip: bool = True,
                      steps: _read_ahead.FirstSteps | None = None) -> tuple[pd.DataFrame, str]:
    """``decode_bytes`` then ``read_csv_text``: the same frame, encoding and errors, but a
    UTF-8 file whose header holds a comma goes from its bytes straight to Arrow, with no
    decoded and re-encoded copies of the file. ``raw``: the file's bytes, or its mapping.
    ``strip``: False may leave the values unstripped (on that fast path). ``steps``: the
    first steps' outcome (``_read_ahead.first_steps(raw)``) where already taken."""
    if steps is None:
        steps = _read_ahead.first_steps(raw)
    if steps.arrow:
        frame = _frame_of_table(steps.table, memoryview(raw)[steps.start:], strip=strip)
        if frame is None:  # what read_csv_text does once Arrow refuses the text
            return _read_with_pandas(decode_bytes(bytes(raw), label)[0], label), "utf-8"
        return frame, "utf-8"
    text, encoding = decode_bytes(bytes(raw), label)
    return read_csv_text(text, label), encoding


def columns_found(names) -> str:
    """A header row's cells for a message, each shortened (a broken file can hold a header
    cell of megabytes). Only for a row known to be a header (at least one of its cells is a
    known column name): a file exported without its header row has a patient on row 1,
    whose values must never be echoed (``headerless``)."""
    names = [str(c) for c in names]
    shown = [f"'{c[:40]}...'" if len(c) > 40 else f"'{c}'" for c in names[:30]]
    return ", ".join(shown + (["..."] if len(names) > 30 else [])) or "none"


def headerless(missing: list[str], width: int) -> str:
    """The message for a row 1 holding no known column name, which never repeats row 1."""
    return (f"missing required column(s): {', '.join(missing)}; none of the {width} names on row 1 "
            "is a known column name")


def _map_columns(frame: pd.DataFrame, file: str, label: str) -> tuple[pd.DataFrame, list[Problem]]:
    lookup = _SYNONYM_LOOKUP[file]
    problems: list[Problem] = []
    mapping: dict[str, str] = {}
    for col in frame.columns:
        canon = lookup.get(_norm_header(col))
        if canon is None:
            # pandas renames a repeated header "X" to "X.1": a repeated known column is an error.
            base = re.fullmatch(r"(.*)\.\d+", col)
            if base and base.group(1) in frame.columns and lookup.get(_norm_header(base.group(1))):
                problems.append(Problem(label, f"column '{base.group(1)}' appears more than once", row=1,
                                        hint="remove or rename one of them"))
            continue
        if canon in mapping.values():
            other = next(k for k, v in mapping.items() if v == canon)
            problems.append(Problem(label, f"columns '{other}' and '{col}' both mean '{canon}'", row=1,
                                    hint="remove or rename one of them"))
            continue
        mapping[col] = canon
    missing = [c for c in REQUIRED[file] if c not in mapping.values()]
    if missing and not mapping:
        # No known header at all: row 1 may be patient data (an export without its header
        # row), so it is never echoed to the terminal.
        problems.append(Problem(
            label, headerless(missing, len(frame.columns)), row=1,
            hint="the file may lack its header row; accepted names are listed in docs/export-format.md"))
    elif missing:
        problems.append(Problem(
            label, f"missing required column(s): {', '.join(missing)}", row=1,
            hint=f"columns found: {columns_found(frame.columns)}. Accepted names are listed in "
                 "docs/export-format.md"))
    out = frame[list(mapping)].rename(columns=mapping)
    return out, problems


# ---------------------------------------------------------------------------------------
# Values

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$")
_UK = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_S1 = re.compile(r"^(\d{1,2}) ([A-Za-z]{3}) (\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}


def _parse_dates_slow(s: pd.Series, allow_month: bool) -> pd.Series:
    """Regex path for the forms the fast formats miss (times, single digits, SystmOne)."""
    year = pd.Series(np.nan, index=s.index)
    month = year.copy()
    day = year.copy()
    for pattern, order in ((_ISO, "ymd"), (_UK, "dmy"), (_S1, "dMy")):
        parts = s.str.extract(pattern)
        hit = parts[0].notna()
        if not hit.any():
            continue
        p = parts[hit]
        if order == "ymd":
            y, m, d = p[0], p[1], p[2]
        elif order == "dmy":
            d, m, y = p[0], p[1], p[2]
        else:
            d, y = p[0], p[2]
            m = p[1].str.lower().map(_MONTHS)
        year[hit] = pd.to_numeric(y, errors="coerce")
        month[hit] = pd.to_numeric(m, errors="coerce")
        day[hit] = pd.to_numeric(d, errors="coerce")
    if allow_month:
        parts = s.str.extract(_MONTH)
        hit = parts[0].notna() & year.isna()
        year[hit] = pd.to_numeric(parts.loc[hit, 0], errors="coerce")
        month[hit] = pd.to_numeric(parts.loc[hit, 1], errors="coerce")
        day[hit] = 1
    frame = pd.DataFrame({"year": year, "month": month, "day": day})
    ok = frame.notna().all(axis=1) & frame["month"].between(1, 12) & frame["day"].between(1, 31) \
        & frame["year"].between(1880, 2200)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if ok.any():
        out[ok] = pd.to_datetime(frame[ok].astype(int), errors="coerce")
    return out


def parse_dates(values: pd.Series, *, allow_month: bool = False) -> pd.Series:
    """See ``_parse_distinct_dates``; each distinct text is parsed once (5 million events
    hold a few thousand distinct dates)."""
    codes, uniques = factorize_text(values)
    parsed = _parse_distinct_dates(uniques, allow_month=allow_month)
    return pd.Series(parsed.to_numpy()[codes], index=values.index, dtype="datetime64[ns]", copy=False)


def _parse_distinct_dates(values: pd.Series, *, allow_month: bool = False) -> pd.Series:
    """Vectorised date parsing. Accepts YYYY-MM-DD (optionally with a time),
    DD/MM/YYYY (always day first: the UK order; 03/04/2026 is 3 April), DD Mon YYYY
    (SystmOne) and, where ``allow_month``, YYYY-MM (read as the 1st of the month).
    Anything else, impossible dates (31/02/2026) and years outside 1880-2200 give NaT.

    The two common exact forms go through pandas' C parsers; only what they miss takes
    the slower regex path."""
    s = values.astype(str).str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    todo = pd.Series(True, index=s.index)
    for fmt, shape in (("%Y-%m-%d", r"\d{4}-\d{2}-\d{2}"), ("%d/%m/%Y", r"\d{2}/\d{2}/\d{4}")):
        candidates = todo & s.str.fullmatch(shape)
        if not candidates.any():
            continue
        parsed = (_parse_day_first(s[candidates]) if fmt == "%d/%m/%Y"
                  else pd.to_datetime(s[candidates], format=fmt, errors="coerce"))
        years = parsed.dt.year
        parsed = parsed.where(years.between(1880, 2200))
        out[candidates] = parsed.astype("datetime64[ns]")
        todo &= ~candidates  # an exact-shaped value that failed (31/02/2026) stays NaT
    if todo.any():
        out[todo] = _parse_dates_slow(s[todo], allow_month)
    return out


def _parse_day_first(texts: pd.Series) -> pd.Series:
    """``pd.to_datetime(texts, format="%d/%m/%Y", errors="coerce")`` of DD/MM/YYYY texts:
    written in ASCII digits, they are rewritten YYYY-MM-DD and read by pandas' ISO parser
    (its strptime of any other format is ~8x slower: 0.025 s for the 28,600 distinct
    slash dates of birth of a million patients)."""
    if not bool(texts.str.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}").all()):
        return pd.to_datetime(texts, format="%d/%m/%Y", errors="coerce")  # other scripts' digits
    iso = texts.str.slice(6, 10) + "-" + texts.str.slice(3, 5) + "-" + texts.str.slice(0, 2)
    return pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")


_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/\d{4}\b")
MONTH_FIRST_REASON = (
    "date can only be read month first (MM/DD/YYYY); dates are always read day first "
    "(DD/MM/YYYY, the UK order), so this is not a date: correct it, or re-export with UK dates")


def _slash_date_order(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct value: whether a slash date is valid only month first (04/13/2026),
    and whether only day first (13/04/2026)."""
    month_first = np.zeros(len(values), dtype=bool)
    day_first = np.zeros(len(values), dtype=bool)
    # Only a value holding a slash can match: Python's regex runs on those alone.
    slashed = np.flatnonzero(values.astype(str).str.contains("/", regex=False).to_numpy(dtype=bool, na_value=False))
    if len(slashed):
        found = _slash_date_parts(values, slashed)
        if found is None:
            parts = values.iloc[slashed].astype(str).str.strip().str.extract(_SLASH_DATE)
            first = pd.to_numeric(parts[0], errors="coerce")
            second = pd.to_numeric(parts[1], errors="coerce")
        else:
            first, second = (pd.Series(part) for part in found)
        month_first[slashed] = (first.between(1, 12) & second.between(13, 31)).to_numpy()
        day_first[slashed] = (second.between(1, 12) & first.between(13, 31)).to_numpy() & ~month_first[slashed]
    return month_first, day_first


_SLASH_DATE_RE2 = r"^(?P<first>[0-9]{1,2})/(?P<second>[0-9]{1,2})/[0-9]{4}\b"  # _SLASH_DATE for ASCII text


def _slash_date_parts(values: pd.Series, slashed: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The two numbers ``_SLASH_DATE`` finds in each stripped value at ``slashed`` (-1
    where it does not match), through Arrow's regex engine rather than Python's, value by
    value. For ASCII text only, where the two engines' \\d and \\b agree; else None."""
    chunked = arrow_text(values)
    if chunked.null_count or pc.all(pc.string_is_ascii(chunked)).as_py() is False:
        return None
    texts = pc.utf8_trim_whitespace(pc.take(chunked, pa.array(slashed)))
    found = pc.extract_regex(texts, pattern=_SLASH_DATE_RE2)
    matched = found.is_valid().to_numpy(zero_copy_only=False)
    parts = []
    for field in (0, 1):
        numbers = np.full(len(slashed), -1, dtype=np.int64)
        if matched.any():
            hits = pc.filter(found, pa.array(matched))
            numbers[matched] = pc.cast(pc.struct_field(hits, [field]), pa.int64()).to_numpy(zero_copy_only=False)
        parts.append(numbers)
    return parts[0], parts[1]


def _refuse_month_first_column(month_first: np.ndarray, day_first: np.ndarray, label: str, column: str,
                               issues: _Issues) -> None:
    """A column whose slash dates are mostly month first is refused as a whole: its dates
    that fit both orders (04/05/2026) would otherwise be misread. The message names rows,
    never values (a date of birth identifies a patient)."""
    n_month, n_day = int(month_first.sum()), int(day_first.sum())
    if n_month >= 3 and n_month > n_day:
        idx = np.flatnonzero(month_first)[:3]
        rows = (idx + 2) if issues.rows is None else issues.rows[idx]
        raise ExportError([Problem(
            label, f"the dates in this column look month first (US order): {n_month} can only be read "
                   f"as MM/DD/YYYY (rows {', '.join(str(r) for r in rows)}, ...) and {n_day} only as "
                   "DD/MM/YYYY", column=column,
            hint="dates are always read day first (DD/MM/YYYY); re-export with UK dates or YYYY-MM-DD, "
                 "or the dates that fit both orders would be misread")])


def nhs_number_valid(numbers: pd.Series) -> pd.Series:
    """Modulus 11 check digit (NHS Data Dictionary). ``numbers`` already stripped of spaces."""
    s = numbers.astype(str)
    found = _ascii_ten_digits(s)
    if found is None:
        shaped = s.str.fullmatch(r"[0-9]{10}")  # ASCII digits only: \d also matches other scripts
        digits = None
    else:
        shaped, digits = found
    valid = np.zeros(len(s), dtype=bool)
    if shaped.any():
        if digits is None:
            joined = "".join(s[shaped].tolist()).encode("ascii")
            digits = (np.frombuffer(joined, dtype=np.uint8).reshape(-1, 10) - ord("0")).astype(np.int64)
        valid[shaped.to_numpy(dtype=bool)] = _check_digit_ok(digits)
    return pd.Series(valid, index=s.index, dtype=bool, copy=False)


def _check_digit_ok(digits: np.ndarray) -> np.ndarray:
    """Modulus 11 over the rows of an (n, 10) array of digit values: the weighted sum
    column by column (nine passes over n small numbers, no (n, 9) copy to multiply), in
    16 bits (the sum is at most 9 x 54 = 486: a quarter of 64-bit sums' memory traffic)."""
    digits = digits.astype(np.uint8, copy=False)
    total = np.zeros(len(digits), dtype=np.uint16)
    for column, weight in enumerate(range(10, 1, -1)):
        total += digits[:, column] * np.uint16(weight)
    check = np.uint16(11) - total % np.uint16(11)
    check[check == 11] = 0
    return (check != 10) & (check == digits[:, 9])


def _ascii_ten_digits(numbers: pd.Series) -> tuple[pd.Series, np.ndarray] | None:
    """(which values are ten digits, their digits as an (n, 10) uint8 array), read from
    Arrow's buffers; None (use the regex) when a value is missing or not ASCII, where
    ``\\d`` would also match other scripts' digits."""
    chunked = arrow_text(numbers)
    if chunked.null_count:
        return None
    shaped = np.zeros(len(chunked), dtype=bool)
    digits = np.zeros((0, 10), dtype=np.uint8)
    if len(chunked):
        offsets, data = text_offsets_and_bytes(chunked.combine_chunks())
        text = data[offsets[0]:offsets[-1]]
        if text.max(initial=0) >= 0x80:  # a byte of a non-ASCII character
            return None
        is_ten = np.diff(offsets) == 10
        if is_ten.all():  # every value ten bytes long: the bytes are the (n, 10) block
            ten = np.arange(len(chunked))
            block = text.reshape(-1, 10)
        else:
            ten = np.flatnonzero(is_ten)
            # Ten bytes from each start, read through a sliding-window view of the bytes (a
            # row copy each; an (n, 10) matrix of byte positions cost six times as much).
            block = (sliding_window_view(data, 10)[offsets[ten]] if len(ten)
                     else np.zeros((0, 10), dtype=np.uint8))
        values = block - np.uint8(ord("0"))  # a byte below "0" wraps round past 9
        numeric = _all_below_ten(values)
        shaped[ten[numeric]] = True
        digits = values if numeric.all() else values[numeric]
    return pd.Series(shaped, index=numbers.index, dtype=bool, copy=False), digits


def _all_below_ten(values: np.ndarray) -> np.ndarray:
    """``(values < 10).all(axis=1)`` for an (n, 10) uint8 array: each row's ten answers
    padded to 16 bytes and read as two 64-bit words (NumPy's reduction along a short
    axis is several times slower)."""
    padded = np.zeros((len(values), 16), dtype=np.uint8)
    np.less(values, 10, out=padded[:, :10].view(bool))
    words = padded.view(np.uint64)
    return (words[:, 0] == _ALL_TEN[0]) & (words[:, 1] == _ALL_TEN[1])


_ALL_TEN = np.frombuffer(bytes([1] * 10 + [0] * 6), dtype=np.uint64)  # a row of ten trues, as read above


_SCIENTIFIC = re.compile(r"^\d+(?:\.\d+)?[eE][+\-]?\d+$")
_READ7 = re.compile(r"^([A-Za-z0-9.]{5})\d{2}$")


def _per_unique(values: pd.Series, func):
    """Apply a vectorised ``func`` (returning a tuple of Series) to the distinct values
    only, then spread the results back (a practice's 5 million events hold a few thousand distinct codes)."""
    codes, uniques = factorize_text(values)
    return tuple(pd.Series(r.to_numpy()[codes], index=values.index, dtype=object, copy=False)
                 for r in func(uniques))


def normalise_codes(codes: pd.Series) -> tuple[pd.Series, pd.Series]:
    """See ``_normalise_codes``; computed once per distinct code."""
    return _per_unique(codes.astype(str), _normalise_codes)


def _normalise_codes(codes: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (code, problem). Codes are stripped; CPRD-style 7-character Read v2 codes
    ("13Iv.00") are cut to their 5 characters; SNOMED IDs turned into numbers by a
    spreadsheet ("3.42191E+14", "342191000000101.0") and codes with inner spaces are
    problems, since the real code cannot be recovered."""
    s = codes.astype(str).str.strip()
    problem = pd.Series("", index=s.index, dtype=object)
    problem[s == ""] = "code is empty"
    problem[s.str.fullmatch(_SCIENTIFIC)] = (
        "code looks like a spreadsheet turned it into a number in scientific notation; "
        "the digits are lost: re-export the code column as text")
    problem[s.str.fullmatch(r"\d+\.0+")] = (
        "code looks like a spreadsheet turned it into a decimal number; re-export the code column as text")
    problem[s.str.contains(r"\s", regex=True) & (problem == "")] = (
        "code contains spaces; remove them or re-export the code column as text")
    read7 = s.str.extract(_READ7)[0]
    cut = read7.notna() & ~s.str.fullmatch(r"\d+") & (problem == "")
    s = s.where(~cut, read7)
    return s, problem


def _infer_code_systems(codes: pd.Series, given: pd.Series) -> tuple[pd.Series, pd.Series]:
    names = {"snomedct": "snomedct", "snomed": "snomedct", "snomed_ct": "snomedct", "sct": "snomedct",
             "readv2": "readv2", "read": "readv2", "read_v2": "readv2", "read2": "readv2",
             "ctv3": "ctv3", "read_v3": "ctv3", "readv3": "ctv3", "emis": "emis", "emis_local": "emis"}
    g = given.fillna("").astype(str).map(_norm_header).str.replace("_", "")
    mapped = g.map({k.replace("_", ""): v for k, v in names.items()})
    unknown = (g != "") & mapped.isna()
    digits = codes.str.fullmatch(r"\d{6,18}")
    inferred = pd.Series("readv2", index=codes.index, dtype=object)
    inferred[codes.str.fullmatch(r"[XY][A-Za-z0-9.]{4}") & codes.str.contains(r"[a-z]")] = "ctv3"
    inferred[digits] = "snomedct"
    inferred[digits & codes.str.contains("1000006", regex=False)
             & codes.str[-3:-1].eq("10") & codes.str.len().ge(13)] = "emis"
    out = mapped.where(mapped.notna(), inferred)
    return out, unknown


# ---------------------------------------------------------------------------------------
# Parsing frames


class _Issues:
    """Collects rejected rows and warnings, first reason per row wins. Masks are NumPy
    booleans over the frame's positions; only the (few) hit rows are ever turned into
    issue rows."""

    def __init__(self, file: str, rows: np.ndarray | None = None):
        self.file = file
        self.rows = rows  # original row number per frame position (vendor layouts); else header + 1
        self.rejected: list[pd.DataFrame] = []
        self.warnings: list[pd.DataFrame] = []

    def _frame(self, file: str, mask: np.ndarray, column: str, values: pd.Series | None,
               reason: str | Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        return pd.DataFrame({
            "file": file,
            "row": (idx + 2) if self.rows is None else self.rows[idx],
            "column": column,
            "value": take_values(values, idx) if values is not None else "",
            "reason": reason(idx) if callable(reason) else reason,
        })

    def reject(self, keep: np.ndarray, mask: np.ndarray, column: str, values: pd.Series | None,
               reason: str | Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Reject rows in ``mask`` that are still kept; return the new keep mask. A
        ``reason`` per row is given as a function from positions to reasons."""
        hit = mask & keep
        if hit.any():
            self.rejected.append(self._frame(self.file, hit, column, values, reason))
            return keep & ~hit
        return keep

    def warn(self, mask: np.ndarray, column: str, values: pd.Series | None, reason: str) -> None:
        if mask.any():
            self.warnings.append(self._frame(self.file, mask, column, values, reason))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        def cat(parts: list[pd.DataFrame]) -> pd.DataFrame:
            if not parts:
                return pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS})
            return pd.concat(parts, ignore_index=True)
        return cat(self.rejected), cat(self.warnings)


def _columns(frame: pd.DataFrame, stripped: bool = False) -> dict[str, pd.Series]:
    """Each column as stripped text over positions 0..n-1 (Arrow-backed "str"). A missing
    cell (None or NaN, from a frame built by a vendor layout or a caller) is an empty
    value, so the checks for empty values reject it. Stripping is skipped where no value
    needs it, and for a frame known to be ``stripped`` already."""
    def text(name: str) -> pa.ChunkedArray:
        values = arrow_text(frame[name])
        return pc.fill_null(values, "") if values.null_count else values

    if stripped:
        return {name: text_series(text(name)) for name in frame.columns}
    return {name: text_series(strip_text(text(name))) for name in frame.columns}


def _column(columns: dict[str, pd.Series], name: str, n: int) -> pd.Series:
    if name in columns:
        return columns[name]
    return pd.Series("", index=pd.RangeIndex(n), dtype=object)


def _pop_column(columns: dict[str, pd.Series], name: str, n: int) -> pd.Series:
    """``_column``, taking the column out of ``columns``."""
    return columns.pop(name) if name in columns else _column(columns, name, n)


def _mask(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=bool)


def _normalise_sex(values: pd.Series) -> pd.Series:
    """Per distinct value (a column holds a handful), then spread back."""
    codes, uniques = factorize_text(values)
    v = pd.Series(uniques, dtype=str).str.strip().str.lower()
    out = np.full(len(v), "U", dtype=object)
    out[_mask(v.isin(["f", "female", "2", "w", "woman", "girl"]))] = "F"
    out[_mask(v.isin(["m", "male", "1", "man", "boy"]))] = "M"
    return pd.Series(out[codes], index=values.index, dtype=object, copy=False)


def _checked_dates(issues: "_Issues", keep: np.ndarray, raw: pd.Series, as_of: pd.Timestamp, *, column: str,
                   noun: str, forms: str, after_as_of: str, allow_month: bool = False,
                   factorized: Future | None = None) -> tuple[pd.Series, np.ndarray]:
    """Parse a date column and reject, with the first reason that applies: empty, month
    first (US order), not a date, after the as-of date. A column mostly month first is
    refused whole. Returns (dates, the new keep mask). Every test is made once per
    distinct text (5 million events hold a few thousand distinct dates). ``factorized``:
    ``factorize_text(raw)`` already under way."""
    codes, uniques = factorized.result() if factorized is not None else factorize_text(raw, as_text=True)
    parsed = _parse_distinct_dates(uniques, allow_month=allow_month).to_numpy(dtype="datetime64[ns]")
    month_first, day_first = _slash_date_order(uniques)
    if month_first.any():  # else no value is month first: n_month is 0
        counts = np.bincount(codes, minlength=len(uniques))
        n_month, n_day = int(counts[month_first].sum()), int(counts[day_first].sum())
        if n_month >= 3 and n_month > n_day:
            _refuse_month_first_column(month_first[codes], day_first[codes], issues.file, column, issues)
    missing = np.isnat(parsed)
    # Each test is spread to the rows (a pass over five million) only when some distinct
    # text fails it.
    for failed, reason in ((_mask(uniques == ""), f"{noun} is empty"),
                           (missing & month_first, MONTH_FIRST_REASON),
                           (missing, f"{noun} is not a date in {forms} form"),
                           (parsed > as_of.to_datetime64(), after_as_of)):
        if failed.any():
            keep = issues.reject(keep, failed[codes], column, raw, reason)
    return pd.Series(parsed[codes], index=raw.index, dtype="datetime64[ns]", copy=False), keep


def _kept(values: pd.Series, keep: np.ndarray, everything: bool) -> pd.Series:
    """``values[keep].reset_index(drop=True)``; Arrow's filter for text (pandas' boolean
    indexing builds an index of five million positions only to drop it)."""
    if everything:
        return values
    if values.dtype == object:
        return values[keep].reset_index(drop=True)
    return text_series(filter_text(arrow_text(values), keep))


def _parse_patients(raw: dict[str, pd.Series], n: int, as_of: pd.Timestamp, label: str,
                    rows: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    pid = _column(raw, "patient_id", n)
    dob_raw = _column(raw, "date_of_birth", n)
    postcode = _column(raw, "postcode", n)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Independent passes over every patient, two at a time (Arrow releases the GIL).
        pids_found = pool.submit(_repeats_possible, pid)
        dobs_found = pool.submit(factorize_text, dob_raw, as_text=True)
        postcode_ok = pool.submit(_postcode_valid, postcode)
        sex = pool.submit(_normalise_sex, _column(raw, "sex", n))
        return _parse_patients_rest(raw, n, as_of, label, rows, pid, dob_raw, postcode, pids_found,
                                    dobs_found, postcode_ok, sex)


def _repeats_possible(pid: pd.Series) -> tuple[np.ndarray, pd.Series] | None:
    """``factorize_text(pid)``, or None when the ids are strictly ascending (an export is
    usually in id order), so that no id can repeat: no hash table of a million ids."""
    if _ascending([pid], strictly=True):
        return None
    return factorize_text(pid)


def _parse_patients_rest(raw: dict[str, pd.Series], n: int, as_of: pd.Timestamp, label: str,
                         rows: np.ndarray | None, pid: pd.Series, dob_raw: pd.Series, postcode: pd.Series,
                         pids_found: Future, dobs_found: Future, postcode_ok: Future, sex: Future
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    issues = _Issues(label, rows)
    keep = np.ones(n, dtype=bool)
    keep = issues.reject(keep, _mask(pid == ""), "patient_id", pid,
                         "patient_id is empty; the row cannot be used")
    found = pids_found.result()
    if found is None:  # ids strictly ascending: none repeats
        dup = np.zeros(n, dtype=bool)
    else:
        codes, uniques = found
        dup = (np.bincount(codes, minlength=len(uniques)) > 1)[codes] & _mask(pid != "")
    keep = issues.reject(keep, dup, "patient_id", pid,
                         "patient_id appears on more than one row; none of them is used: fix the export "
                         "so each patient appears once")
    dob, keep = _checked_dates(issues, keep, dob_raw, as_of, column="date_of_birth", noun="date of birth",
                               forms="YYYY-MM-DD, DD/MM/YYYY or YYYY-MM",
                               after_as_of="date of birth is after the as-of date", allow_month=True,
                               factorized=dobs_found)
    nhs = _without_spaces_or_dashes(_column(raw, "nhs_number", n))
    bad_nhs = _mask((nhs != "") & ~nhs_number_valid(nhs))
    issues.warn(bad_nhs & keep, "nhs_number", nhs,
                "NHS number fails the modulus 11 check digit; the patient is still checked, but "
                "correct the number in the clinical system")
    bad_postcode = _mask(postcode != "") & ~postcode_ok.result()
    issues.warn(bad_postcode & keep, "postcode", postcode,
                "postcode is not a valid UK postcode; the patient is kept, but household links that "
                "rely on the postcode may be missed: correct it in the clinical system")
    out = pd.DataFrame({
        "patient_id": pid,
        "nhs_number": nhs,
        "surname": _column(raw, "surname", n),
        "forenames": _column(raw, "forenames", n),
        "date_of_birth": dob,
        "sex": sex.result(),
        **{line: _column(raw, line, n) for line in ADDRESS_LINES},
        "postcode": postcode,
        "household_id": _column(raw, "household_id", n),
        "uprn": _column(raw, "uprn", n),
    }, copy=False)  # every column is new (or immutable Arrow text): no need to copy
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    if not _ascending([out["patient_id"]]):  # an export is usually in id order already
        out = out.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    rejected, warnings = issues.frames()
    return out, rejected, warnings


def _ascending(columns: list[pd.Series], strictly: bool = False) -> bool:
    """Whether rows of text are in ascending order (column by column, as a sort by these
    columns orders them) with nothing missing: then a stable sort leaves them as they are.
    ``strictly``: and no two rows are equal."""
    arrays = [arrow_text(c) for c in columns]
    if any(a.null_count for a in arrays):
        return False
    if len(arrays[0]) < 2:
        return True
    before, after = arrays[-1][:-1], arrays[-1][1:]
    ordered = pc.less(before, after) if strictly else pc.less_equal(before, after)
    for a in reversed(arrays[:-1]):
        before, after = a[:-1], a[1:]
        ordered = pc.or_(pc.less(before, after), pc.and_(pc.equal(before, after), ordered))
    return bool(pc.all(ordered).as_py())


def _without_spaces_or_dashes(values: pd.Series) -> pd.Series:
    r"""``values.str.replace(r"[\s\-]", "", regex=True)``: pandas runs that pattern through
    Python's ``re`` one value at a time (1.5 s for a million NHS numbers), so it is run
    only when some value holds a byte that may be a dash or white space."""
    if values.dtype == object or may_hold_bytes(arrow_text(values), _SPACE_OR_DASH):
        return values.str.replace(r"[\s\-]", "", regex=True)
    return values


def _postcode_valid(postcode: pd.Series) -> np.ndarray:
    """``normalise_postcode(...)["postcode_valid"]``, per distinct postcode."""
    codes, uniques = factorize_text(postcode, as_text=True)
    valid = normalise_postcode(pd.Series(uniques, dtype=str))["postcode_valid"].to_numpy(dtype=bool)
    return valid[codes]


def _parse_events(raw: dict[str, pd.Series], n: int, patients: pd.DataFrame, patient_ids_read: pd.Series,
                  as_of: pd.Timestamp, label: str, rows: np.ndarray | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, EventCodes | None]:
    """``raw`` is consumed: each column is dropped after its last use, so that Arrow can
    reuse its memory for the kept rows (when the caller holds no other reference).
    Returns the events, rejected rows, warnings and the events' codes as integers."""
    issues = _Issues(label, rows)
    keep = np.ones(n, dtype=bool)
    pid = _pop_column(raw, "patient_id", n)
    code_raw = _pop_column(raw, "code", n)
    date_raw = _pop_column(raw, "date", n)
    given = _pop_column(raw, "code_system", n)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        # Four hash passes over five million values, independent of each other: Arrow
        # releases the GIL, so two run at a time (the results do not depend on the order).
        looked_up = pool.submit(index_in_runs, pid, patients["patient_id"])
        codes_found = pool.submit(factorize_text, code_raw)
        dates_found = pool.submit(factorize_text, date_raw, as_text=True)
        systems_found = pool.submit(factorize_text, given.fillna("") if arrow_text(given).null_count else given)
        keep = issues.reject(keep, _mask(pid == ""), "patient_id", pid, "patient_id is empty")
        position = looked_up.result()
        known = position >= 0
        unknown = np.flatnonzero(~known)
        was_rejected = np.zeros(n, dtype=bool)
        if len(unknown):
            # Ids on a patients.csv row (its row was rejected, since the id is not known).
            # (Arrow's take: pandas' positional take of a many-chunk column is far slower.)
            was_rejected[unknown] = _mask(isin(text_series(arrow_text(pid).take(pa.array(unknown))), patient_ids_read))
        keep = issues.reject(keep, was_rejected, "patient_id", pid,
                             "this patient's row in patients.csv was rejected (see its entry)")
        keep = issues.reject(keep, ~known, "patient_id", pid, "no patient with this id in patients.csv")
        # Codes: normalised once per distinct code.
        code_of, code_texts = codes_found.result()
        normal, problem = (r.to_numpy(dtype=object) for r in _normalise_codes(code_texts))
        bad_code = problem != ""
        if bad_code.any():  # else no row's code is a problem
            keep = issues.reject(keep, bad_code[code_of], "code", code_raw, lambda idx: problem[code_of[idx]])
        del code_raw
        when, keep = _checked_dates(issues, keep, date_raw, as_of, column="date", noun="event date",
                                    forms="YYYY-MM-DD or DD/MM/YYYY",
                                    after_as_of=EVENT_AFTER_AS_OF, factorized=dates_found)
        # Position -1 (an unknown id) takes the NaT put after the last patient.
        dob = np.append(patients["date_of_birth"].to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))
        keep = issues.reject(keep, _dated_before(when.to_numpy(), dob, position), "date", date_raw,
                             "event is dated before the patient's date of birth; check both dates")
        del date_raw, dob, position, known
        system, pair_of, unknown_system = _code_systems(code_of, normal, *systems_found.result())
        issues.warn(unknown_system & keep, "code_system", given,
                    "unknown code system (expected snomedct, readv2, ctv3 or emis); inferred from the code")
        del given, unknown_system
        everything = bool(keep.all())
        kept = slice(None) if everything else keep
        # The kept ids and terms are copied by Arrow (which releases the GIL) while the
        # codes, dates and systems are gathered here.
        pid_kept = pool.submit(_kept, pid, keep, everything)
        term_kept = pool.submit(_kept, _pop_column(raw, "term", n), keep, everything)
        del pid
        code_of = code_of[kept]
        code = pd.Series(normal[code_of], dtype=object, copy=False)
        codes = EventCodes(code_of, normal, code.array._ndarray)
        del code_of
        when = when if everything else pd.Series(when.to_numpy()[keep], dtype="datetime64[ns]", copy=False)
        code_system = pd.Series(system[pair_of[kept]], dtype=object, copy=False)
        del pair_of
        out = pd.DataFrame({"patient_id": pid_kept.result(), "code": code, "term": term_kept.result(),
                            "date": when, "code_system": code_system},
                           copy=False)  # every column is new (or immutable Arrow text): no need to copy
    finally:
        pool.shutdown()
    # Kept in file order: the engine sorts the few events the rules use, and sorting five
    # million rows here would cost more than reading them.
    rejected, warnings = issues.frames()
    if not codes.describes(out):  # (the frame took a copy of the column after all: no index)
        codes = None
    return out, rejected, warnings, codes


def _dated_before(when: np.ndarray, dates: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``when < dates[position]``, a million rows at a time: the gathered dates of five
    million events would be 40 MB of fresh memory (first touches are costly on this VM),
    a million rows' 8 MB is reused from one step to the next."""
    before = np.empty(len(when), dtype=bool)
    step = 1 << 20
    for start in range(0, len(when), step):
        rows = slice(start, start + step)
        np.less(when[rows], dates[position[rows]], out=before[rows])
    return before


def _code_systems(code_of: np.ndarray, normal: np.ndarray, given_of: np.ndarray, given_texts: pd.Series
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_infer_code_systems`` for the codes ``normal[code_of]`` and the given systems
    ``given_texts[given_of]`` (``factorize_text`` of the column, missing read as ""): the
    work done once per distinct (code, system) pair, found from the two columns' integer
    codes rather than by joining five million strings. Returns (system per pair, pair per
    row, unknown system per row)."""
    width = max(len(given_texts), 1)
    cells = len(normal) * width
    key = code_of.astype(np.int64 if cells >= 1 << 31 else np.int32, copy=False) * width + given_of
    if cells <= 1 << 22:
        seen = np.zeros(cells, dtype=bool)
        seen[key] = True
        pairs = np.flatnonzero(seen)
        slot = np.zeros(cells, dtype=np.int32)
        slot[pairs] = np.arange(len(pairs))
        pair_of = slot[key]
    else:
        pair_of, pairs = pd.factorize(key)
    texts = given_texts.to_numpy(dtype=object)
    # One "code<TAB>system" text per distinct pair, split back for _infer_code_systems.
    joined = pd.Series([f"{normal[p // width]}\t{texts[p % width]}" for p in pairs.tolist()], dtype=object)
    if joined.empty:
        return np.zeros(0, dtype=object), pair_of, np.zeros(len(key), dtype=bool)
    split = joined.str.split("\t", n=1, expand=True)
    system, unknown = _infer_code_systems(split[0], split[1])
    return system.to_numpy(dtype=object), pair_of, unknown.to_numpy(dtype=bool)[pair_of]


def _parse_relationships(raw: dict[str, pd.Series], n: int, patients: pd.DataFrame, label: str,
                         rows: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    issues = _Issues(label, rows)
    keep = np.ones(n, dtype=bool)
    a = _column(raw, "patient_id", n)
    b = _column(raw, "related_patient_id", n)
    rel = _column(raw, "relationship", n).str.lower()
    # Both id columns looked up in one pass (``isin``: a position found).
    known = short_index_in(arrow_text(pd.concat([a, b], ignore_index=True)), patients["patient_id"]) >= 0
    for col, values, found in (("patient_id", a, known[:n]), ("related_patient_id", b, known[n:])):
        keep = issues.reject(keep, _mask(values == ""), col, values, f"{col} is empty")
        keep = issues.reject(keep, ~found, col, values,
                             "no patient with this id in patients.csv (or that patient's row was rejected)")
    keep = issues.reject(keep, _mask(a == b), "related_patient_id", b, "a patient cannot be related to themselves")
    keep = issues.reject(keep, _mask(rel == ""), "relationship", rel, "relationship is empty")
    out = pd.DataFrame({"patient_id": a, "related_patient_id": b, "relationship": rel})
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    if not _ascending([out[c] for c in RELATIONSHIP_COLUMNS]):
        out = out.sort_values(RELATIONSHIP_COLUMNS, kind="mergesort").reset_index(drop=True)
    rejected, warnings = issues.frames()
    return out, rejected, warnings


def parse_export_frames(patients_raw: pd.DataFrame, events_raw: pd.DataFrame,
                        relationships_raw: pd.DataFrame | None, as_of: date,
                        *, labels: dict[str, str] | None = None,
                        row_numbers: dict[str, np.ndarray] | None = None) -> Export:
    """Validate and type frames of strings laid out as the canonical export.

    ``row_numbers`` (optional, per canonical file name) gives each raw row's number in the
    original file, for vendor layouts converted to these frames (layouts.py); without it a
    row's number is its position plus 2 (the header is row 1)."""
    raws = {"patients.csv": patients_raw, "events.csv": events_raw, "relationships.csv": relationships_raw}
    return _start_parse_frames(raws, as_of, labels=labels, row_numbers=row_numbers, stripped=False).export()


def _start_parse_frames(raws: dict[str, pd.DataFrame | None], as_of: date, *, labels: dict[str, str] | None,
                        row_numbers: dict[str, np.ndarray] | None, stripped: bool,
                        later: Callable[[], dict[str, pd.DataFrame | None]] | None = None,
                        defer_events: bool = False,
                        relationships_first: Callable[[], pd.DataFrame | None] | None = None,
                        unstripped: frozenset[str] = frozenset()) -> ExportReading:
    """``parse_export_frames`` of ``raws`` (by canonical file name), as an ``ExportReading``.
    ``raws`` is emptied as the frames are used, so that their memory can go as soon as it
    is no longer needed. ``stripped``: the frames come from ``read_csv_text`` (or its byte
    twin) unchanged, so their text is stripped already.

    ``later``: events.csv and relationships.csv are still being read (in another thread);
    called for their frames, it raises their ExportError if reading failed. The patients
    are parsed meanwhile, but every error is raised in the order it would be with all
    three frames at hand: reading, then columns, then values.

    ``defer_events``: the events' values are
    checked on a background thread, which ``export()`` waits for; every other problem (and
    every problem raised before the events' values are looked at: reading, columns, the
    patients' values) is raised here, so the events' ExportError, raised by ``export()``,
    is the one it would have been.

    ``relationships_first`` (with ``later``): called once the patients are parsed, gives
    relationships.csv's frame when it has been read without problems (else None: it then
    comes from ``later`` as before). Its values are then checked while events.csv is still
    being read (the relationships need only the patients), any error kept to be raised in
    its turn, after events.csv's reading and column problems and the events' values.

    ``unstripped``: with ``stripped``, files whose frames may not be stripped yet. The
    deferred events are stripped on their background thread."""
    labels = labels or {f: f for f in REQUIRED}
    rows = {f: (None if row_numbers is None or row_numbers.get(f) is None
                else np.asarray(row_numbers[f], dtype=np.int64)) for f in REQUIRED}
    found: dict[str, list[Problem]] = {}
    mapped: dict[str, pd.DataFrame] = {}
    n_read = {file: 0 if raws.get(file) is None else len(raws[file]) for file in REQUIRED}

    def map_file(file: str) -> None:
        raw = raws.pop(file, None)
        if raw is None:
            mapped[file] = pd.DataFrame({c: pd.Series(dtype=object) for c in RELATIONSHIP_COLUMNS})
            found[file] = []
            return
        mapped[file], found[file] = _map_columns(raw.reset_index(drop=True), file, labels[file])

    for file in REQUIRED:
        if later is None or file == "patients.csv":
            map_file(file)
    stamp = pd.Timestamp(as_of)
    columns: dict[str, dict[str, pd.Series]] = {}
    sizes: dict[str, int] = {}

    strip_events_later = defer_events and "events.csv" in unstripped

    def take_columns(file: str) -> None:
        known_stripped = stripped and (file not in unstripped or (file == "events.csv" and strip_events_later))
        columns[file] = _columns(mapped[file], known_stripped)
        sizes[file] = len(mapped.pop(file))

    parsed_patients: tuple | Exception | None = None
    rels_first: tuple | Exception | None = None  # the relationships parsed before events.csv is read
    if later is not None:
        if not found["patients.csv"]:
            take_columns("patients.csv")
            try:
                parsed_patients = _parse_patients(columns["patients.csv"], sizes["patients.csv"], stamp,
                                                  labels["patients.csv"], rows["patients.csv"])
            except Exception as exc:  # noqa: BLE001 - raised below, once events.csv's own errors are known
                parsed_patients = exc
        if relationships_first is not None and isinstance(parsed_patients, tuple) and not parsed_patients[0].empty:
            rels_raw = relationships_first()
            if rels_raw is not None:
                raws["relationships.csv"] = rels_raw
                n_read["relationships.csv"] = len(rels_raw)
                del rels_raw
                map_file("relationships.csv")
                if not found["relationships.csv"]:
                    take_columns("relationships.csv")
                    try:
                        rels_first = _parse_relationships(columns.pop("relationships.csv"),
                                                          sizes["relationships.csv"], parsed_patients[0],
                                                          labels["relationships.csv"], rows["relationships.csv"])
                    except Exception as exc:  # noqa: BLE001 - raised in its turn, below
                        rels_first = exc
        raws.update(later())
        for file in ("events.csv", "relationships.csv"):
            if file in found:  # relationships.csv, read and mapped above
                raws.pop(file, None)
                continue
            n_read[file] = 0 if raws.get(file) is None else len(raws[file])
            map_file(file)
    problems = [p for file in REQUIRED for p in found[file]]
    if problems:
        raise ExportError(problems)
    for file in REQUIRED:
        if file in mapped:
            take_columns(file)
    del mapped
    if parsed_patients is None:
        parsed_patients = _parse_patients(columns["patients.csv"], sizes["patients.csv"], stamp,
                                          labels["patients.csv"], rows["patients.csv"])
    if isinstance(parsed_patients, Exception):
        raise parsed_patients
    patients, rej_p, warn_p = parsed_patients
    del parsed_patients
    if patients.empty:
        raise ExportError([Problem(labels["patients.csv"],
                                   "has no usable patient rows" + (f" ({len(rej_p)} rejected)" if len(rej_p) else ""),
                                   hint="check that this is the practice's patient list export")])

    def finish(events_parsed: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, EventCodes | None],
               rels_parsed: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> Export:
        (events, rej_e, warn_e, codes), (rels, rej_r, warn_r) = events_parsed, rels_parsed
        rejected = pd.concat([rej_p, rej_e, rej_r], ignore_index=True)
        warnings = pd.concat([warn_p, warn_e, warn_r], ignore_index=True)
        files = []
        for file, used in (("patients.csv", patients), ("events.csv", events), ("relationships.csv", rels)):
            n_rej = int((rejected["file"] == labels[file]).sum())
            files.append(InputFile(labels[file], "", "", n_read[file], len(used), n_rej))
        return Export(patients, events, rels, rejected, warnings, tuple(files), event_codes=codes,
                      events_input=labels["events.csv"])

    events_args = (columns.pop("events.csv"), sizes["events.csv"], patients,
                   _column(columns["patients.csv"], "patient_id", sizes["patients.csv"]),
                   stamp, labels["events.csv"], rows["events.csv"])
    rels_args = (None if rels_first is not None else
                 (columns.pop("relationships.csv"), sizes["relationships.csv"], patients,
                  labels["relationships.csv"], rows["relationships.csv"]))
    del columns
    if not defer_events and rels_first is not None:
        events_parsed = _parse_events(*events_args)  # its error first, as below
        if isinstance(rels_first, Exception):
            raise rels_first
        return ExportReading.of(finish(events_parsed, rels_first))
    if not defer_events:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The relationships need only the patients: checked in a thread while the events
            # are (their id lookup is a hash pass in Arrow, which releases the GIL).
            rels_future = pool.submit(_parse_relationships, *rels_args)
            events_parsed = _parse_events(*events_args)
            rels_parsed = rels_future.result()
        return ExportReading.of(finish(events_parsed, rels_parsed))
    # Deferred: the events are parsed on a thread of their own, which outlives this call;
    # the relationships here meanwhile. The events' own columns (the patients' id and date of
    # birth only) are handed over, so that nothing the caller does with ``patients`` (the
    # household linkage) touches what the thread reads.
    events_args = (events_args[0], events_args[1],
                   pd.DataFrame({c: patients[c] for c in ("patient_id", "date_of_birth")}, copy=False),
                   *events_args[3:])
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-events")
    try:
        events_future = background.submit(_in_background, _parse_stripped_events if strip_events_later
                                          else _parse_events, *events_args)
    finally:
        background.shutdown(wait=False)  # the thread ends when the events are parsed
    del events_args
    if isinstance(rels_first, Exception):
        events_future.result()  # the events' error first, as when they were parsed here
        raise rels_first
    try:
        rels_parsed = rels_first if rels_first is not None else _parse_relationships(*rels_args)
    except Exception:
        events_future.result()  # the events' error first, as when they were parsed here
        raise
    return ExportReading(patients, rels_parsed[0], lambda: finish(events_future.result(), rels_parsed))


def _parse_stripped_events(raw: dict[str, pd.Series], *args):
    """``_parse_events`` of columns not stripped yet (``_columns`` of a frame known to be stripped)."""
    columns = {}
    for name in list(raw):  # each unstripped column let go of as its stripped twin is made
        columns[name] = text_series(strip_text(arrow_text(raw.pop(name))))
    return _parse_events(columns, *args)


_BACKGROUND_NICE = 10


def _in_background(func: Callable, *args):
    """``func(*args)`` on a thread of lower priority (Linux: a thread has a nice value of its
    own, and threads it starts inherit it): the deferred events check then takes the CPU
    the household linkage leaves idle (it is mostly one thread) rather than slowing its two
    threaded stretches (address normalisation) or what is left of the read. Nice +10
    (not 19), so that on a busy machine it is not starved for long while holding the GIL."""
    if sys.platform.startswith("linux"):
        try:
            thread = threading.get_native_id()
            nice = min(os.getpriority(os.PRIO_PROCESS, thread) + _BACKGROUND_NICE, 19)
            os.setpriority(os.PRIO_PROCESS, thread, nice)
        except (OSError, AttributeError):  # no per-thread priority here: run as is
            pass
    return func(*args)


def _sha256(data: bytes | mmap.mmap) -> str:
    return hashlib.sha256(data).hexdigest()


_HASH_STEP = 8 << 20  # bytes hashed at a time (a multiple of the page size)


class _Hashes:
    """The files' sha256, computed on one thread of low priority (``_in_background``) after
    each file is parsed: they are needed only for the run's summary, once the events are
    parsed, so they stay off the path to the patients and relationships (~0.24 s of CPU at
    a million patients, which on two cores slowed that path's Arrow parses). A mapped file
    is hashed a step at a time, each step's pages let go of once hashed (they stay in the
    page cache), and closed at the end. ``abandon()``: hashes not yet done are given up
    (the export could not be read), their files closed."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-sha256")
        self._stop = threading.Event()

    def submit(self, raw: bytes | mmap.mmap) -> Future:
        """The future of ``raw``'s sha256; once it is done, its ``lines`` holds the number
        of lines in ``raw`` (a last line without its line break counted): with more lines
        than rows, a row spans several lines (``_rows_spanning_lines``). Counted here, in
        the pass the hash makes over every byte anyway, off the reader's path (~1 ms per
        8 MB)."""
        lines: list[int] = []
        future = self._pool.submit(_in_background, self._hash, raw, lines)
        future.lines = lines  # type: ignore[attr-defined]
        return future

    def _hash(self, raw: bytes | mmap.mmap, lines: list[int] | None = None) -> str | None:
        try:
            if not isinstance(raw, mmap.mmap):
                if self._stop.is_set():
                    return None
                if lines is not None:
                    lines.append(_lines(raw.count(b"\n"), raw.count(b"\r"), raw[-4096:]))
                return _sha256(raw)
            digest = hashlib.sha256()
            lf = cr = 0
            with memoryview(raw) as view:
                for start in range(0, len(raw), _HASH_STEP):
                    if self._stop.is_set():
                        return None
                    with view[start:start + _HASH_STEP] as step:
                        digest.update(step)
                        if lines is not None:
                            chars = np.frombuffer(step, dtype=np.uint8)
                            lf += int(np.count_nonzero(chars == 10))
                            cr += int(np.count_nonzero(chars == 13))
                            del chars  # a view of the mapped file: it must go before the file closes
                    try:
                        raw.madvise(mmap.MADV_DONTNEED, start, min(_HASH_STEP, len(raw) - start))
                    except (AttributeError, OSError, ValueError):  # no madvise here: the pages go at close
                        pass
            if lines is not None:
                lines.append(_lines(lf, cr, raw[-4096:]))
            return digest.hexdigest()
        finally:
            _close_contents(raw)

    def abandon(self) -> None:
        self._stop.set()
        self.done()

    def done(self) -> None:
        """No more files: the thread ends once the last is hashed."""
        self._pool.shutdown(wait=False)

    def join(self) -> None:
        """Wait for the thread to end (every hash asked for is done): none is left running
        into a linkage that forks."""
        self._pool.shutdown(wait=True)


def _read_file(path: Path, hashes: _Hashes, strip: bool = True
               ) -> tuple[pd.DataFrame, tuple[Future, str]] | list[Problem]:
    """One export file as (frame, (its sha256 to come, encoding)), or the problems reading it.
    ``strip``: False may leave the values unstripped (``_read_export_file``)."""
    ahead = _read_ahead.take(path)  # the file's first steps, where the command line took them already
    try:
        raw_bytes = _file_contents(path) if ahead is None else ahead.raw
    except OSError as exc:
        return [Problem(str(path), f"cannot be read ({exc.strerror})")]
    try:
        frame, encoding = _read_export_file(raw_bytes, str(path), strip, None if ahead is None else ahead.steps)
    except BaseException as exc:
        _close_contents(raw_bytes)
        if isinstance(exc, ExportError):
            return list(exc.problems)
        if isinstance(exc, OSError):
            return [Problem(str(path), f"cannot be read ({exc.strerror})")]
        raise
    return frame, (hashes.submit(raw_bytes), encoding)  # which closes the file once hashed


def _lines(lf: int, cr: int, tail: bytes) -> int:
    """The lines of a file holding ``lf`` line feeds and ``cr`` carriage returns and ending
    in ``tail``, as the reader counts rows: lines end in LF, CR LF or CR alone (a Mac
    spreadsheet's CSV), a last line without its line break counts, blank lines at the end
    do not."""
    ends = max(lf, cr)
    body = tail.rstrip(b"\r\n")
    after = tail[len(body):]  # the last line's break and any blank lines after it
    breaks = max(after.count(b"\n"), after.count(b"\r"))
    if not body and len(tail) == breaks:  # nothing but line breaks (in the last 4 KB, at least)
        return 0 if len(tail) < 4096 else ends
    return ends + (breaks == 0) - max(breaks - 1, 0)


def _rows_spanning_lines(path: Path, rows: int) -> list[Problem]:
    """A file with more lines than rows (``rows`` and its header) has a quoted cell holding
    a line break, or blank lines. Arrow reads a cell's line break as free text wherever the
    rows' widths come out right, so a stray quote can swallow the lines after it unseen:
    the file is read again, slowly, to look (``_first_row_problem``); only such files are."""
    label = str(path)
    try:
        text, _ = decode_bytes(path.read_bytes(), label)
    except OSError as exc:
        return [Problem(label, f"cannot be read ({exc.strerror})")]
    except ExportError as exc:
        return list(exc.problems)
    width = _header_width(text)
    problem = None if width is None else _first_row_problem(text, width, label)
    return [] if problem is None else [problem]


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` (there, or a symbolic link) cannot be read as a file, or None when it is
    a regular file (a link to one included)."""
    try:
        mode = path.stat().st_mode  # follows a symbolic link
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link that leads back to itself (a loop)"
        if exc.errno == errno.ENOENT and path.is_symlink():
            return "is a symbolic link to a file that is not there (a drive not mounted, or the file moved)"
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    return "is a folder, not a file" if stat.S_ISDIR(mode) else "is not a regular file (a pipe, device or socket)"


def export_files(folder: Path, wanted: set[str]) -> dict[str, Path]:
    """The folder's regular files by lower-case name (names are matched ignoring case).
    Each ``wanted`` name (lower case) that is there must be one readable file: one that is a
    broken or looping symbolic link, a folder or a pipe, or two names differing only in case
    (patients.csv beside Patients.csv), refuses the export (exit 3), never read as absent or
    one of them taken in the folder's order."""
    entries: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        entries.setdefault(entry.name.lower(), []).append(entry)
    problems = []
    names = {}
    for lower, paths in entries.items():
        if lower in wanted and len(paths) > 1:
            problems.append(Problem(str(folder), f"holds {' and '.join(p.name for p in paths)}, names that differ "
                                    "only in case", hint="keep one of them (the export as delivered) and remove "
                                    "the other"))
            continue
        why = _not_a_file(paths[0])
        if why is None:
            names[lower] = paths[0]
        elif lower in wanted:
            problems.append(Problem(str(paths[0]), why, hint="put the export file itself in the folder, or remove "
                                    "this entry if the file is not part of the export"))
    if problems:
        raise ExportError(problems)
    return names


def load_export(folder: Path | str, as_of: date) -> Export:
    """Read ``patients.csv``, ``events.csv`` and (optional) ``relationships.csv`` from a folder."""
    return start_export(folder, as_of).export()


def start_export(folder: Path | str, as_of: date, *, defer_events: bool = False) -> ExportReading:
    """``load_export`` as an ``ExportReading``. ``defer_events``: return once the patients and
    relationships are read, the events still being parsed on a background thread (their
    file's reading, sha256 and columns are done: only their values' ExportError can come
    from ``export()``)."""
    folder = Path(folder)
    if not folder.exists():
        raise ExportError([Problem(str(folder), "not found", hint="give the folder holding patients.csv and events.csv")])
    if not folder.is_dir():
        raise ExportError([Problem(str(folder), "is a file, not a folder",
                                   hint="give the folder holding patients.csv, events.csv and relationships.csv")])
    files_read = ("patients.csv", "events.csv", "relationships.csv")
    names = export_files(folder, set(files_read))

    hashes = _Hashes()

    def read_in_background(file: str) -> tuple[pd.DataFrame, tuple[Future, str]] | list[Problem] | None:
        # events.csv's values are stripped where they are checked (``_start_parse_frames``'s
        # ``unstripped``): with the events deferred, on their background thread.
        return _read_file(names[file], hashes, strip=file != "events.csv") if file in names else None

    def problems_of(file: str, outcome) -> list[Problem]:
        if outcome is None:
            return [] if file in OPTIONAL_FILES else [
                Problem(str(folder / file), "not found", hint="the export folder must hold patients.csv and events.csv")]
        return outcome if isinstance(outcome, list) else []

    meta: dict[str, tuple[Future, str]] = {}
    try:
        reading = _start_reading(names, folder, as_of, files_read, read_in_background, problems_of, hashes, meta,
                                 defer_events)
    except BaseException:
        hashes.abandon()
        raise
    hashes.done()
    if not defer_events:  # (else at the end: the events' thread would fault the pages handed back in again)
        release_arrow_memory()

    checked: list = []  # parsed()'s one outcome: after_events's thread and finish() both ask
    checking = threading.Lock()

    def parsed() -> Export:
        with checking:  # a file with rows over several lines is scanned once, not twice
            if not checked:
                try:
                    checked.append(_parsed())
                except BaseException as exc:
                    checked.append(exc)
            if isinstance(checked[0], BaseException):
                raise checked[0]
            return checked[0]

    def _parsed() -> Export:
        try:
            export = reading.export()
        except BaseException:
            hashes.abandon()
            raise
        files = []
        problems = []
        for key, f in zip(REQUIRED, export.files):
            digest, encoding = meta[key] if key in meta else (None, "")
            sha256 = "" if digest is None else digest.result()
            if digest is not None and digest.lines and digest.lines[0] > f.rows_read + 1:
                problems += _rows_spanning_lines(names[key], f.rows_read)
            files.append(InputFile(f.name, sha256, encoding, f.rows_read, f.rows_used, f.rows_rejected))
        if problems:
            hashes.abandon()
            raise ExportError(problems)
        return Export(export.patients, export.events, export.relationships, export.rejected,
                      export.warnings, tuple(files), event_codes=export.event_codes,
                      events_input=export.events_input)

    def finish() -> Export:
        export = parsed()
        hashes.join()
        release_arrow_memory()  # again, once the events are parsed
        return export

    if not defer_events:
        return ExportReading.of(finish())
    return ExportReading(reading.patients, reading.relationships, finish, parsed)


def _start_reading(names: dict[str, Path], folder: Path, as_of: date, files_read: tuple[str, ...],
                   read_in_background: Callable, problems_of: Callable, hashes: _Hashes,
                   meta: dict[str, tuple[Future, str]], defer_events: bool) -> ExportReading:
    """``start_export``'s reading and parse, up to the patients and relationships; the
    files' (sha256, encoding) go into ``meta``."""
    with ThreadPoolExecutor(max_workers=1) as background:
        # events.csv (by far the largest file) and relationships.csv are read in the
        # background while patients.csv is read and the patients parsed: much of that is
        # single-threaded Python, which leaves the second core to Arrow's parse of events.
        # relationships.csv first (small): its values are checked while events.csv is read.
        others = {file: background.submit(read_in_background, file) for file in files_read[:0:-1]}
        outcomes = {"patients.csv": _read_file(names["patients.csv"], hashes) if "patients.csv" in names else None}
        if problems_of("patients.csv", outcomes["patients.csv"]):
            outcomes.update({file: future.result() for file, future in others.items()})
            raise ExportError([p for file in files_read for p in problems_of(file, outcomes[file])])
        raws: dict[str, pd.DataFrame | None] = {}
        raws["patients.csv"], meta["patients.csv"] = outcomes.pop("patients.csv")

        def relationships_first() -> pd.DataFrame | None:
            outcome = others["relationships.csv"].result()
            return outcome[0] if isinstance(outcome, tuple) else None

        def later() -> dict[str, pd.DataFrame | None]:
            outcomes.update({file: future.result() for file, future in others.items()})
            problems = [p for file in files_read[1:] for p in problems_of(file, outcomes[file])]
            if problems:
                raise ExportError(problems)
            frames: dict[str, pd.DataFrame | None] = {}
            for file in files_read[1:]:
                outcome = outcomes.pop(file)
                if outcome is not None:
                    frames[file], meta[file] = outcome
                else:
                    frames[file] = None
            return frames

        labels = {f: (names[f].name if f in names else f) for f in REQUIRED}
        return _start_parse_frames(raws, as_of, labels=labels, row_numbers=None, stripped=True, later=later,
                                   defer_events=defer_events, relationships_first=relationships_first,
                                   unstripped=frozenset({"events.csv"}))
