"""No leaks: nothing printed to the terminal, logged, or written for the auditor holds a
patient identifier from the input.

Every command is run as a user runs it (a subprocess, ``-v`` where it applies, so logging
is real) on a practice written by ``family-link generate``, including runs that fail on bad
input. Their stdout and stderr, any ``*.log`` file and the auditor's outputs are searched
for every identifier in the input: patient ids, NHS numbers, surnames, forenames, dates of
birth (YYYY-MM-DD and DD/MM/YYYY), address lines, and postcodes with and without their space.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

AS_OF = "2026-11-01"
ROOT = Path(__file__).resolve().parents[1]


def family_link(*args, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "family_link", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return f"$ family-link {' '.join(map(str, args))} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"


def _cli_commands() -> set[str]:
    from family_link.cli import main

    names = set()
    for name, cmd in main.commands.items():
        sub = getattr(cmd, "commands", None)
        names |= {f"{name} {s}" for s in sub} if sub else {name}
    return names


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> dict:
    """Run every command once; return the practice, what was printed and what was written."""
    work = tmp_path_factory.mktemp("leaks")
    transcripts: dict[str, str] = {}
    transcripts["generate"] = family_link("-v", "generate", "practice", "--patients", "500", "--seed", "8",
                                          "--as-of", AS_OF, cwd=work)
    practice = work / "practice"
    key = work / "family_link.key"
    key.write_text(secrets.token_hex(32))

    transcripts["check"] = family_link("-v", "check", "practice", "--out", "report", "--as-of", AS_OF, cwd=work)
    transcripts["check --force --previous"] = family_link(
        "-v", "check", "practice", "--out", "report2", "--as-of", AS_OF, "--previous", "report", cwd=work)
    transcripts["households"] = family_link("-v", "households", "practice", "--as-of", AS_OF, cwd=work)
    transcripts["rules list"] = family_link("-v", "rules", "list", cwd=work)
    transcripts["rules show"] = family_link("-v", "rules", "show", "cp-sibling", cwd=work)
    transcripts["rules validate"] = family_link("-v", "rules", "validate", ROOT / "rules", cwd=work)
    if "audit" in _cli_commands():
        transcripts["audit"] = family_link("-v", "audit", "report", "--key-file", key, "--out", "audit",
                                           "--practice", "M91001", "--rows", cwd=work)
    if "batch" in _cli_commands():
        exports = work / "exports"
        shutil.copytree(practice, exports / "practice-a", ignore=shutil.ignore_patterns("truth"))
        broken = exports / "practice-b"
        shutil.copytree(practice, broken, ignore=shutil.ignore_patterns("truth"))
        lines = (broken / "patients.csv").read_text().splitlines(keepends=True)
        (broken / "patients.csv").write_text("".join(lines[1:]))  # no header row: fails
        transcripts["batch"] = family_link("-v", "batch", "exports", "--out", "batch", "--as-of", AS_OF,
                                           "--key-file", key, cwd=work)

    # Bad input: the messages must name rows and columns, never values. (More bad inputs,
    # with the same check on their messages, are in test_bad_input.py.)
    bad_inputs = {
        "headerless": lambda text: "".join(text.splitlines(keepends=True)[1:]),
        "month-first": lambda text: re.sub(r"(\d{4})-(\d{2})-(\d{2})", r"\2/\3/\1", text),
    }
    for name, corrupt in bad_inputs.items():
        folder = work / f"bad-{name}"
        shutil.copytree(practice, folder, ignore=shutil.ignore_patterns("truth"))
        patients = (folder / "patients.csv").read_text(encoding="utf-8")
        (folder / "patients.csv").write_text(corrupt(patients), encoding="utf-8")
        transcripts[f"check {name}"] = family_link("-v", "check", folder.name, "--out", f"out-{name}",
                                                   "--as-of", AS_OF, cwd=work)
    logs = {str(p.relative_to(work)): p.read_text(errors="replace") for p in work.rglob("*.log")}
    auditor = {str(p.relative_to(work)): p.read_text(errors="replace")
               for p in (work / "audit").rglob("*") if p.is_file()} if (work / "audit").exists() else {}
    batch_audit = {str(p.relative_to(work)): p.read_text(errors="replace")
                   for p in (work / "batch" / "audit").rglob("*") if p.is_file()} \
        if (work / "batch" / "audit").exists() else {}
    batch_summary = {"batch/summary.csv": (work / "batch" / "summary.csv").read_text()} \
        if (work / "batch" / "summary.csv").exists() else {}
    return {"work": work, "practice": practice, "transcripts": transcripts, "logs": logs, "key": key.read_text(),
            "auditor": {**auditor, **batch_audit}, "batch_summary": batch_summary}


def identifiers(practice: Path) -> dict[str, set[str]]:
    p = pd.read_csv(practice / "patients.csv", dtype=str, keep_default_na=False)
    dob = pd.to_datetime(p["date_of_birth"], format="mixed", dayfirst=True, errors="coerce").dropna()
    postcodes = {pc.strip().upper() for pc in p["postcode"] if pc.strip()}
    address = set()
    for col in [c for c in p.columns if c.startswith("address_line_")]:
        counts = p[col].str.strip().value_counts()
        # Town, county and street-only lines are shared by much of the practice: not identifying.
        address |= {v for v, n in counts.items() if len(v) >= 6 and n <= max(10, len(p) // 50)}
    return {
        "patient id": set(p["patient_id"]),
        "NHS number": {n for n in p["nhs_number"] if n},
        "surname": {s for s in p["surname"] if len(s) >= 3},
        "forename": {f for name in p["forenames"] for f in name.split() if len(f) >= 3},
        "date of birth": {d.strftime("%Y-%m-%d") for d in dob} | {d.strftime("%d/%m/%Y") for d in dob},
        "postcode": postcodes | {pc.replace(" ", "") for pc in postcodes},
        "address": address,
    }


def leaks(text: str, idents: dict[str, set[str]]) -> list[str]:
    """Every identifier found in ``text`` as a whole token (not inside a longer word/number)."""
    found = []
    for kind, values in idents.items():
        pattern = re.compile(r"(?<![\w/-])(" + "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
                             + r")(?![\w/-])")
        found += [f"{kind}: {m!r}" for m in set(pattern.findall(text))]
    return sorted(found)


def test_every_command_was_run(session):
    run = set(session["transcripts"])
    missing = {c for c in _cli_commands() if not any(t.startswith(c) for t in run)}
    assert not missing, f"commands not exercised by the leak test: {missing}"


def test_identifiers_are_real(session):
    # Guard: the search looks for something. A practice of 500 has hundreds of each.
    idents = identifiers(session["practice"])
    for kind, values in idents.items():
        assert len(values) > 20, kind
    # ...and the search would find one if it were printed.
    pid = sorted(idents["patient id"])[0]
    assert leaks(f"row 3: {pid} is wrong", idents) == [f"patient id: {pid!r}"]


def test_terminal_output_of_every_command_holds_no_identifier(session):
    idents = identifiers(session["practice"])
    work = str(session["work"])
    problems = {}
    for command, text in session["transcripts"].items():
        text = text.replace(work, "WORK")
        found = leaks(text, idents)
        if found:
            problems[command] = found[:10]
    assert not problems, problems


def test_bad_input_runs_failed_cleanly(session):
    for name in ("headerless", "month-first"):
        text = session["transcripts"][f"check {name}"]
        assert "(exit 3)" in text.splitlines()[0], text
        assert "HINT" in text


def test_log_files_hold_no_identifier(session):
    idents = identifiers(session["practice"])
    for name, text in session["logs"].items():
        assert not leaks(text, idents), name


def test_auditor_outputs_hold_no_identifier(session):
    assert session["auditor"], "the audit command wrote nothing"
    idents = identifiers(session["practice"])
    for name, text in session["auditor"].items():
        assert not leaks(text, idents), (name, leaks(text, idents)[:10])


def test_batch_summary_holds_no_identifier(session):
    idents = identifiers(session["practice"])
    for name, text in session["batch_summary"].items():
        assert not leaks(text, idents), (name, leaks(text, idents)[:10])


def test_the_pseudonymisation_key_is_never_printed_or_written(session):
    key = session["key"].strip()
    everything = {**session["transcripts"], **session["logs"], **session["auditor"], **session["batch_summary"]}
    for name, text in everything.items():
        for fragment in (key, key.upper(), key[:16], key[-16:]):  # whole, or a recognisable part
            assert fragment not in text, name
    for path in session["work"].rglob("*"):
        if path.is_file() and path.name != "family_link.key" and path.stat().st_size < 50_000_000:
            assert key.encode() not in path.read_bytes(), path
