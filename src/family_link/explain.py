"""Rules in plain English, for ``family-link rules show`` and the docs."""

from __future__ import annotations

__all__ = ["describe_rule"]

import textwrap

from .rules import Rule, RuleSet, TargetGroup

_TARGETS = {
    TargetGroup.children: "every child (under 18) in the household",
    TargetGroup.adults: "every adult (18 or over) in the household",
    TargetGroup.trigger_person: "the person whose code triggered the rule",
    TargetGroup.other_children: "every other child (under 18) in the household",
}


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(" ".join(text.split()), width=92, initial_indent=indent, subsequent_indent=indent)


def describe_rule(rule: Rule, ruleset: RuleSet) -> str:
    cl = ruleset.codelists
    recs = ", ".join(str(r) for r in rule.recommendations)
    lines = [f"{rule.id}: {rule.title}", f"  Severity: {rule.severity}.  SCR W6 recommendation(s): {recs}.", "",
             _wrap(rule.explanation), "", "  When:",
             _wrap(f"a household member is {rule.trigger.describe(cl)}.", "    ")]
    if rule.household_has_any:
        lines.append("    and the household (the person with the code included) has at least one of:")
        lines += [_wrap(f"- {c.describe(cl)};", "      ") for c in rule.household_has_any]
    for c in rule.household_has_none:
        lines.append(_wrap(f"and the household includes no one who is {c.describe(cl)}", "    "))
    target = _TARGETS[rule.target.group]
    if rule.target.trigger_person_older_by_years is not None:
        target += (f", where the person with the code is at least {rule.target.trigger_person_older_by_years}"
                   " years older")
    lines += ["  Who is flagged:", _wrap(target + ",", "    ")]
    for c in rule.target.unless:
        lines.append(_wrap(f"except anyone who is {c.describe(cl)},", "    "))
    if rule.satisfied_by:
        lines.append(_wrap("unless their own record has " + ", or ".join(s.describe(cl) for s in rule.satisfied_by)
                           + ".", "    "))
    else:
        lines.append("    always (nothing on the record settles it: the lead reviews it).")
    lines += ["  Codes to consider adding:"]
    lines += [f"    {code}  {ruleset.term(code)}" for code in rule.suggest]
    lines += ["  Codelists:"]
    for name in rule.codelist_names():
        c = cl[name]
        lines.append(f"    {name}: {len(c.codes)} codes ({c.path})")
    return "\n".join(lines)
