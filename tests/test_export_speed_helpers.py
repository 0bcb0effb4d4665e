"""The reader's fast paths against the plain pandas/Arrow operations they stand in for.

Each helper in ``_frames`` (and the byte-level shortcuts in ``_export``) must give exactly
what the slower expression gives; hypothesis feeds them awkward text: white space of
every kind at either end, empty values, non-ASCII digits, missing values.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._export import (_close_contents, _file_contents, _read_export_file, _sha256, decode_bytes,
                                 nhs_number_valid, read_csv_text)
from family_link._frames import (MAY_BE_SPACE, factorize_text, filter_text, index_in, isin, join_skipping_nulls,
                                 may_hold_bytes, strip_text, text_series)
from family_link._process import keep_arrow_freed_memory
from family_link._read_ahead import is_utf8 as _is_utf8
from family_link.errors import ExportError

SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000"]
alphabet = st.sampled_from(list("ab1 -.,") + SPACES + ["é", "\u0661", "’"])
texts = st.lists(st.text(alphabet, max_size=6), max_size=30)


def chunked(values: list[str], cuts: list[int]) -> pa.ChunkedArray:
    """``values`` as a large_string chunked array cut at ``cuts`` (some chunks empty)."""
    bounds = sorted([0, len(values), *[c % (len(values) + 1) for c in cuts]])  # repeats: empty chunks
    parts = [pa.array(values[a:b], type=pa.large_string()) for a, b in zip(bounds, bounds[1:])]
    return pa.chunked_array(parts or [pa.array([], type=pa.large_string())], type=pa.large_string())


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.integers(0, 40), max_size=4))
def test_strip_text_is_arrows_trim(values, cuts):
    arr = chunked(values, cuts)
    assert strip_text(arr).to_pylist() == pc.utf8_trim_whitespace(arr).to_pylist()


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(0, 40), max_size=4))
def test_strip_text_skips_columns_with_nothing_to_strip(values, cuts):
    arr = chunked([v.strip() for v in values], cuts)
    if not any(ord(c) > 127 for v in values for c in v):
        assert strip_text(arr) is arr


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.integers(0, 40), max_size=4), st.data())
def test_filter_text_is_arrows_filter(values, cuts, data):
    arr = chunked(values, cuts)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    assert filter_text(arr, keep).to_pylist() == [v for v, k in zip(values, keep) if k]


def test_filter_text_on_long_runs_and_scattered_rows():
    values = [str(i) for i in range(10_000)]
    arr = chunked(values, [3000, 7000])
    for keep in (np.ones(10_000, bool), np.zeros(10_000, bool), np.arange(10_000) % 2 == 0,
                 np.arange(10_000) % 997 != 0):
        assert filter_text(arr, keep).to_pylist() == [v for v, k in zip(values, keep) if k]


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.integers(0, 40), max_size=4))
def test_factorize_text_is_pandas_factorize(values, cuts):
    series = text_series(chunked(values, cuts))
    codes, uniques = factorize_text(series)
    expected_codes, expected_uniques = pd.factorize(series, use_na_sentinel=False)
    assert uniques.dtype == object
    assert uniques.to_numpy()[codes].tolist() == np.asarray(expected_uniques, dtype=object)[expected_codes].tolist()
    assert sorted(uniques) == sorted(expected_uniques)


def test_factorize_text_keeps_missing_values_as_pandas_does():
    series = pd.Series(["a", None, "b", None, "a"], dtype=object)
    codes, uniques = factorize_text(series)
    expected_codes, expected_uniques = pd.factorize(series.astype(str), use_na_sentinel=False)
    assert codes.tolist() == expected_codes.tolist()
    assert [u if isinstance(u, str) else "NA" for u in uniques] == \
        [u if isinstance(u, str) else "NA" for u in expected_uniques]


@settings(max_examples=300, deadline=None)
@given(texts)
def test_may_hold_bytes(values):
    arr = chunked(values, [3])
    raw = "".join(values).encode("utf-8")
    assert may_hold_bytes(arr, MAY_BE_SPACE) == any(MAY_BE_SPACE[b] for b in raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(st.sampled_from(list("0123456789a -") + ["é"]), min_size=9,
                                  max_size=11),
                          st.sampled_from(["9434765919", "9434765918", "4010232137", ""])), max_size=20))
def test_nhs_number_valid_fast_path_is_the_regex_path(values):
    fast = nhs_number_valid(pd.Series(values, dtype=str))
    shaped = pd.Series(values, dtype=object).str.fullmatch(r"\d{10}")
    for value, ok, is_shaped in zip(values, fast, shaped):
        if not is_shaped:
            assert not ok
        else:
            digits = [int(c) for c in value]
            check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
            check = 0 if check == 11 else check
            assert ok == (check != 10 and check == digits[9])


def test_isin_and_index_in_take_arrow_text_as_it_is():
    values = text_series(chunked(["P1", "P2", "", "P9", "P1"], [2]))
    table = pd.Series(["P2", "P1", "P3"], dtype=str)
    assert isin(values, table).tolist() == [True, True, False, False, True]
    assert isin(values, {"P9"}).tolist() == [False, False, False, True, False]
    assert index_in(values, table).tolist() == [1, 0, -1, -1, 1]


csv_text = st.builds(
    lambda header, rows: header + "\n" + "".join(",".join(r) + "\n" for r in rows),
    st.sampled_from(["patient_id,date_of_birth", "a,b,a", "a,,b", " a , b ", "a;b", "x"]),
    st.lists(st.lists(st.text(st.sampled_from(list("ab1 \"") + SPACES[4:]), max_size=4), min_size=1,
                      max_size=3), max_size=6))


@settings(max_examples=300, deadline=None)
@given(csv_text, st.sampled_from([b"", b"\xef\xbb\xbf"]), st.sampled_from(["utf-8", "cp1252"]))
def test_read_export_file_is_decode_then_read_csv_text(text, bom, encoding):
    raw = bom + text.encode(encoding, errors="replace")

    def outcome(read):
        try:
            return read()
        except ExportError as exc:
            return str(exc)

    def slow():
        decoded, used = decode_bytes(raw, "f.csv")
        return read_csv_text(decoded, "f.csv"), used

    fast, expected = outcome(lambda: _read_export_file(raw, "f.csv")), outcome(slow)
    if isinstance(expected, str):
        assert fast == expected
    else:
        assert fast[1] == expected[1]
        pd.testing.assert_frame_equal(fast[0], expected[0], check_exact=True)


def test_nhs_numbers_of_nine_and_eleven_digits_are_not_ten_digit_numbers():
    # Twenty bytes in all, as two ten-digit numbers would be: each length still counts.
    assert nhs_number_valid(pd.Series(["000000000", "00000000000"], dtype=str)).tolist() == [False, False]
    assert nhs_number_valid(pd.Series(["00000000010", "0000000001", "000000000"], dtype=str)).tolist() == \
        [False, False, False]


def _outcome(read):
    try:
        return read()
    except ExportError as exc:
        return str(exc)


@pytest.mark.parametrize("raw", [
    b"patient_id,date_of_birth\r\n1,2001-02-03\r\n",
    "\ufeffpatient_id,surname\n1,Ó Súilleabháin\n2, Chen \n".encode("utf-8"),
    "patient_id,surname\n1,Ó Súilleabháin\n".encode("cp1252"),
    b"patient_id;surname\n1;x\n",
    b"patient_id,surname\n1,x,y\n",
    b"patient_id,surname\n1,\"open\n",
    b"\xef\xbb\xbfpatient_id,surname\n" + b"1,abc\n" * 40000,
    b"patient_id,surname\n1,\x81\x8d\n",
])
def test_a_mapped_file_reads_as_its_bytes(tmp_path, raw):
    path = tmp_path / "f.csv"
    path.write_bytes(raw)
    with path.open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            assert _is_utf8(mapped) == _is_utf8(raw)
            assert _sha256(mapped) == hashlib.sha256(raw).hexdigest()
            fast, expected = _outcome(lambda: _read_export_file(mapped, "f.csv")), \
                _outcome(lambda: _read_export_file(raw, "f.csv"))
        finally:
            # Closed as the reader closes it: Arrow's reading threads can let go of their
            # view of the mapping a moment after the read returns (mmap.close would raise
            # BufferError about 1 in 300 times); the mapping then closes with that view.
            _close_contents(mapped)
    if isinstance(expected, str):
        assert fast == expected
    else:
        assert fast[1] == expected[1]
        pd.testing.assert_frame_equal(fast[0], expected[0], check_exact=True)


def test_file_contents_maps_large_files_and_reads_small_ones(tmp_path):
    small, large, empty = tmp_path / "s.csv", tmp_path / "l.csv", tmp_path / "e.csv"
    small.write_bytes(b"a,b\n1,2\n")
    large.write_bytes(b"a,b\n" + b"1,\xc3\xa9\n" * 300_000)
    empty.write_bytes(b"")
    assert _file_contents(small) == small.read_bytes()
    assert _file_contents(empty) == b""
    mapped = _file_contents(large)
    assert isinstance(mapped, mmap.mmap) and mapped[:] == large.read_bytes()
    assert not _is_utf8(mapped[:-2]) and _is_utf8(mapped)
    mapped.close()
    with pytest.raises(OSError):
        _file_contents(tmp_path / "missing.csv")


def test_avoid_huge_pages_turns_them_off_for_the_process():
    code = ("from family_link._process import avoid_huge_pages; ok = avoid_huge_pages(); "
            "print(ok, [l.split()[1] for l in open('/proc/self/status') if l.startswith('THP_enabled')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if not sys.platform.startswith("linux"):
        assert out.startswith("False")
    elif out.strip().endswith("[]"):
        pytest.skip("this kernel does not report THP_enabled in /proc/self/status")
    else:
        assert out.strip() == "True ['0']"


_P_OK = "patient_id,date_of_birth\n1,2001-02-03\n2,2002-03-04\n"
_P_US = "patient_id,date_of_birth\n" + "".join(f"{i},04/1{i}/2001\n" for i in range(1, 6))
_E_OK = "patient_id,code,date\n1,22K..,2020-01-01\n"
_E_BIN = b"patient_id,code,date\n\x00\x01"


@pytest.mark.parametrize("patients, events, relationships, expected", [
    (_P_US, _E_BIN, None, "events.csv: is not a text file"),
    (_P_US, "patient_id,code,when\n1,22K..,2020-01-01\n", None, "events.csv, row 1: missing required column(s): date"),
    (_P_US, _E_OK, None, "the dates in this column look month first"),
    ("patient_id,birthday\n1,2001-02-03\n", _E_BIN, None, "events.csv: is not a text file"),
    (_P_US, _E_OK, "patient_id,related\n1,2\n", "relationships.csv, row 1: missing required column(s)"),
    (_P_OK, _E_BIN, "patient_id,related\n1,2\n", "events.csv: is not a text file"),
    (_P_US, None, None, "events.csv: not found"),
])
def test_errors_come_in_file_order_though_events_are_read_alongside(tmp_path, patients, events, relationships,
                                                                     expected):
    # events.csv is read while the patients are parsed: a reading error of events.csv
    # still comes before the patients' column and value errors, as it did before.
    from datetime import date

    from family_link._export import load_export
    for name, text in (("patients.csv", patients), ("events.csv", events), ("relationships.csv", relationships)):
        if text is not None:
            (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ExportError) as caught:
        load_export(tmp_path, date(2026, 11, 1))
    assert len(caught.value.problems) == 1 and expected in str(caught.value)


def slash_date_order_by_regex(texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``texts`` read month first and which day first, by ``_SLASH_DATE`` over
    every value: the reference for ``_slash_date_order``'s faster paths."""
    from family_link._export import _SLASH_DATE
    parts = texts.str.strip().str.extract(_SLASH_DATE)
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    month_first = (first.between(1, 12) & second.between(13, 31)).to_numpy()
    day_first = (second.between(1, 12) & first.between(13, 31)).to_numpy() & ~month_first
    return month_first, day_first


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(st.sampled_from(list("0123/ -a") + ["\u0661", "\xa0"]), max_size=12)),
                max_size=20))
def test_slash_date_order_is_the_regex_over_every_value(values):
    from family_link._export import _slash_date_order
    s = pd.Series(values, dtype=object)
    month_first, day_first = slash_date_order_by_regex(s.astype(str))
    got = _slash_date_order(s)
    assert got[0].tolist() == month_first.tolist() and got[1].tolist() == day_first.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from(list("ab1 ") + ["é"]), max_size=3), max_size=12), st.booleans())
def test_repeated_ids_found_with_or_without_the_ascending_shortcut(ids, ordered):
    from family_link._export import _repeats_possible
    pid = pd.Series(sorted(ids) if ordered else ids, dtype=str)
    found = _repeats_possible(pid)
    codes, uniques = factorize_text(pid) if found is None else found
    dup = (np.bincount(codes, minlength=len(uniques)) > 1)[codes]
    assert dup.tolist() == pid.duplicated(keep=False).tolist()
    if found is None:
        assert not dup.any()


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(0, 40), max_size=4))
def test_factorize_text_as_text_gives_the_same_values_as_text(values, cuts):
    s = text_series(chunked(values, cuts))
    codes, uniques = factorize_text(s)
    codes_t, uniques_t = factorize_text(s, as_text=True)
    assert codes_t.tolist() == codes.tolist()
    assert str(uniques_t.dtype) == "str" and uniques_t.tolist() == uniques.tolist()
    pd.testing.assert_series_equal(uniques_t, uniques.astype(str))


@pytest.mark.filterwarnings("ignore::pandas.errors.ParserWarning")
def test_a_wider_row_is_refused_even_when_another_thread_takes_pandas_warning(monkeypatch):
    # Warnings are process-wide: with files read on two threads, pandas' "Length of header
    # or names does not match" warning can land in another thread's catch_warnings. The
    # wide-row check must not depend on seeing it: here no warning is ever seen.
    import contextlib
    import types

    from family_link import _export
    from family_link.errors import ExportError

    blind = types.SimpleNamespace(catch_warnings=lambda record=False: contextlib.nullcontext([]),
                                  simplefilter=lambda *args, **kwargs: None)
    monkeypatch.setattr(_export, "warnings", blind)
    text = "patient_id,code,date\n1,22K..,2020-01-01,LOST VALUE\n2,22K..,2020-01-02\n"
    with pytest.raises(ExportError) as raised:
        _export._read_with_pandas(text, "events.csv")
    problem = raised.value.problems[0]
    assert (problem.row, problem.message) == (2, "has 4 cells but the header row has 3")


texts_or_null = st.one_of(st.none(), st.sampled_from(["", "a", "bc", "é"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(texts_or_null, texts_or_null, texts_or_null), min_size=1, max_size=40),
       st.sampled_from(["", ", "]), st.booleans(), st.booleans())
def test_join_skipping_nulls_keeps_every_row(rows, separator, with_scalar, chunked):
    """Each row is its non-null parts joined, "" where all are null: pyarrow 26's skip join
    drops all-null rows (3,000 rows in 9,000 here), which the helper must not."""
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(3)]
    if chunked:
        columns = [pa.chunked_array([c]) for c in columns]
    parts = [*columns, pa.scalar(None, pa.string())] if with_scalar else columns
    joined = join_skipping_nulls(*parts, separator=separator)
    assert joined.to_pylist() == [separator.join(v for v in r if v is not None) for r in rows]


_ARROW_OPTIONS = """
import sys
from family_link._process import keep_arrow_freed_memory
took = keep_arrow_freed_memory() if sys.argv[1] == "on" else None
import pyarrow as pa
pa.allocate_buffer(1 << 20)
print(took, pa.default_memory_pool().backend_name)
"""


def test_keep_arrow_freed_memory_sets_mimallocs_purge_delay_before_arrow_loads():
    def run(mode: str) -> tuple[str, list[str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
        done = subprocess.run([sys.executable, "-c", _ARROW_OPTIONS, mode], capture_output=True, text=True,
                              check=True, env={**env, "MIMALLOC_VERBOSE": "1"})
        return done.stdout, [line.strip() for line in done.stderr.splitlines() if "'purge_delay'" in line]

    out, delay = run("on")
    if "mimalloc" not in out or not delay:
        pytest.skip("Arrow's allocator here is not a mimalloc that reports its options")
    assert out.split()[0] == "True" and delay == ["option 'purge_delay': -1"]
    assert run("off")[1] != ["option 'purge_delay': -1"]  # the setting, not mimalloc's default
    # Once Arrow is loaded, mimalloc has read its options: nothing is set.
    assert keep_arrow_freed_memory() is False
