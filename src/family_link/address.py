"""UK address and postcode normalisation: pure, vectorised, no I/O.

GP records hold free-text addresses typed by many hands over many years. Before two records
can be compared they are parsed into the parts that identify a home:

``flat``      the sub-unit ("3", "2B", "GF" for a ground floor flat), "" when none
``number``    the house number with its letter ("12A"; "12 A" becomes "12A"; "12-14" kept)
``building``  a building or house name ("OAK COURT", "ROSE COTTAGE")
``street``    the thoroughfare with one canonical spelling per street type ("MILL ROAD")
``locality``  other place lines (a district or village), ignored by the address key
``town``      the last place line that is not a county, ignored by the address key
``postcode``  "WS2 8QT" form, "" when missing or not a valid UK postcode

``address_key`` joins flat|number|building|street|postcode into one deterministic string.

The work runs on pyarrow string arrays with RE2 regular expressions (pyarrow.compute),
about ten times faster than Python's ``re`` through pandas: each distinct address line is
canonicalised once and each distinct canonical address parsed once, in chunks on a thread
pool (pyarrow releases the GIL). See docs/households.md.
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_LINES",
    "BUILDING_WORDS",
    "COMMUNAL_WORDS",
    "COUNTIES",
    "MAIN_STREET_TYPES",
    "POSTCODE_RE",
    "STREET_TYPES",
    "normalise_postcode",
    "normalise_addresses",
]

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ADDRESS_LINES = [f"address_line_{i}" for i in range(1, 6)]

# Canonical street type -> the spellings and abbreviations found in GP records.
STREET_TYPES: dict[str, tuple[str, ...]] = {
    "ROAD": ("RD",),
    "STREET": ("ST", "STR", "STRT"),
    "AVENUE": ("AVE", "AV", "AVN", "AVEN"),
    "LANE": ("LN", "LA"),
    "CLOSE": ("CL", "CLO", "CLSE"),
    "DRIVE": ("DR", "DRV", "DRI"),
    "CRESCENT": ("CRES", "CRESC", "CRS", "CRSNT"),
    "GARDENS": ("GDNS", "GDN", "GRDNS", "GARDEN"),
    "TERRACE": ("TERR", "TER", "TCE", "TRCE"),
    "PLACE": ("PL", "PLC"),
    "COURT": ("CT", "CRT"),
    "GROVE": ("GR", "GRO", "GRV"),
    "WAY": ("WY",),
    "WALK": ("WLK", "WK"),
    "SQUARE": ("SQ", "SQR"),
    "MEWS": ("MWS",),
    "ROW": (),
    "HILL": ("HL",),
    "PARK": ("PK",),
    "PARADE": ("PDE", "PARA"),
    "GREEN": ("GRN",),
    "RISE": (),
    "VALE": (),
    "CHASE": (),
    "CROFT": (),
    "BOULEVARD": ("BLVD",),
    "HIGHWAY": ("HWY",),
    "CIRCUS": (),
    "ESPLANADE": ("ESP",),
    "QUAY": (),
    "WHARF": (),
    "CAUSEWAY": (),
    "GATE": (),
    "VIEW": (),
}

# Words that make a line a building or house name rather than a street.
BUILDING_WORDS = (
    "COURT", "HOUSE", "COTTAGE", "COTTAGES", "LODGE", "MANSIONS", "TOWER", "TOWERS", "HALL",
    "BUILDINGS", "HEIGHTS", "POINT", "APARTMENTS", "CHAMBERS", "BLOCK", "FARM", "BARN",
    "VILLA", "VILLAS", "RECTORY", "VICARAGE", "BUNGALOW", "MANOR", "GRANGE", "HOME",
    "HOSTEL", "HOTEL", "REFUGE", "CENTRE", "CHALET", "FLATS",
)

# Names that mark a communal establishment: residents live there but are not a family.
# "REFUGE" is included: a refuge houses several unrelated families; a mother and her
# children there are linked through recorded relationships (see households.md).
COMMUNAL_WORDS: dict[str, str] = {
    "CARE HOME": r"\bCARE HOME\b",
    "NURSING HOME": r"\bNURSING HOME\b",
    "RESIDENTIAL HOME": r"\bRESIDENTIAL (?:CARE )?HOME\b",
    "REST HOME": r"\bREST HOME\b",
    "RETIREMENT HOME": r"\bRETIREMENT HOME\b",
    "CARE CENTRE": r"\b(?:CARE|NURSING) CENTRE\b",
    "HOSTEL": r"\bHOSTEL\b",
    "HOTEL": r"\bHOTEL\b",
    "NIGHT SHELTER": r"\bNIGHT SHELTER\b",
    "REFUGE": r"\bREFUGE\b",
    "PRISON": r"\b(?:PRISON|HMP|HMYOI)\b",
    "HALLS OF RESIDENCE": r"\bHALLS? OF RESIDENCE\b",
    "CHILDRENS HOME": r"\bCHILDRENS (?:RESIDENTIAL )?HOME\b",
}

COUNTIES = (
    "WEST MIDLANDS", "STAFFORDSHIRE", "STAFFS", "WARWICKSHIRE", "WORCESTERSHIRE", "SHROPSHIRE",
    "DERBYSHIRE", "LEICESTERSHIRE", "NOTTINGHAMSHIRE", "NORTHAMPTONSHIRE", "CHESHIRE",
    "LANCASHIRE", "GREATER MANCHESTER", "MERSEYSIDE", "WEST YORKSHIRE", "SOUTH YORKSHIRE",
    "NORTH YORKSHIRE", "EAST YORKSHIRE", "EAST RIDING OF YORKSHIRE", "TYNE AND WEAR",
    "DURHAM", "COUNTY DURHAM", "NORTHUMBERLAND", "CUMBRIA", "LINCOLNSHIRE", "NORFOLK",
    "SUFFOLK", "ESSEX", "KENT", "SURREY", "SUSSEX", "EAST SUSSEX", "WEST SUSSEX", "HAMPSHIRE",
    "DORSET", "DEVON", "CORNWALL", "SOMERSET", "WILTSHIRE", "GLOUCESTERSHIRE", "OXFORDSHIRE",
    "BERKSHIRE", "BUCKINGHAMSHIRE", "BEDFORDSHIRE", "HERTFORDSHIRE", "CAMBRIDGESHIRE",
    "HEREFORDSHIRE", "RUTLAND", "ISLE OF WIGHT", "GREATER LONDON", "MIDDLESEX", "AVON",
    "ENGLAND", "UNITED KINGDOM", "UK",
)

# UK postcode: outward code (area letters, district) and inward code (sector digit, unit).
# Letters never used in given positions are excluded (per Royal Mail's format rules).
POSTCODE_RE = (
    r"^(?:GIR 0AA|"
    r"[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
    r" [0-9][ABD-HJLNP-UW-Z]{2})$"
)
# A postcode typed into an address line (looser: any area letters).
_POSTCODE_IN_TEXT = r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b"

_NUM = r"[0-9]+[A-Z]?(?:-[0-9]+[A-Z]?)?"
_FLAT_ID = r"(?:[0-9]+ ?[A-Z]?|[A-Z]{1,2}[0-9]{0,3})"
_SUBUNIT_WORDS = (
    r"(?:FLAT|FLT|APARTMENT|APPARTMENT|APT|APPT|APTMT|UNIT|ROOM|RM|STUDIO|SUITE|MAISONETTE)"
)
_MAX_SEGMENTS = 8
_TYPES = "|".join(sorted(STREET_TYPES, key=len, reverse=True))
_STREET_TYPED = rf"\b(?:{_TYPES})$"
_BUILDING_WORDED = rf"\b(?:{'|'.join(BUILDING_WORDS)})\b"
# A numbered line naming a building, or a courtyard-like close that is often one:
# "3 OAK COURT", "6 ELM PLACE". Followed by a main street, the number is a flat number.
_BUILDINGISH = rf"\b(?:{'|'.join(BUILDING_WORDS + ('PLACE', 'MEWS', 'SQUARE', 'YARD'))})$"
# Street types that name a through road (not a district such as "PARK HILL").
MAIN_STREET_TYPES = (
    "ROAD", "STREET", "AVENUE", "LANE", "CLOSE", "DRIVE", "CRESCENT", "GARDENS", "TERRACE",
    "GROVE", "WAY", "WALK", "ROW", "PARADE", "BOULEVARD", "HIGHWAY", "ESPLANADE", "CAUSEWAY",
)
_MAIN_STREET = rf"\b(?:{'|'.join(MAIN_STREET_TYPES)})$"
_COUNTY = rf"^(?:{'|'.join(COUNTIES)})$"
# A segment with a house number: optional building words, the number, then the street.
_NUMBERED = rf"^(?:(?P<pre>[A-Z][A-Z ]*?) )?(?P<num>{_NUM}) (?P<rest>[A-Z].*)$"
# Street name then its type word(s); anything after is a place name typed on the same line.
_STREET_TRIM = (
    rf"^(?P<st>[A-Z0-9]+(?: [A-Z0-9]+)*? (?:{_TYPES})(?: (?:{_TYPES}))*)(?: (?P<loc>.+))?$"
)
_ABBREVIATIONS = {a: canonical for canonical, spellings in STREET_TYPES.items() for a in spellings}


# --- small pyarrow helpers -------------------------------------------------------------

def _to_arrow(values: pd.Series) -> pa.Array:
    """A pandas column of strings (NaN/None -> "") as a pyarrow string array."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        return pc.fill_null(arr.cast(pa.string()), "")
    filled = values.astype(object).where(values.notna(), "")
    return pa.array(filled.to_numpy(dtype=object), type=pa.string())


def _empty(n: int) -> pa.Array:
    return pc.fill_null(pa.nulls(n, pa.string()), "")


def _sub(arr: pa.Array, pattern: str, repl: str, max_replacements: int | None = None) -> pa.Array:
    """Regex replace. Most patterns match few values, and finding a match costs far less
    than rewriting every string, so only the values that match are rewritten (a value
    with no match is left as it is either way)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    n_hit = pc.sum(hit).as_py() or 0
    if n_hit == 0:
        return arr
    if n_hit * 4 > len(arr):  # dense: one pass over everything is cheaper
        return pc.replace_substring_regex(arr, pattern, repl, max_replacements=max_replacements)
    replaced = pc.replace_substring_regex(pc.filter(arr, hit), pattern, repl,
                                          max_replacements=max_replacements)
    return pc.replace_with_mask(arr, hit, replaced)


def _has(arr: pa.Array, pattern: str) -> np.ndarray:
    return _bool(pc.match_substring_regex(arr, pattern))


def _bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _where(mask: np.ndarray, a: pa.Array, b: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask, pa.bool_()), a, b)


def _field(struct: pa.Array, name: str) -> pa.Array:
    if len(struct) == 0:
        return _empty(0)
    return pc.fill_null(pc.struct_field(struct, name), "")


def _pick(columns: list[pa.Array], index: np.ndarray) -> pa.Array:
    """Row-wise choice: ``columns[index[i]][i]``; an index outside the list gives ""."""
    n = len(index)
    k = len(columns)
    idx = np.where((index >= 0) & (index < k), index, k).astype(np.int32)
    return pc.choose(pa.array(idx), *columns, _empty(n))


def _at(matrix: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Row-wise element of a boolean (n, k) matrix; outside the matrix gives False."""
    k = matrix.shape[1]
    ok = (index >= 0) & (index < k)
    out = np.zeros(len(index), dtype=bool)
    rows = np.flatnonzero(ok)
    out[rows] = matrix[rows, index[rows]]
    return out


def _squash(arr: pa.Array) -> pa.Array:
    """Single spaces, tidy commas, no empty segments, no leading/trailing separators."""
    arr = _sub(arr, r"  +", " ")
    arr = pc.replace_substring(pc.replace_substring(arr, " ,", ","), ", ", ",")
    arr = _sub(arr, r",,+", ",")
    return pc.utf8_trim(arr, " ,")


def _squash_changed(before: pa.Array, after: pa.Array) -> pa.Array:
    """``_squash(after)`` where ``before`` is already squashed (a ``_squash`` output:
    squashing it again changes nothing), so only the values that changed are squashed."""
    changed = pc.fill_null(pc.not_equal(before, after), True)
    if not pc.any(changed).as_py():
        return after
    return pc.replace_with_mask(after, changed, _squash(pc.filter(after, changed)))


def _join_nonempty(parts: list[pa.Array], sep: str) -> pa.Array:
    """Row-wise join of the non-empty strings in ``parts`` with ``sep`` (one list join)."""
    n, k = len(parts[0]), len(parts)
    nonempty = np.empty((n, k), dtype=bool)
    for i, part in enumerate(parts):
        nonempty[:, i] = _bool(pc.not_equal(part, ""))
    at = np.flatnonzero(nonempty)  # row by row, parts in order
    values = pc.take(pa.concat_arrays([p.cast(pa.string()) for p in parts]),
                     pa.array((at % k) * n + at // k))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(nonempty.sum(axis=1), out=offsets[1:])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), sep)


def _join_places(parts: list[pa.Array]) -> pa.Array:
    """The non-empty place names joined by ", "."""
    return _join_nonempty(parts, ", ")


def _map_words(arr: pa.Array, mapping: dict[str, str]) -> pa.Array:
    """Replace whole words through a lookup (one pass, however many abbreviations)."""
    spaced = pc.replace_substring(arr, ",", " , ")
    words = pc.split_pattern(spaced, " ")
    values = words.values
    index = pc.index_in(values, value_set=pa.array(list(mapping), pa.string()))
    mapped = pc.coalesce(pc.take(pa.array(list(mapping.values()), pa.string()), index), values)
    rebuilt = pa.ListArray.from_arrays(words.offsets, mapped)
    return _squash(pc.binary_join(rebuilt, " "))


# --- postcodes -------------------------------------------------------------------------

def _clean_postcode_text(arr: pa.Array) -> pa.Array:
    arr = _sub(pc.utf8_upper(arr), r"[^A-Z0-9]", "")
    # Outward code, a space, then the 3-character inward code.
    return _sub(arr, r"^([A-Z0-9]{2,4})([0-9][A-Z]{2})$", r"\1 \2")


def normalise_postcode(postcodes: pd.Series) -> pd.DataFrame:
    """Normalise UK postcodes: ``" ws28qt "`` -> ``"WS2 8QT"``.

    Returns a frame indexed like ``postcodes`` with ``postcode`` ("" when not a valid UK
    postcode) and ``postcode_valid`` (bool). The caller's original text is left untouched.
    """
    cleaned = _clean_postcode_text(_to_arrow(postcodes))
    valid = pc.fill_null(pc.match_substring_regex(cleaned, POSTCODE_RE), False)
    return pd.DataFrame(
        {
            "postcode": _series(pc.if_else(valid, cleaned, ""), postcodes.index),
            "postcode_valid": pd.Series(_bool(valid), index=postcodes.index, dtype=bool),
        }
    )


def _series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(arr, index=index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


# --- addresses -------------------------------------------------------------------------

def _canonical_text(joined: pa.Array) -> pa.Array:
    """Upper case, punctuation to spaces, canonical sub-unit words and street types."""
    s = pc.utf8_upper(joined)
    s = pc.replace_substring(s, "&", " AND ")
    s = _sub(s, r"['`\x{2019}]", "")  # ST JOHN'S -> ST JOHNS
    s = _sub(s, r"([0-9]) *- *([0-9])", r"\1~\2")  # protect number ranges 12-14
    s = _sub(s, r"\b([0-9]+[A-Z]?|[A-Z]) */ *([0-9])", r"\1^\2")  # protect 3/12: flat 3 of number 12
    s = _sub(s, r"[^A-Z0-9,~^]+", " ")
    s = pc.replace_substring(pc.replace_substring(s, "~", "-"), "^", "/")
    s = _squash(s)
    # Sub-unit designators -> "FLAT"; floor descriptions -> a flat id.
    s = _sub(s, rf"\b{_SUBUNIT_WORDS}(?: (?:NO|NUMBER|NUM))?\b", "FLAT")
    s = _sub(s, r"\b(?:GROUND|GRD|GND) (?:FLOOR )?FLAT\b|\bGFF\b", "FLAT GF")
    s = _sub(s, r"\b(?:FIRST|1ST) (?:FLOOR )?FLAT\b|\bFFF\b", "FLAT 1F")
    s = _sub(s, r"\b(?:SECOND|2ND) (?:FLOOR )?FLAT\b|\bSFF\b", "FLAT 2F")
    s = _sub(s, r"\b(?:THIRD|3RD) (?:FLOOR )?FLAT\b", "FLAT 3F")
    s = _sub(s, r"\bTOP (?:FLOOR )?FLAT\b", "FLAT TOP")
    s = _sub(s, r"\b(?:BASEMENT|LOWER GROUND) (?:FLOOR )?FLAT\b", "FLAT BSMT")
    s = _sub(s, r"\bNO ([0-9])", r"\1")  # "NO 12 MILL ROAD"
    # House letter: "12 A MILL ROAD" -> "12A MILL ROAD" (also "FLAT 3 A" -> "FLAT 3A").
    s = _sub(s, r"\b([0-9]+) ([A-Z])\b", r"\1\2")
    # "ST" opening a street name is SAINT ("12 ST JOHNS ROAD"); elsewhere it is STREET.
    s = _sub(s, r"(^|,|[0-9][A-Z]? )ST ([A-Z])", r"\1SAINT \2")
    return _map_words(s, _ABBREVIATIONS)


def _parse(texts: pa.Array) -> dict[str, pa.Array]:
    """Parse canonical address texts (see ``_canonical_text``) into parts."""
    n = len(texts)
    s = texts  # squashed: see _parse_distinct
    # Flat: "FLAT 3", "FLAT 3A", "FLAT B", "FLAT GF".
    flat_id = rf"(?:{_FLAT_ID}|GF|TOP|BSMT)"
    flat = _field(pc.extract_regex(s, rf"\bFLAT ?(?P<flat>{flat_id})\b"), "flat")
    s = _sub(s, rf"\bFLAT ?{flat_id}\b", "", max_replacements=1)
    s = _squash_changed(texts, _sub(s, r"\bFLAT\b", ""))  # a bare designator says nothing usable
    # "3/12 MILL ROAD": flat 3 of number 12 (only when no flat was named).
    slash_flat = _field(pc.extract_regex(s, rf"\b(?P<f>[0-9]+[A-Z]?|[A-Z])/{_NUM}\b"), "f")
    use_slash = _bool(pc.equal(flat, "")) & _bool(pc.not_equal(slash_flat, ""))
    flat = _where(use_slash, slash_flat, flat)
    squashed = s
    s = _where(
        use_slash,
        _sub(s, rf"\b(?:[0-9]+[A-Z]?|[A-Z])/({_NUM})\b", r"\1", max_replacements=1),
        pc.replace_substring(s, "/", " "),
    )
    s = _squash_changed(squashed, s)
    # A segment holding only a number belongs to the next one: "12, MILL ROAD".
    s = _sub(s, rf"(^|,)({_NUM}),", r"\1\2 ")
    # A number after words starts a new part: "OAK COURT 12 MILL ROAD" (commas lost).
    s = _sub(s, rf"([A-Z]) ({_NUM} [A-Z])", r"\1,\2")

    lists = pc.split_pattern(s, ",")
    k = _MAX_SEGMENTS
    seg = [
        pc.fill_null(pc.list_flatten(pc.list_slice(lists, i, i + 1, return_fixed_size_list=True)), "")
        for i in range(k)
    ]
    # Segments repeat from address to address (street, district and town names), so
    # each distinct segment text is matched once and the results taken back per segment.
    every = pc.dictionary_encode(pa.concat_arrays(seg))
    texts = every.dictionary
    at = np.asarray(every.indices.to_numpy(zero_copy_only=False), dtype=np.int64).reshape(k, n)
    numbered = pc.extract_regex(texts, _NUMBERED)

    def per_segment(values: pa.Array) -> list[pa.Array]:
        return [pc.take(values, pa.array(at[i])) for i in range(k)]

    def flags(values: np.ndarray) -> np.ndarray:  # (n, k): one column per segment
        return np.ascontiguousarray(values[at].T)

    pre = per_segment(_field(numbered, "pre"))
    num = per_segment(_field(numbered, "num"))
    rest = per_segment(_field(numbered, "rest"))
    has_num = flags(_bool(pc.is_valid(numbered)))
    nonempty = flags(_bool(pc.not_equal(texts, "")))
    street_typed = flags(_has(texts, _STREET_TYPED))
    building_worded = flags(_has(texts, _BUILDING_WORDED))
    main_street = flags(_has(texts, _MAIN_STREET))
    cols = np.arange(k)[None, :]

    no_flat = _bool(pc.equal(flat, ""))
    first_num = np.where(has_num.any(axis=1), has_num.argmax(axis=1), -1)
    any_num = first_num >= 0
    later = has_num & (cols > first_num[:, None])
    second_num = np.where(later.any(axis=1), later.argmax(axis=1), -1)
    rest_first = _pick(rest, first_num)
    rest_first_building = _has(rest_first, _BUILDING_WORDED) | _has(rest_first, _BUILDINGISH)
    nxt = np.where(any_num, first_num + 1, -1)
    next_plain_street = (
        _at(nonempty, nxt) & ~_at(has_num, nxt) & _at(main_street, nxt) & ~_at(building_worded, nxt)
    )
    # "3 OAK COURT, 12 MILL ROAD" -> flat 3 of the building OAK COURT at 12 MILL ROAD.
    case_a = any_num & (second_num >= 0) & rest_first_building & no_flat
    # "3 OAK COURT, MILL ROAD" -> flat 3 of the building OAK COURT on MILL ROAD.
    case_b = any_num & ~case_a & rest_first_building & next_plain_street & no_flat

    # Numbered address: building is the words before the number, else the segment before.
    num_first = _pick(num, first_num)
    building = _pick(pre, first_num)
    building = _where(
        any_num & _bool(pc.equal(building, "")) & (first_num >= 1),
        _pick(seg, first_num - 1),
        building,
    )
    flat = _where(case_a | case_b, num_first, flat)
    building = _where(case_a | case_b, rest_first, building)
    number = _where(case_a, _pick(num, second_num), _where(case_b, _empty(n), num_first))
    street = _where(case_a, _pick(rest, second_num), _where(case_b, _pick(seg, nxt), rest_first))
    street_seg = np.where(case_a, second_num, np.where(case_b, nxt, first_num))

    # No number anywhere: "ROSE COTTAGE, MILL LANE" or "OAK COURT, MILL ROAD".
    no_num = ~any_num
    seg0_street_only = street_typed[:, 0] & ~building_worded[:, 0]
    seg1_street = nonempty[:, 1] & street_typed[:, 1] & ~has_num[:, 1]
    only_street = seg0_street_only & ~seg1_street  # "MILL LANE, WALSALL": no building at all
    building = _where(no_num, _where(only_street, _empty(n), seg[0]), building)
    street = _where(
        no_num, _where(only_street, seg[0], _where(seg1_street, seg[1], _empty(n))), street
    )
    street_seg = np.where(no_num, np.where(seg1_street & ~only_street, 1, 0), street_seg)

    # A one-line address: keep the street up to its type word; the rest is a place name.
    trim = pc.extract_regex(street, _STREET_TRIM)
    trimmed = _field(trim, "st")
    spill = _field(trim, "loc")
    street = _where(_bool(pc.not_equal(trimmed, "")), trimmed, street)

    # Places after the street: the last one that is not a county is the town.
    after = (cols > street_seg[:, None]) & nonempty
    county = flags(_has(texts, _COUNTY))
    town_mask = after & ~county
    last_town = np.where(town_mask.any(axis=1), k - 1 - town_mask[:, ::-1].argmax(axis=1), -1)
    town = _pick(seg, last_town)
    loc_mask = town_mask & (cols != last_town[:, None])
    seg_locality = _join_places([_where(loc_mask[:, i], seg[i], _empty(n)) for i in range(k)])
    use_spill = _bool(pc.equal(town, "")) & _bool(pc.not_equal(spill, ""))
    town = _where(use_spill, spill, town)
    town = pc.utf8_trim(_sub(town, rf"(?: (?:{'|'.join(COUNTIES)}))+$", ""), " ")
    locality = _where(use_spill, seg_locality, _join_places([spill, seg_locality]))

    flat = _sub(pc.replace_substring(flat, " ", ""), r"^0+([0-9])", r"\1")
    number = _sub(number, r"^0+([0-9])", r"\1")
    return {
        "flat": flat,
        "number": number,
        "building": building,
        "street": street,
        "locality": locality,
        "town": town,
    }


def _parse_distinct(text: pa.Array) -> dict[str, pa.Array]:
    """Parse distinct canonical texts (canonical lines joined by commas)."""
    n = len(text)
    # A postcode typed into an address line is taken out of the text, and used when the
    # postcode field itself is missing or invalid.
    # The text is squashed (``_joined_text``): only texts holding one change here.
    hit = pc.fill_null(pc.match_substring_regex(text, _POSTCODE_IN_TEXT), False)
    pc_text = _empty(n)
    if pc.any(hit).as_py():
        holding = pc.filter(text, hit)
        found = _clean_postcode_text(
            _field(pc.extract_regex(holding, rf"(?P<pc>{_POSTCODE_IN_TEXT})"), "pc")
        )
        pc_text = pc.replace_with_mask(pc_text, hit, found)
        text = pc.replace_with_mask(
            text, hit, _squash(pc.replace_substring_regex(holding, _POSTCODE_IN_TEXT, ""))
        )
    parts = _parse(text)
    # Communal names are looked for in the building and place names, not the street:
    # "7 Hostel Lane" is an ordinary house.
    named = pc.binary_join_element_wise(parts["building"], parts["locality"], ", ")
    communal = _communal_names(named)
    flat_text = _where(
        _bool(pc.not_equal(parts["flat"], "")),
        pc.binary_join_element_wise("FLAT", parts["flat"], " "),
        _empty(n),
    )
    number_street = pc.utf8_trim(
        pc.binary_join_element_wise(parts["number"], parts["street"], " "), " "
    )
    return {
        **parts,
        "pc_text": pc_text,
        # Validated here, once per distinct text, rather than once per record.
        "pc_text_valid": pc.fill_null(pc.match_substring_regex(pc_text, POSTCODE_RE), False),
        "communal_name": communal,
        "address_text": _join_places(
            [flat_text, parts["building"], number_street, parts["locality"], parts["town"]]
        ),
    }


_ANY_COMMUNAL = "|".join(f"(?:{pattern})" for pattern in COMMUNAL_WORDS.values())


def _communal_names(named: pa.Array) -> pa.Array:
    """The first ``COMMUNAL_WORDS`` label whose pattern matches, else "". Few names match
    any: the labels are looked for in those alone."""
    hit = pc.fill_null(pc.match_substring_regex(named, _ANY_COMMUNAL), False)
    if not pc.any(hit).as_py():
        return _empty(len(named))
    some = pc.filter(named, hit)
    communal = _empty(len(some))
    for label, pattern in reversed(list(COMMUNAL_WORDS.items())):
        communal = _where(_has(some, pattern), pa.scalar(label), communal)
    return pc.replace_with_mask(_empty(len(named)), hit, communal)


_PARTS = ["flat", "number", "building", "street", "locality", "town", "pc_text",
          "pc_text_valid", "communal_name", "address_text"]
_CHUNK = 100_000  # distinct values per task; pyarrow releases the GIL, so threads help (smaller
# chunks were slower: many short calls make the threads queue for the GIL)
# A line that only names a county says nothing about the home.
_COUNTY_SEGMENT = rf"(^|,)(?:{'|'.join(COUNTIES)})(,|$)"


def _pool_map(fn, chunks: list) -> list:
    """``fn`` over ``chunks``, on a thread pool when there are several."""
    if len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
            return list(pool.map(fn, chunks))
    return [fn(chunk) for chunk in chunks]


def _joined_text(lines: list[pa.Array]) -> pa.Array:
    """Canonical lines joined by commas, county-only segments dropped (row by row).

    The lines are ``_squash`` outputs (no double spaces or commas, no space beside a
    comma, nothing to trim), so squashing their comma-join only drops the empty ones:
    the non-empty lines are joined as a list instead. Such a join is itself squashed, so
    only the texts that lose a county segment are squashed again."""
    text = _join_nonempty(lines, ",")
    hit = pc.fill_null(pc.match_substring_regex(text, _COUNTY_SEGMENT), False)
    if not pc.any(hit).as_py():
        return text
    dropped = _squash(pc.replace_substring_regex(pc.filter(text, hit), _COUNTY_SEGMENT, r"\1\2"))
    return pc.replace_with_mask(text, hit, dropped)


def _by_rows(fn, columns: list[pa.Array]) -> pa.Array:
    """A row-wise ``fn`` of several columns, in chunks of rows on the thread pool."""
    n = len(columns[0])
    step = 4 * _CHUNK
    chunks = [[c.slice(i, step) for c in columns] for i in range(0, n, step)] or [columns]
    return pa.concat_arrays(_pool_map(fn, chunks))


def _postcode_field(values: pa.Array) -> dict[str, pa.Array]:
    cleaned = _clean_postcode_text(values)
    return {"cleaned": cleaned,
            "valid": pc.fill_null(pc.match_substring_regex(cleaned, POSTCODE_RE), False)}


def _distinct_map(values: pa.Array, fn, names: list[str] | None = None):
    """Apply ``fn`` once per distinct value, in chunks on a thread pool; map back."""
    encoded = pc.dictionary_encode(values)
    uniq = encoded.dictionary
    chunks = [uniq.slice(i, _CHUNK) for i in range(0, len(uniq), _CHUNK)] or [uniq]
    results = _pool_map(fn, chunks)
    if names is None:
        return pc.take(pa.concat_arrays(results), encoded.indices)
    return {k: pc.take(pa.concat_arrays([r[k] for r in results]), encoded.indices) for k in names}


def normalise_addresses(patients: pd.DataFrame) -> pd.DataFrame:
    """Parse free-text addresses into comparable parts.

    ``patients`` needs ``address_line_1`` .. ``address_line_5`` (missing columns and
    values are treated as empty) and ``postcode``. Returns a frame indexed like
    ``patients`` with ``flat``, ``number``, ``building``, ``street``, ``locality``,
    ``town``, ``postcode`` ("" unless valid), ``postcode_valid``, ``postcode_from_lines``
    (the postcode field was unusable and a valid postcode was found in an address line),
    ``postcode_text`` (the postcode field cleaned but not validated, for near-miss checks),
    ``communal_name`` (e.g. "CARE HOME", else ""), ``address_text`` (a canonical one-line
    rendering: normalising it again gives the same parts) and ``address_key``
    (flat|number|building|street|postcode).

    Each distinct line is canonicalised once, and each distinct canonical address parsed
    once: most of the variety in GP addresses is case, abbreviations and optional lines.
    """
    n = len(patients)
    lines = [
        _distinct_map(_to_arrow(patients[c]), _canonical_text) if c in patients.columns else _empty(n)
        for c in ADDRESS_LINES
    ]
    text = _by_rows(_joined_text, lines)
    parts = _distinct_map(text, _parse_distinct, _PARTS)

    postcode_raw = _to_arrow(patients["postcode"]) if "postcode" in patients.columns else _empty(n)
    field = _distinct_map(postcode_raw, _postcode_field, ["cleaned", "valid"])
    pc_field = field["cleaned"]
    field_valid = _bool(field["valid"])
    text_valid = _bool(parts["pc_text_valid"])
    postcode = _where(field_valid, pc_field, _where(text_valid, parts["pc_text"], _empty(n)))
    key = pc.binary_join_element_wise(
        parts["flat"], parts["number"], parts["building"], parts["street"], postcode, "|"
    )
    index = patients.index
    out = {name: _series(parts[name], index) for name in
           ["flat", "number", "building", "street", "locality", "town"]}
    out["postcode"] = _series(postcode, index)
    out["postcode_valid"] = pd.Series(field_valid | text_valid, index=index, dtype=bool)
    out["postcode_from_lines"] = pd.Series(~field_valid & text_valid, index=index, dtype=bool)
    out["postcode_text"] = _series(pc_field, index)
    out["communal_name"] = _series(parts["communal_name"], index)
    out["address_text"] = _series(parts["address_text"], index)
    out["address_key"] = _series(key, index)
    return pd.DataFrame(out, index=index)
