"""A file with many rows rejected is named to the lead, with its commonest reason, on the
command line and at the top of the worklist (hazard H08): the run still completes (exit 0)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from family_link._export import (EVENT_AFTER_AS_OF, HEAVY_REJECTION_ROWS, HEAVY_REJECTION_SHARE, Export, HeavyRejection,
                                 InputFile, heavy_rejections)
from family_link.layouts import load_any_export
from golden_files import generate, run

AS_OF = "2026-11-01"
PATIENTS = """patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode
P1,,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT
P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,ws28qt
"""


def export_with(files: list[tuple[str, int, int]], rejected: list[tuple[str, str, str]],
                inputs: list[str] | None = None) -> Export:
    """An Export holding only what ``heavy_rejections`` reads: the inputs' counts (name,
    read, rejected), rejected.csv's rows (file, column, reason) and, for a one-file layout,
    each rejected row's input."""
    issues = pd.DataFrame([(f, i + 2, c, "x", r) for i, (f, c, r) in enumerate(rejected)],
                          columns=["file", "row", "column", "value", "reason"])
    empty = pd.DataFrame()
    return Export(empty, empty, empty, issues, issues.iloc[:0],
                  tuple(InputFile(name, "", "utf-8", read, read - bad, bad) for name, read, bad in files),
                  rejected_inputs=None if inputs is None else pd.Series(inputs))


def test_a_file_is_named_only_above_the_share_and_the_least_number_of_rows():
    at_share = int(1000 * HEAVY_REJECTION_SHARE)
    assert at_share >= HEAVY_REJECTION_ROWS  # else the share would not be what decides below
    few = HEAVY_REJECTION_ROWS - 1  # more than the share of relationships.csv, but few rows
    export = export_with([("patients.csv", 1000, at_share), ("events.csv", 1000, at_share + 1),
                          ("relationships.csv", few, few)],
                         [("patients.csv", "date_of_birth", "bad date")] * at_share
                         + [("events.csv", "date", "bad date")] * (at_share + 1)
                         + [("relationships.csv", "relationship", "empty")] * few)
    assert [h.file for h in heavy_rejections(export)] == ["events.csv"]


def test_the_commonest_reason_is_given_ties_by_column_then_reason():
    rows = ([("events.csv", "date", "z reason")] * 3 + [("events.csv", "code", "b reason")] * 3
            + [("events.csv", "code", "a reason")] * 3 + [("events.csv", "patient_id", "common elsewhere")]
            + [("patients.csv", "date_of_birth", "not this file")] * 9)
    (heavy,) = heavy_rejections(export_with([("events.csv", 20, 10), ("patients.csv", 900, 9)], rows))
    assert heavy == HeavyRejection("events.csv", 20, 10, "code", "a reason", 3)


def test_events_dated_after_the_as_of_date_are_not_a_fault():
    rows = [("events.csv", "date", EVENT_AFTER_AS_OF)] * 50 + [("events.csv", "code", "code is empty")] * 12
    (heavy,) = heavy_rejections(export_with([("events.csv", 1000, 62)], rows))
    assert (heavy.rows_rejected, heavy.on_purpose, heavy.reason) == (12, 50, "code is empty")
    assert heavy_rejections(export_with([("events.csv", 1000, 50)], rows[:50])) == ()


def test_each_part_of_a_one_file_layout_takes_the_reasons_of_its_own_rows():
    rows = ([("report.csv", "date_of_birth", "date of birth is not a date")] * 20
            + [("report.csv", "patient_id", "this patient's row was rejected")] * 60
            + [("report.csv", "date", "event date is not a date")] * 30)
    inputs = ["report.csv (patients)"] * 20 + ["report.csv (events)"] * 90
    patients, events = heavy_rejections(export_with([("report.csv (patients)", 100, 20),
                                                     ("report.csv (events)", 500, 90)], rows, inputs))
    assert (patients.file, patients.rows_rejected, patients.column, patients.reason_rows) == \
        ("report.csv (patients)", 20, "date_of_birth", 20)
    assert (events.file, events.rows_rejected, events.column, events.reason_rows) == \
        ("report.csv (events)", 90, "patient_id", 60)


@pytest.mark.parametrize("heavy, expected", [
    (HeavyRejection("events.csv", 12_345, 6_172, "date", "event date is not a date", 6_000),
     '6,172 of 12,345 rows of events.csv (49%) were rejected, most often in column date: '
     '"event date is not a date" (6,000 rows). Alerts resting on those rows are missing from this '
     "list: read rejected.csv and correct what it names before relying on the list."),
    (HeavyRejection("patients.csv", 1_000, 999, "sex", "sex is empty", 1, on_purpose=1),
     '999 of 1,000 rows of patients.csv (99%) were rejected (not counting 1 row left out on purpose: events '
     'after the as-of date, or repeated rows holding no event), most often in column sex: "sex is empty" '
     "(1 row). Alerts resting on those rows are missing from this list: read rejected.csv and correct "
     "what it names before relying on the list."),
    (HeavyRejection("patients.csv", 10_000, 101, "sex", "sex is empty", 101),
     '101 of 10,000 rows of patients.csv (1.0%) were rejected, most often in column sex: "sex is empty" '
     "(101 rows). Alerts resting on those rows are missing from this list: read rejected.csv and correct what it "
     "names before relying on the list."),
])
def test_the_sentence(heavy, expected):
    assert heavy.sentence() == expected


EVENTS_HEADER = "patient_id,code,term,date\n"
GOOD_EVENT = "P1,342191000000101,Subject to child protection plan,2026-03-02\n"
BAD_EVENT = "P2,700410005,Routine enquiry about domestic abuse,2026-13-45\n"


def test_half_the_event_dates_unreadable_warns_on_the_command_line_and_in_the_worklist(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (export / "events.csv").write_text(EVENTS_HEADER + (GOOD_EVENT + BAD_EVENT) * HEAVY_REJECTION_ROWS,
                                       encoding="utf-8")
    out = tmp_path / "report"
    result = run("check", export, "--out", out, "--as-of", AS_OF)
    assert result.exit_code == 0
    n = HEAVY_REJECTION_ROWS
    sentence = (f"{n} of {2 * n} rows of events.csv (50%) were rejected, most often in column date: "
                f'"event date is not a date in YYYY-MM-DD or DD/MM/YYYY form" ({n} rows).')
    assert f"Warning: {sentence}" in result.stderr
    assert sentence.replace('"', "&quot;") in (out / "worklist.html").read_text(encoding="utf-8")
    with zipfile.ZipFile(io.BytesIO((out / "worklist.xlsx").read_bytes())) as xlsx:
        sheets = "".join(xlsx.read(n).decode("utf-8") for n in xlsx.namelist() if n.startswith("xl/"))
    assert sentence in sheets.replace("&quot;", '"')


def emis_report(folder: Path, *, spoil_dob_every: int = 0, repeat_every: int = 0) -> tuple[Path, int]:
    """A generated EMIS Web list report of 200 patients, with the date of birth of every
    ``spoil_dob_every``-th patient made impossible and every ``repeat_every``-th patient's row
    repeated with no event (a repeat the layout rejects, losing nothing). Returns the
    report and how many dates of birth were spoiled."""
    (report,) = generate(folder, patients=200, as_of=AS_OF, layout="emis").glob("*.csv")
    lines = report.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith('"EMIS Number"'))
    header = next(csv.reader([lines[at]]))
    dob, code = header.index("Date of Birth"), header.index("Code")
    body, spoiled = [], 0
    for row in csv.reader(lines[at + 1:]):
        number = int(row[0].lstrip("P")) if row[0] else 0
        if row[dob] and spoil_dob_every and number % spoil_dob_every == 0:
            row[dob], spoiled = "31/02/1990", spoiled + 1
        body.append(row)
        if row[0] and repeat_every and number % repeat_every == 0:
            body.append(row[:code] + [""] * (len(row) - code))
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(body)
    report.write_text("".join(lines[:at + 1]) + out.getvalue(), encoding="utf-8")
    return report, spoiled


def test_every_layout_tags_each_rejected_row_with_its_own_input(tmp_path):
    # rejected_inputs names, for every rejected row, the input it counts against: the
    # patients and events of a one-file layout, the rows the layout itself rejects included.
    exports = [emis_report(tmp_path / "emis", spoil_dob_every=5, repeat_every=7)[0].parent]
    exports += [generate(tmp_path / layout, patients=200, as_of=AS_OF, layout=layout)
                for layout in ("emis-pseudonymised", "systmone-sre", "systmone-cr")]
    for folder in exports:
        export = load_any_export(folder, date.fromisoformat(AS_OF))
        inputs = export.rejected_inputs if export.rejected_inputs is not None else export.rejected["file"]
        assert len(inputs) == len(export.rejected)
        counted = pd.Series(list(inputs)).value_counts()
        assert {f.name: int(counted.get(f.name, 0)) for f in export.files} == \
            {f.name: f.rows_rejected for f in export.files}, folder.name


def test_repeated_rows_holding_no_event_are_no_fault(tmp_path):
    emis_report(tmp_path / "gen", repeat_every=5)
    result = run("check", tmp_path / "gen", "--out", tmp_path / "r", "--as-of", AS_OF)
    assert result.exit_code == 0
    assert "repeats an earlier row" in (tmp_path / "r" / "rejected.csv").read_text(encoding="utf-8")
    assert "Warning:" not in result.stderr


def test_an_emis_report_names_the_part_and_the_fault_of_its_own_rows(tmp_path):
    report, spoiled = emis_report(tmp_path / "gen", spoil_dob_every=5)
    result = run("check", tmp_path / "gen", "--out", tmp_path / "r", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    patients_warning = next(line for line in result.stderr.splitlines() if "(patients)" in line)
    assert f"{spoiled} of 200 rows of {report.name} (patients)" in patients_warning
    assert "most often in column date_of_birth:" in patients_warning
    assert f"({spoiled} rows)" in patients_warning


def test_a_clean_export_gives_no_such_warning(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (export / "events.csv").write_text(
        "patient_id,code,term,date\nP1,342191000000101,Subject to child protection plan,2026-03-02\n",
        encoding="utf-8")
    out = tmp_path / "report"
    result = run("check", export, "--out", out, "--as-of", AS_OF)
    assert result.exit_code == 0
    assert "were rejected" not in result.stderr
    assert "were rejected" not in (out / "worklist.html").read_text(encoding="utf-8")


def test_batch_names_the_practice_whose_file_had_many_rows_rejected(tmp_path):
    folder = tmp_path / "exports"
    generate(folder / "M91001", seed=21, patients=300)
    generate(folder / "M91002", seed=22, patients=300)
    events = folder / "M91002" / "events.csv"
    frame = pd.read_csv(events, dtype=str, keep_default_na=False)
    frame.loc[frame.index % 2 == 0, "date"] = "2026-13-45"  # half the dates unreadable
    frame.to_csv(events, index=False)
    out = tmp_path / "out"
    result = run("batch", folder, "--out", out, "--as-of", AS_OF, "--quiet")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False).set_index("practice")
    assert summary.loc["M91001", "warning"] == ""
    warning = summary.loc["M91002", "warning"]
    broken = int((frame.index % 2 == 0).sum())  # the generator dates a few more after the as-of date
    assert warning.startswith(f"{broken:,} of {len(frame):,} rows of events.csv (50%) were rejected (not counting ")
    assert warning.endswith(" left out on purpose: events after the as-of date, or repeated rows holding no "
                            "event), most often in column date: \"event date is not a date "
                            f"in YYYY-MM-DD or DD/MM/YYYY form\" ({broken:,} rows).")
    assert f"Warning: M91002: {warning} See its rejected.csv." in result.stderr
    assert "M91001:" not in result.stderr
