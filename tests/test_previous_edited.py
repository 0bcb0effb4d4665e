"""A previous report that is not what family_link wrote: saved back from a spreadsheet, or
made after this run's as-of date. Each is read, or refused with exit 3 naming the file,
row and column; never a traceback."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from golden_files import MONTH_1, MONTH_2, run
from test_previous import EVENTS_DEC, EVENTS_NOV, PATIENTS_DEC, PATIENTS_NOV, _export


@pytest.fixture
def november(tmp_path):
    """November's report (three flags) and December's export."""
    nov = _export(tmp_path / "export-nov", PATIENTS_NOV, EVENTS_NOV)
    _export(tmp_path / "export-dec", PATIENTS_DEC, EVENTS_DEC)
    result = run("check", nov, "--out", tmp_path / "report-nov", "--as-of", MONTH_1)
    assert result.exit_code == 0, result.output
    return tmp_path / "report-nov"


def _edit_flags(report: Path, edit) -> None:
    """Rewrite ``flags.csv`` row by row, as a spreadsheet saving it would."""
    with open(report / "flags.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        edit(i, row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    (report / "flags.csv").write_text(out.getvalue(), encoding="utf-8")


def _december(tmp_path, previous: Path, as_of: str = MONTH_2):
    return run("check", tmp_path / "export-dec", "--out", tmp_path / "report-dec", "--as-of", as_of,
               "--previous", previous)


def test_first_flagged_saved_as_uk_dates_is_read_as_the_date(tmp_path, november):
    def uk(_, row):  # 15 October 2026, as a UK spreadsheet writes it back
        row["first_flagged"] = "15/10/2026"
    _edit_flags(november, uk)
    result = _december(tmp_path, november)
    assert result.exit_code == 0, result.output
    flags = pd.read_csv(tmp_path / "report-dec" / "flags.csv", dtype=str, keep_default_na=False)
    assert set(flags.loc[flags["status"] == "open", "first_flagged"]) == {"2026-10-15"}
    resolved = pd.read_csv(tmp_path / "report-dec" / "resolved.csv", dtype=str, keep_default_na=False)
    assert set(resolved["first_flagged"]) == {"2026-10-15"}


@pytest.mark.parametrize("value", ["Oct 2026", "2026-13-01", "31/02/2026", "2026-12-01"])
def test_first_flagged_that_is_not_a_usable_date_is_exit_3_naming_row_and_column(tmp_path, november, value):
    """Not a date, not a real day, or after that report's own as-of date (2026-11-01)."""
    def spoil(i, row):
        if i == 1:
            row["first_flagged"] = value
    _edit_flags(november, spoil)
    result = _december(tmp_path, november)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "flags.csv, row 3, column 'first_flagged'" in result.output and "HINT" in result.output
    assert value not in result.output  # names where, never the cell's value
    assert not (tmp_path / "report-dec").exists()


def test_control_characters_from_a_previous_title_do_not_break_the_xlsx(tmp_path, november):
    """A flag resolved this month carries its title from last month's flags.csv into the
    xlsx's Resolved sheet; XML cannot hold a control character, so it is shown as U+FFFD."""
    def spoil(_, row):
        row["title"] = "Child\x01living\ufffewith"
    _edit_flags(november, spoil)
    result = _december(tmp_path, november)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "report-dec" / "worklist.xlsx") as book:
        text = "".join(book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xml"))
    assert "\x01" not in text and "\ufffe" not in text
    assert "Child&#65533;living&#65533;with" in text or "Child\ufffdliving\ufffdwith" in text


def test_control_characters_in_the_export_do_not_break_the_xlsx(tmp_path):
    """The same for text from the export (the worklist's names)."""
    export = _export(tmp_path / "export", PATIENTS_NOV.replace("Price,Sam", "Pri\x0bce,Sam"), EVENTS_NOV)
    result = run("check", export, "--out", tmp_path / "report", "--as-of", MONTH_1)
    assert result.exit_code == 0, result.output
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "report" / "worklist.xlsx", read_only=True)
    names = [r[0] for r in book["Worklist"].iter_rows(min_row=2, values_only=True)]
    assert names  # the sheet is there and readable


def test_previous_report_of_the_same_date_is_compared(tmp_path, november):
    """Records corrected and checked again the same day: the lead sees what was resolved."""
    result = _december(tmp_path, november, as_of=MONTH_1)
    assert result.exit_code == 0, result.output
    flags = pd.read_csv(tmp_path / "report-dec" / "flags.csv", dtype=str, keep_default_na=False)
    assert set(flags["status"]) <= {"new", "open"} and (flags["status"] == "open").any()


def test_previous_report_made_after_this_run_is_exit_3(tmp_path, november):
    """Folders swapped, or --as-of mistyped: every flag would be open since a date to come."""
    as_of = "2026-10-01"
    result = _december(tmp_path, november, as_of=as_of)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert f"is a report as of {MONTH_1}, after this run's as-of date {as_of}" in result.output
    assert str(november) in result.output and "HINT" in result.output
    assert not (tmp_path / "report-dec").exists()
