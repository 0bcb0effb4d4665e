"""A canonical export's files read ahead, while the command line is still importing.

``family-link check`` spends its first ~0.25 s importing pandas and the check's modules on one
core. ``start(folder)``, called before those imports, starts a thread that maps
patients.csv, relationships.csv and events.csv in turn, checks that each is UTF-8 and has
Arrow parse it (``first_steps``: the reader's own first steps, which release the GIL), so
the second core works while the first imports.

It is only a cache. The reader (``_export._read_file``) asks ``take(path)`` for a file's
result and gets it only when the file is still the one that was read (same device, inode,
size, modification and change times); otherwise (a file changed or replaced since, any
failure here, no result at all) it reads the file itself exactly as it would have without
this. The frames, errors and reports are made from these steps as from its own: the
reader and this thread run the same functions, defined here once.

Imports the standard library only: pyarrow is imported on the thread (and by the reader).
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["FILES", "MAP_FROM", "Ahead", "FirstSteps", "arrow_read_options", "arrow_table", "close_contents",
           "discard", "first_steps", "is_utf8", "open_contents", "start", "take"]

MAP_FROM = 1 << 20  # files at least this large are mapped, not read into a copy
FILES = ("patients.csv", "relationships.csv", "events.csv")  # the order the reader needs them in


def open_contents(path: Path | str, map_from: int | None = None) -> tuple[bytes | mmap.mmap, os.stat_result]:
    """The bytes of a file and its status when opened: a large file mapped read-only from
    the page cache (the system's copy, already in memory), a small or unmappable one read.
    Reading 400 MB into a new bytes object costs as much in first touches of fresh memory
    as the copy itself. ``map_from``: the least size mapped (default ``MAP_FROM``). Errors
    are those of ``Path.read_bytes``."""
    map_from = MAP_FROM if map_from is None else map_from
    with open(path, "rb") as f:
        status = os.fstat(f.fileno())
        try:
            if status.st_size >= map_from:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), status
        except (OSError, ValueError):
            pass  # not mappable (a pipe, a special file): read it as before
        return f.read(), status


@lru_cache(maxsize=2)
def arrow_read_options(valid_utf8: bool) -> dict[str, Any]:
    """Arrow's CSV options: those pandas' pyarrow engine passes for dtype=str,
    keep_default_na=False, na_values=[] (every column read as text, nothing read as
    missing). ``valid_utf8``: for text known to be valid UTF-8 (every cell is then valid
    UTF-8 too, as cells are cut only at ASCII bytes), without Arrow's own check of every
    value, a third of its parse of an events file (~0.3 s of CPU at a million patients)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    return dict(
        read_options=pa_csv.ReadOptions(encoding="utf-8"),
        parse_options=pa_csv.ParseOptions(delimiter=",", quote_char='"', ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(null_values=[], strings_can_be_null=False, decimal_point=".",
                                              default_column_type=pa.large_string(),
                                              **({"check_utf8": False} if valid_utf8 else {})),
    )


def arrow_table(data: bytes | memoryview, *, valid_utf8: bool = False) -> Any:
    """Arrow's multi-threaded parse of CSV bytes as a table of text columns, or None where
    Arrow refuses them (rows wider or narrower than the header, lines longer than its 1 MB
    block...)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    try:
        return pa_csv.read_csv(pa.py_buffer(data), **arrow_read_options(valid_utf8))
    except Exception:  # noqa: BLE001 - any refusal means "use the careful parser"
        return None


def is_utf8(raw: bytes | mmap.mmap) -> bool:
    """Whether ``raw`` is valid UTF-8, without a decoded copy of a large file: Arrow's
    validation of the bytes as one text value (no copy; ~7x faster than Python's
    incremental decoder on a patients file holding accented names, which leaves ASCII's
    fast path, and faster than NumPy's max over an all-ASCII events file)."""
    if len(raw) == 0:
        return True
    import pyarrow as pa

    data = pa.py_buffer(raw)
    offsets = pa.py_buffer(struct.pack("=2q", 0, len(data)))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, data]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    finally:
        del data
    return True


@dataclass(frozen=True)
class FirstSteps:
    """What the reader's first steps found in a file's bytes. ``start``: where the text
    begins (after a UTF-8 byte order mark). ``arrow``: the bytes are UTF-8 without NULs
    near the top and the header holds a comma, so Arrow reads them from ``start``;
    ``table``: Arrow's parse then (None where Arrow refused them)."""
    start: int
    arrow: bool
    table: Any = None


def first_steps(raw: bytes | mmap.mmap) -> FirstSteps:
    """The reader's first steps on a file's bytes: where its text starts (after a UTF-8 byte
    order mark), whether Arrow may read it (no NUL near the top, a comma in the header,
    valid UTF-8) and, if so, Arrow's parse (``FirstSteps``)."""
    start = 3 if raw[:3] == b"\xef\xbb\xbf" else 0
    newline = raw.find(b"\n")
    first_line = raw[start:newline] if newline >= 0 else raw[start:]
    if b"\x00" not in raw[:65536] and b"," in first_line and is_utf8(raw):
        return FirstSteps(start, True, arrow_table(memoryview(raw)[start:], valid_utf8=True))  # checked just now
    return FirstSteps(start, False)


@dataclass(frozen=True)
class Ahead:
    """A file read ahead: its bytes (or mapping), the first steps' outcome and the file's
    identity when opened."""
    raw: bytes | mmap.mmap
    steps: FirstSteps
    identity: tuple[int, ...]


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _key(path: Path | str) -> str:
    return os.path.abspath(path)


_lock = threading.Lock()
_pending: dict[str, Future] = {}


def start(folder: Path | str) -> None:
    """Read a canonical export folder's files ahead on a thread (``FILES``, those present).
    Does nothing for anything else (no folder, a SystmOne extract, no patients.csv) and
    never raises: the reader will say what is wrong."""
    try:
        folder = Path(folder)
        names = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
        if "patients.csv" not in names or "srpatient.csv" in names:  # as layouts.detect_layout tells them
            return
        work = [(names[file], Future()) for file in FILES if file in names]
        with _lock:
            for path, future in work:
                _pending[_key(path)] = future
        threading.Thread(target=_read_all, args=(work,), name="family_link-read-ahead", daemon=True).start()
    except Exception:  # noqa: BLE001 - only a cache: the reader reads for itself
        discard()


def _read_all(work: list[tuple[Path, Future]]) -> None:
    for path, future in work:
        if not future.set_running_or_notify_cancel():
            continue
        try:
            raw, status = open_contents(path)
        except BaseException:  # noqa: BLE001 - the reader reads it and reports what is wrong
            future.set_result(None)
            continue
        try:
            future.set_result(Ahead(raw, first_steps(raw), _identity(status)))
        except BaseException:  # noqa: BLE001 - likewise
            close_contents(raw)
            future.set_result(None)


def take(path: Path | str) -> Ahead | None:
    """The file read ahead at ``path`` (waiting for it if it is being read), once only; None
    if it was not read ahead, failed, or the file at ``path`` is no longer the one read
    (then its mapping is closed)."""
    with _lock:
        future = _pending.pop(_key(path), None)
    if future is None or future.cancel():
        return None
    ahead = future.result()
    if ahead is None:
        return None
    try:
        same = _identity(os.stat(path)) == ahead.identity
    except OSError:
        same = False
    if not same:
        close_contents(ahead.raw)
        return None
    return ahead


def discard() -> None:
    """Forget every file not taken (those not yet read are not read; a mapping is closed
    once read)."""
    with _lock:
        futures = list(_pending.values())
        _pending.clear()
    for future in futures:
        if not future.cancel():
            future.add_done_callback(_close_result)


def _close_result(future: Future) -> None:
    ahead = future.result()
    if ahead is not None:
        close_contents(ahead.raw)


def close_contents(raw: bytes | mmap.mmap) -> None:
    """Close a file's mapping (``open_contents``); bytes need nothing."""
    if isinstance(raw, mmap.mmap):
        try:
            raw.close()
        except BufferError:  # a view of it is still alive: it closes when that goes
            pass
