"""Checks of perf-link7: _dwellings gives _ambiguous_and_communal the buildings' keys as
integer codes (``bld_key_code``, from its own codes), so the building keys' texts are
made only for the named establishments; codes must be equal exactly where the joined
building keys are, and the frames must be what the texts gave."""

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from family_link.layouts import load_any_export
from linkage_frames import records_before_dwellings

AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def sample_w():
    export = load_any_export("sample_data/practice", AS_OF)
    return records_before_dwellings(export.patients, AS_OF)


def _same_partition(a, b) -> bool:
    return np.array_equal(pd.factorize(np.asarray(a))[0], pd.factorize(np.asarray(b))[0])


def _joined_building_keys(w: pd.DataFrame) -> np.ndarray:
    """The building key of each record as _ambiguous_and_communal joins it (None: no building)."""
    out = []
    for bld, postcode, town, number, bkey, street in zip(
            w["bld"], w["d_postcode"], w["d_town"], w["number"], w["bkey"], w["d_street"]):
        place = postcode if postcode != "" else "T:" + town
        out.append(None if bld < 0 else "|".join([place, number, bkey, street]))
    return np.asarray(out, dtype=object)


def test_building_key_codes_equal_exactly_where_building_keys_are(sample_w):
    dw = H._dwellings(sample_w)
    assert "bld_key_code" in dw.columns
    assert list(dw.columns[-4:]) == ["d_how", "d_postcode", "d_street", "d_town"]
    codes = dw["bld_key_code"].to_numpy()
    keys = _joined_building_keys(dw)
    assert np.array_equal(codes < 0, pd.isna(keys))
    assert _same_partition(codes, np.where(pd.isna(keys), "", keys))


def test_ambiguous_and_communal_same_with_and_without_the_codes(sample_w):
    dw = H._dwellings(sample_w)
    with_codes = H._ambiguous_and_communal(dw)
    without = H._ambiguous_and_communal(dw.drop(columns=["bld_key_code"]))
    assert _same_partition(with_codes["dwelling_key_code"], without["dwelling_key_code"])
    pd.testing.assert_frame_equal(with_codes.drop(columns=["bld_key_code", "dwelling_key_code"]),
                                  without.drop(columns=["dwelling_key_code"]))


_WORDS = ["", "A", "B", "AB", "T:A", "A B"]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_building_key_codes_against_the_joined_texts(data):
    def texts(extra):
        values = sorted(set(data.draw(st.lists(st.sampled_from(_WORDS + extra), max_size=5))))
        return pa.array(values, pa.string())

    n_bld = data.draw(st.integers(0, 8))
    parts = []
    for name, extra in (("number", []), ("bkey", []), ("postcode", ["WS1 1AA", "WS1 1AB"]),
                        ("street", ["HIGH ST"]), ("town", ["WALSALL"])):
        t = texts(extra)
        codes = np.asarray(data.draw(st.lists(st.integers(-1, len(t) - 1), min_size=n_bld, max_size=n_bld)),
                           dtype=np.int64)
        parts.append((codes, t))
    bld = np.asarray(data.draw(st.lists(st.integers(-1, n_bld - 1), max_size=12)) if n_bld else [],
                     dtype=np.int64)
    got = H._building_key_codes(bld, *parts)

    def text(part, b):
        codes, t = part
        return "" if codes[b] < 0 else t[int(codes[b])].as_py()

    number, bkey, postcode, street, town = parts
    if postcode[1].to_pylist() and any(p.startswith("T:") for p in postcode[1].to_pylist()):
        assert got is None
        return
    assert got is not None
    keys = []
    for b in bld:
        if b < 0:
            keys.append(None)
            continue
        place = text(postcode, b) or "T:" + text(town, b)
        keys.append("|".join([place, text(number, b), text(bkey, b), text(street, b)]))
    keys = np.asarray(keys, dtype=object)
    assert np.array_equal(got < 0, pd.isna(keys))
    assert _same_partition(got[got >= 0], keys[got >= 0])


def test_building_key_codes_refused_when_a_text_holds_the_separator():
    part = (np.zeros(1, dtype=np.int64), pa.array(["A|B"], pa.string()))
    plain = (np.zeros(1, dtype=np.int64), pa.array(["A"], pa.string()))
    assert H._building_key_codes(np.zeros(2, dtype=np.int64), plain, part, plain, plain, plain) is None
    assert H._building_key_codes(np.zeros(2, dtype=np.int64), plain, plain, plain, plain, plain) is not None
