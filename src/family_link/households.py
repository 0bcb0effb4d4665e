"""Who lives with whom: link patients into dwellings and households, then give roles.

The steps, each a pure function over frames (see docs/households.md):

1. ``normalise_addresses`` parses every address (address.py).
2. ``_dwellings``: block on the normalised postcode; inside a block, records whose house
   number, flat and (for unnumbered homes) building name agree exactly are compared on
   street, and joined when the street similarity reaches ``STREET_SIMILARITY``. Then two
   fallbacks: a postcode one character away (same street, number and flat), and records
   with no valid postcode matched on street, number and town.
3. ``_ambiguous_and_communal``: a record with no flat at a building where flats are known
   stands alone (``ambiguous``); care homes, hostels and any address with more than
   ``COMMUNAL_SIZE`` patients are communal: each resident is a household of their own.
4. ``_households``: household ids from the clinical system (``household_id``, then
   ``uprn``) win over addresses; conflicts are reported.
5. ``_roles``: child / adult / parent (recorded) / probable_parent (age gap), and the
   notes that explain them.

Everything after step 1 looks only inside a postcode block (plus the two fallbacks), so
the work can be split and run in parallel: ``link_normalised`` takes a normalised frame
and can be called once per partition. ``link_groups`` gives the groups (whole postcode
districts, joined where a postcode-less record, a clinical-system id or a relationship
connects them) for which that is exact; ``link_households(..., jobs=N)`` uses them.

Internally the steps work on integer codes and pyarrow string arrays: text is compared
as codes (``_sorted_codes`` orders codes as the text) and sentences are concatenated on
Arrow, converting to pandas' "str" columns once. Independent pieces (some codings, the
dwelling keys, the relationships, the evidence and dwelling ids) run on a second thread.

Library code never logs or prints patient values; they appear only in the returned frame.
"""

from __future__ import annotations

__all__ = [
    "HOUSEHOLD_COLUMNS",
    "STREET_SIMILARITY",
    "COMMUNAL_SIZE",
    "PARENT_AGE_GAP",
    "link_groups",
    "link_households",
    "link_normalised",
    "household_conflicts",
    "street_similarity",
    "summarise_households",
]

import hashlib
import mmap
import multiprocessing
import operator
import os
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from .address import STREET_TYPES, _bool as _bool_pa, _empty as _empty_text, normalise_addresses
from ._frames import _short_keys, index_in, join_skipping_nulls
from .errors import Problem, WorkerStoppedError

# Also the column order of households.csv.
HOUSEHOLD_COLUMNS = [
    "patient_id", "household_id", "dwelling_id", "dwelling_kind", "role", "household_size",
    "communal", "ambiguous", "address_key", "link_evidence", "relationship_notes", "conflict",
]

# Street names are compared only between records that already share postcode, house
# number and flat, so the threshold guards against a second street in the same postcode
# rather than finding the home. 85 (fuzz.ratio, 0-100) accepts one or two typing slips in
# a street name ("MILL RAOD", "CHURCH STRET": 89-96) and rejects a different street type
# or name ("MILL LANE" for "MILL ROAD": 67). See docs/households.md for the benchmark.
STREET_SIMILARITY = 85
COMMUNAL_SIZE = 10  # more than this many patients at one dwelling is not one family (QMUL)
ELDERLY_AGE = 65
ELDERLY_MIN_SIZE = 5  # the "mostly 65+" rule applies from this many patients
ELDERLY_MIN_SURNAMES = 3
ADULT_AGE = 18
PARENT_AGE_GAP = 14
SHARED_HOUSE_MIN_ADULTS = 3

# "related_patient_id is the <relationship> of patient_id"
PARENT_WORDS = frozenset({
    "mother", "father", "parent", "guardian", "legal guardian", "stepmother", "stepfather",
    "step mother", "step father", "step parent", "stepparent", "foster mother",
    "foster father", "foster parent", "foster carer", "adoptive mother", "adoptive father",
    "adoptive parent",
})
CHILD_WORDS = frozenset({
    "child", "son", "daughter", "stepson", "stepdaughter", "step son", "step daughter",
    "stepchild", "step child", "foster child", "adopted child", "ward",
})
SYMMETRIC_WORDS = frozenset({
    "sibling", "brother", "sister", "half brother", "half sister", "step brother",
    "step sister", "stepbrother", "stepsister", "partner", "spouse", "husband", "wife",
    "civil partner", "cousin",
})
FAMILY_WORDS = PARENT_WORDS | CHILD_WORDS | SYMMETRIC_WORDS | frozenset({
    "grandmother", "grandfather", "grandparent", "grandchild", "grandson", "granddaughter",
    "aunt", "uncle", "niece", "nephew",
})

_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype
_OPTIONAL_TEXT = ["surname", "household_id", "uprn", "postcode"] + [
    f"address_line_{i}" for i in range(1, 6)
]


# --- small helpers -----------------------------------------------------------------------

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _sha1_heads(texts: pa.Array) -> np.ndarray:
    """The first 6 bytes of sha1 of each string's UTF-8 bytes, as a (k, 6) uint8 array.
    One sha1 per string is the floor (~0.4 us each); the digests are gathered by ``map``
    and a join, and turned into hex digits by numpy, not one Python string each.

    A slice of strings at a time: one conversion and join over the 444k household keys at
    1M is a C loop that holds the GIL for its ~0.17 s, leaving the linkage's second thread
    (which needs it between its Arrow and numpy calls) waiting all that time; between
    slices the interpreter can hand the GIL over. It is quicker too (0.14 s against 0.19 s
    for the 444k keys at once): a slice's bytes objects are few and stay in the cache."""
    digest = operator.methodcaller("digest")
    parts = []
    for start in range(0, len(texts), _SHA1_SLICE):
        blobs = texts.slice(start, _SHA1_SLICE).cast(pa.binary()).to_pylist()
        parts.append(b"".join(map(digest, map(hashlib.sha1, blobs))))
    digests = b"".join(parts)
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)[:, :6]


_SHA1_SLICE = 4096  # ~1.5 ms of hashing (1,024 and 16,384 were slower at 1M)


def _id_bytes(prefix: str, heads: np.ndarray) -> np.ndarray:
    """``prefix`` + 12 lower-case hex digits per row of ``heads`` ((k, 6) uint8), as the
    (k, width) uint8 array of the ids' UTF-8 bytes."""
    head = np.frombuffer(prefix.encode("utf-8"), dtype=np.uint8)
    p = len(head)
    out = np.empty((len(heads), p + 12), dtype=np.uint8)
    out[:, :p] = head
    out[:, p::2] = _HEX_DIGITS[heads >> 4]
    out[:, p + 1::2] = _HEX_DIGITS[heads & 15]
    return out


def _fixed_width_text(rows: np.ndarray) -> pa.Array:
    """A pyarrow string array from a (m, width) uint8 array of UTF-8 bytes, a string a row."""
    m, width = rows.shape
    offsets = np.arange(0, (m + 1) * width, width, dtype=np.int64)
    data = pa.py_buffer(np.ascontiguousarray(rows).reshape(-1))
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(m, pa.py_buffer(offsets.astype(np.int32)), data)
    return pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), data)


def _fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray | None:
    """The (n, width) uint8 bytes of a string array whose every value is ``width`` bytes
    long (no nulls), or None when it is not such an array."""
    if arr.null_count or not pa.types.is_string(arr.type):
        return None
    n = len(arr)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1]
    if not (np.diff(offsets) == width).all():
        return None
    start = int(offsets[0])
    return np.frombuffer(arr.buffers()[2], dtype=np.uint8)[start:start + n * width].reshape(n, width)


def _hash_id_bytes(prefix: str, keys, same: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each record's id as bytes ((n, width) uint8, see ``_id_bytes``) and an integer code,
    equal exactly where the ids are equal, numbered in order of first appearance (as
    ``pd.factorize`` of the ids numbers them). ``keys``: a string array without nulls.
    ``same``: integers equal exactly where the keys are, if known: then the distinct
    keys are found from them, without hashing every key's text in a dictionary encode;
    ``keys`` may then be a function giving the keys at the positions it is given (so that
    only the distinct keys' texts are made)."""
    if same is None:
        encoded = pc.dictionary_encode(keys)
        texts = encoded.dictionary
        at = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        at = pd.factorize(np.asarray(same, dtype=np.int64))[0]
        first = np.full(int(at.max()) + 1 if len(at) else 0, len(at), dtype=np.int64)
        np.minimum.at(first, at, np.arange(len(at)))
        texts = keys(first) if callable(keys) else pc.take(keys, pa.array(first))
    heads = _sha1_heads(texts)
    # Distinct keys (dictionary entries, in first-appearance order) have distinct ids
    # unless two sha1s share their first 6 bytes: then the ids are numbered afresh.
    wide = np.zeros((len(heads), 8), dtype=np.uint8)
    wide[:, 2:] = heads
    value = wide.view(">u8").reshape(-1).astype(np.int64)
    ordered = np.sort(value)
    codes = at
    if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():
        codes = pd.factorize(value)[0][at]
    distinct = np.ascontiguousarray(_id_bytes(prefix, heads))
    return _gather_rows(distinct, at), codes


def _gather_rows(rows: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``rows[at]`` of a (k, width) uint8 array, by an Arrow take of fixed-size binary
    items (~6x faster than numpy's take of (k, width) rows or of void items at 1M)."""
    k, width = rows.shape
    n = len(at)
    if not n or not width:
        return np.zeros((n, width), dtype=np.uint8)
    items = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), k, [None, pa.py_buffer(np.ascontiguousarray(rows).reshape(-1))])
    taken = pc.take(items, pa.array(np.asarray(at, dtype=np.int64)))
    data = np.frombuffer(taken.buffers()[1], dtype=np.uint8)
    return data[taken.offset * width:(taken.offset + n) * width].reshape(n, width)


def _hash_ids(prefix: str, keys: pd.Series | np.ndarray | pa.Array,
              index: pd.Index | None = None, same: np.ndarray | None = None) -> tuple[pd.Series, np.ndarray]:
    """``prefix`` + first 12 hex digits of sha1(key): stable across runs and months.

    Also returns an integer code per record, equal where the ids are equal (numbered in
    order of first appearance), so later steps can group on integers rather than on the
    id text. A missing key gets a missing id and code -1. ``same``: integers equal
    exactly where the keys are, if known (used when no key is missing)."""
    if isinstance(keys, pd.Series):
        index = keys.index if index is None else index
        keys = _pa(pd.DataFrame({"k": keys}), "k")
    elif not isinstance(keys, (pa.Array, pa.ChunkedArray)):
        keys = pa.array(np.asarray(keys, dtype=object), pa.string())
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if keys.null_count:
        valid = np.asarray(keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.flatnonzero(valid)
        part, part_codes = _hash_id_bytes(prefix, pc.take(keys, pa.array(rows)).cast(pa.string()))
        ids = pc.replace_with_mask(pa.nulls(len(keys), pa.string()), pa.array(valid), _fixed_width_text(part))
        codes = np.full(len(keys), -1, dtype=np.int64)
        codes[rows] = part_codes
    else:
        id_bytes, codes = _hash_id_bytes(prefix, keys.cast(pa.string()), same)
        ids = _fixed_width_text(id_bytes)
    series = pd.Series(ids, index=index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return series, codes


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph: each node gets its smallest member."""
    labels = np.arange(n)
    if n == 0 or len(a) == 0:
        return labels
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        while True:  # pointer jumping
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            return labels
        labels = new


def _text_codes(values: pd.Series | np.ndarray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted distinct values, and those values (object array): ordering
    codes orders the text, so ties and sorts below can work on integers. Missing values
    get -1, as ``pd.factorize`` gives them."""
    if isinstance(values, pa.Array) or (isinstance(values, pd.Series) and values.dtype == _STR):
        codes, texts = _sorted_codes(values if isinstance(values, pa.Array) else _arrow(values))
        return codes, np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _arrow(values: pd.Series) -> pa.Array:
    """An Arrow-backed text column as one pyarrow string array (no copy of the text)."""
    arr = pa.array(values.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string())


def _sorted_codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """``_text_codes`` on Arrow: a hash dictionary encode, then only the (small) dictionary
    is sorted (code point order, as Python compares str) and the codes renumbered: a
    fraction of ``pd.factorize(sort=True)`` plus conversions at 1M rows. Nulls get -1."""
    encoded = pc.dictionary_encode(arr)
    order = np.asarray(pc.sort_indices(encoded.dictionary), dtype=np.int64)
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1
    indices = encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = rank[np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    return codes, pc.take(encoded.dictionary, pa.array(order))


def _dense_rank(key: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values (``np.unique(key, return_inverse=True)[1]``):
    by a table of the values present when they span a short range, else by a hash
    factorize and a sort of the distinct values only."""
    key = np.asarray(key, dtype=np.int64)
    if not len(key):
        return np.zeros(0, dtype=np.int64)
    low, high = int(key.min()), int(key.max())
    if high - low < 2 * len(key):
        present = np.zeros(high - low + 1, dtype=np.int64)
        present[key - low] = 1
        return (np.cumsum(present) - 1)[key - low]
    return _unique_inverse(key)[1]


def _unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` of a 1-d int64 array, by one argsort and
    run boundaries (numpy's own goes through a slower sort path; a hash factorize of
    1M sparse keys is slower still)."""
    key = np.asarray(key, dtype=np.int64)
    if not len(key):
        return key.copy(), np.zeros(0, dtype=np.int64)
    order = np.argsort(key)
    ordered = key[order]
    starts = np.empty(len(key), dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


def _isin(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``np.isin`` for int64 values: a binary search in the sorted distinct ``among``
    (numpy's own sorts both arrays together, stably: ~4x slower for 400k values), or,
    for more values than ``among`` holds, pandas' hash table of ``among`` (the binary
    searches of 500k scattered values: ~55 ms against ~5 ms)."""
    values = np.asarray(values, dtype=np.int64)
    among = np.asarray(among, dtype=np.int64)
    if len(values) > len(among):
        return pd.Series(values, copy=False).isin(among).to_numpy(dtype=bool)
    among = _sorted_unique(among)
    if not len(among):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(among, values), len(among) - 1)
    return among[at] == values


def _combined_rank(columns: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """Group number of each row's tuple of integer codes (each in 0..size-1), in sorted
    tuple order: the codes are combined into one int64 (ranked first whenever the product
    would not fit) and ranked once."""
    key = np.asarray(columns[0], dtype=np.int64)
    size = max(int(sizes[0]), 1)
    for column, s in zip(columns[1:], sizes[1:]):
        s = max(int(s), 1)
        if size * s >= 2 ** 62:
            key = _dense_rank(key)
            size = int(key.max()) + 1 if len(key) else 1
        key = key * s + np.asarray(column, dtype=np.int64)
        size *= s
    return _dense_rank(key)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-d array, by one sort. numpy 2.4's plain ``np.unique``
    (no return_* arguments) goes through a hash table: ~0.55 s for 1M mostly distinct
    int64 on this VM, against ~10 ms for a sort and a neighbour comparison."""
    values = np.sort(np.asarray(values).reshape(-1))
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _mode_codes(groups: np.ndarray, coded: tuple[np.ndarray, np.ndarray],
                ignore_empty: bool = True, weights: np.ndarray | None = None,
                distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Groups (ascending) and the code of their most frequent value (ties: smallest).
    ``weights``: each row counts that many times (rows standing for several records);
    ``distinct``: no (group, value) pair is given twice, so none need adding up.
    The (group, value) pairs are counted by a hash factorize, without a sort."""
    codes, uniques = coded
    groups = np.asarray(groups, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    ok = groups >= 0
    if ignore_empty and len(uniques) and uniques[0] == "":
        ok &= codes != 0  # "" sorts first
    nu = max(len(uniques), 1)
    key = groups[ok] * nu + codes[ok]
    if not len(key):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if distinct and len(key):
        counts = np.ones(len(key), dtype=np.int64) if weights is None else np.asarray(weights)[ok]
    else:
        at, key = pd.factorize(key)
        counts = np.bincount(at, weights=None if weights is None else np.asarray(weights)[ok],
                             minlength=len(key))
    g, c = key // nu, key % nu
    if key.min() < 0:  # missing values (code -1): as np.unique's order decodes them
        order = np.lexsort((c, -counts, g))  # equal counts: the smaller value first
        g, c = g[order], c[order]
        first = np.r_[True, g[1:] != g[:-1]]
        return g[first], c[first]
    # No sort: each group's highest count, then the smallest value with that count.
    n_groups = int(g.max()) + 1
    best = np.zeros(n_groups, dtype=counts.dtype)
    np.maximum.at(best, g, counts)
    top = counts == best[g]
    low = np.full(n_groups, nu, dtype=np.int64)
    np.minimum.at(low, g[top], c[top])
    found = np.flatnonzero(low < nu)
    return found, low[found]


def _mode(groups: np.ndarray, values: pd.Series | tuple, ignore_empty: bool = True) -> pd.Series:
    """Most frequent value per group (ties: smallest value); index = group code."""
    coded = values if isinstance(values, tuple) else _text_codes(values)
    g, c = _mode_codes(groups, coded, ignore_empty)
    return pd.Series(coded[1][c], index=g, dtype="str")


def _group_join(groups: np.ndarray, texts: np.ndarray | pa.Array, n: int, sep: str) -> pa.Array:
    """Join ``texts`` per group code (0..n-1) with ``sep``, keeping the given order within
    each group; groups with no text get "". Vectorised through a pyarrow list array with
    one (possibly empty) list per group; the result is a pyarrow string array of length n."""
    groups = np.asarray(groups, dtype=np.int64)
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(np.asarray(texts, dtype=object), pa.string())
    if len(groups) > 1 and (groups[1:] < groups[:-1]).any():
        order = np.argsort(groups, kind="stable")
        groups = groups[order]
        texts = pc.take(texts, pa.array(order))
    # 32-bit offsets throughout: the joined texts are longer than the texts, and they
    # are returned as a (32-bit) string array anyway.
    values = texts.cast(pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(groups, minlength=n), out=offsets[1:])
    if values.null_count == 0 and len(values):
        return _group_concat(offsets, [values], sep)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    return pc.binary_join(lists, pa.scalar(sep, pa.string()))


def _group_concat(offsets: np.ndarray, parts: list, sep: str) -> pa.Array:
    """Group k's text: its items ``offsets[k]:offsets[k+1]`` joined with ``sep``, an item
    being the concatenation of ``parts`` (strings, or string arrays without nulls, one
    value per item). Each item but a group's first gets ``sep`` in front, all in one
    skip-nulls concatenation; a group's text is then its run of that buffer, so the
    result shares it, under offsets taken at the groups' boundaries."""
    n = len(offsets) - 1
    m = int(offsets[-1])
    if m == 0:
        return _empty_text(n)
    pieces = _join_skip(_repeat_where(sep, _later_items(offsets)), *parts)
    return _groups_of_items(offsets, pieces)


def _later_items(offsets: np.ndarray) -> np.ndarray:
    """Per item of ``_group_concat``'s groups: True but for each group's first item."""
    later = np.ones(int(offsets[-1]), dtype=bool)
    later[offsets[:-1][offsets[:-1] < offsets[1:]]] = False
    return later


def _groups_of_items(offsets: np.ndarray, pieces: pa.Array) -> pa.Array:
    """Group k's text: the run of items ``offsets[k]:offsets[k+1]`` of ``pieces`` (each
    item but a group's first beginning with the separator), sharing its buffer."""
    n = len(offsets) - 1
    m = int(offsets[-1])
    at = np.frombuffer(pieces.buffers()[1], dtype=np.int32)[pieces.offset:pieces.offset + m + 1]
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(np.ascontiguousarray(at[offsets])),
                                                  pieces.buffers()[2]])


def _repeat_where(text: str, mask: np.ndarray) -> pa.Array:
    """``text`` where ``mask``, null elsewhere (only the set rows hold bytes)."""
    mask = np.asarray(mask, dtype=bool)
    raw = text.encode("utf-8")
    offsets = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask * len(raw), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(mask), [
        pa.py_buffer(np.packbits(mask, bitorder="little")), pa.py_buffer(offsets.astype(np.int32)),
        pa.py_buffer(raw * int(mask.sum()))])


def _missing_in_choices(choices: list) -> bool:
    """Whether some (mask, parts) choice has a missing value in a part (not a literal
    text) at a row its mask holds."""
    return any(bool(part.null_count) and bool(
        (np.asarray(mask, dtype=bool) & ~np.asarray(part.is_valid().to_numpy(zero_copy_only=False), dtype=bool)).any())
        for mask, parts in choices for part in parts if not isinstance(part, str))


def _choose_text(choices: list[tuple[np.ndarray, list]]) -> pa.Array:
    """Per row, the concatenation of the parts (strings or string arrays) of the one
    choice whose mask holds the row ("" where none does): the nested ``_if``/``_cat``
    of the choices in one skip-nulls concatenation, each part nulled outside its mask."""
    if _missing_in_choices(choices):  # a missing part makes the text missing
        out = None
        for mask, parts in reversed(choices):
            text = _cat(*parts)
            out = text if out is None else _if(mask, text, out)
        return out
    pieces = []
    for mask, parts in choices:
        for part in parts:
            pieces.append(_repeat_where(part, mask) if isinstance(part, str) else _null_where(part, mask))
    return _join_skip(*pieces)


def _map_text(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``keys.map(table)`` as text, "" where the table has no entry."""
    mapped = keys.map(table)
    return mapped.astype(object).where(mapped.notna(), "").astype("str")


def _lookup(groups: np.ndarray, table: pd.Series, default: str = "") -> pd.Series:
    out = table.reindex(groups)
    return pd.Series(out.fillna(default).to_numpy(), dtype="str")


def _locate(w: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    """``rel`` with ``a`` and ``b``: the row positions in ``w`` (sorted by patient_id) of
    each relationship's two records, -1 when absent. When the ids are strictly increasing
    (so unique): a binary search of the sorted ends where every id is short (at most 8
    bytes, as ``_frames._short_keys``), else one pyarrow hash lookup for both ends (a third
    of ``Index.get_indexer``'s time at 1M); otherwise ``get_indexer``, which refuses
    repeated ids."""
    ids = _pa(w, "patient_id")
    increasing = len(ids) < 2 or pc.all(pc.less(ids.slice(0, len(ids) - 1), ids.slice(1)),
                                        skip_nulls=False).as_py()
    if not increasing:
        index = pd.Index(w["patient_id"])
        return rel.assign(a=index.get_indexer(rel["patient_id"]),
                          b=index.get_indexer(rel["related_patient_id"]))
    m = len(rel)
    ends = pa.concat_arrays([_pa(rel, "patient_id"), _pa(rel, "related_patient_id")])
    ids_u, ends_u = _short_keys(pa.chunked_array([ids])), _short_keys(pa.chunked_array([ends]))
    if ids_u is not None and ends_u is not None and len(ids_u):
        # Ids of at most 8 bytes as integers that order and compare as the text: the
        # ends, sorted, are found by a binary search (~0.03 s for 720k ends among 1M ids,
        # against ~0.2 s for a hash lookup of the text).
        order = np.argsort(ends_u)
        found = np.searchsorted(ids_u, ends_u[order])
        hit = ids_u[np.minimum(found, len(ids_u) - 1)] == ends_u[order]
        at = np.full(2 * m, -1, dtype=np.int64)
        at[order[hit]] = found[hit]
        return rel.assign(a=at[:m], b=at[m:])
    at = np.asarray(pc.fill_null(pc.index_in(ends, value_set=ids), -1).to_numpy(zero_copy_only=False),
                    dtype=np.int64)
    return rel.assign(a=at[:m], b=at[m:])


def _equal_codes(*columns: pa.Array) -> np.ndarray:
    """An integer per row, equal exactly where every column's text is equal."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, count = _dict_codes(column)
        key = pd.factorize(key * max(count, 1) + codes)[0]
    return key


def _rel_rows(rel: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (in w) of the relationships whose two records are both present."""
    a = rel["a"].to_numpy(dtype=np.int64)
    b = rel["b"].to_numpy(dtype=np.int64)
    ok = (a >= 0) & (b >= 0)
    return a[ok], b[ok]


def _age(dob: pd.Series, as_of: date) -> np.ndarray:
    """Completed years at ``as_of``; a 29 February birthday counts from 1 March."""
    year = dob.dt.year.to_numpy(dtype=float)
    md = (dob.dt.month * 100 + dob.dt.day).to_numpy(dtype=float)
    before = (as_of.month * 100 + as_of.day) < md
    return as_of.year - year - before


# --- preparation -------------------------------------------------------------------------

def _prepare(patients: pd.DataFrame) -> pd.DataFrame:
    """Sorted copy with every optional column present as text ("" when absent)."""
    frame = patients.copy(deep=False)  # columns are replaced, never changed in place
    for column in _OPTIONAL_TEXT:
        if column not in frame.columns:
            frame[column] = ""
        if frame[column].dtype == _STR:
            frame[column] = frame[column].fillna("")  # already text: no round trip via object
        else:
            frame[column] = _filled_text(frame[column])
    frame["patient_id"] = frame["patient_id"].astype("str")
    if "date_of_birth" not in frame.columns:
        frame["date_of_birth"] = pd.NaT
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"], errors="coerce")
    return _sorted_by_id(frame)


def _filled_text(values: pd.Series) -> pd.Series:
    """A column as text with "" for missing values: ``astype(object).where(notna, "")
    .astype("str")``, straight through pyarrow when every value is a string (an object
    column of strings: ~3x faster at 1M; a column of "" alone, as the reader gives a
    column the export lacks, is made as such)."""
    if values.dtype == object:
        objects = values.to_numpy()
        if len(objects) and _all_empty_strings(objects):
            # A column the export does not give (read as "" everywhere): no conversion
            # of a million Python strings (~20-40 ms at 1M against ~4 ms to compare).
            return pd.Series(_empty_text(len(objects)), index=values.index, dtype=_STR)
        try:
            arr = pa.array(objects, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
        if arr is not None:
            return pd.Series(pc.fill_null(arr, ""), index=values.index, dtype=_STR)
    return values.astype(object).where(values.notna(), "").astype("str")


def _all_empty_strings(objects: np.ndarray) -> bool:
    """Whether every value of an object array is "" (pd.NA compares as NA, not False)."""
    try:
        return bool((objects == "").all())
    except TypeError:  # pd.NA among them: "boolean value of NA is ambiguous"
        return False


def _sorted_by_id(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in patient_id order (stable), positional index; exports often come sorted,
    and a stable sort of sorted rows changes nothing, so the sort is skipped then (told
    by one pyarrow comparison of neighbours, not pandas' ``is_monotonic_increasing``,
    which is ~0.1-0.3 s on a million Arrow strings; a wrong "no" would only cost the sort)."""
    try:
        ids = _pa(frame, "patient_id")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not text: pandas decides
        if frame["patient_id"].is_monotonic_increasing:
            return frame.reset_index(drop=True)
        return frame.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    if len(ids) < 2 or pc.all(pc.less_equal(ids.slice(0, len(ids) - 1), ids.slice(1)),
                              skip_nulls=False).as_py() is True:
        return frame.reset_index(drop=True)
    return frame.sort_values("patient_id", kind="mergesort").reset_index(drop=True)


def _relationships(relationships: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["patient_id", "related_patient_id", "relationship"]
    if relationships is None or len(relationships) == 0:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    rel = relationships[columns].astype("str").copy()
    # Normalised once per distinct word (a few dozen), then taken back to every row.
    encoded = pc.dictionary_encode(_pa(rel, "relationship"))
    words = pd.Series(encoded.dictionary, dtype=_STR)
    words = words.str.lower().str.replace(r"[-_]", " ", regex=True).str.strip()
    rel["relationship"] = pd.Series(pc.take(_pa(pd.DataFrame({"w": words}), "w"), encoded.indices),
                                    index=rel.index, dtype=_STR)
    rel = rel[(rel["patient_id"] != rel["related_patient_id"]) & (rel["patient_id"] != "")]
    # Sorted on Arrow: a stable sort by the three texts (code point order, missing last),
    # as pandas' mergesort gives it, in a third of the time. Repeated rows are then
    # neighbours: keeping the first of each run is ``drop_duplicates`` (the copies are
    # equal, so which is kept cannot show) without hashing every row's texts.
    table = pa.table({c: _pa(rel, c) for c in columns})
    order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end") for c in columns])
    table = table.take(order)
    repeat = np.ones(max(len(rel) - 1, 0), dtype=bool)
    for c in columns if len(rel) > 1 else []:
        col = table.column(c).combine_chunks()
        a, b = col.slice(0, len(col) - 1), col.slice(1)
        # equal, or both missing (drop_duplicates counts two NaN as equal)
        same = pc.or_kleene(pc.equal(a, b), pc.and_(pc.is_null(a), pc.is_null(b)))
        repeat &= _bool_pa(same)
    keep = np.asarray(order)[np.r_[True, ~repeat]] if len(rel) else np.zeros(0, dtype=np.int64)
    return rel.take(keep).reset_index(drop=True)


# --- dwellings ---------------------------------------------------------------------------

def street_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise street similarity, 0-100: ``fuzz.ratio`` of the normalised names, but 0
    when both name a street type and the types differ ("THORNHILL LANE" is not
    "THORNHILL AVENUE", though only a few letters apart)."""
    if len(a) == 0:
        return np.zeros(0)
    scores = np.asarray(process.cpdist(list(a), list(b), scorer=fuzz.ratio, workers=1), dtype=float)
    type_a = pd.Series(a, dtype=object).str.rsplit(" ", n=1).str[-1]
    type_b = pd.Series(b, dtype=object).str.rsplit(" ", n=1).str[-1]
    typed = (type_a.isin(STREET_TYPES) & type_b.isin(STREET_TYPES)).to_numpy()
    scores[typed & (type_a != type_b).to_numpy()] = 0.0
    return scores


def _street_scores(uniques: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``street_similarity(uniques[a], uniques[b])``, with each distinct street's type
    (its last word, when a street type) worked out once rather than once per pair."""
    scores = np.asarray(process.cpdist(list(uniques[a]), list(uniques[b]), scorer=fuzz.ratio,
                                       workers=1), dtype=float)
    involved = _sorted_unique(np.r_[a, b])
    type_ids = {t: i for i, t in enumerate(sorted(STREET_TYPES))}
    kind = np.full(len(uniques), -1, dtype=np.int64)  # -1: not a street type
    kind[involved] = [type_ids.get(s.rsplit(" ", 1)[-1], -1) for s in uniques[involved]]
    ka, kb = kind[a], kind[b]
    scores[(ka >= 0) & (kb >= 0) & (ka != kb)] = 0.0
    return scores


def _street_variants(group: np.ndarray, street: tuple[np.ndarray, np.ndarray],
                     variants: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Within each group, cluster street spellings whose similarity reaches the threshold.

    ``street`` is the coded street column (``_text_codes``). Returns a cluster code per
    record (-1 where group is -1; an empty street joins the group's only cluster, and with
    several clusters it stays apart), and the variants (distinct (group, street), in group
    then street order): each record's variant (records with a group, in row order), each
    variant's street code and cluster. ``variants``: the distinct group * streets +
    street and each record's variant, when the caller has them already."""
    codes, uniques = street
    n = len(group)
    out = np.full(n, -1, dtype=np.int64)
    ok = group >= 0
    if not ok.any():
        return out, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Variants: distinct (group, street), in group then street order (codes sort as text).
    ns = max(len(uniques), 1)
    vkey, inverse = _unique_inverse(group[ok] * ns + codes[ok]) if variants is None else variants
    vg, vs = vkey // ns, vkey % ns
    nv = len(vkey)
    starts = np.flatnonzero(np.r_[True, vg[1:] != vg[:-1]])
    sizes = np.diff(np.r_[starts, nv])
    per_group = np.repeat(sizes, sizes)
    nonempty = uniques[vs] != ""
    cand = np.flatnonzero((per_group > 1) & nonempty)
    a_idx = np.array([], dtype=np.int64)
    b_idx = np.array([], dtype=np.int64)
    if len(cand):
        c = pd.DataFrame({"g": vg[cand], "v": cand})
        pairs = c.merge(c, on="g", suffixes=("_a", "_b"))
        pairs = pairs[(pairs["v_a"] < pairs["v_b"]).to_numpy()]
        if len(pairs):
            va, vb = pairs["v_a"].to_numpy(), pairs["v_b"].to_numpy()
            scores = _street_scores(uniques, vs[va], vs[vb])
            keep = scores >= STREET_SIMILARITY
            a_idx, b_idx = va[keep], vb[keep]
    labels = _components(nv, a_idx, b_idx)
    # Empty street: join the group's only non-empty cluster, if there is exactly one.
    ne = np.flatnonzero(nonempty)
    n_groups = int(vg.max()) + 1
    cluster_pairs = _sorted_unique(vg[ne] * nv + labels[ne])
    n_clusters = np.bincount(cluster_pairs // nv, minlength=n_groups)
    only = np.full(n_groups, -1, dtype=np.int64)
    # Each group's first non-empty variant (variants are in group order).
    vg_ne = vg[ne]
    first_at = np.flatnonzero(np.r_[True, vg_ne[1:] != vg_ne[:-1]]) if len(ne) else ne
    first_g = vg_ne[first_at]
    only[first_g] = labels[ne[first_at]]
    empty = np.flatnonzero(~nonempty)
    single = empty[n_clusters[vg[empty]] == 1]
    labels = labels.copy()
    labels[single] = only[vg[single]]
    out[ok] = labels[inverse]
    return out, inverse, vs, labels


def _patched(arr: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with ``arr[rows[i]] = values[i]`` (rows ascending, distinct). A few rows:
    the untouched stretches and the new values concatenated (one copy, ~1.6 ms for 1M
    strings, against ~14 ms for ``replace_with_mask``)."""
    values = values.cast(arr.type)
    if len(rows) > 1000:  # one take, in row order, from the array and the new values
        at = np.arange(len(arr), dtype=np.int64)
        at[rows] = len(arr) + np.arange(len(rows))
        return pc.take(pa.concat_arrays([arr, values]), pa.array(at))
    pieces = []
    previous = 0
    for i, row in enumerate(rows.tolist()):
        pieces += [arr.slice(previous, row - previous), values.slice(i, 1)]
        previous = row + 1
    pieces.append(arr.slice(previous))
    return pa.concat_arrays(pieces)


def _split_run_together_names(w: pd.DataFrame, postcode_codes: np.ndarray | None = None) -> pd.DataFrame:
    """"THE LIMES GOSCOTE CRESCENT" (commas lost) is the house THE LIMES on GOSCOTE
    CRESCENT when a neighbour at the same postcode spells the two parts apart. Without
    that help the parser cannot tell a house name from a street name. ``postcode_codes``:
    integer codes of the postcode column (equal where the postcodes are), if known."""
    unnumbered = ((w["number"] == "") & w["postcode_valid"]).to_numpy()
    has_building = (w["building"] != "").to_numpy()
    has_street = (w["street"] != "").to_numpy()
    one = unnumbered & (has_building != has_street)
    both = unnumbered & has_building & has_street
    if not (one.any() and both.any()):
        return w
    # Only the unnumbered records take part, and of those spelling both parts only the
    # ones at a postcode where a record gives one part (keys include the postcode): text
    # for those rows alone.
    if postcode_codes is None:
        postcodes = _pa(w, "postcode")
        asked = pc.unique(pc.take(postcodes, pa.array(np.flatnonzero(one))))
        both &= np.asarray(pc.is_in(postcodes, value_set=asked).to_numpy(zero_copy_only=False), dtype=bool)
    else:
        asked = np.zeros(int(postcode_codes.max()) + 2, dtype=bool)  # code -1: last
        asked[postcode_codes[one]] = True
        both &= asked[postcode_codes]
    part = np.flatnonzero(one | both)
    building = w["building"].iloc[part].to_numpy(dtype=object)
    street = w["street"].iloc[part].to_numpy(dtype=object)
    postcode = w["postcode"].iloc[part].to_numpy(dtype=object)
    one, both = one[part], both[part]
    known = pd.DataFrame({"key": postcode[both] + "|" + building[both] + " " + street[both],
                          "b": building[both], "s": street[both]}).drop_duplicates()
    known = known.drop_duplicates("key", keep=False).set_index("key")
    rows = np.flatnonzero(one)
    text = np.where(building[rows] != "", building[rows], street[rows])
    found = pd.Series(postcode[rows] + "|" + text).map(known["b"])
    hit = found.notna().to_numpy()
    if hit.any():
        keys = postcode[rows[hit]] + "|" + text[hit]
        at = part[rows[hit]]  # ascending, as the replacements are ordered
        for column, values in (("building", known.loc[keys, "b"]), ("street", known.loc[keys, "s"])):
            new = _patched(_pa(w, column), at, pa.array(values.to_numpy(dtype=object), pa.string()))
            w[column] = _str_series(new, w.index)
    return w


_HOW = ["", "postcode", "postcode_edit", "no_postcode", "no_postcode_many"]  # d_how by code


def _texts_at(texts: pa.Array, codes: np.ndarray) -> pa.Array:
    """``texts[codes]`` as a pyarrow string array, "" where the code is -1: text for 1M
    rows by one take from a small dictionary, not an object array converted to Arrow."""
    padded = pa.concat_arrays([texts.cast(pa.string()), pa.array([""], pa.string())])
    codes = np.asarray(codes, dtype=np.int64)
    return pc.take(padded, pa.array(np.where(codes >= 0, codes, len(texts))))


def _flat_dwellings(bld: np.ndarray, has: np.ndarray, flat: np.ndarray, nf: int) -> np.ndarray:
    """Dwelling numbers: (building, flat code) of the records ``has`` ranked in order
    (-1 elsewhere). Most buildings have one flat spelling (their first record's): one
    dwelling each; only the records of the others are sorted."""
    d = np.full(len(bld), -1, dtype=np.int64)
    if not len(has):
        return d
    nf = max(nf, 1)
    at = bld[has]
    n_bld = int(at.max()) + 1
    first = np.full(n_bld, len(bld), dtype=np.int64)
    np.minimum.at(first, at, has)
    present = first < len(bld)
    of_first = np.zeros(n_bld, dtype=np.int64)
    of_first[present] = flat[first[present]]
    mixed = np.zeros(n_bld, dtype=bool)
    mixed[at[flat[has] != of_first[at]]] = True
    more = has[mixed[at]]
    key, inverse = _unique_inverse(bld[more] * nf + flat[more])
    key_bld = key // nf
    count = np.where(mixed, np.bincount(key_bld, minlength=n_bld), present)
    offset = np.cumsum(count) - count
    d[has] = offset[at]
    block = np.searchsorted(key_bld, key_bld)  # each key's building's first key
    d[more] += inverse - block[inverse]
    return d


def _texts_of(texts: pa.Array, of: np.ndarray, at: np.ndarray) -> pa.Array:
    """``_texts_at(texts, of[at])``, with the missing codes (-1) of the small ``of``
    pointed at the added "" before the gather."""
    padded = pa.concat_arrays([texts.cast(pa.string()), pa.array([""], pa.string())])
    return pc.take(padded, pa.array(np.where(of >= 0, of, len(texts))[at]))


def _building_key_codes(bld: np.ndarray, number: tuple, bkey: tuple, postcode: tuple,
                        street: tuple, town: tuple) -> np.ndarray | None:
    """An integer per record, equal exactly where the building keys that
    ``_ambiguous_and_communal`` joins from a building's first record are (the place:
    the postcode, else "T:" and the town; then number, building name and street,
    joined by "|"); -1 where there is no building. Each of ``number``, ``bkey``,
    ``postcode``, ``street`` and ``town`` is (each building's code, -1: "", the
    ``_sorted_codes`` texts); a building's records share all five. None when codes
    cannot stand for the joined texts: a "|" in some text (two different tuples could
    join alike) or a postcode starting "T:"."""
    texts = [number[1], bkey[1], postcode[1], street[1], town[1]]
    if any(len(t) and pc.any(pc.match_substring(t, "|")).as_py() for t in texts):
        return None
    if len(postcode[1]) and pc.any(pc.starts_with(postcode[1], "T:")).as_py():
        return None
    has = np.flatnonzero(bld >= 0)
    out = np.full(len(bld), -1, dtype=np.int64)
    if not len(has):
        return out

    def of_text(codes, texts):  # 0: "" (code -1, or the code of ""), else code + 1
        codes = np.asarray(codes, dtype=np.int64) + 1
        if len(texts) and texts[0].as_py() == "":
            codes[codes == 1] = 0
        return codes

    pcode, town_code = of_text(*postcode), of_text(*town)
    n_pc = len(postcode[1]) + 1
    key = np.where(pcode > 0, pcode, n_pc + town_code)  # the place
    size = n_pc + len(town[1]) + 1
    for codes, texts in (number, bkey, street):
        s = len(texts) + 1
        if size * s >= 2 ** 62:
            return None
        key = key * s + of_text(codes, texts)
        size *= s
    out[has] = pd.factorize(key)[0][bld[has]]
    return out


def _dwellings(w: pd.DataFrame) -> pd.DataFrame:
    """Assign a building and a dwelling to every usable record. Returns a copy of ``w`` with:

    ``bld`` building code and ``d`` dwelling code (-1 for no usable address or unresolved),
    ``d_how`` how the record joined ("postcode", "postcode_edit", "no_postcode", or
    "no_postcode_many" for a record matching several homes), and the building's canonical
    ``d_postcode``, ``d_street`` and ``d_town`` (most frequent spelling among its records).
    Number and building name (``bkey``) are the same for every record of a building, and
    the flat for every record of a dwelling (``_ambiguous_and_communal`` relies on it).

    All on integer codes of the text columns (``_sorted_codes``: codes order as the text),
    and per building where a building decides (its first record's postcode, number and
    name; its (street, count) and (town, count) pairs), so 1M-row work is a few hash
    encodes and ranks; text is read back from the small dictionaries by Arrow takes.
    """
    w = w.copy(deep=False)  # new columns only; the caller's frame is untouched
    n = len(w)
    # Splitting run-together names changes only building names and streets: the house
    # numbers, towns and flats are coded on a second thread meanwhile (Arrow encodes and
    # sorts, which release the GIL; the thread reads only these arrays, never ``w``),
    # and the postcodes first, here.
    number_pa, town_pa, flat_pa = _pa(w, "number"), _pa(w, "town"), _pa(w, "flat")
    aside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-codes")
    coding = aside.submit(lambda: [_sorted_codes(x) for x in (number_pa, town_pa, flat_pa)])
    postcode_c, pc_texts = _sorted_codes(_pa(w, "postcode"))
    w = _split_run_together_names(w, postcode_c)
    numbered = _nonempty(number_pa)
    bkey_pa = _if(~numbered, _pa(w, "building"), "")
    w["bkey"] = _str_series(bkey_pa, w.index)
    valid = w["postcode_valid"].to_numpy(dtype=bool)
    street_pa = _pa(w, "street")
    # The streets (split above) are coded on the second thread while the building names
    # are coded here.
    street_coding = aside.submit(_sorted_codes, street_pa)
    has_street, has_town = _nonempty(street_pa), _nonempty(town_pa)
    premise = numbered | _nonempty(bkey_pa)
    usable = premise & (valid | has_street)
    with_pc = usable & valid
    # A record with neither postcode nor town stays alone (see 3. below).
    w["usable"] = usable & (valid | has_town)

    # The text columns, coded once (codes order as the text does).
    bkey_c, bkey_texts = _sorted_codes(bkey_pa)
    (number_c, number_texts), (town_c, town_texts), (flat_c, flat_texts) = coding.result()
    street_c, street_texts = street_coding.result()
    pc_obj = np.asarray(pc_texts.to_numpy(zero_copy_only=False), dtype=object)
    street_obj = np.asarray(street_texts.to_numpy(zero_copy_only=False), dtype=object)
    n_pc, n_num, n_bkey = len(pc_texts), len(number_texts), len(bkey_texts)
    town_obj = np.asarray(town_texts.to_numpy(zero_copy_only=False), dtype=object)
    n_street, n_town = len(street_texts), len(town_texts)

    # 1. Buildings: block on postcode; number and building name agree exactly; streets
    #    are clustered by similarity. Dwellings are then building x flat.
    rows = np.flatnonzero(with_pc)
    g = np.full(n, -1, dtype=np.int64)
    ns = max(n_street, 1)
    variants = None
    if max(n_pc, 1) * max(n_num, 1) * max(n_bkey, 1) * ns < 2 ** 62:
        # One sort gives the groups and the street variants: (postcode, number, name,
        # street) as one integer.
        key = ((postcode_c[rows] * max(n_num, 1) + number_c[rows]) * max(n_bkey, 1) + bkey_c[rows]) * ns
        key, variant = _unique_inverse(key + street_c[rows])
        high = key // ns
        g_of = np.cumsum(np.r_[True, high[1:] != high[:-1]]) - 1 if len(key) else key
        g[rows] = g_of[variant]
        variants = (g_of * ns + key % ns, variant)
    else:
        g[rows] = _combined_rank([postcode_c[rows], number_c[rows], bkey_c[rows]], [n_pc, n_num, n_bkey])
    cluster, variant, v_street, v_cluster = _street_variants(g, (street_c, street_obj), variants)
    # Buildings: (group, cluster) in order. A cluster is named by its first variant, and
    # variants are in group order, so ordering the clusters orders (group, cluster).
    b = np.full(n, -1, dtype=np.int64)
    b_rows = _dense_rank(cluster[rows])  # b[rows]
    b[rows] = b_rows
    n_b = int(b.max()) + 1 if len(rows) else 0
    # Per building: its first record, size, and distinct (street, count), (town, count).
    first = np.full(n_b, n, dtype=np.int64)
    np.minimum.at(first, b_rows, rows)
    size_b = np.bincount(b_rows, minlength=n_b)
    pcode_b, number_b, bkey_b = postcode_c[first], number_c[first], bkey_c[first]

    def pairs(codes, nu):
        """Distinct (building, value, count): most buildings give one value, their first
        record's; only the others' records are sorted."""
        of_first = codes[first]
        mixed = np.zeros(n_b, dtype=bool)
        mixed[b_rows[codes[rows] != of_first[b_rows]]] = True
        single = np.flatnonzero(~mixed)
        more = rows[mixed[b_rows]]
        key, inverse = _unique_inverse(b[more] * nu + codes[more])
        return (np.r_[single, key // nu], np.r_[of_first[single], key % nu],
                np.r_[size_b[single], np.bincount(inverse, minlength=len(key))])

    # (building, street) pairs are the variants: distinct (group, street), each in one
    # building (its cluster's).
    sb, sc, sn = np.zeros(len(v_street), np.int64), v_street, np.bincount(variant, minlength=len(v_street))
    if len(rows):
        sb[variant] = b_rows

    def towns():
        """The (building, town, count) triples and each building's most given town."""
        tb, tc, tn = pairs(town_c, max(n_town, 1))
        town_of = np.full(n_b, -1, dtype=np.int64)
        gb, cb = _mode_codes(tb, (tc, town_obj), weights=tn, distinct=True)
        town_of[gb] = cb
        return tb, tc, tn, town_of

    # The towns are counted on the second thread (nothing below rebinds what ``pairs``
    # reads) while the streets are, and the postcode slips looked for, here.
    town_work = aside.submit(towns)
    street_of = np.full(n_b, -1, dtype=np.int64)  # -1: no street given at the building
    gb, cb = _mode_codes(sb, (sc, street_obj), weights=sn, distinct=True)
    street_of[gb] = cb
    outward = [p.split(" ")[0] for p in pc_obj]  # distinct postcodes
    outward_code = pd.factorize(np.asarray(outward, dtype=object))[0] if len(outward) else np.zeros(0, np.int64)

    # 2. The same building under a postcode one character away: a typing slip. Only
    #    inside one postcode district and town: street names recur in neighbouring towns,
    #    whose postcodes can also be one character apart.
    a_idx = np.array([], dtype=np.int64)
    b_idx = np.array([], dtype=np.int64)
    if n_b:
        cand_b = np.flatnonzero(street_of >= 0)
        same = _combined_rank([number_b[cand_b], bkey_b[cand_b], street_of[cand_b],
                               outward_code[pcode_b[cand_b]]],
                              [n_num, n_bkey, n_street, len(outward)])
        cp = pd.DataFrame({"k": same, "b": cand_b})
        cp = cp[cp["k"].duplicated(keep=False).to_numpy()]
        if len(cp):
            pairs_ = cp.merge(cp, on="k", suffixes=("_a", "_b"))
            ba, bb = pairs_["b_a"].to_numpy(), pairs_["b_b"].to_numpy()
            town_of = town_work.result()[3]
            ta, tb_ = town_of[ba], town_of[bb]
            keep = (ba < bb) & ((ta == tb_) | (ta < 0) | (tb_ < 0))
            ba, bb = ba[keep], bb[keep]
            if len(ba):
                dist = process.cpdist(pc_obj[pcode_b[ba]].tolist(), pc_obj[pcode_b[bb]].tolist(),
                                      scorer=OSA.distance, workers=1)
                near = dist <= 1
                a_idx, b_idx = ba[near], bb[near]
    tb, tc, tn, town_of = town_work.result()
    merged = _components(n_b, a_idx, b_idx)
    bld = np.full(n, -1, dtype=np.int64)
    bld[rows] = merged[b_rows]
    how = np.zeros(n, dtype=np.int8)
    how[rows] = 1  # postcode
    # A building is named by its first part: most are one part (a building of the step
    # above), whose most given postcode, street and town are that part's. Only
    # buildings of several parts, or joined by records placed in 3. below, are counted
    # again.
    roots = np.flatnonzero(merged == np.arange(n_b))
    several = np.zeros(n_b + 1, dtype=bool)
    several[merged[np.bincount(merged, minlength=n_b)[merged] > 1]] = True

    def modes(of_part, part, codes, counts, uniques, size, placed=None, placed_codes=None):
        """The most given value (code, -1: none) of each building 0..size-1, from the
        parts' values ``of_part`` and (part, code, count) triples, plus records placed."""
        of = np.full(size, -1, dtype=np.int64)
        of[roots] = of_part[roots]
        redo = np.zeros(size, dtype=bool)
        redo[roots] = several[roots]
        if placed is None:
            placed, placed_codes = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        redo[bld[placed]] = True
        sel = redo[merged[part]] if n_b else np.zeros(0, dtype=bool)
        of[redo] = -1
        g_, c_ = _mode_codes(np.r_[merged[part[sel]], bld[placed]],
                             (np.r_[codes[sel], placed_codes], uniques),
                             weights=np.r_[counts[sel], np.ones(len(placed), dtype=np.int64)])
        of[g_] = c_
        return of

    # Each building's postcode (most given), once: records without a valid postcode,
    # placed below, give none, so these stay the buildings' postcodes to the end. A
    # building's records share its postcode: counted per building.
    pcode_part = pcode_b.copy()
    if n_pc and pc_obj[0] == "":
        pcode_part[pcode_part == 0] = -1  # "" is not counted
    pc_mode = modes(pcode_part, np.arange(n_b), pcode_b, size_b, pc_obj, n_b + 1)  # bld -1: last
    # Records whose postcode is not their building's (a part's records share a postcode;
    # codes are equal exactly where the texts are).
    how[rows[(pcode_b != pc_mode[merged])[b_rows]]] = 2

    # 3. No valid postcode: a building with the same number (or name), the same street
    #    spelling (after normalisation) and the same town; linked only when exactly one
    #    building qualifies. Streets are not compared loosely here: across a whole town,
    #    names a few letters apart are usually different streets (CHUCKERY LANE, CHAUCER
    #    LANE). A record with neither postcode nor town stays alone: street names recur
    #    from town to town. A building's town is the one its records give most, else the
    #    one most given in its postcode sector ("WS3 9").
    no_pc = w["usable"].to_numpy() & ~valid & has_street
    if no_pc.any():
        sector = pd.factorize(np.asarray([p[:-2] for p in pc_obj], dtype=object))[0] \
            if n_pc else np.zeros(0, np.int64)
        sec_b = sector[pcode_b] if n_b else np.zeros(0, np.int64)
        b_town = modes(town_of, tb, tc, tn, town_obj, n_b + 1)
        lost = np.flatnonzero(no_pc)
        # Known homes: a building's (number, name, street) spellings, with its town; only
        # those spelled as some record without a postcode are looked at.
        sizes = [max(n_num, 1), max(n_bkey, 1), max(n_street, 1)]
        spelled = np.ones(len(sb), dtype=bool)
        if sizes[0] * sizes[1] * sizes[2] < 2 ** 62:
            spelled = _isin((number_b[sb] * sizes[1] + bkey_b[sb]) * sizes[2] + sc,
                              (number_c[lost] * sizes[1] + bkey_c[lost]) * sizes[2] + street_c[lost])
        spell = sb[spelled]
        k_bld = merged[spell] if n_b else np.zeros(0, np.int64)
        k_town = b_town[k_bld]
        # No town at the building: the one most given in its postcode sector.
        sector_town = np.full(int(sector.max()) + 1 if n_pc else 1, -1, dtype=np.int64)
        asked = _isin(sec_b[tb], sec_b[spell[k_town < 0]])
        gs, cs = _mode_codes(sec_b[tb[asked]], (tc[asked], town_obj), weights=tn[asked])
        sector_town[gs] = cs
        k_town = np.where(k_town >= 0, k_town, sector_town[sec_b[spell]])
        m = len(spell)
        key = _combined_rank([np.r_[number_b[spell], number_c[lost]], np.r_[bkey_b[spell], bkey_c[lost]],
                              np.r_[sc[spelled], street_c[lost]],
                              np.r_[k_town, town_c[lost]] + 1],
                             [n_num, n_bkey, n_street, n_town + 1])
        known = pd.DataFrame({"k": key[:m], "bld": k_bld})
        known = known[(k_town >= 0) & _isin(key[:m], key[m:])]
        cand = pd.DataFrame({"k": key[m:], "row": lost}).merge(known, on="k", how="inner")
        cand = cand.drop_duplicates(["row", "bld"])
        if len(cand):
            # A near-miss postcode typed in the record narrows the choice.
            typed = pc.take(_pa(w, "postcode_text"), pa.array(cand["row"].to_numpy()))
            typed = np.asarray(typed.to_numpy(zero_copy_only=False), dtype=object)
            b_pc = _texts_at(pc_texts, pc_mode[cand["bld"].to_numpy()]).to_pylist()
            dist = process.cpdist(typed.tolist(), b_pc, scorer=OSA.distance, workers=1)
            cand["near"] = (dist <= 1) & (typed != "")
            any_near = cand.groupby("row")["near"].transform("any")
            cand = cand[(~any_near | cand["near"]).to_numpy()]
        n_cand = cand.groupby("row")["bld"].nunique()
        single = cand[cand["row"].map(n_cand) == 1]
        bld[single["row"].to_numpy()] = single["bld"].to_numpy()
        how[single["row"].to_numpy()] = 3
        many = n_cand.index[n_cand.to_numpy() > 1].to_numpy()
        how[many] = 4
        # The rest form postcode-less buildings among themselves, by street and town.
        rest = np.flatnonzero(no_pc & (bld < 0) & (how != 4))
        if len(rest):
            base = int(bld.max()) + 1 if (bld >= 0).any() else 0
            bld[rest] = base + _combined_rank(
                [number_c[rest], bkey_c[rest], street_c[rest], town_c[rest]],
                [n_num, n_bkey, n_street, n_town])
            how[rest] = 3
    has = np.flatnonzero(bld >= 0)
    # The dwellings are numbered here, before the buildings' postcodes, streets and towns
    # (bld is final: nothing below writes it).
    d = _flat_dwellings(bld, has, flat_c, len(flat_texts))
    w["bld"] = bld
    d_how = _str_series(pc.take(pa.array(_HOW, pa.string()), pa.array(how)), w.index)
    n_bld = int(bld.max()) + 1 if len(has) else 0
    at = np.where(bld >= 0, bld, n_bld)
    pc_of = np.full(n_bld + 1, -1, dtype=np.int64)  # new buildings: ""
    pc_of[roots] = pc_mode[roots]
    # The buildings' texts given to their 1M records (Arrow takes, which release the
    # GIL): the postcodes' and streets' on the second thread, the towns' here.
    texts_of = {"d_postcode": aside.submit(_texts_of, pc_texts, pc_of, at)}
    # Streets and towns most given: the buildings' pairs, plus the records placed in 3.
    placed = np.flatnonzero(no_pc & (bld >= 0))
    of_street, of_town = (modes(of_part, pb, pcd, pn, obj, n_bld + 1, placed, codes[placed])
                          for of_part, (pb, pcd, pn), codes, obj in (
                              (street_of, (sb, sc, sn), street_c, street_obj),
                              (town_of, (tb, tc, tn), town_c, town_obj)))
    texts_of["d_street"] = aside.submit(_texts_of, street_texts, of_street, at)
    # The buildings' keys as integers for _ambiguous_and_communal (from the codes here,
    # not its texts), on the second thread too. A building's records share number and
    # name (the parts' first records', or those of the records placed in 3.).
    num_of = np.full(n_bld + 1, -1, dtype=np.int64)
    name_of = np.full(n_bld + 1, -1, dtype=np.int64)
    num_of[roots], name_of[roots] = number_b[roots], bkey_b[roots]
    num_of[bld[placed]], name_of[bld[placed]] = number_c[placed], bkey_c[placed]
    key_codes = None if number_pa.null_count or bkey_pa.null_count else aside.submit(
        _building_key_codes, bld, (num_of, number_texts), (name_of, bkey_texts), (pc_of, pc_texts),
        (of_street, street_texts), (of_town, town_texts))
    texts_of["d_town"] = _texts_of(town_texts, of_town, at)
    aside.shutdown(wait=False)  # the work submitted still runs; the thread then ends
    key_codes = key_codes.result() if key_codes is not None else None
    w["d"] = d
    if key_codes is not None:
        w["bld_key_code"] = key_codes
    w["d_how"] = d_how
    for column, made in texts_of.items():  # d_postcode, d_street, d_town
        w[column] = _str_series(made if isinstance(made, pa.Array) else made.result(), w.index)
    return w


# --- ambiguity and communal establishments -----------------------------------------------

def _str_series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(arr, index=index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _dict_codes(arr: pa.Array) -> tuple[np.ndarray, int]:
    """Integer codes of a pyarrow string array (first-appearance order) and their count."""
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, len(encoded.dictionary)


def _first_rows(groups: np.ndarray, size: int) -> np.ndarray:
    """The first row of each group 0..size-1 (row 0 for a code no row has: building
    codes are their components' smallest members, so some codes go unused)."""
    first = np.full(size, len(groups), dtype=np.int64)
    rows = np.flatnonzero(groups >= 0)
    np.minimum.at(first, groups[rows], rows)
    first[first == len(groups)] = 0
    return first


def _joined_codes_by_parts(parts: list[pa.Array], joined: pa.Array) -> tuple[np.ndarray, int, bool]:
    """``_dict_codes(joined)`` (numbered differently), where ``joined`` is ``parts``
    joined by "|": when no part contains "|", equal joins are equal parts, and the parts
    (short texts with few distinct values) are quicker to encode than the joins. Also
    whether no part contains "|" (then the codes stand for the tuples of parts, so a
    longer join of these parts and more is coded by combining)."""
    codes, sizes = [], []
    for part in parts:
        encoded = pc.dictionary_encode(part)
        if pc.any(pc.match_substring(encoded.dictionary, "|")).as_py():
            return *_dict_codes(joined), False
        codes.append(np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64))
        sizes.append(len(encoded.dictionary))
    if not len(joined):
        return np.zeros(0, dtype=np.int64), 0, True
    rank = _combined_rank(codes, sizes)
    return rank, int(rank.max()) + 1, True


def _first_seen(key: np.ndarray) -> np.ndarray:
    """Positions of each value's first occurrence, ascending: the sorted
    ``np.unique(key, return_index=True)[1]``, by a hash table (~5x quicker than
    np.unique's stable sort for 450k int64 keys)."""
    return np.flatnonzero(~pd.Series(np.asarray(key, dtype=np.int64)).duplicated().to_numpy())


def _ambiguous_and_communal(w: pd.DataFrame) -> pd.DataFrame:
    """Flag missing-flat records at buildings with flats, and communal establishments.

    ``w`` comes from ``_dwellings``: a building's records share number, building name and
    the building's postcode, street and town, and a dwelling's records also the flat, so
    the building and dwelling keys are written once per building and dwelling (from
    their first records) and given to the records by one Arrow take. Also writes
    ``dwelling_key_code``: an integer per record, equal exactly where ``dwelling_key``
    is (-1: no dwelling), which ``_households`` numbers the households by."""
    w = w.copy(deep=False)  # new columns only; the caller's frame is untouched
    n = len(w)
    d = w["d"].to_numpy().astype(np.int64)
    bld = w["bld"].to_numpy().astype(np.int64)
    has_d = d >= 0
    n_bld = int(bld.max()) + 1 if has_d.any() else 0
    n_d = int(d.max()) + 1 if has_d.any() else 0
    number, bkey, flat, d_street = _pa(w, "number"), _pa(w, "bkey"), _pa(w, "flat"), _pa(w, "d_street")
    d_postcode, d_town = _pa(w, "d_postcode"), _pa(w, "d_town")

    def keys_of(groups, size, first, columns):
        """Each group's key from its first record (``first``: those rows, ascending),
        and every record's position in them (-1: no dwelling). The first records are
        read in row order (a near-sequential take, three times faster than in group
        order)."""
        at = pa.array(first)
        # The place: the postcode, else "T:" and the town (postcode-less buildings only).
        place = pc.take(d_postcode, at)
        no_postcode = np.flatnonzero(~_nonempty(place))
        if len(no_postcode):
            town = pc.take(d_town, pa.array(first[no_postcode]))
            place = _patched(place, no_postcode, _cat("T:", town))
        # Joined by a separator: ~40% faster than "|" scalars as parts.
        parts = [place] + [pc.take(c, at) for c in columns]
        key = pc.binary_join_element_wise(*parts, "|")
        position = np.full(size, -1, dtype=np.int64)
        position[groups[first]] = np.arange(len(first))
        rows = np.full(n, -1, dtype=np.int64)
        rows[has_d] = position[groups[has_d]]
        return key, rows, parts

    # First records: of each dwelling, in row order; a building's is its first
    # dwelling's (building codes are not all used).
    d_first = np.sort(_first_rows(d, n_d)[np.bincount(d[has_d], minlength=n_d) > 0])
    d_bld = bld[d_first]
    first_of = np.full(n_bld, len(d_first), dtype=np.int64)
    np.minimum.at(first_of, d_bld, np.arange(len(d_first)))
    b_first = d_first[first_of[d_bld] == np.arange(len(d_first))]

    def dwelling_keys():
        d_keys, at_d, _ = keys_of(d, n_d, d_first, [number, bkey, flat, d_street])
        return d_keys, at_d, _texts_at(d_keys, at_d)

    # The dwellings' keys (mostly Arrow kernels, which release the GIL) are made on a
    # second thread while the buildings' keys, flats and communal establishments are
    # worked out here; the thread reads only the arrays taken above, never ``w``.
    # The communal names are coded there first (a short encode, needed sooner).
    aside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-keys")
    name_coding = aside.submit(_sorted_codes, _pa(w, "communal_name"))
    dwelling_work = aside.submit(dwelling_keys)
    # Equal building keys (rarely two buildings') share a code; n_bk: no dwelling.
    # From _dwellings' codes when it made them (then the keys' texts are needed for the
    # named establishments alone, and made on the second thread), else from the texts.
    given = w["bld_key_code"].to_numpy() if "bld_key_code" in w.columns else None
    if given is not None and n and given[has_d].min(initial=0) >= 0:
        by_parts = True
        n_bk = int(given.max()) + 1 if has_d.any() else 0
        bk = np.where(has_d, given, n_bk)
        building_keys = None
    else:
        b_keys, at_b, b_parts = keys_of(bld, n_bld, b_first, [number, bkey, d_street])
        bk_of, n_bk, by_parts = _joined_codes_by_parts(b_parts, b_keys)
        bk = np.where(has_d, bk_of[np.maximum(at_b, 0)] if n_bld else 0, n_bk)
        building_keys = (b_keys, at_b)
    n_bk += 1

    # Flats known at each building: distinct (building, flat) pairs, the first seen first.
    flat_encoded = pc.dictionary_encode(flat)
    flat_codes = np.asarray(flat_encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    nf = len(flat_encoded.dictionary)
    # Dwelling keys as integers, equal exactly where the keys are (-1: no dwelling), so
    # that household ids are numbered without hashing a million keys' text: a dwelling
    # key is its building key's parts and the flat, unless some part holds a "|".
    if by_parts and not pc.any(pc.match_substring(flat_encoded.dictionary, "|")).as_py():
        dk = np.where(has_d, bk * max(nf, 1) + flat_codes, -1)
    else:
        d_keys, at_d, _ = dwelling_work.result()
        dk_of = _dict_codes(d_keys)[0]
        dk = np.where(has_d, dk_of[np.maximum(at_d, 0)] if n_d else 0, -1)
    # The new columns, added to ``w`` at the end in this order; 1M-record texts (Arrow
    # takes) are made on the second thread, after the dwellings' keys, while the rest is
    # worked out here (futures until then).
    cols = {"dwelling_key_code": dk}
    has_flat = _nonempty(flat)
    # A dwelling's records share building and flat: its first record stands for them
    # (the dwellings' first records are in row order).
    known = d_first[has_flat[d_first]] if n_d else np.zeros(0, dtype=np.int64)
    nf = max(nf, 1)
    pair_rows = known[_first_seen(bk[known] * nf + flat_codes[known])]  # row order, as drop_duplicates keeps it
    n_flats = np.bincount(bk[pair_rows], minlength=n_bk)
    one_flat = np.full(n_bk, -1, dtype=np.int64)  # a building's first flat (code)
    firsts = pair_rows[_first_seen(bk[pair_rows])]
    one_flat[bk[firsts]] = flat_codes[firsts]
    building_flats = np.where(has_d, n_flats[bk], 0) if n else np.zeros(0, dtype=np.int64)
    cols["building_flats"] = building_flats.astype(int)
    missing_flat = has_d & ~has_flat & (building_flats > 0)
    flat_at = np.where(has_d, one_flat[bk], -1) if n else np.zeros(0, dtype=np.int64)
    cols["only_flat"] = aside.submit(_texts_at, flat_encoded.dictionary, flat_at)

    # Communal by name: the whole building (every flat or room) is the establishment.
    name_codes, name_texts = name_coding.result()
    name_obj = np.asarray(name_texts.to_numpy(zero_copy_only=False), dtype=object)
    named = has_d & (w["communal_name"] != "").to_numpy()
    g, c = _mode_codes(np.where(named, bk, -1), (name_codes, name_obj))
    label_of = np.full(n_bk, -1, dtype=np.int64)  # never "": empty names are not counted
    label_of[g] = c
    label = np.where(has_d, label_of[bk], -1) if n else np.zeros(0, dtype=np.int64)
    cols["communal_label"] = aside.submit(_texts_at, name_texts, label)
    by_name = label >= 0

    def establishment_keys():
        """The establishment: the building for a named one, else the dwelling (made
        on the second thread, after the dwellings' keys)."""
        dwelling_key = dwelling_work.result()[2]
        if not by_name.any():
            return dwelling_key
        named_rows = np.flatnonzero(by_name)
        if building_keys is None:  # the keys of the named buildings alone
            named_b = np.zeros(n_bld, dtype=bool)
            named_b[bld[named_rows]] = True
            b_keys, at_b = keys_of(bld, n_bld, b_first[named_b[bld[b_first]]], [number, bkey, d_street])[:2]
        else:
            b_keys, at_b = building_keys
        return _patched(dwelling_key, named_rows, pc.take(b_keys, pa.array(at_b[named_rows])))

    establishing = aside.submit(establishment_keys)
    cols["ambiguous_flat"] = missing_flat & ~by_name
    cols["many_postcodes"] = (w["d_how"] == "no_postcode_many").to_numpy()

    # Communal by size or age, counted over the dwelling's linked records.
    linked = has_d & ~cols["ambiguous_flat"]
    n_d = int(d.max()) + 1 if linked.any() else 0
    dl = d[linked]
    size_d = np.bincount(dl, minlength=n_d)
    old_d = np.bincount(dl, weights=(w["age"].to_numpy() >= ELDERLY_AGE)[linked], minlength=n_d)
    # Surnames are counted only where the age rule could apply (5 to 10 records, mostly
    # 65+): their records' surnames alone are read (all of them if any is missing).
    surname = _pa(w, "surname")
    asked = (size_d >= ELDERLY_MIN_SIZE) & (size_d <= COMMUNAL_SIZE) & (old_d * 2 > size_d)
    read = linked & asked[np.where(linked, d, 0)] if n_d else np.zeros(n, dtype=bool)
    if surname.null_count:
        read = linked
    read = np.flatnonzero(read)
    surname = pc.dictionary_encode(pc.take(surname, pa.array(read)))
    s_codes = np.asarray(pc.fill_null(surname.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    s_values = surname.dictionary.to_numpy(zero_copy_only=False)
    s_norm, _ = pd.factorize(pd.Series(np.asarray(s_values, dtype=object), dtype="str").str.upper().str.strip())
    s_code = s_norm[s_codes] if len(read) else np.zeros(0, dtype=np.int64)
    ns = max(int(s_norm.max()) + 1 if len(s_norm) else 1, 1)
    pairs = _sorted_unique(d[read] * ns + s_code)
    surnames_d = np.bincount(pairs // ns, minlength=n_d)
    at = np.where(linked, d, 0)
    size = np.where(linked, size_d[at] if n_d else 0, 0)
    old = np.where(linked, old_d[at] if n_d else 0, 0)
    surnames = np.where(linked, surnames_d[at] if n_d else 0, 0)
    by_size = linked & (size > COMMUNAL_SIZE)
    by_age = (linked & ~by_size & (size >= ELDERLY_MIN_SIZE) & (old * 2 > size)
              & (surnames >= ELDERLY_MIN_SURNAMES))
    cols["dwelling_size"] = size.astype(int)
    cols["dwelling_old"] = old.astype(int)
    how = np.select([by_name, by_size, by_age], [0, 1, 2], -1)
    cols["communal_how"] = aside.submit(_texts_at, pa.array(["name", "size", "age"]), how)
    aside.shutdown(wait=False)  # the work submitted still runs; the thread then ends
    communal = by_name | by_size | by_age
    cols["communal"] = communal
    cols["dwelling_key"] = dwelling_work.result()[2]
    establishment_key = cols["establishment_key"] = establishing.result()
    # Establishments are only looked at for communal residents: coded for those alone
    # (-1 and size 0 elsewhere).
    est_code = np.full(n, -1, dtype=np.int64)
    est_size = np.zeros(n, dtype=int)
    residents = np.flatnonzero(communal)
    if len(residents):
        ek, n_ek = _dict_codes(pc.take(establishment_key, pa.array(residents)))
        est_code[residents] = ek
        est_size[residents] = np.bincount(ek, minlength=n_ek)[ek]
    cols["establishment_code"] = est_code
    cols["establishment_size"] = est_size
    for column, value in cols.items():
        if isinstance(value, Future):
            value = value.result()
        w[column] = _str_series(value, w.index) if isinstance(value, pa.Array) else value
    return w


# --- households --------------------------------------------------------------------------

def _system_groups(w: pd.DataFrame) -> pd.Series:
    """The clinical system's household key per record: household_id, else uprn ("").

    Worked out on the records that give either (often none): the others get ""."""
    given = _nonempty(_pa(w, "household_id")) | _nonempty(_pa(w, "uprn"))
    if given.all():
        return _system_groups_of(w)
    key = _empty_text(len(w))
    if given.any():
        rows = np.flatnonzero(given)
        found = _system_groups_of(w.iloc[rows]).to_numpy(dtype=object)
        key = _replace_rows(key, given, pa.array(found, pa.string()))
    return _str_series(key, w.index)


def _system_groups_of(w: pd.DataFrame) -> pd.Series:
    hid = w["household_id"].str.strip()
    uprn = w["uprn"].str.strip()
    key = pd.Series(np.where(hid != "", "household id " + hid, ""), index=w.index, dtype=object)
    # A uprn-only record joins the household id used at that uprn, if there is just one.
    both = w[(hid != "") & (uprn != "")]
    pairs = pd.DataFrame({"u": uprn[both.index], "k": key[both.index]}).drop_duplicates()
    unique_uprn = pairs.drop_duplicates("u", keep=False)
    per_uprn = unique_uprn.set_index("u")["k"]
    only_uprn = (hid == "") & (uprn != "")
    mapped = _map_text(uprn[only_uprn], per_uprn)
    key[only_uprn] = np.where(mapped != "", mapped, "uprn " + uprn[only_uprn])
    return key.astype("str")


def _households(w: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    """Household per record, its kind of link, and any system-id conflict."""
    w = w.copy(deep=False)  # new columns only; the caller's frame is untouched
    n = len(w)
    sys_key = _system_groups(w)
    communal = w["communal"].to_numpy()
    standalone = w["ambiguous_flat"].to_numpy() | w["many_postcodes"].to_numpy() | (w["d"].to_numpy() < 0)
    # Communal residents ignore system household ids (a care home is not one family).
    sys_pa = _pa(pd.DataFrame({"k": sys_key}), "k")
    keyed = _nonempty(sys_pa)
    w["sys_ignored"] = keyed & communal
    keyed &= ~communal
    sys_pa = _if(communal, "", sys_pa)

    # Records without a system key join the one system household at their dwelling
    # (worked out for the records that could: none when no dwelling holds a system key).
    d = w["d"].to_numpy()
    eligible = (d >= 0) & ~communal & ~standalone
    adopt = np.zeros(n, dtype=bool)
    shared = np.zeros(n, dtype=bool)
    holders = np.flatnonzero(eligible & keyed)
    if len(holders):
        with_key = pd.DataFrame({"d": d[holders],
                                 "k": pc.take(sys_pa, pa.array(holders)).to_numpy(zero_copy_only=False)})
        keys_at = with_key.drop_duplicates().groupby("d")["k"]
        n_keys = keys_at.nunique()
        first_key = keys_at.first()
        open_rows = np.flatnonzero(eligible & ~keyed)
        count = pd.Series(d[open_rows]).map(n_keys).fillna(0).to_numpy()
        adopt[open_rows[count == 1]] = True
        shared[open_rows[count > 1]] = True
        if adopt.any():
            taken = _map_text(pd.Series(d[adopt]), first_key).to_numpy(dtype=object)
            sys_pa = _replace_rows(sys_pa, adopt, pa.array(taken, pa.string()))
    w["sys_adopted"] = adopt
    w["sys_key"] = _str_series(sys_pa, w.index)
    w["sys_shared_dwelling"] = shared
    has_sys = keyed | adopt

    # Communal: each resident alone, except residents linked by a recorded family
    # relationship (a mother and her children in a refuge or family hostel).
    person = np.arange(n)
    group = person.copy()
    if communal.any() and len(rel):
        fam = rel[rel["relationship"].isin(FAMILY_WORDS)]
        a, b = _rel_rows(fam)
        est = w["establishment_code"].to_numpy()  # equal codes, equal establishments
        same = communal[a] & communal[b] & (est[a] == est[b])
        group = _components(n, a[same], b[same])
    w["communal_family"] = communal & (np.bincount(group, minlength=1)[group] > 1 if n else communal)

    pid_pa = _pa(w, "patient_id")
    # communal: "person|" + the family's first id; system: "system|" + its key; standalone:
    # "person|" + id; else "dwelling|" + the dwelling key.
    group_pid = _scatter(n, communal, pc.take(pid_pa, pa.array(group[communal]))) if communal.any() \
        else _empty_text(n)
    on_sys = ~communal & has_sys
    alone = ~communal & ~has_sys & standalone
    dwelling = ~communal & ~has_sys & ~standalone
    choices = [(communal, ["person|", group_pid]), (on_sys, ["system|", _pa(w, "sys_key")]),
               (alone, ["person|", pid_pa]), (dwelling, ["dwelling|", _pa(w, "dwelling_key")])]
    missing = _missing_in_choices(choices)
    if "dwelling_key_code" in w.columns and not missing:
        # Integers equal exactly where the keys are: the dwelling key's code for the
        # dwelling households, the other records' few keys coded apart (no other key
        # starts with "dwelling|"). The keys' texts are made for those records and the
        # households' first records alone (the choices hold every record, and no part
        # is missing: the same texts as _choose_text of the whole columns).
        def keys_at(rows):
            at = pa.array(np.asarray(rows, dtype=np.int64))
            return _choose_text([(mask[rows], [p if isinstance(p, str) else pc.take(p, at) for p in parts])
                                 for mask, parts in choices])

        same = np.asarray(w["dwelling_key_code"].to_numpy(), dtype=np.int64).copy()
        others = np.flatnonzero(~dwelling)
        if len(others):
            same[others] = int(same.max()) + 1 + _dict_codes(keys_at(others))[0]
        id_bytes, hh = _hash_id_bytes("H-", keys_at, same)
        w["household_id"] = pd.Series(_fixed_width_text(id_bytes), index=w.index,
                                      dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    else:
        w["household_id"], hh = _hash_ids("H-", _choose_text(choices), w.index)
    w["hh"] = hh  # integer household code: equal codes, equal household ids
    w["household_size"] = np.bincount(hh, minlength=1)[hh] if n else np.zeros(0, dtype=np.int64)

    # A standalone record joined by a system id takes that household's main dwelling.
    w["sys_resolved"] = has_sys & standalone
    if w["sys_resolved"].any():
        good = w.loc[has_sys & ~standalone, ["household_id", "dwelling_key"]]
        hcode, hids = pd.factorize(good["household_id"])
        main = _mode(hcode, good["dwelling_key"].reset_index(drop=True))
        main.index = hids[main.index]
        resolved = w["sys_resolved"] & w["household_id"].isin(main.index)
        w.loc[resolved, "dwelling_key"] = w.loc[resolved, "household_id"].map(main)
        w.loc[w["sys_resolved"] & ~resolved, "sys_resolved"] = False

    # Conflicts: one system household spread over clearly different addresses.
    grp = w.loc[has_sys & (w["dwelling_key"] != "").to_numpy(), ["household_id", "dwelling_key", "d_postcode"]]
    addr = grp.drop_duplicates(["household_id", "dwelling_key"])
    n_pc = addr[addr["d_postcode"] != ""].groupby("household_id")["d_postcode"].nunique()
    n_home = addr.groupby("household_id")["dwelling_key"].nunique()
    conflict = pd.Series("", index=n_home.index, dtype=object)
    conflict[n_home > 1] = "members' addresses differ (" + n_home[n_home > 1].astype(str) + " different homes"
    many_pc = n_pc[n_pc > 1]
    conflict[many_pc.index] = conflict[many_pc.index] + ", " + many_pc.astype(str) + " postcodes"
    conflict[conflict != ""] = conflict[conflict != ""] + ")"
    # Only records with a system key can be in conflict: map those alone.
    text = _empty_text(n)
    rows = np.flatnonzero(has_sys)
    if len(rows) and len(conflict):
        found = _map_text(w["household_id"].iloc[rows], conflict).to_numpy(dtype=object)
        text = _replace_rows(text, has_sys, pa.array(found, pa.string()))
    w["conflict"] = _str_series(text, w.index)
    return w


# --- kinds, shared houses, roles ---------------------------------------------------------

_KINDS = ["communal", "ambiguous", "no_address", "flat", "lettered_house", "named_house", "house",
          "shared_house"]
_HOME_KINDS = ["flat", "lettered_house", "house", "named_house"]


def _kind_codes(w: pd.DataFrame, sys_resolved: np.ndarray) -> np.ndarray:
    """Each record's kind as a code into ``_KINDS``, but for the system-resolved records'
    kinds and the shared houses (which ``_kinds`` works out from the households).
    ``sys_resolved``: the records placed in a dwelling by a system id."""
    own_d = (w["d"] >= 0).to_numpy()
    has_d = own_d | sys_resolved  # placed in a dwelling by a system id
    standalone_flat = (w["ambiguous_flat"] | w["many_postcodes"]).to_numpy() & ~sys_resolved
    number_codes, numbers = pd.factorize(w["number"])  # few distinct house numbers
    lettered = _bool_pa(pc.match_substring_regex(pa.array(np.asarray(numbers, dtype=object), pa.string()),
                                                 r"[0-9][A-Z]$"))[number_codes]
    # A home is named when any of its records names it ("Rose Cottage, 12 Mill Lane").
    d = w["d"].to_numpy()
    named_d = np.zeros(int(d.max()) + 1 if own_d.any() else 0, dtype=bool)
    named_d[d[own_d & (w["building"] != "").to_numpy()]] = True
    named = own_d & named_d[np.where(own_d, d, 0)] if len(named_d) else np.zeros(len(w), dtype=bool)
    # Kinds as codes into _KINDS, turned into text once at the end.
    kind = np.select(
        [
            w["communal"].to_numpy(),
            standalone_flat,
            ~has_d,
            (w["flat"] != "").to_numpy(),
            lettered,
            named,
            (w["number"] != "").to_numpy(),
        ],
        np.arange(7),
        _KINDS.index("no_address"),
    )
    return kind


def _kinds_before_households(w: pd.DataFrame) -> np.ndarray:
    """``_kind_codes`` as if no record were placed by a system id (``w`` from
    ``_ambiguous_and_communal``): wrong only for the records that are, whose kinds
    ``_kinds`` then takes from their households. ``link_normalised`` has it made on a
    second thread while the households are numbered."""
    return _kind_codes(w, np.zeros(len(w), dtype=bool))


def _kinds(w: pd.DataFrame, rel: pd.DataFrame, before: np.ndarray | None = None) -> pd.DataFrame:
    """Each record's ``dwelling_kind`` (``_dwelling_ids`` then makes the ``dwelling_id``).
    ``before``: ``_kinds_before_households`` of the frame before the households, if made."""
    w = w.copy(deep=False)  # new columns only; the caller's frame is untouched
    resolved = w["sys_resolved"].to_numpy()
    # Made before the households, the codes differ only at the system-resolved records,
    # whose kinds are given next: the same kinds either way.
    kind = _kind_codes(w, resolved) if before is None else before.copy()
    # A record placed by a system id takes the kind of its household's main dwelling.
    if resolved.any():
        hcode = w["hh"].to_numpy()
        main_kind = _mode(np.where(resolved, -1, hcode), pd.Series(np.asarray(_KINDS, dtype=object)[kind]))
        taken = _lookup(hcode[resolved], main_kind, "ambiguous").to_numpy(dtype=object)
        kind[resolved] = pd.Index(_KINDS).get_indexer(taken)
    # Shared house: 3+ adults, no children, all surnames different, nobody related.
    home = (~w["communal"].to_numpy()) & np.isin(kind, [_KINDS.index(k) for k in _HOME_KINDS])
    # Counted per household code over its home records with bincounts (no groupby).
    hh_of = w["hh"].to_numpy().astype(np.int64)
    rows = np.flatnonzero(home & (w["household_size"] >= SHARED_HOUSE_MIN_ADULTS).to_numpy())
    if len(rows):
        n_hh = int(hh_of.max()) + 1
        h = hh_of[rows]
        size = np.bincount(h, minlength=n_hh)
        children = np.bincount(h, weights=w["is_child"].to_numpy()[rows].astype(np.int64), minlength=n_hh)
        dob_missing = np.bincount(h, weights=w["age"].isna().to_numpy()[rows].astype(np.int64), minlength=n_hh)
        # Distinct surnames (upper-cased, stripped: done once per distinct spelling).
        s_codes, s_values = pd.factorize(w["surname"].iloc[rows])
        s_norm, _ = pd.factorize(pd.Series(np.asarray(s_values, dtype=object), dtype="str").str.upper().str.strip())
        named = s_codes >= 0  # nunique leaves out missing surnames
        s_code = s_norm[s_codes[named]] if len(s_norm) else np.zeros(0, dtype=np.int64)
        ns = max(int(s_norm.max()) + 1 if len(s_norm) else 1, 1)
        surnames = np.bincount(_sorted_unique(h[named] * ns + s_code) // ns, minlength=n_hh)
        related = np.zeros(n_hh, dtype=bool)
        if len(rel):
            a, b = _rel_rows(rel)
            related[hh_of[a[hh_of[a] == hh_of[b]]]] = True
        shared_hh = (size > 0) & (children == 0) & (surnames == size) & (dob_missing == 0) & ~related
        is_shared = shared_hh[hh_of] & home
        kind[is_shared] = _KINDS.index("shared_house")
    w["dwelling_kind"] = _str_series(pc.take(pa.array(_KINDS, pa.string()), pa.array(kind)), w.index)
    return w


def _dwelling_ids(w: pd.DataFrame) -> pd.Series:
    """Dwelling ids (``w`` from ``_kinds``): the establishment for communal residents,
    the person when there is no dwelling to speak of, else the dwelling key."""
    kind = _pa(w, "dwelling_kind")
    alone = (_bool_pa(pc.equal(kind, "ambiguous")) | _bool_pa(pc.equal(kind, "no_address"))
             | ~_nonempty(_pa(w, "dwelling_key")))
    communal = w["communal"].to_numpy().astype(bool)
    if "hh" in w.columns:
        made = _dwelling_ids_by_households(w, communal, alone)
        if made is not None:
            return made
    key = _choose_text([(communal, ["dwelling|", _pa(w, "establishment_key")]),
                        (~communal & alone, ["person|", _pa(w, "patient_id")]),
                        (~communal & ~alone, ["dwelling|", _pa(w, "dwelling_key")])])
    return _hash_ids("D-", key, w.index)[0]


def _dwelling_ids_by_households(w: pd.DataFrame, communal: np.ndarray, alone: np.ndarray) -> pd.Series | None:
    """``_dwelling_ids`` where the records of dwelling households (no system key, not
    communal, not standalone: see ``_households``) whose dwelling id is their dwelling's
    have the key "dwelling|" + dwelling key for both ids: their household id's hash is
    theirs, read without making the 1M keys; only the other records' keys are made and
    hashed. None when an id or key is missing or the household ids are not all of
    ``_id_bytes``' form."""
    ids = _pa(w, "household_id")
    dwelling_key = _pa(w, "dwelling_key")
    known = _fixed_width_bytes(ids, 14)
    if known is None or dwelling_key.null_count or not (known[:, :2] == np.frombuffer(b"H-", np.uint8)).all():
        return None
    standalone = w["ambiguous_flat"].to_numpy() | w["many_postcodes"].to_numpy() | (w["d"].to_numpy() < 0)
    same = ~communal & ~alone & ~_nonempty(_pa(w, "sys_key")) & ~standalone
    out = known.copy()
    out[:, :2] = np.frombuffer(b"D-", np.uint8)
    rows = np.flatnonzero(~same)
    if len(rows):
        at = pa.array(rows)
        c, a = communal[rows], alone[rows]

        def col(column):
            return pc.take(_pa(w, column), at)

        key = _choose_text([(c, ["dwelling|", col("establishment_key")]), (~c & a, ["person|", col("patient_id")]),
                            (~c & ~a, ["dwelling|", col("dwelling_key")])])
        if key.null_count:
            return None
        out[rows] = _hash_id_bytes("D-", key.cast(pa.string()))[0]
    return pd.Series(_fixed_width_text(out), index=w.index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


_ROLES = ["child", "adult", "parent", "probable_parent", "resident"]
_NOTE_PREFIXES = ["probable parent of ", "probable child of ", "probable sibling of ",
                  "date of birth missing: role not inferred"]
_NOTE_SUFFIXES = ["", " (recorded)", " (recorded; not in this household)"]


def _ordered_pairs(groups: np.ndarray, rows: np.ndarray):
    """All ordered pairs (self pairs included) of ``rows`` (ascending) sharing a
    ``groups`` value, built by ``np.repeat`` instead of a self-merge.

    Returns (x, y, first, local, member): the pairs' rows; per member (``member`` gives
    the members' rows in pair-list order) the position of its first pair and its place
    in its group, so pair (member i, member j) of one group sits at ``first[i] + local[j]``."""
    rows = np.asarray(rows, dtype=np.int64)
    span = int(rows.max()) + 1 if len(rows) else 1
    g_max = int(groups[rows].max()) if len(rows) else 0
    if 0 <= int(groups[rows].min() if len(rows) else 0) and (g_max + 1) * span < 2**62:
        # (group, row) as one int64, sorted by value: ~5x faster than a stable argsort
        member = np.sort(groups[rows].astype(np.int64) * span + rows) % span
    else:
        member = rows[np.argsort(groups[rows], kind="stable")]
    g = groups[member]
    m = len(member)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if m else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, m])
    start_of = np.repeat(starts, sizes)  # each member's group start
    size_of = np.repeat(sizes, sizes)
    local = np.arange(m) - start_of
    first = np.cumsum(size_of) - size_of
    xi = np.repeat(np.arange(m), size_of)
    yi = start_of[xi] + (np.arange(len(xi)) - first[xi])
    return member[xi], member[yi], first, local, member


def _texts_taken(texts: pa.Array, at: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """``pc.take(texts, at)`` of a string array, null where ``null`` is true. Texts of one
    width (no nulls: patient ids usually are) are taken as fixed-size binary items, ~5x
    faster than a string take of 1.6M random positions (which copies each one's bytes by
    its offsets), then given offsets by a cast."""
    at = np.asarray(at, dtype=np.int64)
    indices = pa.array(at, mask=null) if null is not None and null.any() else pa.array(at)
    width = 0
    if pa.types.is_string(texts.type) and len(texts) and not texts.null_count:
        offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[texts.offset:texts.offset + 2]
        width = int(offsets[1] - offsets[0])
    known = _fixed_width_bytes(texts, width) if width else None
    if known is None:
        return pc.take(texts, indices)
    items = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(texts),
                                                 [None, pa.py_buffer(np.ascontiguousarray(known).reshape(-1))])
    return pc.take(items, indices).cast(pa.binary()).cast(pa.string())


def _roles_before_households(rel: pd.DataFrame, n: int, dob: pd.Series) -> tuple:
    """What ``_roles`` works out before the households are known (``rel`` located among
    ``n`` records; ``dob`` their dates of birth): the recorded relationships' notes but
    their suffixes (same household or not), their parent-child ends, and the birth years
    and month-days. ``link_normalised`` has it made on a second thread while the
    households are numbered; the same arrays as ``_roles`` makes for itself."""
    year = dob.dt.year.to_numpy(dtype=float)
    md = (dob.dt.month * 100 + dob.dt.day).to_numpy(dtype=float)
    if not len(rel):
        return None, (year, md)
    a, b = _rel_rows(rel)
    ok = (rel["a"].to_numpy() >= 0) & (rel["b"].to_numpy() >= 0)
    words = pc.filter(pc.fill_null(_pa(rel, "relationship"), ""), pa.array(ok))
    encoded = pc.dictionary_encode(words)
    word = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = encoded.dictionary.to_pylist()
    in_words = lambda table: np.array([x in table for x in distinct], dtype=bool)  # noqa: E731
    sym_w, parent_w, child_w = in_words(SYMMETRIC_WORDS), in_words(PARENT_WORDS), in_words(CHILD_WORDS)
    prefixes = [t for x in distinct for t in (x + " of ", x + " is ")]
    # related (b) is the <relationship> of patient (a).
    row, other = np.r_[b, a], np.r_[a, b]
    pre = np.r_[word * 2, word * 2 + (~sym_w[word]).astype(np.int64)]
    # A pair recorded in both directions says it once: (row, other, prefix) decide the
    # text (the suffix and the other id follow from the pair). Keep first sightings,
    # ranked within their (row, other) in the order given.
    rkey = row * n + other
    count = len(rkey)
    if n * n * count < 2**62:
        at = np.sort(rkey * count + np.arange(count)) % count  # (rkey, position) order
    else:
        at = np.argsort(rkey, kind="stable")
    rk = rkey[at]
    new = np.r_[True, rk[1:] != rk[:-1]] if count else np.zeros(0, dtype=bool)
    rank = np.zeros(count, dtype=np.int64)
    keep = np.ones(count, dtype=bool)
    if not new.all():
        starts = np.flatnonzero(new)
        rank[at] = np.arange(count) - starts[np.cumsum(new) - 1]
        alone = new & np.r_[new[1:], True]
        runs = np.flatnonzero(~alone)  # members of runs of two or more, in order
        dk = rk[runs] * max(2 * len(distinct), 1) + pre[at[runs]]
        _, first = np.unique(dk, return_index=True)  # first sightings
        dup = np.ones(len(runs), dtype=bool)
        dup[first] = False
        keep[at[runs[dup]]] = False
    is_parent, is_child_word = parent_w[word], child_w[word]
    adult = np.r_[b[is_parent], a[is_child_word]]
    kid = np.r_[a[is_parent], b[is_child_word]]
    return (a, b, prefixes, keep, row[keep], other[keep], rank[keep], pre[keep], adult, kid), (year, md)


def _roles(w: pd.DataFrame, rel: pd.DataFrame, before: tuple | None = None) -> pd.DataFrame:
    """Roles and plain-English relationship notes.

    Recorded relationships come first: a recorded mother, father, parent or guardian of a
    child in the household is ``parent``, and any recorded relationship between two
    people (sibling, grandparent, ...) rules out age inference for that pair. Otherwise,
    in ordinary homes (not communal, not shared houses), an adult at least
    ``PARENT_AGE_GAP`` years older than a child is ``probable_parent``.

    Notes are integer arrays until the end: the row, the order of the kind of note, the
    other row, a prefix code (``prefixes``), the other record's id and a suffix code
    (``suffixes``); they are sorted by one unique int64 key and their texts made once.
    ``before``: ``_roles_before_households(rel, len(w), w["date_of_birth"])`` if made
    already (on another thread), else made here.
    """
    w = w.copy(deep=False)  # new columns only; the caller's frame is untouched
    n = len(w)
    hh = w["hh"].to_numpy()
    child = w["is_child"].to_numpy().astype(bool)
    communal = w["communal"].to_numpy().astype(bool)
    role = np.where(child, 0, 1).astype(np.int8)  # codes into _ROLES
    prefixes: list[str] = []
    suffixes = list(_NOTE_SUFFIXES)
    # Notes: (row, order, other, rank among equal (row, order, other), prefix, suffix).
    notes: list[tuple[np.ndarray, int, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]] = []

    if before is None:
        before = _roles_before_households(rel, n, w["date_of_birth"])
    recorded_notes, (year, md) = before
    a = b = np.zeros(0, dtype=np.int64)
    if recorded_notes is not None:
        a, b, prefixes, keep, row, other, rank, pre, adult, kid = recorded_notes
        prefixes = list(prefixes)
        where = np.where(hh[a] == hh[b], 1, 2)
        notes.append((row, 0, other, rank, pre, np.r_[where, where][keep]))
        recorded_parent = (hh[adult] == hh[kid]) & child[kid] & ~child[adult]
        role[adult[recorded_parent]] = 2

    base = len(prefixes)
    prefixes += _NOTE_PREFIXES
    # Age inference, in ordinary homes only (not communal, not shared houses).
    ordinary = (~communal & _bool_pa(pc.not_equal(_pa(w, "dwelling_kind"), "shared_house"))
                & (w["household_size"] > 1).to_numpy())
    has_child = np.zeros(int(hh.max()) + 1 if n else 0, dtype=bool)
    has_child[hh[ordinary & child]] = True
    members = np.flatnonzero(ordinary & has_child[hh]) if n else np.zeros(0, dtype=np.int64)
    if len(members):
        ra, rb, first, local, member = _ordered_pairs(hh, members)
        # Pairs with a recorded relationship (either way round; same household, so both
        # are members): marked at their places in the pair list.
        recorded = np.zeros(len(ra), dtype=bool)
        if len(a):
            k = np.full(n, -1, dtype=np.int64)
            k[member] = np.arange(len(member))
            both = (k[a] >= 0) & (k[b] >= 0) & (hh[a] == hh[b])
            ka, kb = k[a[both]], k[b[both]]
            recorded[first[ka] + local[kb]] = True
            recorded[first[kb] + local[ka]] = True
        differ = ra != rb
        ra, rb, recorded = ra[differ], rb[differ], recorded[differ]
        # Completed years from a's birth to b's birth, for the (adult, child) pairs alone
        # (about a quarter of the pairs).
        cand = np.flatnonzero((~child[ra]) & child[rb] & ~recorded)
        ca, cb = ra[cand], rb[cand]
        gap = year[cb] - year[ca] - (md[cb] < md[ca])
        probable = gap >= PARENT_AGE_GAP
        pa_, pb_ = ca[probable], cb[probable]
        years, years_code = np.unique(np.asarray(gap[probable], dtype=np.int64), return_inverse=True)
        older = len(suffixes) + 2 * years_code.reshape(-1)
        for y in years.tolist():
            suffixes += [f" ({y} years older)", f" ({y} years younger)"]
        notes.append((pa_, 1, pb_, None, np.full(len(pa_), base), older))
        notes.append((pb_, 1, pa_, None, np.full(len(pb_), base + 1), older + 1))
        upgrade = pa_[role[pa_] == 1]
        role[upgrade] = 3
        sib = child[ra] & child[rb] & ~recorded
        notes.append((ra[sib], 2, rb[sib], None, np.full(int(sib.sum()), base + 2), np.zeros(int(sib.sum()), dtype=np.int64)))
    role[communal & ~child & (role != 2)] = 4
    missing_dob = np.flatnonzero(w["age"].isna().to_numpy())
    if len(missing_dob):
        notes.append((missing_dob, -1, missing_dob, None, np.full(len(missing_dob), base + 3),
                      np.zeros(len(missing_dob), dtype=np.int64)))
    w["role"] = _str_series(pc.take(pa.array(_ROLES, pa.string()), pa.array(role)), w.index)
    text = _empty_text(n)
    notes = [x for x in notes if len(x[0])]
    if notes:
        row = np.concatenate([x[0] for x in notes]).astype(np.int64)
        order = np.concatenate([np.full(len(x[0]), x[1] + 1, dtype=np.int64) for x in notes])
        other = np.concatenate([x[2] for x in notes]).astype(np.int64)
        rank = np.concatenate([x[3] if x[3] is not None else np.zeros(len(x[0]), dtype=np.int64) for x in notes])
        pre = np.concatenate([x[4] for x in notes]).astype(np.int64)
        suf = np.concatenate([x[5] for x in notes]).astype(np.int64)
        # One unique int64 key orders as (row, order, other, rank): notes in the same
        # order as a stable sort by (row, order, other) of the notes as listed.
        r = int(rank.max()) + 1
        if (4 * n + 4) * max(n, 1) * r < 2**62:
            by = np.argsort(((row * 4 + order) * max(n, 1) + other) * r + rank)
        else:
            by = np.lexsort((rank, other, order, row))
        nobody = pre[by] == base + 3  # the date-of-birth note names nobody: a null, left out
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n), out=offsets[1:])
        # _group_concat with "; " and the prefix as one text: the prefixes are listed twice,
        # the second time after "; " (each note but a row's first).
        lead = pre[by] + len(prefixes) * _later_items(offsets)
        items = _join_skip(pc.take(pa.array(prefixes + ["; " + x for x in prefixes], pa.string()), pa.array(lead)),
                           _texts_taken(_pa(w, "patient_id"), other[by], nobody),
                           pc.take(pa.array(suffixes, pa.string()), pa.array(suf[by])))
        text = _groups_of_items(offsets, items)
    w["relationship_notes"] = pd.Series(text, index=w.index,
                                        dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return w


# --- evidence ----------------------------------------------------------------------------

_COMMUNAL_TEXT = {
    "CARE HOME": "care home", "NURSING HOME": "nursing home", "RESIDENTIAL HOME": "residential home",
    "REST HOME": "rest home", "RETIREMENT HOME": "retirement home", "CARE CENTRE": "care centre",
    "HOSTEL": "hostel", "HOTEL": "hotel", "NIGHT SHELTER": "night shelter", "REFUGE": "refuge",
    "PRISON": "prison", "HALLS OF RESIDENCE": "halls of residence", "CHILDRENS HOME": "children's home",
}


def _o(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=object)


def _o_at(frame: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """A text column at ``rows`` as an object array (only those rows converted)."""
    taken = pc.take(_pa(frame, column), pa.array(np.asarray(rows, dtype=np.int64)))
    return np.asarray(taken.to_numpy(zero_copy_only=False), dtype=object)


def _when(mask: np.ndarray, text: np.ndarray | str) -> np.ndarray:
    """``text`` where ``mask``, else "" (object array)."""
    return np.where(mask, text, "").astype(object)


def _join_parts(parts: list[np.ndarray], sep: str) -> np.ndarray:
    """Row-wise join of the non-empty strings in ``parts`` (object arrays)."""
    out = parts[0].astype(object)
    for part in parts[1:]:
        part = part.astype(object)
        both = (out != "") & (part != "")
        out = np.where(both, out + sep, out) + part
    return out


# The evidence for most records is built on pyarrow string arrays: concatenating a
# million strings there is a few milliseconds, against a tenth of a second or more for
# numpy object arrays plus the conversions to and from pandas' Arrow-backed columns.

def _pa(frame: pd.DataFrame, column: str) -> pa.Array:
    """A text column as a pyarrow string array (no copy when it is Arrow-backed)."""
    values = frame[column]
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        return arr.cast(pa.string())
    return pa.array(values.to_numpy(dtype=object), pa.string())


def _cat(*parts) -> pa.Array:
    """Row-wise concatenation of string arrays and scalars."""
    return pc.binary_join_element_wise(*parts, "")


def _if(mask: np.ndarray, a, b) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool), pa.bool_()), a, b)


def _nonempty(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.not_equal(arr, "").to_numpy(zero_copy_only=False), dtype=bool)


def _pa_join(parts: list[pa.Array], sep: str) -> pa.Array:
    """Row-wise join of the non-empty strings in ``parts`` (as ``_join_parts``): every
    non-empty part is prefixed with ``sep``, and the first ``sep`` is cut off."""
    pieces = [pc.if_else(pc.not_equal(p, ""), _cat(sep, p), "") for p in parts]
    return pc.utf8_slice_codeunits(_cat(*pieces), len(sep))


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _scatter(n: int, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """A string array of length ``n`` holding ``values`` (one per set row of ``mask``, in
    order) at those rows and nulls elsewhere, sharing ``values``' text buffer."""
    mask = np.asarray(mask, dtype=bool)
    values = values.cast(pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    m = len(values)
    given = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset:values.offset + m + 1] if m \
        else np.zeros(1, dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int64)
    lengths[mask] = np.diff(given)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = given[0]
    np.cumsum(lengths, out=offsets[1:])
    offsets[1:] += given[0]
    valid = mask.copy()
    if values.null_count:
        valid[mask] = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    data = values.buffers()[2] if m else pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.string(), n, [pa.py_buffer(np.packbits(valid, bitorder="little")),
                                                  pa.py_buffer(offsets.astype(np.int32)), data])


def _replace_rows(base: pa.Array, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """``pc.replace_with_mask(base, mask, values)`` for string arrays (as ``string``), by
    ``_patched``: pyarrow's replace_with_mask is ~10x slower on text."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return base
    return _patched(base.cast(pa.string()), np.flatnonzero(mask), values)


def _patch(base: pa.Array, mask: np.ndarray, make) -> pa.Array:
    """``base`` with the rows in ``mask`` replaced by ``make(take)``, where ``take(column)``
    gives a column at those rows: rare sentences are built for their rows alone."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return base
    at = pa.array(idx)
    return _replace_rows(base, mask, make(lambda column: pc.take(column, at), idx))


def _null_where(arr: pa.Array, keep: np.ndarray) -> pa.Array:
    """String array ``arr`` with nulls where ``keep`` is False: the same buffers under a
    new validity bitmap (no copy of the text), so that a concatenation with it is null
    there and a ``null_handling="skip"`` join leaves it out."""
    keep = np.asarray(keep, dtype=bool)
    if arr.null_count:
        keep = keep & np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    bits = np.packbits(np.r_[np.zeros(arr.offset, dtype=bool), keep], bitorder="little")
    return pa.Array.from_buffers(arr.type, len(arr), [pa.py_buffer(bits), arr.buffers()[1], arr.buffers()[2]],
                                 offset=arr.offset)


def _join_skip(*parts) -> pa.Array:
    """Row-wise concatenation of string arrays and scalars, leaving out null parts (a row
    of null parts gives "": ``_frames.join_skipping_nulls``)."""
    return join_skipping_nulls(*parts)


def _usual_link(w: pd.DataFrame) -> np.ndarray:
    """Records whose address link is the usual one: same postcode, and the same street
    or none given (the others are worked out by ``_address_link_at``)."""
    street, d_street = _pa(w, "street"), _pa(w, "d_street")
    same = _bool_pa(pc.equal(street, d_street))
    return _bool_pa(pc.equal(_pa(w, "d_how"), "postcode")) & (same | ~_nonempty(street))


def _usual_link_parts_of(cols: dict, rows: np.ndarray, street_given: np.ndarray) -> list[pa.Array]:
    """The usual address link (see ``_usual_link``) as parts for one skip-nulls
    concatenation, null outside ``rows``: "same postcode P", ", same number N" (etc.)
    where given, and ", same street S" or ", no street given"; ``cols`` holds the arrays
    d_postcode, number, flat, bkey and d_street, ``street_given`` whether each row's own
    street is given."""
    has_street = street_given & rows

    def optional(prefix, column):  # the prefix only where the column is not empty
        values = cols[column]
        return [_repeat_where(prefix, _nonempty(values) & rows), _null_where(values, rows)]

    return ([_repeat_where("same postcode ", rows), _null_where(cols["d_postcode"], rows)]
            + optional(", same number ", "number") + optional(", same flat ", "flat")
            + optional(", same building name ", "bkey")
            + [_repeat_where(", same street ", has_street), _null_where(cols["d_street"], has_street),
               _repeat_where(", no street given", rows & ~has_street)])


def _usual_link_by_dwelling(w: pd.DataFrame, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The usual address link of the records in ``rows`` (a mask), made once per
    distinct (dwelling, own street given): a dwelling's records share the parts it is
    made of (number, flat, building name and the building's postcode and street; see
    ``_ambiguous_and_communal``), and with a street given the record's street is the
    dwelling's (``_usual_link``). Returns the distinct texts and each record's position
    in them (-1 outside ``rows``); records with no dwelling get a text of their own."""
    n = len(w)
    d = w["d"].to_numpy().astype(np.int64)
    given = _nonempty(_pa(w, "street"))
    rows = np.flatnonzero(rows)
    n_d = int(d.max()) + 1 if n else 0
    # (dwelling, street given) as 2*d + given; records with no dwelling numbered after.
    dr = d[rows]
    key = np.where(dr >= 0, 2 * dr + given[rows], 2 * n_d + np.arange(len(rows)))
    first = np.full(2 * n_d + len(rows), len(rows), dtype=np.int64)
    np.minimum.at(first, key, np.arange(len(rows)))  # each key's first record (position in rows)
    firsts = np.sort(first[first < len(rows)])  # in row order (near-sequential takes)
    text_of = np.empty(len(first), dtype=np.int64)
    text_of[key[firsts]] = np.arange(len(firsts))
    at_rows = rows[firsts]
    at = pa.array(at_rows)
    cols = {c: pc.take(_pa(w, c), at) for c in ("d_postcode", "number", "flat", "bkey", "d_street")}
    texts = _join_skip(*_usual_link_parts_of(cols, np.ones(len(at_rows), dtype=bool), given[at_rows]))
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = text_of[key]
    return texts, pos


def _address_link_at(w: pd.DataFrame, idx: np.ndarray) -> pa.Array:
    """The address link of the records at positions ``idx`` (the rows ``_usual_link`` does not cover)."""
    at = pa.array(np.asarray(idx, dtype=np.int64))

    def col(column):
        return pc.take(_pa(w, column), at)

    how = np.asarray(col("d_how").to_numpy(zero_copy_only=False), dtype=object)
    postcode, d_postcode, d_town = col("postcode"), col("d_postcode"), col("d_town")
    number, flat, bkey = col("number"), col("flat"), col("bkey")
    street, d_street = col("street"), col("d_street")
    pc_part = _if(how == "postcode", _cat("same postcode ", d_postcode), "")
    pc_part = _patch(pc_part, how == "postcode_edit", lambda t, _: _cat(
        "postcode ", t(postcode), " one character from ", t(d_postcode), " (same street, number and flat)"))
    pc_part = _patch(pc_part, how == "no_postcode", lambda t, _: _cat(
        "no valid postcode: same town ", t(d_town)))
    has_street = _nonempty(street)
    same = np.asarray(pc.equal(street, d_street).to_numpy(zero_copy_only=False), dtype=bool)
    differ = ~same & has_street & _nonempty(d_street)
    score = np.full(len(idx), 100, dtype=np.int64)
    if differ.any():
        sub = np.flatnonzero(differ)
        s_obj = pc.take(street, pa.array(sub)).to_numpy(zero_copy_only=False)
        d_obj = pc.take(d_street, pa.array(sub)).to_numpy(zero_copy_only=False)
        score[sub] = np.floor(street_similarity(np.asarray(s_obj, dtype=object),
                                                np.asarray(d_obj, dtype=object))).astype(np.int64)
    # No street given / same street / (rarely) a similar spelling.
    street_part = _if(same & has_street, _cat("same street ", d_street), "no street given")
    street_part = _patch(street_part, has_street & ~same, lambda t, sub: _cat(
        "street similarity ", _int_text(score[sub]), " ('", t(d_street), "' ~ '", t(street), "')"))
    optional = [
        pc.if_else(pc.not_equal(number, ""), _cat(", same number ", number), ""),
        pc.if_else(pc.not_equal(flat, ""), _cat(", same flat ", flat), ""),
        pc.if_else(pc.not_equal(bkey, ""), _cat(", same building name ", bkey), ""),
    ]
    if _nonempty(pc_part).all():
        # The postcode part and the street part are never empty here, so the parts
        # join with one concatenation (the same text as the join below gives).
        return _cat(pc_part, *optional, ", ", street_part)
    return _pa_join([pc_part] + [pc.utf8_slice_codeunits(p, 2) for p in optional] + [street_part], ", ")


def _address_links(w: pd.DataFrame, rows: np.ndarray, usual_texts: pa.Array, usual_at: np.ndarray) -> pa.Array:
    """The address links of the records at positions ``rows``: those the usual link fits
    (``usual_at`` >= 0; shared houses and clinical-system households among them) taken
    from ``usual_texts`` (``_usual_link_by_dwelling``: the same text ``_address_link_at``
    makes for them), the others made by ``_address_link_at``."""
    at = usual_at[rows]
    own = at < 0
    taken = pc.take(usual_texts, pa.array(at[~own])).cast(pa.string())
    if not own.any():
        return taken
    order = np.empty(len(rows), dtype=np.int64)
    order[~own] = np.arange(len(taken))
    order[own] = len(taken) + np.arange(int(own.sum()))
    made = _address_link_at(w, rows[own]).cast(pa.string())
    return pc.take(pa.concat_arrays([taken, made]), pa.array(order))


def _communal_text(w: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    how = _o_at(w, "communal_how", rows)
    est_n = w["establishment_size"].to_numpy()[rows]
    est = est_n.astype(str).astype(object)
    label = w["communal_label"].iloc[rows].map(_COMMUNAL_TEXT).to_numpy(dtype=object)
    label = np.where(pd.isna(label), "communal establishment", label).astype(object)
    text = np.select(
        [how == "name", how == "size", how == "age"],
        [label + " (" + est + np.where(est_n == 1, " patient", " patients")
         + "): each resident is their own household",
         f"more than {COMMUNAL_SIZE} patients (" + est
         + ") at one address: a communal establishment, each resident is their own household",
         est + " patients, " + w["dwelling_old"].to_numpy()[rows].astype(str).astype(object)
         + f" aged {ELDERLY_AGE}+, at one address: treated as a care home, "
         "each resident is their own household"],
        "",
    ).astype(object)
    return _join_parts([
        text,
        _when(w["communal_family"].to_numpy()[rows], "kept with family by a recorded relationship"),
        _when(w["sys_ignored"].to_numpy()[rows], "the clinical system's household id is not used here"),
    ], "; ")


# _evidence's fixed sentences (codes 0-5).
_FIXED_EVIDENCE = [
    "no valid postcode, and several homes share this street, number and flat: not linked, resolve by hand",
    "no usable address (no house number or name): not linked",
    "no usable address (no valid postcode and no street): not linked",
    "no valid postcode and no town: not linked (street names recur from town to town)",
    "address shared with several clinical-system households: not joined to any",
    "no other patient at this address",
]


def _evidence(w: pd.DataFrame, rel: pd.DataFrame, usual: tuple[pa.Array, np.ndarray] | None = None) -> pa.Array:
    """Plain-English evidence per record (pyarrow string array aligned with ``w``).
    ``usual``: ``_usual_link_by_dwelling(w, _usual_link(w))`` if made beforehand (it
    reads only the dwellings' columns), else made here."""
    n = len(w)
    kind_pa = _pa(w, "dwelling_kind")
    ambiguous = _bool_pa(pc.equal(kind_pa, "ambiguous"))
    size = w["household_size"].to_numpy()
    has_sys = _nonempty(_pa(w, "sys_key"))
    adopted = w["sys_adopted"].to_numpy()
    category = np.select(
        [w["communal"].to_numpy(), has_sys, ambiguous & w["ambiguous_flat"].to_numpy(),
         ambiguous, _bool_pa(pc.equal(kind_pa, "no_address")), size == 1],
        [1, 2, 3, 4, 5, 6], 0,
    )
    link_rows = (category == 0) | ((category == 2) & adopted)
    shared = _bool_pa(pc.equal(kind_pa, "shared_house"))
    # The usual address links, made once per dwelling for every record they fit (its
    # positions are -1 at the records _usual_link does not cover).
    if usual is None:
        usual = _usual_link_by_dwelling(w, _usual_link(w))
    usual_texts, usual_at = usual
    # Most records' text is the usual address link (plus any relationships): those are
    # given out by the one take at the end. The others ("alt") get their text made for
    # their rows alone, as arrays over ``alt_rows``.
    plain = (category == 0) & (usual_at >= 0) & ~shared
    alt_rows = np.flatnonzero(~plain)
    m = len(alt_rows)
    cat_a = category[alt_rows]
    need = link_rows[alt_rows]
    link_a = _empty_text(m)
    if need.any():
        link_a = _replace_rows(link_a, need, _address_links(w, alt_rows[need], usual_texts, usual_at))

    # Clinical-system households (category 2), on Arrow like the address links (only
    # when there are any: most exports carry no household ids).
    sys_a = None
    if (cat_a == 2).any():
        conflict_a = pc.take(_pa(w, "conflict"), pa.array(alt_rows))
        resolved_a = w["sys_resolved"].to_numpy()[alt_rows]
        adopted_a = adopted[alt_rows]
        sys_a = _if(resolved_a, "same household id in the clinical system (its own address is incomplete)",
                    "same household id in the clinical system")
        sys_a = _patch(sys_a, adopted_a & ~resolved_a, lambda t, _: _cat(
            "same address as members of a clinical-system household (", t(link_a), ")"))
        before = sys_a
        sys_a = _patch(before, _nonempty(conflict_a), lambda t, _: _cat(
            t(before), "; CONFLICT: ", t(conflict_a), ", check by hand"))

    # The rarer categories, on their rows only (positions in alt_rows): the fixed
    # sentences as codes into _FIXED_EVIDENCE, the communal and missing-flat ones built
    # for their rows; all given out by one take.
    fixed = np.full(m, -1, dtype=np.int64)
    built = []  # (positions, object texts)
    pos = np.flatnonzero(cat_a == 1)
    if len(pos):
        built.append((pos, _communal_text(w, alt_rows[pos])))
    pos = np.flatnonzero(cat_a == 3)
    if len(pos):
        sub = w[["building_flats", "only_flat", "d_postcode", "number", "bkey", "d_street"]].iloc[alt_rows[pos]]
        flats = sub["building_flats"].to_numpy()
        flats_txt = np.where(flats == 1, "one known flat (" + _o(sub, "only_flat") + ")",
                             flats.astype(str).astype(object) + " flats")
        d_postcode = _o(sub, "d_postcode")
        where = _join_parts([_o(sub, "number"), _o(sub, "bkey"), _o(sub, "d_street")], " ")
        built.append((pos, "flat number missing at a building with " + flats_txt + " (" + where
                      + np.where(d_postcode != "", ", " + d_postcode, "") + "): not linked, resolve by hand"))
    fixed[cat_a == 4] = 0
    pos = np.flatnonzero(cat_a == 5)
    if len(pos):
        rows = alt_rows[pos]
        number = _o_at(w, "number", rows)
        bkey = _o_at(w, "bkey", rows)
        no_street = _o_at(w, "street", rows) == ""
        fixed[pos] = np.select([(number == "") & (bkey == ""), no_street], [1, 2], 3)
    pos = np.flatnonzero(cat_a == 6)
    fixed[pos] = np.where(w["sys_shared_dwelling"].to_numpy()[alt_rows[pos]], 4, 5)
    part = link_a
    rare = (cat_a != 0) & (cat_a != 2)
    if rare.any():
        take_at, texts = fixed, [pa.array(_FIXED_EVIDENCE, pa.string())]
        start = len(_FIXED_EVIDENCE)
        for pos, made in built:
            take_at[pos] = start + np.arange(len(pos))
            start += len(pos)
            texts.append(pa.array(np.asarray(made, dtype=object), pa.string()))
        part = _replace_rows(part, rare, pc.take(pa.concat_arrays(texts), pa.array(take_at[rare])))
    if sys_a is not None:
        part = _if(cat_a == 2, sys_a, part)
    shared_a = shared[alt_rows]
    if shared_a.any():
        before = part
        part = _patch(before, shared_a, lambda t, idx: _cat(
            t(before), "; shared house (", _int_text(size[alt_rows[idx]]),
            " unrelated adults): no parent or child roles inferred"))
    # Each record's text is one of: the usual links (made once per dwelling), the other
    # records' texts, and the texts of the records with recorded relationships in their
    # household (made for those alone); given out by one take.
    at = np.where(plain, usual_at, -1)
    sources = [usual_texts, part.cast(pa.string())]
    at[alt_rows] = len(usual_texts) + np.arange(m)

    # Recorded relationships inside the household: "; recorded relationship with <ids>"
    # after the text (without the "; " where there is no other text).
    if len(rel):
        a, b = _rel_rows(rel)
        hh = w["hh"].to_numpy()  # equal codes, equal household ids
        same = hh[a] == hh[b]
        # Distinct (p, o) row pairs in (p, o) order, as one sorted integer code each.
        code = _sorted_unique(np.r_[a[same], b[same]] * max(n, 1) + np.r_[b[same], a[same]])
        p, o = code // max(n, 1), code % max(n, 1)
        # The records listing others (p ascending), numbered 0.. for the group join.
        starts = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, dtype=bool)
        listing = p[starts]
        listed = _group_join(np.cumsum(starts) - 1, _texts_taken(_pa(w, "patient_id"), o),
                             len(listing), ", ")
        has_listed = _nonempty(listed)
        if has_listed.any():
            listing, listed = listing[has_listed], listed.filter(pa.array(has_listed))
            base = pc.take(pa.concat_arrays(sources), pa.array(at[listing]))
            has_text = _nonempty(base)  # the usual link is never empty, others may be
            sources.append(_join_skip(base, _repeat_where("; recorded relationship with ", has_text),
                                      _repeat_where("recorded relationship with ", ~has_text), listed))
            at[listing] = sum(len(s) for s in sources[:-1]) + np.arange(len(listing))
    return pc.take(pa.concat_arrays(sources), pa.array(at))


# --- public API --------------------------------------------------------------------------

def link_normalised(people: pd.DataFrame, relationships: pd.DataFrame | None, as_of: date) -> pd.DataFrame:
    """Link one partition: ``people`` is the prepared patients frame joined with the
    columns of ``normalise_addresses`` (same index). Returns the households frame.

    A partition must be a union of ``link_groups`` groups for the rows to equal the whole
    run's (records with no valid postcode are matched on street and town inside the
    partition only).
    """
    # Positional index, patient_id order: every tie below is broken on values, not rows.
    w = _sorted_by_id(people)
    # The relationships, and each one's two records as row positions in w (-1: not in
    # this frame), are worked out on a second thread while the dwellings are found:
    # nothing needs them before the households. The thread is given the ids alone (a
    # frame of its own), as w gains columns meanwhile.
    ids = w[["patient_id"]]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-aside") as aside:
        located = aside.submit(lambda: _locate(ids, _relationships(relationships)))
        w["age"] = _age(w["date_of_birth"], as_of)
        w["is_child"] = (w["age"] < ADULT_AGE)
        w = _dwellings(w)
        w = _ambiguous_and_communal(w)
        rel = located.result()
    # The evidence and the dwelling ids read nothing the roles write: they are made on a
    # second thread while the roles are worked out (all mostly Arrow and numpy kernels,
    # which release the GIL), and added to the roles' copy of the frame. The usual
    # address links read only the dwellings' columns: they are made there first, while
    # the households are numbered (mostly sha1 in Python).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="family_link-evidence") as aside:
        # The kinds but the system-resolved and shared houses, and the roles' recorded
        # notes and birth dates, need no households: made there first (from w as it is
        # now), in the order they are wanted here.
        kinds_before = aside.submit(_kinds_before_households, w)
        roles_before = aside.submit(_roles_before_households, rel, len(w), w["date_of_birth"])
        usual = aside.submit(lambda dwellings=w: _usual_link_by_dwelling(dwellings, _usual_link(dwellings)))
        w = _households(w, rel)
        w = _kinds(w, rel, kinds_before.result())
        aside_work = aside.submit(lambda before_roles=w: (_evidence(before_roles, rel, usual.result()),
                                                          _dwelling_ids(before_roles)))
        w = _roles(w, rel, roles_before.result())
        evidence, w["dwelling_id"] = aside_work.result()
        w["link_evidence"] = pd.Series(evidence, index=w.index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    w["ambiguous"] = (w["dwelling_kind"] == "ambiguous")
    # household_size: counted in _households, and households do not change after it.
    out = _sorted_by_id(w[HOUSEHOLD_COLUMNS])
    for c in ["patient_id", "household_id", "dwelling_id", "dwelling_kind", "role", "address_key",
              "link_evidence", "relationship_notes", "conflict"]:
        out[c] = out[c].astype("str")
    out["ambiguous"] = out["ambiguous"].astype(bool)
    out["communal"] = out["communal"].astype(bool)
    out["household_size"] = out["household_size"].astype("int64")
    return out


def link_groups(normalised: pd.DataFrame, relationships: pd.DataFrame | None) -> np.ndarray:
    """A group number per record such that linking each group on its own (``link_normalised``)
    gives every record exactly the row the whole run gives it.

    ``normalised`` is the prepared patients joined with ``normalise_addresses`` (as
    ``link_normalised`` takes it). Records are joined into one group when anything in the
    linkage can connect them; a group is a union of whole postcode districts plus:

    - a record with no valid postcode, with every district holding both a record of the
      same house number, building name and street and a record of the same town (the
      buildings it could be matched to: the run-together-name split never makes a key
      that its postcode did not already hold, and a building's town is given by its own
      records or its sector's), and with the other such records of that key and town;
    - records sharing a clinical-system ``household_id`` or ``uprn``;
    - the two records of every recorded relationship.

    Every step of the linkage looks only inside a postcode block, a district (postcode
    slips), a building, a dwelling or a household, so nothing outside a group can change
    a row inside it; row positions are only compared within a frame, in patient_id order.
    """
    n = len(normalised)
    valid = normalised["postcode_valid"].to_numpy(dtype=bool)
    pc_codes, postcodes = pd.factorize(normalised["postcode"])
    outward = np.array([p.split(" ")[0] for p in postcodes], dtype=object)  # distinct postcodes
    o_codes = pd.factorize(outward)[0][pc_codes] if len(outward) else np.zeros(n, dtype=np.int64)
    d_codes = np.full(n, -1, dtype=np.int64)
    d_codes[valid], districts = pd.factorize(o_codes[valid])
    # Nodes: one per district, then one per record without a valid postcode; ``unit``
    # is each record's node. Edges below are between records or districts.
    n_d = len(districts)
    unit = np.empty(n, dtype=np.int64)
    unit[valid] = d_codes[valid]
    unit[~valid] = n_d + np.arange(int((~valid).sum()))
    a_parts: list[np.ndarray] = []
    b_parts: list[np.ndarray] = []

    # Keys as integer codes on Arrow (only equality matters: no text leaves Arrow).
    number, building = _pa(normalised, "number"), _pa(normalised, "building")
    street, town = _pa(normalised, "street"), _pa(normalised, "town")
    has_number = _nonempty(number)
    bkey = _if(has_number, "", building)
    k_codes = _equal_codes(number, bkey, street)
    t_codes, _ = _dict_codes(town)
    has_town = _nonempty(town)
    lost = ~valid & _nonempty(street) & has_town & (has_number | _nonempty(bkey))
    if lost.any():
        # A lost record can only join a building of its key whose town (its records' most
        # given town, else its postcode sector's) is the record's town: so only districts
        # holding both a record of the key and a record of the town.
        rows = np.flatnonzero(lost)
        lk = pd.DataFrame({"k": k_codes[rows], "t": t_codes[rows], "row": rows})
        first_lost = lk.groupby(["k", "t"], sort=False)["row"].first().rename("first").reset_index()
        holders = np.flatnonzero(valid & np.isin(k_codes, first_lost["k"].to_numpy()))
        by_key = pd.DataFrame({"k": k_codes[holders], "d": d_codes[holders]}).drop_duplicates()
        with_town = np.flatnonzero(valid & has_town)
        by_town = pd.DataFrame({"t": t_codes[with_town], "d": d_codes[with_town]}).drop_duplicates()
        cand = first_lost.merge(by_key, on="k").merge(by_town, on=["t", "d"])
        a_parts.append(unit[cand["first"].to_numpy()])
        b_parts.append(cand["d"].to_numpy())
        # The lost records of one key and town (they may form a building among themselves).
        a_parts.append(unit[rows])
        b_parts.append(unit[lk.merge(first_lost, on=["k", "t"], how="left")["first"].to_numpy()])

    for column in ("household_id", "uprn"):
        if column in normalised.columns:
            ids = normalised[column].astype(object).where(normalised[column].notna(), "")
            ids = ids.astype(str).str.strip().to_numpy(dtype=object)
            has = np.flatnonzero(ids != "")
            codes, _ = pd.factorize(ids[has])
            first = pd.Series(has).groupby(codes).first().to_numpy()
            a_parts.append(unit[has])
            b_parts.append(unit[first[codes]])

    if relationships is not None and len(relationships):
        ends = pd.DataFrame({c: relationships[c].astype(str) for c in ["patient_id", "related_patient_id"]})
        located = _locate(normalised, ends)
        a, b = located["a"].to_numpy(), located["b"].to_numpy()
        ok = (a >= 0) & (b >= 0)
        a_parts.append(unit[a[ok]])
        b_parts.append(unit[b[ok]])

    a_all = np.concatenate(a_parts).astype(np.int64) if a_parts else np.zeros(0, dtype=np.int64)
    b_all = np.concatenate(b_parts).astype(np.int64) if b_parts else np.zeros(0, dtype=np.int64)
    keep = a_all != b_all
    labels = _components(n_d + int((~valid).sum()), a_all[keep], b_all[keep])
    return pd.factorize(labels[unit])[0]


_SHARED: dict = {}  # what forked workers read: set just before the pool starts


def _link_part(part: int) -> pd.DataFrame | None:
    """Link one part in a forked worker. Where the parent made the part a memory file
    (``_memory_files``), its households go there as an Arrow IPC stream and None is returned;
    else the frame is returned (pickled through the pool's pipe)."""
    s = _SHARED
    people = s["people"][s["part"] == part]
    rel = s["relationships"]
    if rel is not None and len(rel):
        # The relationships whose patient_id is one of this part's records.
        rel = rel[s["rel_part"] == part]
    linked = link_normalised(people, rel, s["as_of"])
    sink = s["sinks"].get(part)
    if sink is None:
        return linked
    table = pa.Table.from_pandas(linked, preserve_index=False)
    with open(sink, "wb", closefd=False) as file, pa.ipc.new_stream(file, table.schema) as stream:
        stream.write_table(table)
    return None


def _memory_files(parts: list[int]) -> dict[int, int]:
    """A memory file (``os.memfd_create``: RAM only, never on disk, freed once closed and
    no longer mapped) per part, made before the workers fork so that each inherits them: a
    worker writes its part's households into its file, and the parent maps them. Sent back
    through the pool instead, 300 MB of frames at 1M patients took 1.3-1.5 s to pickle,
    pass through one pipe (one worker at a time) and unpickle, after the workers had
    finished. {} where the system has no memory files (macOS) or refuses one: the frames
    then come back through the pool."""
    files: dict[int, int] = {}
    try:
        for part in parts:
            files[part] = os.memfd_create(f"family_link-part-{part}")
    except (AttributeError, OSError):  # none on this system, or refused (a sandbox, the fd limit)
        for fd in files.values():
            os.close(fd)
        return {}
    return files


def _linked_in_workers(parts: list[int]) -> list[pd.DataFrame | None]:
    """``_link_part`` of each part, each in a forked worker (``_SHARED`` set). A worker that
    dies (stopped by the system for lack of memory, say) is the user's problem to solve,
    not a bug: a WorkerStoppedError, exit code 8, saying what to do."""
    try:
        with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_link_part, parts))
    except BrokenProcessPool:
        raise WorkerStoppedError([Problem("", "a process linking households (--jobs) ended before it finished, "
                                              "most likely stopped by the system for lack of memory",
                                          hint=WorkerStoppedError.hint)]) from None


def _mapped_table(fd: int) -> pa.Table:
    """The Arrow table a worker wrote into memory file ``fd``, read without copying (its
    buffers are the file's mapped pages, freed with the last table using them)."""
    return pa.ipc.open_stream(pa.py_buffer(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))).read_all()


def _rel_parts(people: pd.DataFrame, part: np.ndarray, relationships: pd.DataFrame | None) -> np.ndarray:
    """The part of each relationship's ``patient_id`` record (-1: no such record), found by
    one pyarrow lookup before the workers start (``people``'s patient_ids are unique)."""
    if relationships is None or not len(relationships):
        return np.zeros(0, dtype=np.int64)
    at = index_in(relationships["patient_id"].astype(str), people["patient_id"])
    return np.where(at >= 0, part[np.maximum(at, 0)] if len(part) else -1, -1)


def link_households(patients: pd.DataFrame, relationships: pd.DataFrame | None, as_of: date,
                    jobs: int = 1) -> pd.DataFrame:
    """Link patients who live together; one row per patient, sorted by ``patient_id``.

    Columns: ``patient_id``, ``household_id``, ``dwelling_id``, ``dwelling_kind`` (house,
    flat, lettered_house, named_house, communal, shared_house, no_address, ambiguous),
    ``role`` (child, adult, probable_parent, parent, resident), ``address_key``,
    ``link_evidence`` (plain English), ``ambiguous``, ``communal``, ``household_size``,
    ``relationship_notes`` and ``conflict`` (a clinical-system household spread over
    different addresses; "" when none). The output does not depend on input row order.

    With ``jobs`` > 1 the records are split into groups that cannot affect one another
    (``link_groups``), and the groups are linked in ``jobs`` forked processes: the output
    is identical to the single-process run.
    """
    people = _prepare(patients)
    normalised = normalise_addresses(people)
    joined = pd.concat([people.drop(columns=["postcode"]), normalised], axis=1)
    if jobs <= 1 or len(joined) < 2 or "fork" not in multiprocessing.get_all_start_methods() \
            or not joined["patient_id"].is_unique:
        return link_normalised(joined, relationships, as_of)
    group = link_groups(joined, relationships)
    # Whole groups to parts, largest first to the emptiest part (sizes, not ids, decide).
    sizes = np.bincount(group)
    load = np.zeros(jobs, dtype=np.int64)
    part_of = np.zeros(len(sizes), dtype=np.int64)
    for g in np.argsort(-sizes, kind="stable"):
        part_of[g] = int(np.argmin(load))
        load[part_of[g]] += sizes[g]
    parts = [p for p in range(jobs) if load[p]]
    if len(parts) == 1:  # one group only: nothing to split
        return link_normalised(joined, relationships, as_of)
    part = part_of[group]
    sinks: dict[int, int] = {}
    try:  # (the memory files made inside it: anything failing from here closes them)
        sinks.update(_memory_files(parts))
        _SHARED.update(people=joined, relationships=relationships, as_of=as_of, part=part,
                       rel_part=_rel_parts(joined, part, relationships), sinks=sinks)
        results = _linked_in_workers(parts)
        tables = [_mapped_table(sinks[p]) if linked is None else pa.Table.from_pandas(linked, preserve_index=False)
                  for p, linked in zip(parts, results)]
    finally:
        _SHARED.clear()
        for fd in sinks.values():
            os.close(fd)  # the mapped pages stay until the tables using them are freed
    # Each part comes back in patient_id order, and ``joined`` is in that order with
    # unique ids: the records' positions in ``joined`` put the parts together in order.
    at = np.concatenate([np.flatnonzero(part == p) for p in parts])
    return pa.concat_tables(tables).take(pa.array(np.argsort(at))).to_pandas()


def household_conflicts(households: pd.DataFrame) -> pd.DataFrame:
    """One row per clinical-system household whose members' addresses clearly differ:
    ``household_id``, ``patient_ids`` (";"-joined), ``conflict``."""
    c = households[households["conflict"] != ""]
    grouped = c.groupby("household_id", sort=True).agg(
        patient_ids=("patient_id", lambda s: ";".join(sorted(s))), conflict=("conflict", "first")
    )
    return grouped.reset_index()


def _hex_id_values(ids: pa.Array, prefix: str) -> np.ndarray | None:
    """Each id of ``_id_bytes``' form (``prefix`` + 12 lower-case hex digits) as the
    int64 of its digits: equal exactly where the ids are; None when some id is
    missing or not of that form (then the texts themselves must be compared)."""
    head = np.frombuffer(prefix.encode("utf-8"), dtype=np.uint8)
    p = len(head)
    rows = _fixed_width_bytes(ids, p + 12)
    if rows is None or not (rows[:, :p] == head).all():
        return None
    digits = np.ascontiguousarray(rows[:, p:])
    # "0"-"9" are 48-57 and "a"-"f" 97-102 (uint8 arithmetic wraps below 0).
    if not ((digits - np.uint8(48) < 10) | (digits - np.uint8(97) < 6)).all():
        return None
    nibbles = (digits & np.uint8(15)) + np.uint8(9) * (digits >> 6)
    wide = np.zeros((len(rows), 8), dtype=np.uint8)
    wide[:, 2:] = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return wide.view(">u8").reshape(-1).astype(np.int64)


def _distinct_count(values: pd.Series, prefix: str) -> int:
    """``values.nunique()`` of an id column, through ``_hex_id_values`` when it can."""
    codes = _hex_id_values(_pa(pd.DataFrame({"v": values}), "v"), prefix) \
        if isinstance(values.dtype, pd.StringDtype) else None
    if codes is None:
        return int(values.nunique())
    codes = np.sort(codes)
    return int(np.count_nonzero(codes[1:] != codes[:-1])) + 1 if len(codes) else 0


def summarise_households(households: pd.DataFrame) -> dict:
    """Counts for run summaries (no patient values)."""
    h = households
    if h["household_id"].isna().any():  # not from link_households: the plain way
        sizes = h.drop_duplicates("household_id")["household_size"].to_numpy()
        n_households = int(h["household_id"].nunique())
    else:
        # Each household's first record, as drop_duplicates keeps it.
        values = _hex_id_values(_pa(h, "household_id"), "H-")
        if values is not None:  # ids as integers: their first records by a hash table
            first = ~pd.Series(values).duplicated().to_numpy()
            n_households = int(first.sum())
        else:
            # household_id encoded once (codes in order of first appearance): a code above
            # every earlier one marks a household's first record.
            hh = pc.dictionary_encode(_pa(h, "household_id"))
            codes = np.asarray(hh.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
            seen = np.maximum.accumulate(codes) if len(codes) else codes
            first = np.r_[True, seen[1:] > seen[:-1]] if len(codes) else np.zeros(0, dtype=bool)
            n_households = len(hh.dictionary)
        sizes = h["household_size"].to_numpy()[first]
    bins = {str(k): int((sizes == k).sum()) for k in range(1, 6)}
    bins["6+"] = int((sizes >= 6).sum())
    communal = h[h["communal"]]
    return {
        "patients": int(len(h)),
        "households": n_households,
        "dwellings": _distinct_count(h["dwelling_id"], "D-"),
        "household_sizes": bins,
        "communal_establishments": int(communal["dwelling_id"].nunique()),
        "communal_residents": int(len(communal)),
        "shared_houses": int(h.loc[h["dwelling_kind"] == "shared_house", "household_id"].nunique()),
        "shared_house_residents": int((h["dwelling_kind"] == "shared_house").sum()),
        "ambiguous_records": int(h["ambiguous"].sum()),
        "no_address_records": int((h["dwelling_kind"] == "no_address").sum()),
        "system_id_conflicts": int(h.loc[h["conflict"] != "", "household_id"].nunique()),
    }
