"""Tests of out5's speed changes against the code they replace."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link.engine import _Context, rule_triggers
from family_link.households import link_households
from family_link.layouts import load_any_export
from family_link.rules import load_ruleset

AS_OF = date(2026, 11, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"


@pytest.fixture(scope="module")
def sample():
    export = load_any_export(SAMPLE, AS_OF)
    return export, link_households(export.patients, export.relationships, AS_OF)


def _rule_triggers_with_households(ruleset, patients, events, households, as_of):
    """rule_triggers as it was: each patient's household looked up first."""
    ctx = _Context(ruleset, patients, events, households, as_of, None)
    parts = [ctx.condition(rule.trigger)[["patient_id", "code", "term", "date"]].assign(rule_id=rule.id)
             for rule in ruleset.rules]
    return pd.concat(parts, ignore_index=True)[["patient_id", "rule_id", "code", "term", "date"]]


@pytest.mark.parametrize("every", [1, 3])
def test_rule_triggers_do_not_depend_on_the_household_lookup(sample, every):
    export, households = sample
    ruleset = load_ruleset(None)
    patients = export.patients.iloc[::every]
    got = rule_triggers(ruleset, patients, export.events, households, AS_OF)
    want = _rule_triggers_with_households(ruleset, patients, export.events, households, AS_OF)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("every", [1, 3])
def test_rule_triggers_from_all_or_coded_events_are_those_from_the_patients_events(sample, every):
    """check.py hands rule_triggers the unplaced patients' own events; everyone's events,
    or the coded ones the evaluation kept, give the same triggers."""
    from family_link.engine import evaluate_rules

    export, households = sample
    ruleset = load_ruleset(None)
    patients = export.patients.iloc[::every]
    own = export.events[export.events["patient_id"].isin(set(patients["patient_id"]))]
    want = _rule_triggers_with_households(ruleset, patients, own, households, AS_OF)
    assert len(want) > 0 and (every == 1 or len(own) < len(export.events))
    pd.testing.assert_frame_equal(rule_triggers(ruleset, patients, export.events, households, AS_OF), want)
    coded = evaluate_rules(ruleset, export.patients, export.events, households, AS_OF,
                           export.relationships).coded_events
    assert len(coded) < len(export.events)
    pd.testing.assert_frame_equal(rule_triggers(ruleset, patients, coded, households, AS_OF), want)


@pytest.mark.parametrize("n", [1, 5, 7, 12, 20, 21, 66, 200])
def test_worklist_sheet_pieces_are_those_made_one_piece_at_a_time(monkeypatch, n):
    """The batched pieces are, byte for byte and piece for piece, the XML of each
    ``_XLSX_PIECE_ROWS`` rows made on its own (as before the batching)."""
    import numpy as np

    from family_link import worklist as W

    rng = np.random.default_rng(n)
    texts = np.array(["plain", "Zoë & <b>", " padded ", "a\r\nb", "", "x" * 50], dtype=object)
    rows = pd.DataFrame({col: pd.Series(texts[rng.integers(0, len(texts), n)], dtype="str")
                         for col in W.WORKLIST_COLUMNS})
    rows["date_of_birth"] = pd.Series(np.where(rng.random(n) < 0.2, "", "1999-02-28"), dtype="str")
    rows["first_flagged"] = pd.Series(np.where(rng.random(n) < 0.5, "", "2026-10-01"), dtype="str")
    cols = W._xlsx_columns(rows)
    assert cols is not None
    monkeypatch.setattr(W, "_XLSX_PIECE_ROWS", 5)
    want = [W._xlsx_rows_xml({c: a.slice(first, min(5, n - first)) for c, a in cols.items()},
                             min(5, n - first), 1, 2, first) for first in range(0, n, 5)]
    got = list(W._xlsx_rows_pieces(cols, n, 1, 2))
    assert got == want
    assert b"".join(got) == W._xlsx_rows_xml(cols, n, 1, 2)


_XLSX_CHARS = ["a", "Z", " ", "\t", "\n", "\r", "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\x7f",
               "é", "\ufffe", "\uffff", "\ufffd", "\uf000", "\ue000", "😀"]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(alphabet=st.sampled_from(_XLSX_CHARS), max_size=6), max_size=8),
       cut=st.integers(0, 3), limit=st.integers(0, 7))
def test_xlsx_byte_checks_are_the_regex_and_the_length(values, cut, limit):
    import pyarrow as pa
    import pyarrow.compute as pc

    from family_link import worklist as W

    for arr in (pa.array(values, pa.large_string()), pa.array(values, pa.large_string()).slice(min(cut, len(values)))):
        regex = bool(pc.any(pc.match_substring_regex(arr, W._XLSX_UNSAFE)).as_py()) if len(arr) else False
        assert W._holds_xlsx_unsafe(arr) == regex
        longer = bool(pc.any(pc.greater(pc.utf8_length(arr), limit)).as_py()) if len(arr) else False
        assert W._longer_than(arr, limit) == longer


_HTML_TEXT = st.text(alphabet=st.sampled_from(["a", "B", " ", "&", "<", ">", '"', "'", "é", "İ", "ẞ", "Σ", "ß", "\n"]),
                     max_size=5)


def _resolve_rows_plain(to_resolve: pd.DataFrame) -> str:
    from html import escape

    return "".join(f"<tr><td>{escape(r.name)}<br><span class='muted'>patient {escape(r.patient_id)}</span></td>"
                   f"<td>{escape(r.date_of_birth)}</td><td>{escape(r.address)}</td>"
                   f"<td>{escape(r.evidence)}</td><td>{escape(r.triggers)}</td></tr>"
                   for r in to_resolve.itertuples(index=False))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_HTML_TEXT, min_size=1, max_size=8), dtype=st.sampled_from(["str", object]), data=st.data())
def test_resolve_rows_html_is_the_row_by_row_text(values, dtype, data):
    from family_link import worklist as W

    names = ("patient_id", "name", "date_of_birth", "address", "evidence", "triggers")
    frame = pd.DataFrame({c: pd.Series(data.draw(st.permutations(values)), dtype=dtype) for c in names})
    got = W._resolve_rows_html(frame)
    assert (got if isinstance(got, str) else got.decode("utf-8")) == _resolve_rows_plain(frame)
    assert W._sorted_distinct(frame["name"]) == sorted(set(frame["name"]))
    assert W._lower(W._arrow_text(frame["name"])).to_pylist() == [v.lower() for v in frame["name"]]


def test_resolve_rows_html_with_a_missing_value_goes_the_plain_way():
    from family_link import worklist as W

    frame = pd.DataFrame({c: pd.Series(["a&b", "c"], dtype=object) for c in
                          ("patient_id", "name", "date_of_birth", "address", "evidence", "triggers")})
    assert W._resolve_rows_html(frame) == W._resolve_rows_html(frame.astype("str")) \
        == _resolve_rows_plain(frame).encode("utf-8")
    frame.loc[1, "address"] = None
    with pytest.raises(AttributeError):  # html.escape(None), as the row-by-row code did
        W._resolve_rows_html(frame)


def _positions_plain(keys: pd.Series, ids: pd.Series):
    """engine._positions before its binary search: a hash table of the distinct keys."""
    import numpy as np

    from family_link._frames import index_in

    if len(keys) == 0 or len(ids) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    codes, distinct = pd.factorize(keys.astype(str), use_na_sentinel=True)
    where = index_in(ids, pd.Series(distinct))
    found = np.flatnonzero(where >= 0)
    position = np.full(len(distinct), -1, dtype=np.int64)
    position[where[found][::-1]] = found[::-1]
    out = np.full(len(keys), -1, dtype=np.int64)
    known = codes >= 0
    out[known] = position[codes[known]]
    return out


_IDS = st.text(alphabet=st.sampled_from(["P", "0", "1", "9", "é"]), min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(_IDS, max_size=12), extra=st.lists(_IDS, max_size=5), sort=st.booleans(),
       missing=st.booleans(), data=st.data())
def test_positions_is_the_hash_lookup(ids, extra, sort, missing, data):
    import numpy as np

    from family_link.engine import _positions

    table = sorted(set(ids)) if sort else ids
    pool = table + extra
    keys = data.draw(st.lists(st.sampled_from(pool), max_size=15)) if pool else []
    key_series = pd.Series(keys + ([None] if missing else []), dtype="str")
    id_series = pd.Series(table, dtype="str")
    np.testing.assert_array_equal(_positions(key_series, id_series), _positions_plain(key_series, id_series))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(
    ["=", "+", "-", "@", "\t", "\r", "a", " ", "'", "é", "＝"]), max_size=4)), max_size=8), cut=st.integers(0, 3))
def test_as_text_column_is_the_regex_prefix(values, cut):
    import pyarrow as pa
    import pyarrow.compute as pc

    from family_link import worklist as W

    for arr in (pa.array(values, pa.large_string()), pa.array(values, pa.large_string()).slice(min(cut, len(values)))):
        want = pc.if_else(pc.match_substring_regex(arr, W._FORMULA_START_RE), W._cat("'", arr), arr)
        assert W._as_text_column(arr).to_pylist() == want.to_pylist()
        assert W._as_text_column(arr).to_pylist() == [None if v is None else W._as_text(v) for v in arr.to_pylist()]
