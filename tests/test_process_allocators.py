"""The CLI's glibc allocator settings (family_link._process.keep_freed_memory), checked in
a fresh interpreter as the CLI makes them, before any thread starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


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


def test_keep_freed_memory_reuses_a_block_another_thread_freed_without_fresh_page_faults():
    def run(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _THREAD_REUSE, mode], capture_output=True, text=True,
                             check=True, env=_clean_env("MALLOC_", "GLIBC_TUNABLES")).stdout.split()
        return out[0], int(out[1])

    took, faults_kept = run("on")
    if took != "True":
        assert not sys.platform.startswith("linux") or took == "False"
        pytest.skip("this C library does not take glibc's mallopt settings")
    _, faults_default = run("off")
    # By default each thread allocates from an arena of its own, which maps a block this
    # large afresh and unmaps it when freed: 16,384 pages faulted in again. With one arena
    # the second thread reuses the first thread's pages.
    assert faults_default > 10_000
    assert faults_kept * 10 < faults_default
