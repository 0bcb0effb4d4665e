"""Helpers added for speed in households.py, checked against the plain numpy forms."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from family_link._export import load_export
from family_link.households import _gather_rows
from linkage_frames import records_before_dwellings


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20), st.integers(0, 16), st.lists(st.integers(0, 10**6), max_size=50))
def test_gather_rows_is_numpy_take(k, width, picks):
    rows = np.random.default_rng(k * 31 + width).integers(0, 256, size=(k, width), dtype=np.uint8)
    at = np.asarray([p % k for p in picks] if k else [], dtype=np.int64)
    got = _gather_rows(rows, at)
    assert got.shape == (len(at), width)
    assert np.array_equal(got, rows[at])


_SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "practice"
_AS_OF = date(2026, 11, 1)


def _sample_frames():
    """The sample practice's records as ``_dwellings`` returns them, and its relationships."""
    export = load_export(_SAMPLE, _AS_OF)
    w = records_before_dwellings(export.patients, _AS_OF)
    return H._dwellings(w), H._locate(w, H._relationships(export.relationships))


def _codes_match_keys(codes, keys):
    """Codes equal exactly where the texts are equal (pairs of (code, key) one to one)."""
    pairs = pd.DataFrame({"c": codes, "k": keys}).drop_duplicates()
    return pairs["c"].is_unique and pairs["k"].is_unique


@pytest.mark.parametrize("separator_in_flat", [False, True])
def test_dwelling_key_codes_equal_exactly_where_dwelling_keys_are(separator_in_flat):
    w, rel = _sample_frames()
    if separator_in_flat:  # a "|" in a flat: the codes come from the keys' text
        flat = w["flat"].astype(object)
        w["flat"] = flat.where(flat == "", flat + "|2").astype("str")
    w = H._ambiguous_and_communal(w)
    codes = w["dwelling_key_code"].to_numpy()
    keys = w["dwelling_key"].to_numpy(dtype=object)
    assert ((codes < 0) == (w["d"].to_numpy() < 0)).all()
    assert _codes_match_keys(codes, keys)
    # And households numbered through the codes are those numbered from the text.
    with_codes = H._households(w, rel)
    without = H._households(w.drop(columns=["dwelling_key_code"]), rel)
    pd.testing.assert_frame_equal(with_codes.drop(columns=["dwelling_key_code"]), without)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "dwelling|x", "", "é|", "person|1"]), max_size=30),
       st.integers(1, 50))
def test_hash_ids_given_equal_key_codes_are_the_same(keys, scale):
    codes = pd.factorize(pd.Series(keys, dtype=object))[0]
    same = codes * scale - 7  # any integers one to one with the keys
    plain = H._hash_ids("H-", pa.array(keys, pa.string()))
    coded = H._hash_ids("H-", pa.array(keys, pa.string()), None, same)
    pd.testing.assert_series_equal(plain[0], coded[0])
    assert np.array_equal(plain[1], coded[1])


def test_dwelling_ids_made_apart_are_the_linked_ones():
    w, rel = _sample_frames()
    w = H._households(H._ambiguous_and_communal(w), rel)
    kinds = H._kinds(w, rel)
    assert "dwelling_id" not in kinds.columns
    export = load_export(_SAMPLE, _AS_OF)
    linked = H.link_households(export.patients, export.relationships, _AS_OF)
    assert kinds["patient_id"].tolist() == linked["patient_id"].tolist()
    assert H._dwelling_ids(kinds).tolist() == linked["dwelling_id"].tolist()
