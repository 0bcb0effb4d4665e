"""The lead's worklist: ``worklist.html``, ``worklist.csv`` and ``worklist.xlsx``, the same
rows in each.

The HTML page is one self-contained file (no network, no external assets; a Content
Security Policy forbids any fetch), opens offline from a shared drive, prints cleanly, and
sorts and filters by rule, severity and status in the browser without a server. Everything
from the data is HTML-escaped. Opening ``worklist.html#selftest`` runs a small sort and
filter check in the page and writes the result into ``#selftest-result`` (used by
``scripts/check_html_in_chromium.py``).

The spreadsheet files are for people, so text that a spreadsheet would run as a formula
(starting ``=``, ``+``, ``-``, ``@``, tab or carriage return) is written as text: in the CSV
with a leading apostrophe, in the xlsx as a string cell. Every file is byte-identical for
the same inputs and as-of date (the xlsx's zip entries and workbook properties carry the
as-of date, never the clock).
"""

from __future__ import annotations

__all__ = ["WorklistFacts", "WORKLIST_COLUMNS", "build_worklist", "worklist_rows",
           "render_worklist_html", "render_worklist_csv", "render_worklist_xlsx",
           "STALE_EXPORT_DAYS"]

import io
import re
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import arrow_text, full_names, isin, join_skipping_nulls, text_offsets_and_bytes, text_series
from .report import _holds_any_byte, render_csv

STALE_EXPORT_DAYS = 14

# The columns of worklist.csv and worklist.xlsx, in order.
WORKLIST_COLUMNS = ["status", "first_flagged", "severity", "rule_id", "title", "patient_id", "name",
                    "date_of_birth", "nhs_number", "household_id", "recommendations", "reason",
                    "suggested_codes", "household_members"]
_HEADINGS = {
    "status": "Status", "first_flagged": "First flagged", "severity": "Severity", "rule_id": "Rule id",
    "title": "Rule", "patient_id": "Patient id", "name": "Patient", "date_of_birth": "Date of birth",
    "nhs_number": "NHS number", "household_id": "Household", "recommendations": "SCR W6 recommendations",
    "reason": "Why", "suggested_codes": "Codes to consider", "household_members": "Household members",
}
_SEVERITY_ORDER = {"action": 0, "review": 1}


@dataclass(frozen=True)
class WorklistFacts:
    """What the summary at the top of the worklist says (counts and dates, no patients)."""

    as_of: date
    rule_titles: dict[str, str]  # in rule order
    rule_severities: dict[str, str]
    export_date: date | None = None
    input_files: tuple[tuple[str, int, int, int], ...] = ()  # name, read, used, rejected
    rejected_rows: int = 0
    heavy_rejections: tuple[str, ...] = ()  # a sentence per file with many rows rejected (_export.HeavyRejection)
    warning_rows: int = 0
    households: int | None = None
    ambiguous_records: int | None = None
    previous_as_of: date | None = None  # the report compared against, if any
    notes: tuple[str, ...] = field(default_factory=tuple)


def _uk(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else ""


def _iso_to_uk(value: str) -> str:
    try:
        return date.fromisoformat(value).strftime("%d/%m/%Y")
    except (TypeError, ValueError):
        return value or ""


def _member_lists(members: pd.DataFrame, household_ids: pd.Series) -> pa.Array:
    """For each of ``household_ids``, the ``member`` texts of its household in patient id
    order (an empty list for a household with none), as an Arrow list array."""
    members = members[members["household_id"].notna()]
    household = _arrow_text(members["household_id"])
    patient = _arrow_text(members["patient_id"])
    n = len(household)
    if n > 1 and not patient.null_count and \
            not pc.any(pc.greater(patient.slice(0, n - 1), patient.slice(1))).as_py():
        # The members come in patient id order (the flagged households' rows of a practice's
        # patients, usually): a stable sort by household alone, by integer codes, keeps that
        # order within each household (the two-key text sort below cost ~0.007 s at 1M).
        encoded = pc.dictionary_encode(household)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
        keys = encoded.dictionary.take(pa.array(codes[starts]))
        text = _arrow_text(members["member"]).take(pa.array(order))
    else:
        # Arrow's stable sort (code point order, missing last, as pandas' mergesort of the frame).
        keys, starts, text = _member_groups_sorted(members, household, patient)
    lists = pa.LargeListArray.from_arrays(pa.array(np.append(starts, n).astype(np.int64)), text)
    wanted = pc.take(lists, pc.index_in(_arrow_text(household_ids), keys))
    return pc.coalesce(wanted, pa.scalar([], pa.large_list(_T)))


def _member_groups_sorted(members: pd.DataFrame, household: pa.Array,
                          patient: pa.Array) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """``_member_lists``' groups by one sort of (household, patient id): each group's
    household, its first position, and the member texts in that order."""
    order = pc.sort_indices(pa.table({"household": household, "patient": patient}),
                            sort_keys=[("household", "ascending"), ("patient", "ascending")])
    household = household.take(order)
    text = _arrow_text(members["member"]).take(order)
    n = len(household)
    if n:
        changes = pc.not_equal(household.slice(1), household.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.flatnonzero(changes) + 1])
    else:
        starts = np.zeros(0, dtype=np.int64)
    return household.take(pa.array(starts)), starts, text


def _same_patients(patients: pd.DataFrame, households: pd.DataFrame) -> bool:
    """Whether ``households`` holds the patients of ``patients`` row for row (the same
    patient_id at every position, as link_households gives them for an export's patients):
    a buffer comparison of the two id columns (~1 ms at 1,000,000), where both are text
    without missing values. The ids of an export's patients are unique (the reader rejects
    a repeated id), so a patient's row is then found by its household row's position,
    without a second scan of a million ids."""
    if len(patients) != len(households) or not len(patients):
        return False
    a, b = patients["patient_id"], households["patient_id"]
    if not (isinstance(a.dtype, pd.StringDtype) and isinstance(b.dtype, pd.StringDtype)):
        return False
    x, y = arrow_text(a), arrow_text(b)
    return x.type == y.type and not x.null_count and not y.null_count and x.equals(y)


def _filled_text(values: pd.Series) -> pa.Array | None:
    """``values.fillna("").astype(str)`` as one large_string Arrow array, for a column of
    text (str, or object holding str and missing values); None for anything else."""
    if isinstance(values.dtype, pd.StringDtype):
        arr = arrow_text(values)
    elif values.dtype == object:
        try:
            arr = pa.array(values.to_numpy(), type=_T, from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
            return None
    else:
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(_T)
    return pc.fill_null(arr, _s("")) if arr.null_count else arr


def _worklist_rows_aligned(flags: pd.DataFrame, patients: pd.DataFrame, households: pd.DataFrame,
                           at: np.ndarray, rule_order: list[str] | None) -> pd.DataFrame | None:
    """``worklist_rows`` where households holds the patients row for row (``_same_patients``)
    and ``at`` are the flagged households' rows: each flag's patient is found among those
    rows by one hash lookup, and the rows are made over Arrow arrays (no merges, no pandas
    sort of object columns, no per-column conversion of 25,000 Python strings at 1M
    patients). None where that cannot answer as the frame code would (a flag's patient
    outside those rows, a value that is not text, a missing rule id, patient id or
    severity, a role that is not text): the frame code then answers."""
    if any(c in flags.columns for c in ("name", "date_of_birth", "nhs_number")):
        return None  # the merge would have suffixed them
    cols = {c: _filled_text(flags[c]) for c in WORKLIST_COLUMNS if c in flags.columns}
    if any(v is None for v in cols.values()):
        return None
    for c in ("patient_id", "rule_id", "severity"):
        if flags[c].isna().any():
            return None  # the frame code sorts (and fills) these as they are
    role, nhs = households["role"], patients["nhs_number"]
    if not (isinstance(role.dtype, pd.StringDtype) and isinstance(nhs.dtype, pd.StringDtype)) or \
            role.iloc[at].isna().any():
        return None
    taken = pa.array(at)
    member_ids = arrow_text(patients["patient_id"]).take(taken).combine_chunks().cast(_T)
    where = pc.index_in(cols["patient_id"], value_set=member_ids)
    if where.null_count:
        return None
    people = patients[["forenames", "surname"]].take(at)
    names = _filled_text(full_names(people))
    if names is None:
        return None
    member = _cat(names, " (", member_ids, ", ", arrow_text(role).take(taken).combine_chunks().cast(_T), ")")
    members = pd.DataFrame({"patient_id": text_series(member_ids), "member": text_series(member),
                            "household_id": households["household_id"].take(at).reset_index(drop=True)})
    n = len(flags)
    person = at[where.to_numpy(zero_copy_only=False)]
    cols["name"] = names.take(where)
    cols["date_of_birth"] = _filled_text(
        patients["date_of_birth"].take(person).dt.strftime("%Y-%m-%d").reset_index(drop=True))
    cols["nhs_number"] = _filled_text(nhs.take(person).reset_index(drop=True))
    if cols["date_of_birth"] is None or cols["nhs_number"] is None:
        return None
    for c in ("status", "first_flagged"):
        cols.setdefault(c, pa.array([""] * n, _T))
    member_lists = _member_lists(members, flags["household_id"].reset_index(drop=True))
    # The order of sort_values(["_sev", "_rule", "rule_id", "patient_id"], kind="mergesort"):
    # Arrow's sort is stable too, and compares UTF-8 bytes, which orders as code points do.
    order_of = {r: i for i, r in enumerate(rule_order or [])}
    rule_ids, severities = cols["rule_id"], cols["severity"]
    distinct_rules, distinct_sev = pc.unique(rule_ids), pc.unique(severities)
    rule_key = pa.array([order_of.get(r, len(order_of)) for r in distinct_rules.to_pylist()], pa.int64())
    sev_key = pa.array([_SEVERITY_ORDER.get(v, 9) for v in distinct_sev.to_pylist()], pa.int64())
    keys = pa.table({"s": sev_key.take(pc.index_in(severities, value_set=distinct_sev)),
                     "r": rule_key.take(pc.index_in(rule_ids, value_set=distinct_rules)),
                     "i": rule_ids, "p": cols["patient_id"]})
    order = pc.sort_indices(keys, sort_keys=[("s", "ascending"), ("r", "ascending"), ("i", "ascending"),
                                             ("p", "ascending")])
    lists = member_lists.take(order)
    out = {c: text_series(cols[c].take(order)) for c in WORKLIST_COLUMNS if c != "household_members"}
    out["household_members"] = text_series(pc.binary_join(lists, _s("; ")))
    out["members"] = pd.Series(pd.arrays.ArrowExtensionArray(lists))
    return pd.DataFrame(out, columns=[*WORKLIST_COLUMNS, "members"])


def worklist_rows(flags: pd.DataFrame, patients: pd.DataFrame, households: pd.DataFrame,
                  rule_order: list[str] | None = None) -> pd.DataFrame:
    """Flags (with ``status`` and ``first_flagged`` when compared) joined with who the
    patient is and who they live with; ``WORKLIST_COLUMNS`` plus ``members`` (a list)."""
    # Only the flagged households' members are listed: at ICB scale that is a few
    # thousand rows, not every patient.
    # Only the columns used are filtered (a boolean filter of all of households' twelve
    # columns took 0.04 s at 1M patients, of 1,000,000 rows to keep a few thousand).
    at = np.flatnonzero(isin(households["household_id"], flags["household_id"].unique()).to_numpy())
    aligned = _same_patients(patients, households)
    if aligned:
        fast = _worklist_rows_aligned(flags, patients, households, at, rule_order)
        if fast is not None:
            return fast
    flagged = households[["patient_id", "household_id", "role"]].take(at)
    if aligned and isin(flags["patient_id"], flagged["patient_id"]).all():
        relevant = at  # the flagged households' rows are their patients' rows (see _same_patients)
    else:
        relevant = np.flatnonzero(isin(patients["patient_id"], pd.concat([flagged["patient_id"], flags["patient_id"]])))
    people = patients[["patient_id", "forenames", "surname", "date_of_birth", "nhs_number"]].take(relevant)
    people["name"] = full_names(people)
    members = flagged[["patient_id", "household_id", "role"]].merge(
        people[["patient_id", "name"]], on="patient_id", how="left")
    members["member"] = (members["name"].fillna("") + " (" + members["patient_id"] + ", "
                         + members["role"].astype(str) + ")")
    rows = flags.merge(people[["patient_id", "name", "date_of_birth", "nhs_number"]], on="patient_id", how="left")
    for col in ("status", "first_flagged"):
        if col not in rows.columns:
            rows[col] = ""
    rows["date_of_birth"] = rows["date_of_birth"].dt.strftime("%Y-%m-%d").fillna("")
    member_lists = _member_lists(members, rows["household_id"])
    rows["members"] = pd.Series(pd.arrays.ArrowExtensionArray(member_lists), index=rows.index)
    rows["household_members"] = pd.Series(pd.arrays.ArrowStringArray(pc.binary_join(member_lists, _s("; "))),
                                          index=rows.index)
    order = {r: i for i, r in enumerate(rule_order or [])}
    rows = rows[[*WORKLIST_COLUMNS, "members"]].assign(  # only the columns kept are sorted
        _sev=rows["severity"].map(_SEVERITY_ORDER).fillna(9), _rule=rows["rule_id"].map(order).fillna(len(order)))
    rows = rows.sort_values(["_sev", "_rule", "rule_id", "patient_id"], kind="mergesort")
    for col in WORKLIST_COLUMNS:
        if rows[col].dtype != "str" or rows[col].hasnans:  # else it is already what this gives
            rows[col] = rows[col].fillna("").astype(str)
    return rows[[*WORKLIST_COLUMNS, "members"]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Summary shared by every format


def _warnings(facts: WorklistFacts) -> list[str]:
    out = []
    if facts.export_date is None:
        out.append("The export does not record when it was made: check it was run in the last "
                   f"{STALE_EXPORT_DAYS} days, or events since then are missing from this list.")
    else:
        age = (facts.as_of - facts.export_date).days
        if age > STALE_EXPORT_DAYS:
            out.append(f"The export was made on {_uk(facts.export_date)}, {age} days before the as-of date "
                       f"(more than {STALE_EXPORT_DAYS}): events since then are missing. Re-run the export.")
    out.append("Events marked 'safeguarding relevant' are hidden from exporting users without safeguarding "
               "access rights, and SystmOne's safeguarding node can hold information with no code: this "
               "list cannot see either. Run the export as a user with safeguarding access.")
    if facts.rejected_rows:
        out.append(f"{facts.rejected_rows} input rows were rejected and not checked: see rejected.csv.")
    out.extend(facts.heavy_rejections)
    if facts.ambiguous_records:
        out.append(f"{facts.ambiguous_records} records have an ambiguous address (e.g. a flat number missing "
                   "at a building of flats) and were checked on their own: resolve them by hand "
                   "(listed under 'Addresses to resolve' below, and in households.csv as dwelling_kind 'ambiguous').")
    return out + list(facts.notes)


def _fact_rows(facts: WorklistFacts, rows: pd.DataFrame, resolved: pd.DataFrame) -> list[tuple[str, str]]:
    out = [("As-of date", _uk(facts.as_of)),
           ("Export date", _uk(facts.export_date) if facts.export_date else "not recorded in the export")]
    for name, read, used, rejected in facts.input_files:
        out.append((f"Rows in {name}", f"{read} read, {used} used, {rejected} rejected"))
    out += [("Rejected rows", str(facts.rejected_rows)),
            ("Households", "" if facts.households is None else str(facts.households)),
            ("Ambiguous addresses (resolve by hand)",
             "" if facts.ambiguous_records is None else str(facts.ambiguous_records)),
            ("Input warnings", str(facts.warning_rows)),
            ("Flags", str(len(rows)))]
    if facts.previous_as_of is not None:
        counts = rows["status"].value_counts()
        out += [("Compared with the report as of", _uk(facts.previous_as_of)),
                ("New since then", str(int(counts.get("new", 0)))),
                ("Still open", str(int(counts.get("open", 0)))),
                ("Resolved since then", str(len(resolved)))]
        if len(resolved):
            for why, n in resolved["resolution"].value_counts().sort_index().items():
                out.append((f"Resolved: {why}", str(int(n))))
    else:
        out.append(("Compared with last month", "no (use --previous to mark new, open and resolved flags)"))
    return out


def _counts_by_rule(rows: pd.DataFrame, facts: WorklistFacts) -> list[tuple[str, str, str, int]]:
    counts = rows.groupby("rule_id").size() if len(rows) else pd.Series(dtype=int)
    return [(rule_id, title, facts.rule_severities.get(rule_id, ""), int(counts.get(rule_id, 0)))
            for rule_id, title in facts.rule_titles.items()]


# ---------------------------------------------------------------------------------------
# CSV and XLSX

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START_RE = "^[" + re.escape("".join(_FORMULA_START)) + "]"  # the same, for Arrow


def _as_text(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (OWASP CSV injection advice)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def render_worklist_csv(rows: pd.DataFrame) -> bytes:
    frame = rows[WORKLIST_COLUMNS]
    if len(frame):  # _as_text over whole columns
        texts = {col: _arrow_text(frame[col]) for col in WORKLIST_COLUMNS}
        frame = pd.DataFrame({col: pd.Series(pd.arrays.ArrowStringArray(_as_text_column(arr)))
                              for col, arr in texts.items()})
    return render_csv(frame)


_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[[ord(c) for c in _FORMULA_START]] = True


def _as_text_column(arr: pa.Array) -> pa.Array:
    """``_as_text`` of each value (``pc.if_else(pc.match_substring_regex(arr,
    _FORMULA_START_RE), "'" + arr, arr)``): the values' first bytes are looked at (each
    formula start is one ASCII byte, never part of another UTF-8 character), and only a
    column with such a value is rewritten, only those values prefixed."""
    offsets, data = text_offsets_and_bytes(arr)
    starts = offsets[:-1][offsets[1:] > offsets[:-1]]  # the non-empty values' first bytes
    if arr.null_count or not len(starts) or not _FORMULA_BYTES[data[starts]].any():
        return arr if not arr.null_count else pc.if_else(pc.match_substring_regex(arr, _FORMULA_START_RE),
                                                         _cat("'", arr), arr)
    hit = pc.fill_null(pc.match_substring_regex(arr, _FORMULA_START_RE), False)
    return pc.replace_with_mask(arr, hit, _cat("'", pc.filter(arr, hit)))


def _fixed_zip(raw: bytes, when: date,
               rows_for: dict[str, bytes | Iterable[bytes | memoryview]] | None = None) -> bytes:
    """Rewrite a zip with every entry stamped ``when`` (not the clock) and fixed
    attributes, in the same order, so equal content gives equal bytes. ``rows_for`` maps a
    worksheet entry to ``<row>`` elements to put at the end of its ``sheetData``: bytes, or
    an iterable of pieces (made here, while a second thread compresses the pieces before:
    zlib's stream does not depend on how its input is split, so the bytes are the same)."""
    stamp = (max(when.year, 1980), when.month, when.day, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            fixed.create_system = 3
            content = src.read(info.filename)
            if rows_for and info.filename in rows_for:
                head, end, tail = content.partition(b"</sheetData>")
                if not end or end in tail:
                    raise ValueError(f"{info.filename}: expected one </sheetData>")
                rows = rows_for[info.filename]
                if isinstance(rows, bytes):
                    content = b"".join((head, rows, end, tail))
                else:  # as writestr does: open for writing, then write (in pieces here)
                    with dst.open(fixed, "w") as entry, \
                            ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-zlib") as zlib_thread:
                        written = [zlib_thread.submit(entry.write, head)]
                        written += [zlib_thread.submit(entry.write, piece) for piece in rows]
                        written.append(zlib_thread.submit(entry.write, end + tail))
                        for w in written:
                            w.result()
                    continue
            dst.writestr(fixed, content)
    return out.getvalue()


# The Worklist sheet's rows are written as XML directly, vectorised over whole columns:
# openpyxl spent ~3 s per 25,000 flags building and serialising a cell object per value.
# The XML is exactly what openpyxl's write-only mode (with lxml) writes for the same
# cells, so the workbook's bytes are unchanged (tests/test_report_speed_helpers.py compares
# the two on random text). openpyxl still writes the header row, the other sheets, the
# styles and the package; a value openpyxl would treat specially (a control character it
# rejects, text over 32,767 characters, an Excel error literal, a date that is not plain
# ISO) sends the whole sheet through openpyxl as before.
_T = pa.large_string()
_XLSX_UNSAFE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"
# The same characters for Python's re: XML cannot hold them, so openpyxl refuses the cell
# (IllegalCharacterError) and the whole workbook with it. Text from an export or from last
# month's flags.csv (saved from a spreadsheet) may hold one; each is shown as U+FFFD in the
# xlsx (worklist.csv and the HTML keep the text as it came).
_XLSX_UNSAFE_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Python's str.isspace() characters: openpyxl marks text that .strip() would change
# xml:space="preserve".
_PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                  "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_XLSX_DATED = ("date_of_birth", "first_flagged")
_XLSX_WRAPPED = ("reason", "household_members", "suggested_codes")
_EXCEL_EPOCH_DAYS = 25569  # 1899-12-30 to 1970-01-01


def _s(value: str) -> pa.Scalar:
    return pa.scalar(value, _T)


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of text arrays and constants."""
    return pc.binary_join_element_wise(*[_s(p) if isinstance(p, str) else p for p in parts], _s(""))


def _arrow_text(values: pd.Series) -> pa.Array:
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(_T)


def _replace_each(arr: pa.Array, pairs: tuple[tuple[str, str], ...]) -> pa.Array:
    """``str.replace`` of each (one ASCII character, text) pair in turn, over a column;
    a column that holds none of a character is not rewritten for it (a byte scan is far
    quicker than replace_substring finding nothing)."""
    for raw, replacement in pairs:
        if _holds_any_byte(arr, raw.encode("ascii")):
            arr = pc.replace_substring(arr, raw, replacement)
    return arr


def _xml_text(arr: pa.Array) -> pa.Array:
    """Text as openpyxl's lxml writer puts it inside an element: markup characters
    escaped, and (the stream being ASCII) every non-ASCII character as ``&#NNN;``."""
    arr = _replace_each(arr, (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")))
    wide = pc.invert(pc.string_is_ascii(arr))
    if pc.any(wide).as_py():  # usually a few names and places: convert just those
        some = pc.filter(arr, wide).to_pylist()
        refs = pa.array([v.encode("ascii", "xmlcharrefreplace").decode("ascii") for v in some], _T)
        arr = pc.replace_with_mask(arr, wide, refs)
    return arr


def _plain_iso_dates(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each value: whether it is a plain ISO date (``YYYY-MM-DD``, a real day, year
    1 or later: what ``date.fromisoformat`` reads as written), and its year and days since
    1970-01-01 (meaningless where it is not)."""
    shaped = pc.fill_null(pc.match_substring_regex(arr, _ISO_DATE), False).to_numpy(zero_copy_only=False)
    filled = pc.if_else(pa.array(shaped), arr, _s("2000-01-01"))
    y, m, d = (pc.cast(pc.utf8_slice_codeunits(filled, a, b), pa.int64()).to_numpy()
               for a, b in ((0, 4), (5, 7), (8, 10)))
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 1, 12) - 1] + ((m == 2) & leap)
    valid = shaped & (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= month_days)
    # Days from the civil date (H. Hinnant's algorithm, proleptic Gregorian like Python's date).
    yy = y - (m <= 2)
    era = np.floor_divide(yy, 400)
    yoe = yy - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return valid, y, days


def _excel_serials(arr: pa.Array) -> pa.Array | None:
    """ISO dates as openpyxl writes them (days since 1899-12-30, with Excel's 1900 leap
    year); None unless every value is a plain ISO date."""
    valid, _, days = _plain_iso_dates(arr)
    if not valid.all():
        return None
    days = days + _EXCEL_EPOCH_DAYS
    days = np.where((days > 0) & (days <= 60), days - 1, days)
    return pc.cast(pa.array(days), _T)


def _holds_xlsx_unsafe(arr: pa.Array) -> bool:
    """``pc.any(pc.match_substring_regex(arr, _XLSX_UNSAFE))`` (no missing values), by a
    look at the bytes first: in UTF-8 a byte below 0x20 is always that control character,
    and U+FFFE and U+FFFF begin with the byte 0xEF; the regex runs only where one is there
    (~0.025 s of regex for the 18 MB of 25,000 flags' columns, against ~0.005 s)."""
    offsets, data = text_offsets_and_bytes(arr)
    text = data[offsets[0]:offsets[-1]]
    low = text[text < 0x20]
    if len(low) and not np.isin(low, (0x09, 0x0A, 0x0D)).all():
        return True
    if _holds_any_byte(arr, b"\xef"):
        return bool(pc.any(pc.match_substring_regex(arr, _XLSX_UNSAFE)).as_py())
    return False


def _longer_than(arr: pa.Array, limit: int) -> bool:
    """``pc.any(pc.greater(pc.utf8_length(arr), limit))`` (no missing values): a value is
    no longer in characters than in bytes, so characters are counted only where some
    value has more than ``limit`` bytes."""
    offsets, _ = text_offsets_and_bytes(arr)
    if not len(arr) or int(np.diff(offsets).max()) <= limit:
        return False
    return bool(pc.any(pc.greater(pc.utf8_length(arr), limit)).as_py())


def _xlsx_columns(rows: pd.DataFrame) -> dict[str, pa.Array] | None:
    """The worklist's values as Arrow text, or None where openpyxl must write the sheet."""
    from openpyxl.cell.cell import ERROR_CODES

    cols = {col: _arrow_text(rows[col]) for col in WORKLIST_COLUMNS}
    for col, arr in cols.items():
        if arr.null_count or _holds_xlsx_unsafe(arr) or _longer_than(arr, 32767):
            return None
        if col not in _XLSX_WRAPPED and col not in _XLSX_DATED \
                and pc.any(pc.is_in(arr, pa.array(list(ERROR_CODES), _T))).as_py():
            return None  # written as an Excel error value by openpyxl
        if col in _XLSX_DATED:
            dated = pc.filter(arr, pc.not_equal(arr, ""))
            if len(dated) and _excel_serials(dated) is None:
                return None
    return cols


def _xlsx_rows_xml(cols: dict[str, pa.Array], n: int, date_style: int | None, wrap_style: int | None,
                   first: int = 0) -> bytes:
    """``<row>`` elements of the Worklist sheet for the values in ``cols`` (``n`` rows,
    the first of them worklist row ``first``, sheet row ``first + 2``), as openpyxl writes them."""
    return _buffer_bytes(_xlsx_row_texts(cols, n, date_style, wrap_style, first))


def _xlsx_row_texts(cols: dict[str, pa.Array], n: int, date_style: int | None, wrap_style: int | None,
                    first: int = 0) -> pa.Array:
    """``_xlsx_rows_xml``'s rows, one ``<row>`` element per value."""
    from openpyxl.utils import get_column_letter

    row_numbers = pc.cast(pa.array(np.arange(first + 2, first + n + 2, dtype=np.int64)), _T)
    cells = []
    for c, col in enumerate(WORKLIST_COLUMNS, start=1):
        arr = cols[col]
        empty = pc.equal(arr, "")
        style = f' s="{wrap_style}"' if col in _XLSX_WRAPPED else ""
        padded = pc.not_equal(pc.utf8_trim(arr, characters=_PY_WHITESPACE), arr)  # str.strip() changes it
        preserve = pc.if_else(padded, _s(' xml:space="preserve"'), _s(""))
        text = pc.if_else(empty, _s(f'"{style} t="inlineStr"></c>'),
                          _cat(f'"{style} t="inlineStr"><is><t', preserve, ">", _xml_text(arr), "</t></is></c>"))
        if col in _XLSX_DATED and not pc.all(empty).as_py():
            serials = pc.if_else(empty, _s("1900-01-01"), arr)  # placeholders, replaced below
            dated = _cat(f'" s="{date_style}" t="n"><v>', _excel_serials(serials), "</v></c>")
            text = pc.if_else(empty, text, dated)
        cells += [f'<c r="{get_column_letter(c)}', row_numbers, text]  # concatenated once, with the row
    return _cat('<row r="', row_numbers, '">', *cells, "</row>")


# Rows per piece of the Worklist sheet's XML: each piece is compressed (on a second thread)
# while the next is made. 2,000 flags make about 2.5 MB of XML.
_XLSX_PIECE_ROWS = 2000


def _xlsx_rows_pieces(cols: dict[str, pa.Array], n: int, date_style: int | None,
                      wrap_style: int | None) -> Iterator[memoryview]:
    """``_xlsx_rows_xml`` of all ``n`` rows, in pieces of ``_XLSX_PIECE_ROWS`` rows. The XML
    is made in batches of 1, 3, 9 ... pieces (each made while the pieces before it are
    compressed): a batch costs some thirty Arrow calls whatever its size, so making each
    piece on its own cost ~0.03 s more at 25,000 flags than making them all at once.
    Each piece is a view of the batch's Arrow buffer, not a copy (zipfile's entry writer
    takes any buffer: 32 MB of copies cost ~0.02 s at 25,000 flags)."""
    first, batch = 0, _XLSX_PIECE_ROWS
    while first < n:
        size = min(batch, n - first)
        xml = _xlsx_row_texts({col: arr.slice(first, size) for col, arr in cols.items()}, size,
                              date_style, wrap_style, first)
        offsets, data = text_offsets_and_bytes(xml)
        for k in range(0, size, _XLSX_PIECE_ROWS):
            yield memoryview(data[offsets[k]:offsets[min(k + _XLSX_PIECE_ROWS, size)]])
        first += size
        batch *= 3


def _buffer_bytes(arr: pa.Array) -> bytes:
    """The values of a string array back to back."""
    return _buffer_view(arr).tobytes()


def _buffer_view(arr: pa.Array) -> memoryview:
    """``_buffer_bytes`` as a view of the array's own buffer (no copy; it keeps the buffer alive)."""
    offsets, data = text_offsets_and_bytes(arr)
    return memoryview(data[offsets[0]:offsets[-1]])


_XLSX_IMPORT = threading.Lock()


def _import_xlsx_writer() -> None:
    """Import what ``render_worklist_xlsx`` uses (about 0.12 s), so a caller with a thread
    to spare can do it before the worklist is due. One thread at a time: openpyxl's modules
    import one another in a cycle, and two threads importing it at once can each be handed
    the other's half-initialised module ("cannot import name 'Cell' from partially
    initialized module 'openpyxl.cell'", seen in a loaded 1M run). Once imported, a call
    costs a lock and a dictionary lookup."""
    with _XLSX_IMPORT:
        import openpyxl  # noqa: F401
        import openpyxl.cell  # noqa: F401
        import openpyxl.cell.cell  # noqa: F401
        import openpyxl.styles  # noqa: F401
        import openpyxl.utils  # noqa: F401
        import openpyxl.writer.excel  # noqa: F401


def render_worklist_xlsx(rows: pd.DataFrame, facts: WorklistFacts, resolved: pd.DataFrame, *,
                         direct_xml: bool = True) -> bytes:
    # openpyxl: the long-maintained pure-Python reader/writer of the xlsx format (no Excel
    # or network needed). Imported here so the rest of the tool does not pay for it.
    # Write-only (streaming) mode: cell by cell, 24,000 flags took 12 s.
    _import_xlsx_writer()  # whole, once, whichever thread comes first (see there)
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook(write_only=True)
    stamp = datetime(facts.as_of.year, facts.as_of.month, facts.as_of.day)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "family_link"
    wb.properties.title = f"Safeguarding coding worklist, as of {_uk(facts.as_of)}"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    def cell(ws, value: object, *, font: Font | None = None, alignment: Alignment | None = None,
             number_format: str | None = None) -> object:
        if isinstance(value, str) and _XLSX_UNSAFE_CHAR.search(value):
            value = _XLSX_UNSAFE_CHAR.sub("\ufffd", value)  # see _XLSX_UNSAFE_CHAR
        if isinstance(value, str) and not (font or alignment) and not value.startswith(("=", "+", "-", "@")):
            return value  # a plain value is written as text; only formula-like text needs a cell
        c = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            c.data_type = "s"  # never a formula, whatever the text starts with
        if font:
            c.font = font
        if alignment:
            c.alignment = alignment
        if number_format:
            c.number_format = number_format
        return c

    ws = wb.create_sheet("Worklist")
    widths = {"reason": 80, "household_members": 50, "suggested_codes": 40, "title": 40, "name": 24}
    for c, col in enumerate(WORKLIST_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(c)].width = widths.get(col, 14)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(WORKLIST_COLUMNS))}{max(len(rows) + 1, 1)}"
    ws.append([cell(ws, _HEADINGS[col], font=bold) for col in WORKLIST_COLUMNS])
    dated = set(_XLSX_DATED)
    wrapped = set(_XLSX_WRAPPED)
    cols = _xlsx_columns(rows) if direct_xml and len(rows) else None
    sheet_rows = None
    if cols is not None:
        # Register the two cell styles in the order openpyxl would first meet them (row by
        # row, left to right: the dates come before the wrapped columns), so styles.xml and
        # the style numbers are the same.
        has_date = pc.or_(pc.not_equal(cols["first_flagged"], ""), pc.not_equal(cols["date_of_birth"], ""))
        first_date = int(pc.index(has_date, True).as_py())
        protos = {"date": lambda: cell(ws, date(2000, 1, 1), number_format="DD/MM/YYYY"),
                  "wrap": lambda: cell(ws, "", alignment=wrap)}
        order = ["date", "wrap"] if first_date == 0 else ["wrap", "date"] if first_date > 0 else ["wrap"]
        style = {kind: protos[kind]().style_id for kind in order}
        sheet_rows = _xlsx_rows_pieces(cols, len(rows), style.get("date"), style["wrap"])
    else:
        for row in rows[WORKLIST_COLUMNS].itertuples(index=False):
            out = []
            for col, value in zip(WORKLIST_COLUMNS, row):
                if col in dated and value:
                    out.append(cell(ws, date.fromisoformat(value), number_format="DD/MM/YYYY"))
                else:
                    out.append(cell(ws, value, alignment=wrap if col in wrapped else None))
            ws.append(out)

    summary = wb.create_sheet("Summary")
    summary.column_dimensions["A"].width = 36
    summary.column_dimensions["B"].width = 90
    for text in _warnings(facts):
        summary.append([cell(summary, "Warning"), cell(summary, text)])
    for label, value in _fact_rows(facts, rows, resolved):
        summary.append([cell(summary, label), cell(summary, value)])
    summary.append([])
    summary.append([cell(summary, head, font=bold) for head in ("Rule id", "Rule", "Severity", "Flags")])
    for rule_id, title, sev, n in _counts_by_rule(rows, facts):
        summary.append([cell(summary, v) for v in (rule_id, title, sev, n)])

    if len(resolved):
        res = wb.create_sheet("Resolved")
        cols = list(resolved.columns)
        res.append([cell(res, col, font=bold) for col in cols])
        for row in resolved.itertuples(index=False):
            res.append([cell(res, "" if value is None else str(value)) for value in row])

    buf = io.BytesIO()
    # ExcelWriter rather than Workbook.save: save() stamps "modified" with the clock. Stored,
    # not compressed: _fixed_zip compresses every entry once, as it rewrites the package.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        ExcelWriter(wb, archive).write_data()
    extra = {ws.path.lstrip("/"): sheet_rows} if sheet_rows is not None else {}
    return _fixed_zip(buf.getvalue(), facts.as_of, extra)


# ---------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Arial,sans-serif;margin:1.5rem;color:#111}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #bbb;padding:.3rem .4rem;vertical-align:top;text-align:left}
thead th{background:#eef;position:sticky;top:0}
#flags thead th{cursor:pointer}#flags thead th:after{content:' \\21C5';color:#889}
table.facts{width:auto}table.facts th{background:#f6f6fa;font-weight:600}
.sev-action{color:#a00;font-weight:600}.sev-review{color:#850}
.st-new{background:#e7f3ff;font-weight:600}.st-open{}.st-resolved{color:#060}
.warn{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem;margin:.5rem 0}
.muted{color:#555}.controls{margin:.6rem 0}.controls label{margin-right:1rem}
ul.members{margin:0;padding-left:1rem}code{font-size:.8rem}
@media print{.controls,#selftest-result{display:none}thead th{position:static}a{color:#000}
 body{margin:0;font-size:9pt}tr{page-break-inside:avoid}thead{display:table-header-group}}
"""

_JS = """
(function(){
  var table=document.getElementById('flags'); if(!table) return;
  var body=table.tBodies[0];
  function val(id){return document.getElementById(id).value;}
  function apply(){
    var rule=val('f-rule'), sev=val('f-sev'), st=val('f-status'), text=val('f-text').toLowerCase(), shown=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var ok=(!rule||r.dataset.rule===rule)&&(!sev||r.dataset.severity===sev)&&
             (!st||r.dataset.status===st)&&(!text||r.textContent.toLowerCase().indexOf(text)>=0);
      r.style.display=ok?'':'none'; if(ok) shown++;
    });
    document.getElementById('shown').textContent=shown;
    return shown;
  }
  function sortBy(i,asc){
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=a.cells[i].dataset.key||a.cells[i].textContent,
      y=b.cells[i].dataset.key||b.cells[i].textContent; return asc?x.localeCompare(y):y.localeCompare(x);});
    rows.forEach(function(r){body.appendChild(r);});
  }
  ['f-rule','f-sev','f-status','f-text'].forEach(function(id){
    var el=document.getElementById(id); el.addEventListener('input',apply); el.addEventListener('change',apply);});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){
      var asc=th.dataset.asc!=='1'; th.dataset.asc=asc?'1':'0'; sortBy(i,asc);});
  });
  apply();
  if(location.hash==='#selftest'){
    // A check a headless browser can read back: sort by date of birth both ways, filter by
    // each control, then restore. Writes counts only, never row contents.
    var out={rows:body.rows.length}, dob=2;
    function keys(){return Array.prototype.map.call(body.rows,function(r){return r.cells[dob].dataset.key;});}
    function sorted(a,asc){for(var k=1;k<a.length;k++){var c=a[k-1].localeCompare(a[k]);
      if(asc?c>0:c<0) return false;} return true;}
    sortBy(dob,true); out.sort_asc=sorted(keys(),true);
    sortBy(dob,false); out.sort_desc=sorted(keys(),false);
    function filterCount(id,value){var el=document.getElementById(id); el.value=value;
      var n=apply(), want=0; Array.prototype.forEach.call(body.rows,function(r){
        var d=id==='f-rule'?r.dataset.rule:id==='f-sev'?r.dataset.severity:r.dataset.status;
        if(d===value) want++;}); el.value=''; apply(); return n===want;}
    var first=body.rows[0];
    out.filter_rule=first?filterCount('f-rule',first.dataset.rule):true;
    out.filter_severity=filterCount('f-sev','review')&&filterCount('f-sev','action');
    out.filter_status=first?filterCount('f-status',first.dataset.status):true;
    out.shown_after_reset=apply();
    out.ok=out.sort_asc&&out.sort_desc&&out.filter_rule&&out.filter_severity&&out.filter_status&&
           out.shown_after_reset===out.rows;
    var pre=document.getElementById('selftest-result'); pre.textContent=JSON.stringify(out);
    pre.setAttribute('data-ok',out.ok?'true':'false');
  }
})();
"""


def _html_head(title: str) -> list[str]:
    return ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
            "<meta name='referrer' content='no-referrer'>",
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"]


def render_worklist_html(rows: pd.DataFrame, facts: WorklistFacts, resolved: pd.DataFrame,
                         to_resolve: pd.DataFrame | None = None) -> bytes:
    as_of = _uk(facts.as_of)
    parts = _html_head(f"family_link worklist, as of {as_of}")
    parts += [f"<h1>Safeguarding coding worklist, as of {escape(as_of)}</h1>",
              "<p class='muted'>Records whose household's codes call for a family-level safeguarding code "
              "they do not carry. This list supports, and never replaces, the safeguarding lead's judgement: "
              "check each entry against the record before coding. It identifies patients: keep it in "
              "the practice.</p>"]
    for w in _warnings(facts):
        parts.append(f"<div class='warn'>{escape(w)}</div>")
    parts.append("<h2>Summary</h2><table class='facts'><tbody>")
    for label, value in _fact_rows(facts, rows, resolved):
        parts.append(f"<tr><th scope='row'>{escape(label)}</th><td>{escape(value)}</td></tr>")
    parts.append("</tbody></table>")

    parts.append("<h2>Flags by rule and severity</h2><table class='facts'><thead><tr><th>Rule</th>"
                 "<th>Severity</th><th>Flags</th>")
    compared = facts.previous_as_of is not None
    if compared:
        parts.append("<th>New</th><th>Still open</th><th>Resolved</th>")
    parts.append("</tr></thead><tbody>")
    for rule_id, title, sev, n in _counts_by_rule(rows, facts):
        parts.append(f"<tr><td>{escape(title)} <span class='muted'>({escape(rule_id)})</span></td>"
                     f"<td class='sev-{escape(sev)}'>{escape(sev)}</td><td>{n}</td>")
        if compared:
            mine = rows[rows["rule_id"] == rule_id]["status"]
            gone = int((resolved["rule_id"] == rule_id).sum()) if len(resolved) else 0
            parts.append(f"<td>{int((mine == 'new').sum())}</td><td>{int((mine == 'open').sum())}</td>"
                         f"<td>{gone}</td>")
        parts.append("</tr>")
    sev_counts = rows["severity"].value_counts() if len(rows) else pd.Series(dtype=int)
    for sev in ("action", "review"):
        parts.append(f"<tr><td><em>All rules</em></td><td class='sev-{sev}'>{sev}</td>"
                     f"<td>{int(sev_counts.get(sev, 0))}</td>{'<td></td>' * 3 if compared else ''}</tr>")
    parts.append("</tbody></table>")

    parts.append("<h2>Worklist</h2><div class='controls'><label>Rule <select id='f-rule'>"
                 "<option value=''>all</option>")
    for rule_id, title in facts.rule_titles.items():
        parts.append(f"<option value='{escape(rule_id)}'>{escape(title)}</option>")
    parts.append("</select></label><label>Severity <select id='f-sev'><option value=''>all</option>"
                 "<option value='action'>action</option><option value='review'>review</option></select></label>"
                 "<label>Status <select id='f-status'><option value=''>all</option>")
    for st in _sorted_distinct(rows["status"]) if len(rows) else []:
        parts.append(f"<option value='{escape(st)}'>{escape(st)}</option>")
    parts.append("</select></label><label>Search <input id='f-text' type='search'></label>"
                 "<span class='muted'>Showing <span id='shown'></span> of " + str(len(rows)) + "</span></div>")
    parts.append("<table id='flags'><thead><tr><th>Patient</th><th>NHS number</th><th>Date of birth</th>"
                 "<th>Rule</th><th>Severity</th><th>Status</th><th>Why</th><th>Codes to consider</th>"
                 "<th>Household</th></tr></thead><tbody>")
    if len(rows):
        parts.append(_flag_rows_html(rows, view=True))  # (copied once, by the join below)
    parts.append("</tbody></table>")

    if to_resolve is not None and len(to_resolve):
        parts.append(f"<h2>Addresses to resolve ({len(to_resolve)})</h2><p class='muted'>These records could not "
                     "be placed in a household (for example, a flat number missing at a building of flats), so "
                     "each was checked on its own. Correct the address in the clinical system; records whose own "
                     "codes trigger a rule come first, since the children they live with may need a code.</p>"
                     "<table id='resolve'><thead><tr><th>Patient</th><th>Date of birth</th><th>Address as "
                     "recorded</th><th>Why it was not linked</th><th>Codes that trigger a rule</th></tr></thead>"
                     "<tbody>")
        parts.append(_resolve_rows_html(to_resolve))
        parts.append("</tbody></table>")

    if compared:
        parts.append(f"<h2>Resolved since {escape(_uk(facts.previous_as_of))}</h2>")
        if len(resolved):
            parts.append("<table id='resolved'><thead><tr><th>Patient</th><th>Rule</th><th>First flagged</th>"
                         "<th>Why resolved</th></tr></thead><tbody>")
            for r in resolved.itertuples(index=False):
                who = f"{escape(str(getattr(r, 'name', '') or ''))} <span class='muted'>patient {escape(str(r.patient_id))}</span>"
                parts.append(f"<tr><td>{who}</td><td>{escape(str(r.title or r.rule_id))}</td>"
                             f"<td>{escape(_iso_to_uk(str(r.first_flagged)))}</td>"
                             f"<td>{escape(str(r.resolution))}</td></tr>")
            parts.append("</tbody></table>")
        else:
            parts.append("<p>None.</p>")
    parts.append("<pre id='selftest-result' class='muted'></pre>")
    parts.append(f"<script>{_JS}</script></body></html>\n")
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)


def _sorted_distinct(values: pd.Series) -> list:
    """``sorted(set(values))``, the distinct values found by Arrow where the column is text
    without missing values (a Python set of 25,000 values cost ~0.015 s)."""
    text = _text_column(values)
    return sorted(set(values)) if text is None else sorted(pc.unique(text).to_pylist())


def _text_column(values: pd.Series) -> pa.Array | None:
    """The column as Arrow text (large_string) where it is text without missing values, else None."""
    if len(values) == 0 or not (isinstance(values.dtype, pd.StringDtype) or values.dtype == object):
        return None
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    return arr.cast(_T)


def _resolve_rows_html(to_resolve: pd.DataFrame) -> bytes | str:
    """The addresses-to-resolve table's rows (a row-by-row f-string with ``html.escape``
    per value), over whole columns where every column is text without missing values."""
    names = ("name", "patient_id", "date_of_birth", "address", "evidence", "triggers")
    cols = {c: _text_column(to_resolve[c]) for c in names}
    if any(a is None for a in cols.values()):
        return "".join(f"<tr><td>{escape(r.name)}<br><span class='muted'>patient {escape(r.patient_id)}</span></td>"
                       f"<td>{escape(r.date_of_birth)}</td><td>{escape(r.address)}</td>"
                       f"<td>{escape(r.evidence)}</td><td>{escape(r.triggers)}</td></tr>"
                       for r in to_resolve.itertuples(index=False))
    e = {c: _html_escape(a) for c, a in cols.items()}
    return _buffer_bytes(_cat("<tr><td>", e["name"], "<br><span class='muted'>patient ", e["patient_id"],
                              "</span></td><td>", e["date_of_birth"], "</td><td>", e["address"],
                              "</td><td>", e["evidence"], "</td><td>", e["triggers"], "</td></tr>"))


def _lower(arr: pa.Array) -> pa.Array:
    """``str.lower`` of each value: Arrow's ASCII lowering, Python's for the values that
    are not ASCII (whose case rules Arrow's utf8_lower does not all follow)."""
    lowered = pc.ascii_lower(arr)
    wide = pc.invert(pc.string_is_ascii(arr))
    if pc.any(wide).as_py():
        some = pa.array([v.lower() for v in pc.filter(arr, wide).to_pylist()], _T)
        lowered = pc.replace_with_mask(lowered, wide, some)
    return lowered


def _html_escape(arr: pa.Array) -> pa.Array:
    """``html.escape`` (quotes too) over a whole column."""
    return _replace_each(arr, (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")))


def _map_distinct(arr: pa.Array, func) -> pa.Array:
    """``func`` (str -> str) of every value, called once per distinct value."""
    distinct = pc.unique(arr)
    mapped = pa.array([func(v) for v in distinct.to_pylist()], _T)
    return pc.take(mapped, pc.index_in(arr, distinct))


def _uk_dates_html(arr: pa.Array) -> pa.Array:
    """``escape(_iso_to_uk(value))`` over a column: plain ISO dates from year 1000 by
    slicing (what strftime gives for them), anything else through ``_iso_to_uk`` itself."""
    valid, year, _ = _plain_iso_dates(arr)
    plain = valid & (year >= 1000)
    uk = _cat(pc.utf8_slice_codeunits(arr, 8, 10), "/", pc.utf8_slice_codeunits(arr, 5, 7), "/",
              pc.utf8_slice_codeunits(arr, 0, 4))
    if plain.all():
        return uk
    return pc.if_else(pa.array(plain), uk, _map_distinct(arr, lambda v: escape(_iso_to_uk(v))))


def _members_html(members: pd.Series) -> pa.Array:
    """Each row's household members as ``<li>`` items (escaped)."""
    if isinstance(members.dtype, pd.ArrowDtype):  # as worklist_rows makes it: no copy
        lists = pa.array(members)
        lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
        lists = lists.cast(pa.large_list(_T))
    else:
        lists = pa.array(members.tolist(), pa.large_list(_T))
    offsets = lists.offsets.to_numpy()  # no null lists here
    items = lists.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    items = _cat("<li>", _html_escape(items), "</li>")
    return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets - offsets[0]), items), _s(""))


def _codes_html(codes: str) -> str:
    return "".join(f"<li>{escape(c.strip())}</li>" for c in codes.split(";") if c.strip())


def _flag_rows_html(rows: pd.DataFrame, view: bool = False) -> bytes | memoryview:
    """The worklist table's rows, built over whole columns (the same text a row-by-row
    f-string with ``html.escape`` per value gave). ``view``: a view of the Arrow buffer
    rather than a copy (29 MB at 25,000 flags)."""
    col = {c: _arrow_text(rows[c]) for c in WORKLIST_COLUMNS}
    # The columns shown as they are (household_members is shown as a list, suggested_codes
    # per code: escaping them whole would be wasted, household_members being the longest).
    e = {c: _html_escape(a) for c, a in col.items() if c not in ("suggested_codes", "household_members")}
    first = col["first_flagged"]
    since = pc.if_else(pc.equal(first, ""), _s(""),
                       _cat("<br><span class='muted'>since ", _uk_dates_html(first), "</span>"))
    name_key = _html_escape(_lower(col["name"]))
    sev_key = _map_distinct(col["severity"], lambda v: str(_SEVERITY_ORDER.get(v, 9)))
    status_class = _map_distinct(col["status"], lambda v: escape(v.replace(" ", "-")))
    html = _cat(
        "<tr data-rule='", e["rule_id"], "' data-severity='", e["severity"], "' data-status='", e["status"], "'>",
        "<td data-key='", name_key, "'>", e["name"], "<br><span class='muted'>patient ", e["patient_id"],
        "</span></td><td>", e["nhs_number"], "</td>",
        "<td data-key='", e["date_of_birth"], "'>", _uk_dates_html(col["date_of_birth"]), "</td>",
        "<td data-key='", e["rule_id"], "'>", e["title"], "<br><span class='muted'>SCR W6 Rec ",
        e["recommendations"], "</span></td>",
        "<td class='sev-", e["severity"], "' data-key='", sev_key, "'>", e["severity"], "</td>",
        "<td class='st-", status_class, "' data-key='", e["status"], " ", e["first_flagged"], "'>",
        e["status"], since, "</td>",
        "<td>", e["reason"], "</td><td><ul class='members'>", _map_distinct(col["suggested_codes"], _codes_html),
        "</ul></td><td><span class='muted'>", e["household_id"], "</span><ul class='members'>",
        _members_html(rows["members"]), "</ul></td></tr>")
    return _buffer_view(html) if view else _buffer_bytes(html)


def unplaced_patients(households: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``patients`` whose households row is ambiguous (unplaced), in patients'
    order: ``patients[isin(patients["patient_id"], ambiguous ids)]``, taken by position
    where households holds the patients row for row (``_same_patients``), without a scan
    of every patient id (~0.012 s at 1M). By position assumes each patient id once, as
    the reader makes sure (it rejects a repeated id); with a repeated id the two ways can
    differ. For check's ``triggers`` (see build_worklist)."""
    ambiguous = households["ambiguous"].astype(bool).to_numpy()
    if _same_patients(patients, households):
        return patients.iloc[np.flatnonzero(ambiguous)]
    return patients[isin(patients["patient_id"], households.loc[ambiguous, "patient_id"]).to_numpy()]


def addresses_to_resolve(households: pd.DataFrame, patients: pd.DataFrame,
                         triggers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Records whose household could not be settled (e.g. a flat number missing at a
    building of flats): each was checked on its own, so a rule their household calls for
    may be missed. Those whose own codes trigger a rule come first."""
    at = np.flatnonzero(households["ambiguous"].astype(bool).to_numpy())
    amb = households[["patient_id", "link_evidence", "relationship_notes"]].take(at)
    if amb.empty:
        return pd.DataFrame(columns=["patient_id", "name", "date_of_birth", "address", "evidence", "triggers"])
    lines = [c for c in ("address_line_1", "address_line_2", "address_line_3", "address_line_4",
                         "address_line_5", "postcode") if c in patients.columns]
    # Only the columns used are taken (of 1,000,000 rows, a few thousand kept).
    used = [c for c in dict.fromkeys(["patient_id", "forenames", "surname", "date_of_birth", *lines])
            if c in patients.columns]
    if not _same_patients(patients, households):
        at = np.flatnonzero(isin(patients["patient_id"], amb["patient_id"]).to_numpy())
    people = patients[used].take(at)  # the ambiguous households rows' patients (see _same_patients)
    if lines:  # the non-empty lines, joined with ", "
        parts = [_arrow_text(people[c].fillna("").astype(str)) for c in lines]
        parts = [pc.if_else(pc.equal(p, ""), pa.scalar(None, _T), p) for p in parts]
        address = pd.Series(pd.arrays.ArrowStringArray(
            pc.fill_null(join_skipping_nulls(*parts, separator=_s(", ")), "")), index=people.index)
    else:
        address = pd.Series("", index=people.index)
    info = pd.DataFrame({
        "patient_id": people["patient_id"],
        "name": full_names(people),
        "date_of_birth": people["date_of_birth"].dt.strftime("%d/%m/%Y").fillna(""),
        "address": address,
    })
    rows = amb.merge(info, on="patient_id", how="left")
    rows["evidence"] = (rows["link_evidence"].fillna("") + "; " + rows["relationship_notes"].fillna("")).str.strip("; ")
    rows["triggers"] = ""
    if triggers is not None and len(triggers):
        t = triggers[isin(triggers["patient_id"], rows["patient_id"])].sort_values(["patient_id", "rule_id"])
        text = (t["rule_id"] + ": '" + t["term"] + "' (" + t["code"] + ") dated " + t["date"].dt.strftime("%d/%m/%Y"))
        joined = text.groupby(t["patient_id"]).agg("; ".join)
        found = rows["patient_id"].map(joined).astype(object)
        rows["triggers"] = found.where(found.notna(), "")
    rows = rows.assign(_first=rows["triggers"] == "").sort_values(["_first", "patient_id"], kind="mergesort")
    return rows[["patient_id", "name", "date_of_birth", "address", "evidence", "triggers"]].reset_index(drop=True)


def build_worklist(flags: pd.DataFrame, resolved: pd.DataFrame, patients: pd.DataFrame,
                   households: pd.DataFrame, facts: WorklistFacts,
                   triggers: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
                   write: Callable[[str, bytes], None] | None = None) -> dict[str, bytes]:
    """The three worklist files, from the (marked) flags. ``triggers`` (see
    ``addresses_to_resolve``) may be given as a function computing them: it is then called
    once the xlsx is under way. With ``write``, each file is handed to ``write(name,
    content)`` as soon as it is rendered (the HTML and CSV while the xlsx is still being
    compressed) and the dict returned is empty."""
    # The xlsx is built on a second thread while the rest is rendered here: most of its
    # time is zlib compressing the sheet (about 0.3 s at 25,000 flags), which releases the GIL.
    # That thread first imports openpyxl if no other thread has yet (about 0.1 s), while the
    # rows are made here.
    files: dict[str, bytes] = {}
    keep = write if write is not None else files.__setitem__
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-xlsx") as aside:
        aside.submit(_import_xlsx_writer)
        rows = worklist_rows(flags, patients, households, list(facts.rule_titles))
        if len(resolved):  # the lead's copy names the patient where they are still registered
            still_here = patients[isin(patients["patient_id"], resolved["patient_id"])]
            names = full_names(still_here)
            names.index = still_here["patient_id"]
            resolved = resolved.assign(name=resolved["patient_id"].map(names).astype(object).fillna(""))
        xlsx = aside.submit(render_worklist_xlsx, rows, facts, resolved)
        to_resolve = addresses_to_resolve(households, patients, triggers() if callable(triggers) else triggers)
        keep("worklist.html", render_worklist_html(rows, facts, resolved, to_resolve))
        keep("worklist.csv", render_worklist_csv(rows))
        keep("worklist.xlsx", xlsx.result())
    return files
