"""Tests for the perf-addr6 changes to address normalisation: every output column taken
once per row from a pool of texts (the parses' parts, the texts with a numbered flat's
digits put back, the rows' own house numbers or renderings), as large strings."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import address as A

FIRST = ["12 Mill Rd", "14 Mill Rd", "104", "7b Station Lane", "Flat 8", "Flat 12A", "Flat 3/12",
         "3 Oak Court", "Rose Cottage", "Ground Floor Flat", "12 Hostel Lane", "5 Care Home", "",
         "007 Mill Rd", "12 12 Mill Rd", "Apt 2B", "Flat 8, 41 Mill Rd", "41A"]
OTHER = ["", "Mill Rd", "41 Mill Rd", "Walsall", "Kent", "WS2 8QT", "Oak Court", "Pleck, Walsall",
         "12 Mill Rd", "Care Home"]
POSTCODES = ["", "ws28qt", "WS2 8QT", "X", "b12cd"]


def frame_of(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["address_line_1", "address_line_2", "address_line_3",
                                       "postcode"], dtype="str")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIRST), st.sampled_from(OTHER), st.sampled_from(OTHER),
                          st.sampled_from(POSTCODES)), min_size=1, max_size=20))
def test_rows_normalised_together_are_the_rows_normalised_alone(rows):
    frame = frame_of(rows)
    together = A.normalise_addresses(frame)
    alone = pd.concat([A.normalise_addresses(frame.iloc[[i]]) for i in range(len(frame))])
    pd.testing.assert_frame_equal(together, alone)


def test_text_columns_are_large_strings_held_as_taken():
    out = A.normalise_addresses(frame_of([("12 Mill Rd", "Walsall", "", "ws28qt"),
                                          ("Flat 8", "41 Mill Rd", "Walsall", ""),
                                          ("14 Mill Rd", "Walsall", "", "WS2 8QT")]))
    for name in ["flat", "number", "building", "street", "locality", "town", "postcode",
                 "postcode_text", "communal_name", "address_text", "address_key"]:
        assert pa.array(out[name].array).type == pa.large_string(), name
    assert out["number"].tolist() == ["12", "41", "14"]
    assert out["flat"].tolist() == ["", "8", ""]
    assert out["address_text"].tolist() == ["12 MILL ROAD, WALSALL", "FLAT 8, 41 MILL ROAD, WALSALL",
                                            "14 MILL ROAD, WALSALL"]
    assert out["address_key"].tolist() == ["|12||MILL ROAD|WS2 8QT", "8|41||MILL ROAD|",
                                           "|14||MILL ROAD|WS2 8QT"]


LINE_WORDS = ["Mill Rd", "MILL ROAD", "b Station Lane", "B STATION LN", "A", "St Johns Rd",
              "Flat", "Oak Court", "Walsall", "Kent", "&", "'s", "-", "/", "No", "12", "7b", "0",
              "ground floor flat", "  ", ",", "Apt"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from(["1", "12", "104", "007", "3", "99"]), st.sampled_from(["", " ", "  "]),
              st.lists(st.sampled_from(LINE_WORDS), min_size=1, max_size=4).map(" ".join))
    .map("".join),
    st.lists(st.sampled_from(LINE_WORDS), max_size=4).map(" ".join)),
    min_size=15, max_size=60))
def test_all_canonical_lines_in_many_slices_match_canonical_lines(values):
    """Slices of 7 values: the rests are shared out in several parts by length, and the
    lines put together slice by slice (and the few-numbered fallback when so drawn)."""
    original = A._slices
    A._slices = lambda values, size=7: original(values, 7)
    try:
        arr = pa.array(values, pa.string())
        fast = A._all_canonical_lines(arr)
    finally:
        A._slices = original
    plain = A._canonical_lines(arr)
    assert fast[0].to_pylist() == plain[0].to_pylist()
    for got, want in zip(fast[1:], plain[1:]):
        assert got.tolist() == want.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 1)), min_size=1,
                max_size=40),
       st.sampled_from([(4, 3, 2), (2**32, 2**32, 2), (2**63, 3, 2)]))
def test_row_groups_split_at_a_pivot_number_as_one_renumbering(triples, sizes):
    """Groups found on two sides of a pivot (forced here on tiny inputs) are those of one
    renumbering of all the keys: ascending tuples, each from its first row."""
    codes = [np.array([t[j] for t in triples], dtype=np.int64) for j in range(3)]
    codes = [c * (size // 4 if size > 4 else 1) for c, size in zip(codes, sizes)]
    plain_group, plain_first = A._row_groups(codes, list(sizes))
    chunk, count = A._CHUNK, os.cpu_count
    A._CHUNK, os.cpu_count = 0, lambda: 2
    try:
        group, first = A._row_groups(codes, list(sizes))
    finally:
        A._CHUNK, os.cpu_count = chunk, count
    assert group.tolist() == plain_group.tolist()
    assert first.tolist() == plain_first.tolist()
