"""Checks of perf-link5: the evidence's usual address links are made once per
(dwelling, street given) and given out by a take; they must be the per-record texts
the one 1M-row concatenation gave."""

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H
from family_link.layouts import load_any_export
from linkage_frames import records_before_dwellings

AS_OF = date(2026, 11, 1)


def _per_record(w, rows):
    """The usual links as the per-record concatenation made them (null outside rows)."""
    rows = np.asarray(rows, dtype=bool)
    parts = H._usual_link_parts_of({c: H._pa(w, c) for c in ("d_postcode", "number", "flat", "bkey", "d_street")},
                                   rows, H._nonempty(H._pa(w, "street")))
    return H._join_skip(*parts, H._repeat_where("", ~rows))


def _by_dwelling(w, rows):
    texts, pos = H._usual_link_by_dwelling(w, rows)
    assert ((pos >= 0) == np.asarray(rows, dtype=bool)).all()
    return pc.take(pa.concat_arrays([texts, pa.array([""])]),
                   pa.array(np.where(pos >= 0, pos, len(texts))))


@pytest.fixture(scope="module")
def sample_kinds():
    export = load_any_export("sample_data/practice", AS_OF)
    return H._ambiguous_and_communal(H._dwellings(records_before_dwellings(export.patients, AS_OF)))


def test_usual_links_by_dwelling_match_the_per_record_texts(sample_kinds):
    w = sample_kinds
    for rows in (H._usual_link(w), np.ones(len(w), dtype=bool), np.arange(len(w)) % 3 == 0):
        assert _by_dwelling(w, rows).equals(_per_record(w, rows))


_text = st.sampled_from(["", "A", "12", "FLAT 2", "ROSE COTTAGE", "HIGH STREET", "LS1 1AA"])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_usual_links_by_dwelling_property(data):
    # Dwellings share number, flat, building name, postcode and street; the record's
    # own street is given or not; some records have no dwelling (-1).
    n_d = data.draw(st.integers(0, 6))
    parts = [[data.draw(_text) for _ in range(5)] for _ in range(n_d)]
    n = data.draw(st.integers(0, 25))
    d = np.array([data.draw(st.integers(-1, n_d - 1)) for _ in range(n)], dtype=np.int64)
    cols = {}
    for j, c in enumerate(["d_postcode", "number", "flat", "bkey", "d_street"]):
        cols[c] = [parts[x][j] if x >= 0 else data.draw(_text) for x in d]
    given_street = [data.draw(st.booleans()) for _ in range(n)]
    cols["street"] = [s if g else "" for s, g in zip(cols["d_street"], given_street)]
    w = pd.DataFrame({c: pd.Series(v, dtype="str") for c, v in cols.items()})
    w["d"] = d
    rows = np.array([data.draw(st.booleans()) for _ in range(n)], dtype=bool)
    assert _by_dwelling(w, rows).to_pylist() == _per_record(w, rows).to_pylist()


@pytest.fixture(scope="module")
def sample_linked(sample_kinds):
    export = load_any_export("sample_data/practice", AS_OF)
    ids = sample_kinds[["patient_id"]]
    rel = H._locate(ids, H._relationships(export.relationships))
    w = H._households(sample_kinds, rel)
    return H._kinds(w, rel), rel


def test_fixed_sentences_by_category(sample_linked):
    # Force rows into the categories whose sentences are fixed texts taken by code.
    w, rel = sample_linked
    w = w.copy()
    plain = ~w["communal"].to_numpy() & ~H._nonempty(H._pa(w, "sys_key"))
    rows = np.flatnonzero(plain)[:4]
    kind = w["dwelling_kind"].to_numpy(dtype=object).copy()
    kind[rows[0]] = "ambiguous"
    kind[rows[1]] = "no_address"
    w["dwelling_kind"] = pd.Series(kind, index=w.index, dtype="str")
    w.loc[w.index[rows[0]], "ambiguous_flat"] = False
    size = w["household_size"].to_numpy().copy()
    size[rows[2:4]] = 1
    w["household_size"] = size
    shared = np.zeros(len(w), dtype=bool)
    shared[rows[2]] = True
    w["sys_shared_dwelling"] = shared
    for r in rows:  # no recorded-relationship suffix on these rows
        w.loc[w.index[r], "hh"] = -1 - r
    text = H._evidence(w, rel).to_pylist()
    assert text[rows[0]] == H._FIXED_EVIDENCE[0]
    assert text[rows[1]] in H._FIXED_EVIDENCE[1:4]
    assert text[rows[2]] == "address shared with several clinical-system households: not joined to any"
    assert text[rows[3]] == "no other patient at this address"


_hexish = st.text(alphabet="0123456789abcdefABg-", min_size=11, max_size=13)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_hexish.map(lambda x: "H-" + x), _hexish.map(lambda x: "D-" + x)), max_size=12))
def test_hex_id_values_equal_exactly_where_the_ids_are(ids):
    values = H._hex_id_values(pa.array(ids, pa.string()), "H-")
    valid = all(len(x) == 14 and x.startswith("H-") and all(c in "0123456789abcdef" for c in x[2:])
                for x in ids)
    assert (values is not None) == valid
    if valid:
        assert values.tolist() == [int(x[2:], 16) for x in ids]


def test_hex_id_values_refuse_missing_ids():
    assert H._hex_id_values(pa.array(["H-0123456789ab", None], pa.string()), "H-") is None


def _summary_plain(h):
    """summarise_households' counts by the texts (the reference)."""
    sizes = h.drop_duplicates("household_id")["household_size"].to_numpy()
    return int(h["household_id"].nunique()), int(h["dwelling_id"].nunique()), sorted(sizes.tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.booleans()), max_size=30))
def test_summary_counts_as_the_texts_give_them(rows):
    hh = [f"H-{x:012x}" for x, _, _ in rows]
    dw = [f"D-{y:012x}" if ok else f"D-{y:011x}Z" for _, y, ok in rows]  # some not hex
    size = pd.Series(hh, dtype=object).map(pd.Series(hh, dtype=object).value_counts()).fillna(0)
    h = pd.DataFrame({"household_id": pd.Series(hh, dtype="str"), "dwelling_id": pd.Series(dw, dtype="str"),
                      "household_size": size.astype("int64"), "communal": False, "ambiguous": False,
                      "dwelling_kind": pd.Series(["house"] * len(rows), dtype="str"),
                      "conflict": pd.Series([""] * len(rows), dtype="str")})
    s = H.summarise_households(h)
    n_hh, n_dw, sizes = _summary_plain(h)
    assert s["households"] == n_hh and s["dwellings"] == n_dw
    assert sum(s["household_sizes"].values()) == len(sizes)
    assert s["household_sizes"]["1"] == sizes.count(1) and s["household_sizes"]["2"] == sizes.count(2)


def test_evidence_with_the_usual_links_made_beforehand(sample_kinds, sample_linked):
    # As link_normalised does: the usual links made from the frame before the households
    # are numbered, then used for the evidence of the frame after.
    w, rel = sample_linked
    before = H._usual_link_by_dwelling(sample_kinds, H._usual_link(sample_kinds))
    assert H._evidence(w, rel, before).equals(H._evidence(w, rel))


def _frames(with_system_ids):
    """The sample's records as _ambiguous_and_communal returns them (with system
    household ids and uprns given at random if asked), and its relationships."""
    export = load_any_export("sample_data/practice", AS_OF)
    patients = export.patients.copy()
    if with_system_ids:  # system households over (and across) dwellings, some uprns
        rng = np.random.default_rng(7)
        n = len(patients)
        hid = np.where(rng.random(n) < 0.3, "S" + (rng.integers(0, n // 4, n)).astype(str), "")
        uprn = np.where(rng.random(n) < 0.1, "U" + (rng.integers(0, n // 8, n)).astype(str), "")
        patients["household_id"] = pd.Series(hid, index=patients.index, dtype="str")
        patients["uprn"] = pd.Series(uprn, index=patients.index, dtype="str")
    w = H._ambiguous_and_communal(H._dwellings(records_before_dwellings(patients, AS_OF)))
    return w, H._locate(w[["patient_id"]], H._relationships(export.relationships))


@pytest.mark.parametrize("with_system_ids", [False, True])
def test_households_from_the_distinct_keys_alone(with_system_ids):
    # The keys made at the households' first records (and the non-dwelling records)
    # alone give the ids the whole column of keys gives.
    w, rel = _frames(with_system_ids)
    pd.testing.assert_frame_equal(H._households(w, rel),
                                  H._households(w.drop(columns=["dwelling_key_code"]), rel).assign(
                                      dwelling_key_code=w["dwelling_key_code"])[H._households(w, rel).columns])


@pytest.mark.parametrize("with_system_ids", [False, True])
def test_dwelling_ids_by_households_are_the_hashes_of_the_keys(with_system_ids):
    w, rel = _frames(with_system_ids)
    w = H._kinds(H._households(w, rel), rel)
    kind = H._pa(w, "dwelling_kind")
    alone = (H._bool_pa(pc.equal(kind, "ambiguous")) | H._bool_pa(pc.equal(kind, "no_address"))
             | ~H._nonempty(H._pa(w, "dwelling_key")))
    communal = w["communal"].to_numpy().astype(bool)
    assert communal.any() and alone.any()
    assert H._nonempty(H._pa(w, "sys_key")).any() == with_system_ids
    if with_system_ids:
        assert w["sys_resolved"].any() and w["sys_adopted"].any()
    key = H._choose_text([(communal, ["dwelling|", H._pa(w, "establishment_key")]),
                          (~communal & alone, ["person|", H._pa(w, "patient_id")]),
                          (~communal & ~alone, ["dwelling|", H._pa(w, "dwelling_key")])])
    made = H._dwelling_ids_by_households(w, communal, alone)
    assert made is not None
    pd.testing.assert_series_equal(made, H._hash_ids("D-", key, w.index)[0])
    pd.testing.assert_series_equal(H._dwelling_ids(w), made)
