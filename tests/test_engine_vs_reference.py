"""The engine against the reference and the generator, on generated practices.

Three views of the same definitions must agree exactly on every (patient, rule):

- the engine (``evaluate_rules`` with the shipped rules, over pandas frames);
- the deliberately simple reference (``tests/reference_rules.py``, loops over households);
- the flags the synthetic generator planted (``expected_flags``).

Households are given (``include_household_ids=True``) so that household linkage is not
under test here. The generator plants each scenario on a quiet background, so a second
comparison crowds small random households with codes from every codelist, dated around
every window edge, and checks engine and reference agree there too. When two of them disagree, the failure message lists the patients on each
side, rule by rule, so the disagreement can be traced by hand against docs/rules.md.
"""

from __future__ import annotations

import time
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
import pytest

from family_link._export import normalise_codes
from family_link.engine import evaluate_rules
from family_link.generate import generate_practice
from family_link.rules import load_ruleset
from reference_rules import CODELIST_NAMES, RULE_IDS, reference_flags_from_frames

AS_OF = date(2025, 6, 30)


def to_dates(values: pd.Series) -> pd.Series:
    """Dates as a CSV gives them: YYYY-MM-DD or DD/MM/YYYY (blank: missing)."""
    text = values.astype(str).str.strip()
    iso = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    uk = pd.to_datetime(text, format="%d/%m/%Y", errors="coerce")
    out = iso.fillna(uk)
    unread = out.isna() & text.ne("") & values.notna()
    assert not unread.any(), f"unreadable dates, e.g. {text[unread].head(3).tolist()}"
    return out


@cache
def practice(n_patients: int, seed: int):
    """(patients, events, households, expected) as the engine takes them."""
    generated = generate_practice(n_patients, seed, AS_OF, include_household_ids=True)
    patients = generated.patients.copy()
    patients["date_of_birth"] = to_dates(patients["date_of_birth"])
    events = generated.events.copy()
    events["date"] = to_dates(events["date"])
    # As the export reader gives them: stripped, 7-character Read v2 codes cut to 5.
    events["code"], problem = normalise_codes(events["code"])
    assert (problem == "").all(), problem[problem != ""].head(3).tolist()
    households = patients[["patient_id", "household_id"]].copy()
    expected = set(zip(generated.expected_flags["patient_id"].astype(str),
                       generated.expected_flags["rule_id"].astype(str)))
    return patients, events, households, expected


@cache
def engine_flags(n_patients: int, seed: int) -> set[tuple[str, str]]:
    patients, events, households, _ = practice(n_patients, seed)
    evaluation = evaluate_rules(load_ruleset(), patients, events, households, AS_OF)
    flags, scope = evaluation.flags, evaluation.scope
    pairs = list(zip(flags["patient_id"], flags["rule_id"]))
    assert len(pairs) == len(set(pairs)), "a (patient, rule) is flagged twice"
    in_scope = scope[scope["flagged"]]
    assert set(zip(in_scope["patient_id"], in_scope["rule_id"])) == set(pairs), "scope and flags disagree"
    return set(pairs)


def disagreement(left_name: str, left: set, right_name: str, right: set) -> str:
    """Rule by rule: precision and recall of left against right, and a few patients."""
    lines = []
    for rule in RULE_IDS:
        lhs = {p for p, r in left if r == rule}
        rhs = {p for p, r in right if r == rule}
        if lhs == rhs:
            continue
        both = len(lhs & rhs)
        precision = both / len(lhs) if lhs else 1.0
        recall = both / len(rhs) if rhs else 1.0
        lines.append(f"{rule}: {left_name} {len(lhs)}, {right_name} {len(rhs)}, "
                     f"precision {precision:.3f}, recall {recall:.3f}; "
                     f"only {left_name}: {sorted(lhs - rhs)[:5]}; only {right_name}: {sorted(rhs - lhs)[:5]}")
    return "\n".join(lines)


def check_practice(n_patients: int, seed: int) -> None:
    patients, events, households, expected = practice(n_patients, seed)
    engine = engine_flags(n_patients, seed)
    reference = reference_flags_from_frames(patients, events, households, AS_OF)
    assert engine == reference, "engine vs reference\n" + disagreement("engine", engine, "reference", reference)
    assert engine == expected, "engine vs generator\n" + disagreement("engine", engine, "expected", expected)


@pytest.mark.parametrize("seed", [11, 2026])
def test_engine_equals_reference_and_generator(seed):
    check_practice(3_000, seed)


def test_every_rule_fires_on_generated_practices():
    # Otherwise the comparisons above could pass by flagging nothing.
    fired = {rule for seed in (11, 2026) for _, rule in engine_flags(3_000, seed)}
    assert fired == set(RULE_IDS)


def test_recorded_relationships_change_the_words_not_the_flags():
    patients, events, households, _ = practice(3_000, 11)
    relationships = generate_practice(3_000, 11, AS_OF, include_household_ids=True).relationships
    flags = evaluate_rules(load_ruleset(), patients, events, households, AS_OF, relationships).flags
    assert set(zip(flags["patient_id"], flags["rule_id"])) == engine_flags(3_000, 11)
    assert flags["reason"].str.contains("(recorded)", regex=False).any()
    known = dict(zip(households["patient_id"], households["household_id"]))
    assert all(known[pid] == hid for pid, hid in zip(flags["patient_id"], flags["household_id"]))


@pytest.mark.slow
def test_engine_equals_reference_and_generator_on_20000_patients():
    start = time.perf_counter()
    check_practice(20_000, 7)
    assert time.perf_counter() - start < 60


# --- dense random households -------------------------------------------------------------------
# The generator plants each scenario on a quiet background. Here every household is crowded
# with codes from every default codelist, dated around every window edge (and on the same
# days), so that the engine and the reference meet the combinations no scenario spells out.

def dense_practice(n_households: int, seed: int, as_of: date = AS_OF
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ruleset = load_ruleset()
    lists = [sorted(ruleset.codelists[name].codes) for name in CODELIST_NAMES]
    a = pd.Timestamp(as_of)
    eighteenth = a - pd.DateOffset(years=18)  # born on this day: 18 on A
    edges = [0, 280, 281, 365, 366, 730, 731]
    rows_p, rows_e = [], []
    for h in range(n_households):
        dobs: list[pd.Timestamp] = []
        leap_pair = rng.random() < 0.05  # a parent born on 29 February, a child 14 years on
        for m in range(int(rng.integers(2 if leap_pair else 1, 6))):
            pid = f"D{h:05d}{m}"
            kind = rng.random()
            if leap_pair and m < 2:
                year = int(rng.choice([1980, 1988, 1996, 2000, 2004]))
                if m == 0:
                    dob = pd.Timestamp(year, 2, 29)
                else:  # 28 February: not yet 14 years younger; 1 March: 14 years younger
                    dob = pd.Timestamp(year + 14, 2, 28) if rng.random() < 0.5 else pd.Timestamp(year + 14, 3, 1)
            elif kind < 0.15:  # around the 18th birthday
                dob = eighteenth + pd.Timedelta(days=int(rng.integers(-2, 3)))
            elif kind < 0.25 and dobs:  # around 14 years older than an earlier member
                dob = dobs[0] - pd.DateOffset(years=14) + pd.Timedelta(days=int(rng.integers(-1, 2)))
            elif kind < 0.30:  # born on a 29 February
                dob = pd.Timestamp(int(rng.choice([1980, 1996, 2004, 2008, 2012, 2020])), 2, 29)
            elif kind < 0.65:
                dob = a - pd.Timedelta(days=int(rng.integers(0, 18 * 365)))
            else:
                dob = a - pd.Timedelta(days=int(rng.integers(18 * 365, 60 * 365)))
            dobs.append(dob)
            sex = "FMU"[int(rng.choice(3, p=[0.55, 0.4, 0.05]))]
            rows_p.append((pid, "Forename" + pid, "Surname", dob, sex, f"DH{h:05d}"))
            for _ in range(int(rng.poisson(4))):
                codes = lists[int(rng.integers(len(lists)))]
                if rng.random() < 0.5:
                    days = edges[int(rng.integers(len(edges)))] + int(rng.integers(-1, 2))
                else:
                    days = int(rng.integers(-3, 3000))
                rows_e.append((pid, codes[int(rng.integers(len(codes)))], "", a - pd.Timedelta(days=days)))
    patients = pd.DataFrame(rows_p, columns=["patient_id", "forenames", "surname", "date_of_birth",
                                             "sex", "household_id"])
    events = pd.DataFrame(rows_e, columns=["patient_id", "code", "term", "date"])
    return patients, events, patients[["patient_id", "household_id"]]


@pytest.mark.parametrize("seed, as_of", [
    (1, AS_OF), (2, date(2024, 2, 29)), (3, date(2025, 2, 28)), (4, date(2025, 3, 1))])
def test_engine_equals_reference_on_dense_random_households(seed, as_of):
    patients, events, households = dense_practice(1_500, seed, as_of)
    flags = evaluate_rules(load_ruleset(), patients, events, households, as_of).flags
    engine = set(zip(flags["patient_id"], flags["rule_id"]))
    reference = reference_flags_from_frames(patients, events, households, as_of)
    assert {r for _, r in engine} == set(RULE_IDS)
    assert engine == reference, "engine vs reference\n" + disagreement("engine", engine, "reference", reference)
