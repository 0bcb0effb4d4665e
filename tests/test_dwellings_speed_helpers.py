"""Checks of the helpers added for speed in dwellings and communal establishments
(perf-dwell): each must give exactly what the plainer code it replaced gives."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H

_TEXT = st.text(alphabet=st.sampled_from(["A", "b", "É", "ß", "|", " ", "1", "Z", "😀"]), max_size=4)
_INTS = st.lists(st.integers(-5, 40), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_TEXT, st.none()), max_size=40))
def test_text_codes_are_sorted_pandas_factorize(values):
    series = pd.Series(values, dtype="str")
    want_codes, want_uniques = pd.factorize(series, sort=True)
    codes, uniques = H._text_codes(series)
    assert np.array_equal(codes, want_codes)
    assert list(uniques) == list(want_uniques)
    codes, texts = H._sorted_codes(pa.array(values, pa.string()))
    assert np.array_equal(codes, want_codes)
    assert texts.to_pylist() == list(want_uniques)


@settings(max_examples=200, deadline=None)
@given(_INTS, st.integers(0, 3))
def test_unique_inverse_and_dense_rank_are_np_unique(values, spread):
    key = np.asarray(values, dtype=np.int64) * (1 if spread == 0 else 10 ** (3 * spread))
    want, inverse = np.unique(key, return_inverse=True)
    got, got_inverse = H._unique_inverse(key)
    assert np.array_equal(got, want) and np.array_equal(got_inverse, inverse.reshape(-1))
    assert np.array_equal(H._dense_rank(key), inverse.reshape(-1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(0, 9)), max_size=50),
       st.booleans())
def test_combined_rank_numbers_tuples_in_sorted_order(rows, huge):
    columns = [np.asarray([r[i] for r in rows], dtype=np.int64) for i in range(3)]
    # Huge sizes force the ranking before the product would overflow.
    sizes = [2 ** 40, 2 ** 40, 10] if huge else [7, 4, 10]
    order = sorted(set(rows))
    want = [order.index(r) for r in rows]
    assert H._combined_rank(columns, sizes).tolist() == want


def _plain_mode(groups, codes, uniques, weights=None, ignore_empty=True):
    """The mode by pandas: most weight, ties to the smallest code."""
    frame = pd.DataFrame({"g": groups, "c": codes,
                          "w": np.ones(len(groups)) if weights is None else weights})
    frame = frame[frame["g"] >= 0]
    if ignore_empty and len(uniques) and uniques[0] == "":
        frame = frame[frame["c"] != 0]
    total = frame.groupby(["g", "c"])["w"].sum().reset_index()
    total = total.sort_values(["g", "w", "c"], ascending=[True, False, True], kind="mergesort")
    first = total.drop_duplicates("g")
    return first["g"].to_numpy(), first["c"].to_numpy()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 5), st.integers(0, 4), st.integers(1, 3)), max_size=60),
       st.booleans())
def test_mode_codes_is_the_plain_mode(rows, empty_first):
    groups = np.asarray([r[0] for r in rows], dtype=np.int64)
    codes = np.asarray([r[1] for r in rows], dtype=np.int64)
    weights = np.asarray([r[2] for r in rows], dtype=np.int64)
    uniques = np.asarray(["" if empty_first else "a", "b", "c", "d", "e"], dtype=object)
    for w in (None, weights):
        g, c = H._mode_codes(groups, (codes, uniques), weights=w)
        want_g, want_c = _plain_mode(groups, codes, uniques, w)
        assert g.tolist() == want_g.tolist() and c.tolist() == want_c.tolist()
    # Distinct (group, code) pairs with their counts: the same modes without adding up.
    frame = pd.DataFrame({"g": groups, "c": codes, "w": weights})
    total = frame.groupby(["g", "c"])["w"].sum().reset_index()
    g, c = H._mode_codes(total["g"].to_numpy(), (total["c"].to_numpy(), uniques),
                         weights=total["w"].to_numpy(), distinct=True)
    want_g, want_c = _plain_mode(groups, codes, uniques, weights)
    assert g.tolist() == want_g.tolist() and c.tolist() == want_c.tolist()


@pytest.mark.parametrize("n_rows", [0, 3, 1500])
def test_patched_is_replace_with_mask(n_rows):
    rng = np.random.default_rng(n_rows)
    arr = pa.array([f"v{i}" for i in range(3000)])
    rows = np.sort(rng.choice(len(arr), n_rows, replace=False))
    values = pa.array([f"new{i}" for i in range(n_rows)])
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    want = pc.replace_with_mask(arr, pa.array(mask), values) if n_rows else arr
    assert H._patched(arr, rows, values).equals(want)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT, _TEXT), max_size=30))
def test_joined_codes_equal_exactly_where_joins_are_equal(rows):
    parts = [pa.array([r[i] for r in rows], pa.string()) for i in range(3)]
    joined = pc.binary_join_element_wise(*parts, "|")
    codes, count, _ = H._joined_codes_by_parts(parts, joined)
    want, _ = pd.factorize(pd.Series(joined.to_pylist(), dtype=object))
    assert len(codes) == len(rows) and count == len(set(want.tolist()))
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (codes[i] == codes[j]) == (want[i] == want[j])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 8), st.integers(0, 3)), max_size=60))
def test_flat_dwellings_rank_building_and_flat(rows):
    bld = np.asarray([r[0] for r in rows], dtype=np.int64)
    flat = np.asarray([r[1] for r in rows], dtype=np.int64)
    has = np.flatnonzero(bld >= 0)
    want = np.full(len(rows), -1, dtype=np.int64)
    if len(has):
        want[has] = np.unique(bld[has] * 4 + flat[has], return_inverse=True)[1].reshape(-1)
    assert H._flat_dwellings(bld, has, flat, 4).tolist() == want.tolist()


def test_first_rows_gives_each_groups_first_row_and_row_0_for_unused_codes():
    groups = np.array([3, -1, 1, 3, 1, 0])
    assert H._first_rows(groups, 5).tolist() == [5, 2, 0, 0, 0]


def test_street_variants_given_the_variants_are_the_same():
    streets = np.asarray(["", "MILL RAOD", "MILL ROAD", "MILL LANE", "CHURCH STRET", "CHURCH STREET"], dtype=object)
    rng = np.random.default_rng(5)
    group = rng.integers(-1, 4, 200)
    codes = rng.integers(0, len(streets), 200)
    plain = H._street_variants(group, (codes, streets))
    ok = group >= 0
    given_ = H._street_variants(group, (codes, streets),
                                H._unique_inverse(group[ok] * len(streets) + codes[ok]))
    for a, b in zip(plain, given_):
        assert np.array_equal(a, b)


def test_street_scores_are_street_similarity():
    streets = np.asarray(["", "MILL RAOD", "MILL ROAD", "MILL LANE", "THORNHILL LANE",
                          "THORNHILL AVENUE", "HIGH", "HIGH STREET"], dtype=object)
    a = np.array([1, 2, 4, 6, 0, 3, 7])
    b = np.array([2, 3, 5, 7, 1, 2, 6])
    want = H.street_similarity(streets[a], streets[b])
    assert np.array_equal(H._street_scores(streets, a, b), want)


@settings(max_examples=200, deadline=None)
@given(_INTS, _INTS)
def test_isin_is_np_isin(values, among):
    values = np.asarray(values, dtype=np.int64) * 1000003
    among = np.asarray(among, dtype=np.int64) * 1000003
    assert H._isin(values, among).tolist() == np.isin(values, among).tolist()


def test_split_run_together_names_with_postcode_codes_is_the_same():
    w = pd.DataFrame({
        "number": ["", "", "", "", "", "4"],
        "building": ["THE LIMES", "THE LIMES GOSCOTE CRESCENT", "", "ROSE COTTAGE", "", ""],
        "street": ["GOSCOTE CRESCENT", "", "ROSE COTTAGE MILL LANE", "MILL LANE", "OAK ROAD", "OAK ROAD"],
        "postcode": ["WS3 1AA", "WS3 1AA", "WS3 2BB", "WS3 2BB", "WS3 1AA", "WS3 1AA"],
        "postcode_valid": [True] * 6,
    }).astype({c: "str" for c in ["number", "building", "street", "postcode"]})
    plain = H._split_run_together_names(w.copy())
    codes, _ = H._sorted_codes(H._pa(w, "postcode"))
    coded = H._split_run_together_names(w.copy(), codes)
    pd.testing.assert_frame_equal(plain, coded)
    assert plain["building"].tolist()[:4] == ["THE LIMES", "THE LIMES", "ROSE COTTAGE", "ROSE COTTAGE"]
    assert plain["street"].tolist()[:4] == ["GOSCOTE CRESCENT", "GOSCOTE CRESCENT", "MILL LANE", "MILL LANE"]
