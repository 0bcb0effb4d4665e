"""worklist.html's flag rows handed to the page's join as a view of the Arrow buffer
(no copy): the same bytes as the copy, and the view outlives the array it was made from."""
from __future__ import annotations

import gc

import pandas as pd
import pyarrow as pa

from family_link import worklist as W


def _rows(n: int) -> pd.DataFrame:
    rows = pd.DataFrame({c: pd.Series([f"{c} <{i}> & é" for i in range(n)], dtype="str") for c in W.WORKLIST_COLUMNS})
    rows["date_of_birth"] = pd.Series(["2001-02-03"] * n, dtype="str")
    rows["first_flagged"] = pd.Series([""] * n, dtype="str")
    rows["members"] = pd.Series(pd.arrays.ArrowExtensionArray(
        pa.array([["a (P1, adult)", "b <x>"]] * n, pa.large_list(pa.large_string()))))
    return rows


def test_flag_rows_view_is_the_copy():
    rows = _rows(7)
    view = W._flag_rows_html(rows, view=True)
    assert isinstance(view, memoryview)
    gc.collect()  # the Arrow array it views is gone: the view keeps its buffer alive
    assert bytes(view) == W._flag_rows_html(rows)
    assert b"&lt;3&gt;" in bytes(view)


def test_buffer_view_of_a_slice():
    arr = pa.array(["ab", "", "cdé", "f"], pa.large_string()).slice(1, 2)
    assert bytes(W._buffer_view(arr)) == W._buffer_bytes(arr) == "cdé".encode()
