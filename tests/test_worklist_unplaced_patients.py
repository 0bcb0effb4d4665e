"""worklist.unplaced_patients (by position where households holds the patients row for
row) against the scan of every patient id that check's triggers made."""
from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._frames import isin
from family_link.worklist import unplaced_patients


def _scan(households: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    unplaced = households.loc[households["ambiguous"].astype(bool), "patient_id"]
    return patients[isin(patients["patient_id"], unplaced).to_numpy()]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.booleans(), max_size=20), st.sampled_from(["aligned", "shuffled", "fewer"]), st.randoms())
def test_unplaced_patients_are_the_scan(ambiguous, layout, rnd):
    n = len(ambiguous)
    ids = [f"P{i:02d}" for i in range(n)]
    patients = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "surname": pd.Series(["x"] * n, dtype="str")})
    patients.index = pd.RangeIndex(10, 10 + n)  # labels other than positions: kept as the filter keeps them
    order = list(range(n))
    if layout == "shuffled":
        rnd.shuffle(order)
    elif layout == "fewer":
        order = order[: n // 2]
    households = pd.DataFrame({"patient_id": pd.Series([ids[i] for i in order], dtype="str"),
                               "ambiguous": [ambiguous[i] for i in order]})
    want = _scan(households, patients)
    assert want["patient_id"].notna().all() and len(want) == sum(ambiguous[i] for i in order)
    pd.testing.assert_frame_equal(unplaced_patients(households, patients), want)
