"""The CSV writer's runs of columns (report._csv_plan): adjacent boolean/small whole-number
columns written by one take from a table of their texts, adjacent fixed-width text columns
copied side by side, an empty last column and the per-value quoting search, each against
pandas' to_csv: every byte the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import report
from family_link.report import render_csv


def pandas_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def rendered_in_slices_of(frame: pd.DataFrame, rows: int) -> bytes:
    """render_csv with the writer's slices ``rows`` rows long (so a few rows span slices)."""
    old = report._CSV_SLICE_ROWS
    report._CSV_SLICE_ROWS = rows
    try:
        return render_csv(frame)
    finally:
        report._CSV_SLICE_ROWS = old


@st.composite
def run_frames(draw) -> pd.DataFrame:
    """Frames made of the columns the runs are for (and their near misses: a width that
    differs in one value, negative or large numbers, quoting bytes, missing values)."""
    n = draw(st.integers(0, 9))
    kinds = draw(st.lists(st.sampled_from(["fixed", "fixed", "fixed_off", "fixed_na", "small", "small",
                                           "bool", "bool", "big", "neg", "uint8", "empty", "text"]),
                          min_size=1, max_size=7))
    data = {}
    for i, kind in enumerate(kinds):
        if kind.startswith("fixed"):
            width = draw(st.integers(1, 4))
            chars = st.sampled_from(list("ab1é,\"\n") if draw(st.booleans()) else list("abZ9-|"))
            values = [draw(st.text(chars, min_size=width, max_size=width)) for _ in range(n)]
            if kind == "fixed_off" and n:
                values[draw(st.integers(0, n - 1))] += "x"
            data[f"c{i}"] = pd.Series([None if kind == "fixed_na" and j == 0 else v for j, v in enumerate(values)],
                                      dtype="str")
        elif kind in ("small", "big", "neg", "uint8"):
            top = {"small": 12, "big": 5000, "neg": 3, "uint8": 255}[kind]
            low = -3 if kind == "neg" else 0
            data[f"c{i}"] = pd.Series(draw(st.lists(st.integers(low, top), min_size=n, max_size=n)),
                                      dtype="uint8" if kind == "uint8" else "int64")
        elif kind == "bool":
            data[f"c{i}"] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        elif kind == "empty":
            data[f"c{i}"] = pd.Series(draw(st.lists(st.sampled_from(["", None]), min_size=n, max_size=n)),
                                      dtype="str")
        else:
            data[f"c{i}"] = pd.Series(draw(st.lists(st.text(st.sampled_from(list('ab ,"\né')), max_size=5),
                                                    min_size=n, max_size=n)), dtype="str")
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None)
@given(run_frames(), st.integers(1, 4))
def test_csv_runs_match_pandas_in_slices(frame, rows):
    assert rendered_in_slices_of(frame, rows) == pandas_csv(frame)
    assert render_csv(frame) == pandas_csv(frame)


@settings(max_examples=150, deadline=None)
@given(run_frames(), st.integers(0, 3), st.integers(1, 4))
def test_csv_runs_match_pandas_on_chunked_and_sliced_columns(part, skip, rows):
    # Frames joined by pd.concat hold their text in several Arrow chunks; iloc slices them
    # at an offset: the runs must not assume one chunk starting at 0.
    frame = pd.concat([part, part.iloc[::-1]], ignore_index=True).iloc[skip:]
    assert rendered_in_slices_of(frame, rows) == pandas_csv(frame)


def test_csv_plan_finds_the_runs():
    frame = pd.DataFrame({
        "id": pd.Series(["P01", "P02"], dtype="str"), "hh": pd.Series(["H-ab", "H-cd"], dtype="str"),
        "kind": pd.Series(["house", "flat"], dtype="str"), "size": [3, 1], "a": [True, False], "b": [False, False],
        "big": [1, 10_000], "note": pd.Series(["x, y", ""], dtype="str"), "last": pd.Series(["", ""], dtype="str"),
    })
    arrays = [report._csv_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    special = [report._special_bytes(a) if pa.types.is_large_string(a.type) else b"" for a in arrays]
    assert report._csv_plan(frame, arrays, special) == [
        ("fixed", [0, 1], [3, 4]), ("column", 2), ("table", [3, 4, 5], [4, 2, 2]), ("column", 6),
        ("column", 7), ("column", 8)]
    assert render_csv(frame) == pandas_csv(frame)


def test_table_texts_are_every_combination_in_mixed_radix():
    frame = pd.DataFrame({"n": [0, 2], "b": [True, False]})
    texts = report._table_texts(frame, [0, 1], [3, 2], "\n").to_pylist()
    assert texts == ["0,False\n", "0,True\n", "1,False\n", "1,True\n", "2,False\n", "2,True\n"]
    codes = report._table_codes([frame["n"].to_numpy(), frame["b"].to_numpy()], [3, 2]).to_pylist()
    assert [texts[c] for c in codes] == ["0,True\n", "2,False\n"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(st.sampled_from(list('ab,"\né')), max_size=6)), max_size=12),
       st.integers(0, 4), st.integers(0, 12), st.sampled_from([b",", b'"', b",\"", b'\n"']))
def test_rows_holding_matches_a_literal_search(values, cut, length, special):
    arr = pa.array(values, pa.large_string()).slice(cut, length)
    expect = np.zeros(len(arr), dtype=bool)
    for byte in special:
        expect |= np.asarray(pc.fill_null(pc.match_substring(arr, chr(byte)), False)
                             .to_numpy(zero_copy_only=False), dtype=bool)
    assert report._rows_holding(arr, special).tolist() == expect.tolist()
