"""The auditor's report: coverage per rule with no patient identifiers, for an ICB
safeguarding auditor (docs/reports.md has the full policy).

Read from a check's report folder (``run.json`` and ``scope.csv``): per rule, the
households and patients in scope, how many were flagged, and coverage (the share of those in
scope whose record already carries the alert). No name, date of birth, address, postcode,
NHS number or practice patient id is written anywhere.

Small numbers (NHS Digital HES analysis guide; OpenSAFELY does the same):

- a count of 0 is shown as 0 (nothing to protect, and "none" is the finding auditors need);
- a count of 1 to 7 is shown as ``*``;
- any other count is rounded to the nearest 5 (8 -> 10, 12 -> 10, 13 -> 15);
- a percentage is computed from the *rounded* counts and suppressed (``*``) when its
  numerator or denominator is;
- no total is published that is the sum of cells shown in the same table (no "all rules"
  row: a patient can be in scope of several rules anyway). In a batch, the all-practices row
  of each rule is counted from the exact figures and then rounded like any cell; when
  exactly one practice's cell in a column is ``*``, the all-practices cell is ``*`` too, so
  the hidden cell cannot be had by subtraction (secondary suppression).

No key, no report: ``load_key`` refuses a missing, short or patterned key, and there is no
default. The key is used for the optional row-level file (``audit_rows.csv``), where
patients and households carry HMAC-SHA256 pseudonyms; those pseudonyms are stable from
month to month under the same key and cannot be reversed without it.
"""

from __future__ import annotations

__all__ = ["AuditRun", "load_key", "pseudonym", "suppress", "suppressed_percent", "load_audit_run",
           "audit_table", "render_audit", "write_audit", "AUDIT_COLUMNS", "MIN_KEY_BYTES",
           "AUDIT_MARKER"]

import csv
import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path

import pandas as pd

from . import __version__
from .errors import KeyFileError, Problem, RunFolderError
from .report import write_report_files

MIN_KEY_BYTES = 32
AUDIT_MARKER = "audit.json"  # a folder holding this file holds an auditor's report
AUDIT_COLUMNS = ["practice", "rule_id", "title", "severity", "households_in_scope", "households_flagged",
                 "patients_in_scope", "patients_flagged", "patients_already_alerted", "coverage_percent"]
_COUNT_COLUMNS = AUDIT_COLUMNS[4:9]
_KEY_HINT = ("make a key with: python3 -c \"import secrets; print(secrets.token_hex(32))\" > family_link.key "
             "(keep it private, and use the same key every month so pseudonyms stay comparable)")
ALL_PRACTICES = "All practices"


# ---------------------------------------------------------------------------------------
# Key and pseudonyms


def load_key(path: Path | str | None) -> bytes:
    """The key material in a key file: 64+ hex characters (decoded), or else the file's bytes
    with surrounding whitespace removed; at least ``MIN_KEY_BYTES`` bytes, not a repeated
    pattern. Every failure is a ``KeyFileError`` (exit code 6)."""
    if path is None:
        raise KeyFileError([Problem("--key-file", "no key given: the auditor's report is never made without one",
                                    hint=_KEY_HINT)])
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError([Problem(str(path), "not found", hint=_KEY_HINT)]) from None
    except IsADirectoryError:
        raise KeyFileError([Problem(str(path), "is a folder, not a key file", hint=_KEY_HINT)]) from None
    except OSError as exc:
        raise KeyFileError([Problem(str(path), f"cannot be read ({exc.strerror})", hint=_KEY_HINT)]) from None
    material = raw.strip()
    if re.fullmatch(rb"[0-9a-fA-F]+", material or b"x") and len(material) % 2 == 0:
        material = bytes.fromhex(material.decode("ascii"))
    if not material:
        raise KeyFileError([Problem(str(path), "is empty", hint=_KEY_HINT)])
    if len(material) < MIN_KEY_BYTES:
        raise KeyFileError([Problem(str(path), f"holds {len(material)} bytes of key material; at least "
                                    f"{MIN_KEY_BYTES} are needed", hint=_KEY_HINT)])
    if len(set(material)) < 8 or _is_repeat(material):
        raise KeyFileError([Problem(str(path), "looks like a pattern, not a random key (too few distinct "
                                    "bytes, or one short sequence repeated)", hint=_KEY_HINT)])
    return material


def _is_repeat(material: bytes) -> bool:
    n = len(material)
    return any(n % k == 0 and material == material[:k] * (n // k) for k in range(1, n // 2 + 1))


def pseudonym(key: bytes, kind: str, value: str) -> str:
    """``kind`` prefix and the first 16 hex digits (64 bits) of HMAC-SHA256(key, kind:value)."""
    digest = hmac.new(key, f"{kind}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{kind}-{digest[:16]}"


# ---------------------------------------------------------------------------------------
# Suppression


def suppress(n: int) -> str:
    """0 stays 0; 1-7 becomes '*'; anything else is rounded to the nearest 5 (integers never
    fall half-way, so there is no tie to break)."""
    n = int(n)
    if n < 0:
        raise ValueError("counts are never negative")
    if n == 0:
        return "0"
    if n <= 7:
        return "*"
    return str(5 * ((n + 2) // 5))


def suppressed_percent(numerator: str, denominator: str) -> str:
    """A percentage from two already-suppressed counts: '*' when either is, '' when the
    denominator is 0 (nothing in scope), else the rounded share to the nearest whole
    percent."""
    if numerator == "*" or denominator == "*":
        return "*"
    if denominator == "0":
        return ""
    return str(int(round(100 * int(numerator) / int(denominator))))


# ---------------------------------------------------------------------------------------
# Reading a run


@dataclass(frozen=True)
class AuditRun:
    practice: str
    as_of: str
    export_date: str | None
    rules_sha256: str
    version: str
    rules: dict[str, tuple[str, str]]  # rule_id -> (title, severity), in rule order
    scope: pd.DataFrame  # rule_id, patient_id, household_id, flagged (bool)


def load_audit_run(run_dir: Path | str, practice: str) -> AuditRun:
    run_dir = Path(run_dir)
    hint = "give the folder a family-link check wrote (it holds run.json and scope.csv; re-run the check " \
           "with this version if scope.csv is missing)"
    missing = [p for p in (run_dir / "run.json", run_dir / "scope.csv") if not p.is_file()]
    if missing:
        raise RunFolderError([Problem(str(p), "not found", hint=hint) for p in missing])
    try:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        rule_ids = list(meta["rules"]["rule_ids"])
        as_of = str(meta["as_of"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderError([Problem(str(run_dir / "run.json"), "is not a family_link run.json",
                                      hint=hint)]) from None
    try:
        scope = pd.read_csv(run_dir / "scope.csv", dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        raise RunFolderError([Problem(str(run_dir / "scope.csv"), "is not a readable CSV file",
                                      hint=hint)]) from None
    if not {"rule_id", "patient_id", "household_id", "flagged"} <= set(scope.columns):
        raise RunFolderError([Problem(str(run_dir / "scope.csv"),
                                      "lacks the columns rule_id, patient_id, household_id, flagged", hint=hint)])
    scope = scope.assign(flagged=scope["flagged"].str.lower().isin(["true", "1", "yes"]))
    titles = _rule_titles(run_dir, rule_ids)
    return AuditRun(practice, as_of, meta.get("export_date"), str(meta["rules"].get("sha256", "")),
                    str(meta.get("version", "")), titles, scope)


def _rule_titles(run_dir: Path, rule_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Titles and severities from the run's flags.csv where a rule flagged someone; for the
    rest, from the bundled rules when they still hold that id."""
    found: dict[str, tuple[str, str]] = {}
    try:
        flags = pd.read_csv(run_dir / "flags.csv", dtype=str, keep_default_na=False,
                            usecols=["rule_id", "title", "severity"])
        for r in flags.drop_duplicates("rule_id").itertuples(index=False):
            found[r.rule_id] = (r.title, r.severity)
    except (OSError, ValueError, pd.errors.ParserError):
        pass
    if any(r not in found for r in rule_ids):
        try:
            from .rules import load_ruleset

            for rule in load_ruleset(None).rules:
                found.setdefault(rule.id, (rule.title, rule.severity))
        except Exception:  # noqa: BLE001 - titles are a nicety; the ids are enough
            pass
    return {r: found.get(r, (r, "")) for r in rule_ids}


# ---------------------------------------------------------------------------------------
# The table


def _exact_counts(scope: pd.DataFrame) -> dict[str, int]:
    is_flagged = scope["flagged"].astype(bool)
    flagged = scope.loc[is_flagged]
    return {
        "households_in_scope": int(scope["household_id"].nunique()),
        "households_flagged": int(flagged["household_id"].nunique()),
        "patients_in_scope": int(scope["patient_id"].nunique()),
        "patients_flagged": int(flagged["patient_id"].nunique()),
        "patients_already_alerted": int((~is_flagged).sum()),
    }


def _row(practice: str, rule_id: str, title: str, severity: str, exact: dict[str, int]) -> dict[str, str]:
    shown = {k: suppress(v) for k, v in exact.items()}
    return {"practice": practice, "rule_id": rule_id, "title": title, "severity": severity, **shown,
            "coverage_percent": suppressed_percent(shown["patients_already_alerted"], shown["patients_in_scope"])}


def audit_table(runs: list[AuditRun]) -> pd.DataFrame:
    """One row per (practice, rule) with suppressed counts, plus (with two or more
    practices) an all-practices row per rule, with secondary suppression."""
    rows: list[dict[str, str]] = []
    exact_by_rule: dict[str, list[dict[str, int]]] = {}
    rules: dict[str, tuple[str, str]] = {}
    for run in runs:
        for rule_id, (title, severity) in run.rules.items():
            rules.setdefault(rule_id, (title, severity))
            exact = _exact_counts(run.scope[run.scope["rule_id"] == rule_id])
            exact_by_rule.setdefault(rule_id, []).append(exact)
            rows.append(_row(run.practice, rule_id, title, severity, exact))
    if len(runs) > 1:
        for rule_id, exacts in exact_by_rule.items():
            total = {k: sum(e[k] for e in exacts) for k in _COUNT_COLUMNS}
            row = _row(ALL_PRACTICES, rule_id, *rules[rule_id], total)
            for k in _COUNT_COLUMNS:
                if sum(suppress(e[k]) == "*" for e in exacts) == 1:
                    row[k] = "*"
            row["coverage_percent"] = suppressed_percent(row["patients_already_alerted"], row["patients_in_scope"])
            rows.append(row)
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def audit_rows(runs: list[AuditRun], key: bytes) -> pd.DataFrame:
    """The row-level file: one row per (practice, rule, pseudonymised patient)."""
    parts = []
    for run in runs:
        s = run.scope
        parts.append(pd.DataFrame({
            "practice": run.practice,
            "rule_id": s["rule_id"],
            "patient_pseudonym": [pseudonym(key, "P", f"{run.practice}\x1f{p}") for p in s["patient_id"]],
            "household_pseudonym": [pseudonym(key, "H", f"{run.practice}\x1f{h}") for h in s["household_id"]],
            "flagged": s["flagged"].map({True: "true", False: "false"}),
        }))
    cols = ["practice", "rule_id", "patient_pseudonym", "household_pseudonym", "flagged"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts).sort_values(cols, kind="mergesort")[cols].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Rendering

_POLICY = ("Counts of 1 to 7 are shown as *, other counts are rounded to the nearest 5, 0 is shown as 0. "
           "Percentages are computed from the rounded counts and suppressed when either part is. No total "
           "is the sum of cells shown; an all-practices cell is suppressed when exactly one practice's "
           "cell in its column is.")


def _svg_bars(items: list[tuple[str, str]], title: str) -> str:
    """A horizontal bar chart of percentages ('*' or '' drawn as a note, not a bar)."""
    width, label_w, bar_w, row_h = 860, 240, 440, 22
    height = 30 + row_h * max(len(items), 1)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' role='img' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' aria-label='{escape(title)}'>",
           f"<text x='0' y='14' font-size='13' font-weight='bold'>{escape(title)}</text>"]
    for i, (label, pct) in enumerate(items):
        y = 26 + i * row_h
        out.append(f"<text x='{label_w - 6}' y='{y + 14}' font-size='12' text-anchor='end'>{escape(label)}</text>")
        out.append(f"<rect x='{label_w}' y='{y + 3}' width='{bar_w}' height='{row_h - 8}' fill='#eee'/>")
        if pct and pct != "*":
            w = round(bar_w * min(int(pct), 100) / 100)
            out.append(f"<rect x='{label_w}' y='{y + 3}' width='{w}' height='{row_h - 8}' fill='#3a6ea5'/>")
            note = f"{pct}%"
        else:
            note = "suppressed (*)" if pct == "*" else "none in scope"
        out.append(f"<text x='{label_w + bar_w + 6}' y='{y + 14}' font-size='12'>{escape(note)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_audit(table: pd.DataFrame, runs: list[AuditRun], rows_file: bool,
                 not_included: tuple[str, ...] = ()) -> dict[str, bytes]:
    meta = {
        "tool": "family_link",
        "version": __version__,
        "report": "auditor",
        "suppression": _POLICY,
        "practices": [{"practice": r.practice, "as_of": r.as_of, "export_date": r.export_date,
                       "rules_sha256": r.rules_sha256, "tool_version": r.version} for r in runs],
        "columns": AUDIT_COLUMNS,
        "rows": table.to_dict(orient="records"),
        "row_level_file": "audit_rows.csv" if rows_file else None,
        "practices_not_included": list(not_included),  # a batch's failed exports
    }
    buf = io.StringIO()
    table.to_csv(buf, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    files = {
        "audit.csv": buf.getvalue().encode("utf-8"),
        "audit.json": (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "audit.html": _render_html(table, runs, not_included),
    }
    return files


def _render_html(table: pd.DataFrame, runs: list[AuditRun], not_included: tuple[str, ...] = ()) -> bytes:
    as_ofs = sorted({r.as_of for r in runs})
    when = ", ".join(date.fromisoformat(a).strftime("%d/%m/%Y") for a in as_ofs)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">",
             f"<title>family_link auditor's report, as of {escape(when)}</title><style>",
             "body{font-family:system-ui,Arial,sans-serif;margin:1.5rem;color:#111}"
             "table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}"
             "th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left}td.n{text-align:right}"
             "th{background:#eef}.muted{color:#555}h2{font-size:1.1rem}"
             "@media print{body{margin:0}}</style></head><body>",
             f"<h1>Safeguarding family-coding coverage, as of {escape(when)}</h1>",
             "<p class='muted'>No patient identifiers. Coverage is the share of the patients in scope of a rule "
             "whose record already carries the family-level alert. " + escape(_POLICY) + "</p>"]
    if not_included:
        parts.append("<p><strong>Not included</strong> (their export could not be checked): "
                     + escape(", ".join(not_included)) + ". The all-practices figures leave them out.</p>")
    is_batch = len(runs) > 1
    headline = table[table["practice"] == ALL_PRACTICES] if is_batch else table
    parts.append(_svg_bars([(r.rule_id, r.coverage_percent)
                            for r in headline.itertuples(index=False)],
                           "Coverage by rule" + (" (all practices)" if is_batch else "")))
    if is_batch:
        for rule_id in dict.fromkeys(table["rule_id"]):
            sub = table[(table["rule_id"] == rule_id) & (table["practice"] != ALL_PRACTICES)]
            parts.append("<div>" + _svg_bars([(r.practice, r.coverage_percent) for r in sub.itertuples(index=False)],
                                             f"Coverage by practice: {rule_id}") + "</div>")
    heads = {"practice": "Practice", "rule_id": "Rule id", "title": "Rule", "severity": "Severity",
             "households_in_scope": "Households in scope", "households_flagged": "Households flagged",
             "patients_in_scope": "Patients in scope", "patients_flagged": "Patients flagged",
             "patients_already_alerted": "Already alerted", "coverage_percent": "Coverage %"}
    parts.append("<table id='audit'><thead><tr>" + "".join(f"<th>{escape(heads[c])}</th>" for c in AUDIT_COLUMNS)
                 + "</tr></thead><tbody>")
    for r in table.itertuples(index=False):
        parts.append("<tr>" + "".join(
            f"<td{' class=n' if c in _COUNT_COLUMNS or c == 'coverage_percent' else ''}>{escape(str(v))}</td>"
            for c, v in zip(AUDIT_COLUMNS, r)) + "</tr>")
    parts.append("</tbody></table><h2>Runs</h2><table><thead><tr><th>Practice</th><th>As of</th>"
                 "<th>Export date</th><th>Rules sha256</th></tr></thead><tbody>")
    for r in runs:
        parts.append(f"<tr><td>{escape(r.practice)}</td><td>{escape(r.as_of)}</td>"
                     f"<td>{escape(r.export_date or 'not recorded')}</td><td><code>{escape(r.rules_sha256[:16])}"
                     "</code></td></tr>")
    parts.append("</tbody></table></body></html>\n")
    return "".join(parts).encode("utf-8")


def write_audit(runs: list[AuditRun], out_dir: Path | str, key: bytes, *, rows_file: bool = False,
                force: bool = False, not_included: tuple[str, ...] = ()) -> Path:
    """Write audit.csv, audit.json, audit.html (and audit_rows.csv with ``rows_file``)."""
    if not key or len(key) < MIN_KEY_BYTES:  # belt and braces: callers pass load_key's result
        raise KeyFileError([Problem("--key-file", "no usable key", hint=_KEY_HINT)])
    table = audit_table(runs)
    files = render_audit(table, runs, rows_file, not_included)
    if rows_file:
        files["audit_rows.csv"] = audit_rows(runs, key).to_csv(index=False, lineterminator="\n").encode("utf-8")
    return write_report_files(out_dir, files, force=force, marker=AUDIT_MARKER)
