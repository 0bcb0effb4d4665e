"""Small frame helpers used on the hot path."""

from __future__ import annotations

__all__ = ["full_names", "index_in", "isin"]

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def isin(values: pd.Series, allowed: Iterable[str] | pd.Series) -> pd.Series:
    """``values.isin(allowed)`` for string columns, through Arrow's hash set: pandas'
    own ``isin`` on Arrow strings walks the allowed values in Python (0.4 s against
    0.03 s for 500,000 values)."""
    if not isinstance(allowed, (pd.Series, pd.Index, np.ndarray, list)):
        allowed = list(allowed)
    value_set = pa.array(pd.Series(allowed, dtype=object).astype(str), type=pa.string())
    column = pa.array(values.astype(str), type=pa.string())
    hit = pc.is_in(column, value_set=value_set).to_numpy(zero_copy_only=False)
    return pd.Series(hit, index=values.index, dtype=bool)


def index_in(values: pd.Series, table: pd.Series) -> np.ndarray:
    """Position of each value in ``table`` (unique values), or -1: a hash lookup through
    Arrow, in place of a pandas index lookup that is 10x slower on strings."""
    value_set = pa.array(table.astype(str), type=pa.string())
    column = pa.array(values.astype(str), type=pa.string())
    found = pc.index_in(column, value_set=value_set)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def full_names(patients: pd.DataFrame) -> pd.Series:
    """"Forenames Surname" as the worklist and the reasons show a patient."""
    return (patients["forenames"].fillna("") + " " + patients["surname"].fillna("")).str.strip()
