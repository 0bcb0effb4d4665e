"""The lead's worklist: worklist.html, worklist.csv and worklist.xlsx (functional and unit)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from family_link.worklist import WORKLIST_COLUMNS, WorklistFacts, render_worklist_html, worklist_rows
from golden_files import MONTH_1, generate, run

SCRIPT = ROOT / "scripts" / "check_html_in_chromium.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("worklist")
    export = generate(base / "practice", seed=3, patients=300)
    result = run("check", export, "--out", base / "report", "--as-of", MONTH_1)
    assert result.exit_code == 0, result.output
    return base / "report"


def test_csv_has_one_row_per_flag_with_who_why_and_what_to_code(report):
    flags = pd.read_csv(report / "flags.csv", dtype=str, keep_default_na=False)
    rows = pd.read_csv(report / "worklist.csv", dtype=str, keep_default_na=False)
    assert list(rows.columns) == WORKLIST_COLUMNS
    assert len(rows) == len(flags) > 0
    assert set(zip(rows.patient_id, rows.rule_id)) == set(zip(flags.patient_id, flags.rule_id))
    patients = pd.read_csv(report.parent / "practice" / "patients.csv", dtype=str, keep_default_na=False)
    row = rows.iloc[0]
    assert row["name"] and row["date_of_birth"] and row["reason"] and row["suggested_codes"]
    assert row["patient_id"] in row["household_members"]
    assert row["nhs_number"] in set(patients["nhs_number"])
    # action before review
    assert rows["severity"].tolist() == sorted(rows["severity"].tolist())


def test_xlsx_holds_the_same_rows_and_is_byte_identical_between_runs(report, tmp_path):
    import openpyxl
    again = tmp_path / "again"
    assert run("check", report.parent / "practice", "--out", again, "--as-of", MONTH_1).exit_code == 0
    first, second = (report / "worklist.xlsx").read_bytes(), (again / "worklist.xlsx").read_bytes()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 11, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
        assert "2026-11-01T00:00:00Z" in core
    wb = openpyxl.load_workbook(io.BytesIO(first))
    assert wb.sheetnames[:2] == ["Worklist", "Summary"]
    sheet = list(wb["Worklist"].iter_rows(values_only=True))
    csv_rows = pd.read_csv(report / "worklist.csv", dtype=str, keep_default_na=False)
    assert len(sheet) == len(csv_rows) + 1
    ids = [r[WORKLIST_COLUMNS.index("patient_id")] for r in sheet[1:]]
    assert ids == csv_rows["patient_id"].tolist()


def test_every_output_but_timings_is_byte_identical(report, tmp_path):
    again = tmp_path / "again"
    assert run("check", report.parent / "practice", "--out", again, "--as-of", MONTH_1).exit_code == 0
    for path in sorted(report.iterdir()):
        if path.name != "timings.json":
            assert path.read_bytes() == (again / path.name).read_bytes(), path.name


def test_html_is_self_contained_and_has_the_summary(report):
    html = (report / "worklist.html").read_text()
    assert "default-src 'none'" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, flags=re.I)
    assert "<link" not in html and "@import" not in html
    for text in ("As-of date", "Export date", "Rows in patients.csv", "Rejected rows", "Ambiguous addresses",
                 "Flags by rule and severity", "id='f-rule'", "id='f-sev'", "id='f-status'", "safeguarding relevant",
                 "@media print", "selftest"):
        assert text in html, text
    rows = pd.read_csv(report / "worklist.csv", dtype=str, keep_default_na=False)
    assert html.count("<tr data-rule=") == len(rows)


def _facts(**kw) -> WorklistFacts:
    base = dict(as_of=date(2026, 11, 1), rule_titles={"r": "Rule"}, rule_severities={"r": "action"})
    return WorklistFacts(**{**base, **kw})


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=[*WORKLIST_COLUMNS, "members"])


@pytest.mark.parametrize("export_date, stale", [(date(2026, 10, 1), True), (date(2026, 10, 18), False),
                                                (date(2026, 10, 17), True), (None, None)])
def test_stale_export_warning(export_date, stale):
    html = render_worklist_html(_empty_rows(), _facts(export_date=export_date), pd.DataFrame()).decode()
    if stale is None:
        assert "does not record when it was made" in html
    else:
        assert ("more than 14" in html) is stale


def test_spreadsheet_formulas_in_the_data_are_written_as_text(tmp_path):
    import openpyxl
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(
        "patient_id,surname,forenames,date_of_birth,sex,address_line_1,postcode\n"
        "P1,Price,Amy,2014-05-06,F,12 Mill Road,WS2 8QT\n"
        "P2,=HYPERLINK(\"x\"),+Sam,2016-07-08,M,12 Mill Road,WS2 8QT\n")
    (export / "events.csv").write_text("patient_id,code,term,date\nP1,342191000000101,Subject to child "
                                       "protection plan,02/03/2026\n")
    assert run("check", export, "--out", tmp_path / "r", "--as-of", MONTH_1).exit_code == 0
    text = (tmp_path / "r" / "worklist.csv").read_text()
    assert "'+Sam =HYPERLINK" in text
    ws = openpyxl.load_workbook(tmp_path / "r" / "worklist.xlsx")["Worklist"]
    cells = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert cells and all(c.data_type == "s" for c in cells)
    html = (tmp_path / "r" / "worklist.html").read_text()
    assert "=HYPERLINK(&quot;x&quot;)" in html


def test_worklist_rows_lists_household_members_with_roles():
    patients = pd.DataFrame({"patient_id": ["A", "B"], "forenames": ["Amy", "Sam"], "surname": ["Price", "Price"],
                             "date_of_birth": pd.to_datetime(["2014-05-06", "2016-07-08"]),
                             "nhs_number": ["", ""]})
    households = pd.DataFrame({"patient_id": ["A", "B"], "household_id": ["H1", "H1"], "role": ["child", "child"]})
    flags = pd.DataFrame({"patient_id": ["B"], "household_id": ["H1"], "rule_id": ["r"], "severity": ["action"],
                          "title": ["Rule"], "recommendations": ["11"], "reason": ["why"], "suggested_codes": ["1 x"]})
    rows = worklist_rows(flags, patients, households, ["r"])
    assert rows.loc[0, "household_members"] == "Amy Price (A, child); Sam Price (B, child)"
    assert rows.loc[0, "date_of_birth"] == "2016-07-08"


@pytest.mark.skipif(not any(__import__("shutil").which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="Chromium is not installed (apt-get install -y chromium); "
                           "scripts/check_html_in_chromium.py is the documented check")
def test_html_renders_sorts_and_filters_in_headless_chromium(report, tmp_path):
    key = tmp_path / "key"
    key.write_text("a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00\n")
    assert run("audit", report, "--key-file", key, "--out", tmp_path / "audit").exit_code == 0
    done = subprocess.run([sys.executable, str(SCRIPT), str(report), str(tmp_path / "audit"),
                           "--screenshots", str(tmp_path / "shots")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test passed" in done.stdout
    assert (tmp_path / "shots" / "worklist.png").is_file()


def test_an_export_older_than_14_days_is_warned_about_end_to_end(tmp_path):
    """An EMIS list report records when it was run ("Last Run"); checking it a month later
    puts the stale-export warning at the top of every worklist format."""
    result = run("generate", tmp_path / "emis", "--layout", "emis", "--patients", 120, "--seed", 4, "--as-of", MONTH_1)
    assert result.exit_code == 0, result.output
    assert run("check", tmp_path / "emis", "--out", tmp_path / "r", "--as-of", "2026-12-01").exit_code == 0
    html = (tmp_path / "r" / "worklist.html").read_text()
    assert "The export was made on 01/11/2026, 30 days before the as-of date" in html
    import openpyxl
    summary = openpyxl.load_workbook(tmp_path / "r" / "worklist.xlsx")["Summary"]
    assert any("30 days before" in str(c.value) for row in summary.iter_rows() for c in row)

