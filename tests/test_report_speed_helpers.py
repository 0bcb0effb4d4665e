"""The fast writers in report.py and worklist.py against the slow, obvious ones they
replace: every byte the same."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
from datetime import date
from html import escape

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import report, worklist
from family_link.previous import (RESOLVED_ALERT_CODED, RESOLVED_OUT_OF_SCOPE, RESOLVED_PATIENT_GONE,
                                  PreviousRun, resolved_flags)
from family_link.report import render_csv, write_csv
from family_link.worklist import WORKLIST_COLUMNS, WorklistFacts, render_worklist_xlsx

# Text the CSV writer must quote or leave alone: delimiters, quotes, line ends, spaces,
# non-ASCII, and the characters Python's csv module might treat specially.
_TRICKY = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t\'=+-@;é\u2028\x85\x00\x1f\u00a0'))
                  | st.characters(exclude_categories=("Cs",)), max_size=12)


def pandas_csv(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    if columns is not None:
        frame = frame.reindex(columns=columns)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 8))
    kinds = draw(st.lists(st.sampled_from(["str", "str_na", "object", "object_na", "int", "bool", "uint8"]),
                          min_size=1, max_size=5))
    data = {}
    for i, kind in enumerate(kinds):
        name = f"c{i}"
        if kind.startswith("str") or kind.startswith("object"):
            values = draw(st.lists(_TRICKY, min_size=n, max_size=n))
            if kind.endswith("_na"):
                holes = draw(st.lists(st.booleans(), min_size=n, max_size=n))
                values = [None if h else v for v, h in zip(values, holes)]
            data[name] = pd.Series(values, dtype="str" if kind.startswith("str") else object)
        elif kind == "int":
            data[name] = pd.Series(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)),
                                   dtype="int64")
        elif kind == "uint8":
            data[name] = pd.Series(draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)), dtype="uint8")
        else:
            data[name] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return pd.DataFrame(data)


@settings(max_examples=200, deadline=None)
@given(frames())
def test_csv_writer_matches_pandas_to_csv(frame):
    assert render_csv(frame) == pandas_csv(frame)


@settings(max_examples=100, deadline=None)
@given(frames(), st.integers(1, 3))
def test_csv_writer_matches_pandas_in_slices(frame, rows):
    old = report._CSV_SLICE_ROWS
    report._CSV_SLICE_ROWS = rows  # many slices, some empty at the end
    try:
        assert render_csv(frame) == pandas_csv(frame)
    finally:
        report._CSV_SLICE_ROWS = old


def test_csv_writer_reorders_adds_missing_columns_and_falls_back_for_other_types():
    frame = pd.DataFrame({"b": pd.Series(["x", "y,z"], dtype="str"), "a": [1.5, np.nan],
                          "d": pd.to_datetime(["2026-01-02", None]), "e": [1, "mixed"]})
    for columns in (None, ["a", "b"], ["b", "missing", "e"], ["b"], ["d", "b"]):
        assert render_csv(frame, columns) == pandas_csv(frame, columns)


def test_csv_writer_one_column_of_empty_text_is_quoted_like_pandas():
    frame = pd.DataFrame({"a": pd.Series(["", "x", None], dtype="str")})
    assert render_csv(frame) == pandas_csv(frame) == b'a\n""\nx\n""\n'


def test_csv_writer_chunked_arrow_columns():
    parts = [pd.DataFrame({"a": pd.Series([f"v{i}", 'q"'], dtype="str"), "b": [i, -i]}) for i in range(3)]
    frame = pd.concat(parts, ignore_index=True)
    out = io.BytesIO()
    write_csv(out, frame)
    assert out.getvalue() == pandas_csv(frame)


def test_open_report_removes_everything_when_the_caller_fails(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RuntimeError):
        with report.open_report(out) as folder:
            folder.write_bytes("run.json", b"{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_open_report_writes_every_file_and_replaces_the_previous_report(tmp_path):
    out = tmp_path / "r"
    report.write_report_files(out, {"run.json": b"1", "a.csv": b"x"})
    frame = pd.DataFrame({"a": pd.Series(["1", "2"], dtype="str"), "b": [True, False]})
    with report.open_report(out, force=True) as folder:
        folder.write_bytes("run.json", b"2")
        folder.write_csv("f.csv", frame)
    assert sorted(p.name for p in out.iterdir()) == ["f.csv", "run.json"]
    assert (out / "f.csv").read_bytes() == pandas_csv(frame)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


# --- worklist.xlsx: the Worklist sheet's rows written directly, against openpyxl ------------

_CELL_TEXT = st.text(alphabet=st.sampled_from(list("ab <>&\"'\n\r\t=+-@#/é\u2028\u00a0\u3000\x85\x7f"))
                     | st.characters(exclude_categories=("Cs", "Cc")), max_size=10)
_DATE_TEXT = st.one_of(
    st.just(""),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.dates(min_value=date(1899, 12, 1), max_value=date(1900, 3, 31)).map(date.isoformat),  # Excel's 1900
)
# Values openpyxl handles its own way (the whole sheet then goes through openpyxl).
_SPECIAL = st.sampled_from(["#N/A", "#REF!", "x" * 32768, "a\x00b", "\ufffe", "\x1f"])
_BAD_DATE = st.sampled_from(["2026-02-30", "20260101", "2026-1-01", "0000-01-01", " 2026-01-01", "x"])


@st.composite
def worklist_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 5))
    special = draw(st.integers(0, 4)) == 0  # most examples take the direct path
    text = _CELL_TEXT | _SPECIAL if special else _CELL_TEXT
    dates = _DATE_TEXT | _BAD_DATE if special else _DATE_TEXT
    data = {}
    for col in WORKLIST_COLUMNS:
        values = dates if col in ("date_of_birth", "first_flagged") else text
        data[col] = draw(st.lists(values, min_size=n, max_size=n))
    frame = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in data.items()})
    frame["members"] = [[] for _ in range(n)]
    return frame


def _xlsx(rows: pd.DataFrame, direct_xml: bool) -> bytes | type:
    facts = WorklistFacts(as_of=date(2026, 11, 1), rule_titles={"r": "Rule"}, rule_severities={"r": "action"})
    try:
        return render_worklist_xlsx(rows, facts, pd.DataFrame(), direct_xml=direct_xml)
    except Exception as exc:  # the same failure either way (e.g. a character openpyxl refuses)
        gc.collect()  # openpyxl's unfinished writers are collected here, inside the test
        return type(exc)


# openpyxl, refusing a value half-way through a sheet, leaves its writer's generators to be
# collected unfinished; that noise is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=100, deadline=None)
@given(worklist_frames())
def test_worklist_xlsx_rows_written_directly_match_openpyxl(rows):
    assert _xlsx(rows, True) == _xlsx(rows, False)


def test_worklist_xlsx_direct_rows_are_used_for_plain_data_and_open_in_openpyxl():
    from openpyxl import load_workbook

    rows = pd.DataFrame({c: pd.Series(["x", ""], dtype="str") for c in WORKLIST_COLUMNS})
    rows["first_flagged"] = pd.Series(["", ""], dtype="str")  # the wrap style is met before any date
    rows["date_of_birth"] = pd.Series(["", "1900-02-28"], dtype="str")
    rows["name"] = pd.Series(["Zoë <b>&", " padded "], dtype="str")
    rows["members"] = [[], []]
    assert worklist._xlsx_columns(rows) is not None  # the rows written directly, not by openpyxl
    fast = _xlsx(rows, True)
    assert fast == _xlsx(rows, False)
    sheet = load_workbook(io.BytesIO(fast))["Worklist"]
    assert sheet["G2"].value == "Zoë <b>&" and sheet["G3"].value == " padded "
    assert sheet["H3"].value.date() == date(1900, 2, 28)


# --- worklist.html and worklist.csv: whole-column rendering against the row-by-row original ---

_HTML_DATE = st.one_of(_DATE_TEXT, _BAD_DATE, st.dates(max_value=date(999, 12, 31)).map(date.isoformat))


def _reference_rows_html(rows: pd.DataFrame) -> str:
    """The worklist table's rows as the original row-by-row loop wrote them."""
    parts = []
    for r in rows.itertuples(index=False):
        members = "".join(f"<li>{escape(m)}</li>" for m in r.members)
        codes = "".join(f"<li>{escape(c.strip())}</li>" for c in r.suggested_codes.split(";") if c.strip())
        since = f"<br><span class='muted'>since {escape(worklist._iso_to_uk(r.first_flagged))}</span>" \
            if r.first_flagged else ""
        sev_key = worklist._SEVERITY_ORDER.get(r.severity, 9)
        parts.append(
            f"<tr data-rule='{escape(r.rule_id)}' data-severity='{escape(r.severity)}' "
            f"data-status='{escape(r.status)}'>"
            f"<td data-key='{escape(r.name.lower())}'>{escape(r.name)}<br>"
            f"<span class='muted'>patient {escape(r.patient_id)}</span></td>"
            f"<td>{escape(r.nhs_number)}</td>"
            f"<td data-key='{escape(r.date_of_birth)}'>{escape(worklist._iso_to_uk(r.date_of_birth))}</td>"
            f"<td data-key='{escape(r.rule_id)}'>{escape(r.title)}<br>"
            f"<span class='muted'>SCR W6 Rec {escape(r.recommendations)}</span></td>"
            f"<td class='sev-{escape(r.severity)}' data-key='{sev_key}'>{escape(r.severity)}</td>"
            f"<td class='st-{escape(r.status.replace(' ', '-'))}' data-key='{escape(r.status)} "
            f"{escape(r.first_flagged)}'>{escape(r.status)}{since}</td>"
            f"<td>{escape(r.reason)}</td><td><ul class='members'>{codes}</ul></td>"
            f"<td><span class='muted'>{escape(r.household_id)}</span><ul class='members'>{members}</ul></td></tr>")
    return "".join(parts)


@st.composite
def html_rows(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 5))
    text = _CELL_TEXT | st.sampled_from(["action", "review", "not compared", "new", "a; b;;  c ;", "İ"])
    data = {}
    for col in WORKLIST_COLUMNS:
        values = _HTML_DATE if col in ("date_of_birth", "first_flagged") else text
        data[col] = draw(st.lists(values, min_size=n, max_size=n))
    frame = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in data.items()})
    frame["members"] = draw(st.lists(st.lists(_CELL_TEXT, max_size=3), min_size=n, max_size=n))
    return frame


@settings(max_examples=200, deadline=None)
@given(html_rows())
def test_worklist_html_rows_match_the_row_by_row_original(rows):
    assert worklist._flag_rows_html(rows).decode("utf-8") == _reference_rows_html(rows)


@settings(max_examples=200, deadline=None)
@given(html_rows())
def test_worklist_csv_matches_the_cell_by_cell_original(rows):
    original = rows[WORKLIST_COLUMNS].map(worklist._as_text).to_csv(index=False, lineterminator="\n")
    assert worklist.render_worklist_csv(rows) == original.encode("utf-8")


def test_python_whitespace_list_is_complete():
    import sys

    assert set(worklist._PY_WHITESPACE) == {chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace()}


@settings(max_examples=200, deadline=None)
@given(st.lists(_HTML_DATE | _CELL_TEXT, min_size=1, max_size=20))
def test_plain_iso_dates_agree_with_date_fromisoformat(values):
    valid, year, days = worklist._plain_iso_dates(pa.array(values, pa.large_string()))
    epoch = date(1970, 1, 1).toordinal()
    for value, ok, y, d in zip(values, valid, year, days):
        try:
            parsed = date.fromisoformat(value)
            plain = len(value) == 10 and value[4] == "-" and value[7] == "-" and value.replace("-", "").isascii()
        except ValueError:
            parsed, plain = None, False
        assert bool(ok) == (parsed is not None and plain)
        if ok:
            assert (y, d) == (parsed.year, parsed.toordinal() - epoch)


def test_members_html_reads_arrow_list_columns_sliced_or_not():
    lists = pa.array([["a", "b<"], [], ["c"], ["d'", "e"]], pa.large_list(pa.large_string()))
    for arr in (lists, lists.slice(1)):
        col = pd.Series(pd.arrays.ArrowExtensionArray(arr))
        expected = ["".join(f"<li>{escape(m)}</li>" for m in ms) for ms in arr.to_pylist()]
        assert worklist._members_html(col).to_pylist() == expected
        assert worklist._members_html(pd.Series(arr.to_pylist(), dtype=object)).to_pylist() == expected


# --- previous.py: resolved flags found with joins and Arrow, against the set-based original -----

_IDS = st.sampled_from(["P1", "P2", "P3", "P10", "p1", ""])
_RULES = st.sampled_from(["r1", "r2", "r 3"])


def _pairs(draw, n_max):
    return draw(st.lists(st.tuples(_IDS, _RULES), max_size=n_max))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_resolved_flags_match_the_set_based_original(data):
    prev_pairs = list(dict.fromkeys(_pairs(data.draw, 8)))  # previous flags are unique pairs
    now_pairs, scope_pairs = _pairs(data.draw, 8), _pairs(data.draw, 8)
    patients = data.draw(st.lists(_IDS, unique=True))
    prev = pd.DataFrame({"patient_id": [p for p, _ in prev_pairs], "household_id": "H",
                         "rule_id": [r for _, r in prev_pairs], "severity": "action", "title": "T",
                         "first_flagged": "2026-01-01"}, dtype="str")
    flags = pd.DataFrame({"patient_id": [p for p, _ in now_pairs], "rule_id": [r for _, r in now_pairs]}, dtype=object)
    scope = pd.DataFrame({"rule_id": [r for _, r in scope_pairs], "patient_id": [p for p, _ in scope_pairs]},
                         dtype="str")
    people = pd.DataFrame({"patient_id": pd.Series(patients, dtype="str")})
    got = resolved_flags(PreviousRun(date(2026, 10, 1), prev), flags, scope, people, date(2026, 11, 1))
    now, in_scope, present = set(now_pairs), set(scope_pairs), set(patients)
    expected = sorted(
        (r, p, RESOLVED_PATIENT_GONE if p not in present else RESOLVED_ALERT_CODED if (p, r) in in_scope
         else RESOLVED_OUT_OF_SCOPE) for p, r in prev_pairs if (p, r) not in now)
    assert list(zip(got["rule_id"], got["patient_id"], got["resolution"])) == expected



_SERIAL_XLSX_IMPORT = """
import sys, threading, time
from datetime import date
import pandas as pd
from family_link import worklist as W
assert "openpyxl" not in sys.modules
rows = pd.DataFrame({c: pd.Series(["2020-01-01" if c in ("date_of_birth", "first_flagged") else "x"], dtype="str")
                     for c in W.WORKLIST_COLUMNS})
rows["members"] = [[]]
facts = W.WorklistFacts(as_of=date(2026, 11, 1), rule_titles={"r": "Rule"}, rule_severities={"r": "action"})
done = []
W._XLSX_IMPORT.acquire()  # as if another thread were half-way through importing openpyxl
worker = threading.Thread(target=lambda: done.append(W.render_worklist_xlsx(rows, facts, pd.DataFrame())))
worker.start()
time.sleep(0.5)
waited = not done and "openpyxl" not in sys.modules
W._XLSX_IMPORT.release()
worker.join()
print(waited, len(done) == 1 and done[0][:2] == b"PK")
"""


def test_the_worklist_waits_for_an_openpyxl_import_under_way_on_another_thread():
    # openpyxl's modules import one another in a cycle: two threads importing it at once can
    # get a half-initialised module ("cannot import name 'Cell' from partially initialized
    # module", seen once in a loaded 1M run where check.py's report thread pre-imports it).
    # So every import of it goes through one lock, and rendering waits for it.
    out = subprocess.run([sys.executable, "-c", _SERIAL_XLSX_IMPORT], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True"]
