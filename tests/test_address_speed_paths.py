"""Checks of the helpers address.py uses for speed (perf-addr2): each must give exactly
what the plainer code it stands for gives."""

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import address as A
from test_address_flat_number_shortcut import assert_shortcuts_change_nothing


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="AB ,", max_size=6), min_size=0, max_size=80),
       st.sampled_from([1, 3, 7, 1000]))
def test_distinct_apply_runs_once_per_distinct_value_and_finds_each_result(values, size):
    # Small slice sizes share the values out in several parts (by their length).
    arr = pa.array(values, pa.string())
    seen = []

    def fn(uniq):
        seen.extend(uniq.to_pylist())
        return {"lower": pc.utf8_lower(uniq)}

    original = A._slices
    A._slices = lambda v, s=size: original(v, s)
    try:
        results, at = A._distinct_apply(arr, fn)
    finally:
        A._slices = original
    assert sorted(seen) == sorted(set(values))  # each distinct value once
    lowered = pa.concat_arrays([r["lower"] for r in results]) if results else pa.array([])
    assert [lowered[int(i)].as_py() for i in at] == [v.lower() for v in values]


WORDS = ["ST", "NO", "FLAT", "APT", "1ST", "2ND", "3RD", "FLOOR", "RD", "A", "b", "Mill", "Rd",
         "GROUND", "TOP", "GFF", "HOUSE", "KENT", "'", "/", "-", "&", ",", ".", "  ", " "]
DIGITS = st.from_regex(r"[0-9]{1,4}", fullmatch=True)
REST = st.tuples(st.sampled_from(["", "A", "b", "s", "N"]), st.sampled_from([" ", "  ", "   "]),
                 st.lists(st.one_of(st.sampled_from(WORDS), DIGITS), min_size=1, max_size=6))


def _rest_text(rest):
    letter, spaces, words = rest
    text = " ".join(words)
    return letter + spaces + ("X" + text if not text[:1].isalpha() else text)


@settings(max_examples=300, deadline=None)
@given(DIGITS, REST)
def test_canonical_text_of_a_numbered_line_is_its_digits_and_the_canonical_rest(digits, rest):
    line = digits + _rest_text(rest)
    split = pc.extract_regex(pa.array([line]), A._NUMBER_AND_REST)
    assert split.null_count == 0
    assert split[0]["d"].as_py() == digits
    whole = A._canonical_text(pa.array([line]))[0].as_py()
    zero = A._canonical_text(pa.array(["0" + split[0]["r"].as_py()]))[0].as_py()
    assert zero.startswith("0") and whole == digits + zero[1:]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.tuples(DIGITS, REST).map(lambda p: p[0] + _rest_text(p[1])),
                          st.lists(st.one_of(st.sampled_from(WORDS), DIGITS), max_size=5)
                          .map(" ".join)),
                min_size=0, max_size=30))
def test_all_canonical_lines_match_canonical_lines(values):
    arr = pa.array(values, pa.string())
    fast = A._all_canonical_lines(arr)
    plain = A._canonical_lines(arr)
    assert fast[0].to_pylist() == plain[0].to_pylist()
    for got, want in zip(fast[1:], plain[1:]):
        assert got.tolist() == want.tolist()


SEGMENT_WORDS = ["12", "007", "3A", "12-14", "2B-4C", "12-", "-3", "MILL", "ROAD", "OAK", "A", "B",
                 "COURT", "1/2", "9X9", ""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SEGMENT_WORDS), max_size=5).map(" ".join),
                min_size=1, max_size=30))
def test_numbered_matches_the_numbered_regex(segments):
    texts = pa.array(segments, pa.string())
    is_numbered, pre, num, rest = A._numbered(texts)
    found = pc.extract_regex(texts, A._NUMBERED)
    assert is_numbered.tolist() == pc.is_valid(found).to_pylist()
    for part, name in ((pre, "pre"), (num, "num"), (rest, "rest")):
        assert part.to_pylist() == A._field(found, name).to_pylist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 1)), min_size=1,
                max_size=30),
       st.sampled_from([(4, 3, 2), (2**32, 2**32, 2), (2**31, 2**32, 2), (2**63, 3, 2)]))
def test_row_groups_group_equal_tuples_near_the_unsigned_limit(triples, sizes):
    import numpy as np
    codes = [np.array([t[j] for t in triples], dtype=np.int64) for j in range(3)]
    codes = [c * (size // 4 if size > 4 else 1) for c, size in zip(codes, sizes)]  # large codes
    group, first = A._row_groups(codes, list(sizes))
    tuples = [tuple(int(c[i]) for c in codes) for i in range(len(triples))]
    for i in range(len(tuples)):
        for j in range(len(tuples)):
            assert (group[i] == group[j]) == (tuples[i] == tuples[j])
    # Groups numbered in ascending order of their tuples, each from its first row.
    assert [tuples[r] for r in first] == sorted(set(tuples))
    assert all(group[r] == g and r == min(np.flatnonzero(group == g)) for g, r in enumerate(first))


LEAD_WORDS = ["12", "7A", "3", "007", "0", "12-14", "3/12", "FLAT 3", "FLAT", "APT 2B", "OAK COURT",
              "MILL ROAD", "MILL RD", "ELM PLACE", "HIGH ST", "ST JOHNS RD", "CARE HOME",
              "WALSALL", "KENT", "WS2 8QT", "ROSE COTTAGE", "B", "GROUND FLOOR FLAT", "NO 5"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(
    st.lists(st.sampled_from(LEAD_WORDS), min_size=1, max_size=4).map(" ".join),
    st.sampled_from(["", "MILL ROAD", "OAK COURT", "12 MILL ROAD", "WALSALL", "FLAT 2", "KENT"]),
    st.sampled_from(["", "WALSALL", "KENT", "PLECK, WALSALL"]),
    st.sampled_from(["", "ws28qt", "X"])), min_size=1, max_size=12))
def test_texts_parsed_with_their_house_number_zeroed_give_the_same_parts(rows):
    assert_shortcuts_change_nothing(rows, ["address_line_1", "address_line_2", "address_line_3", "postcode"])
