"""The shipped codelists are exactly what the curation script makes from the research."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

RESEARCH = ROOT.parent / "shared" / "codelists-research"


@pytest.mark.skipif(not RESEARCH.is_dir(), reason="needs ../shared/codelists-research beside the repository")
def test_codelists_are_the_curation_scripts_output():
    result = subprocess.run([sys.executable, str(ROOT / "rules" / "codelists" / "build_codelists.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_codelist_row_names_its_source():
    import csv

    for path in sorted((ROOT / "rules" / "codelists").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, path.name
        assert all(r["source"].strip() for r in rows), path.name
        assert all(r["code"].strip() and r["term"].strip() for r in rows), path.name


def test_care_processes_never_trigger_domestic_abuse():
    text = (ROOT / "rules" / "codelists" / "domestic_abuse.csv").read_text()
    for code in ("700410005", "413457006"):  # routine enquiry; domestic violence education
        assert f"\n{code}," not in text
