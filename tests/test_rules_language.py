"""The rule language: the shipped rules validate, and invalid rules are refused up front.

A rules folder is validated as a whole by ``load_ruleset`` before any patient data is read,
and every problem found is reported in one ``RulesError`` (so a safeguarding lead editing a
rule fixes them all in one go, not one per run).
"""

from __future__ import annotations

import shutil
import textwrap
from datetime import date
from pathlib import Path

import pytest

from family_link.check import run_check
from family_link.errors import RulesError
from family_link.rules import default_rules_dir, load_ruleset

DEFAULT_RULE_IDS = [
    "cp-sibling",
    "cp-parent",
    "domestic-abuse",
    "substance-misuse",
    "parental-learning-disability",
    "pre-birth",
    "maltreatment-siblings",
    "stale-family-alert",
]

# The codelists the default rules (and tests/reference_rules.py) use, by name.
DEFAULT_CODELISTS = {
    "cp_plan_start", "cp_plan_end", "family_member_cp_alert", "family_member_cp_alert_end",
    "parent_of_child_on_cp_plan", "domestic_abuse", "domestic_abuse_household_alert",
    "substance_misuse", "substance_misuse_household_alert", "learning_disability",
    "family_vulnerability_alert", "pregnancy", "pregnancy_outcome", "unborn_child_alert",
    "maltreatment", "child_safeguarding",
}


# --- the shipped rules ----------------------------------------------------------------------

def test_shipped_rules_validate_in_order():
    ruleset = load_ruleset()
    assert [r.id for r in ruleset.rules] == DEFAULT_RULE_IDS
    assert len(ruleset.sha256) == 64


def test_every_file_in_rules_is_a_loaded_rule():
    rules_dir = default_rules_dir()
    files = sorted(rules_dir.glob("*.yaml")) + sorted(rules_dir.glob("*.yml"))
    assert len(files) == len(load_ruleset(rules_dir).rules)


def test_shipped_codelists_are_all_present_and_non_empty():
    ruleset = load_ruleset()
    used = {name for rule in ruleset.rules for name in rule.codelist_names()}
    assert used == DEFAULT_CODELISTS
    for name in DEFAULT_CODELISTS:
        assert ruleset.codelists[name].codes, f"{name}.csv has no codes"
        assert all(ruleset.codelists[name].terms.values()), f"{name}.csv has a code with no term"


def test_suggested_codes_have_terms():
    ruleset = load_ruleset()
    for rule in ruleset.rules:
        for code in rule.suggest:
            assert ruleset.term(code), f"{rule.id}: suggested code {code} has no term"


# --- invalid rules ---------------------------------------------------------------------------

CODELISTS = {
    "start_list": "code,term\n1001,Start of something\n",
    "end_list": "code,term\n1002,End of something\n",
    "alert_list": "code,term\n1003,Alert about something\n",
}

VALID_RULE = """\
id: {id}
title: A valid rule
recommendations: [11]
severity: action
explanation: Something in the household calls for an alert.
trigger:
  codelist: start_list
  ended_by: end_list
  active: true
  within_days: 365
  who: child
target:
  group: other_children
satisfied_by:
  - codelist: alert_list
    dated: on_or_after_trigger
missing: No alert dated on or after {{trigger_date}}.
suggest: ["1003"]
"""


def write_rules(tmp_path: Path, rules: dict[str, str], codelists: dict[str, str] = CODELISTS) -> Path:
    (tmp_path / "codelists").mkdir(parents=True, exist_ok=True)
    for name, text in codelists.items():
        (tmp_path / "codelists" / f"{name}.csv").write_text(text, encoding="utf-8")
    for name, text in rules.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_a_valid_rule_in_a_temp_folder_loads(tmp_path):
    ruleset = load_ruleset(write_rules(tmp_path, {"a.yaml": VALID_RULE.format(id="good")}))
    assert [r.id for r in ruleset.rules] == ["good"]


def test_every_problem_is_listed_in_one_error(tmp_path):
    unknown_key = VALID_RULE.format(id="unknown-key") + "colour: red\n"
    unknown_codelist = VALID_RULE.format(id="twice").replace("codelist: alert_list",
                                                              "codelist: no_such_list")
    negative_window = VALID_RULE.format(id="negative").replace("within_days: 365", "within_days: -5")
    active_no_end = VALID_RULE.format(id="no-end").replace("  ended_by: end_list\n", "")
    duplicate_and_bad_suggestion = VALID_RULE.format(id="twice").replace('["1003"]', '["9999"]')
    rules_dir = write_rules(tmp_path, {
        "1-unknown-key.yaml": unknown_key,
        "2-unknown-codelist.yaml": unknown_codelist,
        "3-negative-window.yaml": negative_window,
        "4-active-no-end.yaml": active_no_end,
        "5-duplicate.yaml": duplicate_and_bad_suggestion,
    })

    with pytest.raises(RulesError) as caught:
        load_ruleset(rules_dir)

    error = caught.value
    assert error.exit_code == 4
    text = str(error)
    problems = [str(p) for p in error.problems]

    def problem(file_part: str, *words: str) -> bool:
        return any(file_part in p and all(w in p for w in words) for p in problems)

    assert problem("1-unknown-key.yaml", "colour", "unknown key")
    assert problem("2-unknown-codelist.yaml", "unknown codelist 'no_such_list'")
    assert problem("3-negative-window.yaml", "within_days")
    assert problem("4-active-no-end.yaml", "ended_by")
    assert problem("5-duplicate.yaml", "suggested code '9999' is in no codelist")
    assert any("'twice'" in p and "unique" in p for p in problems)
    assert len(problems) == 6, text
    # One message lists them all, counted, with no traceback-like noise.
    assert text.startswith("The rules are invalid (6 problems):")
    assert "Traceback" not in text


def test_rules_are_validated_before_any_patient_data_is_read(tmp_path):
    # The export does not even exist: the run must stop on the rules (exit 4), not on the
    # export (exit 3), so no patient file is opened with rules that cannot run.
    rules_dir = write_rules(tmp_path / "rules", {"a.yaml": VALID_RULE.format(id="Bad Id")})
    with pytest.raises(RulesError, match="lower-case letters") as caught:
        run_check(tmp_path / "no-such-export", tmp_path / "out", as_of=date(2025, 6, 30),
                  rules_dir=rules_dir)
    assert caught.value.exit_code == 4
    assert not (tmp_path / "out").exists()


def test_a_spreadsheet_mangled_code_is_reported(tmp_path):
    codelists = dict(CODELISTS, alert_list="code,term\n1003,Alert about something\n"
                                           "3.42191E+14,Subject to child protection plan\n")
    rules_dir = write_rules(tmp_path, {"a.yaml": VALID_RULE.format(id="good")}, codelists)
    with pytest.raises(RulesError) as caught:
        load_ruleset(rules_dir)
    [problem] = caught.value.problems
    assert "alert_list.csv" in problem.file
    assert problem.row == 3
    assert problem.column == "code"
    assert "3.42191E+14" in problem.message
    assert problem.hint and "spreadsheet" in problem.hint


def test_a_codelist_without_code_and_term_columns_is_reported(tmp_path):
    codelists = dict(CODELISTS, alert_list="snomed,description\n1003,Alert\n")
    rules_dir = write_rules(tmp_path, {"a.yaml": VALID_RULE.format(id="good")}, codelists)
    with pytest.raises(RulesError, match="missing column"):
        load_ruleset(rules_dir)


def test_invalid_yaml_is_reported_with_its_line(tmp_path):
    rules_dir = write_rules(tmp_path, {"a.yaml": "id: x\ntrigger: [unclosed\n"})
    with pytest.raises(RulesError) as caught:
        load_ruleset(rules_dir)
    assert any("not valid YAML" in p.message and p.row for p in caught.value.problems)


# --- the ruleset hash ------------------------------------------------------------------------

def copy_shipped_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target)
    return target


def test_hash_is_stable_for_the_same_files(tmp_path):
    assert load_ruleset(copy_shipped_rules(tmp_path)).sha256 == load_ruleset().sha256


def test_hash_changes_when_a_codelist_changes(tmp_path):
    rules_dir = copy_shipped_rules(tmp_path)
    before = load_ruleset(rules_dir).sha256
    path = rules_dir / "codelists" / "domestic_abuse.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + "\n999999999999,A code added by a lead\n", encoding="utf-8")
    assert load_ruleset(rules_dir).sha256 != before


def test_hash_changes_when_a_rule_changes(tmp_path):
    rules_dir = copy_shipped_rules(tmp_path)
    before = load_ruleset(rules_dir).sha256
    path = rules_dir / "03-domestic-abuse.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("within_days: 730", "within_days: 365"),
                    encoding="utf-8")
    assert load_ruleset(rules_dir).sha256 != before
