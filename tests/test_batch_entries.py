"""Batch: every entry of FOLDER shows in summary.csv, --previous and --out are checked
before any practice is (functional tests through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from golden_files import MONTH_1, MONTH_2, generate, run


@pytest.fixture(scope="module")
def practice(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("batch-entries") / "M91001", seed=21, patients=60)


@pytest.fixture
def folder(tmp_path, practice) -> Path:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "M91001").symlink_to(practice, target_is_directory=True)
    return exports


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False).set_index("practice")


def test_entries_that_are_not_practice_folders_are_failed_practices(folder, tmp_path):
    """An unmounted share's link, a link loop and a file dropped in FOLDER were skipped
    without a word ("Checked 1 of 1", exit 0): each is now a failed row (exit 7)."""
    (folder / "M91002").symlink_to(tmp_path / "share-not-mounted" / "M91002")
    (folder / "M91003").symlink_to("M91003")
    (folder / "M91004.csv").write_text("patient_id,surname\nP1,Secretname\n")
    out = tmp_path / "out"
    result = run("batch", folder, "--out", out, "--as-of", MONTH_1, "--quiet")
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output and "Checked 1 of 4" in result.output
    summary = _summary(out)
    assert summary.loc["M91001", "status"] == "ok"
    for name, why in (("M91002", "a link to a folder that cannot be reached"),
                      ("M91003", "a symbolic link that leads back to itself"),
                      ("M91004.csv", "a file, not a practice's export folder")):
        assert summary.loc[name, "status"] == "failed" and summary.loc[name, "exit_code"] == "3"
        assert why in summary.loc[name, "error"] and "HINT" in summary.loc[name, "error"]
        assert not (out / name).exists()
    assert "Secretname" not in (out / "summary.csv").read_text()
    assert json.loads((out / "batch.json").read_text())["failed"] == ["M91002", "M91003", "M91004.csv"]


def test_files_that_hold_no_export_are_left_alone(folder, tmp_path):
    """Files Windows or an office program make beside the practice folders, and a list of
    practices, are no exports: they made the batch exit 7 every month, and a name with a
    space ("Practice list.xlsx", "~$summary.xlsx") stopped it before any practice."""
    for name in ("Thumbs.db", "desktop.ini", "~$summary.xlsx", "Practice list.xlsx", "notes.txt"):
        (folder / name).write_text("x")
    out = tmp_path / "out"
    result = run("batch", folder, "--out", out, "--as-of", MONTH_1, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Checked 1 of 1" in result.output and list(_summary(out).index) == ["M91001"]


@pytest.mark.parametrize("inside", ["results", "."])
def test_out_inside_the_exports_folder_is_refused(folder, inside):
    """Next month's batch would check it as a practice."""
    result = run("batch", folder, "--out", folder / inside, "--as-of", MONTH_1, "--quiet")
    assert result.exit_code == 5, result.output
    assert "lies inside" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["M91001"]


def test_previous_that_is_not_an_earlier_batch_is_exit_3_before_any_practice(folder, tmp_path):
    nov = tmp_path / "nov"
    assert run("batch", folder, "--out", nov, "--as-of", MONTH_1, "--quiet").exit_code == 0
    cases = {tmp_path / "nvo": "not found or not a folder",  # misspelt
             nov / "M91001": "is one practice's report, not a batch's folder",
             tmp_path: "holds no batch.json"}
    for previous, why in cases.items():
        result = run("batch", folder, "--out", tmp_path / "dec", "--as-of", MONTH_2, "--previous", previous,
                     "--quiet")
        assert result.exit_code == 3, result.output
        assert why in result.output and "Traceback" not in result.output
        assert not (tmp_path / "dec").exists()  # refused before any practice was checked
    later = run("batch", folder, "--out", tmp_path / "oct", "--as-of", "2026-10-01", "--previous", nov, "--quiet")
    assert later.exit_code == 3 and "after this run's as-of date" in later.output
    assert not (tmp_path / "oct").exists()


def test_a_practice_new_this_month_is_checked_without_comparison(folder, tmp_path, practice):
    nov = tmp_path / "nov"
    assert run("batch", folder, "--out", nov, "--as-of", MONTH_1, "--quiet").exit_code == 0
    (folder / "M91009").symlink_to(practice, target_is_directory=True)
    dec = tmp_path / "dec"
    result = run("batch", folder, "--out", dec, "--as-of", MONTH_2, "--previous", nov, "--quiet")
    assert result.exit_code == 0, result.output
    new = pd.read_csv(dec / "M91009" / "flags.csv", dtype=str, keep_default_na=False)
    assert set(new["status"]) <= {"not compared"}
    old = pd.read_csv(dec / "M91001" / "flags.csv", dtype=str, keep_default_na=False)
    assert "open" in set(old["status"])
