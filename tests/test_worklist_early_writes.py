"""perf-out6: build_worklist hands each file to a writer as soon as it is rendered."""

from __future__ import annotations

from datetime import date

import pandas as pd

from family_link.worklist import WorklistFacts, build_worklist


def _inputs():
    patients = pd.DataFrame({"patient_id": ["A", "B", "C"], "forenames": ["Amy", "Sam", "Jo"],
                             "surname": ["Price", "Price", "Bell"],
                             "date_of_birth": pd.to_datetime(["2014-05-06", "2016-07-08", "1980-01-02"]),
                             "nhs_number": ["", "", ""], "address_line_1": ["1 Mill Road", "1 Mill Road", "Flat, Tower"],
                             "postcode": ["WS2 8QT", "WS2 8QT", "WS1 1AA"]})
    households = pd.DataFrame({"patient_id": ["A", "B", "C"], "household_id": ["H1", "H1", "H2"],
                               "role": ["child", "child", "adult"], "ambiguous": [False, False, True],
                               "link_evidence": ["", "", "flat number missing"], "relationship_notes": ["", "", ""]})
    flags = pd.DataFrame({"patient_id": ["B", "A"], "household_id": ["H1", "H1"], "rule_id": ["r", "r"],
                          "severity": ["action", "action"], "title": ["Rule", "Rule"], "recommendations": ["11", "11"],
                          "reason": ["why", "why"], "suggested_codes": ["1 x", "=2 y"]})
    facts = WorklistFacts(as_of=date(2026, 11, 1), rule_titles={"r": "Rule"}, rule_severities={"r": "action"})
    return flags, pd.DataFrame(), patients, households, facts


def test_write_gets_each_file_once_with_the_bytes_otherwise_returned():
    returned = build_worklist(*_inputs())
    assert list(returned) == ["worklist.html", "worklist.csv", "worklist.xlsx"]
    written = []
    assert build_worklist(*_inputs(), write=lambda name, content: written.append((name, content))) == {}
    assert written == list(returned.items())
    assert all(content for _, content in written)


def test_the_html_and_csv_are_written_before_the_xlsx_is_awaited(monkeypatch):
    import family_link.worklist as W

    order = []
    real = W.render_worklist_xlsx

    def slow_xlsx(*args, **kwargs):
        import time
        time.sleep(0.3)
        order.append("xlsx rendered")
        return real(*args, **kwargs)

    monkeypatch.setattr(W, "render_worklist_xlsx", slow_xlsx)
    W.build_worklist(*_inputs(), write=lambda name, content: order.append(name))
    assert order == ["worklist.html", "worklist.csv", "xlsx rendered", "worklist.xlsx"]


# --- patients found by their households row's position (_same_patients) ----------------

import numpy as np  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

import family_link.worklist as W  # noqa: E402


def _frames(n: int, seed: int, aligned: bool):
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in rng.permutation(n)]
    patients = pd.DataFrame({
        "patient_id": pd.Series(ids, dtype="str"),
        "forenames": pd.Series([f"F{i}" if i % 5 else None for i in range(n)], dtype="str"),
        "surname": pd.Series([f"S{i % 7}" for i in range(n)], dtype="str"),
        "date_of_birth": pd.to_datetime(["2010-01-01"] * n) + pd.to_timedelta(rng.integers(0, 5000, n), "D"),
        "nhs_number": pd.Series([""] * n, dtype="str"),
        "address_line_1": pd.Series([f"{i % 4} Road" if i % 3 else "" for i in range(n)], dtype="str"),
        "postcode": pd.Series(["WS1 1AA"] * n, dtype="str"),
    })
    order = np.arange(n) if aligned else rng.permutation(n)
    households = pd.DataFrame({
        "patient_id": patients["patient_id"].take(order).reset_index(drop=True),
        "household_id": pd.Series([f"H{k}" for k in rng.integers(0, max(1, n // 3), n)], dtype="str"),
        "role": pd.Series(rng.choice(["adult", "child"], n), dtype="str"),
        "ambiguous": rng.random(n) < 0.3,
        "link_evidence": pd.Series(["flat missing"] * n, dtype="str"),
        "relationship_notes": pd.Series([""] * n, dtype="str"),
    })
    k = min(n, 6)
    who = rng.choice(n, k, replace=False)
    # Mostly each flag's own household; now and then another (the position shortcut must not apply).
    own = households.set_index("patient_id")["household_id"]
    flag_ids = patients["patient_id"].take(who).tolist()
    flag_hh = [own[p] if rng.random() < 0.8 else f"H{rng.integers(0, n)}" for p in flag_ids]
    flags = pd.DataFrame({"patient_id": pd.Series(flag_ids, dtype="str"), "household_id": pd.Series(flag_hh, dtype="str"),
                          "rule_id": "r", "severity": "action", "title": "Rule", "recommendations": "11",
                          "reason": "why", "suggested_codes": "1 x"})
    return flags, patients, households


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 10**6), aligned=st.booleans())
def test_rows_and_addresses_by_position_equal_the_scans(n, seed, aligned):
    flags, patients, households = _frames(n, seed, aligned)
    assert W._same_patients(patients, households) or not aligned
    rows = W.worklist_rows(flags, patients, households, ["r"])
    amb = W.addresses_to_resolve(households, patients)
    real = W._same_patients
    try:
        W._same_patients = lambda p, h: False  # the membership scans (the code before)
        pd.testing.assert_frame_equal(rows, W.worklist_rows(flags, patients, households, ["r"]))
        pd.testing.assert_frame_equal(amb, W.addresses_to_resolve(households, patients))
    finally:
        W._same_patients = real


def test_same_patients_needs_the_same_ids_in_the_same_order():
    p = pd.DataFrame({"patient_id": pd.Series(["A", "B"], dtype="str")})
    assert W._same_patients(p, pd.DataFrame({"patient_id": pd.Series(["A", "B"], dtype="str")}))
    assert not W._same_patients(p, pd.DataFrame({"patient_id": pd.Series(["B", "A"], dtype="str")}))
    assert not W._same_patients(p, pd.DataFrame({"patient_id": pd.Series(["A"], dtype="str")}))
    assert not W._same_patients(p, pd.DataFrame({"patient_id": pd.Series(["A", None], dtype="str")}))
    assert not W._same_patients(p, pd.DataFrame({"patient_id": ["A", "B"]}).astype(object))
