"""The auditor's report: keys, pseudonyms, small-number suppression, no identifiers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from family_link.audit import (
    ALL_PRACTICES,
    AuditRun,
    audit_table,
    load_key,
    pseudonym,
    suppress,
    suppressed_percent,
)
from family_link.errors import KeyFileError
from golden_files import MONTH_1, assert_golden, generate, run

GOOD_KEY = "5f0c9a2e7d41b8c3a6e9f2d5b8c1e4a7d0f3b6c9e2a5d8b1c4f7a0e3d6b9c2f5"


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "family_link.key"
    path.write_text(GOOD_KEY + "\n")
    return path


# --- suppression --------------------------------------------------------------------------

@pytest.mark.parametrize("count, shown", [(0, "0"), (1, "*"), (7, "*"), (8, "10"), (12, "10"), (13, "15"),
                                          (2, "*"), (10, "10"), (17, "15"), (18, "20"), (102, "100")])
def test_suppression_edge_cases(count, shown):
    assert suppress(count) == shown


def test_suppression_refuses_negative_counts():
    with pytest.raises(ValueError):
        suppress(-1)


@pytest.mark.parametrize("num, den, pct", [("*", "20", "*"), ("10", "*", "*"), ("0", "0", ""), ("0", "10", "0"),
                                           ("10", "15", "67"), ("15", "15", "100")])
def test_percentages_are_suppressed_when_either_part_is(num, den, pct):
    assert suppressed_percent(num, den) == pct


def _run(practice: str, in_scope: int, flagged: int, households: int | None = None) -> AuditRun:
    households = households or in_scope
    scope = pd.DataFrame({"rule_id": ["r"] * in_scope, "patient_id": [f"{practice}-{i}" for i in range(in_scope)],
                          "household_id": [f"H{i % households}" for i in range(in_scope)],
                          "flagged": [i < flagged for i in range(in_scope)]})
    return AuditRun(practice, MONTH_1, None, "x" * 64, "0", {"r": ("Rule", "action")}, scope)


@pytest.mark.parametrize("in_scope, flagged, expect", [
    (0, 0, {"patients_in_scope": "0", "patients_flagged": "0", "patients_already_alerted": "0", "coverage_percent": ""}),
    (1, 1, {"patients_in_scope": "*", "patients_flagged": "*", "patients_already_alerted": "0", "coverage_percent": "*"}),
    (7, 0, {"patients_in_scope": "*", "patients_flagged": "0", "patients_already_alerted": "*", "coverage_percent": "*"}),
    (8, 0, {"patients_in_scope": "10", "patients_flagged": "0", "patients_already_alerted": "10", "coverage_percent": "100"}),
    (12, 4, {"patients_in_scope": "10", "patients_flagged": "*", "patients_already_alerted": "10", "coverage_percent": "100"}),
    (13, 1, {"patients_in_scope": "15", "patients_flagged": "*", "patients_already_alerted": "10", "coverage_percent": "67"}),
    (21, 8, {"patients_in_scope": "20", "patients_flagged": "10", "patients_already_alerted": "15", "coverage_percent": "75"}),
])
def test_audit_table_suppresses_each_cell(in_scope, flagged, expect):
    row = audit_table([_run("M1", in_scope, flagged)]).iloc[0].to_dict()
    for k, v in expect.items():
        assert row[k] == v, (k, row)
    assert len(audit_table([_run("M1", in_scope, flagged)])) == 1  # no total row for one practice


def test_all_practices_row_hides_a_lone_suppressed_cell():
    # Practice A flags 3 (hidden); B flags 20. A total of 23 (-> 25) minus B's 20 would
    # expose A's cell, so the all-practices cell is suppressed too.
    table = audit_table([_run("A", 30, 3), _run("B", 40, 20)])
    total = table[table["practice"] == ALL_PRACTICES].iloc[0]
    assert table[table["practice"] == "A"].iloc[0]["patients_flagged"] == "*"
    assert total["patients_flagged"] == "*"
    assert total["patients_in_scope"] == "70"
    # Two hidden cells cannot be separated: the total is shown (rounded).
    table = audit_table([_run("A", 30, 3), _run("B", 40, 5)])
    assert table[table["practice"] == ALL_PRACTICES].iloc[0]["patients_flagged"] == "10"


# --- keys and pseudonyms ------------------------------------------------------------------

@pytest.mark.parametrize("content, phrase", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"short key", "at least 32"),
    (b"ab" * 15, "at least 32"),  # hex: 15 bytes
    (b"0" * 64, "pattern"),  # hex zeros
    (b"password" * 4, "pattern"),
    (b"abcdefghijklmnopqrstuvwxyz01234" , "at least 32"),
])
def test_weak_keys_are_refused(tmp_path, content, phrase):
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError) as info:
        load_key(path)
    assert phrase in str(info.value)
    assert info.value.exit_code == 6


def test_no_key_and_missing_key_are_refused(tmp_path):
    with pytest.raises(KeyFileError, match="no key given"):
        load_key(None)
    with pytest.raises(KeyFileError, match="not found"):
        load_key(tmp_path / "nope")


def test_good_keys(key_file, tmp_path):
    assert len(load_key(key_file)) == 32
    raw = tmp_path / "raw"
    raw.write_bytes(bytes(range(40, 100)))
    assert load_key(raw) == bytes(range(40, 100))


def test_pseudonyms_are_keyed_stable_and_opaque():
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    assert pseudonym(k1, "P", "9434765919") == pseudonym(k1, "P", "9434765919")
    assert pseudonym(k1, "P", "9434765919") != pseudonym(k2, "P", "9434765919")
    assert pseudonym(k1, "P", "1") != pseudonym(k1, "H", "1")
    assert re.fullmatch(r"P-[0-9a-f]{16}", pseudonym(k1, "P", "9434765919"))


# --- end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("audit")
    export = generate(base / "practice", seed=11, patients=600)
    assert run("check", export, "--out", base / "report", "--as-of", MONTH_1).exit_code == 0
    return base


def test_cli_without_a_usable_key_writes_nothing_and_exits_6(checked, tmp_path):
    for args in ([], ["--key-file", tmp_path / "missing"]):
        result = run("audit", checked / "report", "--out", tmp_path / "out", *args)
        assert result.exit_code == 6, result.output
        assert "Traceback" not in result.output and "HINT" in result.output
        assert not (tmp_path / "out").exists()


def test_cli_on_a_folder_that_is_not_a_report_exits_3(tmp_path, key_file):
    (tmp_path / "empty").mkdir()
    result = run("audit", tmp_path / "empty", "--key-file", key_file, "--out", tmp_path / "out")
    assert result.exit_code == 3, result.output
    assert "scope.csv" in result.output


def _identifiers(patients: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(whole words that must not appear, substrings that must not appear)."""
    words, substrings = set(), set()
    for col in ("surname", "forenames"):
        for value in patients[col]:
            words |= {w for w in re.split(r"[\s\-']+", value) if len(w) >= 3}
    for col in [c for c in patients.columns if c.startswith("address_line")]:
        for value in patients[col]:
            if len(value.strip()) >= 6:  # "12" alone is a house number, not an identifier
                substrings.add(value.strip())
                words |= {w for w in re.split(r"[\s,]+", value) if len(w) >= 4 and not w.isdigit()}
    for value in patients["postcode"]:
        if value.strip():
            substrings |= {value.strip(), value.replace(" ", ""), value.split()[0] + " " if " " in value else value}
    substrings |= {v for v in patients["nhs_number"] if v}
    substrings |= {v for v in patients["patient_id"] if v}
    dobs = pd.to_datetime(patients["date_of_birth"], dayfirst=True, errors="coerce", format="mixed").dropna()
    for d in dobs:
        substrings |= {d.strftime(f) for f in ("%Y-%m-%d", "%d/%m/%Y", "%d%m%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y",
                                             "%d %b %Y", "%d-%b-%Y", "%Y/%m/%d")}
        substrings.add(f"{d.day}/{d.month}/{d.year}")
    substrings |= {v for v in patients["date_of_birth"] if v}
    return words, substrings


def test_no_identifier_from_the_input_appears_in_the_auditor_outputs(checked, key_file, tmp_path):
    out = tmp_path / "audit"
    result = run("audit", checked / "report", "--key-file", key_file, "--out", out, "--rows", "--practice", "M91001")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["audit.csv", "audit.html", "audit.json", "audit_rows.csv"]
    patients = pd.read_csv(checked / "practice" / "patients.csv", dtype=str, keep_default_na=False)
    words, substrings = _identifiers(patients)
    assert len(words) > 50 and len(substrings) > 500
    # household ids from the check (they embed address hashes) must not leak either
    substrings |= set(pd.read_csv(checked / "report" / "households.csv", dtype=str)["household_id"])
    # The detector itself works: the practice-internal worklist is full of identifiers.
    internal = (checked / "report" / "worklist.csv").read_text(encoding="utf-8").lower()
    assert any(s.lower() in internal for s in substrings)
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8").lower()
        found_words = {w for w in words if re.search(rf"\b{re.escape(w.lower())}\b", text)}
        found = {s for s in substrings if s.lower() in text}
        assert not found_words and not found, (path.name, sorted(found_words)[:5], sorted(found)[:5])
    assert "\b" not in result.output
    for s in list(substrings)[:200]:
        assert s not in result.output


def test_audit_outputs_hold_the_table_and_chart_and_are_deterministic(checked, key_file, tmp_path):
    for name in ("a", "b"):
        assert run("audit", checked / "report", "--key-file", key_file, "--out", tmp_path / name).exit_code == 0
    for f in ("audit.csv", "audit.json", "audit.html"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    data = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert data["rows"] and "1 to 7" in data["suppression"]
    html = (tmp_path / "a" / "audit.html").read_text()
    assert "<svg" in html and "Coverage by rule" in html and "default-src 'none'" in html
    table = pd.read_csv(tmp_path / "a" / "audit.csv", dtype=str, keep_default_na=False)
    for col in ("households_in_scope", "patients_in_scope", "patients_flagged", "patients_already_alerted"):
        assert all(v == "*" or (v.isdigit() and int(v) % 5 == 0) for v in table[col]), col
    again = run("audit", checked / "report", "--key-file", key_file, "--out", tmp_path / "a")
    assert again.exit_code == 5  # an existing report needs --force
    assert run("audit", checked / "report", "--key-file", key_file, "--out", tmp_path / "a", "--force").exit_code == 0


def test_golden_audit_csv(tmp_path, key_file):
    export = generate(tmp_path / "practice", seed=11, patients=600)
    assert run("check", export, "--out", tmp_path / "report", "--as-of", MONTH_1).exit_code == 0
    assert run("audit", tmp_path / "report", "--key-file", key_file, "--out", tmp_path / "audit",
               "--practice", "M91001").exit_code == 0
    assert_golden("audit/audit.csv", tmp_path / "audit" / "audit.csv")
