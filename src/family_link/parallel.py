"""Running the per-household steps over partitions, in several processes (``--jobs N``).

Rules look only inside a household, so the patients, events and households can be split
by household into N parts, each evaluated by the same ``evaluate_rules`` function, and the
results put back in the one order the single-process run gives: the output is identical
whatever N. The same function could be applied per partition by Spark or Dask.

Worker processes are forked, so they read the parent's frames without copying them
through a pipe; where fork is unavailable the parts are evaluated one after another.
"""

from __future__ import annotations

__all__ = ["evaluate_rules_partitioned", "partition_by"]

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np
import pandas as pd

from ._frames import isin
from .engine import FLAG_COLUMNS, SCOPE_COLUMNS, Evaluation, evaluate_rules
from .rules import RuleSet

_SHARED: dict = {}  # what forked workers read: set just before the pool starts


def partition_by(keys: pd.Series, parts: int) -> np.ndarray:
    """A stable partition number per key (the same key, the same part, on any machine)."""
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy()
    return (hashed % np.uint64(parts)).astype(np.int64)


def _evaluate_part(part: int) -> Evaluation:
    s = _SHARED
    in_part = s["household_part"] == part
    households = s["households"][in_part]
    members = households["patient_id"]
    patients = s["patients"][isin(s["patients"]["patient_id"], members)]
    events = s["events"][isin(s["events"]["patient_id"], members)]
    rel = s["relationships"]
    if rel is not None:
        rel = rel[isin(rel["patient_id"], members)]
    return evaluate_rules(s["ruleset"], patients, events, households, s["as_of"], rel)


def _in_rule_order(frames: list[pd.DataFrame], ruleset: RuleSet, columns: list[str],
                   keys: list[str]) -> pd.DataFrame:
    order = {r.id: i for i, r in enumerate(ruleset.rules)}
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    both = both.assign(_rule=both["rule_id"].map(order))
    both = both.sort_values(["_rule", *keys], kind="mergesort")
    return both[columns].reset_index(drop=True)


def evaluate_rules_partitioned(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                               households: pd.DataFrame, as_of: date,
                               relationships: pd.DataFrame | None, jobs: int) -> Evaluation:
    if jobs <= 1:
        return evaluate_rules(ruleset, patients, events, households, as_of, relationships)
    _SHARED.update(ruleset=ruleset, patients=patients, events=events, households=households,
                   as_of=as_of, relationships=relationships,
                   household_part=partition_by(households["household_id"], jobs))
    try:
        if "fork" in multiprocessing.get_all_start_methods():
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_evaluate_part, range(jobs)))
        else:
            results = [_evaluate_part(p) for p in range(jobs)]
    finally:
        _SHARED.clear()
    flags = _in_rule_order([r.flags for r in results], ruleset, FLAG_COLUMNS, ["patient_id"])
    scope = _in_rule_order([r.scope for r in results], ruleset, SCOPE_COLUMNS, ["patient_id", "household_id"])
    return Evaluation(flags.astype(object), scope)
