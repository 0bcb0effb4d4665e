"""Tests for the perf-addr5 changes to address normalisation: texts opening with a flat
numbered by digits ("FLAT 8,41 MILL ROAD") parsed with "0" in place of those digits, the
digits put back into each row's flat and rendering."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import address as A

NOTHING = r"^(\b\B)"  # a pattern matching no text


def normalised_without_shortcuts(frame: pd.DataFrame) -> pd.DataFrame:
    """``normalise_addresses`` with every number shortcut switched off (house numbers
    opening a line or text, flat numbers opening a text): every text parsed as it is."""
    original = A._LEAD_NUMBER, A._LEAD_LINE, A._LEAD_FLAT
    A._LEAD_NUMBER = A._LEAD_LINE = A._LEAD_FLAT = NOTHING
    try:
        return A.normalise_addresses(frame)
    finally:
        A._LEAD_NUMBER, A._LEAD_LINE, A._LEAD_FLAT = original


def address_rows(first: list[str], other: list[str]):
    """Up to 16 addresses: a first line from ``first``, three more lines from ``other``, and
    a postcode (none, one written loosely, or one not a postcode)."""
    return st.lists(st.tuples(st.sampled_from(first), st.sampled_from(other), st.sampled_from(other),
                              st.sampled_from(other), st.sampled_from(["", "ws28qt", "X"])),
                    min_size=1, max_size=16)


def assert_shortcuts_change_nothing(rows: list[tuple], columns: list[str]) -> None:
    """Addresses made of ``rows`` (of ``columns``) normalise as they do with every number
    shortcut switched off."""
    frame = pd.DataFrame(rows, columns=columns, dtype="str")
    pd.testing.assert_frame_equal(A.normalise_addresses(frame), normalised_without_shortcuts(frame))


FLATS = ["Flat 8", "Flat 12", "Flat 12A", "Flat 12 A", "Flat 08", "Flat 0", "Flat 8-9", "Flat 8/12",
         "Flat 3/12 Mill Rd", "Flat", "Flat GF", "Flat B", "Flat 8,", "Flat 8, 41", "Apt 2B",
         "Flat 8 41 Mill Rd", "Flat 8 Oak Court", "Flat 8 A Mill Rd", "Flat 8AB", "Flat 12 12",
         "Flat 7 WS2 8QT", "Flat 8 B1 2CD", "Flat 8 Flat 9", "Flat 1 Care Home", "Flat 99 Kent",
         "Ground Floor Flat", "Unit 5", "Room 3", "Flat 8 No 5", "Flat 8 St Johns Rd",
         "Flat 5 12-14 Mill Rd", "Flat 5 3/12", "12 Flat 3", "Flat No 8", "Flat 8 Rd",
         "Flat 12 - 14 Mill Rd", "Flat 12-14A Mill Rd", "Flat 8-9,", "Flat 0-4 Oak Court",
         "Flat 5-6 Mill House, 12 Mill Rd"]
LINES = ["", "41 Mill Rd", "41", "41A", "Mill Rd", "Oak Court", "3 Oak Court", "12-14 Mill Rd",
         "3/12 Mill Rd", "Walsall", "Kent", "WS2 8QT", "B1 2CD", "Rose Cottage", "Hostel Lane",
         "Flat 2", "Elm Place", "5 Care Home", "AB12 Road", "Pleck, Walsall", "12 Oak Court 5 Mill Rd"]


@settings(max_examples=300, deadline=None)
@given(address_rows(FLATS, LINES))
def test_flats_zeroed_give_the_parts_of_every_text_parsed_as_it_is(rows):
    assert_shortcuts_change_nothing(rows, ["address_line_1", "address_line_2", "address_line_3",
                                           "address_line_4", "postcode"])


WORDS = ["FLAT", "8", "12", "12A", "08", "0", "8-9", "3/12", "A", "B", "GF", "MILL ROAD", "OAK COURT",
         "ELM PLACE", "WS2 8QT", "B1 2CD", "AB12", "CARE HOME", "KENT", "WALSALL", "SAINT JOHNS ROAD",
         "ROSE COTTAGE", "99"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["8", "12", "12A", "99", "1", "7B"]),
                          st.sampled_from(["", ",", " "]),
                          st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)
                                   .map(" ".join), max_size=4).map(",".join)),
                min_size=1, max_size=12))
def test_parse_of_a_flat_zeroed_text_is_that_of_the_text_with_its_digits_put_back(parts):
    # Canonical texts ("FLAT 8,41 MILL ROAD"): every part of the parse is that of the text
    # with "0" in place of the flat's digits, but the flat and the rendering, which are
    # those with the digits put back. (The lead_head and lead_tail of such texts are not
    # used: their rows are never lead rows, whose texts open with a digit.)
    texts = pa.array([A._squash(pa.array([f"FLAT {d}{sep}{rest}"]))[0].as_py()
                      for d, sep, rest in parts])
    lead, digits, zeroed = A._flat_numbers(texts)
    plain = A._parse_distinct(texts)
    shortcut = A._parse_distinct(zeroed)
    rows = pa.array(lead)
    for name, values in plain.items():
        if name in ("lead_head", "lead_tail"):
            continue
        got = shortcut[name]
        if name in ("flat", "address_text") and lead.any():
            got = pc.replace_with_mask(got, rows, A._flat_parts(name, pc.filter(got, rows), digits))
        assert _listed(got) == _listed(values), name


def _listed(values) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else values.to_pylist()


def test_flat_numbers_zero_the_digits_of_a_flat_opening_the_text():
    texts = pa.array(["FLAT 8,41 MILL ROAD", "FLAT 12A,OAK COURT", "FLAT 12 OAK COURT", "FLAT 08,X",
                      "FLAT 0,X", "FLAT 8-9,X", "FLAT 8", "FLAT GF,X", "12 MILL ROAD", "X,FLAT 8",
                      "FLAT 8AB,X", "FLAT 123"])
    lead, digits, zeroed = A._flat_numbers(texts)
    assert lead.tolist() == [True, True, True, False, False, False, True, False, False, False,
                             False, True]
    assert digits.to_pylist() == ["8", "12", "12", "8", "123"]
    assert zeroed.to_pylist() == ["FLAT 0,41 MILL ROAD", "FLAT 0A,OAK COURT", "FLAT 0 OAK COURT",
                                  "FLAT 08,X", "FLAT 0,X", "FLAT 8-9,X", "FLAT 0", "FLAT GF,X",
                                  "12 MILL ROAD", "X,FLAT 8", "FLAT 8AB,X", "FLAT 0"]


def test_flat_parts_put_the_digits_back():
    digits = pa.array(["8", "12"])
    assert A._flat_parts("flat", pa.array(["0", "0A"]), digits).to_pylist() == ["8", "12A"]
    assert A._flat_parts("address_text", pa.array(["FLAT 0, 41 MILL ROAD", "FLAT 0A"]),
                         digits).to_pylist() == ["FLAT 8, 41 MILL ROAD", "FLAT 12A"]


def parses_counted(monkeypatch) -> list[int]:
    """A list that gets the number of texts of each call of ``_parse_distinct``."""
    seen: list[int] = []
    parse = A._parse_distinct

    def counting(text):
        seen.append(len(text))
        return parse(text)

    monkeypatch.setattr(A, "_parse_distinct", counting)
    return seen


def test_rows_differing_only_in_their_flat_number_share_a_parse(monkeypatch):
    frame = pd.DataFrame({"address_line_1": [f"Flat {i}" for i in range(1, 30)],
                          "address_line_2": "41 Mill Rd", "address_line_3": "Walsall",
                          "postcode": "WS2 8QT"}, dtype="str")
    seen = parses_counted(monkeypatch)
    out = A.normalise_addresses(frame)
    assert sum(seen) == 1
    assert out["flat"].tolist() == [str(i) for i in range(1, 30)]
    assert out["address_text"].iloc[11] == "FLAT 12, 41 MILL ROAD, WALSALL"
    assert np.all(out["number"] == "41")
    pd.testing.assert_frame_equal(out, normalised_without_shortcuts(frame))


def canonical_punctuation_rewriting_every_run(s: pa.Array) -> pa.Array:
    """``_canonical_punctuation`` as it was: every run of characters other than capitals,
    digits and commas (spaces too) rewritten to one space (once accents are folded, on
    every value)."""
    s = A._ascii_letters(s)
    s = pc.replace_substring(s, "&", " AND ")
    s = A._sub(s, r"['`\x{2019}]", "")
    s = A._sub(s, r"([0-9]) *- *([0-9])", r"\1~\2")
    s = A._sub(s, r"\b([0-9]+[A-Z]?|[A-Z]) */ *([0-9])", r"\1^\2")
    s = A._sub(s, r"[^A-Z0-9,~^]+", " ")
    s = pc.replace_substring(pc.replace_substring(s, "~", "-"), "^", "/")
    return A._squash(s)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("AB12 ,.-/&'\t\n~^#()é\u2019") + ["  ", " . "]),
                         max_size=10).map("".join), min_size=1, max_size=20))
def test_canonical_punctuation_is_the_rewrite_of_every_run(values):
    arr = pc.utf8_upper(pa.array(values, pa.string()))
    assert A._canonical_punctuation(arr).to_pylist() == canonical_punctuation_rewriting_every_run(arr).to_pylist()


def canonical_words_one_by_one(s: pa.Array) -> pa.Array:
    for pattern, repl in A._CANONICAL_WORDS:
        s = A._sub(s, pattern, repl)
    return s


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(
    ["FLAT", "APT", "UNIT", "NO", "NUMBER", "GROUND", "GRD", "FLOOR", "FIRST", "1ST", "2ND", "SECOND",
     "THIRD", "TOP", "BASEMENT", "LOWER", "GFF", "FFF", "SFF", "12", "3", "A", "ST", "JOHNS", "ROAD",
     ",", "0"]), max_size=8).map(" ".join), min_size=1, max_size=20))
def test_canonical_words_are_the_rewrites_one_by_one(values):
    arr = A._squash(pa.array(values, pa.string()))
    assert A._canonical_words(arr).to_pylist() == canonical_words_one_by_one(arr).to_pylist()
