"""The reader's later shortcuts against what they replace (see test_export_speed_helpers.py
for the earlier ones): each must give exactly the same values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._export import (_SLASH_DATE, _all_below_ten, _arrow_frame, _check_digit_ok, _dated_before,
                                 _slash_date_order, _slash_date_parts)
from family_link._frames import _short_keys, index_in, index_in_runs, short_index_in, take_values, text_series
from test_export_speed_helpers import slash_date_order_by_regex

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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=10, max_size=10), max_size=30))
def test_all_below_ten_is_numpys_reduction(rows):
    values = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 10) - np.uint8(ord("0"))
    assert _all_below_ten(values).tolist() == (values < 10).all(axis=1).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10**10 - 1), max_size=30))
def test_check_digit_is_the_modulus_11_rule(numbers):
    texts = [f"{n:010d}" for n in numbers]
    digits = np.array([[int(c) for c in t] for t in texts], dtype=np.uint8).reshape(-1, 10)
    expected = []
    for t in texts:
        check = 11 - sum(int(c) * w for c, w in zip(t, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        expected.append(check != 10 and check == int(t[9]))
    assert _check_digit_ok(digits).tolist() == expected
    assert _check_digit_ok(digits.astype(np.int64)).tolist() == expected


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(st.sampled_from(list("0123459/ -a_") + ["\u0661", "\xa0"]), max_size=12), max_size=20))
def test_slash_dates_read_by_arrow_as_by_python(values):
    # ASCII values take Arrow's regex; the others Python's. Both as _SLASH_DATE reads them.
    s = pd.Series(values, dtype=str)
    month_first, day_first = slash_date_order_by_regex(s)
    got = _slash_date_order(s)
    assert got[0].tolist() == month_first.tolist() and got[1].tolist() == day_first.tolist()
    ascii_values = [v for v in values if v.isascii()]
    slashed = np.arange(len(ascii_values))
    found = _slash_date_parts(pd.Series(ascii_values, dtype=str), slashed)
    expected = pd.Series(ascii_values, dtype=str).str.strip().str.extract(_SLASH_DATE)
    for got_part, column in zip(found, (0, 1)):
        assert got_part.tolist() == pd.to_numeric(expected[column], errors="coerce").fillna(-1).astype(int).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(st.sampled_from(list("ab ") + ["é"]), max_size=3)), max_size=30),
       st.lists(st.integers(0, 40), max_size=4), st.data())
def test_take_values_is_iloc(values, cuts, data):
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    parts = [pa.array(values[a:b], type=pa.large_string()) for a, b in zip(bounds, bounds[1:])]
    series = text_series(pa.chunked_array(parts, type=pa.large_string()))
    positions = np.array(data.draw(st.lists(st.integers(0, max(len(values) - 1, 0)), max_size=10))
                         if values else [], dtype=np.int64)
    expected = series.iloc[positions].to_numpy()
    got = take_values(series, positions)
    assert got.dtype == expected.dtype and len(got) == len(expected)
    assert all((g == e) or (g != g and e != e) for g, e in zip(got.tolist(), expected.tolist()))
    assert all(type(g) is type(e) for g, e in zip(got.tolist(), expected.tolist()))
    plain = pd.Series(values, dtype=object)
    assert take_values(plain, positions).tolist() == plain.iloc[positions].to_numpy().tolist()


def test_dated_before_is_the_whole_comparison():
    rng = np.random.default_rng(7)
    dates = np.append(rng.integers(0, 10**9, 50).astype("datetime64[s]").astype("datetime64[ns]"),
                      np.datetime64("NaT"))
    dates[3] = np.datetime64("NaT")
    n = (1 << 20) + 17  # more than one step
    position = rng.integers(-1, 50, n)
    when = rng.integers(0, 10**9, n).astype("datetime64[s]").astype("datetime64[ns]")
    when[::97] = np.datetime64("NaT")
    assert np.array_equal(_dated_before(when, dates, position), when < dates[position])
    assert _dated_before(when[:0], dates, position[:0]).tolist() == []
