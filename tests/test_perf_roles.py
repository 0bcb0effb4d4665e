"""Checks of the helpers added for speed (perf-roles): each must give exactly what the
plainer code it replaced gives."""

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H


def plain_ids(prefix, keys):
    """The ids as the plain code made them: one hexdigest per key."""
    return [None if k is None else prefix + hashlib.sha1(k.encode("utf-8")).hexdigest()[:12]
            for k in keys]


def check_hash_ids(prefix, keys):
    ids, codes = H._hash_ids(prefix, pa.array(keys, pa.string()))
    expected = plain_ids(prefix, keys)
    assert [None if pd.isna(x) else x for x in ids] == expected
    assert str(ids.dtype) == "str"
    valid = [k is not None for k in keys]
    # Codes number the distinct ids in order of first appearance; -1 for a missing key.
    want = np.full(len(keys), -1, dtype=np.int64)
    if any(valid):
        want[valid] = pd.factorize(np.array([e for e in expected if e is not None], dtype=object))[0]
    assert codes.tolist() == want.tolist()


texts = st.lists(st.sampled_from(["", "dwelling|WS2 8QT|12", "person|P1", "person|P2", "é|ü", "a\x00b",
                                  "system|household id 7"]) | st.text(max_size=12), max_size=30)


@settings(max_examples=60, deadline=None)
@given(texts)
def test_hash_ids_match_plain_hexdigests(keys):
    check_hash_ids("H-", keys)


def test_hash_ids_empty_missing_and_series():
    check_hash_ids("D-", [])
    check_hash_ids("H-", ["a", None, "b", "a", None])
    ids, codes = H._hash_ids("H-", pd.Series(["x", "y", "x"], index=[5, 6, 7], dtype="str"))
    assert ids.index.tolist() == [5, 6, 7] and codes.tolist() == [0, 1, 0]
    assert ids.tolist() == plain_ids("H-", ["x", "y", "x"])


def test_hash_ids_codes_survive_sha1_prefix_collisions(monkeypatch):
    # Make distinct keys collide on their ids: keep only the digest's first byte (and
    # zero the rest) so many keys share an id; codes must then follow the ids, not keys.
    real = H._sha1_heads

    def coarse(texts):
        heads = real(texts).copy()
        heads[:, 0] &= 3
        heads[:, 1:] = 0
        return heads

    monkeypatch.setattr(H, "_sha1_heads", coarse)
    keys = [f"k{i}" for i in range(40)] + ["k3", "k0"]
    ids, codes = H._hash_ids("H-", pa.array(keys))
    assert ids.nunique() <= 4
    assert codes.tolist() == pd.factorize(ids.to_numpy(dtype=object))[0].tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "", "é"]), st.sampled_from(["a", "b", "x", ""])),
                max_size=25))
def test_hash_ids_like_equals_hash_ids(pairs):
    keys = pa.array([p[0] for p in pairs], pa.string())
    known_keys = pa.array([p[1] for p in pairs], pa.string())
    known_ids = H._pa(pd.DataFrame({"k": H._hash_ids("H-", known_keys)[0]}), "k")
    got = H._hash_ids_like("D-", keys, pd.RangeIndex(len(pairs)), known_keys, "H-", known_ids)
    want = H._hash_ids("D-", keys, pd.RangeIndex(len(pairs)))[0]
    pd.testing.assert_series_equal(got, want)


def test_hash_ids_like_falls_back_when_ids_are_not_fixed_width():
    keys = pa.array(["a", "b"])
    got = H._hash_ids_like("D-", keys, pd.RangeIndex(2), keys, "H-", pa.array(["x", "yy"]))
    assert got.tolist() == plain_ids("D-", ["a", "b"])


def test_fixed_width_bytes_round_trip():
    rows = np.frombuffer(b"H-0123456789abD-ba9876543210", dtype=np.uint8).reshape(2, 14)
    text = H._fixed_width_text(rows)
    assert text.to_pylist() == ["H-0123456789ab", "D-ba9876543210"]
    assert (H._fixed_width_bytes(text.slice(1), 14) == rows[1:]).all()
    assert H._fixed_width_bytes(pa.array(["ab", "c"]), 2) is None
    assert H._fixed_width_bytes(pa.array(["ab", None]), 2) is None
