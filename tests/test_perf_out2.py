"""The post-linkage speed helpers of perf-out2, each against the plain pandas code it
replaces (hypothesis properties over small tables with missing values, duplicates and
non-ASCII text), and the Worklist sheet's XML written in pieces against in one go."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import worklist as W
from family_link.engine import (
    _evidence,
    _evidence_plain,
    _joined,
    _joined_plain,
    _targets_satisfied,
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
    try:
        expected = _evidence_plain(frame, relation, "")
    except TypeError:
        return  # the plain way fails on it too
    pd.testing.assert_series_equal(_evidence(frame, relation, ""), expected)


@settings(max_examples=80, deadline=None)
@given(a=st.lists(words, max_size=8), data=st.data())
def test_joined_is_pandas_plus(a, data):
    b = data.draw(st.lists(words, min_size=len(a), max_size=len(a)))
    index = data.draw(st.permutations(list(range(len(a)))))
    left = pd.Series(a, index=index, dtype="str")
    right = pd.Series(b, index=index, dtype="str")
    pd.testing.assert_series_equal(_joined(left, " ", right), _joined_plain(left, " ", right))


@settings(max_examples=120, deadline=None)
@given(people=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["P1", "P2", "P10", "é", "Q"])),
                                 st.one_of(st.none(), st.sampled_from(["H1", "H2", "H-P1"]))),
                       min_size=1, max_size=6),
       data=st.data())
def test_targets_satisfied_is_the_group_by(people, data):
    k = len(people)
    target = np.array(data.draw(st.lists(st.integers(0, k - 1), max_size=12)), dtype=np.int64)
    satisfied = np.array(data.draw(st.lists(st.booleans(), min_size=len(target), max_size=len(target))), dtype=bool)
    for dtype in ("str", object):
        pid = pd.Series([people[t][0] for t in target], dtype=dtype)
        hid = pd.Series([people[t][1] for t in target], dtype=dtype)
        pairs = pd.DataFrame({"patient_id": pid, "household_id": hid, "satisfied": satisfied})
        pd.testing.assert_frame_equal(_targets_satisfied(pairs, target), _targets_satisfied_plain(pairs))


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
        monkeypatch.setattr(W, "_XLSX_PIECE_ROWS", 5)
        pieces = W.render_worklist_xlsx(rows, facts, resolved)
        monkeypatch.setattr(W, "_xlsx_rows_pieces", lambda *a: W._xlsx_rows_xml(*a))
        whole = W.render_worklist_xlsx(rows, facts, resolved)
        monkeypatch.undo()
        assert pieces == whole
        with zipfile.ZipFile(io.BytesIO(pieces)) as z:
            assert z.testzip() is None
