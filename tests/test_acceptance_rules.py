"""Issue 3's acceptance, through the command line: on a generated practice of 20,000
patients whose households are given (household_id, as some clinical systems export it),
`family-link check` flags exactly what the rule definitions say: precision and recall 1.0
against the generator's truth, rule by rule, and every reason names the member, code,
term and date."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from family_link.cli import main
from family_link.generate import RULE_IDS, generate_practice, write_practice


@pytest.mark.slow
def test_check_on_20000_patients_matches_the_generators_truth(tmp_path):
    practice = generate_practice(20_000, 2026, date(2026, 11, 1), include_household_ids=True)
    write_practice(practice, tmp_path / "export")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "export"), "--out", str(tmp_path / "report"),
                                       "--as-of", "2026-11-01"])
    assert result.exit_code == 0, result.output
    flags = pd.read_csv(tmp_path / "report" / "flags.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(tmp_path / "export" / "truth" / "expected_flags.csv", dtype=str)
    for rule_id in RULE_IDS:
        got = set(flags.loc[flags.rule_id == rule_id, "patient_id"])
        expected = set(truth.loc[truth.rule_id == rule_id, "patient_id"])
        assert expected, f"the generated practice does not exercise {rule_id}"
        true_positive = len(got & expected)
        precision, recall = true_positive / max(len(got), 1), true_positive / len(expected)
        assert (precision, recall) == (1.0, 1.0), (rule_id, sorted(got - expected)[:5], sorted(expected - got)[:5])

    patients = pd.read_csv(tmp_path / "export" / "patients.csv", dtype=str, keep_default_na=False).set_index(
        "patient_id")
    for flag in flags.itertuples():
        for trigger, code, iso in zip(flag.trigger_patient_ids.split(";"), flag.trigger_codes.split(";"),
                                      flag.trigger_dates.split(";")):
            y, m, d = iso.split("-")
            assert f"({code})" in flag.reason and f"{d}/{m}/{y}" in flag.reason, flag.reason
            if trigger != flag.patient_id:  # the member is named by name and patient id
                member = patients.loc[trigger]
                assert f"{member.forenames} {member.surname} (patient {trigger})" in flag.reason, flag.reason
            else:
                assert "This patient has '" in flag.reason
        assert "' (" in flag.reason  # the term is quoted before its code
