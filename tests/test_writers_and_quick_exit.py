"""Speed helpers of the report and worklist writers (perf-out) against the plain forms."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import report

_VALUES = st.lists(st.none() | st.text(alphabet=st.sampled_from(list('ab,"\n\ré')), max_size=6), max_size=12)


def _plain_holds(values: list, wanted: bytes) -> bool:
    return any(b in (v or "").encode() for v in values for b in wanted)


@pytest.mark.parametrize("memchr", [True, False])
@settings(max_examples=150, deadline=None)
@given(values=_VALUES, cut=st.integers(0, 12), byte=st.sampled_from(list(b',"\n')))
def test_holds_byte_matches_a_plain_search_on_slices_and_chunks(memchr, values, cut, byte):
    old = report._MEMCHR
    if not memchr:
        report._MEMCHR = None
    try:
        arr = pa.array(values, pa.large_string())
        cut = min(cut, len(values))
        # a slice only looks at its own values, not at the bytes of its neighbours
        for part, expect in ((arr.slice(cut), values[cut:]), (arr.slice(0, cut), values[:cut]),
                             (pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], pa.large_string()), values),
                             (arr.cast(pa.string()).slice(cut), values[cut:])):
            assert report._holds_any_byte(part, bytes([byte])) == _plain_holds(expect, bytes([byte]))
            assert report._special_bytes(part) == bytes(b for b in b',"\n' if _plain_holds(expect, bytes([b])))
    finally:
        report._MEMCHR = old


# --- the program ends without the interpreter's teardown, same codes and messages ---------

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

_PRACTICE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "family_link", *args], capture_output=True, text=True,
                          timeout=300)


def test_program_exit_codes_and_output_are_unchanged_by_the_quick_exit(tmp_path):
    out = tmp_path / "report"
    done = _run("check", str(_PRACTICE), "--out", str(out), "--as-of", "2026-11-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("Checked 400 patients as of 2026-11-01")
    assert done.stdout.endswith("\n") and len(done.stdout.splitlines()) == 2 + 8  # every rule's line flushed
    assert (out / "run.json").is_file()
    again = _run("check", str(_PRACTICE), "--out", str(out), "--as-of", "2026-11-01")
    assert again.returncode == 5 and "already holds a report" in again.stderr and "Traceback" not in again.stderr
    wrong = _run("check")
    assert wrong.returncode == 2 and "Missing argument 'EXPORT'" in wrong.stderr
    assert _run("--version").stdout.strip().startswith("family-link, version")


def _run_reader_gone(*args: str, stream: str = "stdout") -> tuple[int, str]:
    """Run the program with ``stream``'s reader gone before the child has imported anything,
    let alone printed; return its exit code and what it wrote to the other stream."""
    proc = subprocess.Popen([sys.executable, "-m", "family_link", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    gone, other = (proc.stdout, proc.stderr) if stream == "stdout" else (proc.stderr, proc.stdout)
    gone.close()
    written = other.read().decode()
    return proc.wait(timeout=300), written


def test_a_reader_gone_from_the_pipe_cuts_the_printout_not_the_run(tmp_path):
    # "family-link check ... | head -1", "batch 2>&1 | head -1": the run still writes its
    # report and exits with its own code, not click's 1 (a bug), with no traceback.
    out = tmp_path / "report"
    check = ("check", str(_PRACTICE), "--out", str(out), "--as-of", "2026-11-01")
    code, stderr = _run_reader_gone(*check)
    assert code == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert (out / "run.json").is_file() and (out / "worklist.html").is_file()
    assert _run_reader_gone(*check)[0] == 5  # a failing run keeps its own code too
    assert _run_reader_gone("--help")[0] == 0
    assert _run_reader_gone("rules", "show", stream="stderr")[0] == 2  # click's usage error, on stderr
    # The batch's progress bar writes to standard error as it goes.
    exports = tmp_path / "exports"
    shutil.copytree(_PRACTICE, exports / "p1")
    code, stdout = _run_reader_gone("batch", str(exports), "--out", str(tmp_path / "batch"), "--as-of", "2026-11-01",
                                    stream="stderr")
    assert code == 0 and "Checked 1 of 1 practice exports" in stdout, stdout
    assert (tmp_path / "batch" / "summary.csv").is_file()


def _close_standard_streams() -> None:
    os.close(1)
    os.close(2)


def test_a_program_started_with_its_streams_closed_runs_as_before(tmp_path):
    # ">&- 2>&-": Python starts with sys.stdout and sys.stderr None, which click leaves alone.
    # Wrapped for a reader who may leave, they failed (exit 120), and a descriptor the program
    # reused (Arrow's signal pipe took 1 and 2) was pointed at os.devnull: it never ended.
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "family_link", "check", str(_PRACTICE), "--out", str(out),
                           "--as-of", "2026-11-01"], preexec_fn=_close_standard_streams, timeout=120)
    assert done.returncode == 0
    assert (out / "run.json").is_file()


def test_called_with_arguments_the_group_raises_system_exit_as_click_does():
    from family_link.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0


# --- engine: a rule's reason filled in once per distinct date ------------------------------

def test_per_date_matches_the_per_flag_template():
    import numpy as np
    import pandas as pd

    from family_link import engine

    template = "No alert since {trigger_date}; code it ({trigger_date})."
    dates = pd.Series(pd.to_datetime(["2026-01-02", "2025-12-31", "2026-01-02", "0999-01-01"][:3]), index=[5, 7, 9])
    got = engine._per_date(dates, template)
    want = engine._uk_date(dates).map(lambda d: template.replace("{trigger_date}", d))
    assert got.tolist() == want.tolist() and list(got.index) == [5, 7, 9]
    assert engine._per_date(dates.iloc[:0], template).tolist() == []
    assert np.array_equal((pd.Series(["a"] * 3, index=dates.index) + got).to_numpy(dtype=object),
                          (pd.Series(["a"] * 3, index=dates.index) + want).to_numpy(dtype=object))
