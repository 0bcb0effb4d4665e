"""Tests for read5's reader speed-ups: each against the plain implementation it replaces."""

from __future__ import annotations

import mmap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from family_link._read_ahead import is_utf8 as _is_utf8


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=6), st.text(max_size=4).map(lambda t: t.encode("utf-8", "surrogatepass"))),
                max_size=8))
def test_is_utf8_is_python_decoding(parts):
    raw = b"".join(parts)
    assert _is_utf8(raw) == _decodes(raw)


def test_is_utf8_rejects_what_python_rejects():
    for bad in (b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
                b"abc\xc3", b"\xff", b"a\xe9b"):
        assert not _is_utf8(bad), bad
    for good in (b"", b"ascii", "é, 𝄞, \u00a0".encode()):
        assert _is_utf8(good)


def test_is_utf8_of_a_mapping_leaves_it_closable(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("a,b\n1,é\n".encode() * 1000)
    with path.open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    assert _is_utf8(mapped)
    mapped.close()  # no view of it is left alive


_IDS = st.text(alphabet="AB0z\u00e9", min_size=0, max_size=4)  # at most 8 bytes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_IDS, unique=True, min_size=1, max_size=12),
       st.lists(st.tuples(_IDS, st.integers(1, 4)), max_size=15), st.booleans())
def test_short_index_in_is_the_hash_lookup(table, runs, in_runs):
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from family_link._frames import _short_index_in, index_in, text_series

    table = pd.Series(sorted(table, key=lambda t: t.encode()), dtype=str)
    # In runs of equal ids (searched once per run) or one by one, in any order.
    values = [v for v, k in runs for _ in range(k if in_runs else 1)]
    chunked = pa.chunked_array([pa.array(values[:3], type=pa.large_string()),
                                pa.array(values[3:], type=pa.large_string())])
    found = _short_index_in(chunked, table)
    expected = index_in(text_series(chunked), table)
    assert found is not None and found.dtype == np.int64
    assert np.array_equal(found, expected)


def test_short_index_in_puts_unsorted_keys_back_in_place():
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from family_link._frames import _short_index_in

    table = pd.Series(["P1", "P2", "P3", "P4"], dtype=str)
    values = pa.chunked_array([pa.array(["P4", "P1", "Q", "P3", "P3", "P2", "P0"], type=pa.large_string())])
    assert _short_index_in(values, table).tolist() == [3, 0, -1, 2, 2, 1, -1]
    runs = pa.chunked_array([pa.array(["P2"] * 3 + ["P9"] * 2 + ["P1"] * 4, type=pa.large_string())])
    assert _short_index_in(runs, table).tolist() == [1] * 3 + [-1] * 2 + [0] * 4
    assert np.array_equal(_short_index_in(pa.chunked_array([], type=pa.large_string()), table), np.zeros(0))


_DAY_FIRST = st.builds(lambda d, m, y: f"{d:02d}/{m:02d}/{y:04d}", st.integers(0, 99), st.integers(0, 99),
                       st.one_of(st.integers(0, 9999), st.integers(1870, 2210)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_DAY_FIRST, max_size=20), st.booleans())
def test_day_first_dates_read_as_pandas_strptime_reads_them(texts, arabic):
    import pandas as pd

    from family_link._export import _parse_day_first

    if arabic and texts:  # another script's digits: the strptime path, as before
        texts = texts + ["\u0661\u0662/\u0660\u0663/\u0662\u0660\u0662\u0660"]
    series = pd.Series(texts, dtype=str, index=pd.RangeIndex(3, 3 + len(texts)))

    def within(parsed: pd.Series) -> pd.Series:  # as _parse_distinct_dates keeps them
        return parsed.where(parsed.dt.year.between(1880, 2200)).astype("datetime64[ns]")

    expected = within(pd.to_datetime(series, format="%d/%m/%Y", errors="coerce"))
    found = within(_parse_day_first(series))
    pd.testing.assert_series_equal(found, expected)


def test_day_first_dates_known_values():
    import pandas as pd

    from family_link._export import _parse_distinct_dates

    values = pd.Series(["29/02/2024", "29/02/2023", "31/04/2026", "01/13/2026", "03/04/2026", "00/01/2020"], dtype=str)
    got = _parse_distinct_dates(values)
    assert [None if pd.isna(v) else v.strftime("%Y-%m-%d") for v in got] == [
        "2024-02-29", None, None, None, "2026-04-03", None]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.001, 0.02, 0.5, 0.99, 1.0]),
       st.lists(st.integers(0, 400), min_size=1, max_size=5))
def test_filter_text_every_path_is_arrows_filter(seed, drop_rate, sizes):
    """Chunks with nothing dropped, a few rows dropped (slices) and many (Arrow's filter),
    one chunk out."""
    import numpy as np
    import pyarrow as pa

    from family_link._frames import filter_text

    rng = np.random.default_rng(seed)
    chunks = [pa.array([f"v{rng.integers(0, 10**rng.integers(1, 6))}" for _ in range(k)], type=pa.large_string())
              for k in sizes]
    values = pa.chunked_array(chunks, type=pa.large_string())
    keep = rng.random(len(values)) >= drop_rate
    got = filter_text(values, keep)
    assert got.num_chunks == 1
    assert got.to_pylist() == values.filter(pa.array(keep)).to_pylist()
