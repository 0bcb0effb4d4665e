"""The post-linkage speed helpers of perf-out2, each against the plain pandas code it
replaces (hypothesis properties over small tables with missing values, duplicates and
non-ASCII text), and the Worklist sheet's XML written in pieces against in one go."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import worklist as W
from family_link.engine import (
    _evidence,
    _evidence_plain,
    _joined,
    _joined_plain,
    _same_text,
    _targets_satisfied_at,
    _targets_satisfied_plain,
)

words = st.one_of(st.none(), st.sampled_from(["", "A", "B b", "Zoë", "é'x", "P1", "P10", "This patient"]))


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(words, words, words, words, words,
                               st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2030, 1, 1)))),
                     max_size=8),
       note=st.sampled_from(["", ", and it has not been ended"]), data=st.data())
def test_evidence_is_the_plain_concatenation(rows, note, data):
    n = len(rows)
    index = data.draw(st.permutations(list(range(100, 100 + n))))
    frame = pd.DataFrame({
        "trigger_name": pd.array([r[1] for r in rows], dtype="str"),
        "trigger_patient_id": pd.array([r[2] for r in rows], dtype="str"),
        "trigger_term": pd.array([r[3] for r in rows], dtype="str"),
        "trigger_code": np.array([r[4] for r in rows], dtype=object),
        "trigger_date": pd.to_datetime(pd.Series([r[5] for r in rows], dtype=object)),
    }, index=index)
    relation = pd.Series(np.array([r[0] if r[0] is not None else "This patient" for r in rows], dtype=object),
                         index=index)
    try:
        expected = _evidence_plain(frame, relation, note)
    except TypeError:  # pandas refuses str + an all-missing object column; the engine never has one
        return
    pd.testing.assert_series_equal(_evidence(frame, relation, note), expected)


def test_evidence_with_a_code_that_is_not_text_goes_the_plain_way():
    frame = pd.DataFrame({"trigger_name": ["A"], "trigger_patient_id": ["P1"], "trigger_term": ["t"],
                          "trigger_code": pd.Series([{"not": "text"}], dtype=object),
                          "trigger_date": pd.to_datetime(["2020-01-01"])})
    relation = pd.Series(["This patient"], dtype=object)
    # Arrow refuses the code (an ArrowTypeError, itself a TypeError), so _evidence hands the
    # frame to _evidence_plain, whose pandas addition refuses it in its own words: only
    # that message shows the plain way was taken.
    with pytest.raises(TypeError, match="operation 'add' not supported"):
        _evidence_plain(frame, relation, "")
    with pytest.raises(TypeError, match="operation 'add' not supported"):
        _evidence(frame, relation, "")


@settings(max_examples=80, deadline=None)
@given(a=st.lists(words, max_size=8), data=st.data())
def test_joined_is_pandas_plus(a, data):
    b = data.draw(st.lists(words, min_size=len(a), max_size=len(a)))
    index = data.draw(st.permutations(list(range(len(a)))))
    left = pd.Series(a, index=index, dtype="str")
    right = pd.Series(b, index=index, dtype="str")
    pd.testing.assert_series_equal(_joined(left, " ", right), _joined_plain(left, " ", right))


@settings(max_examples=120, deadline=None)
@given(people=st.lists(st.tuples(st.sampled_from(["P1", "P2", "P10", "é", "Q", None]),
                                 st.sampled_from(["H1", "H2", "H-P1", None])),
                       min_size=1, max_size=6),
       data=st.data())
def test_targets_satisfied_is_the_group_by(people, data):
    k = len(people)
    target = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=12)), dtype=np.int64)
    satisfied = np.array(data.draw(st.lists(st.booleans(), min_size=len(target), max_size=len(target))), dtype=bool)
    frame = pd.DataFrame({"patient_id": pd.Series([p for p, _ in people], dtype="str"),
                          "household_id": pd.Series([h for _, h in people], dtype="str")})
    pairs = pd.DataFrame({"patient_id": frame["patient_id"].iloc[target].reset_index(drop=True),
                          "household_id": frame["household_id"].iloc[target].reset_index(drop=True),
                          "satisfied": satisfied})
    fast = _targets_satisfied_at(frame, target, satisfied)
    # None: the engine goes the plain way (a missing id or household, one id at two places).
    assert fast is not None or frame.iloc[np.unique(target)].isna().any(axis=None) \
        or frame["patient_id"].iloc[np.unique(target)].duplicated().any()
    if fast is not None:
        pd.testing.assert_frame_equal(fast, _targets_satisfied_plain(pairs))


def _rows(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    texts = np.array(["plain", "=formula", "Zoë & <b>", " padded ", "a\r\nb", "", "x" * 50], dtype=object)
    rows = pd.DataFrame({col: pd.Series(texts[rng.integers(0, len(texts), n)], dtype="str")
                         for col in W.WORKLIST_COLUMNS})
    rows["date_of_birth"] = pd.Series(np.where(rng.random(n) < 0.2, "", "1999-02-28"), dtype="str")
    rows["first_flagged"] = pd.Series(np.where(rng.random(n) < 0.5, "", "2026-10-01"), dtype="str")
    return rows


def test_worklist_sheet_in_pieces_is_the_sheet_in_one_go(monkeypatch):
    facts = W.WorklistFacts(as_of=date(2026, 11, 1), rule_titles={"r": "R"}, rule_severities={"r": "action"})
    resolved = pd.DataFrame(columns=["patient_id"])
    for n in (1, 7, 12):
        rows = _rows(n)
        assert W._xlsx_columns(rows) is not None  # the direct path, which is cut into pieces
        monkeypatch.setattr(W, "_XLSX_PIECE_ROWS", 5)
        pieces = W.render_worklist_xlsx(rows, facts, resolved)
        monkeypatch.setattr(W, "_xlsx_rows_pieces", lambda *a: W._xlsx_rows_xml(*a))
        whole = W.render_worklist_xlsx(rows, facts, resolved)
        monkeypatch.undo()
        assert pieces == whole
        with zipfile.ZipFile(io.BytesIO(pieces)) as z:
            assert z.testzip() is None


@given(a=st.lists(words, max_size=6), data=st.data())
def test_same_text_is_elementwise_equality(a, data):
    b = data.draw(st.one_of(st.just(list(a)), st.lists(words, min_size=len(a), max_size=len(a))))
    for left_type in ("str", object):
        left = pd.Series(a, dtype=left_type)
        right = pd.concat([pd.Series(b[:2], dtype="str"), pd.Series(b[2:], dtype="str")], ignore_index=True)
        assert _same_text(left, right) == bool((left.astype(str) == right.astype(str)).all())


def _member_lists_plain(members: pd.DataFrame, household_ids: pd.Series) -> list[list[str]]:
    members = members[members["household_id"].notna()].sort_values(["household_id", "patient_id"], kind="mergesort")
    by_household: dict[str, list[str]] = {}
    for h, m in zip(members["household_id"], members["member"]):
        by_household.setdefault(h, []).append(m)
    return [by_household.get(h, []) for h in household_ids]


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["H1", "H2", "Hé", "H10"])),
                               st.one_of(st.none(), st.sampled_from(["P1", "P2", "P10", "Zoë", "p1"]))),
                     max_size=10),
       wanted=st.lists(st.sampled_from(["H1", "H2", "Hé", "H10", "H3"]), max_size=5))
def test_member_lists_in_household_then_patient_order(rows, wanted):
    for dtype in ("str", object):
        members = pd.DataFrame({"household_id": pd.Series([r[0] for r in rows], dtype=dtype),
                                "patient_id": pd.Series([r[1] for r in rows], dtype=dtype),
                                "member": pd.Series([f"m{i}" for i in range(len(rows))], dtype=dtype)})
        got = W._member_lists(members, pd.Series(wanted, dtype="str")).to_pylist()
        assert got == _member_lists_plain(members, wanted)
