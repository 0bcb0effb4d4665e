"""The command line as a user runs it: exit codes, messages, outputs (functional tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
import warnings

import pandas as pd
from click.testing import CliRunner

from family_link.check import REPORT_FILES
from family_link.cli import main

AS_OF = "2026-11-01"

PATIENTS = """patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode
P1,9434765919,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT
P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,ws28qt
P3,,Jones,Kerry,1988-01-02,F,12 MILL ROAD,Walsall,WS2 8QT
P4,,Okafor,Ben,1979-03-04,M,40 Park Lane,,WS1 1AA
"""
EVENTS = """patient_id,code,term,date
P1,342191000000101,Subject to child protection plan,02/03/2026
P4,700410005,Routine enquiry about domestic abuse,2026-02-01
"""
IDENTIFIERS = ["Price", "Amy", "Kerry", "Jones", "Okafor", "9434765919", "WS2 8QT", "Mill R", "2014-05-06"]


def make_export(folder: Path, patients: str = PATIENTS, events: str = EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(patients, encoding="utf-8")
    (folder / "events.csv").write_text(events, encoding="utf-8")
    return folder


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(result, code: int, *phrases: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for p in phrases:
        assert p in result.output, result.output


def test_check_writes_the_contracted_outputs(tmp_path):
    export = make_export(tmp_path / "export")
    result = run("check", export, "--out", tmp_path / "report", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    report = tmp_path / "report"
    for name in ("flags.csv", "households.csv", "rejected.csv", "warnings.csv", "run.json", "worklist.html"):
        assert (report / name).is_file(), name
    flags = pd.read_csv(report / "flags.csv", dtype=str)
    assert {"patient_id", "rule_id", "severity", "title", "reason", "suggested_codes",
            "household_id"} <= set(flags.columns)
    # Amy's plan flags her brother (cp-sibling) and the adult she lives with (cp-parent).
    assert set(zip(flags.patient_id, flags.rule_id)) == {("P2", "cp-sibling"), ("P3", "cp-parent")}
    reason = flags.set_index("patient_id").loc["P2", "reason"]
    for part in ("Amy Price", "P1", "Subject to child protection plan", "342191000000101", "02/03/2026"):
        assert part in reason
    households = pd.read_csv(report / "households.csv", dtype=str)
    assert {"patient_id", "household_id", "role", "link_evidence"} <= set(households.columns)
    assert households.set_index("patient_id").loc[["P1", "P2", "P3"], "household_id"].nunique() == 1
    rejected = pd.read_csv(report / "rejected.csv", dtype=str)
    assert list(rejected.columns) == ["file", "row", "column", "value", "reason"]
    summary = json.loads((report / "run.json").read_text())
    for key in ("version", "as_of", "rules", "inputs", "flags_per_rule"):
        assert key in summary
    assert summary["as_of"] == AS_OF
    for f in summary["inputs"]:
        assert f["rows_read"] == f["rows_used"] + f["rows_rejected"]
        assert len(f["sha256"]) == 64
    assert summary["flags_per_rule"]["cp-sibling"] == 1
    assert len(summary["rules"]["sha256"]) == 64
    assert (report / "timings.json").is_file()
    assert sorted(p.name for p in report.iterdir()) == sorted(REPORT_FILES)


def test_same_inputs_give_byte_identical_outputs(tmp_path):
    export = make_export(tmp_path / "export")
    run("check", export, "--out", tmp_path / "a", "--as-of", AS_OF)
    run("check", export, "--out", tmp_path / "b", "--as-of", AS_OF)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    for name in names:
        if name == "timings.json":  # wall-clock seconds: the one documented exception
            continue
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_terminal_output_holds_no_patient_values(tmp_path):
    export = make_export(tmp_path / "export")
    outputs = [run("-v", "check", export, "--out", tmp_path / "r", "--as-of", AS_OF).output,
               run("households", export, "--as-of", AS_OF).output]
    for text in outputs:
        for ident in IDENTIFIERS + ["P1", "P2", "P3"]:
            assert ident not in text.replace(str(tmp_path), ""), ident


def test_missing_file_exit_3(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS)
    result = run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert_user_error(result, 3, "events.csv", "not found", "HINT")
    assert not (tmp_path / "r").exists()


def test_missing_export_folder_exit_3(tmp_path):
    result = run("check", tmp_path / "nope", "--out", tmp_path / "r", "--as-of", AS_OF)
    assert_user_error(result, 3, "nope", "not found")


def test_missing_required_columns_all_listed_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients="surname,forenames\nPrice,Amy\n",
                         events="patient_id,term\nP1,x\n")
    result = run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert_user_error(result, 3, "patients.csv", "patient_id", "date_of_birth", "events.csv", "code", "date",
                      "row 1", "2 problems")


def test_unparseable_date_rejects_the_row_with_file_row_column(tmp_path):
    export = make_export(tmp_path / "export",
                         events=EVENTS + "P2,342191000000101,Subject to child protection plan,2026-13-45\n")
    result = run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert result.exit_code == 0
    assert "1 input rows rejected" in result.output
    rejected = pd.read_csv(tmp_path / "r" / "rejected.csv", dtype=str)
    assert rejected.values.tolist() == [["events.csv", "4", "date", "2026-13-45",
                                         "event date is not a date in YYYY-MM-DD or DD/MM/YYYY form"]]


def test_no_usable_dates_at_all_exit_3(tmp_path):
    export = make_export(tmp_path / "export", patients="patient_id,date_of_birth\nP1,yesterday\n")
    result = run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert_user_error(result, 3, "patients.csv", "no usable patient rows", "1 rejected")


def test_bad_as_of_is_a_usage_error_exit_2(tmp_path):
    export = make_export(tmp_path / "export")
    result = run("check", export, "--out", tmp_path / "r", "--as-of", "01/11/2026")
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_invalid_rules_exit_4_before_reading_data(tmp_path, rules_dir):
    bad = tmp_path / "rules"
    shutil.copytree(rules_dir, bad)
    text = (bad / "01-cp-sibling.yaml").read_text()
    (bad / "01-cp-sibling.yaml").write_text(text + "colour: red\n")
    (bad / "codelists" / "cp_plan_end.csv").unlink()
    # the export does not even exist: rules are checked first
    result = run("check", tmp_path / "no-export", "--out", tmp_path / "r", "--as-of", AS_OF, "--rules", bad)
    assert_user_error(result, 4, "colour", "unknown key", "unknown codelist 'cp_plan_end'")


def test_existing_report_needs_force_exit_5(tmp_path):
    export = make_export(tmp_path / "export")
    assert run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF).exit_code == 0
    before = (tmp_path / "r" / "flags.csv").read_bytes()
    result = run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert_user_error(result, 5, "already holds a report", "--force")
    assert (tmp_path / "r" / "flags.csv").read_bytes() == before
    assert run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF, "--force").exit_code == 0


def test_unrelated_folder_is_never_overwritten_exit_5(tmp_path):
    export = make_export(tmp_path / "export")
    other = tmp_path / "documents"
    other.mkdir()
    (other / "letter.txt").write_text("keep me")
    result = run("check", export, "--out", other, "--as-of", AS_OF, "--force")
    assert_user_error(result, 5, "holds no family_link report")
    assert (other / "letter.txt").read_text() == "keep me"


def test_unwritable_output_exit_5(tmp_path):
    export = make_export(tmp_path / "export")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("check", export, "--out", blocker / "report", "--as-of", AS_OF)
    assert_user_error(result, 5, "cannot be")


def test_report_files_are_private(tmp_path):
    export = make_export(tmp_path / "export")
    run("check", export, "--out", tmp_path / "r", "--as-of", AS_OF)
    assert (tmp_path / "r").stat().st_mode & 0o077 == 0
    for f in (tmp_path / "r").iterdir():
        assert f.stat().st_mode & 0o077 == 0, f.name


def test_rules_commands(rules_dir):
    listed = run("rules", "list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == [
        "cp-sibling", "cp-parent", "domestic-abuse", "substance-misuse", "parental-learning-disability",
        "pre-birth", "maltreatment-siblings", "stale-family-alert"]
    shown = run("rules", "show", "cp-sibling")
    assert shown.exit_code == 0
    assert "375041000000100" in shown.output and "cp_plan_start" in shown.output
    assert_user_error(run("rules", "show", "nope"), 4, "no rule with id 'nope'")
    assert run("rules", "validate", rules_dir).exit_code == 0


def test_households_summary(tmp_path):
    export = make_export(tmp_path / "export")
    result = run("households", export, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "households" in result.output


def test_every_command_help_ends_with_an_example():
    for args in (["check"], ["households"], ["rules", "list"], ["rules", "show"], ["rules", "validate"],
                 ["generate"]):
        out = run(*args, "--help").output
        assert "Example:" in out and "family-link" in out.split("Example:")[1], args


def test_the_cli_keeps_pandas_wide_row_warning_off_the_terminal():
    """pandas' fallback reader warns "loss of data" for cells past the header's width, a row
    the reader reports itself; read on two threads the warning can slip past its
    catch_warnings, so the command line ignores it process-wide."""
    text = "Length of header or names does not match length of data. This leads to a loss of data."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert CliRunner().invoke(main, ["check", "--help"]).exit_code == 0
        warnings.warn(text, pd.errors.ParserWarning)
        warnings.warn("another warning", pd.errors.ParserWarning)
    assert [str(w.message) for w in seen] == ["another warning"]
