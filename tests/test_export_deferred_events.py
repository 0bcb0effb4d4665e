"""The export read in stages (``start_export(..., defer_events=True)``): ``run_check`` links
households while the events are checked on a background thread. Everything a user sees must
be as when the export was read in full before the linkage: the reports, and each error's
message and exit code, whichever file or stage it comes from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import family_link.check as check_module
from family_link._export import ExportReading, load_export, start_export
from family_link.cli import main
from family_link.errors import ExportError
from family_link.layouts import load_any_export, start_any_export

AS_OF = date(2026, 11, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"

PATIENTS = """patient_id,nhs_number,surname,forenames,date_of_birth,sex,address_line_1,address_line_2,postcode
P1,9434765919,Price,Amy,2014-05-06,F,12 Mill Road,Walsall,WS2 8QT
P2,,Price,Sam,2016-07-08,M,12 Mill Rd,,ws28qt
P3,,Jones,Kerry,1988-01-02,F,12 MILL ROAD,Walsall,WS2 8QT
P4,1234567890,Okafor,Ben,1979-03-04,M,40 Park Lane,,WS1 1AA
P5,,Okafor,Ada,yesterday,F,40 Park Lane,,WS1 1AA
"""
EVENTS = """patient_id,code,term,date,code_system
P1,342191000000101,Subject to child protection plan,02/03/2026,snomedct
P4,700410005,Routine enquiry about domestic abuse,2026-02-01,nonsense
P9,700410005,Routine enquiry about domestic abuse,2026-02-01,snomedct
P5,700410005,Routine enquiry about domestic abuse,2026-02-01,snomedct
P2,700410005,Routine enquiry about domestic abuse,2027-02-01,snomedct
"""
RELATIONSHIPS = """patient_id,related_patient_id,relationship
P2,P3,mother
P2,P2,self
P1,P77,father
"""
MONTH_FIRST_DOBS = PATIENTS.replace("2014-05-06", "05/13/2014").replace("2016-07-08", "07/14/2016") \
    .replace("1988-01-02", "01/22/1988")
MONTH_FIRST_EVENTS = "patient_id,code,date\n" + "".join(
    f"P{i},700410005,0{i}/1{i + 2}/2026\n" for i in range(1, 5))
NO_CODE_EVENTS = "patient_id,term,date\nP1,x,2026-01-01\n"
SEMICOLON_EVENTS = "patient_id;code;date\nP1;700410005;2026-01-01\n"
NO_USABLE_PATIENTS = "patient_id,date_of_birth\nP1,yesterday\n"


def make_export(folder: Path, patients: str = PATIENTS, events: str = EVENTS,
                relationships: str | None = RELATIONSHIPS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(patients, encoding="utf-8")
    (folder / "events.csv").write_text(events, encoding="utf-8")
    if relationships is not None:
        (folder / "relationships.csv").write_text(relationships, encoding="utf-8")
    return folder


def assert_same_export(a, b) -> None:
    for name in ("patients", "events", "relationships", "rejected", "warnings"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.files == b.files
    assert (a.export_date, a.layout) == (b.export_date, b.layout)


@pytest.mark.parametrize("folder", ["inline", "sample"])
def test_a_deferred_read_gives_the_export_a_full_read_gives(tmp_path, folder):
    path = make_export(tmp_path / "e") if folder == "inline" else SAMPLE
    reading = start_export(path, AS_OF, defer_events=True)
    # What the linkage is given are the frames of the finished export.
    export = reading.export()
    assert reading.patients is export.patients and reading.relationships is export.relationships
    assert reading.export() is export
    assert_same_export(export, load_export(path, AS_OF))
    assert_same_export(start_any_export(path, AS_OF, defer_events=True).export(), load_any_export(path, AS_OF))
    if folder == "inline":  # the rows rejected and warned about, from all three files, in their order
        assert export.rejected[["file", "row", "column"]].values.tolist() == [
            ["patients.csv", 6, "date_of_birth"],
            ["events.csv", 5, "patient_id"], ["events.csv", 4, "patient_id"], ["events.csv", 6, "date"],
            ["relationships.csv", 4, "related_patient_id"], ["relationships.csv", 3, "related_patient_id"]]
        assert export.warnings[["file", "row", "column"]].values.tolist() == [
            ["patients.csv", 5, "nhs_number"], ["events.csv", 3, "code_system"]]


def test_a_finished_export_as_a_reading():
    export = load_export(SAMPLE, AS_OF)
    reading = ExportReading.of(export)
    assert reading.export() is export and reading.patients is export.patients


def test_the_events_error_is_raised_by_export_and_again(tmp_path):
    path = make_export(tmp_path / "e", events=MONTH_FIRST_EVENTS)
    with pytest.raises(ExportError) as full:
        load_export(path, AS_OF)
    reading = start_export(path, AS_OF, defer_events=True)  # the patients are fine: no error yet
    assert list(reading.patients["patient_id"]) == ["P1", "P2", "P3", "P4"]
    for _ in range(2):
        with pytest.raises(ExportError) as deferred:
            reading.export()
        assert deferred.value.problems == full.value.problems
    assert "look month first" in str(full.value)


def _cli(tmp_path: Path, export: Path, name: str, *extra: str):
    return CliRunner().invoke(main, ["check", str(export), "--out", str(tmp_path / name), "--as-of",
                                     AS_OF.isoformat(), *extra], catch_exceptions=False)


@pytest.fixture
def full_read(monkeypatch):
    """The CLI as before this change: the export read in full before the linkage."""
    def run_full(*args, **kwargs):
        kwargs["defer_events"] = False
        return start_any_export(*args, **kwargs)
    return lambda: monkeypatch.setattr(check_module, "start_any_export", run_full)


CASES = {
    "events month first": dict(events=MONTH_FIRST_EVENTS),
    "events without a code column": dict(events=NO_CODE_EVENTS),
    "events not comma separated": dict(events=SEMICOLON_EVENTS),
    "patients and events month first": dict(patients=MONTH_FIRST_DOBS, events=MONTH_FIRST_EVENTS),
    "patients month first, events without a code": dict(patients=MONTH_FIRST_DOBS, events=NO_CODE_EVENTS),
    "patients month first, events not comma separated": dict(patients=MONTH_FIRST_DOBS, events=SEMICOLON_EVENTS),
    "no usable patients, events month first": dict(patients=NO_USABLE_PATIENTS, events=MONTH_FIRST_EVENTS),
    "relationships without a column, events month first": dict(
        relationships="patient_id,relationship\nP1,mother\n", events=MONTH_FIRST_EVENTS),
    "relationships not comma separated, events month first": dict(
        relationships="patient_id;related_patient_id;relationship\n", events=MONTH_FIRST_EVENTS),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_errors_as_when_the_events_were_read_first(tmp_path, full_read, case):
    export = make_export(tmp_path / "e", **CASES[case])
    deferred = _cli(tmp_path, export, "r1")
    full_read()
    before = _cli(tmp_path, export, "r2")
    assert before.exit_code == 3, before.output
    assert "Traceback" not in deferred.output
    assert (deferred.exit_code, deferred.output.replace("r1", "r2")) == (before.exit_code, before.output)
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_reports_as_when_the_events_were_read_first(tmp_path, full_read, jobs):
    export = make_export(tmp_path / "e")
    deferred = _cli(tmp_path, export, "r1", "--jobs", jobs)
    full_read()
    before = _cli(tmp_path, export, "r2", "--jobs", jobs)
    assert deferred.exit_code == before.exit_code == 0, deferred.output
    names = sorted(p.name for p in (tmp_path / "r1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "r2").iterdir())
    for name in names:
        if name != "timings.json":  # wall-clock seconds
            assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name


def test_an_events_error_comes_before_a_linkage_crash(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug in the linkage")
    monkeypatch.setattr(check_module, "link_households", crash)
    result = _cli(tmp_path, make_export(tmp_path / "e", events=MONTH_FIRST_EVENTS), "r")
    assert result.exit_code == 3 and "look month first" in result.output and "Traceback" not in result.output
    with pytest.raises(RuntimeError, match="a bug in the linkage"):  # with good events, the bug itself
        _cli(tmp_path, make_export(tmp_path / "ok"), "r")


def test_timings_name_the_read_and_the_linkage(tmp_path):
    import json
    assert _cli(tmp_path, make_export(tmp_path / "e"), "r").exit_code == 0
    seconds = json.loads((tmp_path / "r" / "timings.json").read_text())["seconds"]
    assert {"read_export", "link_households"} <= set(seconds)


def test_the_background_check_runs_at_a_lower_priority_than_the_rest():
    import os
    import sys
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from family_link._export import _in_background

    def own_priority(x):
        return x, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1) as pool:
        value, priority = pool.submit(_in_background, own_priority, 7).result()
    assert value == 7
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before  # this thread untouched
    if sys.platform.startswith("linux"):
        assert priority == min(main_before + 10, 19)
