"""The reader's later shortcuts against what they replace (see test_export_speed_helpers.py
for the earlier ones): each must give exactly the same values."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._export import _arrow_frame
from family_link._frames import _short_keys, index_in, index_in_runs, short_index_in, text_series

SPACES = [" ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000"]
cells = st.text(st.sampled_from(list("ab1 ,\"\r\n") + SPACES + ["é", "\u0661", "’", "😀", "\x00"]), max_size=5)


def quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cells, min_size=3, max_size=3), max_size=8), st.booleans())
def test_valid_utf8_text_reads_the_same_without_arrows_own_check(rows, quote_all):
    text = "a,b,c\n" + "".join(",".join(quoted(c) if quote_all or any(x in c for x in ',"\r\n') else c
                                        for c in row) + "\n" for row in rows)
    data = text.encode("utf-8")
    checked = _arrow_frame(data)
    unchecked = _arrow_frame(data, valid_utf8=True)
    if checked is None:
        assert unchecked is None
    else:
        pd.testing.assert_frame_equal(unchecked, checked, check_exact=True)


ids = st.lists(st.sampled_from(["P1", "P2", "P3", "", "P10", "é"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(ids, st.lists(st.integers(1, 4), max_size=40), st.lists(st.integers(0, 60), max_size=4),
       st.lists(st.sampled_from(["P1", "P2", "P10", "x", ""]), unique=True, max_size=5))
def test_index_in_runs_is_index_in(values, repeats, cuts, table):
    # Runs of equal neighbours, as an events file lists a patient's events together.
    values = [v for v, r in zip(values, repeats + [1] * len(values)) for _ in range(r)]
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    parts = [pa.array(values[a:b], type=pa.large_string()) for a, b in zip(bounds, bounds[1:])]
    series = text_series(pa.chunked_array(parts, type=pa.large_string()))
    lookup = pd.Series(table, dtype=str)
    got = index_in_runs(series, lookup)
    assert got.dtype == index_in(series, lookup).dtype
    assert got.tolist() == index_in(series, lookup).tolist()


def test_index_in_runs_on_runs_and_missing_values():
    table = pd.Series(["P2", "P1"], dtype=str)
    runs = pd.Series(["P1", "P1", "P1", "P2", "P2", "P9", "P9", "P9", "P1"], dtype=str)
    assert index_in_runs(runs, table).tolist() == [1, 1, 1, 0, 0, -1, -1, -1, 1]
    missing = pd.Series(["P1", None, None, "P2"], dtype=str)
    assert index_in_runs(missing, table).tolist() == index_in(missing, table).tolist()
    assert index_in_runs(pd.Series([], dtype=str), table).tolist() == []


short_ids = st.text(st.sampled_from(["P", "0", "1", "9", "é", "\x00", "\uffff", "😀"]), max_size=9)


@settings(max_examples=500, deadline=None)
@given(st.lists(short_ids, max_size=30), st.lists(short_ids, max_size=12), st.booleans(),
       st.lists(st.integers(0, 40), max_size=3))
def test_short_index_in_is_index_in(values, table, ordered, cuts):
    # Sorted distinct tables take the binary search (when every id is short and has no
    # NUL byte); anything else Arrow's hash lookup. Both must answer as index_in does.
    if ordered:
        table = sorted(set(table), key=lambda t: t.encode("utf-8"))
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    parts = [pa.array(values[a:b], type=pa.large_string()) for a, b in zip(bounds, bounds[1:])]
    chunked = pa.chunked_array(parts, type=pa.large_string())
    lookup = pd.Series(table, dtype=str)
    expected = index_in(text_series(chunked), lookup).tolist()
    assert short_index_in(chunked, lookup).tolist() == expected
    assert index_in_runs(text_series(chunked), lookup).tolist() == expected


def test_short_keys_order_as_the_texts_do():
    texts = ["", "0", "00", "0000000", "00000000", "01", "1", "P1", "P10", "P2", "é", "😀"]
    keys = _short_keys(pa.chunked_array([pa.array(texts, type=pa.large_string())]))
    assert keys.tolist() == sorted(keys.tolist()) and len(set(keys.tolist())) == len(texts)
    assert _short_keys(pa.chunked_array([pa.array(["a\x00"], type=pa.large_string())])) is None
    assert _short_keys(pa.chunked_array([pa.array(["123456789"], type=pa.large_string())])) is None
