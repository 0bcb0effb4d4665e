"""Linking in groups (``link_households(..., jobs=N)``) gives exactly the whole run's rows.

``link_groups`` joins records that anything in the linkage can connect (a postcode
district, a record without a valid postcode and the districts it could be matched in, a
clinical-system household id or uprn, a recorded relationship); each group is then linked
on its own in a forked process. These tests compare the two runs on generated practices
and on tiny inline tables for each cross-district case.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from family_link._export import parse_export_frames
from family_link.address import normalise_addresses
from family_link.generate import generate_practice
from family_link import households
from golden_files import run
from family_link.households import _prepare, link_groups, link_households

AS_OF = date(2026, 11, 1)


def _generated(n: int, seed: int, household_ids: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    synthetic = generate_practice(n, seed, AS_OF, include_household_ids=household_ids)
    export = parse_export_frames(synthetic.patients, synthetic.events, synthetic.relationships, AS_OF)
    return export.patients, export.relationships


def _groups(patients: pd.DataFrame, relationships: pd.DataFrame | None) -> np.ndarray:
    people = _prepare(patients)
    joined = pd.concat([people.drop(columns=["postcode"]), normalise_addresses(people)], axis=1)
    return pd.Series(link_groups(joined, relationships), index=joined["patient_id"].to_numpy())


@pytest.mark.parametrize("seed,household_ids", [(11, False), (12, True)])
def test_partitioned_run_is_the_whole_run(seed, household_ids):
    patients, relationships = _generated(4000, seed, household_ids)
    # Any row order, and a practice with records missing (relationships to absent people).
    patients = patients.sample(frac=0.9, random_state=seed)
    whole = link_households(patients, relationships, AS_OF)
    assert len(set(_groups(patients, relationships))) > 1  # the split really happens
    for jobs in (2, 5):
        parted = link_households(patients, relationships, AS_OF, jobs=jobs)
        pd.testing.assert_frame_equal(parted, whole, check_exact=True)


_HAS_MEMORY_FILES = hasattr(os, "memfd_create")


def _refused(name):
    raise OSError(38, "Function not implemented")  # as a sandbox refusing memfd_create says


@pytest.mark.parametrize("memory_files", [
    pytest.param("made", marks=pytest.mark.skipif(not _HAS_MEMORY_FILES, reason="no memory files here")),
    "none on this system",
    "refused",
])
def test_parts_come_back_whole_through_memory_files_or_the_pool(monkeypatch, memory_files):
    # The workers write their households into memory files the parent maps (Linux), or,
    # where the system has none or refuses them, return them through the pool: the same
    # rows either way, and no file left open.
    patients, relationships = _generated(1500, 13, False)
    whole = link_households(patients, relationships, AS_OF)
    mapped, mapped_table = [], households._mapped_table

    def spied(fd):
        mapped.append(fd)
        return mapped_table(fd)

    monkeypatch.setattr(households, "_mapped_table", spied)
    if memory_files == "none on this system":
        monkeypatch.delattr(os, "memfd_create", raising=False)
    elif memory_files == "refused":
        monkeypatch.setattr(os, "memfd_create", _refused)
    open_before = sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    parted = link_households(patients, relationships, AS_OF, jobs=3)
    assert len(mapped) == (3 if memory_files == "made" else 0)  # the path under test was the one taken
    pd.testing.assert_frame_equal(parted, whole, check_exact=True)
    if open_before is not None:
        assert sorted(os.listdir("/proc/self/fd")) == open_before


@pytest.mark.skipif(not _HAS_MEMORY_FILES, reason="no memory files here")
def test_memory_files_refused_part_way_are_closed(monkeypatch):
    made = []

    def one_then_refused(name):
        if made:
            _refused(name)
        made.append(os.open(os.devnull, os.O_RDONLY))  # stands for the first memory file
        return made[-1]

    monkeypatch.setattr(os, "memfd_create", one_then_refused)
    assert households._memory_files([0, 1, 2]) == {}
    with pytest.raises(OSError):
        os.fstat(made[0])  # closed, not leaked


def test_a_worker_stopped_by_the_system_is_exit_code_8_with_what_to_do(monkeypatch, tmp_path):
    # The system stopping a worker (for lack of memory, say) is not a bug (exit 1, a
    # traceback) but exit 8, saying what to do; no report is written.
    parent, link_normalised = os.getpid(), households.link_normalised

    def stopped_in_a_worker(*args):
        if os.getpid() != parent:
            os._exit(137)  # as a process killed by the system ends
        return link_normalised(*args)

    monkeypatch.setattr(households, "link_normalised", stopped_in_a_worker)
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "practice"
    result = run("check", sample, "--out", tmp_path / "report", "--as-of", "2026-11-01", "--jobs", "2")
    assert result.exit_code == 8, result.output
    assert "stopped by the system for lack of memory" in result.output and "fewer --jobs" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


def _patients(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["patient_id", "address_line_1", "address_line_2", "postcode",
                                        "household_id"])
    frame["surname"] = "SMITH"
    frame["date_of_birth"] = pd.to_datetime("1980-01-01")
    return frame


def test_lost_postcode_joins_the_districts_it_could_match():
    # P3 has no valid postcode: it could only be matched in a district holding both
    # "12 MILL ROAD" and the town WALSALL (WS1), not in WS9 (another town).
    patients = _patients([
        ("P1", "12 MILL ROAD", "WALSALL", "WS1 1AA", ""),
        ("P2", "3 OAK LANE", "WALSALL", "WS2 2BB", ""),
        ("P3", "12 MILL ROAD", "WALSALL", "", ""),
        ("P4", "12 MILL ROAD", "BROWNHILLS", "WS9 9ZZ", ""),
    ])
    g = _groups(patients, None)
    assert g["P3"] == g["P1"]
    assert g["P2"] != g["P1"] and g["P4"] != g["P1"]
    parted = link_households(patients, None, AS_OF, jobs=3)
    pd.testing.assert_frame_equal(parted, link_households(patients, None, AS_OF), check_exact=True)


def test_system_ids_and_relationships_join_districts():
    patients = _patients([
        ("P1", "1 MILL ROAD", "WALSALL", "WS1 1AA", "H9"),
        ("P2", "5 ELM ROAD", "WALSALL", "WS2 2BB", "H9"),
        ("P3", "7 ASH ROAD", "WALSALL", "WS3 3CC", ""),
        ("P4", "9 YEW ROAD", "WALSALL", "WS4 4DD", ""),
    ])
    relationships = pd.DataFrame({"patient_id": ["P3"], "related_patient_id": ["P4"],
                                  "relationship": ["mother"]})
    g = _groups(patients, relationships)
    assert g["P1"] == g["P2"] and g["P3"] == g["P4"] and g["P1"] != g["P3"]
    parted = link_households(patients, relationships, AS_OF, jobs=2)
    whole = link_households(patients, relationships, AS_OF)
    pd.testing.assert_frame_equal(parted, whole, check_exact=True)
