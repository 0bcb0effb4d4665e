"""Helpers added for speed in households.py, checked against the plain numpy forms."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link.households import _gather_rows


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20), st.integers(0, 16), st.lists(st.integers(0, 10**6), max_size=50))
def test_gather_rows_is_numpy_take(k, width, picks):
    rows = np.random.default_rng(k * 31 + width).integers(0, 256, size=(k, width), dtype=np.uint8)
    at = np.asarray([p % k for p in picks] if k else [], dtype=np.int64)
    got = _gather_rows(rows, at)
    assert got.shape == (len(at), width)
    assert np.array_equal(got, rows[at])
