"""Nothing lost, nothing half-written, nothing left readable, and the same answer every time.

* Every row read is used or rejected (run.json), on a generated practice in every layout.
* A run killed while writing (a real SIGKILL, and ``os._exit`` injected at each step of
  the write in a subprocess) leaves the previous report at its path, byte-identical, and
  never a half report there.
* Every file and folder of a report is readable by its owner only, whatever the umask.
* Running twice, or on inputs whose rows are shuffled, gives byte-identical outputs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from family_link.cli import main
from family_link.generate import generate_practice, write_practice

AS_OF = "2026-11-01"
AS_OF_DATE = date(2026, 11, 1)
# timings.json holds wall-clock seconds: the one documented exception to byte identity.
NOT_DETERMINISTIC = {"timings.json"}


def run(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def practice_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("practice")
    write_practice(generate_practice(800, 11, AS_OF_DATE), folder)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- rows read = rows used + rows rejected -----------------------------------------------------

def test_every_row_is_used_or_rejected_canonical(practice_dir, tmp_path):
    out = tmp_path / "r"
    assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0
    summary = json.loads((out / "run.json").read_text())
    rejected = pd.read_csv(out / "rejected.csv", dtype=str)
    assert {f["file"] for f in summary["inputs"]} == {"patients.csv", "events.csv", "relationships.csv"}
    for f in summary["inputs"]:
        assert f["rows_read"] == f["rows_used"] + f["rows_rejected"], f
        assert f["rows_rejected"] == (rejected["file"] == f["file"]).sum()
        # rows read is the file's own count of data rows, not the parser's
        with open(practice_dir / f["file"], newline="", encoding="utf-8") as fh:
            assert f["rows_read"] == sum(1 for _ in csv.reader(fh)) - 1
    assert summary["inputs"][1]["rows_rejected"] > 0  # the generator dates some events in the future


def _write_layouts():
    from family_link.generate_layouts import WRITE_LAYOUTS

    assert WRITE_LAYOUTS
    return WRITE_LAYOUTS


@pytest.mark.parametrize("layout", _write_layouts())
def test_every_row_is_used_or_rejected_in_every_layout(tmp_path, layout):
    from family_link.generate_layouts import write_practice_as

    write_practice_as(generate_practice(300, 5, AS_OF_DATE), tmp_path / "export", layout)
    out = tmp_path / "r"
    result = run("check", tmp_path / "export", "--out", out, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "run.json").read_text())
    assert summary["inputs"]
    for f in summary["inputs"]:
        assert f["rows_read"] == f["rows_used"] + f["rows_rejected"], (layout, f)


# --- killed mid-write ---------------------------------------------------------------------------

KILL_SCRIPT = r"""
import os, sys
from family_link import report
from family_link.cli import main

where, n = sys.argv[1], int(sys.argv[2])
no_exchange = where == "two-renames"  # as on a system without renameat2
where = "rename" if no_exchange else where
calls = {"fsync": 0, "rename": 0}
real_fsync, real_rename, real_exchange = os.fsync, os.rename, report._exchange

def fsync(fd):
    calls["fsync"] += 1
    if where == "fsync" and calls["fsync"] == n:
        os._exit(137)  # as abrupt as SIGKILL: no cleanup, no finally blocks
    return real_fsync(fd)

def rename(a, b):
    calls["rename"] += 1
    if where == "rename" and calls["rename"] == n:
        os._exit(137)
    return real_rename(a, b)

def exchange(a, b):
    if no_exchange:
        return False
    done = real_exchange(a, b)
    if where == "after-exchange":
        os._exit(137)
    return done

report.os.fsync = fsync
report.os.rename = rename
report._exchange = exchange
sys.argv = ["family-link", *sys.argv[3:]]
main()
"""


def kill_run(where: str, n: int, export: Path, out: Path) -> int:
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, where, str(n), "check", str(export), "--out",
                           str(out), "--as-of", AS_OF, "--force"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


@pytest.fixture()
def previous_report(practice_dir, tmp_path) -> tuple[Path, dict[str, bytes], Path]:
    """A report from last month's export at tmp/r, and this month's export."""
    last_month = tmp_path / "last-month"
    last_month.mkdir()
    for name in ("patients.csv", "events.csv"):
        (last_month / name).write_bytes((practice_dir / name).read_bytes())
    out = tmp_path / "r"
    assert run("check", last_month, "--out", out, "--as-of", "2026-10-01").exit_code == 0
    return out, snapshot(out), practice_dir


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_killed_first_run_leaves_no_report_at_all(practice_dir, tmp_path):
    out = tmp_path / "r"
    for where, n in (("fsync", 3), ("rename", 1)):  # mid-write; at the one rename into place
        assert kill_run(where, n, practice_dir, out) == 137
        assert not out.exists()
    assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0


@pytest.mark.parametrize("where, n", [("fsync", 1), ("fsync", "last")])
def test_killed_before_the_swap_leaves_the_previous_report_byte_identical(previous_report, where, n):
    """Killed while writing the first or the last file (one fsync each)."""
    out, before, export = previous_report
    if n == "last":
        n = len(before)  # the same files, so the same number of fsyncs
    assert kill_run(where, n, export, out) == 137
    assert snapshot(out) == before
    # What the killed run wrote is beside the report, hidden and private: never at its path.
    for partial in leftovers(out):
        assert partial.stat().st_mode & 0o077 == 0
    # The next run completes, replaces the report whole and removes what the killed run left.
    assert run("check", export, "--out", out, "--as-of", AS_OF, "--force").exit_code == 0
    assert json.loads((out / "run.json").read_text())["as_of"] == AS_OF
    assert not leftovers(out)


def test_killed_right_after_the_swap_leaves_the_complete_new_report(previous_report, tmp_path):
    out, before, export = previous_report
    assert kill_run("after-exchange", 0, export, out) == 137
    fresh = tmp_path / "fresh"
    assert run("check", export, "--out", fresh, "--as-of", AS_OF).exit_code == 0
    new, expected = snapshot(out), snapshot(fresh)
    assert new.keys() == expected.keys()
    assert {k: v for k, v in new.items() if k not in NOT_DETERMINISTIC} == \
        {k: v for k, v in expected.items() if k not in NOT_DETERMINISTIC}


def test_killed_between_two_renames_is_repaired_by_the_next_run(previous_report):
    # Where the system cannot swap folders atomically, two renames are used; a kill between
    # them leaves the old report in a hidden folder beside, and the next run puts it back.
    out, before, export = previous_report
    assert kill_run("two-renames", 2, export, out) == 137
    result = run("check", export, "--out", out, "--as-of", AS_OF)  # no --force: must refuse...
    assert result.exit_code == 5 and "already holds a report" in result.output
    assert snapshot(out) == before  # ...after restoring the previous report, byte-identical
    assert not leftovers(out)


def test_sigkill_during_a_real_run_never_leaves_a_half_report(tmp_path):
    """A real SIGKILL, sent the moment the temporary folder appears (a 30,000-patient run
    spends a few hundred milliseconds writing). Whenever the kill lands, the report folder
    holds either the previous report, byte-identical, or the whole new one."""
    export = tmp_path / "export"
    write_practice(generate_practice(30_000, 3, AS_OF_DATE), export)
    small = tmp_path / "small"
    small.mkdir()
    for name in ("patients.csv", "events.csv"):
        lines = (export / name).read_text().splitlines(keepends=True)
        (small / name).write_text("".join(lines[:400]))
    out = tmp_path / "r"
    assert run("check", small, "--out", out, "--as-of", AS_OF).exit_code == 0
    before = snapshot(out)
    assert not leftovers(out)
    proc = subprocess.Popen([sys.executable, "-m", "family_link", "check", str(export), "--out", str(out),
                             "--as-of", AS_OF, "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".r.partial-") for p in tmp_path.iterdir()):
            time.sleep(0.05)  # let it write a few files first
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = snapshot(out)
    if after != before:  # the run finished before the kill landed: then it is the whole new report
        assert json.loads(after["run.json"])["as_of"] == AS_OF
        assert set(after) == set(before)
        assert len(after["households.csv"].splitlines()) == 30_001
    for partial in leftovers(out):
        assert partial.stat().st_mode & 0o077 == 0


# --- private -------------------------------------------------------------------------------------

def test_every_report_file_and_folder_is_owner_only_whatever_the_umask(practice_dir, tmp_path):
    old = os.umask(0)  # the most permissive umask: modes must come from the code, not the umask
    outputs = [tmp_path / "r"]
    try:
        out = tmp_path / "r"
        assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0
        assert run("check", practice_dir, "--out", out, "--as-of", AS_OF, "--force").exit_code == 0
        if "audit" in main.commands:  # the auditor's report, row-level pseudonyms included
            key = tmp_path / "k.key"
            key.write_text(secrets.token_hex(32))
            result = run("audit", out, "--key-file", key, "--out", tmp_path / "audit", "--rows")
            assert result.exit_code == 0, result.output
            outputs.append(tmp_path / "audit")
    finally:
        os.umask(old)
    for folder in outputs:
        paths = [folder, *folder.rglob("*")]
        assert len(paths) > 2
        for p in paths:  # every file, including any a later version adds
            assert p.stat().st_mode & 0o077 == 0, (p.name, oct(p.stat().st_mode))


# --- deterministic ------------------------------------------------------------------------------

def shuffled_copy(src: Path, dst: Path, seed: int) -> None:
    """Copy every CSV with its data rows shuffled (the header stays first)."""
    dst.mkdir()
    rng = random.Random(seed)
    for path in src.glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        body = rows[1:]
        rng.shuffle(body)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([rows[0], *body])
        (dst / path.name).write_text(buf.getvalue(), encoding="utf-8")


def comparable(folder: Path) -> dict[str, object]:
    """The report, with the two things that must follow the input's row order taken out:
    rejected/warnings rows name their row in the file they came from, and run.json holds
    each input file's hash. Those rows are compared as multisets instead."""
    files = {k: v for k, v in snapshot(folder).items() if k not in NOT_DETERMINISTIC}
    for name in ("rejected.csv", "warnings.csv"):
        frame = pd.read_csv(io.BytesIO(files.pop(name)), dtype=str, keep_default_na=False)
        files[name] = sorted(map(tuple, frame.drop(columns="row").values.tolist()))
    summary = json.loads(files.pop("run.json"))
    for f in summary["inputs"]:
        f.pop("sha256")
    files["run.json"] = summary
    return files


def test_running_twice_gives_byte_identical_reports(practice_dir, tmp_path):
    for name in ("a", "b"):
        assert run("check", practice_dir, "--out", tmp_path / name, "--as-of", AS_OF).exit_code == 0
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a.keys() - NOT_DETERMINISTIC:
        assert a[name] == b[name], name


@pytest.mark.parametrize("seed", [1, 2])
def test_shuffled_input_rows_give_the_same_report(practice_dir, tmp_path, seed):
    shuffled_copy(practice_dir, tmp_path / "shuffled", seed)
    assert run("check", practice_dir, "--out", tmp_path / "a", "--as-of", AS_OF).exit_code == 0
    assert run("check", tmp_path / "shuffled", "--out", tmp_path / "b", "--as-of", AS_OF).exit_code == 0
    a, b = comparable(tmp_path / "a"), comparable(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


@pytest.mark.parametrize("failing", ["households.csv", "scope.csv"])
def test_a_write_failing_on_the_report_thread_exits_5_and_keeps_the_previous_report(
        practice_dir, tmp_path, monkeypatch, failing):
    # households.csv and the smaller CSVs are written on a second thread (check.py): its
    # error must still end the run with the output error's message and exit code, and no
    # half report may replace last month's.
    import errno

    from family_link import report

    out = tmp_path / "r"
    assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0
    before = snapshot(out)
    plain_new_file = report.ReportFolder._new_file

    class DiskFull(io.RawIOBase):  # the real file, whose writes fail as on a full disk
        def __init__(self, fh):
            self.fh = fh

        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def fileno(self):
            return self.fh.fileno()

    def new_file(self, name):
        fh = plain_new_file(self, name)
        return DiskFull(fh) if name == failing else fh

    monkeypatch.setattr(report.ReportFolder, "_new_file", new_file)
    result = CliRunner().invoke(main, ["check", str(practice_dir), "--out", str(out), "--as-of", AS_OF,
                                       "--force"])
    assert result.exit_code == 5, result.output
    assert "cannot be written (No space left on device)" in result.output
    assert "Traceback" not in result.output
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left


# --- one writer at a time ----------------------------------------------------------------------

def test_a_second_run_to_a_folder_being_written_is_refused_and_leaves_the_first_alone(practice_dir, tmp_path):
    """Another run holds the folder (its lock, and its temporary folder beside the report):
    this run stops at once with exit 5 saying so, and removes nothing of the other's. It
    used to take the other's temporary folder for a killed run's and remove it."""
    out = tmp_path / "r"
    partial = tmp_path / ".r.partial-other"
    with another_process_writing(out):
        partial.mkdir()
        (partial / "flags.csv").write_text("being written")
        result = run("check", practice_dir, "--out", out, "--as-of", AS_OF)
        assert result.exit_code == 5, result.output
        assert "being written by another family_link run" in result.output
        assert (partial / "flags.csv").read_text() == "being written"
        assert not out.exists()
    partial.joinpath("flags.csv").unlink()
    partial.rmdir()
    assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0
    assert not leftovers(out)  # the lock file goes with the run that held it


@contextlib.contextmanager
def another_process_writing(out: Path):
    """Hold ``out``'s lock as another run would: a child process that takes it
    (``only_writer``) and keeps it until told to stop."""
    code = ("import sys; from family_link.report import only_writer\n"
            "with only_writer(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_the_same_folder_by_another_name_is_the_same_lock(practice_dir, tmp_path):
    """A symbolic link to the folder, or the folder given as ".": one folder, one lock."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real / "r")
    with another_process_writing(real / "r"):
        result = run("check", practice_dir, "--out", tmp_path / "link", "--as-of", AS_OF)
        assert result.exit_code == 5 and "being written by another family_link run" in result.output
    from family_link.report import _lock_path

    assert _lock_path(Path(".")) == Path.cwd().parent / f".{Path.cwd().name}.lock"


def test_a_run_holds_its_folder_from_its_start_and_a_batch_holds_its_own(exports_for_locks, tmp_path):
    """Nested holds in one process share the lock (the check's open_report inside its own
    hold); another process is refused while a batch holds its folder."""
    from family_link.report import check_destination, only_writer

    out = tmp_path / "r"
    with only_writer(out):
        check_destination(out, False)  # the same process: no self-refusal
        with only_writer(out):
            pass
        assert (tmp_path / ".r.lock").is_file()  # still held by the outer block
    assert not (tmp_path / ".r.lock").exists()
    with another_process_writing(tmp_path / "b"):
        result = run("batch", exports_for_locks, "--out", tmp_path / "b", "--as-of", AS_OF, "--quiet")
        assert result.exit_code == 5 and "being written by another family_link run" in result.output
    assert not (tmp_path / "b").exists()


@pytest.fixture
def exports_for_locks(practice_dir, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "P1").symlink_to(practice_dir, target_is_directory=True)
    return folder


def test_a_lock_file_removed_under_a_run_is_taken_afresh(tmp_path, monkeypatch):
    """The run that held the lock removes its file as it ends; a run that opened that file
    just before must lock the new one, or two runs would each hold a lock."""
    from family_link import report

    real, calls = report._lock_file, []

    def removed_as_it_was_locked(fd):
        calls.append(fd)
        taken = real(fd)
        if len(calls) == 1:
            os.unlink(tmp_path / ".r.lock")  # the previous holder, ending
        return taken

    monkeypatch.setattr(report, "_lock_file", removed_as_it_was_locked)
    with report.only_writer(tmp_path / "r"):
        assert len(calls) == 2
        assert (tmp_path / ".r.lock").is_file()
    assert not (tmp_path / ".r.lock").exists()


def test_where_files_cannot_be_locked_the_run_goes_on_unguarded(practice_dir, tmp_path, monkeypatch):
    """Some network shares refuse file locks (ENOLCK): that is not another run writing."""
    from family_link import report

    monkeypatch.setattr(report, "_lock_file", lambda fd: None)
    out = tmp_path / "r"
    assert run("check", practice_dir, "--out", out, "--as-of", AS_OF).exit_code == 0
    assert not leftovers(out)


def test_flock_refused_by_the_file_system_is_no_lock_and_a_held_lock_is_busy(tmp_path, monkeypatch):
    import errno as errno_module

    from family_link import report

    path = tmp_path / "f"
    path.write_text("")
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        assert report._lock_with_fcntl(first) is True
        assert report._lock_with_fcntl(second) is False  # another open file holds it

        def no_locks(fd, how):
            raise OSError(errno_module.ENOLCK, "No locks available")

        monkeypatch.setattr(report.fcntl, "flock", no_locks)
        assert report._lock_with_fcntl(second) is None
    finally:
        os.close(first)
        os.close(second)


def test_a_lock_file_that_cannot_be_made_leaves_the_run_unguarded(exports_for_locks, tmp_path, monkeypatch):
    """A batch folder made ready inside a folder the tool may not write in: the batch
    writes only inside its own folder, so the lock beside it not being possible must not
    stop it (it did: exit 5 "cannot be created")."""
    from family_link import report

    real_open = os.open

    def no_lock_files(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(report.os, "open", no_lock_files)
    (tmp_path / "b").mkdir()
    result = run("batch", exports_for_locks, "--out", tmp_path / "b", "--as-of", AS_OF, "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "P1" / "flags.csv").is_file()


def test_a_report_folder_given_by_a_symbolic_link_is_replaced_where_it_points(practice_dir, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    assert run("check", practice_dir, "--out", real / "rep", "--as-of", "2026-10-01").exit_code == 0
    link = tmp_path / "current"
    link.symlink_to(real / "rep", target_is_directory=True)
    assert run("check", practice_dir, "--out", link, "--as-of", AS_OF, "--force").exit_code == 0
    assert link.is_symlink() and link.resolve() == (real / "rep").resolve()
    assert json.loads((real / "rep" / "run.json").read_text())["as_of"] == AS_OF
    assert not leftovers(real / "rep") and not leftovers(link)
