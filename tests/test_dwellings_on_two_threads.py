"""Checks of perf-link4: _dwellings and _ambiguous_and_communal make some of their
columns on a second thread (codes, Arrow takes, the establishments' keys); the frames
they return must be what the single-threaded order gave: same columns, in the same
order, same values, on every run."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from family_link.layouts import load_any_export
from linkage_frames import records_before_dwellings

AS_OF = date(2026, 11, 1)
_AMB_COLUMNS = ["dwelling_key_code", "building_flats", "only_flat", "communal_label", "ambiguous_flat",
                "many_postcodes", "dwelling_size", "dwelling_old", "communal_how", "communal",
                "dwelling_key", "establishment_key", "establishment_code", "establishment_size"]


@pytest.fixture(scope="module")
def sample_w():
    export = load_any_export("sample_data/practice", AS_OF)
    return records_before_dwellings(export.patients, AS_OF)


def test_dwellings_and_communal_columns_in_order_and_repeatable(sample_w):
    first = H._dwellings(sample_w)
    assert list(first.columns[-4:]) == ["d_how", "d_postcode", "d_street", "d_town"]
    amb = H._ambiguous_and_communal(first)
    assert list(amb.columns) == list(first.columns) + _AMB_COLUMNS
    for _ in range(3):  # the threads' timing must never show in the result
        again = H._ambiguous_and_communal(H._dwellings(sample_w))
        pd.testing.assert_frame_equal(again, amb)
    for column in ["d_postcode", "d_street", "d_town", "only_flat", "communal_label", "communal_how",
                   "dwelling_key", "establishment_key"]:
        assert amb[column].dtype == pd.StringDtype("pyarrow", na_value=np.nan), column
        assert not amb[column].isna().any(), column


def test_establishment_key_is_the_dwelling_key_but_for_named_establishments(sample_w):
    amb = H._ambiguous_and_communal(H._dwellings(sample_w))
    named = (amb["communal_how"] == "name").to_numpy()
    assert (amb["establishment_key"][~named] == amb["dwelling_key"][~named]).all()
    # A named establishment is the whole building: one key for all its records.
    if named.any():
        per_building = amb[named].groupby("bld")["establishment_key"].nunique()
        assert (per_building == 1).all()
    resident = amb["communal"].to_numpy()
    assert (amb["establishment_code"].to_numpy()[~resident] == -1).all()
    assert (amb["establishment_size"].to_numpy()[~resident] == 0).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 30), max_size=60), st.integers(0, 3))
def test_first_seen_is_sorted_np_unique_return_index(values, spread):
    key = np.asarray(values, dtype=np.int64) * (1 if spread == 0 else 10 ** (4 * spread))
    want = np.sort(np.unique(key, return_index=True)[1])
    got = H._first_seen(key)
    assert got.dtype.kind == "i" and np.array_equal(got, want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=80), st.lists(st.integers(-5, 40), max_size=80),
       st.integers(0, 3))
def test_isin_is_np_isin_both_ways(values, among, spread):
    scale = 1 if spread == 0 else 10 ** (5 * spread)
    values = np.asarray(values, dtype=np.int64) * scale
    among = np.asarray(among, dtype=np.int64) * scale
    got = H._isin(values, among)
    assert got.dtype == bool and np.array_equal(got, np.isin(values, among))
