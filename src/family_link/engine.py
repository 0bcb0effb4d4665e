"""The rule engine: a ``RuleSet`` evaluated over frames, as joins and group-bys.

Definitions (docs/rules.md has the full text): A is the as-of date; a child is under 18 at A
(the 18th birthday makes an adult; a 29 February birthday counts from 1 March); events
dated after A are ignored; "within N days" means dated between A minus N days and A; a
status is active when the person's latest start code has no end code dated on or after it.

For each rule: find the triggers (one per trigger person: their latest qualifying code),
pair each with the household members the rule targets, drop targets that are out of
scope, and flag a target when any of its triggers is not satisfied by a code on the
target's own record. Each household is evaluated independently, so the data can be split
by household (or postcode district) and evaluated in parts.
"""

from __future__ import annotations

__all__ = ["Evaluation", "evaluate_rules", "rule_triggers", "FLAG_COLUMNS", "SCOPE_COLUMNS"]

from dataclasses import dataclass
from datetime import date

import pandas as pd

from ._frames import full_names, isin
from .rules import Audience, CodeCondition, Rule, RuleSet, Satisfier, TargetGroup

FLAG_COLUMNS = [
    "patient_id",
    "household_id",
    "rule_id",
    "severity",
    "title",
    "recommendations",
    "reason",
    "suggested_codes",
    "trigger_patient_ids",
    "trigger_codes",
    "trigger_dates",
]
SCOPE_COLUMNS = ["rule_id", "patient_id", "household_id", "flagged"]

# How "related_patient_id is the <word> of patient_id" reads the other way round.
_INVERSE = {
    "mother": "child", "father": "child", "parent": "child", "guardian": "ward",
    "child": "parent", "son": "parent", "daughter": "parent",
    "sibling": "sibling", "brother": "sibling", "sister": "sibling",
    "partner": "partner", "spouse": "partner", "carer": "person cared for",
    "grandmother": "grandchild", "grandfather": "grandchild", "grandparent": "grandchild",
    "stepmother": "stepchild", "stepfather": "stepchild",
}


@dataclass(frozen=True)
class Evaluation:
    flags: pd.DataFrame  # FLAG_COLUMNS, one row per (patient, rule)
    scope: pd.DataFrame  # SCOPE_COLUMNS: every target in scope of a rule, flagged or not


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``keys.map(table)`` that keeps the table's dtype even when the table is empty."""
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def _older_by(older_dob: pd.Series, younger_dob: pd.Series, years: int) -> pd.Series:
    """True where the first person is at least ``years`` older. Counted back from the
    younger person's birth, so a 29 February birthday is reached on 1 March, as for the
    18th birthday."""
    return younger_dob - pd.DateOffset(years=years) >= older_dob


def _uk_date(s: pd.Series) -> pd.Series:
    return s.dt.strftime("%d/%m/%Y")


def _people(patients: pd.DataFrame, households: pd.DataFrame, as_of: date) -> pd.DataFrame:
    people = patients[["patient_id", "forenames", "surname", "date_of_birth", "sex"]].merge(
        households[["patient_id", "household_id"]], on="patient_id", how="left"
    )
    missing = people["household_id"].isna() | (people["household_id"] == "")
    people.loc[missing, "household_id"] = "H-" + people.loc[missing, "patient_id"]
    adult_cutoff = pd.Timestamp(as_of) - pd.DateOffset(years=18)
    people["is_child"] = people["date_of_birth"] > adult_cutoff
    people["name"] = full_names(people)
    return people.reset_index(drop=True)


def _who_mask(people: pd.DataFrame, who: Audience) -> pd.Series:
    if who is Audience.child:
        return people["is_child"]
    if who is Audience.adult:
        return ~people["is_child"]
    if who is Audience.female:
        return people["sex"] == "F"
    return pd.Series(True, index=people.index)


class _Context:
    """Everything a rule needs, computed once per run and cached per condition."""

    def __init__(self, ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                 households: pd.DataFrame, as_of: date, relationships: pd.DataFrame | None):
        self.ruleset = ruleset
        self.as_of = pd.Timestamp(as_of)
        self.people = _people(patients, households, as_of)
        used = set()
        for rule in ruleset.rules:
            for name in rule.codelist_names():
                used |= ruleset.codelists[name].codes
        day = events["date"].dt.normalize()  # a time of day never moves an event past A
        keep = (day <= self.as_of) & isin(events["code"], used)
        ev = events.loc[keep, ["patient_id", "code", "term"]].assign(date=day[keep])
        blank = ev["term"].fillna("") == ""
        if blank.any():
            ev.loc[blank, "term"] = ev.loc[blank, "code"].map(ruleset.term)
        # Sorted once: the latest code per person is then the last row of each group,
        # with code and term as deterministic tie-breaks for same-day codes.
        self.events = ev.sort_values(["patient_id", "date", "code", "term"], kind="mergesort")
        self.relationships = relationships
        self._cache: dict[tuple, pd.DataFrame] = {}

    def _in(self, codelist: str) -> pd.DataFrame:
        codes = self.ruleset.codelists[codelist].codes
        return self.events[isin(self.events["code"], codes)]

    def status(self, codelist: str, ended_by: str | None, active: bool,
               within_days: int | None, who: Audience) -> pd.DataFrame:
        """People meeting a condition: patient_id, date, code, term of their latest code."""
        key = (codelist, ended_by, active, within_days, who)
        if key in self._cache:
            return self._cache[key]
        starts = self._in(codelist)
        if who is not Audience.any:
            allowed = self.people.loc[_who_mask(self.people, who), "patient_id"]
            starts = starts[isin(starts["patient_id"], allowed)]
        latest = starts.drop_duplicates("patient_id", keep="last")
        if active and ended_by:
            last_end = self._in(ended_by).groupby("patient_id", sort=False)["date"].max()
            end = _lookup(latest["patient_id"], last_end)
            latest = latest[end.isna() | (end < latest["date"])]
        if within_days is not None:
            latest = latest[latest["date"] >= self.as_of - pd.Timedelta(days=within_days)]
        out = latest.reset_index(drop=True)
        self._cache[key] = out
        return out

    def condition(self, c: CodeCondition) -> pd.DataFrame:
        return self.status(c.codelist, c.ended_by, c.active, c.within_days, c.who)

    def satisfier(self, s: Satisfier) -> pd.DataFrame:
        return self.status(s.codelist, s.ended_by, s.active, None, Audience.any)


def _relation_labels(pairs: pd.DataFrame, ctx: _Context) -> pd.Series:
    """How the trigger person stands to the target, in words a lead can check."""
    label = pd.Series("", index=pairs.index, dtype=object)
    same = pairs["patient_id"] == pairs["trigger_patient_id"]
    label[same] = "This patient"
    t_child, g_child = pairs["trigger_is_child"], pairs["is_child"]
    label[~same & t_child & g_child] = "Another child in the household,"
    label[~same & t_child & ~g_child] = "A child in the household,"
    label[~same & ~t_child & ~g_child] = "An adult in the household,"
    adult_to_child = ~same & ~t_child & g_child
    gap = _older_by(pairs["trigger_dob"], pairs["date_of_birth"], 14)
    label[adult_to_child & gap] = "An adult in the household (probable parent or carer),"
    label[adult_to_child & ~gap] = "An adult in the household,"
    rel = ctx.relationships
    if rel is not None and len(rel):
        r = rel[["patient_id", "related_patient_id", "relationship"]].drop_duplicates(
            ["patient_id", "related_patient_id"])
        direct = pairs[["patient_id", "trigger_patient_id"]].reset_index().merge(
            r, left_on=["patient_id", "trigger_patient_id"],
            right_on=["patient_id", "related_patient_id"], how="inner")
        reverse = pairs[["patient_id", "trigger_patient_id"]].reset_index().merge(
            r, left_on=["trigger_patient_id", "patient_id"],
            right_on=["patient_id", "related_patient_id"], how="inner", suffixes=("", "_r"))
        if len(reverse):
            words = reverse["relationship"].map(_INVERSE).fillna("relative")
            label[reverse["index"].to_numpy()] = (words.str.capitalize() + " (recorded),").to_numpy()
        if len(direct):
            label[direct["index"].to_numpy()] = (
                direct["relationship"].str.capitalize() + " (recorded),").to_numpy()
    return label


def _evidence(rows: pd.DataFrame, relation: pd.Series, active_note: str) -> pd.Series:
    who = pd.Series("This patient", index=rows.index, dtype=object)
    other = relation != "This patient"
    who[other] = (relation[other] + " " + rows.loc[other, "trigger_name"] + " (patient "
                  + rows.loc[other, "trigger_patient_id"] + ")")
    return (who + " has '" + rows["trigger_term"] + "' (" + rows["trigger_code"] + ") dated "
            + _uk_date(rows["trigger_date"]) + active_note + ".")


def _household_evidence(rule: Rule, ctx: _Context, households: pd.Series) -> pd.Series:
    """For household_has_any: the members whose codes met the condition, in words."""
    parts = []
    for c in rule.household_has_any:
        hits = ctx.condition(c).merge(ctx.people[["patient_id", "household_id", "name"]], on="patient_id")
        hits = hits[isin(hits["household_id"], households)]
        note = " and not ended" if c.active else ""
        hits = hits.assign(text=hits["name"] + " (patient " + hits["patient_id"] + ") has '" + hits["term"]
                           + "' (" + hits["code"] + ") dated " + _uk_date(hits["date"]) + note)
        parts.append(hits[["household_id", "patient_id", "text"]])
    if not parts:
        return pd.Series(dtype=object)
    allhits = pd.concat(parts).drop_duplicates().sort_values(["household_id", "patient_id", "text"])
    joined = allhits.groupby("household_id", sort=False)["text"].agg("; ".join)
    return "Household risk: " + joined + "."


def _evaluate_rule(rule: Rule, ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    people = ctx.people
    trig = ctx.condition(rule.trigger).merge(
        people[["patient_id", "household_id", "date_of_birth", "is_child", "name"]], on="patient_id")
    trig = trig.rename(columns={
        "patient_id": "trigger_patient_id", "date": "trigger_date", "code": "trigger_code",
        "term": "trigger_term", "date_of_birth": "trigger_dob", "is_child": "trigger_is_child",
        "name": "trigger_name"})
    if rule.household_has_any:
        ok = set()
        for c in rule.household_has_any:
            ok |= set(people.loc[isin(people["patient_id"], ctx.condition(c)["patient_id"]), "household_id"])
        trig = trig[isin(trig["household_id"], ok)]
    for c in rule.household_has_none:
        bad = set(people.loc[isin(people["patient_id"], ctx.condition(c)["patient_id"]), "household_id"])
        trig = trig[~isin(trig["household_id"], bad)]

    pairs = trig.merge(people, on="household_id")
    group = rule.target.group
    if group is TargetGroup.children:
        pairs = pairs[pairs["is_child"]]
    elif group is TargetGroup.adults:
        pairs = pairs[~pairs["is_child"]]
    elif group is TargetGroup.other_children:
        pairs = pairs[pairs["is_child"] & (pairs["patient_id"] != pairs["trigger_patient_id"])]
    else:
        pairs = pairs[pairs["patient_id"] == pairs["trigger_patient_id"]]
    if rule.target.trigger_person_older_by_years is not None:
        pairs = pairs[_older_by(pairs["trigger_dob"], pairs["date_of_birth"],
                                rule.target.trigger_person_older_by_years)]
    for c in rule.target.unless:
        pairs = pairs[~isin(pairs["patient_id"], ctx.condition(c)["patient_id"])]
    pairs = pairs.reset_index(drop=True)

    satisfied = pd.Series(False, index=pairs.index)
    for s in rule.satisfied_by:
        have = ctx.satisfier(s).set_index("patient_id")["date"]
        got = _lookup(pairs["patient_id"], have)
        if s.dated == "any_time":
            satisfied |= got.notna()
        else:
            satisfied |= got.notna() & (got >= pairs["trigger_date"])
    pairs["satisfied"] = satisfied.to_numpy()

    scope = (pairs.groupby(["patient_id", "household_id"], sort=True)["satisfied"].all()
             .reset_index())
    scope = scope.assign(rule_id=rule.id, flagged=~scope["satisfied"])[SCOPE_COLUMNS]

    open_pairs = pairs[~pairs["satisfied"]].sort_values(
        ["patient_id", "trigger_date", "trigger_patient_id"], ascending=[True, False, True])
    if open_pairs.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS), scope
    active_note = ", and it has not been ended" if rule.trigger.active else ""
    open_pairs = open_pairs.assign(
        evidence=_evidence(open_pairs, _relation_labels(open_pairs, ctx), active_note),
        trigger_iso=open_pairs["trigger_date"].dt.strftime("%Y-%m-%d"))
    grouped = open_pairs.groupby("patient_id", sort=True)
    flags = pd.DataFrame({
        "household_id": grouped["household_id"].first(),
        "evidence": grouped["evidence"].agg(" ".join),
        "latest_trigger": grouped["trigger_date"].max(),
        "trigger_patient_ids": grouped["trigger_patient_id"].agg(";".join),
        "trigger_codes": grouped["trigger_code"].agg(";".join),
        "trigger_dates": grouped["trigger_iso"].agg(";".join),
    }).reset_index()
    missing = " ".join(rule.missing.split())
    flags["reason"] = flags["evidence"] + " " + _uk_date(flags["latest_trigger"]).map(
        lambda d: missing.replace("{trigger_date}", d))
    if rule.household_has_any:
        hh = _household_evidence(rule, ctx, flags["household_id"])
        flags["reason"] = flags["reason"] + " " + flags["household_id"].map(hh).fillna("")
        flags["reason"] = flags["reason"].str.rstrip()
    flags["rule_id"] = rule.id
    flags["severity"] = rule.severity
    flags["title"] = rule.title
    flags["recommendations"] = "; ".join(str(r) for r in rule.recommendations)
    flags["suggested_codes"] = "; ".join(f"{c} {ctx.ruleset.term(c)}" for c in rule.suggest)
    return flags[FLAG_COLUMNS], scope


def evaluate_rules(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                   households: pd.DataFrame, as_of: date,
                   relationships: pd.DataFrame | None = None) -> Evaluation:
    """Evaluate every rule; return the flags and every target in scope (for coverage)."""
    ctx = _Context(ruleset, patients, events, households, as_of, relationships)
    flags, scopes = [], []
    for rule in ruleset.rules:
        f, s = _evaluate_rule(rule, ctx)
        flags.append(f)
        scopes.append(s)
    all_flags = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame(columns=FLAG_COLUMNS)
    all_scope = pd.concat(scopes, ignore_index=True) if scopes else pd.DataFrame(columns=SCOPE_COLUMNS)
    return Evaluation(all_flags.astype(object).reset_index(drop=True),
                      all_scope.reset_index(drop=True))


def rule_triggers(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                  households: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Every person whose own codes meet a rule's trigger (whoever they live with):
    ``patient_id, rule_id, code, term, date``. Used to point the lead at records whose
    household could not be settled but whose codes would trigger a rule."""
    ctx = _Context(ruleset, patients, events, households, as_of, None)
    parts = [ctx.condition(rule.trigger)[["patient_id", "code", "term", "date"]].assign(rule_id=rule.id)
             for rule in ruleset.rules]
    if not parts:
        return pd.DataFrame(columns=["patient_id", "rule_id", "code", "term", "date"])
    out = pd.concat(parts, ignore_index=True)
    return out[["patient_id", "rule_id", "code", "term", "date"]]
