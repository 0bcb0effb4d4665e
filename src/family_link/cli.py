"""The ``family-link`` command line: a thin skin over the library.

Each command parses options, calls one library function and turns our own errors
(``FamilyLinkError``) into one clear message and a documented exit code. Anything else is
a bug and keeps its traceback. Nothing printed here contains a patient value: only counts,
rule ids and file names.

Exit codes: 0 the run completed (whatever it flagged); 1 a bug; 2 the command line was
wrong; 3 the export cannot be used; 4 the rules are invalid; 5 the output folder cannot be
written or already holds a report (use --force).
"""

from __future__ import annotations

import functools
import logging
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import FamilyLinkError

EXIT_CODES_HELP = (
    "Exit codes: 0 run completed (whatever it flagged); 2 wrong command line; 3 unusable export; "
    "4 invalid rules; 5 output folder not writable or already holds a report."
)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


@main.command()
@click.argument("export", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write the report into (created; must be new or empty, or use --force).")
@as_of_option
@rules_option
@click.option("--force", is_flag=True, help="Replace a report already in --out.")
@_user_errors
def check(export: Path, out_dir: Path, as_of: date, rules_dir: Path | None, force: bool) -> None:
    """Run the monthly check on EXPORT (a folder holding patients.csv, events.csv and,
    optionally, relationships.csv) and write flags.csv, households.csv, rejected.csv,
    warnings.csv, run.json, worklist.html and timings.json into --out.

    \b
    Example:
      family-link check sample_data/practice --out report --as-of 2026-11-01

    Exit codes: 0 run completed (whatever it flagged); 2 wrong command line; 3 unusable
    export; 4 invalid rules; 5 output folder not writable or already holds a report.
    """
    from .check import run_check

    result = run_check(export, out_dir, as_of=as_of, rules_dir=rules_dir, force=force)
    total = sum(result.flags_per_rule.values())
    click.echo(f"Checked {result.patients} patients as of {as_of.isoformat()}: {total} flags "
               f"({result.rejected_rows} input rows rejected). Report: {result.out_dir}")
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
    from ._export import load_export
    from .households import link_households, summarise_households

    data = load_export(export, as_of)
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
@_user_errors
def generate(out_dir: Path, n_patients: int, seed: int, as_of: date, household_ids: bool) -> None:
    """Write a synthetic practice export (never real patients) into OUT_DIR, with its
    truth (true households and the flags the rules should raise) in OUT_DIR/truth/.

    \b
    Example:
      family-link generate /tmp/practice --patients 2000 --seed 7 --as-of 2026-11-01
    """
    from .generate import generate_practice, write_practice

    practice = generate_practice(n_patients, seed, as_of, include_household_ids=household_ids)
    write_practice(practice, out_dir)
    click.echo(f"Wrote a synthetic practice of {len(practice.patients)} patients and "
               f"{len(practice.events)} events to {out_dir}")
