"""Bad input, caught and explained: a catalogue, each case run through ``family-link check``.

Every case ends in one of two documented ways, and never in a traceback:

* the whole export, rule set or output folder is unusable: one message naming the file (and
  the row and column where there is one) with a HINT, and exit code 3, 4 or 5
  (README "Exit codes");
* one row is unusable: the run completes (exit 0) and the row is in ``rejected.csv`` with
  file, row, column, value and reason; a row used but worth correcting is in ``warnings.csv``.

Functional tests (CliRunner). The reader's unit tests are in test_export.py; the cases
already run through the CLI in test_cli.py are not repeated here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from family_link import report
from family_link.cli import main

AS_OF = "2026-11-01"

PATIENTS = (
    "patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode\n"
    "P1,9434765919,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT\n"
    "P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,ws28qt\n"
    "P3,,Jones,Kerry,1988-01-02,F,12 MILL ROAD,Walsall,WS2 8QT\n"
)
EVENTS = (
    "patient_id,code,term,date\n"
    "P1,342191000000101,Subject to child protection plan,02/03/2026\n"
)
# Values that identify a patient: none may reach the terminal, whatever goes wrong.
IDENTIFIERS = ["Price", "Amy", "Kerry", "Jones", "9434765919", "WS2 8QT", "Mill R", "2014-05-06",
               "06/05/2014", "1988-01-02"]


def make_export(folder: Path, patients: str | bytes = PATIENTS, events: str | bytes = EVENTS,
                relationships: str | bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("patients.csv", patients), ("events.csv", events),
                          ("relationships.csv", relationships)):
        if content is not None:
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def check(export: Path, out: Path, *extra: str):
    # catch_exceptions=False: anything but our own errors would surface as a test error.
    return CliRunner().invoke(main, ["check", str(export), "--out", str(out), "--as-of", AS_OF, *extra],
                              catch_exceptions=False)


def assert_user_error(result, code: int, *phrases: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "HINT" in result.output, result.output
    for p in phrases:
        assert p in result.output, (p, result.output)
    for ident in IDENTIFIERS:
        assert ident not in result.output, ident


def completed(result, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rejected = pd.read_csv(out / "rejected.csv", dtype=str, keep_default_na=False)
    warnings = pd.read_csv(out / "warnings.csv", dtype=str, keep_default_na=False)
    summary = json.loads((out / "run.json").read_text())
    for f in summary["inputs"]:  # nothing lost: every row read is used or rejected
        assert f["rows_read"] == f["rows_used"] + f["rows_rejected"], f
    return rejected, warnings, summary


def rows_of(frame: pd.DataFrame) -> list[list[str]]:
    return frame[["file", "row", "column", "value"]].values.tolist()


# --- the export as a whole is unusable: exit 3 -------------------------------------------------

def test_export_path_is_a_file_exit_3(tmp_path):
    (tmp_path / "export.csv").write_text(PATIENTS)
    assert_user_error(check(tmp_path / "export.csv", tmp_path / "r"), 3, "export.csv", "is a file, not a folder")


def test_both_required_files_missing_are_listed_together_exit_3(tmp_path):
    (tmp_path / "export").mkdir()
    result = check(tmp_path / "export", tmp_path / "r")
    assert_user_error(result, 3, "patients.csv", "events.csv", "not found", "2 problems")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content", [b"", b"   \r\n\r\n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file_exit_3(tmp_path, content):
    export = make_export(tmp_path / "export", patients=content)
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "is empty")


def test_header_only_patients_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id,date_of_birth\n")
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "no usable patient rows")


def test_header_only_events_is_a_valid_empty_file(tmp_path):
    # A practice with no coded events is odd but not wrong: the run completes, flags nothing.
    export = make_export(tmp_path / "export", events="patient_id,code,date\n")
    rejected, _, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.empty
    assert {f["file"]: f["rows_read"] for f in summary["inputs"]}["events.csv"] == 0


def test_missing_required_columns_in_every_file_listed_at_once_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id,surname\nP1,Price\n",
                         events="patient_id,term,date\nP1,x,2026-01-01\n",
                         relationships="patient_id,relationship\nP1,mother\n")
    result = check(export, tmp_path / "r")
    assert_user_error(result, 3, "3 problems", "patients.csv", "date_of_birth", "events.csv", "code",
                      "relationships.csv", "related_patient_id", "row 1", "docs/export-format.md")


def test_file_without_its_header_row_is_refused_without_echoing_row_1(tmp_path):
    # Row 1 is a patient: the message must not print it as "columns found".
    export = make_export(tmp_path / "export", patients=PATIENTS.split("\n", 1)[1])
    result = check(export, tmp_path / "r")
    assert_user_error(result, 3, "patients.csv", "missing required column(s): patient_id, date_of_birth",
                      "header row")
    assert "P1" not in result.output


def test_repeated_header_is_an_error_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id,date_of_birth,patient_id\nP1,2014-05-06,P2\n")
    assert_user_error(check(export, tmp_path / "r"), 3, "column 'patient_id' appears more than once")


@pytest.mark.parametrize("sep, name", [(";", "semicolons"), ("\t", "tabs"), ("|", "pipes")])
def test_wrong_delimiter_is_named_exit_3(tmp_path, sep, name):
    export = make_export(tmp_path / "export", events=EVENTS.replace(",", sep))
    assert_user_error(check(export, tmp_path / "r"), 3, "events.csv", f"separated by {name}", "row 1")


@pytest.mark.parametrize("content", [
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)) * 4,  # an .xlsx saved as .csv
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64,
    "patient_id,date_of_birth\nP1,2014-05-06\n".encode("utf-16"),  # UTF-16 carries NUL bytes
], ids=["xlsx", "png", "utf-16"])
def test_binary_file_is_refused_exit_3(tmp_path, content):
    export = make_export(tmp_path / "export", patients=content)
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "not a text file", "CSV")


def test_bytes_in_neither_utf8_nor_cp1252_name_the_row_and_byte_exit_3(tmp_path):
    # 0x81 is undefined in Windows-1252 and invalid alone in UTF-8.
    raw = PATIENTS.encode("utf-8") + b"P4,,Pr\x81ce,Zoe,2015-01-01,F,1 Park Lane,,WS1 1AA\n"
    export = make_export(tmp_path / "export", patients=raw)
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "row 5", "byte 0x81",
                      "neither UTF-8 nor Windows-1252", "CSV UTF-8")


def test_windows_1252_file_is_read_and_its_encoding_recorded(tmp_path):
    # Decision: a file that is not valid UTF-8 but is valid Windows-1252 (Excel's "CSV" on
    # Windows) is read as Windows-1252, and run.json says so, so a reviewer can see it.
    patients = PATIENTS + ("P4,,O\u2019Br\u00efen,Zo\u00eb,2015-01-01,F,1 Caf\u00e9 Lane,,WS1 1AA\n"
                           "P5,,O\u2019Br\u00efen,Jo,2017-01-01,M,1 Caf\u00e9 Lane,,WS1 1AA\n")
    events = EVENTS + "P4,342191000000101,Subject to child protection plan,2026-01-01\n"
    export = make_export(tmp_path / "export", patients=patients.encode("cp1252"), events=events)
    out = tmp_path / "r"
    _, _, summary = completed(check(export, out), out)
    assert {f["file"]: f["encoding"] for f in summary["inputs"]} == {"patients.csv": "cp1252",
                                                                     "events.csv": "utf-8"}
    flags = pd.read_csv(out / "flags.csv", dtype=str, keep_default_na=False).set_index("patient_id")
    assert "Zo\u00eb O\u2019Br\u00efen" in flags.loc["P5", "reason"]  # decoded, not mangled


def test_utf8_with_bom_and_crlf_and_cr_only_line_ends(tmp_path):
    for name, data in (("bom-crlf", b"\xef\xbb\xbf" + PATIENTS.replace("\n", "\r\n").encode()),
                       ("cr-only", PATIENTS.replace("\n", "\r").encode())):
        export = make_export(tmp_path / name, patients=data)
        _, _, summary = completed(check(export, tmp_path / f"r-{name}"), tmp_path / f"r-{name}")
        assert summary["inputs"][0]["rows_used"] == 3, name


def test_row_with_more_cells_than_the_header_is_named_not_shifted_exit_3(tmp_path):
    # Unquoted comma in an address: without the check pandas would silently shift the row.
    bad = PATIENTS + "P4,,Okafor,Ben,1979-03-04,M,Flat 2, 40 Park Lane,,WS1 1AA\n"
    export = make_export(tmp_path / "export", patients=bad)
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "row 5", "has 10 cells",
                      "header row has 9", "double quotes")


def test_first_data_row_one_cell_too_wide_is_refused_not_used_as_an_index(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id,date_of_birth\nP1,2014-05-06,P9\n")
    assert_user_error(check(export, tmp_path / "r"), 3, "row 2", "has 3 cells")


def test_trailing_commas_on_every_row_are_harmless(tmp_path):
    patients = "patient_id,date_of_birth\nP1,2014-05-06,\nP2,2016-07-08,\n"
    export = make_export(tmp_path / "export", patients=patients, events="patient_id,code,date\n")
    rejected, _, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.empty and summary["inputs"][0]["rows_used"] == 2


def test_unclosed_quote_is_named_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients=PATIENTS + 'P4,,"Okafor,Ben,1979-03-04\n')
    assert_user_error(check(export, tmp_path / "r"), 3, "patients.csv", "row 5", "never closed")


def test_month_first_date_column_is_refused_as_a_whole_exit_3(tmp_path):
    # Three dates can only be month first: the ones that fit both orders would be misread.
    events = ("patient_id,code,term,date\n" + "P3,342191000000101,CP,04/13/2026\n"
              "P3,342191000000101,CP,05/14/2026\nP3,342191000000101,CP,06/15/2026\n"
              "P3,342191000000101,CP,03/04/2026\n")
    export = make_export(tmp_path / "export", events=events)
    result = check(export, tmp_path / "r")
    assert_user_error(result, 3, "events.csv", "column 'date'", "month first", "rows 2, 3, 4",
                      "day first (DD/MM/YYYY)")
    assert "04/13/2026" not in result.output  # rows are named, values never printed


# --- one row is unusable: exit 0, and the row is in rejected.csv --------------------------------

def test_unparseable_dates_are_rejected_rows(tmp_path):
    patients = PATIENTS + "P4,,Okafor,Ben,last tuesday,M,40 Park Lane,,WS1 1AA\nP5,,Ng,Li,31/02/2015,F,,,\n"
    events = EVENTS + "P2,342191000000101,CP,2026-02-30\nP2,342191000000101,CP,1st March\n"
    export = make_export(tmp_path / "export", patients=patients, events=events)
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [
        ["events.csv", "3", "date", "2026-02-30"], ["events.csv", "4", "date", "1st March"],
        ["patients.csv", "5", "date_of_birth", "last tuesday"], ["patients.csv", "6", "date_of_birth", "31/02/2015"]]
    assert all("not a date" in r for r in rejected["reason"])


def test_day_first_always_04_13_is_rejected_and_03_04_is_3_april(tmp_path):
    # P4 born 05/04/2025 (5 April) has an event on 04/05/2025 (4 May). Read month first, the
    # event would fall before the birth and be rejected; read day first it is used.
    patients = PATIENTS + "P4,,Ng,Li,05/04/2025,F,1 Park Lane,,WS1 1AA\n"
    events = EVENTS + "P4,342191000000101,CP,04/05/2025\nP2,342191000000101,CP,04/13/2026\n"
    export = make_export(tmp_path / "export", patients=patients, events=events)
    rejected, _, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.values.tolist() == [["events.csv", "4", "date", "04/13/2026", report_reason("month first")]]
    assert "always read day first (DD/MM/YYYY" in rejected["reason"][0]
    assert {f["file"]: f["rows_used"] for f in summary["inputs"]}["events.csv"] == 2


def report_reason(phrase: str) -> str:
    from family_link._export import MONTH_FIRST_REASON
    assert phrase in MONTH_FIRST_REASON
    return MONTH_FIRST_REASON


def test_future_dates_are_rejected(tmp_path):
    patients = PATIENTS + "P4,,Ng,Li,2026-12-25,F,1 Park Lane,,WS1 1AA\n"
    events = EVENTS + "P1,342191000000101,CP,2026-11-02\nP1,342191000000101,CP,2026-11-01\n"
    export = make_export(tmp_path / "export", patients=patients, events=events)
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [["events.csv", "3", "date", "2026-11-02"],
                                 ["patients.csv", "5", "date_of_birth", "2026-12-25"]]
    assert "after the as-of date" in rejected["reason"][0]  # the as-of day itself is allowed


def test_event_before_birth_is_rejected(tmp_path):
    events = EVENTS + "P2,342191000000101,CP,2016-07-07\nP2,342191000000101,CP,2016-07-08\n"
    export = make_export(tmp_path / "export", events=events)
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [["events.csv", "3", "date", "2016-07-07"]]
    assert "before the patient's date of birth" in rejected["reason"][0]


def test_duplicate_patient_ids_reject_every_copy_and_their_events(tmp_path):
    patients = PATIENTS + "P2,,Price,Samuel,2016-07-09,M,12 Mill Rd,,WS2 8QT\n"
    events = EVENTS + "P2,342191000000101,CP,2026-01-01\n"
    export = make_export(tmp_path / "export", patients=patients, events=events)
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [["events.csv", "3", "patient_id", "P2"],
                                 ["patients.csv", "3", "patient_id", "P2"],
                                 ["patients.csv", "5", "patient_id", "P2"]]
    assert "rejected" in rejected["reason"][0] and "more than one row" in rejected["reason"][1]


def test_events_and_relationships_for_unknown_patients_are_rejected(tmp_path):
    export = make_export(tmp_path / "export", events=EVENTS + "P99,342191000000101,CP,2026-01-01\n",
                         relationships="patient_id,related_patient_id,relationship\nP1,P3,mother\nP1,P98,father\n")
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [["events.csv", "3", "patient_id", "P99"],
                                 ["relationships.csv", "3", "related_patient_id", "P98"]]
    assert all("no patient with this id" in r for r in rejected["reason"])


@pytest.mark.parametrize("code, phrase", [
    ("3.42191E+14", "scientific notation"),
    ("342191000000101.0", "decimal number"),
    ("3421 9100 0000 101", "contains spaces"),
    ("", "code is empty"),
])
def test_mangled_codes_are_rejected_with_what_to_do(tmp_path, code, phrase):
    export = make_export(tmp_path / "export", events=EVENTS + f"P2,{code},CP,2026-01-01\n")
    rejected, _, _ = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rows_of(rejected) == [["events.csv", "3", "code", code]]
    assert phrase in rejected["reason"][0]
    if code:
        assert "re-export" in rejected["reason"][0] or "remove" in rejected["reason"][0]


def test_nhs_number_failing_its_check_digit_is_kept_with_a_warning(tmp_path):
    export = make_export(tmp_path / "export", patients=PATIENTS.replace(",,Price,Sam", ",943 476 5918,Price,Sam"))
    rejected, warnings, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.empty and summary["inputs"][0]["rows_used"] == 3
    assert rows_of(warnings) == [["patients.csv", "3", "nhs_number", "9434765918"]]
    assert "check digit" in warnings["reason"][0]


def test_nhs_number_in_other_scripts_digits_is_kept_with_a_warning_not_a_crash(tmp_path):
    # Arabic-Indic and full-width digits: ten "digits" to a regex's \\d, but not an NHS number.
    patients = PATIENTS.replace(",,Price,Sam", ",\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660,Price,Sam")
    patients = patients.replace(",,Jones,Kerry", ",\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19,Jones,Kerry")
    export = make_export(tmp_path / "export", patients=patients)
    rejected, warnings, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.empty and summary["inputs"][0]["rows_used"] == 3
    assert [r[:3] for r in rows_of(warnings)] == [["patients.csv", "3", "nhs_number"], ["patients.csv", "4", "nhs_number"]]


def test_invalid_postcode_is_kept_with_a_warning(tmp_path):
    patients = PATIENTS + "P4,,Ng,Li,2015-01-01,F,1 Park Lane,,WS1 1A\nP5,,Ng,Jo,2015-01-01,F,1 Park Lane,,\n"
    export = make_export(tmp_path / "export", patients=patients)
    rejected, warnings, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert rejected.empty and summary["inputs"][0]["rows_used"] == 5
    # An empty postcode is not a warning (many exports leave it out); an invalid one is.
    assert rows_of(warnings) == [["patients.csv", "5", "postcode", "WS1 1A"]]
    assert "not a valid UK postcode" in warnings["reason"][0]


def test_a_cell_of_megabytes_is_used_or_rejected_never_a_crash(tmp_path):
    huge = "A" * 5_000_000
    patients = PATIENTS + f"P4,,{huge},Ben,1979-03-04,M,40 Park Lane,,WS1 1AA\n"
    events = EVENTS + f"P1,342191000000101,CP,{huge}\n"
    export = make_export(tmp_path / "export", patients=patients, events=events)
    rejected, _, summary = completed(check(export, tmp_path / "r"), tmp_path / "r")
    assert {f["file"]: f["rows_used"] for f in summary["inputs"]} == {"patients.csv": 4, "events.csv": 1}
    assert rejected[["file", "row", "column"]].values.tolist() == [["events.csv", "3", "date"]]
    assert len(rejected["value"][0]) == len(huge)


# --- rules: exit 4, every problem listed --------------------------------------------------------

def test_rules_with_broken_yaml_and_missing_codelists_folder_exit_4(tmp_path, rules_dir):
    bad = tmp_path / "rules"
    shutil.copytree(rules_dir, bad)
    shutil.rmtree(bad / "codelists")
    (bad / "99-broken.yaml").write_text("id: [unclosed\n")
    export = make_export(tmp_path / "export")
    result = check(export, tmp_path / "r", "--rules", str(bad))
    assert_user_error(result, 4, "codelist folder not found", "99-broken.yaml", "not valid YAML",
                      "unknown codelist 'cp_plan_start'")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_rules_folder_missing_or_empty_exit_4(tmp_path, setup):
    rules = tmp_path / "rules"
    if setup == "empty":
        rules.mkdir()
    result = check(make_export(tmp_path / "export"), tmp_path / "r", "--rules", str(rules))
    assert_user_error(result, 4, "rules")


# --- the output folder: exit 5, nothing half-written --------------------------------------------

def test_out_is_an_existing_file_exit_5(tmp_path):
    (tmp_path / "report").write_text("not a folder")
    result = check(make_export(tmp_path / "export"), tmp_path / "report")
    assert_user_error(result, 5, "is a file, not a folder")
    assert (tmp_path / "report").read_text() == "not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_on_a_read_only_file_system_exit_5():
    # Tests run as root, so file modes cannot stop a write; /proc refuses everyone.
    export = Path(__file__).resolve().parents[1] / "sample_data" / "practice"
    result = check(export, Path("/proc/family-link-report"))
    assert result.exit_code == 5, result.output
    assert "Traceback" not in result.output and "cannot be created" in result.output


def test_disk_full_while_writing_exit_5_and_nothing_half_written(tmp_path, monkeypatch):
    export = make_export(tmp_path / "export")
    out = tmp_path / "r"
    assert check(export, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:  # the third report file
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(report.os, "fsync", failing_fsync)
    result = check(export, out, "--force")
    assert_user_error(result, 5, "cannot be written", "No space left on device", "disk is not full")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "r"]  # no temp folder left


def test_existing_report_is_refused_before_the_export_is_read(tmp_path):
    # Without --force, the run stops at once (exit 5), not after reading the export.
    export = make_export(tmp_path / "export")
    out = tmp_path / "r"
    assert check(export, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (export / "patients.csv").write_text("")
    assert_user_error(check(export, out), 5, "already holds a report", "--force")
    # With --force, the bad export is reported and the old report is left as it was.
    assert_user_error(check(export, out, "--force"), 3, "is empty")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_header_cell_of_megabytes_is_not_printed_whole(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id," + "X" * 5_000_000 + "\nP1,2\n")
    result = check(export, tmp_path / "r")
    assert_user_error(result, 3, "patients.csv", "date_of_birth")
    assert len(result.output) < 2_000
