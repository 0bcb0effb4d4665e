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
pool (pyarrow releases the GIL). Rows with the same lines are joined once, rewrites run
only on the values a cheap match finds, and parts taken from segments are held as integer
codes into the distinct segment texts until the end. A house number opening a line or an
address, and the digits of a flat opening an address ("FLAT 8,41 MILL ROAD"), are set
aside while the rest is canonicalised or parsed, once per distinct rest, and put back
after; the first line's number is set aside before the rows are grouped, so rows
differing only in it are joined and parsed once. See docs/households.md.
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
    r"(?:FLATS?|FLT|APARTMENTS?|APPARTMENT|APT|APPT|APTMT|UNIT|ROOM|RM|STUDIO|SUITE|MAISONETTE)"
)
_MAX_SEGMENTS = 8
_TYPES = "|".join(sorted(STREET_TYPES, key=len, reverse=True))
_STREET_TYPED = rf"\b(?:{_TYPES})$"
_BUILDING_WORDED = rf"\b(?:{'|'.join(BUILDING_WORDS)})\b"
# A numbered line naming a building, or a courtyard-like close that is often one:
# "3 OAK COURT", "6 ELM PLACE". Followed by a main street, the number is a flat number.
_BUILDINGISH_WORD = rf"\b(?:{'|'.join(BUILDING_WORDS + ('PLACE', 'MEWS', 'SQUARE', 'YARD'))})"
_BUILDINGISH = _BUILDINGISH_WORD + "$"
# Street types that name a through road (not a district such as "PARK HILL").
MAIN_STREET_TYPES = (
    "ROAD", "STREET", "AVENUE", "LANE", "CLOSE", "DRIVE", "CRESCENT", "GARDENS", "TERRACE",
    "GROVE", "WAY", "WALK", "ROW", "PARADE", "BOULEVARD", "HIGHWAY", "ESPLANADE", "CAUSEWAY",
)
_MAIN_STREET_WORD = rf"\b(?:{'|'.join(MAIN_STREET_TYPES)})"
_MAIN_STREET = _MAIN_STREET_WORD + "$"
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
    field = _postcode_field(_to_arrow(postcodes))
    cleaned, valid = field["cleaned"], field["valid"]
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
    """Upper case, punctuation to spaces, canonical sub-unit words and street types.

    Each of the three stages below rewrites only the values one of its patterns can
    change, found with one match of all its patterns together: a value that none of
    them matches comes out of the stage as it went in."""
    s = pc.utf8_upper(joined)
    s = _only_where(s, _PUNCTUATED, _canonical_punctuation)
    s = _only_where(s, _SUBUNIT_OR_LETTER, _canonical_words)
    return _only_where(s, _ABBREVIATED, lambda some: _map_words(some, _ABBREVIATIONS))


def _canonical_punctuation(s: pa.Array) -> pa.Array:
    s = _only_where(s, r"[^\x00-\x7F]", _ascii_letters)  # first: CAFÉ -> CAFE, not CAF
    s = pc.replace_substring(s, "&", " AND ")
    s = _sub(s, r"['`\x{2019}]", "")  # ST JOHN'S -> ST JOHNS
    s = _sub(s, r"([0-9][A-Z]?) *- *([0-9])", r"\1~\2")  # protect number ranges 12-14, 5A-6
    s = _sub(s, r"\b([0-9]+[A-Z]?|[A-Z]) */ *([0-9])", r"\1^\2")  # protect 3/12: flat 3 of number 12
    # Runs of other characters become one space. The spaces alone are left (the runs of
    # the rest become a space each) and the squash below makes each run one space: the
    # same text, without rewriting every value holding a space.
    s = _sub(s, r"[^A-Z0-9,~^ ]+", " ")
    s = pc.replace_substring(pc.replace_substring(s, "~", "-"), "^", "/")
    return _squash(s)


# Hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus sign,
# small and full-width hyphen-minus.
_OTHER_DASHES = r"[\x{2010}-\x{2015}\x{2212}\x{FE58}\x{FE63}\x{FF0D}]"

# Capital letters with no decomposition into a letter and its accents, and their spellings.
_UNDECOMPOSED_LETTERS = {"ß": "SS", "ẞ": "SS", "Æ": "AE", "Œ": "OE", "Ø": "O", "Ł": "L", "Đ": "D",
                         "Ð": "D", "Þ": "TH", "Ħ": "H", "Ŧ": "T", "Ŋ": "NG"}


def _ascii_letters(s: pa.Array) -> pa.Array:
    """Accented capitals as the plain ones ("CAFÉ" -> "CAFE", "ZOË" -> "ZOE", "STRAẞE" ->
    "STRASSE"), and every other character outside ASCII but the right single quote (read
    as an apostrophe next) a space, as the punctuation step always made it. Only letters,
    accents and decimal digits are decomposed (NFKD, which also opens ligatures and makes
    full-width letters and digits plain), the accents (combining marks) dropped, then the
    few letters that do not decompose spelled out. Numbers and symbols are not
    decomposed, or "12½" would read as house number "121 2" and a full-width "～" as this
    module's own range marker. Runs first in ``_canonical_punctuation``, so what it makes
    is read as typed ASCII would be. Before this, every non-ASCII letter became a space,
    so "Café Street" and "Cafe Street" were different streets ("CAF STREET").

    Dashes of other kinds (hyphens, en and em dashes, the minus sign: what a word processor
    or a copied letter puts for "-") are "-", as typed: "12–14 Mill Road" was street "12 14
    MILL ROAD" with no house number, a different home from "12-14 Mill Road"."""
    s = _sub(s, _OTHER_DASHES, "-")
    s = _sub(s, r"[^\p{L}\p{M}\p{Nd}\x00-\x7F\x{2019}]+", " ")
    s = pc.utf8_upper(_sub(pc.utf8_normalize(s, "NFKD"), r"\p{M}+", ""))
    for letter, spelled in _UNDECOMPOSED_LETTERS.items():
        s = pc.replace_substring(s, letter, spelled)
    return s


# Only a value holding something besides capitals, digits, commas and single spaces, or
# one that is not squashed, is changed by ``_canonical_punctuation``.
_PUNCTUATED = r"[^A-Z0-9, ]|  |^[ ,]|[ ,]$| ,|, |,,"

_CANONICAL_WORDS = [
    # Sub-unit designators -> "FLAT"; floor descriptions -> a flat id.
    (rf"\b{_SUBUNIT_WORDS}(?: (?:NO|NUMBER|NUM))?\b", "FLAT"),
    (r"\b(?:GROUND|GRD|GND) (?:FLOOR )?FLAT\b|\bGFF\b", "FLAT GF"),
    (r"\b(?:FIRST|1ST) (?:FLOOR )?FLAT\b|\bFFF\b", "FLAT 1F"),
    (r"\b(?:SECOND|2ND) (?:FLOOR )?FLAT\b|\bSFF\b", "FLAT 2F"),
    (r"\b(?:THIRD|3RD) (?:FLOOR )?FLAT\b", "FLAT 3F"),
    (r"\bTOP (?:FLOOR )?FLAT\b", "FLAT TOP"),
    (r"\b(?:BASEMENT|LOWER GROUND) (?:FLOOR )?FLAT\b", "FLAT BSMT"),
    (r"\bNO ([0-9])", r"\1"),  # "NO 12 MILL ROAD"
    # House letter: "12 A MILL ROAD" -> "12A MILL ROAD" (also "FLAT 3 A" -> "FLAT 3A").
    (r"\b([0-9]+) ([A-Z])\b", r"\1\2"),
    # "ST" opening a street name is SAINT ("12 ST JOHNS ROAD"); elsewhere it is STREET.
    (r"(^|,|[0-9][A-Z]? )ST ([A-Z])", r"\1SAINT \2"),
]
_SUBUNIT_OR_LETTER = "|".join(f"(?:{pattern})" for pattern, _ in _CANONICAL_WORDS)
# A word ``_map_words`` would replace (a superset: "\b" also parts "12-RD").
_ABBREVIATED = rf"\b(?:{'|'.join(_ABBREVIATIONS)})\b"


# The floor descriptions and "NO 12" rarely occur: after the sub-unit words, one match of
# their patterns together finds the values they can change (a value none of them matches
# is left as it is by each, one after another: only a change could make a later match).
_FLOORS_OR_NO = "|".join(f"(?:{pattern})" for pattern, _ in _CANONICAL_WORDS[1:8])


def _floors_or_no(s: pa.Array) -> pa.Array:
    for pattern, repl in _CANONICAL_WORDS[1:8]:
        s = _sub(s, pattern, repl)
    return s


def _canonical_words(s: pa.Array) -> pa.Array:
    s = _sub(s, *_CANONICAL_WORDS[0])
    s = _only_where(s, _FLOORS_OR_NO, _floors_or_no)
    for pattern, repl in _CANONICAL_WORDS[8:]:
        s = _sub(s, pattern, repl)
    return s


def _only_where(arr: pa.Array, pattern: str, fn) -> pa.Array:
    """``fn(arr)`` for an ``fn`` that leaves every value not matching ``pattern`` as it is:
    ``fn`` runs on the matching values alone."""
    hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    n_hit = pc.sum(hit).as_py() or 0
    if n_hit == 0:
        return arr
    if n_hit == len(arr):
        return fn(arr)
    return pc.replace_with_mask(arr, hit, fn(pc.filter(arr, hit)))


# Each step of ``_flat_and_numbers`` rewrites only texts holding one of these.
_FLAT_OR_NUMBERS = rf"FLAT|/|(?:^|,){_NUM},|[A-Z] {_NUM} [A-Z]"


_FLAT_DASH_NUMBER = r"\bFLAT ?([0-9]+[A-Z]?)-([0-9]+[A-Z]? [A-Z])"
# ... but a range of flats where the words after it name a building and the next part is
# its main street ("FLAT 5-6 MILL HOUSE,MILL ROAD"), as "3 OAK COURT,MILL ROAD" is flat 3.
_FLAT_DASH_BUILDING = _FLAT_DASH_NUMBER + rf"[^,]*{_BUILDINGISH_WORD},[^,]*{_MAIN_STREET_WORD}(?:,|$)"


def _flat_and_numbers(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The flat named in each canonical text, and the text without it, a number alone
    in its segment joined to the next, a number after words starting a new segment."""
    n = len(texts)
    # Flat: "FLAT 3", "FLAT 3A", "FLAT B", "FLAT GF". Only texts holding "FLAT" change.
    # A flat may be a range ("FLAT 5-6, MILL HOUSE", where the dash starts no house number:
    # below), taken whole (its end was left behind as a building "-6"); _parse makes an
    # ascending one its first flat (_first_of_a_range).
    flat_id = rf"(?:{_FLAT_ID}(?:-[0-9]+[A-Z]?)?|GF|TOP|BSMT)"
    flat = _empty(n)
    s = texts  # squashed: see _parse_distinct
    named = pc.match_substring(s, "FLAT")
    if pc.any(named).as_py():
        # "FLAT 12-14 MILL ROAD" (typed "Flat 12 - 14 Mill Rd"): flat 12 of number 14, as
        # "3/12" is below; the flat is not the start of a number range. Not where a later
        # part opens with a number ("FLAT 5-6 MILL HOUSE,12 MILL ROAD"): that is the house
        # number, and what follows the dash is not; nor where a building and then its main
        # street follow (_FLAT_DASH_BUILDING): "FLAT 5-6 MILL HOUSE,MILL ROAD" is flats 5-6.
        some = pc.filter(s, named)
        dashed = _bool(pc.match_substring_regex(some, _FLAT_DASH_NUMBER)) & \
            ~_bool(pc.match_substring_regex(some, _FLAT_DASH_NUMBER + ".*,[0-9]")) & \
            ~_bool(pc.match_substring_regex(some, _FLAT_DASH_BUILDING))
        if dashed.any():
            some = _where(dashed, _sub(some, _FLAT_DASH_NUMBER, r"FLAT \1 \2"), some)
        flat = pc.replace_with_mask(
            flat, named, _field(pc.extract_regex(some, rf"\bFLAT ?(?P<flat>{flat_id})\b"), "flat")
        )
        cut = _sub(some, rf"\bFLAT ?{flat_id}\b", "", max_replacements=1)
        bare = pc.match_substring(cut, "FLAT")  # a bare designator says nothing usable
        if pc.any(bare).as_py():
            cut = pc.replace_with_mask(cut, bare, _sub(pc.filter(cut, bare), r"\bFLAT\b", ""))
        cut = _squash_changed(some, cut)
        s = pc.replace_with_mask(s, named, cut)
    # "3/12 MILL ROAD": flat 3 of number 12 (only when no flat was named). Only texts
    # holding "/" change.
    slashed = pc.match_substring(s, "/")
    if pc.any(slashed).as_py():
        some, some_flat = pc.filter(s, slashed), pc.filter(flat, slashed)
        slash_flat = _field(pc.extract_regex(some, rf"\b(?P<f>[0-9]+[A-Z]?|[A-Z])/{_NUM}\b"), "f")
        use_slash = _bool(pc.equal(some_flat, "")) & _bool(pc.not_equal(slash_flat, ""))
        flat = pc.replace_with_mask(flat, slashed, _where(use_slash, slash_flat, some_flat))
        cut = _where(
            use_slash,
            _sub(some, rf"\b(?:[0-9]+[A-Z]?|[A-Z])/({_NUM})\b", r"\1", max_replacements=1),
            pc.replace_substring(some, "/", " "),
        )
        s = pc.replace_with_mask(s, slashed, _squash_changed(some, cut))
    # A segment holding only a number belongs to the next one: "12, MILL ROAD".
    s = _sub(s, rf"(^|,)({_NUM}),", r"\1\2 ")
    # A number after words starts a new part: "OAK COURT 12 MILL ROAD" (commas lost).
    s = _sub(s, rf"([A-Z]) ({_NUM} [A-Z])", r"\1,\2")
    return flat, s


# A segment opening with its house number ("12 MILL ROAD"), most numbered segments: its
# ``_NUMBERED`` match has no words before the number, the number runs to the first space
# (``_NUM`` holds none) and the rest follows it.
_NUMBER_FIRST_SEGMENT = rf"^{_NUM} [A-Z][^\n]*$"


def _numbered(texts: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array, pa.Array]:
    """Which ``texts`` match ``_NUMBERED``, and its ``pre``, ``num`` and ``rest`` ("" where
    there is none). A segment opening with its number is split at its first space; the
    regex extraction (the slow kind of match) runs only on the other texts with a digit."""
    n = len(texts)
    first = pc.fill_null(pc.match_substring_regex(texts, _NUMBER_FIRST_SEGMENT), False)
    other = pc.and_(pc.fill_null(pc.match_substring_regex(texts, "[0-9]"), False),
                    pc.invert(first))
    pre, num, rest = _empty(n), _empty(n), _empty(n)
    is_numbered = _bool(first)
    if is_numbered.any():
        split = pc.split_pattern(pc.filter(texts, first), " ", max_splits=1)
        num = pc.replace_with_mask(num, first, pc.list_element(split, 0))
        rest = pc.replace_with_mask(rest, first, pc.list_element(split, 1))
    if pc.any(other).as_py():
        found = pc.extract_regex(pc.filter(texts, other), _NUMBERED)
        pre, num, rest = (pc.replace_with_mask(part, other, _field(found, name))
                          for part, name in ((pre, "pre"), (num, "num"), (rest, "rest")))
        is_numbered[_bool(other)] = _bool(pc.is_valid(found))
    return is_numbered, pre, num, rest


def _parse(texts: pa.Array) -> dict[str, pa.Array]:
    """Parse canonical address texts (see ``_canonical_text``) into parts, with the
    communal name and the canonical one-line rendering (``address_text``)."""
    n = len(texts)
    # The flat, and the text without it, its numbers placed: only the texts matching one
    # of the patterns of ``_flat_and_numbers`` change there.
    flat, s = _empty(n), texts
    hit = pc.fill_null(pc.match_substring_regex(texts, _FLAT_OR_NUMBERS), False)
    if pc.any(hit).as_py():
        some_flat, some = _flat_and_numbers(pc.filter(texts, hit))
        flat = pc.replace_with_mask(flat, hit, some_flat)
        s = pc.replace_with_mask(s, hit, some)

    lists = pc.split_pattern(s, ",")
    # Segments repeat from address to address (street, district and town names), so the
    # distinct segment texts are matched once, and every part taken from a segment is
    # held as a code into ``pool`` (the segments and their numbered pieces) until the end:
    # choosing between candidate parts row by row is then integer work, and each kernel
    # that needs the text (street trim, county strip, communal names) runs once per
    # distinct value. Only as many segment columns as the widest text has are built: an
    # absent column is all "" and picks nothing the old fixed eight columns did not.
    lengths = np.asarray(pc.list_value_length(lists).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
    k = max(2, min(_MAX_SEGMENTS, int(lengths.max()) if n else 0))
    values = pc.list_flatten(lists)
    pos = np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    row = np.repeat(np.arange(n), lengths)
    if len(values) and pos.max() >= k:
        kept = np.flatnonzero(pos < k)
        values, pos, row = pc.take(values, pa.array(kept)), pos[kept], row[kept]
    encoded = pc.dictionary_encode(values)
    texts = pa.concat_arrays([encoded.dictionary, pa.array([""], pa.string())])
    width = len(texts)  # codes of segment texts: 0 .. width - 1; width - 1 is ""
    none = width - 1
    at = np.full((n, k), none, dtype=np.int64)  # at[i, j]: the code of row i's segment j
    at[row, pos] = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    is_numbered, pre, num, rest = _numbered(texts)
    # What follows a house number repeats far more than the numbered segments do ("MILL
    # ROAD" after every number): those texts are held once each (``rest_of`` a segment).
    rest = pc.dictionary_encode(rest)
    rests = rest.dictionary
    rest_of = np.asarray(rest.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    # House numbers lose leading zeros here, once per distinct segment ("007" -> "7").
    pool = pa.concat_arrays([
        texts, pre, _sub(num, r"^0+([0-9])", r"\1"),
        rests,
    ])
    SEG, PRE, NUM, REST = 0, width, 2 * width, 3 * width  # noqa: N806 (offsets into pool)
    pool_empty = _bool(pc.equal(pool, ""))

    def segment(index: np.ndarray) -> np.ndarray:
        """Row-wise code of segment ``index[i]``; outside gives the code of ""."""
        out = np.full(n, none, dtype=np.int64)
        rows = np.flatnonzero((index >= 0) & (index < k))
        out[rows] = at.ravel()[rows * k + index[rows]]
        return out

    def flags(values: np.ndarray) -> np.ndarray:  # (n, k): one column per segment
        return values[at]

    has_num = flags(is_numbered)
    nonempty = flags(~pool_empty[:width])
    street_typed = flags(_has(texts, _STREET_TYPED))
    building_worded = flags(_has(texts, _BUILDING_WORDED))
    main_street = flags(_has(texts, _MAIN_STREET))
    cols = np.arange(k)[None, :]

    no_flat = _bool(pc.equal(flat, ""))
    first_num = np.where(has_num.any(axis=1), has_num.argmax(axis=1), -1)
    any_num = first_num >= 0
    later = has_num & (cols > first_num[:, None])
    second_num = np.where(later.any(axis=1), later.argmax(axis=1), -1)
    first_seg, second_seg = segment(first_num), segment(second_num)
    rest_first = REST + rest_of[first_seg]
    rest_building = _has(rests, _BUILDING_WORDED) | _has(rests, _BUILDINGISH)
    rest_first_building = rest_building[rest_first - REST]
    nxt = np.where(any_num, first_num + 1, -1)
    next_plain_street = (
        _at(nonempty, nxt) & ~_at(has_num, nxt) & _at(main_street, nxt) & ~_at(building_worded, nxt)
    )
    # "3 OAK COURT, 12 MILL ROAD" -> flat 3 of the building OAK COURT at 12 MILL ROAD.
    case_a = any_num & (second_num >= 0) & rest_first_building & no_flat
    # "3 OAK COURT, MILL ROAD" -> flat 3 of the building OAK COURT on MILL ROAD.
    case_b = any_num & ~case_a & rest_first_building & next_plain_street & no_flat

    # Numbered address: building is the words before the number, else the segment before.
    num_first = NUM + first_seg
    building = PRE + first_seg
    building = np.where(
        any_num & pool_empty[building] & (first_num >= 1), SEG + segment(first_num - 1), building
    )
    flat_from_num = case_a | case_b
    if flat_from_num.any():
        flat = pc.replace_with_mask(
            flat, pa.array(flat_from_num), pc.take(pool, pa.array(num_first[flat_from_num]))
        )
    building = np.where(flat_from_num, rest_first, building)
    number = np.where(case_a, NUM + second_seg, np.where(case_b, NUM + none, num_first))
    street = np.where(
        case_a, REST + rest_of[second_seg], np.where(case_b, SEG + segment(nxt), rest_first)
    )
    street_seg = np.where(case_a, second_num, np.where(case_b, nxt, first_num))

    # No number anywhere: "ROSE COTTAGE, MILL LANE" or "OAK COURT, MILL ROAD".
    no_num = ~any_num
    seg0_street_only = street_typed[:, 0] & ~building_worded[:, 0]
    seg1_street = nonempty[:, 1] & street_typed[:, 1] & ~has_num[:, 1]
    only_street = seg0_street_only & ~seg1_street  # "MILL LANE, WALSALL": no building at all
    seg0, seg1 = SEG + at[:, 0], SEG + at[:, 1]
    building = np.where(no_num, np.where(only_street, none, seg0), building)
    street = np.where(
        no_num, np.where(only_street, seg0, np.where(seg1_street, seg1, none)), street
    )
    street_seg = np.where(no_num, np.where(seg1_street & ~only_street, 1, 0), street_seg)

    # A one-line address: keep the street up to its type word; the rest is a place name.
    streets, street_at = _distinct_codes(street, len(pool))
    street_texts = pc.take(pool, pa.array(streets))
    trim = pc.extract_regex(street_texts, _STREET_TRIM)
    trimmed = _field(trim, "st")
    spill = _field(trim, "loc")  # per distinct street
    street_texts = _where(_bool(pc.not_equal(trimmed, "")), trimmed, street_texts)
    has_spill = ~_bool(pc.equal(spill, ""))[street_at]

    # Places after the street: the last one that is not a county is the town.
    after = (cols > street_seg[:, None]) & nonempty
    county = flags(_has(texts, _COUNTY))
    town_mask = after & ~county
    last_town = np.where(town_mask.any(axis=1), k - 1 - town_mask[:, ::-1].argmax(axis=1), -1)
    town_seg = SEG + segment(last_town)
    loc_mask = town_mask & (cols != last_town[:, None])
    use_spill = pool_empty[town_seg] & has_spill
    towns, town_at = _distinct_codes(town_seg, width)

    def county_stripped(places: pa.Array) -> pa.Array:
        return pc.utf8_trim(_sub(places, rf"(?: (?:{'|'.join(COUNTIES)}))+$", ""), " ")

    # Every output part is taken from ``final`` by code.
    pieces = [pool, street_texts, spill, county_stripped(spill),
              county_stripped(pc.take(texts, pa.array(towns)))]
    STREET, SPILL, SPILL_TOWN, SEG_TOWN = np.cumsum([len(p) for p in pieces])[:-1]  # noqa: N806
    final = pa.concat_arrays(pieces)
    final_empty = _bool(pc.equal(final, ""))
    town = np.where(use_spill, SPILL_TOWN + street_at, SEG_TOWN + town_at)
    # The locality: the spill (when it is not the town), then the other places.
    loc_codes = np.concatenate([(SPILL + street_at)[:, None], SEG + at], axis=1)
    loc_keep = np.concatenate([(has_spill & ~use_spill)[:, None], loc_mask], axis=1)

    named = pc.not_equal(flat, "")  # most texts name no flat
    if pc.any(named).as_py():
        flat = pc.replace_with_mask(flat, named, _first_of_a_range(_sub(
            pc.replace_substring(pc.filter(flat, named), " ", ""), r"^0+([0-9])", r"\1"
        )))
    parts = {
        "flat": flat,
        "number": pc.take(final, pa.array(number)),
        "building": pc.take(final, pa.array(building)),
        "street": pc.take(final, pa.array(STREET + street_at)),
        "locality": _join_codes(final, loc_codes, loc_keep, ", "),
        "town": pc.take(final, pa.array(town)),
    }

    # Communal names are looked for in the building and place names, not the street:
    # "7 Hostel Lane" is an ordinary house. No label's pattern can match across the ", "
    # between two names, so the names are checked once per distinct value first.
    named_codes = np.concatenate([building[:, None], loc_codes], axis=1)
    named_keep = np.concatenate([~final_empty[building][:, None], loc_keep], axis=1)
    names, _ = _distinct_codes(named_codes[named_keep], len(final))
    communal_name = np.zeros(len(final), dtype=bool)
    communal_name[names] = _has(pc.take(final, pa.array(names)), _ANY_COMMUNAL)
    named_keep[named_keep] = communal_name[named_codes[named_keep]]
    communal_row = named_keep.any(axis=1)
    communal = _empty(n)
    if communal_row.any():
        hit = pa.array(communal_row)
        named = pc.binary_join_element_wise(
            pc.filter(parts["building"], hit), pc.filter(parts["locality"], hit), ", "
        )
        communal = pc.replace_with_mask(communal, hit, _communal_names(named))

    # A canonical one-line rendering: the non-empty parts joined by ", " (the locality's
    # own places in place of the locality).
    flat_text = _where(
        _bool(pc.not_equal(flat, "")), pc.binary_join_element_wise("FLAT", flat, " "), _empty(n)
    )
    number_street = pc.utf8_trim(
        pc.binary_join_element_wise(parts["number"], parts["street"], " "), " "
    )
    text_pool = pa.concat_arrays([final, flat_text, number_street])
    rows = np.arange(n)
    text_codes = np.concatenate(
        [(len(final) + rows)[:, None], building[:, None], (len(final) + n + rows)[:, None],
         loc_codes, town[:, None]], axis=1)
    text_keep = np.concatenate(
        [_bool(pc.not_equal(flat_text, ""))[:, None], ~final_empty[building][:, None],
         _bool(pc.not_equal(number_street, ""))[:, None], loc_keep,
         ~final_empty[town][:, None]], axis=1)
    # Where the house number opening the text went (``_lead_numbers``): only into the flat
    # or the number, when the first segment is the first numbered one. Such a text's
    # rendering is then its head, the number and its tail: the rendering made with a
    # marker in place of the number ("#", which no canonical text holds), cut there.
    lead = any_num & (first_num == 0)
    head, tail = _empty(n), _empty(n)
    if lead.any():
        at_lead = np.flatnonzero(lead)
        some = pa.array(at_lead)
        some_street = pc.take(parts["street"], some)
        marked_flat = _where(flat_from_num[at_lead], pa.scalar("FLAT #"),
                             pc.take(flat_text, some))
        marked_number = _where(
            flat_from_num[at_lead], pc.take(number_street, some),
            pc.utf8_trim(pc.binary_join_element_wise("#", some_street, " "), " "),
        )
        marked_pool = pa.concat_arrays([final, marked_flat, marked_number])
        m = len(at_lead)
        marked_codes = text_codes[at_lead]
        marked_codes[:, 0] = len(final) + np.arange(m)
        marked_codes[:, 2] = len(final) + m + np.arange(m)
        cut = pc.split_pattern(
            _join_codes(marked_pool, marked_codes, text_keep[at_lead], ", "), "#", max_splits=1)
        lead_mask = pa.array(lead)
        head = pc.replace_with_mask(head, lead_mask, pc.list_element(cut, 0))
        tail = pc.replace_with_mask(tail, lead_mask, pc.list_element(cut, 1))
    return {
        **parts,
        "communal_name": communal,
        "address_text": _join_codes(text_pool, text_codes, text_keep, ", "),
        "lead_safe": lead,
        "lead_flat": lead & flat_from_num,
        "lead_number": lead & ~flat_from_num,
        "lead_head": head,
        "lead_tail": tail,
    }


def _first_of_a_range(flats: pa.Array) -> pa.Array:
    """An ascending range of flats ("5-6", "5-06", "5A-5B", "5A-6": flats knocked together,
    or a clerk's slip) as its first flat, "5" or "5A", so that it is the dwelling of "Flat
    5": keeping a parent at "Flat 5-6" apart from a child at "Flat 5" could hide one from
    the other. Any other flat as it is: "2-1" (floor 2, flat 1, say) is not a range, and
    "2-1" and "2-3" must not become one flat."""
    ends = pc.extract_regex(flats, r"^(?P<n1>[0-9]{1,9})(?P<l1>[A-Z]?)-(?P<n2>[0-9]{1,9})(?P<l2>[A-Z]?)$")
    hit = pc.is_valid(ends)
    if not pc.any(hit).as_py():
        return flats
    ends = pc.filter(ends, hit)
    n1, l1, n2, l2 = (_field(ends, name) for name in ("n1", "l1", "n2", "l2"))
    n1, n2 = pc.cast(n1, pa.int64()), pc.cast(n2, pa.int64())
    ascending = pc.or_(pc.less(n1, n2), pc.and_(pc.equal(n1, n2), pc.less(l1, l2)))
    first = pc.binary_join_element_wise(_field(ends, "n1"), l1, "")
    return pc.replace_with_mask(flats, hit, pc.if_else(ascending, first, pc.filter(flats, hit)))


def _distinct_codes(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``codes`` (all in 0 .. size - 1), ascending, and where
    each code is among them."""
    used = np.zeros(size, dtype=bool)
    used[codes] = True
    distinct = np.flatnonzero(used)
    where = np.cumsum(used) - 1
    return distinct, where[codes]


def _join_codes(pool: pa.Array, codes: np.ndarray, keep: np.ndarray, sep: str) -> pa.Array:
    """Row-wise join with ``sep`` of ``pool[codes[i, j]]`` for the ``j`` where ``keep[i, j]``."""
    n = codes.shape[0]
    values = pc.take(pool, pa.array(codes[keep]))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), sep)


def _parse_distinct(text: pa.Array) -> dict[str, pa.Array]:
    """Parse distinct canonical texts (canonical lines joined by commas)."""
    n = len(text)
    # A postcode typed into an address line is taken out of the text, and used when the
    # postcode field itself is missing or invalid.
    # The text is squashed (``_joined_codes``' output): only texts holding one change here.
    hit = pc.fill_null(pc.match_substring_regex(text, _POSTCODE_IN_TEXT), False)
    pc_text = _empty(n)
    # Validated here, once per distinct text, rather than once per record.
    pc_text_valid = pa.array(np.zeros(n, dtype=bool))
    if pc.any(hit).as_py():
        holding = pc.filter(text, hit)
        found = _postcode_field(_field(pc.extract_regex(holding, rf"(?P<pc>{_POSTCODE_IN_TEXT})"), "pc"))
        pc_text = pc.replace_with_mask(pc_text, hit, found["cleaned"])
        pc_text_valid = pc.replace_with_mask(pc_text_valid, hit, found["valid"])
        text = pc.replace_with_mask(
            text, hit, _squash(pc.replace_substring_regex(holding, _POSTCODE_IN_TEXT, ""))
        )
    return {**_parse(text), "pc_text": pc_text, "pc_text_valid": pc_text_valid}


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


_CHUNK = 100_000  # distinct values per task; pyarrow releases the GIL, so threads help (smaller
# chunks were slower: many short calls make the threads queue for the GIL)
# A line that only names a county says nothing about the home.
_COUNTY_SEGMENT = rf"(^|,)(?:{'|'.join(COUNTIES)})(,|$)"


def _slices(values, size: int = _CHUNK) -> list:
    """``values`` in slices of about ``size``, as many as a multiple of the worker count
    and of equal length, so that no thread is left with the last slice alone."""
    n = len(values)
    workers = os.cpu_count() or 1
    count = -(-max(n, 1) // size)
    count = -(-count // workers) * workers if count > 1 else 1
    step = -(-max(n, 1) // count)
    return [values[i:i + step] for i in range(0, n, step)] or [values]


def _pool_map(fn, chunks: list) -> list:
    """``fn`` over ``chunks``, on a thread pool when there are several."""
    if len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
            return list(pool.map(fn, chunks))
    return [fn(chunk) for chunk in chunks]


def _joined_text(lines: list[pa.Array]) -> pa.Array:
    """Canonical lines joined by commas, county-only segments dropped (row by row)."""
    n = len(lines[0])
    pool = pa.concat_arrays([*lines, _empty(1)])
    rows = np.arange(n)[:, None] + n * np.arange(len(lines))[None, :]
    return _joined_codes(pool, rows, _bool(pc.not_equal(pool, ""))[rows], *_line_flags(pool))


def _line_flags(lines: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Which lines are a county alone, and which hold a comma (``_joined_codes``)."""
    return _has(lines, _COUNTY), _bool(pc.match_substring(lines, ","))


def _canonical_lines(values: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Canonical lines, which are non-empty, and their ``_line_flags``."""
    lines = _canonical_text(values)
    return lines, _bool(pc.not_equal(lines, "")), *_line_flags(lines)


# A line opening with a house number: "12 Mill Rd", "20b Station Lane". ``_canonical_text``
# treats those digits alike whatever they are (each pattern sees a run of digits, at most
# one letter, spaces and a letter; no pattern names a digit there and the run is never
# rewritten), so such a line's canonical text is its digits, then the canonical text of
# "0" and the rest of the line after its "0". The rests ("b Station Lane") repeat: each
# distinct one is canonicalised once (~45k at 1M against ~400k such lines).
_NUMBER_AND_REST = r"(?s)^(?P<d>[0-9]+)(?P<r>[A-Za-z]? +[A-Za-z].*)$"


def _all_canonical_lines(values: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """``_canonical_lines`` of ``values`` on the thread pool, the lines opening with a
    house number canonicalised once per distinct rest of the line.

    Every step runs on the pool, slice by slice: the split of each line into its digits
    and rest; the distinct rests found and canonicalised in parts shared out by their
    length (equal rests meet in one part), alongside the other lines' canonicalisation;
    each slice's lines put together from those, with their flags."""
    if not len(values):
        return _canonical_lines(values)
    slices = _slices(values)

    def split_some(some: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        split = pc.extract_regex(some, _NUMBER_AND_REST)
        mask = pc.is_valid(split)
        split = pc.filter(split, mask)
        return (mask, pc.struct_field(split, "d"), pc.struct_field(split, "r"),
                pc.filter(some, pc.invert(mask)))

    splits = _pool_map(split_some, slices)
    numbered = sum(len(d) for _, d, _, _ in splits)
    if numbered * 4 < len(values):  # too few to be worth it
        canonical = _pool_map(_canonical_lines, slices)
        return (pa.concat_arrays([c[0] for c in canonical]),
                *(np.concatenate([c[i] for c in canonical]) for i in (1, 2, 3)))
    rests = pa.concat_arrays([r for _, _, r, _ in splits])
    count = len(_slices(rests))
    part = np.asarray(pc.binary_length(rests).to_numpy()) % count
    members = [np.flatnonzero(part == p) for p in range(count)]

    def canonical_some(task: tuple[str, object]):
        kind, what = task
        if kind == "other":
            return _canonical_text(what)
        encoded = pc.dictionary_encode(pc.take(rests, pa.array(what)))
        done = _canonical_text(pc.binary_join_element_wise("0", encoded.dictionary, ""))
        return pc.utf8_slice_codeunits(done, 1), np.asarray(encoded.indices.to_numpy(),
                                                            dtype=np.int64)

    done = _pool_map(canonical_some, [("rest", rows) for rows in members]
                     + [("other", other) for _, _, _, other in splits])
    parted, others = done[:count], done[count:]
    tails = pa.concat_arrays([tail for tail, _ in parted])
    rest_at = np.empty(len(rests), dtype=np.int64)
    low = 0
    for rows, (tail, where) in zip(members, parted):
        rest_at[rows] = low + where
        low += len(tail)
    rest_low = np.cumsum([0] + [len(d) for _, d, _, _ in splits])

    def lines_some(i: int) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
        mask, digits, _, _ = splits[i]
        lines = pc.replace_with_mask(
            pc.replace_with_mask(_empty(len(mask)), pc.invert(mask), others[i]),
            mask,
            pc.binary_join_element_wise(
                digits, pc.take(tails, pa.array(rest_at[rest_low[i]:rest_low[i + 1]])), ""),
        )
        return lines, _bool(pc.not_equal(lines, "")), *_line_flags(lines)

    made = _pool_map(lines_some, list(range(len(slices))))
    return (pa.concat_arrays([m[0] for m in made]),
            *(np.concatenate([m[i] for m in made]) for i in (1, 2, 3)))


def _joined_codes(lines: pa.Array, codes: np.ndarray, keep: np.ndarray,
                  lines_county: np.ndarray, lines_comma: np.ndarray) -> pa.Array:
    """Row-wise comma-join of the lines ``lines[codes[i, j]]`` where ``keep[i, j]`` (the
    non-empty ones), county-only segments dropped.

    The lines are ``_squash`` outputs (no double spaces or commas, no space beside a
    comma, nothing to trim), so squashing their comma-join only drops the empty ones:
    the non-empty lines are joined as a list instead. Where no kept line holds a comma,
    the segments are the lines, and a county line is left out of the list. It is left out
    as the global replace of ``_COUNTY_SEGMENT`` would drop it: a county segment is
    dropped unless the segment before it was (that match took the comma between them).
    The other rows are joined, then go through that replace (``_county_dropped``)."""
    plain = ~(keep & lines_comma[codes]).any(axis=1)
    keep = keep.copy()
    before_dropped = np.zeros(len(codes), dtype=bool)
    for j in range(codes.shape[1]):
        dropped = keep[:, j] & lines_county[codes[:, j]] & ~before_dropped
        before_dropped = np.where(keep[:, j], dropped, before_dropped)
        keep[:, j] &= ~(dropped & plain)
    text = _join_codes(lines, codes, keep, ",")
    if plain.all():
        return text
    mixed = pa.array(~plain)
    return pc.replace_with_mask(text, mixed, _county_dropped(pc.filter(text, mixed)))


def _county_dropped(text: pa.Array) -> pa.Array:
    """County-only segments dropped from comma-joined canonical lines. Such a join is
    itself squashed, so only the texts that lose a county segment are squashed again."""
    hit = pc.fill_null(pc.match_substring_regex(text, _COUNTY_SEGMENT), False)
    if not pc.any(hit).as_py():
        return text
    dropped = _squash(pc.replace_substring_regex(pc.filter(text, hit), _COUNTY_SEGMENT, r"\1\2"))
    return pc.replace_with_mask(text, hit, dropped)


def _row_groups(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by their tuple of codes (``codes[j]`` in 0 .. ``sizes[j]`` - 1): the
    group of each row and the first row of each group."""
    n = len(codes[0])
    # The key is unsigned: at 1M the five lines' sizes multiply to ~1.5e19, under 2**64,
    # so one sort renumbers the groups (a signed key needed a second one part way).
    key, span = None, 1
    for values, size in zip(codes, sizes):
        values = values.astype(np.uint64, copy=False)
        if key is None:
            key, span = values, size
            continue
        if span * size > 2**64:  # renumber the groups so far densely before they overflow
            key = _dense(key).astype(np.uint64)
            span = int(key.max()) + 1 if n else 1
        key, span = key * np.uint64(size) + values, span * size
    # The keys are split at a pivot (a sampled median) and each side renumbered on the
    # pool: the groups below the pivot come first, so the numbering is that of one
    # renumbering of all the keys.
    workers = os.cpu_count() or 1
    # Only for large inputs (4 chunks, 400k rows): below that one renumbering costs less
    # than the sample, the split and the pool's hand-over (tests force it on tiny inputs).
    if workers > 1 and n >= 4 * _CHUNK:
        sample = np.sort(key[::997])
        pivot = sample[len(sample) // 2]
        below = key < pivot
        sides = [np.flatnonzero(below), np.flatnonzero(~below)]
    else:
        sides = [np.arange(n)]

    def side_groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        group = _dense(key[rows])
        first = np.empty(int(group.max()) + 1 if len(rows) else 0, dtype=np.int64)
        first[group[::-1]] = rows[::-1]  # the last write, the smallest row, wins
        return group, first

    done = _pool_map(side_groups, sides)
    if len(sides) == 1:
        return done[0]
    group = np.empty(n, dtype=np.int64)
    group[sides[0]] = done[0][0]
    group[sides[1]] = done[1][0] + len(done[0][1])
    return group, np.concatenate([done[0][1], done[1][1]])


def _dense(key: np.ndarray) -> np.ndarray:
    """Integer keys renumbered 0, 1, ... in ascending order of key."""
    return np.unique(key, return_inverse=True)[1].astype(np.int64, copy=False)


def _postcode_field(values: pa.Array) -> dict[str, pa.Array]:
    """Postcode text cleaned (upper case, letters and digits only, a space before the inward
    code) and whether it is a valid UK postcode."""
    cleaned = _clean_postcode_text(values)
    return {"cleaned": cleaned,
            "valid": pc.fill_null(pc.match_substring_regex(cleaned, POSTCODE_RE), False)}


def _distinct_apply(values: pa.Array, fn) -> tuple[list, np.ndarray]:
    """``fn`` once per distinct value, in chunks on a thread pool: the results per chunk
    and, for each value, the position of its result among them.

    The values are shared out by their length in bytes (equal values have equal lengths,
    so each distinct value lands in one part alone), and each part finds its distinct
    values on the pool: no serial hashing of every value first."""
    count = len(_slices(values))
    if count == 1:
        encoded = pc.dictionary_encode(values)
        return [fn(encoded.dictionary)], np.asarray(encoded.indices.to_numpy(), dtype=np.int64)
    part = np.asarray(pc.binary_length(values).to_numpy(zero_copy_only=False)) % count
    members = [np.flatnonzero(part == p) for p in range(count)]

    def apply(rows: np.ndarray):
        encoded = pc.dictionary_encode(pc.take(values, pa.array(rows)))
        uniq = encoded.dictionary
        return fn(uniq), np.asarray(encoded.indices.to_numpy(), dtype=np.int64), len(uniq)

    done = _pool_map(apply, members)
    at = np.empty(len(values), dtype=np.int64)
    low = 0
    for rows, (_, where, size) in zip(members, done):
        at[rows] = low + where
        low += size
    return [result for result, _, _ in done], at


# A text opening with a house number (no leading zero; at most one letter) then a word.
# Parsing treats those digits alike whatever they are: no pattern names a digit there and
# the run is never rewritten, so "0" in their place gives the same parts, except where
# the number itself is taken, which ``_parse`` tells (``lead_*``).
# The digits, then what follows them, in one group.
_LEAD_NUMBER = r"^[1-9][0-9]*([A-Z]? [A-Z])"
# A first line opening with a house number (``_lead_lines``): as above, or the number alone
# ("104", then "GLADSTONE STREET" on the next line). Its text then opens with "104,", which
# the parse joins to the next segment ("104 GLADSTONE STREET") before anything else looks
# at it; a text whose number the parse takes elsewhere is parsed as it is (``lead_safe``).
_LEAD_LINE = r"^[1-9][0-9]*([A-Z]? [A-Z]|[A-Z]?$)"


def _lead_numbers(text: pa.Array, pattern: str | None = None,
                  ) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Which texts open with a house number (``pattern``, by default ``_LEAD_NUMBER``),
    their first word (the number with its letter, "12A"), and the texts with "0" in
    place of its digits."""
    pattern = _LEAD_NUMBER if pattern is None else pattern

    def some_lead(some: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
        # The texts the replace changes are those it matches (its digits never open
        # with "0"): found with a match, which costs less than rewriting every text (most
        # texts of rows are zeroed already, by their first line).
        hit = pc.fill_null(pc.match_substring_regex(some, pattern), False)
        lead = _bool(hit)
        if not lead.any():
            return lead, _empty(0), some
        # The pattern's digits are the text's whole leading run of digits (a letter, a
        # space or the end follows them), so "0" in their place is "0" joined to the
        # text with its leading digits trimmed: no regex rewrite.
        mine = pc.filter(some, hit)
        zeroed = pc.replace_with_mask(some, hit, pc.binary_join_element_wise(
            "0", pc.utf8_ltrim(mine, "0123456789"), ""))
        split = pc.split_pattern(mine, " ", max_splits=1)
        return lead, pc.list_element(split, 0), zeroed

    done = _pool_map(some_lead, _slices(text))
    return (np.concatenate([d[0] for d in done]), pa.concat_arrays([d[1] for d in done]),
            pa.concat_arrays([d[2] for d in done]))


def _lead_lines(lines: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array, np.ndarray]:
    """Which distinct canonical ``lines`` open with a house number (``_LEAD_LINE``), their
    first words (one per such line, in order), the distinct lines with "0" in place of its
    digits, and for each such line the position of its zeroed line among those."""
    lead, token, zeroed = _lead_numbers(lines, _LEAD_LINE)
    if not lead.any():
        return lead, token, _empty(0), np.zeros(0, dtype=np.int64)
    encoded = pc.dictionary_encode(pc.filter(zeroed, pa.array(lead)))
    return (lead, token, encoded.dictionary,
            np.asarray(encoded.indices.to_numpy(), dtype=np.int64))


# A text opening with a flat numbered by digits (no leading zero, as the parse strips a
# flat's leading zeros: "FLAT 08" gives flat "8", which putting "08" back would not; at
# most one letter),
# then a comma, a space or its end: "FLAT 8,41 MILL ROAD", "FLAT 12A,OAK COURT". The
# parse takes those digits as the flat, and nothing else there looks at them: the typed-in
# postcode pattern cannot reach them (a word, "FLAT", stands before them), the flat
# pattern matches there whatever the digits, and the cut removes them with "FLAT". So "0"
# in their place gives the same parts, except that the flat (and the rendering, which
# opens with "FLAT " and the flat) then has "0" in place of the digits.
_LEAD_FLAT = r"^FLAT [1-9][0-9]*(?:[A-Z]?(?:,| |$))"


def _flat_numbers(text: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Which texts open with a numbered flat (``_LEAD_FLAT``), the flat's digits (one per
    such text, in order), and the texts with "0" in place of those digits."""

    def some_flat(some: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
        hit = pc.fill_null(pc.match_substring_regex(some, _LEAD_FLAT), False)
        lead = _bool(hit)
        if not lead.any():
            return lead, _empty(0), some
        after = pc.utf8_slice_codeunits(pc.filter(some, hit), 5)  # the digits onwards
        rest = pc.utf8_ltrim(after, "0123456789")
        digits = _field(pc.extract_regex(after, r"^(?P<d>[0-9]+)"), "d")
        zeroed = pc.replace_with_mask(some, hit, pc.binary_join_element_wise("FLAT 0", rest, ""))
        return lead, digits, zeroed

    done = _pool_map(some_flat, _slices(text))
    return (np.concatenate([d[0] for d in done]), pa.concat_arrays([d[1] for d in done]),
            pa.concat_arrays([d[2] for d in done]))


def _flat_parts(name: str, parsed: pa.Array, digits: pa.Array) -> pa.Array:
    """The flat (``name`` "flat") or ``address_text`` of texts opening with a numbered flat
    from ``parsed``, that of the text with "0" in place of its ``digits``: the flat opens
    with that "0", and the rendering with "FLAT 0"."""
    if name == "flat":
        return pc.binary_join_element_wise(digits, pc.utf8_slice_codeunits(parsed, 1), "")
    return pc.binary_join_element_wise("FLAT ", digits, pc.utf8_slice_codeunits(parsed, 6), "")


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
    # Each line as codes into ``lines``: every line's distinct values canonicalised, all
    # lines' values together in chunks on the thread pool, then "".
    present = [c for c in ADDRESS_LINES if c in patients.columns]
    postcode_raw = _to_arrow(patients["postcode"]) if "postcode" in patients.columns else _empty(n)

    def first_pass(c: str):  # the postcode field alongside the lines' encoding
        if c == "postcode":  # once per distinct value
            encoded = pc.dictionary_encode(postcode_raw)
            return {k: pc.take(v, encoded.indices)
                    for k, v in _postcode_field(encoded.dictionary).items()}
        encoded = pc.dictionary_encode(_to_arrow(patients[c]))  # and its codes as int64
        return encoded.dictionary, np.asarray(encoded.indices.to_numpy(), dtype=np.int64)

    *encoded, field = _pool_map(first_pass, [*present, "postcode"])
    codes = [code for _, code in encoded]
    sizes = [len(dictionary) for dictionary, _ in encoded]
    every = pa.concat_arrays([dictionary for dictionary, _ in encoded]) if encoded else _empty(0)
    canonical, *flags = _all_canonical_lines(every)
    # First lines opening with a house number ("12 MILL ROAD"), ~400k distinct at 1M, are
    # held with "0" in its place: the rows' texts then open with that "0", so rows that
    # differ only in that number share one group, one joined text and one parse, and
    # each row's number (its line's first word) is put back at the end.
    # That joined text is the row's own text with its number zeroed, as ``_lead_numbers``
    # would make it: the line opens the text (a numbered line is never a county), and the
    # join and the county drop never touch a segment's leading digits.
    size0 = sizes[0] if codes else 0
    line_lead, line_token, zero_lines, zero_at = _lead_lines(canonical[:size0])
    lines = pa.concat_arrays([canonical, zero_lines, _empty(1)])
    zero_flags = (np.ones(len(zero_lines), dtype=bool), *_line_flags(zero_lines))
    flags = tuple(np.concatenate([f, z, [False]]) for f, z in zip(flags, zero_flags))
    group_codes, group_sizes, pool_of = list(codes), list(sizes), [np.arange(s) for s in sizes]
    row_lead = np.zeros(n, dtype=bool)
    if line_lead.any():
        # The first line's group code: the lines kept as they are, then the zeroed lines.
        kept = np.flatnonzero(~line_lead)
        code_of = np.empty(size0, dtype=np.int64)
        code_of[kept] = np.arange(len(kept))
        code_of[line_lead] = len(kept) + zero_at
        group_codes[0] = code_of[codes[0]]
        group_sizes[0] = len(kept) + len(zero_lines)
        pool_of[0] = np.concatenate([kept, len(canonical) + np.arange(len(zero_lines))])
        row_lead = line_lead[codes[0]]
    # Rows with the same lines share one joined text: each is joined once, then each
    # distinct text parsed once.
    group, first = _row_groups(group_codes or [np.zeros(n, dtype=np.int64)], group_sizes or [1])
    tuples = np.full((len(first), len(ADDRESS_LINES)), len(lines) - 1, dtype=np.int64)
    lows = np.cumsum([0, *sizes])

    def fill(j: int) -> None:  # each line's column of the groups' tuples, on the pool
        tuples[:, j] = lows[j] + pool_of[j][group_codes[j][first]]

    _pool_map(fill, list(range(len(group_codes))))
    nonempty, flags = flags[0], flags[1:]
    keep = nonempty[tuples]
    text = pa.concat_arrays(_pool_map(
        lambda rows: _joined_codes(lines, tuples[rows], keep[rows], *flags),
        _slices(np.arange(len(tuples)), 4 * _CHUNK),
    ))
    # Other texts opening with a house number are parsed with "0" in its place too: "12
    # MILL ROAD,WALSALL" and "14 MILL ROAD,WALSALL" are parsed once (``_lead_numbers``).
    text_lead, text_token, zeroed = _lead_numbers(text)
    # Texts opening with a flat numbered by digits ("FLAT 8,41 MILL ROAD") are parsed with
    # "0" in place of those digits too, and each row's digits put back (``_flat_numbers``).
    flat_lead, flat_digits, flat_zeroed = _flat_numbers(zeroed)
    results, text_at = _distinct_apply(flat_zeroed, _parse_distinct)
    at = text_at[group]
    lead = row_lead | text_lead[group]
    if lead.any():
        tokens = pa.concat_arrays([line_token, text_token])
        token_at = np.where(
            row_lead,
            (np.cumsum(line_lead) - 1)[codes[0]] if size0 else 0,
            len(line_token) + (np.cumsum(text_lead) - 1)[group],
        )
        lead_safe = np.concatenate([r["lead_safe"] for r in results])[at]
        unsafe = lead & ~lead_safe  # the number went elsewhere: parsed as it is
        if unsafe.any():
            rows = np.flatnonzero(unsafe)
            digits = _field(pc.extract_regex(pc.take(tokens, pa.array(token_at[rows])),
                                             r"^(?P<d>[0-9]+)"), "d")
            whole = pc.binary_join_element_wise(
                digits, pc.utf8_slice_codeunits(pc.take(zeroed, pa.array(group[rows])), 1), "")
            again, again_at = _distinct_apply(whole, _parse_distinct)
            at[rows] = sum(len(r["lead_safe"]) for r in results) + again_at
            results = results + again
            lead = lead & lead_safe
    text_valid = _bool(pa.concat_arrays([r["pc_text_valid"] for r in results]))[at]
    pc_field = field["cleaned"]
    field_valid = _bool(field["valid"])
    from_lines = ~field_valid & text_valid
    # Every output column is one take per row from a pool of texts: the parses' parts,
    # then those of the texts that opened with a numbered flat (their digits put back,
    # ``_flat_parts``), then the rows' own house numbers (``tokens``) or, for the
    # rendering, the texts of the rows that opened with one. The pools are large strings,
    # the storage of the frame's columns, so the takes are the columns as they are.
    parsed_count = sum(len(r["flat"]) for r in results)
    # The lead rows' flat or number is their own house number, and their text is their
    # parse's head, that number and its tail; the others' are taken as parsed.
    lead_flat = lead & np.concatenate([r["lead_flat"] for r in results])[at]
    lead_number = lead & np.concatenate([r["lead_number"] for r in results])[at]
    # The rows whose text opened with a numbered flat take their flat and rendering from
    # those of their text's parse with the text's own digits put back (``_flat_parts``),
    # made once per such text after the others.
    row_flat = flat_lead[group]
    put_count = int(flat_lead.sum())
    at_flat = np.where(row_flat, parsed_count + (np.cumsum(flat_lead) - 1)[group], at) \
        if put_count else at
    flat_at = pa.array(text_at[flat_lead])
    lead_rows = pa.array(np.flatnonzero(lead))
    at_arrow = pa.array(at)
    if lead.any():  # tokens and token_at exist then (above); own rows below are lead rows
        heads, tails = (pa.concat_arrays([r[k] for r in results])
                        for k in ("lead_head", "lead_tail"))
        token_arrow = pa.array(token_at)

    def column(k: str) -> pa.Array:
        pool = pa.concat_arrays([r[k] for r in results])
        if k in ("flat", "address_text") and put_count:
            pool = pa.concat_arrays([pool, _flat_parts(k, pc.take(pool, flat_at), flat_digits)])
        codes = at_flat if k in ("flat", "address_text") else at
        own = {"flat": lead_flat, "number": lead_number, "address_text": lead}.get(k)
        if own is not None and own.any():  # own rows are lead rows: tokens, heads ... exist
            if k == "address_text":
                rows_at = pc.take(at_arrow, lead_rows)
                pool = pa.concat_arrays([pool, pc.binary_join_element_wise(
                    pc.take(heads, rows_at), pc.take(tokens, pc.take(token_arrow, lead_rows)),
                    pc.take(tails, rows_at), "")])
                codes = np.where(lead, len(pool) - len(lead_rows) + np.cumsum(lead) - 1, codes)
            else:
                codes = np.where(own, len(pool) + token_at, codes)
                pool = pa.concat_arrays([pool, tokens])
        return pc.take(pool.cast(pa.large_string()), pa.array(codes))

    def postcode_column(k: str) -> pa.Array:
        if k == "postcode_text":
            return pc_field.cast(pa.large_string())
        postcode = _where(field_valid, pc_field, _empty(n))
        if from_lines.any():  # the postcode typed in a line, where the field's is unusable
            rows = pa.array(from_lines)
            pc_text = pa.concat_arrays([r["pc_text"] for r in results])
            postcode = pc.replace_with_mask(postcode, rows,
                                            pc.take(pc_text, pc.filter(at_arrow, rows)))
        return postcode.cast(pa.large_string())

    names = ["address_text", "flat", "number", "building", "street", "locality", "town",
             "communal_name", "postcode", "postcode_text"]
    parts = dict(zip(names, _pool_map(
        lambda k: postcode_column(k) if k.startswith("postcode") else column(k), names)))
    key_parts = [parts["flat"], parts["number"], parts["building"], parts["street"],
                 parts["postcode"]]
    key = pa.concat_arrays(_pool_map(
        lambda rows: pc.binary_join_element_wise(*[p[rows.start:rows.stop] for p in key_parts],
                                                 pa.scalar("|", pa.large_string())),
        _slices(range(n), 4 * _CHUNK),
    ))
    index = patients.index
    out = {name: _series(parts[name], index) for name in
           ["flat", "number", "building", "street", "locality", "town", "postcode"]}
    out["postcode_valid"] = pd.Series(field_valid | text_valid, index=index, dtype=bool)
    out["postcode_from_lines"] = pd.Series(from_lines, index=index, dtype=bool)
    out["postcode_text"] = _series(parts["postcode_text"], index)
    out["communal_name"] = _series(parts["communal_name"], index)
    out["address_text"] = _series(parts["address_text"], index)
    out["address_key"] = _series(key, index)
    return pd.DataFrame(out, index=index)
