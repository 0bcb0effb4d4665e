"""worklist._member_lists (a sort by household codes where the members come in patient id
order) against the two-key text sort it used before, on any members."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import worklist as W

_T = pa.large_string()


def _reference(members: pd.DataFrame, household_ids: pd.Series) -> pa.Array:
    """_member_lists as it was: one stable Arrow sort of (household, patient id) for every
    input (worklist's _member_groups_sorted, which it keeps for members out of id order)."""
    members = members[members["household_id"].notna()]
    household = W._arrow_text(members["household_id"])
    keys, starts, text = W._member_groups_sorted(members, household, W._arrow_text(members["patient_id"]))
    lists = pa.LargeListArray.from_arrays(pa.array(np.append(starts, len(household)).astype(np.int64)), text)
    wanted = pc.take(lists, pc.index_in(W._arrow_text(household_ids), keys))
    return pc.coalesce(wanted, pa.scalar([], pa.large_list(_T)))


HOMES = st.one_of(st.sampled_from(["H1", "H2", "Hé", "h", ""]), st.none())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3", "Pé", "p", "P10"]), HOMES), max_size=25),
       st.booleans(), st.lists(HOMES, max_size=10))
def test_member_lists_are_the_two_key_sort(people, in_id_order, wanted):
    # Only members in patient id order take the integer sort; the others take the two-key
    # sort the reference uses too (drawn to check which way _member_lists goes).
    if in_id_order:  # the usual case: the aligned path's members, in patient id order
        people = sorted(people, key=lambda p: p[0].encode())
    members = pd.DataFrame({
        "patient_id": pd.Series([p for p, _ in people], dtype="str"),
        "household_id": pd.Series([h for _, h in people], dtype="str"),
        "member": pd.Series([f"{p} of {h} #{i}" for i, (p, h) in enumerate(people)], dtype="str")})
    household_ids = pd.Series(wanted, dtype=object)
    got = W._member_lists(members, household_ids)
    assert got.equals(_reference(members, household_ids))
