"""Checks of the helpers added for speed (perf-roles): each must give exactly what the
plainer code it replaced gives."""

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import households as H


def plain_ids(prefix, keys):
    """The ids as the plain code made them: one hexdigest per key."""
    return [None if k is None else prefix + hashlib.sha1(k.encode("utf-8")).hexdigest()[:12]
            for k in keys]


def check_hash_ids(prefix, keys):
    ids, codes = H._hash_ids(prefix, pa.array(keys, pa.string()))
    expected = plain_ids(prefix, keys)
    assert [None if pd.isna(x) else x for x in ids] == expected
    assert str(ids.dtype) == "str"
    valid = [k is not None for k in keys]
    # Codes number the distinct ids in order of first appearance; -1 for a missing key.
    want = np.full(len(keys), -1, dtype=np.int64)
    if any(valid):
        want[valid] = pd.factorize(np.array([e for e in expected if e is not None], dtype=object))[0]
    assert codes.tolist() == want.tolist()


texts = st.lists(st.sampled_from(["", "dwelling|WS2 8QT|12", "person|P1", "person|P2", "é|ü", "a\x00b",
                                  "system|household id 7"]) | st.text(max_size=12), max_size=30)


@settings(max_examples=60, deadline=None)
@given(texts)
def test_hash_ids_match_plain_hexdigests(keys):
    check_hash_ids("H-", keys)


def test_hash_ids_empty_missing_and_series():
    check_hash_ids("D-", [])
    check_hash_ids("H-", ["a", None, "b", "a", None])
    ids, codes = H._hash_ids("H-", pd.Series(["x", "y", "x"], index=[5, 6, 7], dtype="str"))
    assert ids.index.tolist() == [5, 6, 7] and codes.tolist() == [0, 1, 0]
    assert ids.tolist() == plain_ids("H-", ["x", "y", "x"])


def test_hash_ids_codes_survive_sha1_prefix_collisions(monkeypatch):
    # Make distinct keys collide on their ids: keep only the digest's first byte (and
    # zero the rest) so many keys share an id; codes must then follow the ids, not keys.
    real = H._sha1_heads

    def coarse(texts):
        heads = real(texts).copy()
        heads[:, 0] &= 3
        heads[:, 1:] = 0
        return heads

    monkeypatch.setattr(H, "_sha1_heads", coarse)
    keys = [f"k{i}" for i in range(40)] + ["k3", "k0"]
    ids, codes = H._hash_ids("H-", pa.array(keys))
    assert ids.nunique() <= 4
    assert codes.tolist() == pd.factorize(ids.to_numpy(dtype=object))[0].tolist()


def test_fixed_width_bytes_round_trip():
    rows = np.frombuffer(b"H-0123456789abD-ba9876543210", dtype=np.uint8).reshape(2, 14)
    text = H._fixed_width_text(rows)
    assert text.to_pylist() == ["H-0123456789ab", "D-ba9876543210"]
    assert (H._fixed_width_bytes(text.slice(1), 14) == rows[1:]).all()
    assert H._fixed_width_bytes(pa.array(["ab", "c"]), 2) is None
    assert H._fixed_width_bytes(pa.array(["ab", None]), 2) is None


def assert_roles_equal(got, want):
    """The roles and relationship notes of ``_roles`` equal those of ``reference_roles``."""
    pd.testing.assert_series_equal(got["role"], want["role"])
    pd.testing.assert_series_equal(got["relationship_notes"], want["relationship_notes"])


def reference_roles(w, rel):
    """_roles as it was before perf-roles (object-array notes, self-merge of members)."""
    import pyarrow.compute as pc
    w = w.copy(deep=False)
    n = len(w)
    pid = w["patient_id"].to_numpy(dtype=object)
    hh = w["hh"].to_numpy()
    child = w["is_child"].to_numpy()
    notes = []
    parent_adults = np.array([], dtype=np.int64)
    recorded_codes = np.array([], dtype=np.int64)
    if len(rel):
        a, b = H._rel_rows(rel)
        ok = (rel["a"].to_numpy() >= 0) & (rel["b"].to_numpy() >= 0)
        words = rel["relationship"].to_numpy(dtype=object)[ok]
        same = hh[a] == hh[b]
        where = np.where(same, " (recorded)", " (recorded; not in this household)").astype(object)
        sym = pd.Series(words).isin(H.SYMMETRIC_WORDS).to_numpy()
        recorded_notes = pd.DataFrame({
            "row": np.r_[b, a], "other": np.r_[a, b],
            "text": np.r_[words + " of " + pid[a] + where,
                          np.where(sym, words + " of ", words + " is ") + pid[b] + where],
        }).drop_duplicates()
        notes.append((recorded_notes["row"].to_numpy(), 0, recorded_notes["other"].to_numpy(),
                      pa.array(recorded_notes["text"].to_numpy(dtype=object), pa.string())))
        is_parent = pd.Series(words).isin(H.PARENT_WORDS).to_numpy()
        is_child_word = pd.Series(words).isin(H.CHILD_WORDS).to_numpy()
        adult = np.r_[b[is_parent], a[is_child_word]]
        kid = np.r_[a[is_parent], b[is_child_word]]
        keep = (hh[adult] == hh[kid]) & child[kid] & ~child[adult]
        parent_adults = np.unique(adult[keep])
        recorded_codes = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    role = np.where(child, "child", "adult").astype(object)
    role[parent_adults] = "parent"
    ordinary = (~w["communal"].to_numpy() & (w["dwelling_kind"] != "shared_house").to_numpy()
                & (w["household_size"] > 1).to_numpy())
    has_child = np.zeros(int(hh.max()) + 1 if n else 0, dtype=bool)
    has_child[hh[ordinary & child]] = True
    members = pd.DataFrame({"row": np.arange(n), "hh": hh})[ordinary & has_child[hh]]
    if len(members):
        pairs = members.merge(members, on="hh", suffixes=("_a", "_b"))
        pairs = pairs[(pairs["row_a"] != pairs["row_b"]).to_numpy()]
        ra = pairs["row_a"].to_numpy()
        rb = pairs["row_b"].to_numpy()
        recorded = np.isin(np.minimum(ra, rb).astype(np.int64) * n + np.maximum(ra, rb), recorded_codes)
        dob = w["date_of_birth"]
        year = dob.dt.year.to_numpy(dtype=float)
        md = (dob.dt.month * 100 + dob.dt.day).to_numpy(dtype=float)
        gap = year[rb] - year[ra] - (md[rb] < md[ra])
        probable = (~child[ra]) & child[rb] & (gap >= H.PARENT_AGE_GAP) & ~recorded
        pa_, pb_ = ra[probable], rb[probable]
        pid_pa = pa.array(pid, pa.string())
        years = H._int_text(gap[probable])
        notes.append((pa_, 1, pb_, H._cat("probable parent of ", pc.take(pid_pa, pa.array(pb_)), " (",
                                          years, " years older)")))
        notes.append((pb_, 1, pa_, H._cat("probable child of ", pc.take(pid_pa, pa.array(pa_)), " (",
                                          years, " years younger)")))
        upgrade = pa_[role[pa_] == "adult"]
        role[upgrade] = "probable_parent"
        sib = child[ra] & child[rb] & ~recorded
        notes.append((ra[sib], 2, rb[sib], H._cat("probable sibling of ", pc.take(pid_pa, pa.array(rb[sib])))))
    role[w["communal"].to_numpy() & ~child & (role != "parent")] = "resident"
    missing_dob = np.flatnonzero(w["age"].isna().to_numpy())
    if len(missing_dob):
        notes.append((missing_dob, -1, missing_dob,
                      pa.array(np.full(len(missing_dob), "date of birth missing: role not inferred",
                                       dtype=object), pa.string())))
    w["role"] = pd.Series(role, index=w.index, dtype="str")
    text = pc.fill_null(pa.nulls(n, pa.string()), "")
    if notes:
        row = np.concatenate([x[0] for x in notes]).astype(np.int64)
        order = np.concatenate([np.full(len(x[0]), x[1]) for x in notes])
        other = np.concatenate([x[2] for x in notes]).astype(np.int64)
        texts = pa.concat_arrays([x[3] for x in notes])
        by = np.argsort((row * 4 + (order + 1)) * max(n, 1) + other, kind="stable")
        text = H._group_join(row[by], pc.take(texts, pa.array(by)), n, "; ")
    w["relationship_notes"] = pd.Series(text, index=w.index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return w


WORDS = ["mother", "father", "parent", "son", "child", "sibling", "partner", "grandmother", "aunt",
         "friend", "brother"]


def roles_frames(seed, n, m):
    rng = np.random.default_rng(seed)
    hh = rng.integers(0, max(n // 3, 1), n)
    years = rng.integers(1930, 2024, n)
    dob = pd.to_datetime(pd.DataFrame({"year": years, "month": rng.integers(1, 13, n),
                                       "day": rng.integers(1, 29, n)}))
    dob[rng.random(n) < 0.05] = pd.NaT
    age = (2026 - dob.dt.year).astype(float)
    w = pd.DataFrame({
        "patient_id": pd.Series([f"P{i:03d}" for i in range(n)], dtype="str"),
        "hh": hh, "date_of_birth": dob, "age": age, "is_child": (age < 18).to_numpy(),
        "communal": rng.random(n) < 0.1,
        "dwelling_kind": pd.Series(rng.choice(["house", "flat", "shared_house"], n, p=[.6, .3, .1]), dtype="str"),
        "household_size": np.bincount(hh, minlength=1)[hh],
    })
    a = rng.integers(-1, n, m)
    b = rng.integers(-1, n, m)
    # half the relationships inside one household
    order = np.argsort(hh, kind="stable")
    inside = np.flatnonzero(hh[order][1:] == hh[order][:-1])
    if len(inside) and m:
        pick = rng.choice(inside, m // 2)
        a[:m // 2], b[:m // 2] = order[pick], order[pick + 1]
    words = rng.choice(WORDS, m)
    # some pairs recorded both ways, some twice
    k = m // 3
    a2, b2 = np.r_[a, b[:k], a[:k]], np.r_[b, a[:k], b[:k]]
    words = np.r_[words, rng.choice(WORDS, k), words[:k]]
    keep = a2 != b2
    rel = pd.DataFrame({"patient_id": "x", "related_patient_id": "y",
                        "relationship": pd.Series(words[keep], dtype="str"), "a": a2[keep], "b": b2[keep]})
    return w, rel


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 40), st.integers(0, 60))
def test_roles_match_reference(seed, n, m):
    w, rel = roles_frames(seed, n, m if n else 0)
    got = H._roles(w, rel)
    want = reference_roles(w, rel)
    assert_roles_equal(got, want)


def test_roles_match_reference_larger():
    for seed in range(5):
        w, rel = roles_frames(seed, 3000, 4000)
        got, want = H._roles(w, rel), reference_roles(w, rel)
        assert_roles_equal(got, want)


def test_ordered_pairs_lists_every_pair_of_a_group():
    groups = np.array([5, 2, 5, 5, 2, 9])
    x, y, first, local, member = H._ordered_pairs(groups, np.array([0, 1, 2, 3, 4]))
    pairs = sorted(zip(x.tolist(), y.tolist()))
    assert pairs == sorted((i, j) for i in range(5) for j in range(5) if groups[i] == groups[j])
    for i, mi in enumerate(member):
        for j, mj in enumerate(member):
            if groups[mi] == groups[mj]:
                assert (x[first[i] + local[j]], y[first[i] + local[j]]) == (mi, mj)


def plain_group_join(groups, texts, n, sep):
    out = [[] for _ in range(n)]
    for g, t in sorted(zip(groups, texts), key=lambda x: x[0]):  # stable: given order kept
        out[g].append(t)
    return [sep.join(x) for x in out]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["", "a", "bc", "é d"])), max_size=30),
       st.sampled_from(["; ", ", ", ""]))
def test_group_join_matches_plain_join(items, sep):
    n = 7
    groups = np.array([g for g, _ in items], dtype=np.int64)
    texts = [t for _, t in items]
    got = H._group_join(groups, pa.array(texts, pa.string()), n, sep)
    assert got.to_pylist() == plain_group_join(groups.tolist(), texts, n, sep)
    sliced = pa.array(["zz"] + texts, pa.string()).slice(1)  # an offset array
    assert H._group_join(groups, sliced, n, sep).to_pylist() == plain_group_join(groups.tolist(), texts, n, sep)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["x", "", "long text é", None]), st.booleans(),
                          st.sampled_from(["new", "", None])), max_size=30))
def test_replace_rows_matches_replace_with_mask(rows):
    base = pa.array(["pad"] + [r[0] for r in rows], pa.string()).slice(1)
    mask = np.array([r[1] for r in rows], dtype=bool)
    values = pa.array(["pad"] + [r[2] for r in rows if r[1]], pa.string()).slice(1)
    if not mask.any():
        assert H._replace_rows(base, mask, values).equals(base)
        return
    want = pa.compute.replace_with_mask(base, pa.array(mask), values)
    assert H._replace_rows(base, mask, values).to_pylist() == want.to_pylist()
    scattered = H._scatter(len(rows), mask, values).to_pylist()
    it = iter(values.to_pylist())
    assert scattered == [next(it) if m else None for m in mask]


def test_null_where_keeps_text_and_existing_nulls():
    arr = pa.array(["pad", "a", None, "c", ""]).slice(1)
    got = H._null_where(arr, np.array([True, True, False, True]))
    assert got.to_pylist() == ["a", None, None, ""]
    assert H._join_skip("x", got, "!").to_pylist() == ["xa!", "x!", "x!", "x!"]


ids_text = st.text(alphabet=st.sampled_from(["P", "1", "0", "é", "a", " ", "Z"]), min_size=0, max_size=9)


@settings(max_examples=80, deadline=None)
@given(st.lists(ids_text, unique=True, max_size=25), st.lists(ids_text, max_size=25), st.data())
def test_locate_matches_get_indexer(ids, others, data):
    ids = sorted(ids, key=lambda x: x.encode("utf-8"))
    pool = ids + others
    ends = [data.draw(st.sampled_from(pool)) if pool else "x" for _ in range(len(others) + 3)]
    w = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str")})
    rel = pd.DataFrame({"patient_id": pd.Series(ends, dtype="str"),
                        "related_patient_id": pd.Series(ends[::-1], dtype="str")})
    got = H._locate(w, rel)
    index = pd.Index(ids, dtype=object)
    assert got["a"].tolist() == index.get_indexer(ends).tolist()
    assert got["b"].tolist() == index.get_indexer(ends[::-1]).tolist()


def test_short_keys_order_as_text():
    texts = ["", "A", "AB", "AB\u00e9", "B", "P0000001", "P0000002", "Z"]
    keys = H._short_keys(pa.chunked_array([pa.array(texts)]))
    assert (np.diff(keys.astype(object)) > 0).all()
    assert H._short_keys(pa.chunked_array([pa.array(["123456789"])])) is None  # longer than 8 bytes
    assert H._short_keys(pa.chunked_array([pa.array(["a\x00"])])) is None
    assert H._short_keys(pa.chunked_array([pa.array(["a", None])])) is None
    assert (H._short_keys(pa.chunked_array([pa.array(["pad", "AB", "C"]).slice(1)]))
            == H._short_keys(pa.chunked_array([pa.array(["AB", "C"])]))).all()


def reference_relationships(relationships):
    """_relationships as it was before perf-roles."""
    import pyarrow.compute as pc
    columns = ["patient_id", "related_patient_id", "relationship"]
    rel = relationships[columns].astype("str").copy()
    rel["relationship"] = rel["relationship"].str.lower().str.replace(r"[-_]", " ", regex=True).str.strip()
    rel = rel[(rel["patient_id"] != rel["related_patient_id"]) & (rel["patient_id"] != "")]
    rel = rel.drop_duplicates()
    table = pa.table({c: H._pa(rel, c) for c in columns})
    order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end") for c in columns])
    return rel.take(np.asarray(order)).reset_index(drop=True)


cell = st.sampled_from(["P1", "P2", "p1", "", None, "é"])
word = st.sampled_from(["Mother", "step-father", " Sibling ", "SON_IN_LAW", "", None, "mother"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(cell, cell, word), min_size=1, max_size=30))
def test_relationships_match_reference(rows):
    frame = pd.DataFrame(rows, columns=["patient_id", "related_patient_id", "relationship"])
    for as_text in (False, True):
        f = frame.astype("str") if as_text else frame.astype(object)
        pd.testing.assert_frame_equal(H._relationships(f), reference_relationships(f))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["P1", "P2", "P10", "é", "", None]), max_size=12))
def test_sorted_by_id_matches_pandas(ids):
    frame = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "k": np.arange(len(ids))},
                         index=np.arange(len(ids))[::-1])
    if frame["patient_id"].is_monotonic_increasing:
        want = frame.reset_index(drop=True)
    else:
        want = frame.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    pd.testing.assert_frame_equal(H._sorted_by_id(frame), want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "", None, np.nan, "é b", 7, 2.5]), max_size=12))
def test_filled_text_matches_object_round_trip(values):
    column = pd.Series(values, dtype=object)
    want = column.astype(object).where(column.notna(), "").astype("str")
    pd.testing.assert_series_equal(H._filled_text(column), want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["x", "", "é"]), st.sampled_from(["y", None])),
                max_size=20))
def test_choose_text_matches_nested_if(rows):
    n = len(rows)
    choice = np.array([r[0] for r in rows], dtype=np.int64)
    first = pa.array([r[1] for r in rows], pa.string())
    second = pa.array([r[2] for r in rows], pa.string())  # missing where choice 1 may look
    choices = [(choice == 0, ["a|", first]), (choice == 1, ["b|", second]), (choice == 2, ["c|", first, "!"])]
    want = H._if(choice == 0, H._cat("a|", first), H._if(choice == 1, H._cat("b|", second),
                                                          H._cat("c|", first, "!")))
    assert H._choose_text(choices).to_pylist() == (want.to_pylist() if n else [])
