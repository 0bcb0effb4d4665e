"""Checks of the helpers address.py uses for speed (perf-addr): each must give exactly
what the plainer code it stands for gives."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import address as A

LINES = ["", "KENT", "ESSEX", "UK", "WEST MIDLANDS", "12 MILL ROAD", "WALSALL", "A,KENT",
         "KENT,ESSEX", "FLAT 3", "OAK COURT", "69,PLECK ROAD", "3/12 ELM ST", "WS2 8QT"]


def test_distinct_codes_are_sorted_distinct_values_and_positions():
    codes = np.array([5, 2, 5, 0, 2])
    distinct, where = A._distinct_codes(codes, 7)
    assert distinct.tolist() == [0, 2, 5]
    assert distinct[where].tolist() == codes.tolist()


def test_join_codes_joins_kept_pool_values_in_column_order():
    pool = pa.array(["A", "B", "", "C D"])
    codes = np.array([[0, 1, 3], [3, 2, 0], [2, 2, 2]])
    keep = np.array([[True, False, True], [True, True, True], [False, False, False]])
    assert A._join_codes(pool, codes, keep, ", ").to_pylist() == ["A, C D", "C D, , A", ""]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(LINES), min_size=5, max_size=5), min_size=1, max_size=20))
def test_joined_text_matches_squash_of_comma_join(rows):
    lines = [pa.array([row[j] for row in rows], pa.string()) for j in range(5)]
    plain = A._squash(A._sub(A._squash(pc.binary_join_element_wise(*lines, ",")),
                             A._COUNTY_SEGMENT, r"\1\2"))
    assert A._joined_text(lines).to_pylist() == plain.to_pylist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=30),
       st.sampled_from([(4, 3), (2**40, 2**40)]))
def test_row_groups_group_equal_tuples(pairs, sizes):
    # Large sizes force the dense renumbering before the key would overflow.
    codes = [np.array([p[j] for p in pairs], dtype=np.int64) for j in range(2)]
    group, first = A._row_groups(codes, list(sizes))
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            assert (group[i] == group[j]) == (pairs[i] == pairs[j])
    assert sorted(set(group.tolist())) == list(range(len(first)))
    for g, row in enumerate(first):
        assert group[row] == g and row == min(np.flatnonzero(group == g))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from(LINES)] * 3, st.sampled_from(["", "ws28qt", "X"])),
                min_size=1, max_size=12))
def test_normalise_addresses_rows_alone_give_the_same_parts(rows):
    # Rows are grouped by their lines and texts: a row normalised with others gives what
    # it gives alone.
    frame = pd.DataFrame(rows, columns=["address_line_1", "address_line_2", "address_line_4",
                                        "postcode"], dtype="str")
    together = A.normalise_addresses(frame)
    for i in range(len(frame)):
        alone = A.normalise_addresses(frame.iloc[[i]])
        pd.testing.assert_frame_equal(together.iloc[[i]], alone)


def test_normalise_addresses_of_no_rows():
    frame = pd.DataFrame({"address_line_1": [], "postcode": []}, dtype="str")
    out = A.normalise_addresses(frame)
    assert len(out) == 0 and "address_key" in out.columns


def _plain_canonical_text(joined):
    """The canonicalisation as a plain sequence over every value (before perf-addr; with
    accents folded since)."""
    s = A._ascii_letters(pc.utf8_upper(joined))
    s = pc.replace_substring(s, "&", " AND ")
    s = pc.replace_substring_regex(s, r"['`\x{2019}]", "")
    s = pc.replace_substring_regex(s, r"([0-9]) *- *([0-9])", r"\1~\2")
    s = pc.replace_substring_regex(s, r"\b([0-9]+[A-Z]?|[A-Z]) */ *([0-9])", r"\1^\2")
    s = pc.replace_substring_regex(s, r"[^A-Z0-9,~^]+", " ")
    s = A._squash(pc.replace_substring(pc.replace_substring(s, "~", "-"), "^", "/"))
    for pattern, repl in A._CANONICAL_WORDS:
        s = pc.replace_substring_regex(s, pattern, repl)
    return A._map_words(s, A._ABBREVIATIONS)


WORDS = ["12", "3", "A", "B", "ST", "RD", "MILL", "FLAT", "APT", "NO", "GROUND", "FLOOR", "TOP",
         "JOHN'S", "&", "-", "/", ",", " ", "  ", "12-14", "3/12", "Gff", "café", "~", "^", "UNIT"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
                min_size=1, max_size=20))
def test_canonical_text_matches_the_plain_sequence(values):
    arr = pa.array(values, pa.string())
    assert A._canonical_text(arr).to_pylist() == _plain_canonical_text(arr).to_pylist()
