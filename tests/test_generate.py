"""The synthetic practice generator: determinism, realism of the export, and truth that
matches the rule definitions.

The strongest test here checks ``expected_flags`` (declared by hand in each scenario)
against ``reference_rules.py``, an independent evaluation of the 8 rules over the true
households and the codes as exported.
"""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link.generate import (
    NOISE_RATES,
    RULE_IDS,
    SCENARIOS,
    SyntheticPractice,
    generate_practice,
    nhs_check_digit,
    write_practice,
)

ROOT = Path(__file__).resolve().parents[1]
CODELISTS = ROOT / "rules" / "codelists"
RESEARCH = ROOT.parent / "shared" / "codelists-research"
AS_OF = date(2026, 11, 1)
PATIENT_COLUMNS = ["patient_id", "nhs_number", "surname", "forenames", "date_of_birth", "sex",
                   "address_line_1", "address_line_2", "address_line_3", "address_line_4",
                   "address_line_5", "postcode"]
DWELLING_KINDS = {"house", "flat", "lettered_house", "named_house", "communal", "shared_house"}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UK = re.compile(r"^\d{2}/\d{2}/\d{4}$")
POSTCODE = re.compile(r"^[A-Z]{1,2}\d{1,2} \d[A-Z]{2}$")


@pytest.fixture(scope="module")
def practice() -> SyntheticPractice:
    return generate_practice(2000, 11, AS_OF)


def read_codelists() -> dict[str, dict[str, str]]:
    lists = {}
    for path in sorted(CODELISTS.glob("*.csv")):
        with open(path, newline="", encoding="utf-8-sig") as f:
            lists[path.stem] = {r["code"].strip(): r["term"].strip() for r in csv.DictReader(f)}
    return lists


def read_research() -> dict[tuple[str, str], set[str]]:
    """(code, system) -> the terms the research gives it."""
    rows: dict[tuple[str, str], set[str]] = {}
    for path in sorted(RESEARCH.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.setdefault((r["code"], r["system"]), set()).add(r["term"])
    return rows


needs_research = pytest.mark.skipif(not RESEARCH.is_dir(), reason="codelist research not present")


def exported_code(code: str, system: str) -> str:
    """The code as the loader normalises it (7-character Read v2 codes cut to 5)."""
    return code[:5] if system == "readv2" and len(code) == 7 else code


def parse_date(text: str) -> date:
    if UK.match(text):
        d, m, y = text.split("/")
        return date(int(y), int(m), int(d))
    return date.fromisoformat(text)


def modulus_11_ok(number: str) -> bool:
    """Written out again here, not imported, so the test cannot share the generator's bug."""
    if not re.fullmatch(r"\d{10}", number):
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(number[:9]))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(number[9])


# --- determinism ---------------------------------------------------------------------------
def test_same_seed_same_practice(practice: SyntheticPractice) -> None:
    again = generate_practice(2000, 11, AS_OF)
    for name, frame in practice.frames().items():
        pd.testing.assert_frame_equal(frame, again.frames()[name], obj=name)
    assert practice.equals(again)


def test_other_seed_other_practice(practice: SyntheticPractice) -> None:
    other = generate_practice(2000, 12, AS_OF)
    assert not practice.patients.equals(other.patients)
    assert not practice.equals(other)


# --- the export looks like an export -------------------------------------------------------
def test_row_counts(practice: SyntheticPractice) -> None:
    p = practice
    assert len(p.patients) == 2000
    assert list(p.patients.columns) == PATIENT_COLUMNS
    assert p.patients["patient_id"].is_unique and p.patients["patient_id"].is_monotonic_increasing
    assert 4.5 <= len(p.events) / len(p.patients) <= 5.5
    assert set(p.events["patient_id"]) <= set(p.patients["patient_id"])
    assert list(p.events.columns) == ["patient_id", "code", "term", "date", "code_system"]
    assert 0 < len(p.relationships) < len(p.patients)
    assert set(p.relationships["patient_id"]) | set(p.relationships["related_patient_id"]) \
        <= set(p.patients["patient_id"])
    assert (p.relationships["patient_id"] != p.relationships["related_patient_id"]).all()
    assert p.truth_households["patient_id"].tolist() == p.patients["patient_id"].tolist()
    sizes = p.truth_households.groupby("true_household_id").size()
    assert 1.9 <= sizes.mean() <= 2.8
    assert sizes.max() <= 12
    assert (p.patients["sex"].isin(["F", "M"])).all()


@pytest.mark.parametrize("n", [1, 7, 60, 199, 401])
def test_exactly_n_patients(n: int) -> None:
    p = generate_practice(n, 3, AS_OF)
    assert len(p.patients) == len(p.truth_households) == n
    assert set(p.expected_flags["patient_id"]) <= set(p.patients["patient_id"])


def test_every_nhs_number_passes_modulus_11(practice: SyntheticPractice) -> None:
    numbers = practice.patients["nhs_number"]
    given_ = numbers[numbers != ""]
    assert given_.map(modulus_11_ok).all()
    assert given_.is_unique
    assert given_.str.startswith("9").all()  # a range never issued to patients
    assert 0.01 < (numbers == "").mean() < 0.06


@given(st.from_regex(r"\d{9}", fullmatch=True))
def test_check_digit_agrees_with_modulus_11(first_nine: str) -> None:
    check = nhs_check_digit(first_nine)
    if check is None:
        assert not any(modulus_11_ok(first_nine + str(d)) for d in range(10))
    else:
        assert modulus_11_ok(first_nine + str(check))


def test_dates_in_both_formats(practice: SyntheticPractice) -> None:
    for values in (practice.patients["date_of_birth"], practice.events["date"]):
        iso, uk = values.str.match(ISO), values.str.match(UK)
        assert (iso | uk).all()
        assert 0.03 < uk.mean() < 0.2
    dobs = practice.patients["date_of_birth"].map(parse_date)
    assert (dobs <= AS_OF).all()
    later = practice.events["date"].map(parse_date) > AS_OF
    assert 0 < later.sum() < 0.01 * len(later)  # a few events after A, for the loader to set aside


def test_postcodes_look_real_with_some_mess(practice: SyntheticPractice) -> None:
    pc = practice.patients["postcode"]
    blank = pc == ""
    assert 0.005 < blank.mean() < 0.05
    tidy = pc[~blank].str.upper().str.replace(r"^(\S+?)\s*(\d[A-Z]{2})$", r"\1 \2", regex=True)
    assert tidy.str.match(POSTCODE).all()
    assert (pc[~blank] != pc[~blank].str.upper()).any()  # some lower case
    assert (~pc[~blank].str.contains(" ")).any()  # some without the space


def test_addresses_vary_within_a_dwelling(practice: SyntheticPractice) -> None:
    m = practice.patients.merge(practice.truth_households, on="patient_id")
    text = m[[f"address_line_{i}" for i in range(1, 6)]].agg("|".join, axis=1)
    variants = text.groupby(m["true_dwelling_id"]).nunique()
    people = m.groupby("true_dwelling_id").size()
    assert (variants[people >= 3] > 1).mean() > 0.3
    assert (m["address_line_1"] != "").all()
    joined = text.str.cat(sep="\n")
    for sample in (" Rd", "Flat ", "Apartment ", "Apt ", "/", "Care Home"):
        assert sample in joined, sample


def test_every_dwelling_kind_present(practice: SyntheticPractice) -> None:
    truth = practice.truth_households
    assert set(truth["dwelling_kind"]) == DWELLING_KINDS
    flats = truth["dwelling_kind"] == "flat"
    assert not truth.loc[~flats, "missing_flat"].any()
    assert truth["missing_flat"].dtype == bool
    # care home residents share a dwelling but are households of their own
    communal = truth[truth["dwelling_kind"] == "communal"]
    assert communal["true_household_id"].is_unique
    assert communal.groupby("true_dwelling_id").size().min() >= 12


def test_household_ids_on_request() -> None:
    p = generate_practice(300, 5, AS_OF, include_household_ids=True)
    assert list(p.patients.columns) == PATIENT_COLUMNS + ["household_id"]
    assert p.patients["household_id"].tolist() == p.truth_households["true_household_id"].tolist()


# --- codes: never invented, background never touches a codelist ---------------------------
def test_event_codes_are_in_codelists_or_background(practice: SyntheticPractice) -> None:
    from family_link.generate import _NOISE_CANDIDATES

    listed = set().union(*(set(codes) for codes in read_codelists().values()))
    background = {code for code, _, _ in _NOISE_CANDIDATES}
    codes = {exported_code(c, s) for c, s in zip(practice.events["code"], practice.events["code_system"])}
    assert codes <= listed | background


@needs_research
def test_every_code_and_term_comes_from_the_research(practice: SyntheticPractice) -> None:
    research = read_research()
    by_code: dict[str, set[str]] = {}
    for (code, _), terms in research.items():
        by_code.setdefault(code, set()).update(terms)
    listed_terms = {(code, term) for codes in read_codelists().values() for code, term in codes.items()}
    pairs = set(zip(practice.events["code"], practice.events["term"], practice.events["code_system"]))
    for code, term, system in pairs:
        code = exported_code(code, system)
        assert code in by_code, code
        assert term in by_code[code] or (code, term) in listed_terms, (code, term)


def test_background_codes_are_in_no_codelist(practice: SyntheticPractice) -> None:
    lists = read_codelists()
    listed = set().union(*(set(codes) for codes in lists.values()))
    events = practice.events.assign(code=[exported_code(c, s) for c, s in
                                          zip(practice.events["code"], practice.events["code_system"])])
    hh = practice.truth_households.set_index("patient_id")["true_household_id"]
    scenario_households = set(practice.scenarios["true_household_id"])
    in_scenario = events["patient_id"].map(hh).isin(scenario_households)
    assert not events.loc[~in_scenario, "code"].isin(listed).any()
    care = events["code"].isin(["700410005", "413457006"])  # care processes, not abuse
    assert care.any() and not events.loc[care, "code"].isin(listed).any()


def test_code_system_blank_sometimes_and_read_codes_both_lengths(practice: SyntheticPractice) -> None:
    ev = practice.events
    assert set(ev["code_system"]) <= {"snomedct", "readv2", "ctv3", ""}
    blank = ev["code_system"] == ""
    assert 0 < blank.mean() < 0.1
    assert ev.loc[blank, "code"].str.fullmatch(r"\d{6,18}").all()  # only SNOMED is left blank
    read = ev.loc[ev["code_system"] == "readv2", "code"]
    assert (read.str.len() == 5).any() and (read.str.len() == 7).any()
    assert (ev["code_system"] == "ctv3").any()


# --- the truth ----------------------------------------------------------------------------
def test_catalogue_exercises_every_rule() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))
    for s in SCENARIOS:
        assert set(s.flags) <= set(s.rules) <= set(RULE_IDS), s.id
    for rule in RULE_IDS:
        assert any(rule in s.flags for s in SCENARIOS), f"no scenario flags {rule}"
        assert any(rule in s.rules and rule not in s.flags for s in SCENARIOS), \
            f"no scenario where {rule} is checked but must not flag"
        assert any(s.core and rule in s.flags for s in SCENARIOS), f"no core scenario flags {rule}"


def test_every_rule_and_scenario_in_2000_patients(practice: SyntheticPractice) -> None:
    assert set(practice.expected_flags["rule_id"]) == set(RULE_IDS)
    assert set(practice.scenarios["scenario_id"]) == {s.id for s in SCENARIOS}
    flags = practice.expected_flags
    assert not flags.duplicated().any()
    assert flags.equals(flags.sort_values(["patient_id", "rule_id"]).reset_index(drop=True))


@pytest.mark.parametrize("n", [200, 400])
def test_small_practices_still_flag_every_rule(n: int) -> None:
    p = generate_practice(n, 2026, AS_OF)
    assert set(p.expected_flags["rule_id"]) == set(RULE_IDS)


@pytest.mark.parametrize(("n", "seed", "as_of"), [
    (2000, 11, AS_OF),
    (1500, 4, date(2028, 2, 29)),  # a leap day: "18 today" is 28 February 18 years before
    (1500, 5, date(2025, 3, 1)),
])
def test_expected_flags_match_the_reference(n: int, seed: int, as_of: date,
                                            practice: SyntheticPractice) -> None:
    from reference_rules import Person, reference_flags

    p = practice if (n, seed, as_of) == (2000, 11, AS_OF) else generate_practice(n, seed, as_of)
    household = dict(zip(p.truth_households["patient_id"], p.truth_households["true_household_id"]))
    people = {pid: Person(pid, parse_date(dob), sex, household[pid]) for pid, dob, sex in
              zip(p.patients["patient_id"], p.patients["date_of_birth"], p.patients["sex"])}
    for pid, code, when, system in zip(p.events["patient_id"], p.events["code"], p.events["date"],
                                       p.events["code_system"]):
        day = parse_date(when)
        if day <= as_of:
            people[pid].codes.append((day, exported_code(code, system)))
    expected = set(zip(p.expected_flags["patient_id"], p.expected_flags["rule_id"]))
    assert reference_flags(people.values(), as_of) == expected


# --- writing --------------------------------------------------------------------------------
def test_write_practice_round_trip(tmp_path: Path) -> None:
    p = generate_practice(300, 8, AS_OF)
    write_practice(p, tmp_path / "practice")
    out = tmp_path / "practice"
    files = {"patients.csv": p.patients, "events.csv": p.events,
             "relationships.csv": p.relationships, "truth/households.csv": p.truth_households,
             "truth/expected_flags.csv": p.expected_flags, "truth/scenarios.csv": p.scenarios}
    for name, frame in files.items():
        raw = (out / name).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        back = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        expected = frame.astype({c: str for c in frame.columns if frame[c].dtype == bool})
        expected = expected.replace({"True": "true", "False": "false"}) \
            if "missing_flat" in frame.columns else expected
        assert list(back.columns) == list(frame.columns), name
        assert back.astype(str).values.tolist() == expected.astype(str).values.tolist(), name


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 120), seed=st.integers(0, 2**32 - 1))
def test_any_small_practice_is_well_formed(n: int, seed: int) -> None:
    p = generate_practice(n, seed, AS_OF)
    assert len(p.patients) == n
    assert p.patients["patient_id"].is_unique
    numbers = p.patients["nhs_number"]
    assert numbers[numbers != ""].map(modulus_11_ok).all()
    assert set(p.truth_households["dwelling_kind"]) <= DWELLING_KINDS
    assert set(p.expected_flags["rule_id"]) <= set(RULE_IDS)


def test_noise_rates_are_documented() -> None:
    import family_link.generate as g

    assert all(0 <= v <= 1 for v in NOISE_RATES.values())
    for phrase in ("flat number missing", "postcode missing", "NHS number blank", "street type"):
        assert phrase in (g.__doc__ or "")


def test_sample_data_is_what_the_generator_makes(tmp_path: Path) -> None:
    """sample_data/practice must not drift from the generator (or the codelists)."""
    sample = ROOT / "sample_data" / "practice"
    assert sample.is_dir(), "sample_data/practice is missing"
    write_practice(generate_practice(400, 2026, date(2026, 11, 1)), tmp_path)
    for path in sorted(tmp_path.rglob("*.csv")):
        name = path.relative_to(tmp_path)
        assert (sample / name).read_bytes() == path.read_bytes(), (
            f"sample_data/practice/{name} is out of date; regenerate it with: family-link "
            "generate sample_data/practice --patients 400 --seed 2026 --as-of 2026-11-01")


def test_made_up_districts_share_out_the_real_towns() -> None:
    """Beyond the 30 real districts (ICB-scale practices), made-up districts take the real
    towns in turn: one town for all of them overflowed its street names at 3M patients."""
    from family_link.generate import _DISTRICTS, _districts

    districts = _districts(len(_DISTRICTS) + 25)
    assert districts[:len(_DISTRICTS)] == list(_DISTRICTS)
    made_up = districts[len(_DISTRICTS):]
    assert [d for d, _, _ in made_up] == [f"WS{n}" for n in range(16, 41)]
    real_towns = {(t, c) for _, t, c in _DISTRICTS}
    assert {(t, c) for _, t, c in made_up} <= real_towns
    assert len({t for _, t, _ in made_up}) > 10  # not all one town


def test_a_town_with_more_streets_than_names_repeats_them_across_districts(monkeypatch) -> None:
    """With only 39 street names per town (3 bases x 13 types, patched), a practice of a few
    thousand homes has more streets in Walsall (its first two districts) than names: the layout no longer raises
    "too many streets for one town"; names repeat across a town's districts, never within
    one district."""
    import numpy as np

    from family_link import generate

    monkeypatch.setattr(generate, "_STREET_BASES", ("Mill", "Church", "Station"))
    n = 3500
    d_kind = np.full(n, generate._D_HOUSE, dtype=np.int64)
    where = generate._lay_out(np.random.default_rng(7), d_kind, np.zeros(n, dtype=np.int64))
    street_of_dwelling = where.p_street[where.d_plot]
    district = np.array([pc.split(" ")[0] for pc in where.d_postcode], dtype=object)
    streets = pd.DataFrame({"street": street_of_dwelling, "district": district}).drop_duplicates()
    streets["name"] = (where.s_base[streets["street"]] * 100 + where.s_type[streets["street"]])
    streets["town"] = where.s_town[streets["street"]]
    assert streets["street"].is_unique  # a street lies in one district
    assert (streets.groupby("town")["street"].nunique() > 39).any()  # the case the patch makes
    assert not streets.duplicated(["district", "name"]).any()
    assert streets.duplicated(["town", "name"]).any()
