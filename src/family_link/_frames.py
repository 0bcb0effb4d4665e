"""Small frame helpers used on the hot path.

Text columns are pandas' "str" dtype, which holds an Arrow array: the helpers here work on
that array directly (Arrow compute, NumPy views of its buffers) rather than converting
millions of values to Python objects and back."""

from __future__ import annotations

__all__ = ["MAY_BE_SPACE", "arrow_text", "factorize_text", "filter_text", "full_names", "index_in", "index_in_runs",
           "isin", "join_skipping_nulls", "may_hold_bytes", "release_arrow_memory", "short_index_in", "strip_text", "take_values",
           "text_offsets_and_bytes", "text_series"]

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # what dtype=str means


def arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """The Arrow array of ``values.astype(str)``: no copy when ``values`` is already text."""
    if values.dtype != _TEXT:
        values = values.astype(str)
    data = values.array
    chunked = getattr(data, "_pa_array", None)
    if isinstance(chunked, pa.ChunkedArray):
        return chunked
    return pa.chunked_array([pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)])


def text_series(values: pa.ChunkedArray | pa.Array, index: pd.Index | None = None) -> pd.Series:
    """A "str" Series over Arrow text (no copy for large_string)."""
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    return pd.Series(values, index=index, dtype=_TEXT)


# Bytes Arrow's (and Python's) strip removes: ASCII \t \n \v \f \r, \x1c-\x1f and space. Any
# byte >= 0x80 may start or end a Unicode space (U+00A0, U+2003, ...).
MAY_BE_SPACE = np.zeros(256, dtype=bool)
MAY_BE_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
MAY_BE_SPACE[128:] = True


def text_offsets_and_bytes(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """NumPy views of a string chunk's value offsets (len + 1) and its byte buffer."""
    offsets_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    _, offsets_buf, data_buf = chunk.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offsets_type)[chunk.offset:chunk.offset + len(chunk) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    return offsets, data


def may_hold_bytes(values: pa.ChunkedArray, table: np.ndarray) -> bool:
    """Whether any value of ``values`` holds a byte marked in ``table`` (256 booleans)."""
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        offsets, data = text_offsets_and_bytes(chunk)
        text = data[offsets[0]:offsets[-1]]
        if len(text) == 0:
            continue
        # The bytes' range first (two reductions): when the table marks none of the bytes
        # from the least to the greatest (digits only, looking for spaces or dashes), no
        # byte need be looked up.
        if not table[int(text.min()):int(text.max()) + 1].any():
            continue
        if table[text].any():
            return True
    return False


def _needs_strip(chunk: pa.Array) -> bool:
    """Whether any value of a string chunk may begin or end with white space: a look at
    the first and last byte of each value (a NumPy view of Arrow's buffers). An empty
    value reads its neighbours' bytes instead, which can only answer yes in excess."""
    if len(chunk) == 0:
        return False
    offsets, data = text_offsets_and_bytes(chunk)
    if offsets[-1] == offsets[0]:
        return False
    first = np.take(data, offsets[:-1], mode="clip")
    last = np.take(data, offsets[1:] - 1, mode="clip")
    # Every byte MAY_BE_SPACE marks is <= 0x20 or >= 0x80: two reductions usually answer
    # without looking each byte up (half the time of the lookups).
    if max(first.max(), last.max()) < 0x80 and min(first.min(), last.min()) > 0x20:
        return False
    return bool(MAY_BE_SPACE[first].any() or MAY_BE_SPACE[last].any())


def strip_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """``pc.utf8_trim_whitespace`` (what ``Series.str.strip()`` does to "str" values), done
    only where some value needs it: a CSV export rarely pads its cells, and stripping five
    million values that have nothing to strip costs a copy of the column."""
    if not any(_needs_strip(c) for c in values.chunks):
        return values
    return pc.utf8_trim_whitespace(values)


def filter_text(values: pa.ChunkedArray, keep: np.ndarray) -> pa.ChunkedArray:
    """``pc.filter(values, keep)`` as one chunk (as pandas' boolean indexing gives it).
    Arrow's filter of a chunked text column by one mask is several times slower than
    filtering each chunk by its slice of it; a chunk with few rows dropped is not filtered
    value by value at all but cut into slices of its kept runs, and every piece is joined
    in one copy."""
    if len(keep) != len(values):
        raise ValueError(f"mask of {len(keep)} for {len(values)} values")
    pieces, start = [], 0
    for chunk in values.chunks:
        part = keep[start:start + len(chunk)]
        start += len(chunk)
        edges = np.flatnonzero(np.diff(part.view(np.int8), prepend=0, append=0))
        if len(edges) <= 64 or len(edges) * 32 <= len(chunk):
            pieces.extend(chunk.slice(a, b - a) for a, b in edges.reshape(-1, 2).tolist())
        else:
            pieces.append(chunk.filter(pa.array(part)))
    if not pieces:
        return pa.chunked_array([pa.array([], type=values.type)], type=values.type)
    return pa.chunked_array([pa.concat_arrays(pieces)], type=values.type)


def factorize_text(values: pd.Series, *, as_text: bool = False) -> tuple[np.ndarray, pd.Series]:
    """``pd.factorize(values.astype(str), use_na_sentinel=False)`` as (codes, distinct
    values as an object Series), through one Arrow hash pass: pandas' own factorize on
    Arrow text converts the codes and the values through several copies. ``as_text``:
    the distinct values as a "str" Series over Arrow's dictionary (no Python strings)
    when nothing is missing; the same values, for callers that work on text anyway."""
    chunked = arrow_text(values)
    if chunked.null_count:
        codes, uniques = pd.factorize(values.astype(str), use_na_sentinel=False)
        return codes, pd.Series(uniques, dtype=object)
    encoded = pc.dictionary_encode(chunked)
    if encoded.num_chunks == 0 or len(encoded) == 0:
        empty = text_series(pa.array([], type=pa.large_string())) if as_text else pd.Series([], dtype=object)
        return np.zeros(0, dtype=np.intp), empty
    # Arrow encodes a chunked array against one growing table: every chunk ends up with
    # the same, complete dictionary.
    dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    if as_text:
        return codes, text_series(dictionary)
    return codes, pd.Series(dictionary.to_numpy(zero_copy_only=False), dtype=object, copy=False)


def take_values(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """``values.iloc[positions].to_numpy()``: for text, Arrow's take of the chunked array
    (pandas' positional take of a file-sized column of a few hundred chunks cost ~0.2 s
    for 12,000 positions of five million values, against ~0.007 s)."""
    if values.dtype == _TEXT:
        chunked = arrow_text(values)
        if not chunked.null_count:  # pandas gives NaN for a missing value, Arrow None
            return _take_chunks(chunked, np.asarray(positions, dtype=np.int64)).to_numpy(zero_copy_only=False)
    return values.iloc[positions].to_numpy()


def _take_chunks(values: pa.ChunkedArray, positions: np.ndarray) -> pa.Array:
    """``values.take(positions)`` as one array, taken chunk by chunk: Arrow's take of a
    chunked array first joins every chunk into one (a copy of the whole column)."""
    order = None
    if len(positions) > 1 and not bool((positions[1:] >= positions[:-1]).all()):
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
    starts = np.cumsum([0] + [len(c) for c in values.chunks])
    bounds = np.searchsorted(positions, starts)  # where each chunk's positions begin
    pieces = [values.chunk(k).take(pa.array(positions[bounds[k]:bounds[k + 1]] - starts[k]))
              for k in range(values.num_chunks) if bounds[k + 1] > bounds[k]]
    taken = pa.concat_arrays(pieces) if pieces else pa.array([], type=values.type)
    if order is not None:
        taken = taken.take(pa.array(np.argsort(order, kind="stable")))
    return taken


def _value_set(allowed: Iterable[str] | pd.Series) -> pa.Array | pa.ChunkedArray:
    if isinstance(allowed, pd.Series) and allowed.dtype == _TEXT:
        return arrow_text(allowed)
    if not isinstance(allowed, (pd.Series, pd.Index, np.ndarray, list)):
        allowed = list(allowed)
    return pa.array(pd.Series(allowed, dtype=object).astype(str), type=pa.string())


def isin(values: pd.Series, allowed: Iterable[str] | pd.Series) -> pd.Series:
    """``values.isin(allowed)`` for string columns, through Arrow's hash set: pandas'
    own ``isin`` on Arrow strings walks the allowed values in Python (0.4 s against
    0.03 s for 500,000 values)."""
    value_set = _value_set(allowed)
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks() if value_set.num_chunks != 1 else value_set.chunk(0)
    hit = pc.is_in(arrow_text(values), value_set=value_set).to_numpy(zero_copy_only=False)
    return pd.Series(hit, index=values.index, dtype=bool, copy=False)


def index_in(values: pd.Series, table: pd.Series) -> np.ndarray:
    """Position of each value in ``table`` (unique values), or -1: a hash lookup through
    Arrow, in place of a pandas index lookup that is 10x slower on strings."""
    value_set = arrow_text(table)
    value_set = value_set.combine_chunks() if value_set.num_chunks != 1 else value_set.chunk(0)
    found = pc.index_in(arrow_text(values), value_set=value_set)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def index_in_runs(values: pd.Series, table: pd.Series) -> np.ndarray:
    """``index_in(values, table)`` for ids that come in runs (an events file lists each
    patient's events together). Short ids (at most 8 bytes, as practice systems' ids
    are) in an ascending ``table`` are found by binary search of 64-bit numbers
    (``short_index_in``), with no hash table at all. Other ids are looked up once per run
    of equal neighbours: five million events are a million runs, and comparing
    neighbours costs far less than a hash lookup. Values with few runs of two or more
    are looked up one by one."""
    chunked = arrow_text(values)
    found = _short_index_in(chunked, table)
    if found is not None:
        return found
    n = len(chunked)
    if n < 2 or chunked.null_count:
        return index_in(values, table)
    head = np.empty(n, dtype=bool)
    head[0] = True
    head[1:] = pc.not_equal(chunked[1:], chunked[:-1]).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(head)
    if len(starts) * 3 > n * 2:
        return index_in(values, table)
    found = index_in(text_series(filter_text(chunked, head)), table)
    return np.repeat(found, np.diff(starts, append=n))


def _short_keys(values: pa.ChunkedArray) -> np.ndarray | None:
    """Each value's UTF-8 bytes, zero-padded to 8, as a big-endian 64-bit number: equal
    numbers for equal texts, and ordered as the texts are (byte by byte, a prefix first).
    None when a value is missing, longer than 8 bytes or holds a NUL byte (which padding
    would confuse with a shorter text)."""
    if values.null_count:
        return None
    keys = np.empty(len(values), dtype=np.uint64)
    at = 0
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        offsets, data = text_offsets_and_bytes(chunk)
        lengths = np.diff(offsets)
        text = data[offsets[0]:offsets[-1]]
        if lengths.max() > 8 or not text.all():
            return None
        if lengths.min() == 8:  # all eight bytes long: the bytes are the numbers
            block = text.reshape(-1, 8)
        elif len(text) == 0:  # every value empty
            block = np.zeros((len(chunk), 8), dtype=np.uint8)
        else:
            width = np.arange(8)
            where = offsets[:-1, None] + width
            block = np.where(width < lengths[:, None], data[np.minimum(where, len(data) - 1)], 0).astype(np.uint8)
        keys[at:at + len(chunk)] = np.ascontiguousarray(block).view(">u8").ravel()
        at += len(chunk)
    return keys


def short_index_in(values: pa.ChunkedArray | pa.Array, table: pd.Series) -> np.ndarray:
    """``index_in`` of Arrow text: by binary search of ``_short_keys`` when the table's
    keys strictly ascend (a sorted table of distinct short ids), else Arrow's hash lookup."""
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], type=values.type)
    found = _short_index_in(values, table)
    return index_in(text_series(values), table) if found is None else found


def _short_index_in(values: pa.ChunkedArray, table: pd.Series) -> np.ndarray | None:
    """``short_index_in``'s binary search, or None where it does not apply."""
    table_keys = _short_keys(arrow_text(table))
    if table_keys is None or not len(table_keys) or not bool((table_keys[1:] > table_keys[:-1]).all()):
        return None
    value_keys = _short_keys(values)
    if value_keys is None:
        return None
    n = len(value_keys)
    if n < 2:
        return _search_keys(table_keys, value_keys)
    # Ids that come in runs of equal neighbours (an events file lists each patient's events
    # together: five million events are a million runs) are searched once per run.
    head = np.empty(n, dtype=bool)
    head[0] = True
    np.not_equal(value_keys[1:], value_keys[:-1], out=head[1:])
    starts = np.flatnonzero(head)
    del head
    if len(starts) * 2 > n:
        return _search_keys(table_keys, value_keys)
    value_keys = value_keys[starts]
    return np.repeat(_search_keys(table_keys, value_keys), np.diff(starts, append=n))


def _search_keys(table_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each of ``keys`` in the strictly ascending ``table_keys`` (not empty),
    or -1. Keys not in ascending order are searched sorted (a binary search of ascending
    keys stays in the cache: ~0.05 s against ~0.13 s for 600,000 keys in random order,
    sort included), and their positions put back in place."""
    order = None
    if len(keys) > 1 and not bool((keys[1:] >= keys[:-1]).all()):
        order = np.argsort(keys)
        keys = keys[order]
    n = len(keys)
    starts = None
    if order is not None and n > 1:
        # Sorted, a key that repeats (a patient in several relationships) is searched once.
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(keys[1:], keys[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        keys = keys[starts] if len(starts) * 4 <= n * 3 else keys
        starts = starts if len(keys) < n else None
    # In place where it can be: five million positions are 40 MB of fresh memory apiece.
    at = np.searchsorted(table_keys, keys).astype(np.int64, copy=False)
    np.minimum(at, len(table_keys) - 1, out=at)
    missing = np.take(table_keys, at) != keys
    at[missing] = -1
    if starts is not None:
        at = np.repeat(at, np.diff(starts, append=n))
    if order is None:
        return at
    placed = np.empty_like(at)
    placed[order] = at
    return placed


def join_skipping_nulls(*parts: pa.Array | pa.ChunkedArray | pa.Scalar | str,
                        separator: str | pa.Scalar = "") -> pa.Array | pa.ChunkedArray:
    """Row-wise join of text arrays (and scalars) with ``separator``, leaving out null
    parts; a row whose parts are all null gives "". Arrow's
    ``binary_join_element_wise(..., null_handling="skip")`` (pyarrow 26) drops such rows
    from its output, which comes back shorter than its inputs: they are given an empty
    first part here, and only when that happened."""
    joined = pc.binary_join_element_wise(*parts, separator, null_handling="skip")
    arrays = [i for i, p in enumerate(parts) if isinstance(p, (pa.Array, pa.ChunkedArray))]
    if not arrays or len(joined) == len(parts[arrays[0]]):
        return joined
    all_null = pc.is_null(parts[arrays[0]])
    for i in arrays[1:]:
        all_null = pc.and_(all_null, pc.is_null(parts[i]))
    first = arrays[0]
    mended = list(parts)
    mended[first] = pc.if_else(all_null, pa.scalar("", parts[first].type), parts[first])
    return pc.binary_join_element_wise(*mended, separator, null_handling="skip")


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator keeps after a large read back to the system: the
    file's text columns are freed once the frames are built, but the allocator holds on to
    their pages (0.8 GB after a million patients' export) for the rest of the run. Under
    the command line this hands nothing back: it asks mimalloc to keep freed memory
    (``_process.keep_arrow_freed_memory``), which it then does even when asked here."""
    pa.default_memory_pool().release_unused()


def full_names(patients: pd.DataFrame) -> pd.Series:
    """"Forenames Surname" as the worklist and the reasons show a patient."""
    return (patients["forenames"].fillna("") + " " + patients["surname"].fillna("")).str.strip()
