"""worklist_rows' Arrow path for households that hold the patients row for row
(_worklist_rows_aligned) against the frame code it spares (merges and a pandas sort)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import worklist as W

TEXT = st.sampled_from(["", "a", "B", "Zoë", "é", "x y", " pad ", "<&>", "Ω", "z"])


def _frame_rows(flags, patients, households, rule_order):
    """worklist_rows without the aligned path (the merges and the sort of the frame)."""
    saved = W._worklist_rows_aligned
    W._worklist_rows_aligned = lambda *a: None
    try:
        return W.worklist_rows(flags, patients, households, rule_order)
    finally:
        W._worklist_rows_aligned = saved


@st.composite
def practices(draw):
    n = draw(st.integers(1, 12))
    ids = [f"P{i:03d}" for i in draw(st.permutations(range(n)))]
    homes = draw(st.lists(st.sampled_from(["H1", "H2", "H3", "Hé"]), min_size=n, max_size=n))
    missing = st.one_of(TEXT, st.none())
    patients = pd.DataFrame({
        "patient_id": pd.Series(ids, dtype="str"),
        "forenames": pd.Series(draw(st.lists(missing, min_size=n, max_size=n)), dtype="str"),
        "surname": pd.Series(draw(st.lists(missing, min_size=n, max_size=n)), dtype="str"),
        "date_of_birth": pd.to_datetime(draw(st.lists(st.sampled_from(["2001-02-03", "1999-12-31", None]),
                                                      min_size=n, max_size=n))),
        "nhs_number": pd.Series(draw(st.lists(missing, min_size=n, max_size=n)), dtype="str"),
    })
    households = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "household_id": pd.Series(homes, dtype="str"),
                               "role": pd.Series(draw(st.lists(st.sampled_from(["adult", "child"]), min_size=n,
                                                               max_size=n)), dtype="str")})
    k = draw(st.integers(0, 15))
    flagged = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))
    rules = draw(st.lists(st.sampled_from(["r2", "r1", "x", "é"]), min_size=k, max_size=k))
    flags = pd.DataFrame({
        "patient_id": np.array([ids[i] for i in flagged], dtype=object),
        "household_id": np.array([homes[i] for i in flagged], dtype=object),
        "rule_id": np.array(rules, dtype=object),
        "severity": np.array(draw(st.lists(st.sampled_from(["action", "review", "other"]), min_size=k, max_size=k)),
                             dtype=object),
        **{c: np.array(draw(st.lists(missing, min_size=k, max_size=k)), dtype=object)
           for c in ("title", "recommendations", "reason", "suggested_codes")},
    })
    if draw(st.booleans()):
        flags["status"] = pd.Series(draw(st.lists(st.sampled_from(["new", "open"]), min_size=k, max_size=k)),
                                    dtype="str")
        flags["first_flagged"] = pd.Series(draw(st.lists(st.sampled_from(["", "2026-01-02"]), min_size=k,
                                                         max_size=k)), dtype="str")
    return flags, patients, households


@settings(max_examples=150, deadline=None)
@given(practices(), st.sampled_from([None, ["r1", "r2"], ["x", "r1", "é", "r2"]]))
def test_aligned_rows_are_the_frame_rows(practice, rule_order):
    flags, patients, households = practice
    want = _frame_rows(flags, patients, households, rule_order)
    got = W.worklist_rows(flags, patients, households, rule_order)
    pd.testing.assert_frame_equal(got, want)


def test_the_aligned_path_answers_for_an_ordinary_practice_and_declines_otherwise():
    patients = pd.DataFrame({"patient_id": pd.Series(["A", "B", "C"], dtype="str"),
                             "forenames": pd.Series(["Amy", "Sam", "Al"], dtype="str"),
                             "surname": pd.Series(["Price", "Price", "Li"], dtype="str"),
                             "date_of_birth": pd.to_datetime(["2014-05-06", "2016-07-08", "1980-01-01"]),
                             "nhs_number": pd.Series(["1", "", "3"], dtype="str")})
    households = pd.DataFrame({"patient_id": patients["patient_id"],
                               "household_id": pd.Series(["H1", "H1", "H2"], dtype="str"),
                               "role": pd.Series(["child", "child", "adult"], dtype="str")})
    flags = pd.DataFrame({"patient_id": ["B", "A"], "household_id": ["H1", "H1"], "rule_id": ["r", "r"],
                          "severity": ["action", "action"], "title": ["T", "T"], "recommendations": ["11", "11"],
                          "reason": ["why", None], "suggested_codes": ["1 x", "1 x"]}, dtype=object)
    at = np.array([0, 1])
    rows = W._worklist_rows_aligned(flags, patients, households, at, ["r"])
    assert rows is not None
    pd.testing.assert_frame_equal(rows, _frame_rows(flags, patients, households, ["r"]))
    assert list(rows["patient_id"]) == ["A", "B"] and rows.loc[0, "reason"] == ""
    assert rows.loc[0, "household_members"] == "Amy Price (A, child); Sam Price (B, child)"
    # A flag whose patient is outside the flagged households' rows, a non-text value,
    # a missing rule id: the frame code answers.
    assert W._worklist_rows_aligned(flags, patients, households, np.array([0]), ["r"]) is None
    assert W._worklist_rows_aligned(flags.assign(title=[1, 2]), patients, households, at, ["r"]) is None
    assert W._worklist_rows_aligned(flags.assign(rule_id=["r", None]), patients, households, at, ["r"]) is None
    for odd in (flags.assign(title=[1, 2]), flags.assign(rule_id=["r", None])):
        pd.testing.assert_frame_equal(W.worklist_rows(odd, patients, households, ["r"]),
                                      _frame_rows(odd, patients, households, ["r"]))
