"""Month to month: new, still open (since when) and resolved flags across two runs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from family_link.errors import RunFolderError
from family_link.previous import (
    RESOLVED_ALERT_CODED,
    RESOLVED_OUT_OF_SCOPE,
    RESOLVED_PATIENT_GONE,
    load_previous_run,
)
from golden_files import MONTH_1, MONTH_2, assert_golden, generate, run

HEADER = "patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode\n"
# Household A: a child on a plan (P1), her brother (P2) and an adult (P3).
# Household B: an adult coded with domestic abuse (P4) and a child (P5).
# Household C: a child on a plan (P6), his sister (P7).
PATIENTS_NOV = HEADER + """P1,9434765919,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT
P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,WS2 8QT
P3,,Jones,Kerry,1988-01-02,F,12 MILL ROAD,Walsall,WS2 8QT
P4,,Okafor,Ben,1979-03-04,M,40 Park Lane,,WS1 1AA
P5,,Okafor,Ada,2015-03-04,F,40 Park Lane,,WS1 1AA
P6,,Hughes,Tom,2013-01-01,M,7 Oak Close,,WS3 2BB
P7,,Hughes,Lily,2017-02-02,F,7 Oak Close,,WS3 2BB
"""
EVENTS_NOV = """patient_id,code,term,date
P1,342191000000101,Subject to child protection plan,02/03/2026
P4,13HD.,Violent spouse,01/06/2026
P6,342191000000101,Subject to child protection plan,05/05/2026
"""
# December: P2's record is coded (alert coded); P5 has left the practice (gone); P6's plan
# ended (trigger ended); a new baby P9 joins household A (new flag).
PATIENTS_DEC = "".join(line + "\n" for line in PATIENTS_NOV.splitlines() if not line.startswith("P5,")) + \
    "P9,,Price,Bea,2026-11-10,F,12 Mill Road,Walsall,WS2 8QT\n"
EVENTS_DEC = EVENTS_NOV + """P2,375041000000100,Family member subject of child protection plan,15/11/2026
P6,342891000000105,No longer subject to child protection plan,20/11/2026
"""


def _export(folder: Path, patients: str, events: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "patients.csv").write_text(patients)
    (folder / "events.csv").write_text(events)
    return folder


@pytest.fixture
def two_months(tmp_path):
    nov = _export(tmp_path / "export-nov", PATIENTS_NOV, EVENTS_NOV)
    dec = _export(tmp_path / "export-dec", PATIENTS_DEC, EVENTS_DEC)
    r1 = run("check", nov, "--out", tmp_path / "report-nov", "--as-of", MONTH_1)
    assert r1.exit_code == 0, r1.output
    r2 = run("check", dec, "--out", tmp_path / "report-dec", "--as-of", MONTH_2,
             "--previous", tmp_path / "report-nov")
    assert r2.exit_code == 0, r2.output
    return tmp_path / "report-nov", tmp_path / "report-dec", r2.output


def _flags(report: Path) -> pd.DataFrame:
    return pd.read_csv(report / "flags.csv", dtype=str, keep_default_na=False)


def test_first_run_without_previous_is_not_compared(two_months):
    nov, _, _ = two_months
    flags = _flags(nov)
    assert list(flags.columns)[-2:] == ["status", "first_flagged"]
    assert set(flags["status"]) == {"not compared"}
    assert set(flags["first_flagged"]) == {""}
    assert set(zip(flags.patient_id, flags.rule_id)) == {
        ("P2", "cp-sibling"), ("P3", "cp-parent"), ("P5", "domestic-abuse"), ("P7", "cp-sibling")}


def test_second_run_marks_new_open_and_resolved_with_why(two_months):
    _, dec, output = two_months
    flags = _flags(dec).set_index(["patient_id", "rule_id"])
    assert flags.loc[("P3", "cp-parent"), "status"] == "open"
    assert flags.loc[("P3", "cp-parent"), "first_flagged"] == MONTH_1
    assert flags.loc[("P9", "cp-sibling"), "status"] == "new"
    assert flags.loc[("P9", "cp-sibling"), "first_flagged"] == MONTH_2
    resolved = pd.read_csv(dec / "resolved.csv", dtype=str, keep_default_na=False)
    why = dict(zip(zip(resolved.patient_id, resolved.rule_id), resolved.resolution))
    assert why == {("P2", "cp-sibling"): RESOLVED_ALERT_CODED,
                   ("P5", "domestic-abuse"): RESOLVED_PATIENT_GONE,
                   ("P7", "cp-sibling"): RESOLVED_OUT_OF_SCOPE}
    assert set(resolved["first_flagged"]) == {MONTH_1}
    assert set(resolved["resolved_by"]) == {MONTH_2}
    summary = json.loads((dec / "run.json").read_text())["compared_with"]
    assert summary == {"as_of": MONTH_1, "new": 1, "open": 1, "resolved": 3}
    assert "1 new, 1 still open, 3 resolved" in output
    html = (dec / "worklist.html").read_text()
    for text in ("New since then", "Still open", "Resolved since then", RESOLVED_ALERT_CODED,
                 RESOLVED_PATIENT_GONE, RESOLVED_OUT_OF_SCOPE, "since 01/11/2026"):
        assert text in html


def test_first_flagged_is_carried_forward_over_three_months(two_months, tmp_path):
    _, dec, _ = two_months
    jan = run("check", tmp_path / "export-dec", "--out", tmp_path / "report-jan", "--as-of", "2027-01-01",
              "--previous", dec)
    assert jan.exit_code == 0, jan.output
    flags = _flags(tmp_path / "report-jan").set_index(["patient_id", "rule_id"])
    assert flags.loc[("P3", "cp-parent"), "first_flagged"] == MONTH_1  # from November, through December
    assert flags.loc[("P9", "cp-sibling"), ("status")] == "open"
    assert flags.loc[("P9", "cp-sibling"), "first_flagged"] == MONTH_2


def test_a_report_without_first_flagged_counts_from_its_as_of_date(two_months):
    nov, _, _ = two_months
    flags = _flags(nov).drop(columns=["status", "first_flagged"])
    flags.to_csv(nov / "flags.csv", index=False)
    previous = load_previous_run(nov)
    assert previous.as_of == date(2026, 11, 1)
    assert set(previous.flags["first_flagged"]) == {MONTH_1}


@pytest.mark.parametrize("remove", ["run.json", "flags.csv", None])
def test_previous_that_is_not_a_report_is_a_user_error(tmp_path, two_months, remove):
    nov, _, _ = two_months
    target = tmp_path / "not-a-report"
    if remove is None:
        target = tmp_path / "missing"
    else:
        target.mkdir()
        for name in ("run.json", "flags.csv"):
            if name != remove:
                (target / name).write_bytes((nov / name).read_bytes())
    with pytest.raises(RunFolderError):
        load_previous_run(target)
    result = run("check", tmp_path / "export-dec", "--out", tmp_path / "r", "--as-of", MONTH_2,
                 "--previous", target)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "--previous" in result.output


def test_golden_month_to_month_on_a_generated_practice(tmp_path):
    """The report CSVs of a small generated practice, checked in November and again in
    December against November's report, match the golden files byte for byte."""
    export = generate(tmp_path / "practice")
    nov, dec = tmp_path / "nov", tmp_path / "dec"
    assert run("check", export, "--out", nov, "--as-of", MONTH_1).exit_code == 0
    # December's export: the first flagged patient has left, and the first child flagged by
    # cp-sibling has been given the family-member alert.
    flags = _flags(nov)
    gone = flags["patient_id"].iloc[0]
    coded = flags.loc[(flags["rule_id"] == "cp-sibling") & (flags["patient_id"] != gone), "patient_id"].iloc[0]
    patients = pd.read_csv(export / "patients.csv", dtype=str, keep_default_na=False)
    patients[patients["patient_id"] != gone].to_csv(export / "patients.csv", index=False)
    with open(export / "events.csv", "a", encoding="utf-8") as fh:
        columns = (export / "events.csv").read_text().splitlines()[0].split(",")
        row = {"patient_id": coded, "code": "375041000000100",
               "term": "Family member subject of child protection plan", "date": "2026-11-15"}
        fh.write(",".join(row.get(c, "") for c in columns) + "\n")
    result = run("check", export, "--out", dec, "--as-of", MONTH_2, "--previous", nov)
    assert result.exit_code == 0, result.output
    for name in ("flags.csv", "worklist.csv", "scope.csv"):
        assert_golden(f"month1/{name}", nov / name)
    for name in ("flags.csv", "worklist.csv", "scope.csv", "resolved.csv"):
        assert_golden(f"month2/{name}", dec / name)
    assert set(_flags(dec)["status"]) <= {"new", "open"}
    resolved = pd.read_csv(dec / "resolved.csv", dtype=str, keep_default_na=False).set_index("patient_id")
    assert resolved.loc[gone, "resolution"] == RESOLVED_PATIENT_GONE
    assert resolved.loc[coded, "resolution"] == RESOLVED_ALERT_CODED
