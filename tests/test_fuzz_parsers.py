"""Random bytes and random rows fed to every parser (hypothesis properties).

The property, for every reader: it returns, or raises one of our own ``FamilyLinkError``
subclasses (a user error with a message); nothing else escapes. Where rows come back,
each row read is either used or rejected: rows read = rows used + rows rejected.
"""

from __future__ import annotations

import string
from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from family_link._export import decode_bytes, load_export, parse_export_frames, read_csv_text
from family_link.errors import FamilyLinkError

AS_OF = date(2026, 11, 1)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text that looks like CSV more often than uniform noise does: separators, quotes, line ends,
# digits, slashes, NULs and a little non-ASCII.
csv_alphabet = st.sampled_from(list(string.ascii_letters + string.digits + ',,,"\n\r\t;|/-. ') +
                               ["\x00", "\ufeff", "é", "’", "\u2028"])
csv_text = st.text(alphabet=csv_alphabet, max_size=300)
header = st.sampled_from([
    "patient_id,date_of_birth", "patient_id,nhs_number,surname,date_of_birth,postcode",
    "Patient ID,Date of Birth,Gender", "patient_id,code,date", "patient_id,code,term,date,code_system",
    "patient_id,related_patient_id,relationship", "", "a;b", "patient_id,patient_id"])
cell = st.one_of(
    st.text(alphabet=csv_alphabet, max_size=12),
    st.sampled_from(["P1", "P2", "2014-05-06", "06/05/2014", "04/13/2026", "2030-01-01", "1066-10-14",
                     "342191000000101", "3.42191E+14", "13Iv.00", "9434765919", "WS2 8QT", "mother",
                     "", " ", '"', "x,y"]),
)


def _csv_cell(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


rows = st.lists(st.lists(cell, min_size=0, max_size=6), max_size=12)


def as_csv(head: str, body: list[list[str]]) -> str:
    return head + "\n" + "".join(",".join(_csv_cell(c) for c in r) + "\n" for r in body)


@FUZZ
@given(st.binary(max_size=400))
def test_decode_bytes_returns_text_or_a_user_error(raw):
    try:
        text, encoding = decode_bytes(raw, "f.csv")
    except FamilyLinkError as exc:
        assert exc.exit_code == 3 and "f.csv" in str(exc)
        return
    assert isinstance(text, str) and encoding in ("utf-8", "cp1252")


@FUZZ
@given(csv_text)
def test_read_csv_text_returns_strings_or_a_user_error(text):
    try:
        frame = read_csv_text(text, "f.csv")
    except FamilyLinkError as exc:
        assert exc.exit_code == 3
        return
    for col in frame.columns:
        assert all(isinstance(v, str) for v in frame[col].tolist())


@FUZZ
@given(header, rows)
def test_read_csv_text_on_structured_rows(head, body):
    try:
        frame = read_csv_text(as_csv(head, body), "f.csv")
    except FamilyLinkError:
        return
    assert len(frame) <= len(body) + 1


@FUZZ
@given(rows, rows, st.one_of(st.none(), rows))
def test_parse_export_frames_uses_or_rejects_every_row(patients, events, relationships):
    def frame(body, columns):
        return pd.DataFrame([(r + [""] * len(columns))[:len(columns)] for r in body],
                            columns=columns, dtype=object)
    p = frame(patients, ["patient_id", "date_of_birth", "nhs_number", "postcode", "sex", "surname"])
    e = frame(events, ["patient_id", "code", "date", "term", "code_system", "extra"])
    r = None if relationships is None else frame(relationships, ["patient_id", "related_patient_id",
                                                                 "relationship", "x", "y", "z"])
    try:
        export = parse_export_frames(p, e, r, AS_OF)
    except FamilyLinkError as exc:
        assert exc.exit_code == 3
        return
    for f in export.files:
        assert f.rows_read == f.rows_used + f.rows_rejected, f
    assert len(export.patients) == export.files[0].rows_used
    assert len(export.events) == export.files[1].rows_used


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.builds(lambda h, b: as_csv(h, b).encode(), header, rows)),
       st.one_of(st.binary(max_size=300), st.builds(lambda h, b: as_csv(h, b).encode("cp1252", "replace"),
                                                    header, rows)))
def test_load_export_on_random_files(tmp_path_factory, patients, events):
    folder = tmp_path_factory.mktemp("export")
    (folder / "patients.csv").write_bytes(patients)
    (folder / "events.csv").write_bytes(events)
    try:
        export = load_export(folder, AS_OF)
    except FamilyLinkError as exc:
        assert exc.exit_code == 3
        return
    for f in export.files:
        assert f.rows_read == f.rows_used + f.rows_rejected, f


# --- vendor layouts (layouts.py), when present: every layout, the same property -----------------

def _layouts() -> list[str]:
    from family_link import layouts

    names = [name for name in layouts.LAYOUT_CHOICES if name != "profile"]
    assert names
    return names


LAYOUTS = _layouts()
VENDOR_HEADERS = st.sampled_from([
    "EMIS Number,NHS Number,Surname,Forenames,Date of Birth,Gender,Postcode,Code,Term,Date",
    '"Last Run","01-Nov-2026 10:00:00"\n"Patient Details",,,\nEMIS Number,Date of Birth,Code,Term,Date',
    "Anonymised Identifier,Date of Birth,Code,Date",
    "Patient ID,Date of birth,Gender,Postcode,Code,Date of issue,Date of issue",
    "RowIdentifier,DateBirth,Gender", "IDPatient,AddressType,Postcode,DateEvent",
    "IDPatient,CTV3Code,SNOMEDCode,DateEvent", "IDPatient,IDPatientRelationshipWith,RelationshipType",
])
SRE_NAMES = ["SRPatient.csv", "SRPatientAddressHistory.csv", "SRCode.csv", "SRPatientRelationship.csv"]
vendor_file = st.one_of(st.binary(max_size=200), st.builds(lambda h, b: as_csv(h, b).encode(), VENDOR_HEADERS, rows),
                        st.builds(lambda h, b: as_csv(h, b).encode(), header, rows))


@pytest.mark.parametrize("layout", LAYOUTS + [None])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=st.lists(vendor_file, min_size=4, max_size=4), as_folder=st.booleans())
def test_every_layout_returns_or_raises_user_errors(tmp_path_factory, layout, contents, as_folder):
    from family_link.layouts import load_any_export

    folder = tmp_path_factory.mktemp("layout")
    if layout == "systmone-sre" or (layout is None and as_folder):
        for name, content in zip(SRE_NAMES, contents):
            (folder / name).write_bytes(content)
        target = folder
    elif layout == "canonical":
        (folder / "patients.csv").write_bytes(contents[0])
        (folder / "events.csv").write_bytes(contents[1])
        target = folder
    else:
        target = folder / "export.csv"
        target.write_bytes(contents[0])
    try:
        export = load_any_export(target, AS_OF, layout=layout)
    except FamilyLinkError as exc:
        assert exc.exit_code == 3, exc
        return
    for f in export.files:
        assert f.rows_read == f.rows_used + f.rows_rejected, f
