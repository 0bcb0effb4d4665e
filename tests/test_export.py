"""The canonical export reader: headers, synonyms, values, and every row accounted for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._export import (
    load_export,
    nhs_number_valid,
    normalise_codes,
    parse_dates,
    parse_export_frames,
    read_csv_text,
)
from family_link.errors import ExportError

AS_OF = date(2026, 11, 1)


def frame(text: str) -> pd.DataFrame:
    return read_csv_text(text, "inline.csv")


def parse(patients: str, events: str = "patient_id,code,date\n", relationships: str | None = None):
    return parse_export_frames(frame(patients), frame(events),
                               frame(relationships) if relationships else None, AS_OF)


# --- dates -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2026-03-02", "2026-03-02"),
    ("02/03/2026", "2026-03-02"),  # day first, always (UK order)
    ("2/3/2026", "2026-03-02"),
    ("29 Sep 2011 14:53:28", "2011-09-29"),
    ("2026-03-02T10:11:12", "2026-03-02"),
    ("02/03/2026 10:11", "2026-03-02"),
])
def test_dates_in_every_accepted_form(text, expected):
    assert parse_dates(pd.Series([text]))[0] == pd.Timestamp(expected)


@pytest.mark.parametrize("text", ["", "31/02/2026", "13/25/2026", "2026/03/02", "tomorrow", "1066-10-14",
                                  "03-02-2026", "2026-03"])
def test_unparseable_dates_are_missing_not_guessed(text):
    assert pd.isna(parse_dates(pd.Series([text]))[0])


def test_month_precision_only_where_allowed():
    assert parse_dates(pd.Series(["2012-07"]), allow_month=True)[0] == pd.Timestamp("2012-07-01")


@given(st.dates(min_value=date(1880, 1, 1), max_value=date(2200, 12, 31)))
def test_iso_and_uk_forms_agree(d):
    iso, uk = d.isoformat(), d.strftime("%d/%m/%Y")
    parsed = parse_dates(pd.Series([iso, uk]))
    assert parsed[0] == parsed[1] == pd.Timestamp(d)


@given(st.lists(st.text(max_size=30), max_size=20))
def test_date_parser_never_raises(values):
    out = parse_dates(pd.Series(values, dtype=object))
    assert len(out) == len(values)


# --- NHS numbers and codes ----------------------------------------------------------------

def test_nhs_check_digit():
    assert nhs_number_valid(pd.Series(["9434765919", "9434765918", "943476591", "abcdefghij"])).tolist() == [
        True, False, False, False]


@pytest.mark.parametrize("raw, code, problem", [
    ("342191000000101", "342191000000101", False),
    (" 13Iv. ", "13Iv.", False),
    ("13Iv.00", "13Iv.", False),  # CPRD-style 7-character Read v2
    ("3.42191E+14", None, True),
    ("342191000000101.0", None, True),
    ("3421 91000000101", None, True),
    ("", None, True),
])
def test_code_normalisation(raw, code, problem):
    codes, problems = normalise_codes(pd.Series([raw]))
    assert (problems[0] != "") is problem
    if code is not None:
        assert codes[0] == code


# --- headers --------------------------------------------------------------------------------

def test_headers_match_case_insensitively_and_by_synonym():
    export = parse("Patient ID,NHS Number,Date of Birth,Gender,Post Code\nP1,9434765919,01/02/2010,Female,ws28qt\n",
                   "Patient ID,SNOMED code,Event date,Description\nP1,342191000000101,02/03/2026,CP plan\n")
    p = export.patients.iloc[0]
    assert (p.patient_id, p.nhs_number, p.sex, p.postcode) == ("P1", "9434765919", "F", "ws28qt")
    assert p.date_of_birth == pd.Timestamp("2010-02-01")
    assert export.events.iloc[0].code_system == "snomedct"


def test_missing_required_columns_are_all_listed_at_once():
    with pytest.raises(ExportError) as err:
        parse("surname\nSmith\n", "term\nX\n")
    text = str(err.value)
    for col in ("patient_id", "date_of_birth", "code", "date"):
        assert col in text
    assert err.value.exit_code == 3


def test_two_headers_meaning_one_column_is_an_error():
    with pytest.raises(ExportError, match="both mean 'date_of_birth'"):
        parse("patient_id,dob,date of birth\nP1,2010-01-01,2010-01-01\n")


def test_semicolon_delimited_file_is_named():
    with pytest.raises(ExportError, match="semicolons"):
        read_csv_text("patient_id;date_of_birth\nP1;2010-01-01\n", "patients.csv")


# --- rows: used or rejected, never lost -----------------------------------------------------

def test_every_row_is_used_or_rejected_with_a_reason():
    export = parse(
        "patient_id,date_of_birth,nhs_number\n"
        "P1,2010-01-01,9434765918\n"   # bad check digit: used, with a warning
        ",2010-01-01,\n"               # no id: rejected
        "P2,not a date,\n"             # bad DOB: rejected
        "P3,2030-01-01,\n"             # born after as-of: rejected
        "P4,2000-01-01,\n"
        "P4,2001-01-01,\n",            # duplicate id: both rejected
        "patient_id,code,date\n"
        "P1,342191000000101,2026-03-02\n"
        "P9,342191000000101,2026-03-02\n"   # unknown patient
        "P2,342191000000101,2026-03-02\n"   # patient rejected
        "P1,3.42191E+14,2026-03-02\n"       # mangled code
        "P1,342191000000101,2027-01-01\n"   # after as-of
        "P1,342191000000101,2009-01-01\n"   # before birth
        "P1,342191000000101,\n",            # no date
    )
    assert export.patients["patient_id"].tolist() == ["P1"]
    assert len(export.events) == 1
    for f in export.files:
        assert f.rows_read == f.rows_used + f.rows_rejected, f
    rej = export.rejected
    assert sorted(rej.loc[rej.file == "patients.csv", "row"]) == [3, 4, 5, 6, 7]
    reasons = " ".join(rej["reason"])
    for phrase in ("patient_id is empty", "not a date", "after the as-of date", "more than one row",
                   "no patient with this id", "was rejected", "scientific notation", "before the patient's date",
                   "event date is empty"):
        assert phrase in reasons
    assert export.warnings["reason"].str.contains("check digit").any()


def test_relationships_rows_accounted_for():
    export = parse("patient_id,date_of_birth\nA,2010-01-01\nB,1980-01-01\n",
                   relationships="patient_id,related_patient_id,relationship\nA,B,Mother\nA,A,self\nA,Z,father\n")
    assert export.relationships.values.tolist() == [["A", "B", "mother"]]
    assert len(export.rejected) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12), st.text(max_size=12)), max_size=15))
def test_random_event_rows_are_used_or_rejected_and_nothing_raises(rows):
    patients = pd.DataFrame({"patient_id": ["P1"], "date_of_birth": ["2000-01-01"]})
    events = pd.DataFrame(rows, columns=["patient_id", "code", "date"], dtype=object) if rows else \
        pd.DataFrame({"patient_id": [], "code": [], "date": []}, dtype=object)
    export = parse_export_frames(patients, events, None, AS_OF)
    ev = export.files[1]
    assert ev.rows_read == len(rows) == ev.rows_used + ev.rows_rejected


# --- files ------------------------------------------------------------------------------------

def write(folder: Path, name: str, content: bytes | str) -> None:
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def test_bom_crlf_quoted_commas_and_cp1252(tmp_path):
    write(tmp_path, "patients.csv", b"\xef\xbb\xbfpatient_id,date_of_birth,surname,address_line_1\r\n"
                                    b'P1,2010-01-01,O\'Neil,"Flat 3, 12 Mill Road"\r\n')
    write(tmp_path, "events.csv", "patient_id,code,term,date\nP1,342191000000101,Caf\xe9 term,2026-01-01\n"
          .encode("cp1252"))
    export = load_export(tmp_path, AS_OF)
    assert export.patients.iloc[0].address_line_1 == "Flat 3, 12 Mill Road"
    assert export.events.iloc[0].term == "Café term"
    assert [f.encoding for f in export.files[:2]] == ["utf-8", "cp1252"]


def test_missing_files_and_binary_files_are_named(tmp_path):
    with pytest.raises(ExportError) as err:
        load_export(tmp_path, AS_OF)
    assert "patients.csv" in str(err.value) and "events.csv" in str(err.value)
    write(tmp_path, "patients.csv", b"\x00\x01\x02PK")
    write(tmp_path, "events.csv", "patient_id,code,date\n")
    with pytest.raises(ExportError, match="not a text file"):
        load_export(tmp_path, AS_OF)


def test_empty_and_header_only_patients(tmp_path):
    write(tmp_path, "events.csv", "patient_id,code,date\n")
    write(tmp_path, "patients.csv", "")
    with pytest.raises(ExportError, match="is empty"):
        load_export(tmp_path, AS_OF)
    write(tmp_path, "patients.csv", "patient_id,date_of_birth\n")
    with pytest.raises(ExportError, match="no usable patient rows"):
        load_export(tmp_path, AS_OF)


def test_missing_cells_in_frames_from_a_layout_are_rejected_as_empty():
    # Vendor layouts and library callers hand over frames, where a blank cell may be None or NaN.
    patients = pd.DataFrame({"patient_id": ["1", None, "3"],
                             "date_of_birth": ["2001-01-01", "2001-01-01", float("nan")]})
    events = pd.DataFrame({"patient_id": ["1", "1"], "code": [None, "XaBVJ"], "term": ["t", "t"],
                           "date": ["2020-01-01", "2020-01-01"]})
    export = parse_export_frames(patients, events, None, date(2026, 11, 1))
    assert export.patients["patient_id"].tolist() == ["1"]
    assert len(export.events) == 1
    rejected = export.rejected[["file", "row", "column"]].values.tolist()
    assert ["patients.csv", 3, "patient_id"] in rejected
    assert ["patients.csv", 4, "date_of_birth"] in rejected
    assert ["events.csv", 2, "code"] in rejected
