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
    "Export",
    "InputFile",
    "COLUMN_SYNONYMS",
    "load_export",
    "parse_export_frames",
    "parse_dates",
    "read_csv_text",
    "nhs_number_valid",
    "normalise_codes",
]

import csv
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ._frames import index_in, isin
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
    except UnicodeDecodeError:
        pass
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


def _csv_error(label: str, exc: Exception) -> ExportError:
    """A parser error as a message naming the row (never the row's values)."""
    detail = str(exc)
    if m := _WIDE_ROW.search(detail):
        expected, row, saw = (int(g) for g in m.groups())
        return ExportError([Problem(label, f"has {saw} cells but the header row has {expected}",
                                    row=row, hint=_WIDE_HINT)])
    if m := _OPEN_QUOTE.search(detail):
        row = int(m.group(1)) + 1  # the parser counts from 0
        return ExportError([Problem(label, "a double quote opened on this row is never closed", row=row,
                                    hint="the file is cut short or a cell holds a stray \"; re-export it")])
    first = detail.splitlines()[0][:200] if detail else type(exc).__name__
    return ExportError([Problem(label, f"is not a readable CSV file ({first})",
                                hint="check the file opens in a spreadsheet as columns")])


def _first_wide_row(text: str, width: int) -> tuple[int, int] | None:
    """(row, cells) of the first row holding a non-empty cell beyond the header's width."""
    for i, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            return i, len(cells)
    return None


def _read_with_arrow(text: str) -> pd.DataFrame | None:
    """Arrow's multi-threaded reader: about 5x faster than pandas' C parser on a practice's
    export. It refuses anything irregular (rows wider or narrower than the header, lines
    longer than its 1 MB block); those files return None and take pandas' parser, which
    explains or accepts them exactly as before."""
    try:
        frame = pd.read_csv(io.BytesIO(text.encode("utf-8")), engine="pyarrow", dtype=str,
                            keep_default_na=False, na_values=[])
    except Exception:  # noqa: BLE001 - any refusal means "use the careful parser"
        return None
    if any(str(c) == "" or str(c).startswith("Unnamed") for c in frame.columns):
        return None  # blank header cells: let the careful parser name them as it always has
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:
        frame[col] = frame[col].fillna("").astype(str).str.strip()
    return frame


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
    csv.field_size_limit(2**31 - 1)
    try:
        # index_col=False: without it, rows holding one cell more than the header silently
        # become the index and every value of the row shifts one column left.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                                skipinitialspace=False, index_col=False, engine="c")
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise _csv_error(label, exc) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # Rows wider than the header: harmless when the extra cells are empty (trailing
        # commas), data loss otherwise.
        wide = _first_wide_row(text, len(frame.columns))
        if wide is not None:
            row, cells = wide
            raise ExportError([Problem(label, f"has {cells} cells but the header row has "
                                              f"{len(frame.columns)}", row=row, hint=_WIDE_HINT)])
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:
        frame[col] = frame[col].astype(str).str.strip()
    return frame


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
            label, f"missing required column(s): {', '.join(missing)}; none of the {len(frame.columns)} "
            "names on row 1 is a known column name", row=1,
            hint="the file may lack its header row; accepted names are listed in docs/export-format.md"))
    elif missing:
        # Shortened: a broken file can hold a header cell of megabytes.
        names = [f"'{c[:40]}...'" if len(c) > 40 else f"'{c}'" for c in frame.columns[:30]]
        found = ", ".join(names + (["..."] if len(frame.columns) > 30 else [])) or "none"
        problems.append(Problem(
            label, f"missing required column(s): {', '.join(missing)}", row=1,
            hint=f"columns found: {found}. Accepted names are listed in docs/export-format.md"))
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
    codes, uniques = pd.factorize(values.astype(str), use_na_sentinel=False)
    parsed = _parse_distinct_dates(pd.Series(uniques, dtype=object), allow_month=allow_month)
    return pd.Series(parsed.to_numpy()[codes], index=values.index, dtype="datetime64[ns]")


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
        parsed = pd.to_datetime(s[candidates], format=fmt, errors="coerce")
        years = parsed.dt.year
        parsed = parsed.where(years.between(1880, 2200))
        out[candidates] = parsed.astype("datetime64[ns]")
        todo &= ~candidates  # an exact-shaped value that failed (31/02/2026) stays NaT
    if todo.any():
        out[todo] = _parse_dates_slow(s[todo], allow_month)
    return out


_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/\d{4}\b")
MONTH_FIRST_REASON = (
    "date can only be read month first (MM/DD/YYYY); dates are always read day first "
    "(DD/MM/YYYY, the UK order), so this is not a date: correct it, or re-export with UK dates")


def _slash_date_order(values: pd.Series) -> pd.Series:
    """Per value: "month_first" when a slash date is valid only month first (04/13/2026),
    "day_first" when valid only day first (13/04/2026), else ""."""
    def on_unique(u: pd.Series) -> pd.Series:
        parts = u.astype(str).str.strip().str.extract(_SLASH_DATE)
        first = pd.to_numeric(parts[0], errors="coerce")
        second = pd.to_numeric(parts[1], errors="coerce")
        out = pd.Series("", index=u.index, dtype=object)
        out[first.between(1, 12) & second.between(13, 31)] = "month_first"
        out[second.between(1, 12) & first.between(13, 31)] = "day_first"
        return out
    return _per_unique(values.astype(str), on_unique)


def _refuse_month_first_column(order: pd.Series, label: str, column: str, issues: _Issues) -> None:
    """A column whose slash dates are mostly month first is refused as a whole: its dates
    that fit both orders (04/05/2026) would otherwise be misread. The message names rows,
    never values (a date of birth identifies a patient)."""
    month_first = order == "month_first"
    n_month, n_day = int(month_first.sum()), int((order == "day_first").sum())
    if n_month >= 3 and n_month > n_day:
        idx = month_first[month_first].index[:3].to_numpy()
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
    shaped = s.str.fullmatch(r"\d{10}")
    valid = pd.Series(False, index=s.index)
    if shaped.any():
        joined = "".join(s[shaped].tolist()).encode("ascii")
        digits = (np.frombuffer(joined, dtype=np.uint8).reshape(-1, 10) - ord("0")).astype(np.int64)
        total = (digits[:, :9] * np.arange(10, 1, -1)).sum(axis=1)
        check = 11 - total % 11
        check = np.where(check == 11, 0, check)
        valid[shaped] = (check != 10) & (check == digits[:, 9])
    return valid


_SCIENTIFIC = re.compile(r"^\d+(?:\.\d+)?[eE][+\-]?\d+$")
_READ7 = re.compile(r"^([A-Za-z0-9.]{5})\d{2}$")


def _per_unique(values: pd.Series, func):
    """Apply a vectorised ``func`` to the distinct values only, then spread the results
    back (a practice's 5 million events hold a few thousand distinct codes)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    results = func(pd.Series(uniques, dtype=object))
    if isinstance(results, tuple):
        return tuple(pd.Series(r.to_numpy()[codes], index=values.index, dtype=object) for r in results)
    return pd.Series(results.to_numpy()[codes], index=values.index, dtype=object)


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


def infer_code_systems(codes: pd.Series, given: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalise a given code_system, or infer it from the code's shape (per distinct pair)."""
    pairs = codes.astype(str) + "\t" + given.fillna("").astype(str)

    def on_unique(u: pd.Series) -> tuple[pd.Series, pd.Series]:
        if u.empty:
            return u, u
        split = u.str.split("\t", n=1, expand=True)
        return _infer_code_systems(split[0], split[1])
    return _per_unique(pairs, on_unique)


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
    """Collects rejected rows and warnings, first reason per row wins."""

    def __init__(self, file: str, rows: np.ndarray | None = None):
        self.file = file
        self.rows = rows  # original row number per frame position (vendor layouts); else header + 1
        self.rejected: list[pd.DataFrame] = []
        self.warnings: list[pd.DataFrame] = []

    def _frame(self, file: str, mask: pd.Series, column: str, values: pd.Series | None,
               reason: str | pd.Series) -> pd.DataFrame:
        idx = mask[mask].index
        return pd.DataFrame({
            "file": file,
            "row": (idx.to_numpy() + 2) if self.rows is None else self.rows[idx.to_numpy()],
            "column": column,
            "value": values.loc[idx].to_numpy() if values is not None else "",
            "reason": reason.loc[idx].to_numpy() if isinstance(reason, pd.Series) else reason,
        })

    def reject(self, keep: pd.Series, mask: pd.Series, column: str, values: pd.Series | None,
               reason: str | pd.Series) -> pd.Series:
        """Reject rows in ``mask`` that are still kept; return the new keep mask."""
        hit = mask & keep
        if hit.any():
            self.rejected.append(self._frame(self.file, hit, column, values, reason))
        return keep & ~hit

    def warn(self, mask: pd.Series, column: str, values: pd.Series | None, reason: str) -> None:
        if mask.any():
            self.warnings.append(self._frame(self.file, mask, column, values, reason))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        def cat(parts: list[pd.DataFrame]) -> pd.DataFrame:
            if not parts:
                return pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS})
            return pd.concat(parts, ignore_index=True)
        return cat(self.rejected), cat(self.warnings)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype(str).str.strip()
    return pd.Series("", index=frame.index, dtype=object)


def _normalise_sex(values: pd.Series) -> pd.Series:
    v = values.str.strip().str.lower()
    out = pd.Series("U", index=values.index, dtype=object)
    out[v.isin(["f", "female", "2", "w", "woman", "girl"])] = "F"
    out[v.isin(["m", "male", "1", "man", "boy"])] = "M"
    return out


def _checked_dates(issues: "_Issues", keep: pd.Series, raw: pd.Series, as_of: pd.Timestamp, *, column: str,
                   noun: str, forms: str, after_as_of: str, allow_month: bool = False
                   ) -> tuple[pd.Series, pd.Series]:
    """Parse a date column and reject, with the first reason that applies: empty, month
    first (US order), not a date, after the as-of date. A column mostly month first is
    refused whole. Returns (dates, the new keep mask)."""
    when = parse_dates(raw, allow_month=allow_month)
    order = _slash_date_order(raw)
    _refuse_month_first_column(order, issues.file, column, issues)
    keep = issues.reject(keep, raw == "", column, raw, f"{noun} is empty")
    keep = issues.reject(keep, when.isna() & (order == "month_first"), column, raw, MONTH_FIRST_REASON)
    keep = issues.reject(keep, when.isna(), column, raw, f"{noun} is not a date in {forms} form")
    keep = issues.reject(keep, when > as_of, column, raw, after_as_of)
    return when, keep


def _parse_patients(raw: pd.DataFrame, as_of: pd.Timestamp, label: str, rows: np.ndarray | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    issues = _Issues(label, rows)
    keep = pd.Series(True, index=raw.index)
    pid = _column(raw, "patient_id")
    keep = issues.reject(keep, pid == "", "patient_id", pid, "patient_id is empty; the row cannot be used")
    dup = pid.duplicated(keep=False) & (pid != "")
    keep = issues.reject(keep, dup, "patient_id", pid,
                         "patient_id appears on more than one row; none of them is used: fix the export "
                         "so each patient appears once")
    dob_raw = _column(raw, "date_of_birth")
    dob, keep = _checked_dates(issues, keep, dob_raw, as_of, column="date_of_birth", noun="date of birth",
                               forms="YYYY-MM-DD, DD/MM/YYYY or YYYY-MM",
                               after_as_of="date of birth is after the as-of date", allow_month=True)
    nhs = _column(raw, "nhs_number").str.replace(r"[\s\-]", "", regex=True)
    bad_nhs = (nhs != "") & ~nhs_number_valid(nhs)
    issues.warn(bad_nhs & keep, "nhs_number", nhs,
                "NHS number fails the modulus 11 check digit; the patient is still checked, but "
                "correct the number in the clinical system")
    postcode = _column(raw, "postcode")
    bad_postcode = (postcode != "") & ~normalise_postcode(postcode)["postcode_valid"].to_numpy()
    issues.warn(bad_postcode & keep, "postcode", postcode,
                "postcode is not a valid UK postcode; the patient is kept, but household links that "
                "rely on the postcode may be missed: correct it in the clinical system")
    out = pd.DataFrame({
        "patient_id": pid,
        "nhs_number": nhs,
        "surname": _column(raw, "surname"),
        "forenames": _column(raw, "forenames"),
        "date_of_birth": dob,
        "sex": _normalise_sex(_column(raw, "sex")),
        **{line: _column(raw, line) for line in ADDRESS_LINES},
        "postcode": _column(raw, "postcode"),
        "household_id": _column(raw, "household_id"),
        "uprn": _column(raw, "uprn"),
    })[keep]
    rejected, warnings = issues.frames()
    return out.sort_values("patient_id", kind="mergesort").reset_index(drop=True), rejected, warnings


def _parse_events(raw: pd.DataFrame, patients: pd.DataFrame, rejected_ids: set[str],
                  as_of: pd.Timestamp, label: str, rows: np.ndarray | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    issues = _Issues(label, rows)
    keep = pd.Series(True, index=raw.index)
    pid = _column(raw, "patient_id")
    keep = issues.reject(keep, pid == "", "patient_id", pid, "patient_id is empty")
    position = index_in(pid, patients["patient_id"])
    known = position >= 0
    was_rejected = isin(pid, rejected_ids) & ~known
    keep = issues.reject(keep, was_rejected, "patient_id", pid,
                         "this patient's row in patients.csv was rejected (see its entry)")
    keep = issues.reject(keep, ~known, "patient_id", pid, "no patient with this id in patients.csv")
    code_raw = _column(raw, "code")
    code, code_problem = normalise_codes(code_raw)
    keep = issues.reject(keep, code_problem != "", "code", code_raw, code_problem)
    date_raw = _column(raw, "date")
    when, keep = _checked_dates(issues, keep, date_raw, as_of, column="date", noun="event date",
                                forms="YYYY-MM-DD or DD/MM/YYYY",
                                after_as_of="event is dated after the as-of date; the rules look only at "
                                            "events up to it")
    dob = pd.Series(patients["date_of_birth"].to_numpy()[np.where(known, position, 0)],
                    index=pid.index).where(known)
    keep = issues.reject(keep, when < dob, "date", date_raw,
                         "event is dated before the patient's date of birth; check both dates")
    system, unknown_system = infer_code_systems(code, _column(raw, "code_system"))
    issues.warn(unknown_system & keep, "code_system", _column(raw, "code_system"),
                "unknown code system (expected snomedct, readv2, ctv3 or emis); inferred from the code")
    out = pd.DataFrame({"patient_id": pid, "code": code, "term": _column(raw, "term"),
                        "date": when, "code_system": system})[keep]
    # Kept in file order: the engine sorts the few events the rules use, and sorting five
    # million rows here would cost more than reading them.
    out = out.reset_index(drop=True)
    rejected, warnings = issues.frames()
    return out, rejected, warnings


def _parse_relationships(raw: pd.DataFrame, patients: pd.DataFrame, label: str,
                         rows: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    issues = _Issues(label, rows)
    keep = pd.Series(True, index=raw.index)
    a = _column(raw, "patient_id")
    b = _column(raw, "related_patient_id")
    rel = _column(raw, "relationship").str.lower()
    for col, values in (("patient_id", a), ("related_patient_id", b)):
        keep = issues.reject(keep, values == "", col, values, f"{col} is empty")
        keep = issues.reject(keep, ~isin(values, patients["patient_id"]), col, values,
                             "no patient with this id in patients.csv (or that patient's row was rejected)")
    keep = issues.reject(keep, a == b, "related_patient_id", b, "a patient cannot be related to themselves")
    keep = issues.reject(keep, rel == "", "relationship", rel, "relationship is empty")
    out = pd.DataFrame({"patient_id": a, "related_patient_id": b, "relationship": rel})[keep]
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
    labels = labels or {f: f for f in REQUIRED}
    rows = {f: (None if row_numbers is None or row_numbers.get(f) is None
                else np.asarray(row_numbers[f], dtype=np.int64)) for f in REQUIRED}
    problems: list[Problem] = []
    mapped: dict[str, pd.DataFrame] = {}
    for file, raw in (("patients.csv", patients_raw), ("events.csv", events_raw),
                      ("relationships.csv", relationships_raw)):
        if raw is None:
            mapped[file] = pd.DataFrame({c: pd.Series(dtype=object) for c in RELATIONSHIP_COLUMNS})
            continue
        frame, found = _map_columns(raw.reset_index(drop=True), file, labels[file])
        problems.extend(found)
        mapped[file] = frame
    if problems:
        raise ExportError(problems)
    stamp = pd.Timestamp(as_of)
    patients, rej_p, warn_p = _parse_patients(mapped["patients.csv"], stamp, labels["patients.csv"],
                                              rows["patients.csv"])
    if patients.empty:
        raise ExportError([Problem(labels["patients.csv"],
                                   "has no usable patient rows" + (f" ({len(rej_p)} rejected)" if len(rej_p) else ""),
                                   hint="check that this is the practice's patient list export")])
    rejected_ids = set(rej_p["value"][rej_p["column"] == "patient_id"]) | set(
        _column(mapped["patients.csv"], "patient_id"))
    events, rej_e, warn_e = _parse_events(mapped["events.csv"], patients, rejected_ids, stamp,
                                          labels["events.csv"], rows["events.csv"])
    rels, rej_r, warn_r = _parse_relationships(mapped["relationships.csv"], patients,
                                               labels["relationships.csv"], rows["relationships.csv"])
    rejected = pd.concat([rej_p, rej_e, rej_r], ignore_index=True)
    warnings = pd.concat([warn_p, warn_e, warn_r], ignore_index=True)
    files = []
    for file, raw, used in (("patients.csv", patients_raw, patients), ("events.csv", events_raw, events),
                            ("relationships.csv", relationships_raw, rels)):
        n_read = 0 if raw is None else len(raw)
        n_rej = int((rejected["file"] == labels[file]).sum())
        files.append(InputFile(labels[file], "", "", n_read, len(used), n_rej))
    return Export(patients, events, rels, rejected, warnings, tuple(files))


def load_export(folder: Path | str, as_of: date) -> Export:
    """Read ``patients.csv``, ``events.csv`` and (optional) ``relationships.csv`` from a folder."""
    folder = Path(folder)
    if not folder.exists():
        raise ExportError([Problem(str(folder), "not found", hint="give the folder holding patients.csv and events.csv")])
    if not folder.is_dir():
        raise ExportError([Problem(str(folder), "is a file, not a folder",
                                   hint="give the folder holding patients.csv, events.csv and relationships.csv")])
    problems: list[Problem] = []
    raws: dict[str, pd.DataFrame | None] = {}
    meta: dict[str, tuple[str, str]] = {}
    names = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    for file in ("patients.csv", "events.csv", "relationships.csv"):
        path = names.get(file)
        if path is None:
            if file not in OPTIONAL_FILES:
                problems.append(Problem(str(folder / file), "not found",
                                        hint="the export folder must hold patients.csv and events.csv"))
            raws[file] = None
            continue
        try:
            raw_bytes = path.read_bytes()
            text, encoding = decode_bytes(raw_bytes, str(path))
            raws[file] = read_csv_text(text, str(path))
            meta[file] = (hashlib.sha256(raw_bytes).hexdigest(), encoding)
        except ExportError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append(Problem(str(path), f"cannot be read ({exc.strerror})"))
    if problems:
        raise ExportError(problems)
    labels = {f: (names[f].name if f in names else f) for f in REQUIRED}
    export = parse_export_frames(raws["patients.csv"], raws["events.csv"], raws["relationships.csv"],
                                 as_of, labels=labels)
    files = tuple(
        InputFile(f.name, *meta.get(key, ("", "")), f.rows_read, f.rows_used, f.rows_rejected)
        for key, f in zip(REQUIRED, export.files)
    )
    return Export(export.patients, export.events, export.relationships, export.rejected,
                  export.warnings, files)
