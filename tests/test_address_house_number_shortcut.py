"""Tests for the perf-addr3 changes to address normalisation: first lines opening with a
house number held with "0" in its place, so rows differing only in that number share one
joined text and one parse."""

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings

from family_link import address as A
from test_address_flat_number_shortcut import address_rows, assert_shortcuts_change_nothing, parses_counted


def test_lead_lines_zero_the_number_and_share_the_zeroed_lines():
    lines = pa.array(["12 MILL ROAD", "14 MILL ROAD", "OAK COURT", "7A HIGH STREET", "007 X Y",
                      "12, MILL ROAD", "3 MILL ROAD,WALSALL", "", "104", "7B", "0", "12-14 X"])
    lead, token, zeroed, at = A._lead_lines(lines)
    assert lead.tolist() == [True, True, False, True, False, False, True, False, True, True,
                             False, False]
    assert token.to_pylist() == ["12", "14", "7A", "3", "104", "7B"]
    assert [zeroed[int(i)].as_py() for i in at] == [
        "0 MILL ROAD", "0 MILL ROAD", "0A HIGH STREET", "0 MILL ROAD,WALSALL", "0", "0B"]
    assert len(zeroed) == 5


def test_lead_lines_of_no_lines():
    lead, token, zeroed, at = A._lead_lines(pa.array([], pa.string()))
    assert len(lead) == len(token) == len(zeroed) == len(at) == 0


FIRST = ["12 Mill Rd", "104", "104a", "12, Mill Rd", "5 ", "5,7 Mill Rd", "14 mill road", "7a High St", "3 Oak Court", "3 Oak Court, Mill Rd",
         "12 Mill Rd, Kent", "007 Mill Rd", "0 Mill Rd", "12-14 Mill Rd", "3/12 Mill Rd",
         "Flat 3", "12", "12 Oak Court 5 Mill Rd", "5 Care Home", "", "Kent", "12 Mill Rd WS2 8QT",
         "12 A Mill Rd", "No 12 Mill Rd", "12 St Johns Rd", "2 Elm Place", "12 Flat 3 7a",
         "14 Flat 3 7a", "12 Flat 3/12"]
OTHER = ["", "Mill Rd", "5 Mill Rd", "7", "Flat 3", "3/12 Elm Place", "12 Mill Rd", "Oak Court", "Walsall", "Kent", "Pleck, Walsall",
         "Flat 2", "Rose Cottage", "WS2 8QT", "Hostel Lane"]


@settings(max_examples=200, deadline=None)
@given(address_rows(FIRST, OTHER))
def test_first_lines_zeroed_give_the_parts_of_every_text_parsed_as_it_is(rows):
    assert_shortcuts_change_nothing(rows, ["address_line_1", "address_line_2", "address_line_3",
                                           "address_line_5", "postcode"])


def test_rows_differing_only_in_their_first_number_share_a_parse(monkeypatch):
    frame = pd.DataFrame({"address_line_1": [f"{i} Mill Rd" for i in range(1, 50)],
                          "address_line_2": "Walsall", "postcode": "WS2 8QT"}, dtype="str")
    seen = parses_counted(monkeypatch)
    out = A.normalise_addresses(frame)
    assert sum(seen) == 1
    assert out["number"].tolist() == [str(i) for i in range(1, 50)]
    assert out["address_text"].iloc[11] == "12 MILL ROAD, WALSALL"
    assert np.all(out["street"] == "MILL ROAD")
