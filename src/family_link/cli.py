"""The ``family-link`` command line: a thin skin over the library.

Each command parses options, calls one library function and turns our own errors
(``FamilyLinkError``) into one clear message and a documented exit code. Anything else is
a bug and keeps its traceback. Nothing printed here contains a patient value: only counts,
rule ids and file names.

Exit codes: 0 the run completed (whatever it flagged); 1 a bug; 2 the command line was
wrong; 3 the export (or a report folder given as input) cannot be used; 4 the rules are
invalid; 5 the output folder cannot be written, already holds a report (use --force) or
is being written by another run;
6 the pseudonymisation key is missing, unreadable, short or weak; 7 a batch finished but at
least one export failed; 8 a worker process (--jobs) was stopped before it finished (for
lack of memory, most often).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from ._process import command_line_settings
from .errors import FamilyLinkError

def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FamilyLinkError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)
    return wrapper


def _parse_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date in YYYY-MM-DD form, e.g. 2026-11-01") from None


as_of_option = click.option(
    "--as-of", "as_of", callback=_parse_as_of, metavar="YYYY-MM-DD",
    help="Date every age and time window is measured from. Default: today.")
rules_option = click.option(
    "--rules", "rules_dir", type=click.Path(path_type=Path), default=None,
    help="Folder of rule files (*.yaml) with a codelists/ folder. Default: the project's rules/.")


class _QuickExitGroup(click.Group):
    """The command group, which, run as the program (not called with arguments, as tests
    and scripts do), ends the process without the interpreter's teardown: at 1M patients,
    freeing every object of a 2.4 GB heap one by one took about 0.15 s after the report
    was already in place. Output is flushed and exit handlers run first; the exit code is
    the one ``sys.exit`` would give."""

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        if args is not None or rest or not kwargs.get("standalone_mode", True):
            return super().main(args, *rest, **kwargs)
        # (A stream closed before the program started is None, which click leaves alone.)
        if sys.stdout is not None:
            sys.stdout = _ReaderMayLeave(sys.stdout)
        if sys.stderr is not None:
            sys.stderr = _ReaderMayLeave(sys.stderr)
        try:
            return super().main(None, **kwargs)  # standalone: ends in SystemExit
        except SystemExit as exc:
            _quick_exit(exc.code)


class _ReaderMayLeave:
    """Standard output or error for a reader who may leave early (``family-link check ... |
    head -1``, ``batch 2>&1 | head``): once a write or flush finds the pipe closed, the
    stream's descriptor is pointed at os.devnull and the program carries on, so the rest of
    the printout (and the batch's progress bar) goes nowhere, the run completes and its exit
    code is its own. click, left to itself, ends the run at once with exit 1, which here
    means a bug. Everything else is the wrapped stream's (click.echo takes it as a text
    stream of the same encoding)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _quick_exit(code: Any) -> None:
    """``sys.exit(code)`` without tearing the interpreter down (``os._exit``), once standard
    output and error are flushed and the ``atexit`` handlers have run (logging's among
    them). Where flushing fails (a closed pipe), the ordinary exit reports it as before."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as the interpreter does for sys.exit("message")
        print(code, file=sys.stderr)
        status = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    os._exit(status)


@click.group(cls=_QuickExitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="family-link")
@click.option("-v", "--verbose", is_flag=True, help="Log progress (counts only, never patient values).")
def main(verbose: bool) -> None:
    """Find children and expectant mothers whose GP record lacks the family-level
    safeguarding alert their household's codes call for (SCR W6, Recommendation 11).

    \b
    Example:
      family-link check sample_data/practice --out report --as-of 2026-11-01
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    command_line_settings()  # memory placement, threads and one pandas warning: see _process.py


@main.command()
@click.argument("export", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write the report into (created; must be new or empty, or use --force).")
@as_of_option
@rules_option
@click.option("--force", is_flag=True, help="Replace a report already in --out.")
@click.option("--previous", "previous", type=click.Path(path_type=Path), default=None,
              help="Last month's report folder: mark each flag new, open (since when) or resolved.")
@click.option("--format", "layout", type=click.Choice(["canonical", "emis", "systmone-sre", "systmone-cr",
                                                       "profile"]), default=None,
              help="The export's layout, when detection should be overridden. Default: detected.")
@click.option("--profile", "profile", type=click.Path(path_type=Path), default=None,
              help="Column-map YAML file for any other CSV layout (implies --format profile).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes for household linkage (split into groups of records that cannot affect one another); the report is identical for any value. The check already keeps two cores busy: with 2 cores, 1 is quickest.")
@_user_errors
def check(export: Path, out_dir: Path, as_of: date, rules_dir: Path | None, force: bool,
          previous: Path | None, layout: str | None, profile: Path | None, jobs: int) -> None:
    """Run the monthly check on EXPORT (a folder holding patients.csv, events.csv and,
    optionally, relationships.csv; or an EMIS Web list report, a SystmOne Strategic
    Reporting Extract folder or a SystmOne Clinical Reporting CSV: the layout is detected
    and named, see docs/exports.md) and write flags.csv, households.csv, rejected.csv,
    warnings.csv, scope.csv, resolved.csv, run.json, worklist.html, worklist.csv,
    worklist.xlsx and timings.json into --out. With --previous, each flag is marked new or
    open (with the date first flagged) and resolved flags are listed with why.

    \b
    Example:
      family-link check sample_data/practice --out report --as-of 2026-11-01
      family-link check export-dec --out report-dec --previous report-nov

    Exit codes: 0 run completed (whatever it flagged); 2 wrong command line; 3 unusable
    export; 4 invalid rules; 5 output folder not writable, already holds a report, or
    being written by another run; 8 a --jobs worker was stopped before it finished (for
    lack of memory, most often: try fewer --jobs).
    """
    from . import _read_ahead

    if layout in (None, "canonical") and profile is None:
        # The export's files mapped, checked and parsed by Arrow on a thread while the
        # check's modules are imported on this one (only a cache: see _read_ahead.py).
        _read_ahead.start(export)
    try:
        from .check import run_check

        result = run_check(export, out_dir, as_of=as_of, rules_dir=rules_dir, force=force, previous=previous,
                           layout=layout, profile=profile, jobs=jobs)
    finally:
        _read_ahead.discard()  # what the reader did not take (it stopped early, or a file changed)
    total = sum(result.flags_per_rule.values())
    from .layouts import LAYOUTS

    ran = result.export_date.strftime("%d/%m/%Y") if result.export_date else "not recorded in the export"
    click.echo(f"Export layout: {LAYOUTS.get(result.layout, result.layout)} ({result.layout}); "
               f"export date: {ran}.")
    if result.export_date and (as_of - result.export_date).days > 31:
        click.echo(f"Warning: the export was run {(as_of - result.export_date).days} days before the as-of "
                   "date; anything coded since is missing. Re-run the export.", err=True)
    click.echo(f"Checked {result.patients} patients as of {as_of.isoformat()}: {total} flags "
               f"({result.rejected_rows} input rows rejected). Report: {result.out_dir}")
    for heavy in result.heavy_rejections:
        click.echo(f"Warning: {heavy.sentence()}", err=True)
    if result.compared_with:
        c = result.compared_with
        click.echo(f"Since {c['as_of']}: {c['new']} new, {c['open']} still open, {c['resolved']} resolved.")
    for rule_id, n in result.flags_per_rule.items():
        click.echo(f"  {rule_id:<30} {n}")


@main.command()
@click.argument("export", type=click.Path(path_type=Path))
@as_of_option
@_user_errors
def households(export: Path, as_of: date) -> None:
    """Link EXPORT's patients into households and print a summary (sizes, communal
    establishments, ambiguous records), without running the rules.

    \b
    Example:
      family-link households sample_data/practice --as-of 2026-11-01
    """
    from .households import link_households, summarise_households
    from .layouts import load_any_export

    data = load_any_export(export, as_of)  # any layout check reads (docs/exports.md)
    summary = summarise_households(link_households(data.patients, data.relationships, as_of))
    for key, value in summary.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k:<28} {v}")
        else:
            click.echo(f"{key:<30} {value}")


@main.group()
def rules() -> None:
    """List, show and validate safeguarding rules."""


@rules.command("list")
@rules_option
@_user_errors
def rules_list(rules_dir: Path | None) -> None:
    """List the rules: id, severity, SCR W6 recommendations and title.

    \b
    Example:
      family-link rules list
    """
    from .rules import load_ruleset

    for r in load_ruleset(rules_dir).rules:
        recs = ",".join(str(x) for x in r.recommendations)
        click.echo(f"{r.id:<30} {r.severity:<7} Rec {recs:<5} {r.title}")


@rules.command("show")
@click.argument("rule_id")
@rules_option
@_user_errors
def rules_show(rule_id: str, rules_dir: Path | None) -> None:
    """Show one rule in plain English, with its codelists.

    \b
    Example:
      family-link rules show cp-sibling
    """
    from .errors import Problem, RulesError
    from .explain import describe_rule
    from .rules import load_ruleset

    ruleset = load_ruleset(rules_dir)
    try:
        rule = ruleset.rule(rule_id)
    except KeyError:
        raise RulesError([Problem("rules", f"no rule with id '{rule_id}'",
                                  hint="known ids: " + ", ".join(r.id for r in ruleset.rules))]) from None
    click.echo(describe_rule(rule, ruleset))


@rules.command("validate")
@click.argument("rules_dir", type=click.Path(path_type=Path), required=False)
@_user_errors
def rules_validate(rules_dir: Path | None) -> None:
    """Check every rule file and codelist in RULES_DIR (default: the project's rules/);
    list every problem at once. Exit 0 when valid, 4 when not.

    \b
    Example:
      family-link rules validate rules/
    """
    from .rules import load_ruleset

    ruleset = load_ruleset(rules_dir)
    codes = sum(len(c.codes) for c in ruleset.codelists.values())
    click.echo(f"Valid: {len(ruleset.rules)} rules, {len(ruleset.codelists)} codelists, {codes} codes.")


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--patients", "n_patients", type=click.IntRange(1, 5_000_000), default=400, show_default=True,
              help="How many synthetic patients.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Random seed (same seed, same practice).")
@as_of_option
@click.option("--household-ids", is_flag=True,
              help="Write each patient's true household as household_id (as some clinical systems do).")
@click.option("--layout", type=click.Choice(["canonical", "emis", "emis-pseudonymised", "systmone-sre",
                                             "systmone-cr"]), default="canonical", show_default=True,
              help="Write the export as this clinical system's layout (see docs/exports.md).")
@_user_errors
def generate(out_dir: Path, n_patients: int, seed: int, as_of: date, household_ids: bool,
             layout: str) -> None:
    """Write a synthetic practice export (never real patients) into OUT_DIR, with its
    truth (true households and the flags the rules should raise) in OUT_DIR/truth/.

    \b
    Example:
      family-link generate /tmp/practice --patients 2000 --seed 7 --as-of 2026-11-01
      family-link generate /tmp/emis --layout emis --as-of 2026-11-01
    """
    from .generate import generate_practice
    from .generate_layouts import write_practice_as

    practice = generate_practice(n_patients, seed, as_of, include_household_ids=household_ids)
    for note in write_practice_as(practice, out_dir, layout):
        click.echo(f"Note: {note}.")
    click.echo(f"Wrote a synthetic practice of {len(practice.patients)} patients and "
               f"{len(practice.events)} events to {out_dir}")


key_file_option = click.option(
    "--key-file", "key_file", type=click.Path(path_type=Path), default=None,
    help="File holding the pseudonymisation key (at least 32 random bytes, e.g. 64 hex digits). "
         "Never a default: no key, no auditor's report.")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@key_file_option
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write audit.csv, audit.json and audit.html into.")
@click.option("--practice", default="practice", show_default=True,
              help="The practice's label in the report (a code such as its ODS code, never a person).")
@click.option("--rows", "rows_file", is_flag=True,
              help="Also write audit_rows.csv: one row per patient in scope, with HMAC-SHA256 pseudonyms. "
                   "Pseudonymised data is still personal data: share it only under an agreement.")
@click.option("--force", is_flag=True, help="Replace an auditor's report already in --out.")
@_user_errors
def audit(run_dir: Path, key_file: Path | None, out_dir: Path, practice: str, rows_file: bool,
          force: bool) -> None:
    """Write the auditor's report from RUN_DIR (a folder family-link check wrote): coverage
    per rule with no patient identifiers, small numbers suppressed (1-7 shown as *, others
    rounded to the nearest 5).

    \b
    Example:
      family-link audit report --key-file family_link.key --out audit --practice M91001

    Exit codes: 0 written; 3 RUN_DIR is not a usable report; 5 --out cannot be written;
    6 the key is missing, unreadable, short or weak.
    """
    from .audit import load_audit_run, load_key, write_audit

    key = load_key(key_file)
    run = load_audit_run(run_dir, practice)
    written = write_audit([run], out_dir, key, rows_file=rows_file, force=force)
    click.echo(f"Wrote the auditor's report for {len(run.rules)} rules to {written}")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for one report per practice, summary.csv and (with a key) audit/.")
@as_of_option
@rules_option
@key_file_option
@click.option("--previous", "previous", type=click.Path(path_type=Path), default=None,
              help="Last month's batch --out folder: compare each practice with its previous report.")
@click.option("--quiet", is_flag=True, help="No progress bar (for schedulers).")
@click.option("--force", is_flag=True, help="Replace a batch's output already in --out.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Check up to N practices at once, each in a process of its own (memory: N "
                   "practices' worth). Every file written is the same for any N. About one per core.")
@_user_errors
def batch(folder: Path, out_dir: Path, as_of: date, rules_dir: Path | None, key_file: Path | None,
          previous: Path | None, quiet: bool, force: bool, jobs: int) -> None:
    """Check every practice export in FOLDER (one subfolder each) into --out/<practice>/,
    carrying on past a bad export; write summary.csv (one row per practice: status, exit
    code, patients, flags per rule, why it failed, any input with many rows rejected) and,
    with --key-file, the combined auditor's report in --out/audit/.

    \b
    Example:
      family-link batch exports/ --out batch-2026-11 --as-of 2026-11-01 --key-file icb.key --quiet

    Exit codes: 0 every export was checked; 3 FOLDER is not usable; 4 invalid rules;
    5 --out cannot be written; 6 the key is unusable (checked before any export is read);
    7 at least one export failed (the others were written; see summary.csv).
    """
    from .audit import load_key
    from .batch import find_exports, run_batch
    from .errors import BatchIncompleteError, Problem

    key = load_key(key_file) if key_file is not None else None
    exports = find_exports(folder)
    if quiet:
        result = run_batch(folder, out_dir, as_of=as_of, rules_dir=rules_dir, key=key, force=force,
                           previous=previous, exports=exports, jobs=jobs)
    else:
        with click.progressbar(length=len(exports), label="Checking practices", file=sys.stderr,
                               item_show_func=lambda name: name) as bar:
            def step(name: str) -> None:
                bar.update(1, name)
            result = run_batch(folder, out_dir, as_of=as_of, rules_dir=rules_dir, key=key, force=force,
                               previous=previous, exports=exports, progress=step, jobs=jobs)
    ok = len(result.outcomes) - len(result.failed)
    click.echo(f"Checked {ok} of {len(result.outcomes)} practice exports as of {as_of.isoformat()}. "
               f"Summary: {result.out_dir / 'summary.csv'}"
               + (f"; auditor's report: {result.audit_dir}" if result.audit_dir else ""))
    for outcome in result.outcomes:
        if outcome.warning:
            click.echo(f"Warning: {outcome.practice}: {outcome.warning} See its rejected.csv.", err=True)
    if result.failed:
        raise BatchIncompleteError([Problem(o.practice, f"failed with exit code {o.exit_code}: {o.error}")
                                    for o in result.failed])
