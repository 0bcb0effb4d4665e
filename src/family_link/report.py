"""Writing a run's outputs, all at once and atomically.

Every file is rendered to bytes first, written into a private temporary folder beside the
output folder, and the folder is moved into place only when complete: a failed or killed
run leaves the previous report as it was. Files are created readable by the owner only
(they hold patient data). Every file except ``timings.json`` is byte-identical for the same
inputs and as-of date.
"""

from __future__ import annotations

__all__ = ["render_csv", "write_report_files", "REPORT_MARKER"]

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .errors import OutputError, Problem

REPORT_MARKER = "run.json"  # a folder holding this file holds a family_link report


def render_csv(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    if columns is not None:
        frame = frame.reindex(columns=columns)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _check_destination(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError([Problem(str(out_dir), "exists and is a file, not a folder",
                                   hint="give --out a new or empty folder")])
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / REPORT_MARKER).exists():
            raise OutputError([Problem(str(out_dir), "is not empty and holds no family_link report",
                                       hint="give --out a new or empty folder, so nothing else is overwritten")])
        if not force:
            raise OutputError([Problem(str(out_dir), "already holds a report",
                                       hint="give a new folder, or add --force to replace it")])


def write_report_files(out_dir: Path | str, files: dict[str, bytes], *, force: bool = False) -> Path:
    """Write ``files`` (name -> content) as the folder ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    _check_destination(out_dir, force)
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
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.rename(out_dir, old / "report")
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError([Problem(str(out_dir), f"cannot be written ({exc.strerror})",
                                   hint="check the folder is writable and the disk is not full")]) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
