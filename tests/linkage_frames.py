"""The records as link_normalised's steps first see them, for tests that drive those steps
one by one (shared, so that the tests build them the way link_households does)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from family_link import households as H
from family_link.address import normalise_addresses


def records_before_dwellings(patients: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """``patients`` prepared, their addresses normalised, in patient id order, with age
    and is_child: the frame ``_dwellings`` is given."""
    people = H._prepare(patients)
    joined = pd.concat([people.drop(columns=["postcode"]), normalise_addresses(people)], axis=1)
    w = H._sorted_by_id(joined)
    w["age"] = H._age(w["date_of_birth"], as_of)
    w["is_child"] = w["age"] < H.ADULT_AGE
    return w
