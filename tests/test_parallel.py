"""--jobs: the same report whatever the number of processes."""

from __future__ import annotations

from click.testing import CliRunner

from family_link.cli import main
from family_link.generate import generate_practice, write_practice


def test_jobs_1_and_2_give_byte_identical_reports(tmp_path):
    write_practice(generate_practice(3000, 5, __import__("datetime").date(2026, 11, 1)), tmp_path / "export")
    for jobs in ("1", "2", "3"):
        result = CliRunner().invoke(main, ["check", str(tmp_path / "export"), "--out", str(tmp_path / jobs),
                                           "--as-of", "2026-11-01", "--jobs", jobs])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "1").iterdir() if p.name != "timings.json")
    assert "flags.csv" in names and "scope.csv" in names
    for jobs in ("2", "3"):
        for name in names:
            assert (tmp_path / "1" / name).read_bytes() == (tmp_path / jobs / name).read_bytes(), (jobs, name)
    assert (tmp_path / "1" / "flags.csv").read_text().count("\n") > 20  # the practice flags something
