"""Process-wide settings made once when the command line starts. Standard library only:
importing this must not slow ``family-link --help`` (pandas and Arrow load lazily)."""

from __future__ import annotations

__all__ = ["avoid_huge_pages"]

import ctypes
import sys

_PR_SET_THP_DISABLE = 41


def avoid_huge_pages() -> bool:
    """Ask Linux not to back this process's memory with transparent huge pages (NumPy and
    Arrow's allocator ask for them on large arrays). On a virtual machine whose host takes
    back the guest's free memory (free page reporting), a huge page is 2 MB of memory the
    host must supply afresh, while small pages mostly come from memory the guest freed a
    moment ago: reading a million patients' export (``load_any_export`` of benchmarks/run.py's
    1M practice under ``/usr/bin/time -f %S``) spent 3.5-4.4 s in the kernel with huge pages
    and 1.2 s without. Only where memory comes from changes, never what is
    computed; inherited by forked workers. Returns whether the setting took (False off
    Linux or where the kernel refuses it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
