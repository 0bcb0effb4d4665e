"""households._sha1_heads hashes a slice of keys at a time (so the GIL can change hands
between slices): the heads must be those of one hashlib.sha1 per key, in order, whatever
the slice size and however the keys fall across slices."""

import hashlib

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H


def plain_heads(keys):
    return np.array([list(hashlib.sha1(k.encode("utf-8")).digest()[:6]) for k in keys],
                    dtype=np.uint8).reshape(-1, 6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=25), st.integers(1, 8), st.integers(0, 3))
def test_slices_give_one_digest_per_key_in_order(keys, size, skip):
    arr = pa.array(["x"] * skip + keys, pa.string()).slice(skip)  # an offset array too
    old = H._SHA1_SLICE
    H._SHA1_SLICE = size
    try:
        got = H._sha1_heads(arr)
    finally:
        H._SHA1_SLICE = old
    assert got.shape == (len(keys), 6)
    assert (got == plain_heads(keys)).all()


def test_more_keys_than_one_slice():
    keys = [f"dwelling|WS{i % 97} {i % 9}AB|{i}|MILL ROAD|" for i in range(2 * H._SHA1_SLICE + 17)]
    assert (H._sha1_heads(pa.array(keys, pa.string())) == plain_heads(keys)).all()
    assert H._sha1_heads(pa.array([], pa.string())).shape == (0, 6)
