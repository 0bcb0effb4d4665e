"""_evidence's address links of the records it makes texts for one by one (shared houses,
clinical-system households, other address matches): where the usual link fits, taken from
the per-dwelling usual links (_address_links) instead of made again by _address_link_at;
the texts must be the same."""

from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from family_link.layouts import load_any_export
from linkage_frames import records_before_dwellings

AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def sample_dwellings():
    export = load_any_export("sample_data/practice", AS_OF)
    w = H._ambiguous_and_communal(H._dwellings(records_before_dwellings(export.patients, AS_OF)))
    return w, H._usual_link_by_dwelling(w, H._usual_link(w))


def test_address_links_match_address_link_at_on_every_row(sample_dwellings):
    w, (texts, at) = sample_dwellings
    rows = np.arange(len(w))
    assert (at >= 0).any() and (at < 0).any()  # both kinds of row are checked
    assert H._address_links(w, rows, texts, at).to_pylist() == H._address_link_at(w, rows).to_pylist()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_address_links_match_address_link_at_on_row_subsets(sample_dwellings, data):
    w, (texts, at) = sample_dwellings
    pick = data.draw(st.lists(st.booleans(), min_size=len(w), max_size=len(w)))
    rows = np.flatnonzero(pick)
    assert H._address_links(w, rows, texts, at).to_pylist() == H._address_link_at(w, rows).to_pylist()


def test_address_links_take_the_given_usual_texts(sample_dwellings):
    # The usual rows' texts come from the texts given (a wrong position would show).
    w, (texts, at) = sample_dwellings
    rows = np.flatnonzero(at >= 0)[:5]
    marked = pa.array([f"<{i}>" for i in range(len(texts))], pa.string())
    assert H._address_links(w, rows, marked, at).to_pylist() == [f"<{at[r]}>" for r in rows]
