"""Figures behind --jobs (docs/households.md "Partitioning", parallel.py): how many
groups ``link_groups`` finds and the largest group's share of records, and the rules'
seconds in one process against ``evaluate_rules_partitioned`` with 2 processes. Prints
figures; asserts nothing.

    .venv/bin/python benchmarks/partitions.py /tmp/family_link_bench/practice-1000000
(a practice written by ``family-link generate``, e.g. the one benchmarks/run.py caches).
"""

from __future__ import annotations

import sys
import time
from datetime import date

import numpy as np
import pandas as pd

from family_link._process import avoid_huge_pages
from family_link.address import normalise_addresses
from family_link.engine import evaluate_rules
from family_link.households import _prepare, link_groups, link_households
from family_link.layouts import load_any_export
from family_link.parallel import evaluate_rules_partitioned
from family_link.rules import load_ruleset

AS_OF = date(2026, 11, 1)


def main(folder: str) -> None:
    avoid_huge_pages()  # as the CLI does
    export = load_any_export(folder, AS_OF)
    people = _prepare(export.patients)
    joined = pd.concat([people.drop(columns=["postcode"]), normalise_addresses(people)], axis=1)
    sizes = np.bincount(link_groups(joined, export.relationships))
    print(f"link_groups: {len(sizes):,} groups; the largest holds {sizes.max() / sizes.sum():.1%} of records")
    households = link_households(export.patients, export.relationships, AS_OF)
    ruleset = load_ruleset(None)
    for jobs in (1, 2, 1, 2):
        start = time.perf_counter()
        if jobs == 1:
            evaluate_rules(ruleset, export.patients, export.events, households, AS_OF, export.relationships)
        else:
            evaluate_rules_partitioned(ruleset, export.patients, export.events, households, AS_OF,
                                       export.relationships, jobs)
        print(f"rules, {jobs} process{'es' if jobs > 1 else ''}: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1])
