"""perf-read7: the files' sha256 computed on a low-priority thread after each file is
parsed (``_Hashes``), off the path to the patients and relationships."""

from __future__ import annotations

import hashlib
import mmap
import threading
from datetime import date
from pathlib import Path

import pytest

import family_link._export as export_module
from family_link._export import _Hashes, _read_file, load_export, start_export
from family_link.errors import ExportError

AS_OF = date(2026, 11, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"


def _mapped(path: Path) -> mmap.mmap:
    with path.open("rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, (1 << 20) + 3])
def test_hashes_of_bytes_and_of_mapped_files_are_sha256(tmp_path, monkeypatch, size):
    monkeypatch.setattr(export_module, "_HASH_STEP", 1 << 12)  # many steps, some partial
    data = bytes((i * 7 + i // 251) % 256 for i in range(size))
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    hashes = _Hashes()
    as_bytes = hashes.submit(data)
    mapped = _mapped(path) if size else None
    as_map = hashes.submit(mapped) if size else None
    hashes.done()
    assert as_bytes.result() == hashlib.sha256(data).hexdigest()
    if size:
        assert as_map.result() == hashlib.sha256(data).hexdigest()
        assert mapped.closed  # the hash closes the mapping once done


def test_abandoned_hashes_are_not_computed_and_close_their_files(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"x" * 100_000)
    hashes = _Hashes()
    gate = threading.Event()
    blocker = hashes._pool.submit(gate.wait)  # the thread busy until the hashes are abandoned
    mapped = _mapped(path)
    pending = hashes.submit(mapped)
    hashes.abandon()
    gate.set()
    blocker.result()
    assert pending.result() is None
    assert mapped.closed


def test_read_file_hands_its_mapping_to_the_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_MAP_FROM", 0)  # every file mapped
    path = tmp_path / "patients.csv"
    path.write_bytes((SAMPLE / "patients.csv").read_bytes())
    hashes = _Hashes()
    frame, (digest, encoding) = _read_file(path, hashes)
    hashes.done()
    assert encoding == "utf-8" and len(frame) > 0
    assert digest.result() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_file_closes_a_file_it_cannot_read(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_MAP_FROM", 0)
    path = tmp_path / "patients.csv"
    path.write_bytes(b"\xff\xfe" + "a;b\n1;2\n".encode("utf-16-le"))
    opened = []
    real = export_module._file_contents
    monkeypatch.setattr(export_module, "_file_contents", lambda p: opened.append(real(p)) or opened[-1])
    hashes = _Hashes()
    outcome = _read_file(path, hashes)
    hashes.done()
    assert isinstance(outcome, list) and outcome  # its problems
    assert opened and all(raw.closed for raw in opened if isinstance(raw, mmap.mmap))


@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("defer", [False, True])
def test_the_export_records_each_files_sha256(monkeypatch, mapped, defer):
    if mapped:
        monkeypatch.setattr(export_module, "_MAP_FROM", 0)
    export = start_export(SAMPLE, AS_OF, defer_events=defer).export()
    by_name = {f.name: f for f in export.files}
    for name in ("patients.csv", "events.csv", "relationships.csv"):
        assert by_name[name].sha256 == hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest()
        assert by_name[name].encoding == "utf-8"
    assert export.files == load_export(SAMPLE, AS_OF).files


def test_a_missing_relationships_file_has_no_hash(tmp_path):
    for name in ("patients.csv", "events.csv"):
        (tmp_path / name).write_bytes((SAMPLE / name).read_bytes())
    export = start_export(tmp_path, AS_OF, defer_events=True).export()
    rels = [f for f in export.files if f.name == "relationships.csv"][0]
    assert (rels.sha256, rels.encoding) == ("", "")


def test_an_unreadable_export_abandons_its_hashes(tmp_path, monkeypatch):
    (tmp_path / "patients.csv").write_bytes((SAMPLE / "patients.csv").read_bytes())
    made = []
    real = export_module._Hashes

    def spy():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(export_module, "_Hashes", spy)
    with pytest.raises(ExportError):
        start_export(tmp_path, AS_OF)  # no events.csv
    assert made and made[0]._stop.is_set()


EVENTS_PADDED = """patient_id , code,term,date,code_system
 {p1},342191000000101 ,  Subject to child protection plan\t,02/03/2026 , snomedct
{p4}  ,700410005,Routine enquiry about domestic abuse,\u00a02026-02-01,snomedct
P9,700410005,Routine enquiry,2026-02-01,snomedct\u2003
"""


@pytest.mark.parametrize("map_all", [False, True])
def test_padded_events_read_alike_deferred_or_not(tmp_path, monkeypatch, map_all):
    """events.csv is read unstripped and stripped where its values are checked (on the
    background thread when deferred): the same export either way, and as the frames'
    own parse gives it."""
    import pandas as pd

    from family_link._export import parse_export_frames, read_csv_text

    if map_all:
        monkeypatch.setattr(export_module, "_MAP_FROM", 0)
    patients = (SAMPLE / "patients.csv").read_text()
    ids = [line.split(",")[0] for line in patients.splitlines()[1:3]]
    (tmp_path / "patients.csv").write_text(patients)
    (tmp_path / "events.csv").write_text(EVENTS_PADDED.format(p1=ids[0], p4=ids[1]))
    (tmp_path / "relationships.csv").write_bytes((SAMPLE / "relationships.csv").read_bytes())
    deferred = start_export(tmp_path, AS_OF, defer_events=True).export()
    full = load_export(tmp_path, AS_OF)
    frames = parse_export_frames(read_csv_text(patients, "patients.csv"),
                                 read_csv_text(EVENTS_PADDED.format(p1=ids[0], p4=ids[1]), "events.csv"),
                                 read_csv_text((SAMPLE / "relationships.csv").read_text(), "relationships.csv"),
                                 AS_OF)
    assert len(deferred.events) == 2 and set(deferred.events["patient_id"]) == set(ids)
    assert deferred.events["term"].iloc[0] == "Subject to child protection plan"
    for other in (full, frames):
        for name in ("patients", "events", "relationships", "rejected", "warnings"):
            pd.testing.assert_frame_equal(getattr(deferred, name), getattr(other, name), check_exact=True)


def test_no_hashing_thread_is_left_once_the_export_is_read():
    start_export(SAMPLE, AS_OF, defer_events=True).export()
    load_export(SAMPLE, AS_OF)
    assert not [t for t in threading.enumerate() if t.name.startswith("family_link-sha256")]
