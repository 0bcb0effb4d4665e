"""engine._recorded_words (the recorded relationships' words made per distinct word)
against the per-row expressions it replaces."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link.engine import _INVERSE, _recorded_words


def _per_row(relationship: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    forwards = (relationship.str.capitalize() + " (recorded),").to_numpy()
    backwards = (relationship.map(_INVERSE).fillna("relative").str.capitalize() + " (recorded),").to_numpy()
    return forwards, backwards


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and all((x == y and type(x) is type(y)) or (x != x and y != y) for x, y in zip(a, b))


WORDS = st.one_of(st.sampled_from(sorted(_INVERSE)), st.sampled_from(["MOTHER", "ßon", "", "x y", "ǆ"]), st.none())


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, max_size=30), st.sampled_from(["str", object]))
def test_recorded_words_are_the_per_row_words(values, dtype):
    relationship = pd.Series(values, dtype=dtype)
    got, want = _recorded_words(relationship), _per_row(relationship)
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    assert _same(got[0], want[0]) and _same(got[1], want[1])


def test_recorded_words_example():
    forwards, backwards = _recorded_words(pd.Series(["mother", None, "mother", "child"], dtype="str"))
    assert list(forwards[[0, 2, 3]]) == ["Mother (recorded),", "Mother (recorded),", "Child (recorded),"]
    assert forwards[1] != forwards[1]  # missing stays missing, as the per-row expression gives
    assert backwards[0] == (pd.Series(["mother"]).map(_INVERSE).iloc[0].capitalize() + " (recorded),")
