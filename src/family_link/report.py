"""Writing a run's outputs, all at once and atomically.

Every file is rendered to bytes first, written into a private temporary folder beside the
output folder, and the folder is moved into place only when complete: a failed or killed
run leaves the previous report as it was. Files are created readable by the owner only
(they hold patient data). Every file except ``timings.json`` is byte-identical for the same
inputs and as-of date.
"""

from __future__ import annotations

__all__ = ["check_destination", "render_csv", "write_report_files", "REPORT_MARKER"]

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from .errors import OutputError, Problem

REPORT_MARKER = "run.json"  # a folder holding this file holds a family_link report


def render_csv(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    if columns is not None:
        frame = frame.reindex(columns=columns)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


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


def check_destination(out_dir: Path, force: bool, marker: str = REPORT_MARKER, *, what: str = "report",
                      restore: bool = True) -> None:
    """Raise ``OutputError`` unless ``out_dir`` may receive a report (new, empty, or holding
    one of ours, recognised by ``marker``, and ``force``). Called before the work starts and
    again before writing."""
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


def write_report_files(out_dir: Path | str, files: dict[str, bytes], *, force: bool = False,
                       marker: str = REPORT_MARKER) -> Path:
    """Write ``files`` (name -> content) as the folder ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    check_destination(out_dir, force, marker)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    except OSError as exc:
        raise OutputError([Problem(str(out_dir), f"cannot be created ({exc.strerror})",
                                   hint="check the folder exists and you may write to it")]) from None
    try:
        os.chmod(tmp, 0o700)
        for name in sorted(files):
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(files[name])
                fh.flush()
                os.fsync(fh.fileno())
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
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError([Problem(str(out_dir), f"cannot be written ({exc.strerror})",
                                   hint="check the folder is writable and the disk is not full")]) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
