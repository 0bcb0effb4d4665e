"""Small checks of the helpers added for speed (perf-link2): each must give exactly what
the plainer code it replaced gives."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from family_link import address as A
from family_link import households as H


def test_joined_text_matches_squash_of_comma_join():
    lines = [pa.array(x) for x in [["", "KENT", "12 MILL ROAD", "", "A,KENT,ESSEX,B"],
                                   ["", "", "ESSEX", "", "KENT"], ["", "WALSALL", "", "", ""],
                                   ["", "", "", "", "UK"], ["", "KENT", "", "", ""]]]
    plain = A._squash(A._sub(A._squash(pa.compute.binary_join_element_wise(*lines, ",")),
                             A._COUNTY_SEGMENT, r"\1\2"))
    assert A._joined_text(lines).equals(plain)


def test_squash_changed_squashes_only_changed_values():
    before = A._squash(pa.array(["A B", "C,D", "E"]))
    after = pa.array(["A B", "C,,D ", "E"])
    assert A._squash_changed(before, after).equals(A._squash(after))


def test_communal_names_first_label_wins():
    named = pa.array(["OAK CARE HOME", "", "ROSE COTTAGE", "THE HOSTEL, REFUGE"])
    assert A._communal_names(named).to_pylist() == ["CARE HOME", "", "", "HOSTEL"]


def test_locate_matches_get_indexer_and_refuses_repeated_ids():
    rel = pd.DataFrame({"patient_id": pd.Series(["b", "x", None], dtype="str"),
                        "related_patient_id": pd.Series(["a", "b", "a"], dtype="str")})
    for ids in (["a", "b", "c"], ["c", "a", "b"]):
        w = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str")})
        index = pd.Index(w["patient_id"])
        got = H._locate(w, rel)
        assert got["a"].tolist() == index.get_indexer(rel["patient_id"]).tolist()
        assert got["b"].tolist() == index.get_indexer(rel["related_patient_id"]).tolist()
    with pytest.raises(pd.errors.InvalidIndexError):  # repeated ids: as Index.get_indexer
        H._locate(pd.DataFrame({"patient_id": pd.Series(["a", "a"], dtype="str")}), rel)


def test_equal_codes_equal_exactly_where_texts_equal():
    a = pa.array(["1", "1", "2", "1", ""])
    b = pa.array(["X", "X", "X", "Y", ""])
    codes = H._equal_codes(a, b)
    pairs = list(zip(a.to_pylist(), b.to_pylist()))
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            assert (codes[i] == codes[j]) == (pairs[i] == pairs[j])


def test_summarise_households_counts_as_before():
    h = pd.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4"], "household_id": ["H1", "H1", "H2", "H3"],
        "dwelling_id": ["D1", "D1", "D2", "D2"], "household_size": [2, 2, 1, 1],
        "communal": [False, False, True, True], "dwelling_kind": ["house", "house", "communal", "communal"],
        "ambiguous": [False] * 4, "conflict": [""] * 4,
    })
    s = H.summarise_households(h)
    assert s["households"] == 3 and s["household_sizes"]["1"] == 2 and s["household_sizes"]["2"] == 1
    with_missing = h.assign(household_id=pd.Series(["H1", None, "H2", "H3"], dtype=object))
    assert H.summarise_households(with_missing)["households"] == 3


@pytest.mark.parametrize("values", [
    np.array([], dtype=np.int64), np.array([7], dtype=np.int64), np.array([3, 3, 3]),
    np.array([5, -1, 5, 2, -1, 9, 0], dtype=np.int64), np.array([4, 1, 4], dtype=np.int32),
    np.random.default_rng(3).integers(-50, 50, 1000),
])
def test_sorted_unique_is_np_unique(values):
    got = H._sorted_unique(values)
    want = np.unique(values)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
