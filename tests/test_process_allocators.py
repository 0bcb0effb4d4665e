"""The CLI's glibc allocator settings (family_link._process.keep_freed_memory), checked in
a fresh interpreter as the CLI makes them, before any thread starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


_REUSE = """
import resource, sys, numpy as np
from family_link._process import avoid_huge_pages, keep_freed_memory
avoid_huge_pages()  # as the CLI does: 4 KB pages, so faults count pages
took = keep_freed_memory() if sys.argv[1] == "on" else None
a = np.ones(8 << 20); del a  # 64 MB, touched, then freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(8 << 20)  # the same size again
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


_THREAD_REUSE = """
import resource, sys, threading, numpy as np
from family_link._process import avoid_huge_pages, keep_freed_memory
avoid_huge_pages()  # as the CLI does: 4 KB pages, so faults count pages
took = keep_freed_memory() if sys.argv[1] == "on" else None
faults = []

def work():  # 64 MB, touched and freed on one thread, then asked for again on another
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    a = np.ones(8 << 20); del a
    faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

for _ in range(2):
    t = threading.Thread(target=work); t.start(); t.join()
print(took, faults[1])
"""


def _clean_env(*prefixes: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _faults(script: str, mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    """Run ``script`` in a fresh interpreter with the settings "on" or "off": what
    keep_freed_memory returned, and the page faults it counted."""
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    return out[0], int(out[1])


def _faults_kept_and_default(script: str, env: dict[str, str] | None = None) -> tuple[int, int]:
    took, faults_kept = _faults(script, "on", env)
    if took != "True":
        assert not sys.platform.startswith("linux") or took == "False"
        pytest.skip("this C library does not take glibc's mallopt settings")
    return faults_kept, _faults(script, "off", env)[1]


def test_keep_freed_memory_reuses_a_freed_block_without_fresh_page_faults():
    faults_kept, faults_default = _faults_kept_and_default(_REUSE)
    # 64 MB is 16,384 pages of 4 KB (fewer where huge pages stay on): mapped afresh by
    # default, reused when kept.
    assert faults_default > 100
    assert faults_kept * 10 < faults_default


def test_keep_freed_memory_reuses_a_block_another_thread_freed_without_fresh_page_faults():
    faults_kept, faults_default = _faults_kept_and_default(_THREAD_REUSE, _clean_env("MALLOC_", "GLIBC_TUNABLES"))
    # By default each thread allocates from an arena of its own, which maps a block this
    # large afresh and unmaps it when freed: 16,384 pages faulted in again. With one arena
    # the second thread reuses the first thread's pages.
    assert faults_default > 10_000
    assert faults_kept * 10 < faults_default
