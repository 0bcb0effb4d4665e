"""Batch runs over a folder of practice exports (functional tests through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from golden_files import MONTH_1, MONTH_2, assert_golden, generate, run

KEY = "5f0c9a2e7d41b8c3a6e9f2d5b8c1e4a7d0f3b6c9e2a5d8b1c4f7a0e3d6b9c2f5"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("batch")
    folder = base / "exports"
    generate(folder / "M91001", seed=21, patients=300)
    generate(folder / "M91002", seed=22, patients=400)
    bad = folder / "M91003"
    bad.mkdir()
    (bad / "patients.csv").write_text("patient_id,surname,date_of_birth\nP1,Secretname,2014-05-06\n")
    (base / "key").write_text(KEY)
    return folder


def test_batch_carries_on_past_a_bad_export_and_exits_7(exports, tmp_path):
    out = tmp_path / "out"
    result = run("batch", exports, "--out", out, "--as-of", MONTH_1, "--key-file", exports.parent / "key", "--quiet")
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output
    assert "M91003" in result.output and "events.csv" in result.output
    assert "Secretname" not in result.output
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False).set_index("practice")
    assert summary.loc["M91001", "status"] == "ok" and summary.loc["M91001", "exit_code"] == "0"
    assert summary.loc["M91003", "status"] == "failed" and summary.loc["M91003", "exit_code"] == "3"
    assert "events.csv: not found" in summary.loc["M91003", "error"]
    assert "Secretname" not in (out / "summary.csv").read_text()
    assert str(exports) not in summary.loc["M91003", "error"]
    for practice in ("M91001", "M91002"):
        assert (out / practice / "worklist.html").is_file()
        flags = pd.read_csv(out / practice / "flags.csv", dtype=str)
        assert int(summary.loc[practice, "flags"]) == len(flags)
        assert int(summary.loc[practice, "flags_cp-sibling"]) == int((flags.rule_id == "cp-sibling").sum())
    assert not (out / "M91003").exists()
    audit = pd.read_csv(out / "audit" / "audit.csv", dtype=str, keep_default_na=False)
    assert set(audit["practice"]) == {"M91001", "M91002", "All practices"}
    assert "Coverage by practice" in (out / "audit" / "audit.html").read_text()
    assert json.loads((out / "audit" / "audit.json").read_text())["practices_not_included"] == ["M91003"]
    meta = json.loads((out / "batch.json").read_text())
    assert meta["failed"] == ["M91003"]
    assert_golden("batch/summary.csv", out / "summary.csv")
    assert_golden("batch/audit.csv", out / "audit" / "audit.csv")


def test_batch_of_good_exports_exits_0_and_shows_progress(exports, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    for name in ("M91001", "M91002"):
        (good / name).symlink_to(exports / name, target_is_directory=True)
    result = run("batch", good, "--out", tmp_path / "out", "--as-of", MONTH_1)
    assert result.exit_code == 0, result.output
    assert "Checking practices" in result.output
    assert not (tmp_path / "out" / "audit").exists()  # no key, no auditor's report
    quiet = run("batch", good, "--out", tmp_path / "out2", "--as-of", MONTH_1, "--quiet")
    assert quiet.exit_code == 0 and "Checking practices" not in quiet.output
    # next month, compared with this month's batch
    dec = run("batch", good, "--out", tmp_path / "out3", "--as-of", MONTH_2, "--previous", tmp_path / "out",
              "--quiet")
    assert dec.exit_code == 0, dec.output
    flags = pd.read_csv(tmp_path / "out3" / "M91001" / "flags.csv", dtype=str, keep_default_na=False)
    assert set(flags["status"]) <= {"new", "open"} and "open" in set(flags["status"])
    again = run("batch", good, "--out", tmp_path / "out", "--as-of", MONTH_1, "--quiet")
    assert again.exit_code == 5  # replacing a batch needs --force
    assert run("batch", good, "--out", tmp_path / "out", "--as-of", MONTH_1, "--quiet", "--force").exit_code == 0


def test_a_bad_key_stops_the_batch_before_any_export_is_read(exports, tmp_path):
    (tmp_path / "weak").write_text("0" * 64)
    result = run("batch", exports, "--out", tmp_path / "out", "--as-of", MONTH_1, "--key-file", tmp_path / "weak")
    assert result.exit_code == 6, result.output
    assert not (tmp_path / "out").exists()


def test_batch_refuses_an_output_folder_holding_other_files(exports, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run("batch", exports, "--out", out, "--as-of", MONTH_1, "--quiet")
    assert result.exit_code == 5, result.output
    assert (out / "notes.txt").read_text() == "mine"


def test_batch_on_a_folder_without_practices_exits_3(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("batch", tmp_path / "empty", "--out", tmp_path / "out", "--as-of", MONTH_1)
    assert result.exit_code == 3, result.output


def test_a_bug_on_one_export_is_recorded_without_its_message_and_the_batch_goes_on(exports, tmp_path, monkeypatch):
    from family_link import batch as batch_module

    real = batch_module.run_check

    def flaky(export, out, **kw):
        if export.name == "M91001":
            raise RuntimeError("could not parse 'Secretname'")
        return real(export, out, **kw)

    monkeypatch.setattr(batch_module, "run_check", flaky)
    result = batch_module.run_batch(exports, tmp_path / "out", as_of=__import__("datetime").date(2026, 11, 1))
    outcome = {o.practice: o for o in result.outcomes}
    assert outcome["M91001"].exit_code == 1 and "RuntimeError" in outcome["M91001"].error
    assert "Secretname" not in (tmp_path / "out" / "summary.csv").read_text()
    assert outcome["M91002"].status == "ok"


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, but timings.json (run times)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "timings.json"}


def test_batch_with_jobs_writes_the_same_files_as_one_at_a_time(exports, tmp_path):
    """Practices checked two at a time in worker processes (the bad export among them):
    the same reports, summary, batch.json and auditor's report, byte for byte."""
    args = ["--as-of", MONTH_1, "--key-file", exports.parent / "key", "--quiet"]
    one = run("batch", exports, "--out", tmp_path / "one", *args)
    two = run("batch", exports, "--out", tmp_path / "two", *args, "--jobs", "2")
    assert one.exit_code == two.exit_code == 7, two.output
    assert "Traceback" not in two.output and "M91003" in two.output
    files = _files(tmp_path / "two")
    assert "M91001/worklist.html" in files and "audit/audit.csv" in files and "summary.csv" in files
    assert files == _files(tmp_path / "one")
    shown = run("batch", exports, "--out", tmp_path / "three", "--as-of", MONTH_1, "--jobs", "3")
    assert shown.exit_code == 7 and "Checking practices" in shown.output


def test_a_worker_that_dies_fails_only_its_practice_with_what_to_do():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from family_link.batch import _finished

    died = Future()
    died.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    outcome = _finished(died, "M91001")
    assert (outcome.practice, outcome.status, outcome.exit_code) == ("M91001", "failed", 8)  # not a bug (1)
    assert "ended unexpectedly" in outcome.error and "--jobs" in outcome.error
    other = Future()
    other.set_exception(ValueError("not a pool's death"))
    with pytest.raises(ValueError):
        _finished(other, "M91002")  # anything else is a bug of the batch itself, not hidden


def test_an_interrupted_batch_with_jobs_starts_no_practice_still_waiting(exports, tmp_path):
    """Ctrl-C (here: raised from the progress callback as the first practice ends) stops
    the practices queued behind the ones already running, as the one-at-a-time batch does."""
    from datetime import date

    from family_link.batch import run_batch

    many = tmp_path / "many"
    many.mkdir()
    for i in range(8):
        (many / f"P{i}").symlink_to(exports / "M91001", target_is_directory=True)

    def interrupt(name):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(many, tmp_path / "out", as_of=date(2026, 11, 1), progress=interrupt, jobs=2)
    written = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert 1 <= len(written) < 8
