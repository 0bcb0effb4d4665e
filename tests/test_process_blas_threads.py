"""The CLI's process-wide settings (family_link._process), each checked in a fresh
interpreter, as it only takes before the library concerned loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from family_link._process import avoid_blas_threads

_BLAS = """
import os, sys
from family_link._process import avoid_blas_threads
took = avoid_blas_threads() if sys.argv[1] == "on" else None
import numpy as np
np.ones((4, 4)) @ np.ones((4, 4))
print(took, os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task")))
"""


def test_avoid_blas_threads_keeps_openblas_from_starting_threads_before_numpy_loads():
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        pytest.skip("counts threads in /proc; OpenBLAS starts none on one core")

    def run(mode: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "OMP_", "GOTO_"))}
        return subprocess.run([sys.executable, "-c", _BLAS, mode], capture_output=True, text=True,
                              check=True, env=env).stdout.split()

    took, value, threads_on = run("on")
    _, value_off, threads_off = run("off")
    assert (took, value, value_off) == ("True", "1", "None")
    if int(threads_off) == 1:
        pytest.skip("this NumPy's BLAS starts no threads of its own")
    assert int(threads_on) < int(threads_off)


def test_avoid_blas_threads_keeps_a_value_already_set(monkeypatch):
    # As if NumPy were not loaded yet (in a whole test run it is), so only the value
    # already set can make it leave the environment alone.
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert avoid_blas_threads() is False
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


def test_avoid_blas_threads_sets_nothing_once_numpy_is_loaded(monkeypatch):
    import numpy  # noqa: F401  (loaded: OpenBLAS has read its settings)

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert avoid_blas_threads() is False
    assert "OPENBLAS_NUM_THREADS" not in os.environ
