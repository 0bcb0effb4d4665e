"""Writing a run's outputs, all at once and atomically.

Every file is written into a private temporary folder beside the output folder (big CSVs
straight from the frame, in slices, so no whole copy of them is held in memory), and the
folder is moved into place only when complete: a failed or killed run leaves the previous
report as it was. Files are created readable by the owner only (they hold patient data).
Every file except ``timings.json`` is byte-identical for the same inputs and as-of date.
"""

from __future__ import annotations

__all__ = ["check_destination", "only_writer", "resolved_out", "render_csv", "write_csv", "ReportFolder", "open_report",
           "write_report_files", "REPORT_MARKER"]

import ctypes
import errno
import io
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import text_offsets_and_bytes
from .errors import OutputError, Problem

REPORT_MARKER = "run.json"  # a folder holding this file holds a family_link report


def render_csv(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    """The frame as CSV bytes, exactly as ``frame.to_csv(index=False, lineterminator="\\n")``."""
    out = io.BytesIO()
    write_csv(out, frame, columns)
    return out.getvalue()


# pandas' to_csv runs every value through Python's csv module (QUOTE_MINIMAL): a field is
# quoted when it holds the delimiter, the quote character or the line terminator, and
# quotes inside are doubled. Text, whole numbers and booleans (True/False) are rendered
# here the same way with Arrow compute over whole columns, a slice of rows at a time;
# any other column type (floats, dates, mixed objects) goes through pandas as before.
# Equality with to_csv is checked by hypothesis in tests/test_report_speed_helpers.py and
# tests/test_report_csv_runs.py.
_CSV_SLICE_ROWS = 25_000  # small enough for the allocator to reuse its memory slice after slice


def _csv_column(values: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The column as Arrow values of a kind ``_csv_fields`` renders, else None."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":  # bool, int, unsigned int
        return pa.array(values.to_numpy())
    if isinstance(dtype, pd.StringDtype) or dtype == object:
        try:
            arr = pa.array(values, from_pandas=True)  # Arrow-backed text: no copy
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return arr.cast(pa.large_string())
        if arr.type == pa.null():  # every value missing: written empty
            return pa.nulls(len(arr), pa.large_string())
    return None


def _text_fields(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column's values as CSV field text without their enclosing quotes (large_string,
    no nulls; inner quotes doubled where any)."""
    arr = arr.fill_null("") if arr.null_count else arr
    if _holds_any_byte(arr, b'"'):  # rare: double the quotes of just those values
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        has_quote = pc.match_substring(arr, '"')
        arr = pc.replace_with_mask(arr, has_quote, pc.replace_substring(pc.filter(arr, has_quote), '"', '""'))
    return arr


def _special_bytes(arr: pa.Array | pa.ChunkedArray) -> bytes:
    """Which of the bytes that make the csv module quote a field (``,"\n``) the text column
    holds anywhere."""
    return bytes(b for b in b',"\n' if _holds_any_byte(arr, bytes([b])))


def _holds_any_byte(values: pa.Array | pa.ChunkedArray, wanted: bytes) -> bool:
    """Whether any value of a string array holds one of the ASCII bytes ``wanted`` (a scan
    of its data buffer per byte: far quicker than a regex per value)."""
    return any(_holds_byte(values, byte) for byte in wanted)


def _libc_memchr():
    try:
        memchr = ctypes.CDLL(None).memchr
    except (OSError, AttributeError):
        return None
    memchr.restype = ctypes.c_void_p
    memchr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    return memchr


_MEMCHR = _libc_memchr() if sys.platform.startswith(("linux", "darwin")) else None


def _holds_byte(values: pa.Array | pa.ChunkedArray, byte: int) -> bool:
    """Whether any value of a string array holds ``byte``: C ``memchr`` over the used part
    of each chunk's data buffer (about 40 GB/s against 1 GB/s for a NumPy table lookup),
    NumPy where there is no C library to call."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        if len(chunk) == 0:
            continue
        offsets, data = text_offsets_and_bytes(chunk)
        start, end = int(offsets[0]), int(offsets[-1])
        if end <= start:
            continue
        if _MEMCHR is not None:
            if _MEMCHR(chunk.buffers()[2].address + start, byte, end - start) is not None:
                return True
        elif (data[start:end] == byte).any():
            return True
    return False


def _write_text_array(fh: BinaryIO, values: pa.Array | pa.ChunkedArray) -> None:
    """Write the values of a string array back to back (its data buffer, no copy)."""
    for arr in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        offsets, data = text_offsets_and_bytes(arr)
        fh.write(data[offsets[0]:offsets[-1]])


def _rows_holding(arr: pa.Array, special: bytes) -> np.ndarray:
    """Whether each value of a large_string array (a slice) holds one of the ASCII bytes
    ``special`` (null values hold none): the bytes compared over the data buffer at once,
    then any per value (a logical_or reduceat over the values' starts; ~3x quicker than a
    literal search per value). An ASCII byte never occurs inside a multi-byte UTF-8 character."""
    offsets, data = text_offsets_and_bytes(arr)
    lengths = np.diff(offsets)
    text = data[offsets[0]:offsets[-1]]
    if not len(text):
        return np.zeros(len(arr), dtype=bool)
    hit = np.zeros(len(text) + 1, dtype=bool)  # a byte past the end: empty values at the end start there
    np.equal(text, special[0], out=hit[:-1])
    for byte in special[1:]:
        hit[:-1] |= text == byte
    # An empty value's segment is one byte of the next value's: masked.
    need = np.logical_or.reduceat(hit, offsets[:-1] - offsets[0]) & (lengths > 0)
    if arr.null_count:
        need &= np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return need


_TABLE_TEXTS = 4096  # a run of boolean/small whole-number columns is written by one take from at most this many texts


def _small_values(values: np.ndarray) -> int | None:
    """How many codes a boolean or whole-number column's values need as codes 0..k-1 (the
    values themselves): 2 for booleans, max + 1 for non-negative whole numbers below
    ``_TABLE_TEXTS``; None otherwise."""
    if values.dtype.kind == "b":
        return 2
    if not len(values) or values.min() < 0 or values.max() >= _TABLE_TEXTS:
        return None
    return int(values.max()) + 1


def _fixed_width(arr: pa.Array) -> int | None:
    """The byte width every value of a text column has, when they all have one (> 0, no nulls)."""
    if len(arr) == 0 or arr.null_count or isinstance(arr, pa.ChunkedArray):
        return None
    offsets, _ = text_offsets_and_bytes(arr)
    width = int(offsets[1] - offsets[0])  # the total length first: most columns differ there
    if width <= 0 or int(offsets[-1] - offsets[0]) != width * len(arr) or (np.diff(offsets) != width).any():
        return None
    return width


def _csv_plan(frame: pd.DataFrame, arrays: list, special: list[bytes]) -> list[tuple]:
    """How the columns are written, as runs: ("table", columns, sizes) for adjacent
    boolean/small whole-number columns (one take from a table of their joined texts per
    slice), ("fixed", columns, widths) for adjacent text columns of one byte width each
    with nothing to quote (copied side by side by NumPy), ("column", i) otherwise. Fewer
    fields make the slices' line join quicker (its cost is mostly per field)."""
    kinds = []
    for i, arr in enumerate(arrays):
        if pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
            size = _small_values(frame.iloc[:, i].to_numpy())
            kinds.append(("table", size) if size is not None else ("column", None))
        elif pa.types.is_large_string(arr.type) and not special[i]:
            width = _fixed_width(arr)
            kinds.append(("fixed", width) if width is not None else ("column", None))
        else:
            kinds.append(("column", None))
    plan, i = [], 0
    while i < len(arrays):
        kind, size = kinds[i]
        j, total = i + 1, size
        if kind == "table":
            while j < len(arrays) and kinds[j][0] == "table" and total * kinds[j][1] <= _TABLE_TEXTS:
                total *= kinds[j][1]
                j += 1
        elif kind == "fixed":
            while j < len(arrays) and kinds[j][0] == "fixed":
                j += 1
        if kind == "column" or (kind == "fixed" and j == i + 1):
            plan.append(("column", i))
        else:
            plan.append((kind, list(range(i, j)), [kinds[k][1] for k in range(i, j)]))
        i = j
    return plan


def _table_texts(frame: pd.DataFrame, columns: list[int], sizes: list[int], end: str) -> pa.Array:
    """Every combination of the columns' values (codes in mixed radix, first column most
    significant) as its CSV text, fields joined by ',', followed by ``end``."""
    texts = None
    for i, size in zip(columns, sizes):
        values = ["False", "True"] if frame.iloc[:, i].dtype.kind == "b" else [str(v) for v in range(size)]
        texts = values if texts is None else [f"{t},{v}" for t in texts for v in values]
    return pa.array([t + end for t in texts], pa.large_string())


def _table_codes(values: list[np.ndarray], sizes: list[int]) -> pa.Array:
    """Each row's position in ``_table_texts``' table: the columns' values as the digits of
    a mixed-radix number (``sizes`` the radices, first column most significant)."""
    code = values[0].astype(np.int64)
    for v, size in zip(values[1:], sizes[1:]):
        code = code * size + v.astype(np.int64)
    return pa.array(code)


def _fixed_field(arrays: list, widths: list[int], start: int, rows: int) -> pa.Array:
    """The text columns' values of one slice side by side, joined by ',', as one large_string array."""
    line = sum(widths) + len(widths) - 1
    out = np.full((rows, line), ord(","), dtype=np.uint8)
    at = 0
    for arr, width in zip(arrays, widths):
        offsets, data = text_offsets_and_bytes(arr)
        first = int(offsets[start])
        out[:, at:at + width] = data[first:first + rows * width].reshape(rows, width)
        at += width + 1
    offsets = np.arange(0, (rows + 1) * line, line, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def write_csv(fh: BinaryIO, frame: pd.DataFrame, columns: list[str] | None = None) -> None:
    """Write the frame to ``fh`` as CSV, byte-identical to
    ``frame.to_csv(index=False, lineterminator="\\n")`` encoded as UTF-8."""
    if columns is not None:
        frame = frame.reindex(columns=columns)
    arrays = [_csv_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    # A record of one empty field is written '""' by the csv module: leave one-column
    # frames (none is large) to pandas.
    if frame.shape[1] < 2 or any(a is None for a in arrays):
        fh.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        return
    fh.write(frame.iloc[:0].to_csv(index=False, lineterminator="\n").encode("utf-8"))  # the header
    t = pa.large_string()
    # Which quoting bytes each text column holds, found once over the whole column (most
    # hold none); each slice's lines are then one join of the fields with "," (a join
    # with constant parts between the fields costs about twice as much).
    special = [_special_bytes(a) if pa.types.is_large_string(a.type) else b"" for a in arrays]
    plan = _csv_plan(frame, arrays, special)
    # A table run at the end carries the line's end in its texts.
    tables = {k: _table_texts(frame, item[1], item[2], "\n" if k == len(plan) - 1 else "")
              for k, item in enumerate(plan) if item[0] == "table"}
    numbers = {i: frame.iloc[:, i].to_numpy() for item in plan if item[0] == "table" for i in item[1]}
    empty, newline = pa.scalar("", t), pa.scalar("\n", t)
    for start in range(0, len(frame), _CSV_SLICE_ROWS):
        rows = min(_CSV_SLICE_ROWS, len(frame) - start)
        fields = []
        for k, item in enumerate(plan):
            if item[0] == "table":
                codes = _table_codes([numbers[i][start:start + rows] for i in item[1]], item[2])
                fields.append(pc.take(tables[k], codes))
                continue
            if item[0] == "fixed":
                fields.append(_fixed_field([arrays[i] for i in item[1]], item[2], start, rows))
                continue
            i = item[1]
            arr = arrays[i].slice(start, _CSV_SLICE_ROWS)
            if pa.types.is_boolean(arr.type):
                fields.append(pc.if_else(arr, pa.scalar("True", t), pa.scalar("False", t)))
            elif pa.types.is_integer(arr.type):
                fields.append(pc.cast(arr, t))
            elif not special[i]:
                fields.append(arr.fill_null("") if arr.null_count else arr)
            else:
                if isinstance(arr, pa.ChunkedArray):
                    arr = arr.combine_chunks()
                need = _rows_holding(arr, special[i])
                marks = (pa.scalar('"', t) if need.all() else None if not need.any()
                         else pc.if_else(pa.array(need), pa.scalar('"', t), empty))
                text = _text_fields(arr) if b'"' in special[i] else (arr.fill_null("") if arr.null_count else arr)
                fields.append(text if marks is None else pc.binary_join_element_wise(marks, text, marks, empty))
        last = plan[-1]
        if last[0] == "column" and pa.types.is_large_string(fields[-1].type) and _all_empty(fields[-1]):
            fields[-1] = newline  # an empty last field: the line ends after its ','
        elif last[0] != "table":
            fields[-1] = pc.binary_join_element_wise(fields[-1], newline, empty)
        _write_text_array(fh, pc.binary_join_element_wise(*fields, pa.scalar(",", t)))


def _all_empty(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every value of a text array is empty or missing (it holds no bytes)."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        if len(chunk):
            offsets, _ = text_offsets_and_bytes(chunk)
            if offsets[-1] != offsets[0]:
                return False
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``), so the
    destination always holds a complete report. False where the system cannot do it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (a power cut after it must not undo it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _restore_interrupted(out_dir: Path, marker: str = REPORT_MARKER) -> None:
    """Repair what a killed run left beside ``out_dir``. Where the two-rename swap was killed
    between its renames, the previous report waits in ``.NAME.old-*/report``: put it back.
    Then remove the hidden ``.NAME.partial-*``/``.NAME.old-*`` folders of killed runs, so no
    stray copy of patient data outlives them."""
    if not out_dir.parent.is_dir():
        return
    if not out_dir.exists():
        for old in sorted(out_dir.parent.glob(f".{out_dir.name}.old-*")):
            if (old / "report" / marker).is_file():
                try:
                    os.rename(old / "report", out_dir)
                except OSError:
                    return
                break
    for stale in out_dir.parent.glob(f".{out_dir.name}.*"):
        if stale.is_dir() and stale.name.startswith((f".{out_dir.name}.partial-", f".{out_dir.name}.old-")):
            shutil.rmtree(stale, ignore_errors=True)


def _another_run(out_dir: Path) -> OutputError:
    return OutputError([Problem(str(out_dir), "is being written by another family_link run right now",
                                hint="wait for that run to finish, or give --out another folder")])


def resolved_out(out_dir: Path) -> Path:
    """``out_dir.resolve()``, or ``OutputError`` (exit 5) where the path runs into a
    symbolic link that leads back to itself (``Path.resolve`` raises RuntimeError: a
    traceback)."""
    try:
        return out_dir.resolve()
    except (RuntimeError, OSError):
        raise OutputError([Problem(str(out_dir), "is, or lies under, a symbolic link that leads back to itself "
                                   "(a loop)", hint="give --out a real folder, or mend or remove the link")]) from None


def _lock_path(out_dir: Path) -> Path | None:
    """The lock file of ``out_dir``: beside the folder the path leads to (a symbolic link's
    target, "." the current folder), so every way of naming one folder shares one lock.
    None for a path naming no folder of its own (the root)."""
    resolved = resolved_out(out_dir)
    return resolved.parent / f".{resolved.name}.lock" if resolved.name else None


_HELD: set[Path] = set()  # lock files this process holds
_HELD_GUARD = threading.Lock()


@contextmanager
def only_writer(out_dir: Path | str) -> Iterator[None]:
    """Be the only family_link run writing ``out_dir`` while the block runs, or raise
    ``OutputError`` (exit 5) at once if another run is. The lock is an exclusive one on the
    hidden file ``.NAME.lock`` beside the folder, which the system releases if the run is
    killed and which the run removes as the block ends (not on Windows, where an open file
    cannot be removed: an empty file stays, harmless). Without it, a second run to the same
    folder took the first one's temporary folder for a killed run's and removed it, and
    the first then failed at its end with "No such file or directory".

    A check holds it from its start to its report's last rename; a block inside another
    for the same folder in one process (``open_report`` inside the check) runs under the
    outer one's hold. Where the lock file cannot be made (no parent folder yet, a parent
    one may not write in, as a batch folder's may be) or the file system has no locks
    (some network shares), the block runs unguarded, as before the lock: any real problem
    writing is reported by the writing itself."""
    path = _lock_path(Path(out_dir))
    with _HELD_GUARD:
        held_here = path is None or _lock_file is None or path in _HELD
    fd = None if held_here else _take_lock(path, Path(out_dir))
    if fd is None:
        yield
        return
    with _HELD_GUARD:
        _HELD.add(path)
    try:
        yield
    finally:
        with _HELD_GUARD:
            _HELD.discard(path)
        _remove_quietly(path)  # while still held: a run opening the old file then retries
        os.close(fd)


def _take_lock(path: Path, out_dir: Path) -> int | None:
    """The descriptor holding ``path``'s lock, or None where it cannot be locked (see
    ``only_writer``); raises ``OutputError`` while another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        held = _lock_file(fd)
        if held is None:
            os.close(fd)
            _remove_quietly(path)
            return None
        if not held:
            os.close(fd)
            raise _another_run(out_dir)
        try:  # the file locked may have been removed by the run that held it just before
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:  # gone already, or (Windows) still open
        pass


def _lock_with_fcntl(fd: int) -> bool | None:
    """True: locked; False: another process holds the lock; None: this file system
    cannot lock files."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP ...
        return None


def _lock_with_msvcrt(fd: int) -> bool | None:
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError as exc:  # locked elsewhere: EACCES (or EDEADLK, its retries run out)
        return False if exc.errno in (errno.EACCES, errno.EDEADLK) else None


try:
    import fcntl
    _lock_file = _lock_with_fcntl
except ImportError:  # Windows
    try:
        import msvcrt
        _lock_file = _lock_with_msvcrt
    except ImportError:
        _lock_file = None


def check_destination(out_dir: Path, force: bool, marker: str = REPORT_MARKER, *, what: str = "report",
                      restore: bool = True) -> None:
    """Raise ``OutputError`` unless ``out_dir`` may receive a report (new, empty, or holding
    one of ours, recognised by ``marker``, and ``force``), and no other run is writing it.
    Called before the work starts and again before writing (``open_report``). What looks
    like a killed run's leftovers is removed only under ``only_writer``."""
    with only_writer(out_dir):
        if restore:
            _restore_interrupted(out_dir, marker)
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError([Problem(str(out_dir), "exists and is a file, not a folder",
                                       hint="give --out a new or empty folder")])
        if out_dir.is_dir() and any(out_dir.iterdir()):
            if not (out_dir / marker).exists():
                raise OutputError([Problem(str(out_dir), f"is not empty and holds no family_link {what}",
                                           hint="give --out a new or empty folder, so nothing else is overwritten")])
            if not force:
                raise OutputError([Problem(str(out_dir), f"already holds a {what}",
                                           hint="give a new folder, or add --force to replace it")])


class ReportFolder:
    """A report being written: each file goes into a private temporary folder beside the
    output folder as soon as it is rendered; ``open_report`` moves the folder into place
    once every file is written and synced (one fsync per file, then the swap)."""

    def __init__(self, out_dir: Path, tmp: Path) -> None:
        self.out_dir, self.tmp = out_dir, tmp
        self._open: dict[str, BinaryIO] = {}

    def _new_file(self, name: str) -> BinaryIO:
        if name in self._open or os.sep in name:
            raise ValueError(f"report file name {name!r} given twice or not a plain name")
        fd = os.open(self.tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fh = os.fdopen(fd, "wb")
        self._open[name] = fh
        return fh

    def write_bytes(self, name: str, data: bytes) -> None:
        try:
            self._new_file(name).write(data)
        except OSError as exc:
            raise self._cannot_write(exc) from None

    def write_csv(self, name: str, frame: pd.DataFrame, columns: list[str] | None = None) -> None:
        """``render_csv(frame, columns)`` written straight into the file."""
        try:
            write_csv(self._new_file(name), frame, columns)
        except OSError as exc:
            raise self._cannot_write(exc) from None

    def sync(self, name: str) -> None:
        """Flush one written file to disk now (the report's end syncs every file anyway): a
        big file synced on another thread while the rest renders makes that end quicker."""
        try:
            fh = self._open[name]
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            raise self._cannot_write(exc) from None

    def _cannot_write(self, exc: OSError) -> OutputError:
        return OutputError([Problem(str(self.out_dir), f"cannot be written ({exc.strerror})",
                                    hint="check the folder is writable and the disk is not full")])

    def _sync_and_close(self) -> None:
        for name in sorted(self._open):
            fh = self._open[name]
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        self._open.clear()

    def _close_quietly(self) -> None:
        for fh in self._open.values():
            try:
                fh.close()
            except OSError:
                pass
        self._open.clear()

    def _move_into_place(self) -> None:
        out_dir, tmp, parent = self.out_dir, self.tmp, self.tmp.parent
        if out_dir.exists():
            if _exchange(tmp, out_dir):  # one atomic step: the old report is now in tmp
                _fsync_dir(parent)
                shutil.rmtree(tmp, ignore_errors=True)
            else:  # two renames; a run killed between them is repaired by the next run
                old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
                os.rename(out_dir, old / "report")
                os.rename(tmp, out_dir)
                _fsync_dir(parent)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
            _fsync_dir(parent)


@contextmanager
def open_report(out_dir: Path | str, *, force: bool = False,
                marker: str = REPORT_MARKER) -> Iterator[ReportFolder]:
    """A ``ReportFolder`` to write the files of ``out_dir`` into. When the block ends
    without an error the folder replaces ``out_dir`` in one step; on any error (or a kill)
    nothing of it reaches ``out_dir``. Where ``out_dir`` is a symbolic link, the report
    replaces the folder it points to and the link stays (the swap used to replace the link
    itself with a folder, leaving the old report where the link had pointed)."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        out_dir = resolved_out(out_dir)
    parent = resolved_out(out_dir).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError([Problem(str(out_dir), f"cannot be created ({exc.strerror})",
                                   hint="check the folder exists and you may write to it")]) from None
    with only_writer(out_dir):
        check_destination(out_dir, force, marker)  # before the temporary folder: it removes stale ones
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
        except OSError as exc:
            raise OutputError([Problem(str(out_dir), f"cannot be created ({exc.strerror})",
                                       hint="check the folder exists and you may write to it")]) from None
        folder = ReportFolder(out_dir, tmp)

        def discard() -> None:
            folder._close_quietly()
            shutil.rmtree(tmp, ignore_errors=True)

        try:
            os.chmod(tmp, 0o700)
        except OSError as exc:
            discard()
            raise folder._cannot_write(exc) from None
        try:
            yield folder  # an error of the caller's is passed on as it is, after the clean-up
        except BaseException:
            discard()
            raise
        try:
            folder._sync_and_close()
            folder._move_into_place()
        except OSError as exc:
            discard()
            raise folder._cannot_write(exc) from None
        except BaseException:
            discard()
            raise


def write_report_files(out_dir: Path | str, files: dict[str, bytes], *, force: bool = False,
                       marker: str = REPORT_MARKER) -> Path:
    """Write ``files`` (name -> content) as the folder ``out_dir``, atomically."""
    with open_report(out_dir, force=force, marker=marker) as folder:
        for name in sorted(files):
            folder.write_bytes(name, files[name])
    return Path(out_dir)
