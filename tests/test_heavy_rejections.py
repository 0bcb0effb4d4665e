"""A file with many rows rejected is named to the lead, with its commonest reason, on the
command line and at the top of the worklist (hazard H08): the run still completes (exit 0)."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner

from family_link._export import HEAVY_REJECTION_SHARE, Export, HeavyRejection, InputFile, heavy_rejections
from family_link.cli import main

AS_OF = "2026-11-01"
PATIENTS = """patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode
P1,,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT
P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,ws28qt
"""


def export_with(files: list[tuple[str, int, int]], rejected: list[tuple[str, str, str]]) -> Export:
    """An Export holding only what ``heavy_rejections`` reads: the files' counts (name,
    read, rejected) and rejected.csv's rows (file, column, reason)."""
    issues = pd.DataFrame([(f, i + 2, c, "x", r) for i, (f, c, r) in enumerate(rejected)],
                          columns=["file", "row", "column", "value", "reason"])
    empty = pd.DataFrame()
    return Export(empty, empty, empty, issues, issues.iloc[:0],
                  tuple(InputFile(name, "", "utf-8", read, read - bad, bad) for name, read, bad in files))


def test_a_file_is_named_only_above_the_share():
    at_share = int(1000 * HEAVY_REJECTION_SHARE)
    export = export_with([("patients.csv", 1000, at_share), ("events.csv", 1000, at_share + 1)],
                         [("patients.csv", "date_of_birth", "bad date")] * at_share
                         + [("events.csv", "date", "bad date")] * (at_share + 1))
    assert [h.file for h in heavy_rejections(export)] == ["events.csv"]


def test_the_commonest_reason_is_given_ties_by_column_then_reason():
    rows = ([("events.csv", "date", "z reason")] * 3 + [("events.csv", "code", "b reason")] * 3
            + [("events.csv", "code", "a reason")] * 3 + [("events.csv", "patient_id", "common elsewhere")]
            + [("patients.csv", "date_of_birth", "not this file")] * 9)
    (heavy,) = heavy_rejections(export_with([("events.csv", 20, 10), ("patients.csv", 900, 9)], rows))
    assert heavy == HeavyRejection("events.csv", 20, 10, "code", "a reason", 3)


def test_a_one_file_layouts_part_takes_the_reasons_of_its_file():
    rows = [("emis_list_report.csv", "date", "event date is not a date")] * 30
    (heavy,) = heavy_rejections(export_with([("emis_list_report.csv (patients)", 100, 0),
                                             ("emis_list_report.csv (events)", 500, 30)], rows))
    assert (heavy.file, heavy.column, heavy.reason_rows) == ("emis_list_report.csv (events)", "date", 30)


@pytest.mark.parametrize("heavy, expected", [
    (HeavyRejection("events.csv", 12_345, 6_172, "date", "event date is not a date", 6_000),
     "6,172 of 12,345 rows of events.csv (50%) were rejected, most often in column date: "
     "'event date is not a date' (6,000 rows). Alerts resting on those rows are missing from this "
     "list: read rejected.csv and correct what it names before relying on the list."),
    (HeavyRejection("patients.csv", 1_000, 15), "15 of 1,000 rows of patients.csv (1.5%) were rejected. "
     "Alerts resting on those rows are missing from this list: read rejected.csv and correct what it "
     "names before relying on the list."),
])
def test_the_sentence(heavy, expected):
    assert heavy.sentence() == expected


def test_half_the_event_dates_unreadable_warns_on_the_command_line_and_in_the_worklist(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (export / "events.csv").write_text(
        "patient_id,code,term,date\n"
        "P1,342191000000101,Subject to child protection plan,2026-03-02\n"
        "P2,342191000000101,Subject to child protection plan,2026-13-45\n"
        "P2,700410005,Routine enquiry about domestic abuse,32/01/2026\n"
        "P1,700410005,Routine enquiry about domestic abuse,2026-02-01\n", encoding="utf-8")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["check", str(export), "--out", str(out), "--as-of", AS_OF],
                                catch_exceptions=False)
    assert result.exit_code == 0
    sentence = ("2 of 4 rows of events.csv (50%) were rejected, most often in column date: "
                "'event date is not a date in YYYY-MM-DD or DD/MM/YYYY form' (2 rows).")
    assert f"Warning: {sentence}" in result.stderr
    assert sentence.replace("'", "&#x27;") in (out / "worklist.html").read_text(encoding="utf-8")
    with zipfile.ZipFile(io.BytesIO((out / "worklist.xlsx").read_bytes())) as xlsx:
        strings = xlsx.read("xl/sharedStrings.xml").decode("utf-8") if "xl/sharedStrings.xml" in xlsx.namelist() \
            else "".join(xlsx.read(n).decode("utf-8") for n in xlsx.namelist() if n.startswith("xl/worksheets/"))
    assert sentence.replace("'", "&apos;") in strings or sentence in strings


def test_a_clean_export_gives_no_such_warning(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (export / "events.csv").write_text(
        "patient_id,code,term,date\nP1,342191000000101,Subject to child protection plan,2026-03-02\n",
        encoding="utf-8")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["check", str(export), "--out", str(out), "--as-of", AS_OF],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert "were rejected" not in result.stderr
    assert "were rejected" not in (out / "worklist.html").read_text(encoding="utf-8")


def test_batch_names_the_practice_whose_file_had_many_rows_rejected(tmp_path):
    from golden_files import generate

    folder = tmp_path / "exports"
    generate(folder / "M91001", seed=21, patients=300)
    generate(folder / "M91002", seed=22, patients=300)
    events = folder / "M91002" / "events.csv"
    frame = pd.read_csv(events, dtype=str, keep_default_na=False)
    frame.loc[frame.index % 2 == 0, "date"] = "2026-13-45"  # half the dates unreadable
    frame.to_csv(events, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(folder), "--out", str(out), "--as-of", AS_OF, "--quiet"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False).set_index("practice")
    assert summary.loc["M91001", "warning"] == ""
    warning = summary.loc["M91002", "warning"]
    broken = int((frame.index % 2 == 0).sum())  # the generator's own noise rejects a few more rows
    assert f" of {len(frame):,} rows of events.csv (50%) were rejected, most often in column date: 'event date " \
        f"is not a date in YYYY-MM-DD or DD/MM/YYYY form' ({broken:,} rows)." in warning
    assert f"Warning: M91002: {warning} See its rejected.csv." in result.stderr
    assert "M91001:" not in result.stderr
