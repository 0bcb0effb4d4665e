"""Golden files for the report CSVs: compare an output with ``tests/golden/<name>``.

Regenerate every golden file after an intended change with

    FAMILY_LINK_REGEN_GOLDEN=1 .venv/bin/pytest -q tests/test_previous.py tests/test_worklist.py \
        tests/test_audit.py tests/test_batch.py

and review the diff (``git diff tests/golden``) before committing: a golden file changes only
when the report is meant to change.
"""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from family_link.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("FAMILY_LINK_REGEN_GOLDEN") == "1"

# The golden practice: small, generated, fixed seed and as-of dates.
GOLDEN_SEED = 7
GOLDEN_PATIENTS = 150
MONTH_1 = "2026-11-01"
MONTH_2 = "2026-12-01"


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def generate(folder: Path, seed: int = GOLDEN_SEED, patients: int = GOLDEN_PATIENTS, as_of: str = MONTH_1,
             layout: str | None = None) -> Path:
    result = run("generate", folder, "--patients", patients, "--seed", seed, "--as-of", as_of,
                 *(["--layout", layout] if layout else []))
    assert result.exit_code == 0, result.output
    return folder


def assert_golden(name: str, produced: Path) -> None:
    """``produced`` must equal ``tests/golden/<name>`` byte for byte (or, with
    FAMILY_LINK_REGEN_GOLDEN=1, becomes it)."""
    golden = GOLDEN / name
    data = produced.read_bytes()
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
        return
    assert golden.is_file(), f"no golden file {golden}: run with FAMILY_LINK_REGEN_GOLDEN=1 to create it"
    assert data == golden.read_bytes(), (
        f"{produced.name} differs from tests/golden/{name}; if the change is intended, regenerate with "
        "FAMILY_LINK_REGEN_GOLDEN=1 and review git diff tests/golden")
