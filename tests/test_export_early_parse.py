"""perf-early: the command line has a canonical export's files mapped, checked and parsed by
Arrow on a thread while it imports the check (``_read_ahead``); the reader takes those results
(``_export._read_file``) only when the file is still the one read, and otherwise reads it
itself. Whatever happens ahead, the export read is the same."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import family_link._export as export_module
from family_link import _read_ahead
from family_link._export import _read_export_file, load_export
from family_link.cli import main
from family_link.errors import ExportError

AS_OF = date(2026, 11, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"


@pytest.fixture(autouse=True)
def _nothing_left_ahead():
    _read_ahead.discard()
    yield
    _read_ahead.discard()


def _read_ahead_and_wait(folder: Path) -> None:
    """``_read_ahead.start(folder)``, returning once every file is read ahead (so the reader
    takes each rather than reading it itself)."""
    _read_ahead.start(folder)
    for future in list(_read_ahead._pending.values()):
        future.result(timeout=60)


def _outcome(folder: Path):
    try:
        export = load_export(folder, AS_OF)
    except ExportError as exc:
        return "error", [(p.file, p.message, p.row, p.hint) for p in exc.problems]
    return "ok", export


def _assert_same(a, b) -> None:
    assert a[0] == b[0]
    if a[0] == "error":
        assert a[1] == b[1]
        return
    x, y = a[1], b[1]
    for name in ("patients", "events", "relationships", "rejected", "warnings"):
        pd.testing.assert_frame_equal(getattr(x, name), getattr(y, name), check_exact=True)
    assert x.files == y.files  # names, sha256, encodings and row counts


def _opened(monkeypatch) -> list[Path]:
    """The files the reader opens itself from now on."""
    opened: list[Path] = []
    real = export_module._file_contents
    monkeypatch.setattr(export_module, "_file_contents", lambda p: opened.append(Path(p).name) or real(p))
    return opened


def _export(tmp_path: Path, **files: bytes) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    for name, data in files.items():
        (folder / f"{name}.csv").write_bytes(data)
    return folder


def test_the_files_read_ahead_are_taken_and_the_export_is_the_same(tmp_path, monkeypatch):
    folder = _export(tmp_path)
    expected = _outcome(folder)
    opened = _opened(monkeypatch)
    _read_ahead_and_wait(folder)
    assert len(_read_ahead._pending) == 3
    _assert_same(_outcome(folder), expected)
    assert opened == []  # every file came from the read ahead
    assert _read_ahead._pending == {}


@pytest.mark.parametrize("files", [
    {"patients": b"\xef\xbb\xbfpatient_id,nhs_number,surname,forenames,date_of_birth,sex,postcode\n"
                 b"P1,9434765919,Smith,Ann,01/02/2001,F,SW1A 1AA\n"},  # byte order mark
    {"patients": "patient_id,surname,forenames,date_of_birth,sex,postcode\nP1,Müller,Zoë,01/02/2001,F,X\n"
                 .encode("latin-1")},  # not UTF-8: decoded, no Arrow ahead
    {"events": b"patient_id,date,code\nP1,2020-01-01,123\nP1,2020-01-01,123,extra\n"},  # a wide row
    {"events": b"patient_id;date;code\nP1;2020-01-01;123\n"},  # semicolons
    {"relationships": b"patient_id,patient_id,relationship\nP1,P2,mother\n"},  # a repeated header
    {"relationships": b""},  # empty
])
def test_whatever_the_files_hold_the_export_read_ahead_is_the_same(tmp_path, monkeypatch, files):
    folder = _export(tmp_path, **files)
    expected = _outcome(folder)
    opened = _opened(monkeypatch)
    _read_ahead_and_wait(folder)
    _assert_same(_outcome(folder), expected)
    assert opened == []


@pytest.mark.parametrize("size", [10, 3 << 20])  # read, or mapped
def test_first_steps_taken_ahead_give_the_same_frame(tmp_path, size):
    line = "P1, Ann ,Smith\n"
    path = tmp_path / "f.csv"
    path.write_bytes(("patient_id,forenames,surname\n" + line * max(1, size // len(line))).encode())
    _read_ahead.start(tmp_path)  # no patients.csv: nothing read ahead
    assert _read_ahead._pending == {}
    raw, _ = _read_ahead.open_contents(path)
    steps = _read_ahead.first_steps(raw)
    assert steps.arrow and steps.table is not None
    for strip in (True, False):
        frame, encoding = _read_export_file(raw, "f.csv", strip, steps)
        expected, expected_encoding = _read_export_file(path.read_bytes(), "f.csv", strip)
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
        assert encoding == expected_encoding == "utf-8"


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path, monkeypatch):
    folder = _export(tmp_path)
    _read_ahead_and_wait(folder)
    patients = folder / "patients.csv"
    text = patients.read_text(encoding="utf-8")
    head, first, rest = text.split("\n", 2)
    patients.write_text(f"{head}\n{rest}", encoding="utf-8")  # the first patient gone
    stat = patients.stat()
    os.utime(patients, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # even on a coarse clock
    opened = _opened(monkeypatch)
    changed = _outcome(folder)
    assert opened == ["patients.csv"]  # read again; the others taken
    _read_ahead.discard()
    _assert_same(changed, _outcome(folder))
    assert changed[1].files[0].rows_read == load_export(SAMPLE, AS_OF).files[0].rows_read - 1


def test_a_file_replaced_after_it_was_read_ahead_is_read_again(tmp_path, monkeypatch):
    folder = _export(tmp_path)
    expected = _outcome(folder)
    _read_ahead_and_wait(folder)
    events = folder / "events.csv"
    replacement = folder / "events.new"
    shutil.copy2(events, replacement)  # same size and times, another file
    os.replace(replacement, events)
    opened = _opened(monkeypatch)
    _assert_same(_outcome(folder), expected)
    assert opened == ["events.csv"]


@pytest.mark.parametrize("failing", ["open_contents", "first_steps"])
def test_a_read_ahead_that_failed_is_ignored(tmp_path, monkeypatch, failing):
    folder = _export(tmp_path)
    expected = _outcome(folder)

    def fail(*args, **kwargs):
        raise MemoryError("ahead")

    monkeypatch.setattr(_read_ahead, failing, fail)
    _read_ahead_and_wait(folder)
    monkeypatch.undo()
    opened = _opened(monkeypatch)
    _assert_same(_outcome(folder), expected)
    assert sorted(opened) == ["events.csv", "patients.csv", "relationships.csv"]


def test_a_file_replaced_after_it_was_read_ahead_by_one_the_reader_refuses_gives_its_problem(tmp_path,
                                                                                           monkeypatch):
    folder = _export(tmp_path)
    _read_ahead_and_wait(folder)
    # Read ahead as it was; replaced since by a file with a row wider than its header.
    bad = folder / "patients.new"
    bad.write_bytes(b"patient_id,surname,forenames,date_of_birth,sex,postcode\nP1,Smith,Ann,01/02/2001,F,X,extra\n")
    os.replace(bad, folder / "patients.csv")
    opened = _opened(monkeypatch)
    read_ahead = _outcome(folder)
    assert read_ahead[0] == "error"  # the new file's problem, not the old file's export
    assert opened == ["patients.csv"]  # read again by the reader
    _assert_same(read_ahead, _outcome(folder))


def test_discard_forgets_what_was_not_taken_and_closes_its_mappings(tmp_path, monkeypatch):
    monkeypatch.setattr(_read_ahead, "MAP_FROM", 0)  # every file mapped
    folder = _export(tmp_path)
    _read_ahead_and_wait(folder)
    aheads = [f.result() for f in _read_ahead._pending.values()]
    assert all(not a.raw.closed for a in aheads)
    _read_ahead.discard()
    assert _read_ahead._pending == {}
    assert all(a.raw.closed for a in aheads)


def test_the_command_line_reads_a_canonical_export_ahead_only(tmp_path, monkeypatch):
    started: list[Path] = []
    monkeypatch.setattr(_read_ahead, "start", lambda folder: started.append(Path(folder)))
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["check", str(SAMPLE), "--out", str(out), "--as-of", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert started == [SAMPLE]
    result = runner.invoke(main, ["check", str(SAMPLE), "--out", str(out), "--as-of", "2026-11-01", "--force",
                                  "--format", "emis"])
    assert started == [SAMPLE]  # not for another layout
    assert _read_ahead._pending == {}


def test_the_command_lines_report_is_the_same_with_files_read_ahead(tmp_path, monkeypatch):
    runner = CliRunner()
    args = ["--as-of", "2026-11-01"]
    assert runner.invoke(main, ["check", str(SAMPLE), "--out", str(tmp_path / "ahead"), *args]).exit_code == 0
    monkeypatch.setattr(_read_ahead, "start", lambda folder: None)
    assert runner.invoke(main, ["check", str(SAMPLE), "--out", str(tmp_path / "not"), *args]).exit_code == 0
    for name in ("flags.csv", "households.csv", "rejected.csv", "warnings.csv", "worklist.csv"):
        assert (tmp_path / "ahead" / name).read_bytes() == (tmp_path / "not" / name).read_bytes(), name
