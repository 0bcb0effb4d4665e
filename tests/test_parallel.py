"""--jobs: the same report whatever the number of processes; the rules' partitioned form
gives what the single-process engine gives."""

from __future__ import annotations

from datetime import date

import pandas as pd
from click.testing import CliRunner

from family_link.cli import main
from family_link.engine import evaluate_rules
from family_link.generate import generate_practice, write_practice
from family_link.households import link_households
from family_link.layouts import load_any_export
from family_link.parallel import evaluate_rules_partitioned
from family_link.rules import load_ruleset


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


def test_rules_over_partitions_equal_the_single_process_rules(tmp_path):
    as_of = date(2026, 11, 1)
    write_practice(generate_practice(2000, 11, as_of), tmp_path / "export")
    export = load_any_export(tmp_path / "export", as_of)
    households = link_households(export.patients, export.relationships, as_of)
    ruleset = load_ruleset(None)
    whole = evaluate_rules(ruleset, export.patients, export.events, households, as_of, export.relationships)
    assert len(whole.flags) > 5  # the practice flags something
    for jobs in (2, 3):
        parts = evaluate_rules_partitioned(ruleset, export.patients, export.events, households, as_of,
                                           export.relationships, jobs)
        pd.testing.assert_frame_equal(parts.flags.reset_index(drop=True), whole.flags.reset_index(drop=True),
                                      check_dtype=False)
        pd.testing.assert_frame_equal(parts.scope.reset_index(drop=True), whole.scope.reset_index(drop=True),
                                      check_dtype=False)
