"""Process-wide settings made once when the command line starts. Standard library only:
importing this must not slow ``family-link --help`` (pandas and Arrow load lazily)."""

from __future__ import annotations

__all__ = ["avoid_blas_threads", "avoid_huge_pages", "command_line_settings", "keep_arrow_freed_memory",
           "keep_freed_memory"]

import ctypes
import os
import sys
import warnings

_PR_SET_THP_DISABLE = 41
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_KEEP_BELOW = 1 << 30  # 1 GiB


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


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to serve blocks under 1 GiB from its heap and keep freed memory
    for reuse, rather than mapping each large block (NumPy's arrays of a million rows) fresh
    from the kernel and unmapping it when freed. Every fresh mapping is paid again page by
    page as it is first touched: on benchmarks/run.py's 1M practice the check took about
    1.2-1.3M minor page faults and 2.5-2.9 s of kernel time by default, and 1.0M and
    2.1-2.2 s with this (``/usr/bin/time -f "%S %R"``), for about 180 MB more peak memory
    (freed blocks are kept, not returned). Arrow's own allocator is not affected. Only
    where memory comes from changes, never what is computed.

    It also keeps every thread on that one heap (one arena, ``M_ARENA_MAX``): by default
    each thread gets an arena of its own, whose heaps are at most 64 MB, so a block over
    64 MB made on the reader's or linkage's threads (a column of 8 million 8-byte values,
    say) was mapped fresh and unmapped when freed, whatever the thresholds above, and
    memory freed into one thread's arena could not serve another thread. On the 1M practice, alternating
    runs (16 and 20): minor faults 0.75-0.95M (median 0.85M) -> 0.72-0.84M (0.75M) and peak
    memory 2.9-3.7 GB (median 3.26) -> 2.8-3.5 GB (3.04), for CPU time about the same
    (user 0.1-0.2 s more, probably as reused memory is zeroed by calloc rather than by the
    kernel; system time a little less). Returns whether glibc took all three settings
    (False off Linux or with another C library)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    took = [mallopt(_M_MMAP_THRESHOLD, _KEEP_BELOW), mallopt(_M_TRIM_THRESHOLD, _KEEP_BELOW),
            mallopt(_M_ARENA_MAX, 1)]
    return all(took)


def keep_arrow_freed_memory() -> bool:
    """Ask Arrow's allocator (mimalloc in the Linux wheels) to keep the memory it frees for
    reuse rather than handing it back to the system after a short delay
    (``MIMALLOC_PURGE_DELAY=-1``), so a page freed by one step is not faulted in afresh by
    the next. On benchmarks/run.py's 1M practice: 0.95-1.0M minor page faults and about
    2.0 s of kernel time by default, 0.73-0.75M and 1.6 s with this, and the check 0.2-0.3 s
    faster (5.35-5.60 s -> 5.15-5.24 s, alternating runs) for about 250 MB more peak memory
    (2.6 -> 2.9 GB). With it, ``_frames.release_arrow_memory`` (Arrow's ``release_unused``)
    hands nothing back either: mimalloc keeps what it freed even when asked, so part of that
    peak is memory the reader used to return once the events were read (library callers,
    who do not call this, still get it back). mimalloc reads its options when Arrow loads,
    so this must run before pyarrow is imported; a value already in the environment is
    kept. Only where memory comes from changes, never what is computed. Returns whether it
    was set here."""
    if "pyarrow" in sys.modules or "MIMALLOC_PURGE_DELAY" in os.environ:
        return False
    os.environ["MIMALLOC_PURGE_DELAY"] = "-1"
    return True


def avoid_blas_threads() -> bool:
    """Ask OpenBLAS (loaded with NumPy) for no threads of its own (``OPENBLAS_NUM_THREADS=1``).
    The check does no linear algebra to speak of, yet NumPy's OpenBLAS starts a thread per
    core when it loads, and on this 2-core machine that one extra thread, waiting for work
    in ``blas_thread_server``, took 1.2% of a 1M check's CPU samples (about 0.1 s of 8.3 s,
    ``perf record -e cpu-clock``) while both cores are busy. OpenBLAS reads the setting
    when it loads, so this must run before NumPy is imported; a value already in the
    environment is kept. Only how OpenBLAS would compute changes, never what is computed
    here. Returns whether it was set here."""
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True



PANDAS_WIDE_ROW_WARNING = "Length of header or names does not match length of data"


def command_line_settings() -> None:
    """Every setting above, as the command line makes them when it starts (and each batch
    worker process, which it starts afresh), and pandas' wide-row warning silenced.

    pandas' fallback reader warns when it drops a row's cells beyond the header's width.
    The reader never relies on that warning (it looks for wide rows itself and reports
    them: ``_export._read_with_pandas``), and warnings are process-wide: with files read on
    two threads, one thread's ``catch_warnings`` can let another's warning through, and the
    lead would see pandas' "loss of data" text for a row the report already names."""
    avoid_huge_pages()  # memory placement only, never results
    keep_freed_memory()  # likewise
    keep_arrow_freed_memory()  # likewise (before pandas and Arrow load)
    avoid_blas_threads()  # threads only, never results (before NumPy loads)
    warnings.filterwarnings("ignore", message=PANDAS_WIDE_ROW_WARNING)
