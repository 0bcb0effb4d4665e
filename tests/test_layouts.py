"""Clinical-system layouts (issue 6): the same practice in every layout gives the same
report, and each layout's quirks are read as the system writes them.

Functional tests run ``family-link check`` through CliRunner; the fixtures in
tests/fixtures/layouts/ are small hand-written files (synthetic values only), one quirk
per row or two."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from family_link.cli import main
from family_link.generate import generate_practice
from family_link.generate_layouts import WRITE_LAYOUTS, write_practice_as
from family_link.layouts import detect_layout, load_any_export

AS_OF = "2026-11-01"
FIX = ROOT / "tests" / "fixtures" / "layouts"
PROFILES = ROOT / "src" / "family_link" / "profiles"


def check(export: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["check", str(export), "--out", str(out), "--as-of", AS_OF, *extra],
                              catch_exceptions=False)


def completed(result, out: Path) -> dict:
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    for f in run["inputs"]:  # every row accounted for, per input
        assert f["rows_read"] == f["rows_used"] + f["rows_rejected"], f
    return run


def rejected(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "rejected.csv", dtype=str, keep_default_na=False)


def warnings(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "warnings.csv", dtype=str, keep_default_na=False)


def user_error(result, *phrases: str) -> None:
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "HINT" in result.output
    for p in phrases:
        assert p in result.output, (p, result.output)


# ---------------------------------------------------------------------------------------
# One practice, every layout


@pytest.fixture(scope="module")
def practice():
    return generate_practice(300, 11, date(2026, 11, 1))


def _reports(tmp: Path, practice, layouts, extra=None) -> dict[str, tuple[str, str, dict]]:
    out = {}
    for layout in layouts:
        export = tmp / layout
        write_practice_as(practice, export, layout)
        report = tmp / f"{layout}-report"
        run = completed(check(export, report), report)
        out[layout] = ((report / "flags.csv").read_text(), (report / "households.csv").read_text(), run)
    for name, (export, args) in (extra or {}).items():
        report = tmp / f"{name}-report"
        run = completed(check(export, report, *args), report)
        out[name] = ((report / "flags.csv").read_text(), (report / "households.csv").read_text(), run)
    return out


def test_every_layout_of_one_practice_gives_identical_flags_and_households(tmp_path, practice):
    # EMIS list reports and Clinical Reporting CSVs cannot hold recorded relationships, so the
    # practice compared across all layouts has none (the next test covers them).
    alone = dataclasses.replace(practice, relationships=practice.relationships.iloc[0:0])
    reports = _reports(tmp_path, alone, WRITE_LAYOUTS, extra={
        "emis-through-profile": (tmp_path / "emis" / "emis_list_report.csv",
                                 ["--profile", str(PROFILES / "emis.yaml")])})
    flags, households, _ = reports["canonical"]
    assert flags.count("\n") > 5, "the practice should raise flags"
    for layout, (f, h, run) in reports.items():
        assert f == flags, f"flags.csv differs for {layout}"
        assert h == households, f"households.csv differs for {layout}"
    layouts = {name: run["export_layout"] for name, (_, _, run) in reports.items()}
    assert layouts == {"canonical": "canonical", "emis": "emis", "emis-pseudonymised": "emis",
                       "systmone-sre": "systmone-sre", "systmone-cr": "systmone-cr",
                       "emis-through-profile": "profile"}
    assert reports["emis"][2]["export_date"] == AS_OF
    assert reports["canonical"][2]["export_date"] is None


def test_the_systmone_extract_carries_relationships_like_the_canonical_export(tmp_path, practice):
    assert len(practice.relationships)
    reports = _reports(tmp_path, practice, ["canonical", "systmone-sre"])
    assert reports["canonical"][:2] == reports["systmone-sre"][:2]
    inputs = {f["file"]: f for f in reports["systmone-sre"][2]["inputs"]}
    rel = inputs["SRPatientRelationship.csv"]
    # The writer adds ended relationships: read, counted as used history, never linked.
    assert rel["rows_read"] > len(practice.relationships)
    assert rel["rows_rejected"] == 0


def test_generate_writes_a_layout_that_check_detects(tmp_path):
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "p"), "--patients", "60", "--seed", "3",
                                       "--as-of", AS_OF, "--layout", "systmone-cr"])
    assert result.exit_code == 0, result.output
    assert "relationships not written" in result.output
    assert detect_layout(tmp_path / "p") == "systmone-cr"
    result = check(tmp_path / "p", tmp_path / "r")
    completed(result, tmp_path / "r")
    assert "SystmOne Clinical Reporting CSV (systmone-cr)" in result.output


# ---------------------------------------------------------------------------------------
# EMIS Web list report


def test_emis_header_found_by_name_with_last_run_as_export_date(tmp_path):
    result = check(FIX / "emis_list_report.csv", tmp_path / "r")
    run = completed(result, tmp_path / "r")
    assert "EMIS Web list report (emis); export date: 14/10/2026" in result.output
    assert run["export_layout"] == "emis" and run["export_date"] == "2026-10-14"
    inputs = {f["file"]: (f["rows_read"], f["rows_used"], f["rows_rejected"], f["encoding"])
              for f in run["inputs"]}
    assert inputs == {"emis_list_report.csv (patients)": (3, 2, 1, "utf-8"),
                      "emis_list_report.csv (events)": (6, 2, 4, "utf-8")}


def test_emis_rejections_name_the_original_file_and_row(tmp_path):
    completed(check(FIX / "emis_list_report.csv", tmp_path / "r"), tmp_path / "r")
    rej = rejected(tmp_path / "r")
    assert set(rej["file"]) == {"emis_list_report.csv"}
    # Rows as a spreadsheet shows them: 4 metadata lines (one blank), the column-group row
    # and the header come first; the quoted line break in row 10 does not add a row.
    got = {(int(r), c) for r, c in zip(rej["row"], rej["column"])}
    assert got == {(7, "patient_id"), (9, "code"), (12, "date_of_birth"), (12, "patient_id"),
                   (13, "patient_id")}
    reasons = dict(zip(zip(rej["row"].astype(int), rej["column"]), rej["reason"]))
    assert "no patient row above it" in reasons[(7, "patient_id")]
    assert "scientific notation" in reasons[(9, "code")]
    assert "emis_list_report.csv was rejected" in reasons[(13, "patient_id")]


def test_emis_continuation_rows_belong_to_the_patient_above():
    export = load_any_export(FIX / "emis_list_report.csv", date(2026, 11, 1))
    assert list(export.patients["patient_id"]) == ["E1001", "E1002"]
    events = export.events
    assert list(events["patient_id"]) == ["E1001", "E1001"]
    # a quoted comma and line break survive; the 7-character Read code is cut to 5
    assert "13Iv." in set(events["code"])
    assert "Term with, a comma\nand a line break" in set(events["term"])
    assert set(export.patients["address_line_1"]) == {"Flat 2, Oak Court"}
    assert set(export.patients["nhs_number"]) == {"9990000018", ""}  # stray spaces removed


def test_emis_header_is_found_wherever_it_is(tmp_path):
    raw = (FIX / "emis_list_report.csv").read_bytes()
    moved = raw.replace(b'"Population Count","3"\r\n', b'"Population Count","3"\r\n"Extra line"\r\n\r\n')
    (tmp_path / "moved.csv").write_bytes(moved)
    completed(check(tmp_path / "moved.csv", tmp_path / "r"), tmp_path / "r")
    rows = set(rejected(tmp_path / "r")["row"].astype(int))
    assert rows == {9, 11, 14, 15}  # the same rows, two further down


def test_emis_pseudonymised_cp1252_report(tmp_path):
    export = load_any_export(FIX / "emis_pseudonymised_cp1252.csv", date(2026, 11, 1))
    assert export.layout == "emis" and export.export_date == date(2026, 11, 1)
    assert list(export.patients["patient_id"]) == ["A9F3C2"]
    assert list(export.patients["forenames"]) == ["Zoë"]
    assert len(export.events) == 2
    assert {f.encoding for f in export.files if f.sha256} == {"cp1252"}


def test_emis_row_with_more_cells_than_the_header_is_refused(tmp_path):
    raw = (FIX / "emis_list_report.csv").read_bytes().replace(b'"02/01/2021"', b'"02/01/2021","extra"')
    (tmp_path / "wide.csv").write_bytes(raw)
    # Named as the canonical reader names it: the row as a spreadsheet shows it (the quoted
    # line break in row 10 does not add a row), never the parser's own count.
    user_error(check(tmp_path / "wide.csv", tmp_path / "r"), "wide.csv, row 13: has 16 cells but the header row has 15")


# ---------------------------------------------------------------------------------------
# SystmOne Strategic Reporting Extract


@pytest.fixture(scope="module")
def sre():
    return load_any_export(FIX / "systmone_sre", date(2026, 11, 1))


def test_sre_address_is_the_permanent_one_in_force_at_the_as_of_date(sre):
    p = sre.patients.set_index("patient_id")
    # S1: the 2010-2019 address ended; of two in force the later DateEvent wins; the
    # temporary address is not a home.
    assert p.loc["S1", "address_line_1"] == "Oak Court, Flat 2"
    assert p.loc["S1", "address_line_2"] == "12 Mill Road"  # NumberOfBuilding + NameOfRoad
    # S2: an address starting after the as-of date is not yet in force; "3" (correspondence) is not home
    assert p.loc["S2", "postcode"] == "WS1 1AA"
    # S4: two permanent rows from the same day: the later row wins
    assert p.loc["S4", "address_line_1"] == "Ivy Cottage"
    # S5: correspondence address only: no home address, and a warning says so
    assert p.loc["S5", "postcode"] == ""
    w = sre.warnings
    assert "no permanent address in force" in w.loc[(w["file"] == "SRPatient.csv") & (w["row"] == 6), "reason"].iloc[0]
    overlap = w[w["reason"].str.contains("also in force")]
    assert set(zip(overlap["file"], overlap["row"])) == {("SRPatientAddressHistory.csv", 3),
                                                        ("SRPatientAddressHistory.csv", 13)}


def test_sre_relationships_ended_before_the_as_of_date_do_not_count(sre):
    rel = set(zip(sre.relationships["patient_id"], sre.relationships["related_patient_id"],
                  sre.relationships["relationship"]))
    # Partner ended 2020: not counted; carer ending in 2027: counted; a grandfather with
    # parental responsibility is read as a guardian.
    assert rel == {("S2", "S1", "mother"), ("S2", "S4", "guardian"), ("S2", "S5", "carer")}


def test_sre_codes_prefer_snomed_and_reject_mangled_codes(sre):
    assert list(sre.events["code"]) == ["1365721000000103", "Xa1Ab"]
    assert list(sre.events["code_system"]) == ["snomedct", "ctv3"]
    assert str(sre.events["date"].iloc[1].date()) == "2021-09-29"  # '29 Sep 2021 14:53:28'
    rej = sre.rejected
    code = rej[rej["file"] == "SRCode.csv"]
    assert set(zip(code["row"], code["column"])) == {(4, "code"), (5, "date"), (6, "patient_id")}
    assert "SRPatient.csv was rejected" in code.loc[code["row"] == 6, "reason"].iloc[0]


def test_sre_every_row_of_every_file_is_accounted_for(tmp_path):
    run = completed(check(FIX / "systmone_sre", tmp_path / "r"), tmp_path / "r")
    assert run["export_layout"] == "systmone-sre"
    counts = {f["file"]: (f["rows_read"], f["rows_used"], f["rows_rejected"]) for f in run["inputs"]}
    assert counts == {"SRPatient.csv": (5, 4, 1), "SRPatientAddressHistory.csv": (15, 11, 4),
                      "SRCode.csv": (5, 2, 3), "SRPatientRelationship.csv": (5, 4, 1)}
    rej = rejected(tmp_path / "r")
    addr = rej[rej["file"] == "SRPatientAddressHistory.csv"]
    assert dict(zip(addr["row"].astype(int), addr["column"])) == {
        9: "IDPatient", 10: "AddressType", 11: "DateEvent", 12: "IDPatient"}


# ---------------------------------------------------------------------------------------
# SystmOne Clinical Reporting, and any CSV through a profile


def test_clinical_reporting_repeated_columns_become_events(tmp_path):
    run = completed(check(FIX / "systmone_clinical_report.csv", tmp_path / "r"), tmp_path / "r")
    assert run["export_layout"] == "systmone-cr"
    export = load_any_export(FIX / "systmone_clinical_report.csv", date(2026, 11, 1))
    assert list(export.patients["patient_id"]) == ["C1", "C2", "C3"]  # stray spaces stripped
    assert list(export.patients["surname"]) == ["Testé"] * 3  # cp1252
    assert list(zip(export.events["patient_id"], export.events["term"])) == [
        ("C1", "Synthetic term"), ("C3", "Synthetic, term"), ("C3", "Synthetic term")]
    rej = rejected(tmp_path / "r")
    assert list(zip(rej["file"], rej["row"].astype(int), rej["column"])) == [
        ("systmone_clinical_report.csv", 2, "code")]


def test_profile_maps_headers_and_reads_its_date_format(tmp_path):
    result = check(FIX / "practice_sheet.csv", tmp_path / "r", "--profile", str(FIX / "practice_sheet.yaml"))
    run = completed(result, tmp_path / "r")
    assert run["export_layout"] == "profile"
    rej = rejected(tmp_path / "r")
    got = {(int(r), c): reason for r, c, reason in zip(rej["row"], rej["column"], rej["reason"])}
    # a date not in the profile's format is rejected, never guessed (02/03/1990 is not %Y%m%d)
    assert "date_format '%Y%m%d'" in got[(3, "date_of_birth")]
    assert "date_format '%Y%m%d'" in got[(4, "date")]
    assert "was rejected" in got[(3, "patient_id")]


def test_invalid_profile_lists_every_problem(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: Bad\nshape: rows\ndate_format: '%d/%m'\npatients:\n  patient_id: Ref\n  shoe_size: Shoe\n"
        "events:\n  code: Code\n")
    result = check(FIX / "practice_sheet.csv", tmp_path / "r", "--profile", str(tmp_path / "bad.yaml"))
    user_error(result, "bad.yaml", "shape", "shoe_size", "date_of_birth", "%Y", "date")
    assert "4 problems" in result.output


def test_profile_that_is_not_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    user_error(check(FIX / "practice_sheet.csv", tmp_path / "r", "--profile", str(tmp_path / "bad.yaml")),
               "bad.yaml", "not valid YAML")


def test_profile_headers_missing_from_the_file_are_named(tmp_path):
    result = check(FIX / "systmone_clinical_report.csv", tmp_path / "r",
                   "--profile", str(FIX / "practice_sheet.yaml"))
    user_error(result, "systmone_clinical_report.csv", "line 1 is not a header", "'Ref' and 'Born'")
    (tmp_path / "no_events.csv").write_text("Ref,Born,Sex\nX1,19900302,F\n")
    result = check(tmp_path / "no_events.csv", tmp_path / "r", "--profile", str(FIX / "practice_sheet.yaml"))
    user_error(result, "no_events.csv", "code ('Concept')", "date ('When')", "columns found: 'Ref', 'Born', 'Sex'")


# ---------------------------------------------------------------------------------------
# Detection and --format


def test_each_fixture_layout_is_detected():
    assert detect_layout(FIX / "emis_list_report.csv") == "emis"
    assert detect_layout(FIX / "emis_pseudonymised_cp1252.csv") == "emis"
    assert detect_layout(FIX / "systmone_clinical_report.csv") == "systmone-cr"
    assert detect_layout(FIX / "systmone_sre") == "systmone-sre"
    assert detect_layout(ROOT / "sample_data" / "practice") == "canonical"


def test_unknown_layout_names_what_was_expected(tmp_path):
    (tmp_path / "mystery.csv").write_text("Foo,Bar\n1,2\n")
    user_error(check(tmp_path / "mystery.csv", tmp_path / "r"), "mystery.csv", "not a layout",
               "EMIS Web", "SystmOne Strategic Reporting Extract", "--profile")


def test_format_overrides_detection(tmp_path):
    user_error(check(FIX / "emis_list_report.csv", tmp_path / "r", "--format", "systmone-cr"),
               "line 1 is not a header", "SystmOne Clinical Reporting CSV", "Patient ID")
    completed(check(FIX / "emis_list_report.csv", tmp_path / "r2", "--format", "emis"), tmp_path / "r2")
    user_error(check(FIX / "emis_list_report.csv", tmp_path / "r3", "--format", "profile"), "--profile")
    user_error(check(FIX / "emis_list_report.csv", tmp_path / "r4", "--format", "systmone-sre"),
               "not a folder")


def test_a_folder_holding_one_vendor_file_is_read(tmp_path):
    shutil.copy(FIX / "emis_list_report.csv", tmp_path / "emis_list_report.csv")
    run = completed(check(tmp_path, tmp_path.parent / f"{tmp_path.name}-r"), tmp_path.parent / f"{tmp_path.name}-r")
    assert run["export_layout"] == "emis"


def test_terminal_output_holds_no_patient_values(tmp_path):
    result = check(FIX / "emis_list_report.csv", tmp_path / "r")
    for value in ("E1001", "Testfamily", "Oak Court", "9990000018", "31/02/2016"):
        assert value not in result.output


def test_patient_details_repeated_on_every_event_row_are_one_patient(tmp_path):
    (tmp_path / "sheet.csv").write_text(
        "Ref,Born,Sex,Address,PC,Concept,Label,When\n"
        "X1,19900302,F,12 Mill Road,WS1 1AA,716186003,Synthetic term,20210101\n"
        "X1,19900302,F,12 Mill Road,WS1 1AA,716186003,Synthetic term,20210102\n"
        "X1,19900302,F,12 Mill Road,WS1 1AA,,,\n"
        "X4,19800101,M,12 Mill Road,WS1 1AA,716186003,Synthetic term,20210101\n"
        "X4,19800102,M,12 Mill Road,WS1 1AA,716186003,Synthetic term,20210101\n")
    run = completed(check(tmp_path / "sheet.csv", tmp_path / "r", "--profile", str(FIX / "practice_sheet.yaml")),
                    tmp_path / "r")
    export = load_any_export(tmp_path / "sheet.csv", date(2026, 11, 1), profile=FIX / "practice_sheet.yaml")
    assert list(export.patients["patient_id"]) == ["X1"]
    assert len(export.events) == 2
    rej = rejected(tmp_path / "r")
    got = set(zip(rej["row"].astype(int), rej["column"], rej["reason"].str[:40]))
    assert (4, "patient_id", "repeats an earlier row of this patient a") in got
    for row in (5, 6):  # same id, different details: neither row is used, nor its event
        assert (row, "patient_id", "patient_id appears on more than one row;") in got
        assert (row, "patient_id", "this patient's row in sheet.csv was reje") in got
    counts = {f["file"]: (f["rows_read"], f["rows_used"], f["rows_rejected"]) for f in run["inputs"]}
    assert counts == {"sheet.csv (patients)": (4, 1, 3), "sheet.csv (events)": (4, 2, 2)}


def test_detection_reads_only_the_top_of_a_large_file(tmp_path):
    raw = (FIX / "emis_list_report.csv").read_bytes()
    filler = ('"","","","","","","","","","","","","716186003","Synthétique","02/01/2021"\r\n'.encode()
              * 20000)
    (tmp_path / "big.csv").write_bytes(raw + filler)
    assert (tmp_path / "big.csv").stat().st_size > 1 << 20
    assert detect_layout(tmp_path / "big.csv") == "emis"


def test_households_command_reads_vendor_layouts():
    result = CliRunner().invoke(main, ["households", str(FIX / "systmone_sre"), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "patients" in result.output


def test_a_stale_export_is_warned_about(tmp_path):
    result = CliRunner().invoke(main, ["check", str(FIX / "emis_list_report.csv"), "--out", str(tmp_path / "r"),
                                       "--as-of", "2027-01-31"])
    assert result.exit_code == 0, result.output
    assert "export was run 109 days before the as-of date" in result.output


def test_batch_reads_each_practice_in_its_own_layout(tmp_path):
    exports = tmp_path / "exports"
    (exports / "practice-a").mkdir(parents=True)
    shutil.copy(FIX / "emis_list_report.csv", exports / "practice-a")
    shutil.copytree(FIX / "systmone_sre", exports / "practice-b")
    result = CliRunner().invoke(main, ["batch", str(exports), "--out", str(tmp_path / "out"), "--as-of", AS_OF,
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    layouts = {p: json.loads((tmp_path / "out" / p / "run.json").read_text())["export_layout"]
               for p in ("practice-a", "practice-b")}
    assert layouts == {"practice-a": "emis", "practice-b": "systmone-sre"}


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_line_endings_and_encodings_do_not_change_what_is_read(tmp_path, ending, encoding):
    text = (FIX / "emis_list_report.csv").read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    raw = text.encode(encoding).replace(b"\n", ending)
    (tmp_path / "emis_list_report.csv").write_bytes(raw)
    reference = load_any_export(FIX / "emis_list_report.csv", date(2026, 11, 1))
    export = load_any_export(tmp_path / "emis_list_report.csv", date(2026, 11, 1))
    pd.testing.assert_frame_equal(export.patients, reference.patients)
    pd.testing.assert_frame_equal(export.events, reference.events)
    pd.testing.assert_frame_equal(export.rejected.reset_index(drop=True), reference.rejected.reset_index(drop=True))
    assert export.export_date == reference.export_date


@settings(max_examples=15, deadline=None)
@given(extra=st.lists(st.sampled_from(['"Note","Any text"', "", '"Search","Family, link"', "Criteria: all"]),
                      max_size=12))
def test_rows_shift_with_the_metadata_above_the_header(extra):
    raw = (FIX / "emis_list_report.csv").read_bytes()
    head, sep, rest = raw.partition(b'"Population Count","3"\r\n')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.csv"
        path.write_bytes(head + sep + b"".join(e.encode() + b"\r\n" for e in extra) + rest)
        export = load_any_export(path, date(2026, 11, 1))
    assert sorted(export.rejected["row"]) == sorted(r + len(extra) for r in (7, 9, 12, 12, 13))
    assert len(export.events) == 2
