"""The rule engine's Arrow paths (flags, household evidence, scope and the open pairs'
order made over arrays, not frames) against the frame code they stand for: the engine
with those paths turned off must give the same frames, on generated practices and on
the sample practice."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import family_link.engine as engine
from family_link.engine import _open_order, evaluate_rules
from family_link.rules import load_ruleset

A = date(2026, 11, 1)
RULESET = load_ruleset()
CODES = sorted({c for r in RULESET.rules for n in r.codelist_names() for c in RULESET.codelists[n].codes})


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_flags_fast", lambda *a, **k: None)
    monkeypatch.setattr(engine, "_household_evidence_fast", lambda *a, **k: None)
    monkeypatch.setattr(engine, "_targets_satisfied_at", lambda *a, **k: None)


def _same(monkeypatch: pytest.MonkeyPatch, *args) -> engine.Evaluation:
    fast = evaluate_rules(*args)
    with monkeypatch.context() as m:
        _plain(m)
        plain = evaluate_rules(*args)
    pd.testing.assert_frame_equal(fast.flags, plain.flags, check_exact=True)
    pd.testing.assert_frame_equal(fast.scope, plain.scope, check_exact=True)
    assert list(fast.scope.dtypes) == list(plain.scope.dtypes)
    return fast


names = st.sampled_from(["Ann", "Ben", "", " Cy ", None, "Zoë", "a b"])


@st.composite
def practices(draw):
    n = draw(st.integers(1, 14))
    ids = [f"P{i}" for i in range(n)]
    patients = pd.DataFrame({
        "patient_id": pd.Series(ids, dtype="str"),
        "forenames": pd.Series([draw(names) for _ in ids], dtype="str"),
        "surname": pd.Series([draw(names) for _ in ids], dtype="str"),
        "date_of_birth": pd.to_datetime([A - timedelta(days=draw(st.integers(0, 365 * 70))) for _ in ids]),
        "sex": [draw(st.sampled_from(["F", "M"])) for _ in ids],
    })
    homes = [draw(st.sampled_from(["H1", "H2", "H3", ""])) for _ in ids]
    households = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "household_id": pd.Series(homes, dtype="str")})
    k = draw(st.integers(0, 30))
    events = pd.DataFrame({
        "patient_id": pd.Series([draw(st.sampled_from(ids + ["ZZ"])) for _ in range(k)], dtype="str"),
        "code": pd.Series([draw(st.sampled_from(CODES)) for _ in range(k)], dtype=object),
        "term": pd.Series([draw(st.sampled_from(["", "a term"])) for _ in range(k)], dtype="str"),
        "date": pd.to_datetime([A - timedelta(days=draw(st.integers(-5, 800))) for _ in range(k)]),
    })
    r = draw(st.integers(0, 6))
    relationships = pd.DataFrame({
        "patient_id": pd.Series([draw(st.sampled_from(ids)) for _ in range(r)], dtype="str"),
        "related_patient_id": pd.Series([draw(st.sampled_from(ids)) for _ in range(r)], dtype="str"),
        "relationship": pd.Series([draw(st.sampled_from(["mother", "sibling", "aunt"])) for _ in range(r)],
                                  dtype="str"),
    })
    return patients, events, households, relationships


@settings(max_examples=60, deadline=None)
@given(practice=practices())
def test_the_arrow_paths_give_the_frame_codes_answer(practice):
    patients, events, households, relationships = practice
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same(monkeypatch, RULESET, patients, events, households, A, relationships)


def test_the_sample_practice_flags_alike_both_ways(monkeypatch):
    from family_link.households import link_households
    from family_link.layouts import load_any_export
    from pathlib import Path
    export = load_any_export(Path(__file__).parents[1] / "sample_data" / "practice", A)
    households = link_households(export.patients, export.relationships, A)
    got = _same(monkeypatch, RULESET, export.patients, export.events, households, A, export.relationships)
    assert len(got.flags) and len(got.scope)


@given(rows=st.lists(st.tuples(st.sampled_from(["P1", "P2", "P10", None]), st.integers(0, 3),
                               st.sampled_from(["T1", "T2", "T10", None])), max_size=12),
       dtype=st.sampled_from(["str", object]))
def test_open_order_is_sort_values(rows, dtype):
    patient = pd.Series([r[0] for r in rows], dtype=dtype)
    day = np.array([np.datetime64("2026-01-01") + np.timedelta64(r[1], "D") for r in rows], dtype="datetime64[ns]")
    trigger = pd.Series([r[2] for r in rows], dtype=dtype)
    frame = pd.DataFrame({"p": patient, "d": day, "t": trigger})
    expected = frame.sort_values(["p", "d", "t"], ascending=[True, False, True]).index.to_numpy()
    assert _open_order(patient, day, trigger).tolist() == expected.tolist()


def test_flag_frame_is_the_concatenation_of_the_rules_frames():
    import pyarrow as pa
    from family_link.engine import FLAG_COLUMNS, _columns_frame, _flag_frame

    def columns(ids, reason):
        out = {c: f"{c}-text" for c in FLAG_COLUMNS}
        out["patient_id"] = pa.array(ids, pa.string())
        out["reason"] = pa.array(reason, pa.string())
        return out

    a, b = columns(["P1", "P2"], ["x", None]), columns(["P3"], ["y"])
    empty = pd.DataFrame(columns=FLAG_COLUMNS)
    for parts in ([a, empty, b], [empty, a], [empty], [], [a, _columns_frame(b)]):
        frames = [_columns_frame(p) if isinstance(p, dict) else p for p in parts]
        expected = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLAG_COLUMNS))
        expected = expected.astype(object).reset_index(drop=True)
        got = _flag_frame(parts)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert got.equals(expected)
