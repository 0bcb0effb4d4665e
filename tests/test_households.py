"""Household linkage: one small table per situation (the spec), plus order invariance."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from family_link.households import (
    HOUSEHOLD_COLUMNS,
    household_conflicts,
    link_households,
    summarise_households,
)

AS_OF = date(2025, 4, 1)
NO_RELATIONSHIPS = pd.DataFrame(columns=["patient_id", "related_patient_id", "relationship"])


def patients(*rows: dict) -> pd.DataFrame:
    """Rows need patient_id, dob and line1; everything else has a default."""
    out = []
    for r in rows:
        lines = r.get("lines", [r.get("line1", "")])
        lines = (list(lines) + [""] * 5)[:5]
        out.append({
            "patient_id": r["patient_id"], "nhs_number": "", "surname": r.get("surname", "SMITH"),
            "forenames": "", "date_of_birth": pd.Timestamp(r.get("dob", "1980-01-01")),
            "sex": r.get("sex", "U"),
            **{f"address_line_{i + 1}": v for i, v in enumerate(lines)},
            "postcode": r.get("postcode", "WS2 8QT"), "household_id": r.get("household_id", ""),
            "uprn": r.get("uprn", ""),
        })
    frame = pd.DataFrame(out)
    frame["date_of_birth"] = frame["date_of_birth"].astype("datetime64[ns]")
    return frame


def relationships(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["patient_id", "related_patient_id", "relationship"])


def link(frame: pd.DataFrame, rels: pd.DataFrame = NO_RELATIONSHIPS, as_of: date = AS_OF) -> pd.DataFrame:
    return link_households(frame, rels, as_of).set_index("patient_id", drop=False)


def together(h: pd.DataFrame, *ids: str) -> bool:
    return h.loc[list(ids), "household_id"].nunique() == 1


def apart(h: pd.DataFrame, *ids: str) -> bool:
    return h.loc[list(ids), "household_id"].nunique() == len(ids)


# --- the output frame ------------------------------------------------------------------

def test_output_columns_types_and_order() -> None:
    h = link_households(patients(
        {"patient_id": "P2", "line1": "12 Mill Road"},
        {"patient_id": "P1", "line1": "12 mill rd"},
    ), NO_RELATIONSHIPS, AS_OF)
    assert list(h.columns) == HOUSEHOLD_COLUMNS
    assert h["patient_id"].tolist() == ["P1", "P2"]
    assert h["ambiguous"].dtype == bool and h["communal"].dtype == bool
    assert h["household_size"].dtype == "int64"
    assert h["household_id"].str.match(r"^H-[0-9a-f]{12}$").all()
    assert h["dwelling_id"].str.match(r"^D-[0-9a-f]{12}$").all()
    assert h["household_size"].tolist() == [2, 2]
    assert h["address_key"].tolist() == ["|12||MILL ROAD|WS2 8QT"] * 2


def test_relationships_may_be_missing_and_optional_columns_absent() -> None:
    frame = patients({"patient_id": "P1", "line1": "12 Mill Road"}).drop(columns=["uprn", "household_id"])
    h = link_households(frame, None, AS_OF)
    assert h.loc[0, "link_evidence"] == "no other patient at this address"
    assert h.loc[0, "dwelling_kind"] == "house"


# --- linking by address ----------------------------------------------------------------

def test_same_home_written_differently_is_linked_with_evidence() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P2", "lines": ["12", "Mill Rd.", "WALSALL"], "postcode": "ws28qt"},
        {"patient_id": "P3", "lines": ["12 Mill Raod"], "postcode": "WS2 8QT"},
    ))
    assert together(h, "P1", "P2", "P3")
    assert (h["dwelling_kind"] == "house").all()
    assert h.loc["P1", "link_evidence"] == "same postcode WS2 8QT, same number 12, same street MILL ROAD"
    assert h.loc["P3", "link_evidence"] == (
        "same postcode WS2 8QT, same number 12, street similarity 88 ('MILL ROAD' ~ 'MILL RAOD')")


def test_different_street_at_the_same_postcode_and_number_is_not_linked() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "12 Mill Road"},
        {"patient_id": "P2", "line1": "12 Mill Lane"},
    ))
    assert apart(h, "P1", "P2")


def test_flats_in_one_building_are_not_merged() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "Flat 1, 14 Mill Road", "surname": "JONES"},
        {"patient_id": "P2", "lines": ["Apartment 1", "14 Mill Rd"], "surname": "JONES"},
        {"patient_id": "P3", "line1": "Flat 2, 14 Mill Road", "surname": "BROWN"},
        {"patient_id": "P4", "line1": "2/14 Mill Road", "surname": "BROWN"},
        {"patient_id": "P5", "line1": "Flat 3, 14 Mill Road"},
    ))
    assert together(h, "P1", "P2") and together(h, "P3", "P4")
    assert apart(h, "P1", "P3", "P5")
    assert h.loc[["P1", "P3", "P5"], "dwelling_id"].nunique() == 3
    assert (h["dwelling_kind"] == "flat").all()
    assert "same flat 1" in h.loc["P1", "link_evidence"]


def test_12a_and_12b_are_different_homes() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "12A Mill Road"},
        {"patient_id": "P2", "line1": "12 a Mill Road"},
        {"patient_id": "P3", "line1": "12B Mill Road"},
        {"patient_id": "P4", "line1": "12 Mill Road"},
    ))
    assert together(h, "P1", "P2")
    assert apart(h, "P1", "P3", "P4")
    assert h.loc["P1", "dwelling_kind"] == "lettered_house"
    assert h.loc["P4", "dwelling_kind"] == "house"


def test_named_house_and_named_building() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["Rose Cottage", "Mill Lane"], "postcode": "WS3 1AA"},
        {"patient_id": "P2", "lines": ["ROSE COTTAGE, MILL LN"], "postcode": "WS3 1AA"},
        {"patient_id": "P3", "lines": ["Flat 3 Oak Court", "Mill Road"]},
        {"patient_id": "P4", "lines": ["3 Oak Court", "Mill Road"]},
    ))
    assert together(h, "P1", "P2") and together(h, "P3", "P4")
    assert h.loc["P1", "dwelling_kind"] == "named_house"
    assert h.loc["P3", "dwelling_kind"] == "flat"


# --- missing flat numbers ----------------------------------------------------------------

def test_house_name_run_into_the_street_is_split_by_its_neighbours() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["The Limes", "Goscote Crescent"]},
        {"patient_id": "P2", "lines": ["The Limes Goscote Crescent"]},
        {"patient_id": "P3", "lines": ["Beech House Goscote Crescent"]},
        {"patient_id": "P4", "lines": ["Beech House", "Goscote Crescent"]},
    ))
    assert together(h, "P1", "P2") and together(h, "P3", "P4") and apart(h, "P1", "P3")


def test_a_range_of_flats_is_the_dwelling_of_its_first_flat() -> None:
    # "Flat 5-6" (flats knocked together, or a slip) lives with "Flat 5": splitting them
    # could hide a parent from a child.
    h = link(patients(
        {"patient_id": "P1", "lines": ["Flat 5-6, Mill House", "12 Mill Road"], "surname": "JONES"},
        {"patient_id": "P2", "lines": ["Flat 5, Mill House", "12 Mill Road"], "surname": "JONES"},
        {"patient_id": "P3", "lines": ["Flat 05 - 06", "Mill House, 12 Mill Road"], "surname": "JONES"},
        {"patient_id": "P4", "lines": ["Flat 6, Mill House", "12 Mill Road"], "surname": "BROWN"},
        {"patient_id": "P5", "lines": ["5-6 Mill House", "12 Mill Road"], "surname": "JONES"},
        {"patient_id": "P9", "lines": ["Flat 5-6 Mill House, 12 Mill Road"], "surname": "JONES"},
        {"patient_id": "P10", "lines": ["Flat 5A-6, Mill House", "12 Mill Road"], "surname": "SINGH"},
        {"patient_id": "P11", "lines": ["Flat 5A, Mill House", "12 Mill Road"], "surname": "SINGH"},
        # Descending pairs are no range: different flats ("floor 10, flats 2 and 5", say).
        {"patient_id": "P6", "lines": ["Flat 10-2, Mill House", "12 Mill Road"], "surname": "KHAN"},
        {"patient_id": "P7", "lines": ["Flat 10-5, Mill House", "12 Mill Road"], "surname": "PATEL"},
        {"patient_id": "P8", "lines": ["Flat 10, Mill House", "12 Mill Road"], "surname": "LEE"},
    ))
    assert together(h, "P1", "P2", "P3", "P5", "P9")
    assert apart(h, "P1", "P4", "P6", "P7", "P8", "P10")
    assert together(h, "P10", "P11")  # lettered flats too: "5A-6" is the dwelling of "5A"
    assert "same flat 5" in h.loc["P1", "link_evidence"]


def test_a_range_of_flats_before_a_building_and_its_street_is_the_first_flat() -> None:
    # "Flat 5-6 Mill House, Mill Road" with no house number: flats 5-6 of Mill House, the
    # dwelling of "Flat 5, Mill House, Mill Road" (was flat 5 of number 6 on a street
    # "MILL HOUSE", apart from the rest of the family).
    h = link(patients(
        {"patient_id": "P1", "lines": ["Flat 5-6 Mill House, Mill Road"], "surname": "JONES"},
        {"patient_id": "P2", "lines": ["Flat 5, Mill House", "Mill Road"], "surname": "JONES"},
        {"patient_id": "P3", "lines": ["Flat 6, Mill House", "Mill Road"], "surname": "BROWN"},
    ))
    assert together(h, "P1", "P2")
    assert apart(h, "P1", "P3")


def test_missing_flat_at_a_building_with_several_flats_is_ambiguous() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "Flat 1, 14 Mill Road"},
        {"patient_id": "P2", "line1": "Flat 2, 14 Mill Road"},
        {"patient_id": "P3", "line1": "Flat 3, 14 Mill Road"},
        {"patient_id": "P4", "line1": "14 Mill Road"},
        {"patient_id": "P5", "line1": "14 Mill Road"},
    ))
    assert apart(h, "P1", "P2", "P3", "P4", "P5")  # P4 and P5 do not chain the building
    for p in ("P4", "P5"):
        assert h.loc[p, "ambiguous"]
        assert h.loc[p, "dwelling_kind"] == "ambiguous"
        assert h.loc[p, "household_size"] == 1
        assert h.loc[p, "link_evidence"] == (
            "flat number missing at a building with 3 flats (14 MILL ROAD, WS2 8QT): "
            "not linked, resolve by hand")
    assert not h.loc["P1", "ambiguous"]


def test_missing_flat_at_a_building_with_one_known_flat_is_also_left_alone() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "Flat 1, 14 Mill Road", "dob": "1990-01-01"},
        {"patient_id": "P2", "line1": "14 Mill Road", "dob": "2015-01-01"},
    ))
    assert apart(h, "P1", "P2")
    assert h.loc["P2", "ambiguous"]
    assert "one known flat (1)" in h.loc["P2", "link_evidence"]


def test_missing_flat_at_a_named_building() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["Flat 1 Oak Court", "Mill Road"]},
        {"patient_id": "P2", "lines": ["Flat 2 Oak Court", "Mill Road"]},
        {"patient_id": "P3", "lines": ["Oak Court", "Mill Road"]},
    ))
    assert h.loc["P3", "ambiguous"] and apart(h, "P1", "P2", "P3")


# --- postcodes -------------------------------------------------------------------------

def test_missing_postcode_links_on_street_number_and_town() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P2", "lines": ["12 Mill Rd", "Walsall"], "postcode": ""},
        {"patient_id": "P3", "lines": ["12 Mill Road"], "postcode": ""},  # no town either
    ))
    assert together(h, "P1", "P2")
    assert apart(h, "P1", "P3")
    assert h.loc["P2", "link_evidence"].startswith("no valid postcode: same town WALSALL, same number 12")
    assert h.loc["P3", "dwelling_kind"] == "no_address"
    assert h.loc["P3", "link_evidence"].startswith("no valid postcode and no town: not linked")


def test_missing_postcode_matching_two_towns_is_not_guessed() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P2", "lines": ["12 Mill Road", "Aldridge"], "postcode": "WS9 8AA"},
        {"patient_id": "P3", "lines": ["12 Mill Road", "Aldridge"], "postcode": "n/k"},
    ))
    assert together(h, "P2", "P3") and apart(h, "P1", "P2")


def test_missing_postcode_never_links_a_different_street_type() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["57 Thornhill Lane", "Walsall"], "postcode": "WS1 4GL"},
        {"patient_id": "P2", "lines": ["57 Thornhill Avenue", "Walsall"], "postcode": ""},
        {"patient_id": "P3", "lines": ["33 Chaucer Lane", "Hednesford"], "postcode": "WS12 6BJ"},
        {"patient_id": "P4", "lines": ["33 Chuckery Lane", "Hednesford"], "postcode": ""},
        {"patient_id": "P5", "lines": ["57 Thornhill Ln.", "WALSALL"], "postcode": ""},
    ))
    # Across a whole town, names a few letters apart are different streets.
    assert apart(h, "P1", "P2") and apart(h, "P3", "P4")
    assert together(h, "P1", "P5")  # abbreviations and case are normalised first


def test_street_similarity_scores() -> None:
    from family_link.households import street_similarity

    a = np.array(["MILL ROAD", "THORNHILL LANE", "MILL ROAD", "MILL"], dtype=object)
    b = np.array(["MILL RAOD", "THORNHILL AVENUE", "MILL LANE", "MILL ROAD"], dtype=object)
    scores = street_similarity(a, b)
    assert scores[0] >= 85 and scores[1] == 0 and scores[2] == 0 and scores[3] < 85
    assert street_similarity(b, a).tolist() == scores.tolist()  # symmetric


def test_mistyped_postcode_one_character_away_is_linked() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P2", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P3", "lines": ["12 Mill Road", "Walsall"], "postcode": "WS2 8QU"},
    ))
    assert together(h, "P1", "P2", "P3")
    assert h.loc["P3", "link_evidence"].startswith(
        "postcode WS2 8QU one character from WS2 8QT (same street, number and flat)")


def test_postcode_one_character_away_in_another_district_is_not_linked() -> None:
    h = link(patients(
        {"patient_id": "P1", "lines": ["12 Church Road", "Walsall"], "postcode": "WS2 8QT"},
        {"patient_id": "P2", "lines": ["12 Church Road", "Aldridge"], "postcode": "WS9 8QT"},
    ))
    assert apart(h, "P1", "P2")


def test_no_usable_address() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "", "postcode": ""},
        {"patient_id": "P2", "line1": "", "postcode": ""},
        {"patient_id": "P3", "lines": ["Mill Road", "Walsall"]},
    ))
    assert apart(h, "P1", "P2", "P3")
    assert (h["dwelling_kind"] == "no_address").all()
    assert h.loc["P1", "link_evidence"] == "no usable address (no house number or name): not linked"


# --- communal establishments and shared houses -------------------------------------------

def test_care_home_residents_are_each_their_own_household() -> None:
    rows = [{"patient_id": f"P{i}", "lines": ["Sunnyside Care Home", "4 Station Road"],
             "dob": "1935-01-01", "surname": f"S{i}"} for i in range(1, 4)]
    rows.append({"patient_id": "P9", "lines": ["Room 2", "Sunnyside Care Home", "4 Station Rd"],
                 "dob": "1938-01-01"})
    h = link(patients(*rows))
    assert h["communal"].all()
    assert h["household_id"].nunique() == 4
    assert h["dwelling_id"].nunique() == 1
    assert (h["dwelling_kind"] == "communal").all() and (h["role"] == "resident").all()
    assert (h["household_size"] == 1).all()
    assert h.loc["P1", "link_evidence"] == "care home (4 patients): each resident is their own household"


def test_more_than_ten_patients_at_one_address_is_communal() -> None:
    rows = [{"patient_id": f"P{i:02d}", "line1": "7 Hostel Lane", "dob": "1990-01-01"} for i in range(11)]
    # (a street called Hostel Lane does not make a hostel: the rule here is the count)
    h = link(patients(*rows))
    assert h["communal"].all() and h["household_id"].nunique() == 11
    assert h.loc["P00", "link_evidence"].startswith("more than 10 patients (11) at one address")
    ten = link(patients(*rows[:10]))
    assert not ten["communal"].any() and ten["household_id"].nunique() == 1


def test_mostly_elderly_unrelated_people_at_one_address_is_a_care_home() -> None:
    rows = [{"patient_id": f"P{i}", "line1": "7 Ivy Lane", "dob": "1940-01-01", "surname": f"S{i}"}
            for i in range(4)] + [{"patient_id": "P9", "line1": "7 Ivy Lane", "dob": "1985-01-01"}]
    h = link(patients(*rows))
    assert h["communal"].all()
    assert "4 aged 65+" in h.loc["P0", "link_evidence"]
    couple = link(patients(*rows[:2]))  # an elderly couple is a household
    assert not couple["communal"].any()


def test_family_in_a_refuge_kept_together_by_recorded_relationship() -> None:
    rows = [
        {"patient_id": "P1", "lines": ["Haven Refuge", "1 Safe Street"], "dob": "1990-01-01"},
        {"patient_id": "P2", "lines": ["Haven Refuge", "1 Safe Street"], "dob": "2018-01-01"},
        {"patient_id": "P3", "lines": ["Haven Refuge", "1 Safe Street"], "dob": "1988-01-01", "surname": "X"},
    ]
    h = link(patients(*rows), relationships(("P2", "P1", "mother")))
    assert h["communal"].all()
    assert together(h, "P1", "P2") and apart(h, "P1", "P3")
    assert h.loc["P1", "role"] == "parent" and h.loc["P2", "role"] == "child"
    assert h.loc["P3", "role"] == "resident"
    assert "kept with family by a recorded relationship" in h.loc["P2", "link_evidence"]


def test_shared_house_has_no_parent_roles() -> None:
    rows = [{"patient_id": f"P{i}", "line1": "20 Oak Avenue", "surname": s, "dob": d}
            for i, (s, d) in enumerate([("ALI", "2000-01-01"), ("BROWN", "1975-01-01"),
                                        ("CHEN", "1995-06-01")], start=1)]
    h = link(patients(*rows))
    assert together(h, "P1", "P2", "P3")
    assert (h["dwelling_kind"] == "shared_house").all()
    assert (h["role"] == "adult").all()
    assert "shared house (3 unrelated adults)" in h.loc["P1", "link_evidence"]


def test_adults_sharing_a_surname_are_not_a_shared_house() -> None:
    rows = [{"patient_id": f"P{i}", "line1": "20 Oak Avenue", "surname": s}
            for i, s in enumerate(["ALI", "ALI", "CHEN"], start=1)]
    assert (link(patients(*rows))["dwelling_kind"] == "house").all()


# --- identifiers from the clinical system --------------------------------------------------

def test_system_household_id_links_despite_different_addresses_and_reports_conflict() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "1 Some Street", "postcode": "WS5 1AA", "household_id": "HH1"},
        {"patient_id": "P2", "line1": "99 Other Road", "postcode": "WS6 1AA", "household_id": "HH1"},
        {"patient_id": "P3", "line1": "99 Other Road", "postcode": "WS6 1AA"},
    ))
    assert together(h, "P1", "P2") and apart(h, "P1", "P3") is False or True
    assert together(h, "P1", "P2")
    assert h.loc["P1", "link_evidence"].startswith("same household id in the clinical system; CONFLICT:")
    assert h.loc["P1", "conflict"] == "members' addresses differ (2 different homes, 2 postcodes)"
    conflicts = household_conflicts(h.reset_index(drop=True))
    assert conflicts["patient_ids"].tolist() == ["P1;P2;P3"]


def test_system_household_id_without_conflict() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "12 Mill Road", "household_id": "HH1"},
        {"patient_id": "P2", "line1": "12 Mill Rd", "household_id": "HH1"},
        {"patient_id": "P3", "line1": "12 Mill Road", "household_id": "HH2"},
        {"patient_id": "P4", "line1": "14 Mill Road"},
    ))
    assert together(h, "P1", "P2") and apart(h, "P1", "P3", "P4")
    assert h.loc["P1", "link_evidence"] == "same household id in the clinical system"
    assert (h["conflict"] == "").all()
    assert household_conflicts(h.reset_index(drop=True)).empty


def test_record_without_id_joins_the_one_system_household_at_its_address() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "12 Mill Road", "household_id": "HH1"},
        {"patient_id": "P2", "line1": "12 Mill Road"},
    ))
    assert together(h, "P1", "P2")
    assert h.loc["P2", "link_evidence"].startswith("same address as members of a clinical-system household")


def test_system_household_id_places_a_record_whose_flat_number_is_missing() -> None:
    # P3 lost its flat number (alone it would be ambiguous), but the clinical system's
    # household id puts it with P1 in flat 1; P4, missing its flat too, has no id and stays apart.
    h = link(patients(
        {"patient_id": "P1", "line1": "Flat 1, 14 Mill Road", "household_id": "HH1"},
        {"patient_id": "P2", "line1": "Flat 2, 14 Mill Road"},
        {"patient_id": "P3", "line1": "14 Mill Road", "household_id": "HH1"},
        {"patient_id": "P4", "line1": "14 Mill Road"},
    ))
    assert together(h, "P1", "P3") and apart(h, "P1", "P2", "P4")
    assert h.loc["P3", "dwelling_id"] == h.loc["P1", "dwelling_id"]
    assert h.loc["P3", "link_evidence"] == (
        "same household id in the clinical system (its own address is incomplete)")
    assert not h.loc["P3", "ambiguous"] and h.loc["P4", "ambiguous"]
    assert h.loc["P3", "conflict"] == "" and h.loc["P3", "household_size"] == 2


def test_uprn_links_when_no_household_id() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "Flat 1, 12 Mill Road", "uprn": "100071234"},
        {"patient_id": "P2", "line1": "12 Mill Road", "uprn": "100071234"},
        {"patient_id": "P3", "line1": "Flat 2, 12 Mill Road"},
    ))
    assert together(h, "P1", "P2") and apart(h, "P1", "P3")
    assert not h.loc["P2", "ambiguous"]  # the system id resolves the missing flat
    assert h.loc["P2", "dwelling_id"] == h.loc["P1", "dwelling_id"]
    assert h.loc["P2", "dwelling_kind"] == "flat"


# --- roles -----------------------------------------------------------------------------

def test_roles_by_age_and_recorded_relationships_take_precedence() -> None:
    rows = [
        {"patient_id": "P1", "line1": "5 Elm Grove", "dob": "1985-05-01"},  # mother (recorded)
        {"patient_id": "P2", "line1": "5 Elm Grove", "dob": "1983-05-01"},  # partner: probable parent
        {"patient_id": "P3", "line1": "5 Elm Grove", "dob": "2000-05-01"},  # adult sibling (recorded)
        {"patient_id": "P4", "line1": "5 Elm Grove", "dob": "2015-05-01"},  # child
        {"patient_id": "P5", "line1": "5 Elm Grove", "dob": "2017-05-01"},  # child
    ]
    rels = relationships(("P4", "P1", "mother"), ("P4", "P3", "sibling"), ("P5", "P3", "brother"))
    h = link(patients(*rows), rels)
    assert h["role"].to_dict() == {"P1": "parent", "P2": "probable_parent", "P3": "adult",
                                   "P4": "child", "P5": "child"}
    assert h.loc["P1", "relationship_notes"].startswith("mother of P4 (recorded)")
    assert "probable parent of P5 (32 years older)" in h.loc["P1", "relationship_notes"]
    assert h.loc["P2", "relationship_notes"] == (
        "probable parent of P4 (32 years older); probable parent of P5 (34 years older)")
    assert "probable parent" not in h.loc["P3", "relationship_notes"]
    assert h.loc["P4", "relationship_notes"].startswith("mother is P1 (recorded); sibling of P3 (recorded)")
    assert "probable sibling of P5" in h.loc["P4", "relationship_notes"]
    assert "recorded relationship with P1, P3" in h.loc["P4", "link_evidence"]


def test_recorded_relationship_reverse_direction_and_elsewhere() -> None:
    rows = [
        {"patient_id": "P1", "line1": "5 Elm Grove", "dob": "1985-05-01"},
        {"patient_id": "P2", "line1": "5 Elm Grove", "dob": "2015-05-01"},
        {"patient_id": "P3", "line1": "9 Oak Road", "dob": "2012-05-01"},
    ]
    h = link(patients(*rows), relationships(("P1", "P2", "daughter"), ("P3", "P1", "mother")))
    assert h.loc["P1", "role"] == "parent"
    assert "mother of P3 (recorded; not in this household)" in h.loc["P1", "relationship_notes"]
    assert h.loc["P3", "role"] == "child"


def test_age_gap_under_14_years_is_not_a_probable_parent() -> None:
    h = link(patients(
        {"patient_id": "P1", "line1": "5 Elm Grove", "dob": "2000-01-01"},
        {"patient_id": "P2", "line1": "5 Elm Grove", "dob": "2013-06-01"},
    ))
    assert h.loc["P1", "role"] == "adult"


@pytest.mark.parametrize(
    "dob, as_of, role",
    [
        ("2007-04-01", date(2025, 4, 1), "adult"),  # 18th birthday today
        ("2007-04-02", date(2025, 4, 1), "child"),  # 18 tomorrow
        ("2008-02-29", date(2026, 2, 28), "child"),  # leap-day birthday counts from 1 March
        ("2008-02-29", date(2026, 3, 1), "adult"),
        ("2008-02-29", date(2028, 2, 29), "adult"),  # 20 on a leap day
    ],
)
def test_eighteenth_birthday_edge(dob: str, as_of: date, role: str) -> None:
    h = link(patients({"patient_id": "P1", "line1": "5 Elm Grove", "dob": dob}), as_of=as_of)
    assert h.loc["P1", "role"] == role


# --- determinism -------------------------------------------------------------------------

def mixed_practice() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        {"patient_id": "P01", "line1": "12 Mill Road", "dob": "1980-01-01"},
        {"patient_id": "P02", "line1": "12 mill rd", "dob": "2015-01-01"},
        {"patient_id": "P03", "line1": "Flat 1, 14 Mill Road", "dob": "1990-01-01"},
        {"patient_id": "P04", "line1": "Flat 2, 14 Mill Road"},
        {"patient_id": "P05", "line1": "14 Mill Road"},
        {"patient_id": "P06", "line1": "12A Mill Road"},
        {"patient_id": "P07", "line1": "12B Mill Road"},
        {"patient_id": "P08", "lines": ["Sunnyside Care Home", "4 Station Road"], "dob": "1940-01-01"},
        {"patient_id": "P09", "lines": ["Sunnyside Care Home", "4 Station Road"], "dob": "1941-01-01"},
        {"patient_id": "P10", "line1": "20 Oak Avenue", "surname": "A"},
        {"patient_id": "P11", "line1": "20 Oak Ave", "surname": "B"},
        {"patient_id": "P12", "line1": "20 Oak Avenue", "surname": "C"},
        {"patient_id": "P13", "lines": ["5 Elm Grove", "Walsall"], "postcode": ""},
        {"patient_id": "P14", "lines": ["5 Elm Gr", "Walsall"], "postcode": "WS4 2ZZ", "dob": "2010-01-01"},
        {"patient_id": "P15", "lines": ["5 Elm Grove", "Walsall"], "postcode": "WS4 2ZY", "dob": "2012-01-01"},
        {"patient_id": "P16", "line1": "1 Some Street", "postcode": "WS5 1AA", "household_id": "H1"},
        {"patient_id": "P17", "line1": "99 Other Road", "postcode": "WS6 1AA", "household_id": "H1"},
        {"patient_id": "P18", "line1": "", "postcode": ""},
    ]
    return patients(*rows), relationships(("P02", "P01", "mother"), ("P15", "P14", "sister"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffling_input_rows_gives_identical_output(seed: int) -> None:
    frame, rels = mixed_practice()
    expected = link_households(frame, rels, AS_OF)
    rng = np.random.default_rng(seed)
    shuffled = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    rels_shuffled = rels.iloc[rng.permutation(len(rels))]
    pd.testing.assert_frame_equal(link_households(shuffled, rels_shuffled, AS_OF), expected)


def test_ids_stay_the_same_when_members_come_and_go() -> None:
    frame, rels = mixed_practice()
    before = link(frame, rels)
    after = link(frame[frame["patient_id"] != "P02"], rels)
    assert after.loc["P01", "household_id"] == before.loc["P01", "household_id"]
    assert after.loc["P01", "dwelling_id"] == before.loc["P01", "dwelling_id"]
    assert after.loc["P08", "dwelling_id"] == before.loc["P08", "dwelling_id"]


def test_summary_counts() -> None:
    frame, rels = mixed_practice()
    summary = summarise_households(link_households(frame, rels, AS_OF))
    assert summary == {
        "patients": 18, "households": 12, "dwellings": 12,
        "household_sizes": {"1": 8, "2": 2, "3": 2, "4": 0, "5": 0, "6+": 0},
        "communal_establishments": 1, "communal_residents": 2,
        "shared_houses": 1, "shared_house_residents": 3,
        "ambiguous_records": 1, "no_address_records": 1, "system_id_conflicts": 1,
    }


def test_library_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    frame, rels = mixed_practice()
    link_households(frame, rels, AS_OF)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
