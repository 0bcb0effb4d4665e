"""The rules over partitions: the form an ICB-scale run split across processes or machines uses.

Rules look only inside a household, so the patients, events and households can be split
by household into N parts, each evaluated by the same ``evaluate_rules`` function, and the
results put back in the one order the single-process run gives: the output is identical
whatever N. The same function could be applied per partition by Spark or Dask.

``check --jobs N`` does not use it: the rules take about 0.4 s for 1,000,000 patients,
less than forking and partitioning cost (``benchmarks/partitions.py``: 2 processes about
0.75 s, one about 0.4 s). ``--jobs`` parallelises household linkage instead
(``households.link_households(jobs=N)``).

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

from .engine import (FLAG_COLUMNS, RULE_PATIENT_COLUMNS, SCOPE_COLUMNS, Evaluation, _codelist_events, _positions,
                     evaluate_rules)
from .rules import RuleSet

_SHARED: dict = {}  # what forked workers read: set just before the pool starts


def partition_by(keys: pd.Series, parts: int) -> np.ndarray:
    """A stable partition number per key (the same key, the same part, on any machine)."""
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy()
    return (hashed % np.uint64(parts)).astype(np.int64)


def _evaluate_part(part: int) -> Evaluation:
    s = _SHARED
    households = s["households"][s["household_part"] == part]
    patients = s["patients"][s["patient_part"] == part]
    # Every part gets all the coded events and relationships: the engine looks only at
    # those of its own patients (everyone else's are at no position among its people).
    return evaluate_rules(s["ruleset"], patients, s["events"], households, s["as_of"], s["relationships"])


def _patient_part(patients: pd.DataFrame, households: pd.DataFrame, household_part: np.ndarray) -> np.ndarray:
    """Each patient's part: that of their row in ``households`` (-1, in no part, when
    they have none, as a patient the households frame does not list is in no partition)."""
    ids, hh_ids = patients["patient_id"].reset_index(drop=True), households["patient_id"].reset_index(drop=True)
    if len(ids) == len(hh_ids) and bool((ids.astype(str) == hh_ids.astype(str)).all()):
        return household_part  # the same patients in the same order
    at = _positions(ids, hh_ids)
    return np.where(at >= 0, household_part[np.maximum(at, 0)], -1) if len(hh_ids) else at


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
    # Only what the engine reads is handed to the parts: the events with a codelist code
    # (a few in a thousand; the engine ignores the rest), and the columns it uses.
    household_part = partition_by(households["household_id"], jobs)
    _SHARED.update(ruleset=ruleset, events=_codelist_events(ruleset, events),
                   patients=patients[RULE_PATIENT_COLUMNS], households=households[["patient_id", "household_id"]],
                   as_of=as_of, relationships=relationships, household_part=household_part,
                   patient_part=_patient_part(patients, households, household_part))
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
