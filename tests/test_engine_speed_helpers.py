"""The integer-array helpers behind the rule engine's speed, each against the plain pandas
operation it stands for (tiny inline tables and hypothesis properties), and the engine
itself on households given in another order or incomplete, where it takes its slower
(merge-free, but not aligned) path."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link.engine import (
    _join_runs,
    _last_per,
    _pairs_within_households,
    _positions,
    _run_starts,
    _strftime,
    evaluate_rules,
)
from family_link.rules import load_ruleset

ids = st.lists(st.sampled_from(["P1", "P2", "P3", "P10", "Q", ""]), max_size=12)


@given(keys=ids, table=ids)
def test_positions_is_the_first_matching_row_or_minus_one(keys, table):
    for dtype in ("str", object):
        got = _positions(pd.Series(keys, dtype=dtype), pd.Series(table, dtype=dtype))
        expected = [table.index(k) if k in table else -1 for k in keys]
        assert got.tolist() == expected


@given(groups=st.lists(st.integers(0, 4), max_size=15), data=st.data())
def test_last_per_is_drop_duplicates_keep_last(groups, data):
    group = np.array(groups, dtype=np.int64)
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, max(len(groups) - 1, 0)), max_size=len(groups)))
                           if groups else []), dtype=np.int64)
    frame = pd.DataFrame({"row": rows, "g": group[rows] if len(rows) else np.zeros(0, dtype=np.int64)})
    expected = frame.drop_duplicates("g", keep="last")["row"].tolist()
    assert _last_per(rows, group).tolist() == expected


@given(trig=st.lists(st.integers(0, 3), max_size=6), household=st.lists(st.integers(0, 4), max_size=10))
def test_pairs_within_households_is_the_join_on_household(trig, household):
    t, h = np.array(trig, dtype=np.int64), np.array(household, dtype=np.int64)
    row, member = _pairs_within_households(t, h)
    expected = sorted((i, j) for i, a in enumerate(trig) for j, b in enumerate(household) if a == b)
    assert sorted(zip(row.tolist(), member.tolist())) == expected
    merged = pd.DataFrame({"i": range(len(t)), "h": t}).merge(pd.DataFrame({"j": range(len(h)), "h": h}), on="h")
    assert len(merged) == len(row)


@given(words=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.text(max_size=4)), max_size=12),
       sep=st.sampled_from([" ", ";", "; "]))
def test_join_runs_is_groupby_join_on_sorted_keys(words, sep):
    frame = pd.DataFrame(sorted(words), columns=["key", "text"]).astype({"key": "str", "text": "str"})
    starts = _run_starts(frame["key"])
    expected = frame.groupby("key", sort=True)["text"].agg(sep.join)
    got = _join_runs(frame["text"], starts, sep)
    assert got.tolist() == expected.tolist()
    assert frame["key"].iloc[starts].tolist() == expected.index.tolist()


def test_join_runs_takes_chunked_and_object_columns():
    chunked = pd.concat([pd.Series(["x", "y"], dtype="str"), pd.Series(["z"], dtype="str")], ignore_index=True)
    assert _join_runs(chunked, np.array([0, 2]), ";").tolist() == ["x;y", "z"]
    assert _join_runs(pd.Series(["x", "y"], dtype=object), np.array([0]), " ").tolist() == ["x y"]
    assert _join_runs(pd.Series([], dtype="str"), np.zeros(0, dtype=np.int64), " ").tolist() == []


@settings(max_examples=50)
@given(days=st.lists(st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2100, 12, 31))), max_size=10))
def test_strftime_is_dt_strftime(days):
    s = pd.Series(pd.to_datetime(pd.Series(days, dtype=object)), index=np.arange(len(days))[::-1])
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        pd.testing.assert_series_equal(_strftime(s, fmt), s.dt.strftime(fmt))


# --- the engine on households in another order, incomplete or with blanks ------------------

A = date(2025, 6, 30)


def _practice():
    """Two households: a child on a plan with a sibling and a parent; a pregnant woman
    with a learning-disabled partner; and a person with no households row."""
    rs = load_ruleset()
    code = {name: sorted(rs.codelists[name].codes)[0] for name in
            ("cp_plan_start", "pregnancy", "learning_disability", "domestic_abuse")}
    patients = pd.DataFrame({
        "patient_id": ["a1", "a2", "a3", "b1", "b2", "c1"],
        "forenames": ["Ann", "Ben", "Mum", "Eve", "Dan", "Cy"],
        "surname": ["One"] * 3 + ["Two"] * 2 + ["Three"],
        "date_of_birth": pd.to_datetime([A - timedelta(days=365 * y) for y in (8, 5, 35, 30, 33, 40)]),
        "sex": ["F", "M", "F", "F", "M", "M"],
    })
    events = pd.DataFrame({
        "patient_id": ["a1", "b1", "b2", "c1", "zz"],
        "code": [code["cp_plan_start"], code["pregnancy"], code["learning_disability"],
                 code["domestic_abuse"], code["domestic_abuse"]],
        "term": ["", "", "", "", ""],
        "date": pd.to_datetime([A - timedelta(days=d) for d in (100, 30, 400, 10, 10)]),
    })
    households = pd.DataFrame({"patient_id": ["a1", "a2", "a3", "b1", "b2"],
                               "household_id": ["H1", "H1", "H1", "H2", "H2"]})
    return rs, patients, events, households


def test_households_in_any_order_give_the_same_evaluation():
    rs, patients, events, households = _practice()
    base = evaluate_rules(rs, patients, events, households, A)
    assert set(base.flags["rule_id"]) >= {"cp-sibling", "cp-parent", "pre-birth"}
    for other in (households.iloc[::-1], pd.concat([households.iloc[3:], households.iloc[:3]])):
        again = evaluate_rules(rs, patients, events, other, A)
        pd.testing.assert_frame_equal(again.flags, base.flags)
        pd.testing.assert_frame_equal(again.scope, base.scope)


def test_a_patient_without_a_household_row_or_with_a_blank_one_lives_alone():
    rs, patients, events, households = _practice()
    blank = pd.concat([households, pd.DataFrame({"patient_id": ["c1"], "household_id": [""]})], ignore_index=True)
    missing = evaluate_rules(rs, patients, events, households, A)
    given_blank = evaluate_rules(rs, patients, events, blank, A)
    pd.testing.assert_frame_equal(missing.flags, given_blank.flags)
    pd.testing.assert_frame_equal(missing.scope, given_blank.scope)
    # Events of a patient who is not in the patients frame ("zz") trigger nothing.
    assert "zz" not in set(missing.flags["trigger_patient_ids"].str.split(";").explode())
