"""Checks of the helpers address.py uses for speed (perf-addr2): each must give exactly
what the plainer code it stands for gives."""

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import address as A


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
