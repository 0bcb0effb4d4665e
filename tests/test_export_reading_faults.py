"""Faults in how export files are read (found by a bug hunt): values echoed in messages,
rows swallowed by a stray quote, files that are there but cannot be read, an export with no
events. Each test runs ``family-link check`` (or ``batch``) on tiny inline files, as the
user would meet the fault. Synthetic values only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from golden_files import run

AS_OF = "2026-11-01"

# A patient's values: none may ever reach a message.
SECRET = ["P000001", "9584549383", "Sean", "Parker", "02 Sep 1964", "Greenfield", "WS2 3QH",
          "Persistent delusional"]

SRE = {
    "SRPatient.csv": "RowIdentifier,IDOrganisation,NHSNumber,FirstName,MiddleNames,Surname,DateBirth,Gender\n"
                     "P000001,99999,9584549383,Sean,,Parker,02 Sep 1964 00:00:00,M\n"
                     "P000002,99999,9735630737,Sophie,,Williams,17 Dec 1969 00:00:00,F\n",
    "SRPatientAddressHistory.csv": "IDPatient,AddressType,DateEvent,DateTo,NameOfBuilding,NumberOfBuilding,"
                                   "NameOfRoad,NameOfLocality,NameOfTown,NameOfCounty,FullPostCode\n"
                                   "P000001,Permanent,02 Sep 1964 00:00:00,,,5,Greenfield Road,,Walsall,,WS2 3QH\n"
                                   "P000002,Permanent,17 Dec 1969 00:00:00,,,5,Greenfield Road,,Walsall,,WS2 3QH\n",
    "SRCode.csv": "RowIdentifier,IDPatient,DateEvent,CTV3Code,CTV3Text,SNOMEDCode,SNOMEDText\n"
                  "1,P000001,24 Sep 2012 14:53:28,,,231487004,Persistent delusional disorder\n"
                  "2,P000002,18 Apr 2013 14:53:28,,,700410005,Routine enquiry about domestic abuse\n",
    "SRPatientRelationship.csv": "IDPatient,IDPatientRelationshipWith,RelationshipType,"
                                 "HasParentalResponsibility,DateEnded\n"
                                 "P000002,P000001,Partner,FALSE,\n",
}

CANONICAL = {
    "patients.csv": "patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,postcode\n"
                    "P000001,,Parker,Sean,1964-09-02,M,5 Greenfield Road,WS2 3QH\n"
                    "P000002,,Williams,Sophie,1969-12-17,F,5 Greenfield Road,WS2 3QH\n"
                    "P000003,,Williams,Amy,2015-01-02,F,5 Greenfield Road,WS2 3QH\n",
    "events.csv": "patient_id,code,term,date\n"
                  "P000001,231487004,Persistent delusional disorder,2012-09-24\n"
                  "P000002,700410005,Routine enquiry about domestic abuse,2013-04-18\n",
    "relationships.csv": "patient_id,related_patient_id,relationship\n"
                         "P000003,P000002,mother\n",
}


def write(folder: Path, files: dict[str, str], **changes: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**files, **changes}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def check(export: Path, out: Path, *extra: object):
    return run("check", export, "--out", out, "--as-of", AS_OF, *extra)


def refused(result, *phrases: str) -> str:
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "HINT" in result.output
    for phrase in phrases:
        assert phrase in result.output, (phrase, result.output)
    return result.output


def no_values(text: str) -> None:
    assert not [s for s in SECRET if s in text], text


def without_header(text: str) -> str:
    return text.split("\n", 1)[1]


# --- 1. a file without its header row: row 1 (a patient) is never echoed -------------------


@pytest.mark.parametrize("name", list(SRE))
def test_sre_file_without_its_header_row_is_refused_without_echoing_row_1(tmp_path, name):
    export = write(tmp_path / "sre", SRE, **{name: without_header(SRE[name])})
    out = refused(check(export, tmp_path / "out"), name, "row 1", "none of the", "is a known column name",
                  "may lack its header row")
    no_values(out)


def test_batch_summary_holds_no_value_of_a_headerless_sre_file(tmp_path):
    write(tmp_path / "in" / "practiceA", SRE, **{"SRPatient.csv": without_header(SRE["SRPatient.csv"])})
    result = run("batch", tmp_path / "in", "--out", tmp_path / "out", "--as-of", AS_OF, "--quiet")
    assert result.exit_code == 7, result.output
    summary = (tmp_path / "out" / "summary.csv").read_text(encoding="utf-8")
    assert "known column name" in summary
    no_values(summary)


def test_sre_header_missing_a_column_still_lists_the_columns_found(tmp_path):
    # Row 1 holds known names, so it is a header: showing it helps and reveals nothing.
    text = SRE["SRPatient.csv"].replace("DateBirth", "BirthDate", 1)
    export = write(tmp_path / "sre", SRE, **{"SRPatient.csv": text})
    refused(check(export, tmp_path / "out"), "missing required column(s): DateBirth",
            "columns found: 'RowIdentifier'", "'BirthDate'")


# --- 5. an SRE header repeated: refused, as in the canonical export -------------------------


def test_sre_column_repeated_is_refused(tmp_path):
    lines = SRE["SRPatient.csv"].splitlines()
    text = "\n".join([lines[0] + ",DateBirth"] + [line + ",01 Jan 2015 00:00:00" for line in lines[1:]]) + "\n"
    export = write(tmp_path / "sre", SRE, **{"SRPatient.csv": text})
    out = refused(check(export, tmp_path / "out"), "SRPatient.csv, row 1: column 'DateBirth' appears more than once",
                  "remove or rename one of them")
    no_values(out)


# --- 2. a stray quote must not swallow the lines after it ------------------------------------


def stray(text: str, line: int, old: str, new: str) -> str:
    lines = text.split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "\n".join(lines)


def test_stray_quote_in_patients_is_refused_naming_where_it_opens_and_closes(tmp_path):
    # A forename typed as "Sean: the quoted cell would run on to the quote on line 4, and
    # the patient on line 3 would be neither used nor rejected.
    patients = stray(CANONICAL["patients.csv"], 2, ",Sean,", ',"Sean,')
    patients = stray(patients, 4, ",Amy,", ',Amy",')
    export = write(tmp_path / "exp", CANONICAL, **{"patients.csv": patients})
    out = refused(check(export, tmp_path / "out"),
                  "patients.csv, row 2: a double quote opened on this row is closed only on line 4, "
                  "so the rows on lines 3 to 4 were read as part of one cell", 'stray double quote (")')
    no_values(out)


@pytest.mark.parametrize("end", ["\n", "\r"])
def test_stray_quote_that_arrow_reads_as_one_wide_cell_is_refused(tmp_path, end):
    # The rows' widths come out right, so the fast reader takes the swallowed line as text.
    # Also with CR alone ending the lines (a Mac spreadsheet's "CSV (Macintosh)"): they were
    # not counted, and the swallowed rows vanished (exit 0).
    events = end.join(["patient_id,code,term,date",
                       'P000001,"231487004,Persistent delusional disorder,2012-09-24',
                       "P000002,700410005,Routine enquiry about domestic abuse,2013-04-18",
                       'P000003,700410005,"Routine enquiry, about domestic abuse",2013-04-18', ""])
    export = write(tmp_path / "exp", CANONICAL, **{"events.csv": events})
    out = refused(check(export, tmp_path / "out"), "events.csv, row 2: a double quote opened on this row is "
                  "closed only on line 4")
    no_values(out)


def test_line_break_inside_a_quoted_cell_is_still_read(tmp_path):
    # Free text may hold a line break (docs/export-format.md): read, and counted as one row.
    events = CANONICAL["events.csv"].replace("Persistent delusional disorder",
                                             '"Persistent delusional disorder,\nsecond line, of, the, term"')
    export = write(tmp_path / "exp", CANONICAL, **{"events.csv": events})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert {f["file"]: f["rows_read"] for f in run_json["inputs"]}["events.csv"] == 2


FREE_TEXT = '"Seen with mum\nDiscussed diet, sleep, school, friends, and behaviour\nPlan review"'


@pytest.mark.parametrize("file, old", [
    ("events.csv", "Persistent delusional disorder"),  # a term of three lines, one with 4 commas
    ("patients.csv", "5 Greenfield Road"),  # an address over three lines
    ("relationships.csv", "mother"),  # 2 commas in a line: a whole row's worth for this file
])
def test_free_text_over_several_lines_with_commas_is_read(tmp_path, file, old):
    # Was refused as a stray quote (exit 3): a line of free text with as many commas as a
    # row was taken for a swallowed row. Read, one row each, as docs/export-format.md says.
    text = CANONICAL[file].replace(old, FREE_TEXT, 1)
    export = write(tmp_path / "exp", CANONICAL, **{file: text})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    rows = {f["file"]: f["rows_read"] for f in run_json["inputs"]}
    assert rows[file] == CANONICAL[file].count("\n") - 1


def test_free_text_whose_last_line_runs_on_into_the_rows_later_cells_is_read(tmp_path):
    # The last line of a multi-line cell goes on with the row's later cells (here a date
    # where the first line has a date): only what stands before the closing quote is
    # compared, or free text is refused as a stray quote (seen in a Clinical Reporting file).
    events = ("patient_id,entered,term,date,code\n"
              'P000001,2012-09-24,"Persistent delusional disorder\nX\r\nY",2012-09-24,231487004\n'
              "P000002,2013-04-18,Routine enquiry about domestic abuse,2013-04-18,700410005\n")
    export = write(tmp_path / "exp", CANONICAL, **{"events.csv": events})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output


def test_short_row_holding_a_quoted_line_break_is_read(tmp_path):
    # Some writers leave out a row's empty last cells: such a row (no postcode) with a
    # two-line address was refused as a stray quote.
    patients = CANONICAL["patients.csv"].replace(",M,5 Greenfield Road,WS2 3QH", ',M,"5 Greenfield Road\nBloxwich"', 1)
    export = write(tmp_path / "exp", CANONICAL, **{"patients.csv": patients})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    households = (tmp_path / "out" / "households.csv").read_text()
    assert households.count("P000001,") == 1  # read, and used


def test_rows_over_several_lines_are_scanned_once_and_blank_lines_at_the_end_not_at_all(tmp_path, monkeypatch):
    from family_link import _export

    scanned, scan = [], _export._rows_spanning_lines
    monkeypatch.setattr(_export, "_rows_spanning_lines", lambda path, rows: scanned.append(path.name) or scan(path, rows))
    export = write(tmp_path / "blank", CANONICAL, **{name: text + "\n\n" for name, text in CANONICAL.items()})
    assert check(export, tmp_path / "out1").exit_code == 0
    assert scanned == []  # a blank line or two at the end is no row spanning lines (was a full rescan)
    events = CANONICAL["events.csv"].replace("Persistent delusional disorder", FREE_TEXT)
    export = write(tmp_path / "multi", CANONICAL, **{"events.csv": events})
    assert check(export, tmp_path / "out2").exit_code == 0
    assert scanned == ["events.csv"]  # once, though two threads ask for the export


@pytest.mark.parametrize("name", ["SRCode.csv", "SRPatientAddressHistory.csv"])
def test_stray_quote_in_an_sre_file_is_refused(tmp_path, name):
    header, first, second, _ = SRE[name].split("\n")
    text = "\n".join([header, '"' + first, second, second.replace("P000002", 'P"000002'), second]) + "\n"
    export = write(tmp_path / "sre", SRE, **{name: text})
    out = refused(check(export, tmp_path / "out"), f"{name}, row 2: a double quote opened on this row is closed "
                  "only on line 4")
    no_values(out)


def test_sre_quote_never_closed_names_its_row_as_the_canonical_reader_does(tmp_path):
    text = SRE["SRPatient.csv"].replace("\nP000002", '\n"P000002')
    export = write(tmp_path / "sre", SRE, **{"SRPatient.csv": text})
    out = refused(check(export, tmp_path / "out"),
                  "SRPatient.csv, row 3: a double quote opened on this row is never closed")
    assert "C error" not in out and "tokenizing" not in out


# --- 3. a file that is there but cannot be read is never taken as absent ---------------------


def break_entry(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "dangling link":
        path.symlink_to(path.parent / "not_mounted" / path.name)
    elif kind == "link loop":
        path.symlink_to(path.name)
    elif kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)


KINDS = {"dangling link": "is a symbolic link to a file that is not there",
         "link loop": "is a symbolic link that leads back to itself", "folder": "is a folder, not a file",
         "pipe": "is not a regular file"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_relationships_file_that_cannot_be_read_is_refused_not_taken_as_absent(tmp_path, kind):
    export = write(tmp_path / "exp", CANONICAL)
    break_entry(export / "relationships.csv", kind)
    refused(check(export, tmp_path / "out"), "relationships.csv: " + KINDS[kind], "remove this entry")


@pytest.mark.parametrize("kind", ["dangling link", "folder"])
def test_patients_file_that_cannot_be_read_is_named(tmp_path, kind):
    export = write(tmp_path / "exp", CANONICAL)
    break_entry(export / "patients.csv", kind)
    refused(check(export, tmp_path / "out"), "patients.csv: " + KINDS[kind])


def test_sre_relationship_file_that_is_a_dangling_link_is_refused(tmp_path):
    export = write(tmp_path / "sre", SRE)
    break_entry(export / "SRPatientRelationship.csv", "dangling link")
    refused(check(export, tmp_path / "out"), "SRPatientRelationship.csv: " + KINDS["dangling link"])


def test_two_names_differing_only_in_case_are_refused(tmp_path):
    export = write(tmp_path / "exp", CANONICAL, **{"Patients.csv": CANONICAL["patients.csv"]})
    if len(list(export.iterdir())) == len(CANONICAL):  # a file system ignoring case: nothing to test
        pytest.skip("this file system does not tell names apart by case")
    refused(check(export, tmp_path / "out"), "holds Patients.csv and patients.csv, names that differ only in case")


def test_a_named_pipe_given_as_the_export_is_refused_not_waited_on(tmp_path):
    import threading

    from family_link.errors import ExportError
    from family_link.layouts import start_any_export

    fifo = tmp_path / "report.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            start_any_export(fifo, __import__("datetime").date(2026, 11, 1))
        except BaseException as exc:  # noqa: BLE001 - looked at below
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)  # daemon: a hang must not hang the suite
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the reader waited on the pipe"
    assert isinstance(outcome[0], ExportError) and "not a regular file" in str(outcome[0])


# --- 4. an export with no event rows at all is run, but the lead is told ---------------------

NO_EVENTS = "holds no event rows: nothing in this export could be flagged"


def test_events_file_with_only_its_header_warns_on_the_command_line_and_in_the_worklist(tmp_path):
    export = write(tmp_path / "exp", CANONICAL, **{"events.csv": "patient_id,code,term,date\n"})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"Warning: events.csv {NO_EVENTS}" in result.output
    assert NO_EVENTS in (tmp_path / "out" / "worklist.html").read_text(encoding="utf-8")


def test_sre_code_file_with_only_its_header_warns(tmp_path):
    export = write(tmp_path / "sre", SRE, **{"SRCode.csv": SRE["SRCode.csv"].split("\n")[0] + "\n"})
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"Warning: SRCode.csv {NO_EVENTS}" in result.output


def test_batch_summary_names_the_practice_with_no_event_rows(tmp_path):
    write(tmp_path / "in" / "practiceA", CANONICAL, **{"events.csv": "patient_id,code,term,date\n"})
    result = run("batch", tmp_path / "in", "--out", tmp_path / "out", "--as-of", AS_OF, "--quiet")
    assert result.exit_code == 0, result.output
    assert NO_EVENTS in (tmp_path / "out" / "summary.csv").read_text(encoding="utf-8")


def test_an_export_with_event_rows_gives_no_such_warning(tmp_path):
    export = write(tmp_path / "exp", CANONICAL)
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0 and NO_EVENTS not in result.output


# --- 6. a file cut short, and an export date that cannot be read -----------------------------

FIX = Path(__file__).resolve().parent / "fixtures" / "layouts"


def test_patients_file_cut_in_its_last_row_is_refused(tmp_path):
    cut = CANONICAL["patients.csv"][:-25]  # no line break after: an interrupted copy
    export = write(tmp_path / "exp", CANONICAL, **{"patients.csv": cut})
    out = refused(check(export, tmp_path / "out"),
                  "patients.csv, row 4: the file ends in the middle of this row (7 of the header's 8 cells)",
                  "cut short")
    no_values(out)


def test_sre_file_cut_in_its_last_row_is_refused(tmp_path):
    export = write(tmp_path / "sre", SRE, **{"SRPatient.csv": SRE["SRPatient.csv"][:-25]})
    refused(check(export, tmp_path / "out"), "SRPatient.csv, row 3: the file ends in the middle of this row")


def test_utf8_file_cut_inside_a_character_is_refused_not_read_as_windows_1252(tmp_path):
    export = write(tmp_path / "exp", CANONICAL)
    text = CANONICAL["patients.csv"].replace("Sophie", "Zoë") + "P000004,,Test,Zoë"
    (export / "patients.csv").write_bytes(text.encode("utf-8")[:-1])  # the last byte of "ë" lost
    refused(check(export, tmp_path / "out"), "patients.csv, row 5: the file ends in the middle of a character",
            "cut short")


def test_windows_1252_file_ending_in_an_accented_letter_is_still_read(tmp_path):
    # All ASCII before the last byte: as good a Windows-1252 file as a cut UTF-8 one.
    export = write(tmp_path / "exp", CANONICAL)
    (export / "patients.csv").write_bytes("patient_id,date_of_birth,surname\nP000001,1964-09-02,Renée"
                                          .encode("cp1252"))
    result = check(export, tmp_path / "out")
    assert result.exit_code == 0, result.output
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [f["encoding"] for f in run_json["inputs"] if f["file"] == "patients.csv"] == ["cp1252"]


@pytest.mark.parametrize("written, read", [("2026-06-01 09:30", "01/06/2026"), ("01/06/2026 09:30", "01/06/2026")])
def test_emis_last_run_is_read_day_first_or_iso(tmp_path, written, read):
    raw = (FIX / "emis_list_report.csv").read_bytes().replace(b"14/10/2026 09:30", written.encode())
    (tmp_path / "r.csv").write_bytes(raw)
    result = check(tmp_path / "r.csv", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"export date: {read}." in result.output and "Warning: the export was run 153 days" in result.output


def test_emis_last_run_that_is_no_date_is_refused_not_taken_as_absent(tmp_path):
    raw = (FIX / "emis_list_report.csv").read_bytes().replace(b"14/10/2026 09:30", b"31/02/2026 09:30")
    (tmp_path / "r.csv").write_bytes(raw)
    refused(check(tmp_path / "r.csv", tmp_path / "out"), "r.csv, row 2: the 'Last Run' line holds no date that can "
            "be read", "dd/mm/yyyy hh:mm")


def test_a_title_mentioning_last_run_is_not_the_last_run_line(tmp_path):
    # Only a line opening with "Last Run" holds the run date: a report titled "... since
    # last run" was refused for holding no date.
    raw = (FIX / "emis_list_report.csv").read_bytes()
    first, rest = raw.split(b"\n", 1)
    raw = b'\xef\xbb\xbf"Children with no family alert since last run of this search"\r\n' + rest
    (tmp_path / "r.csv").write_bytes(raw)
    result = check(tmp_path / "r.csv", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "export date: 14/10/2026." in result.output
