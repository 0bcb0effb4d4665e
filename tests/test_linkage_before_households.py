"""Checks of the work perf-link6 moved to before the households are numbered: made from
the records and relationships alone, it must give what the step makes for itself."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from test_link_evidence_by_dwelling import _frames
from test_roles_speed_helpers import assert_roles_equal, reference_roles, roles_frames


def rehoused(w, seed):
    """``w`` with other households (sizes recounted): what the roles read of them."""
    rng = np.random.default_rng(seed)
    w = w.copy()
    hh = rng.integers(0, max(len(w) // 2, 1), len(w))
    w["hh"] = hh
    w["household_size"] = np.bincount(hh, minlength=1)[hh] if len(w) else hh
    return w


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 40), st.integers(0, 60))
def test_roles_before_households_serves_any_households(seed, n, m):
    w, rel = roles_frames(seed, n, m if n else 0)
    before = H._roles_before_households(rel, len(w), w["date_of_birth"])
    # Made once, before the households: it must hold nothing that depends on them.
    for frame in (w, rehoused(w, seed)):
        got = H._roles(frame, rel, before)
        want = reference_roles(frame, rel)
        assert_roles_equal(got, want)


def test_roles_before_households_larger():
    for seed in range(3):
        w, rel = roles_frames(seed, 3000, 4000)
        before = H._roles_before_households(rel, len(w), w["date_of_birth"])
        frame = rehoused(w, seed)
        got, want = H._roles(frame, rel, before), reference_roles(frame, rel)
        assert_roles_equal(got, want)


@pytest.mark.parametrize("with_system_ids", [False, True])
def test_kinds_made_before_the_households(with_system_ids):
    w, rel = _frames(with_system_ids)
    before = H._kinds_before_households(w)
    linked = H._households(w, rel)
    pd.testing.assert_frame_equal(H._kinds(linked, rel, before), H._kinds(linked, rel))
    resolved = linked["sys_resolved"].to_numpy().astype(bool)
    assert resolved.any() == with_system_ids
    # The codes made before differ only where a system id placed the record (its kind is
    # then its household's), and do somewhere when some record is so placed.
    differ = H._kind_codes(linked, resolved) != before
    assert not (differ & ~resolved).any()
    assert differ.any() == with_system_ids


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_texts_taken_is_arrow_take(data):
    width = data.draw(st.sampled_from([None, 1, 3, 8]))
    if width is None:  # any texts, widths differing (and one null, sometimes)
        values = data.draw(st.lists(st.text(max_size=5) | st.none(), min_size=1, max_size=12))
    else:  # one width in bytes (multi-byte characters counted as their bytes)
        values = data.draw(st.lists(st.sampled_from(["a" * width, "b" * width, "é" + "c" * (width - 2)]
                                                    if width >= 2 else ["a", "b", "7"]), min_size=1, max_size=12))
    texts = pa.array(values, pa.string())
    offset = data.draw(st.integers(0, len(values) - 1))
    texts = texts.slice(offset)  # a slice: offsets into a shared buffer
    at = np.array(data.draw(st.lists(st.integers(0, len(texts) - 1), max_size=20)), dtype=np.int64)
    null = np.array(data.draw(st.lists(st.booleans(), min_size=len(at), max_size=len(at))), dtype=bool)
    got = H._texts_taken(texts, at, null)
    want = pc.take(texts, pa.array(at, mask=null) if len(at) else pa.array(at))
    assert got.type == pa.string()
    assert got.to_pylist() == want.to_pylist()
    assert H._texts_taken(texts, at).to_pylist() == pc.take(texts, pa.array(at)).to_pylist()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["", "", "", "S12", " x ", None, float("nan"), pd.NA, 7]), max_size=12),
       st.booleans())
def test_filled_text_is_the_plain_conversion(values, all_empty):
    if all_empty:  # a column the export lacks, as the reader gives it
        values = [""] * len(values)
    series = pd.Series(values, dtype=object, index=np.arange(len(values)) * 3)
    got = H._filled_text(series)
    want = series.astype(object).where(series.notna(), "").astype("str")
    pd.testing.assert_series_equal(got, want)
