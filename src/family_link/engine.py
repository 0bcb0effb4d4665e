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

How, for speed: only the events with a codelist code are kept (a few in a thousand); people
are addressed by their position in the patients frame and households by small integer codes,
so triggers are paired with household members through integer arrays, and text (names,
dates, reasons) is made only for the pairs that end up in scope or flagged.
"""

from __future__ import annotations

__all__ = ["Evaluation", "PreparedRules", "evaluate_rules", "prepare_rules", "rule_triggers", "FLAG_COLUMNS",
           "SCOPE_COLUMNS"]

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import _short_index_in, arrow_text, full_names, index_in, isin
from ._export import EventCodes
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
RULE_PATIENT_COLUMNS = ["patient_id", "forenames", "surname", "date_of_birth", "sex"]  # what the rules read

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
    # The events carrying a code some rule uses (a few in a thousand), as given: what
    # rule_triggers needs of the events, without another scan of all of them.
    coded_events: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def _older_by(older_dob: pd.Series, younger_dob: pd.Series, years: int) -> pd.Series:
    """True where the first person is at least ``years`` older. Counted back from the
    younger person's birth, so a 29 February birthday is reached on 1 March, as for the
    18th birthday."""
    return younger_dob - pd.DateOffset(years=years) >= older_dob


def _uk_date(s: pd.Series) -> pd.Series:
    return _strftime(s, "%d/%m/%Y")


def _strftime(s: pd.Series, fmt: str) -> pd.Series:
    """``s.dt.strftime(fmt)``, formatting each distinct date once (codes share a few
    thousand dates between them)."""
    code, days = pd.factorize(s)
    text = days.strftime(fmt).array.take(code, allow_fill=True)
    return pd.Series(text, index=s.index, dtype="str")


def _per_date(dates: pd.Series, template: str) -> pd.Series:
    """``template`` with ``{trigger_date}`` replaced by each date (dd/mm/yyyy), filled in
    once per distinct date rather than once per flag."""
    code, days = pd.factorize(dates)
    if (code < 0).any():  # a missing date: the plain way (which fails on it as before)
        return _uk_date(dates).map(lambda d: template.replace("{trigger_date}", d))
    texts = np.array([template.replace("{trigger_date}", d) for d in days.strftime("%d/%m/%Y")], dtype=object)
    return pd.Series(texts[code], index=dates.index, dtype="str")


def _positions(keys: pd.Series, ids: pd.Series) -> np.ndarray:
    """Position of each key in ``ids`` (unique values, e.g. every patient id), or -1.

    The hash table is built over the distinct keys (a few thousand coded patients), not over
    ``ids`` (every patient): one scan of ``ids`` then finds them all."""
    if len(keys) == 0 or len(ids) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    if isinstance(keys.dtype, pd.StringDtype) and isinstance(ids.dtype, pd.StringDtype):
        # Short ids in ascending order (as practice systems' patient ids are): a binary
        # search of 64-bit numbers, no scan of every id (~0.005 s against ~0.035 s at 1M).
        try:
            found = _short_index_in(arrow_text(keys), ids)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            found = None
        if found is not None:
            return found
    codes, distinct = pd.factorize(keys.astype(str), use_na_sentinel=True)
    where = index_in(ids, pd.Series(distinct))  # for each id: which distinct key, or -1
    found = np.flatnonzero(where >= 0)
    position = np.full(len(distinct), -1, dtype=np.int64)
    position[where[found][::-1]] = found[::-1]  # the first row holding a key wins
    out = np.full(len(keys), -1, dtype=np.int64)
    known = codes >= 0
    out[known] = position[codes[known]]
    return out


def _same_text(a: pd.Series, b: pd.Series) -> bool:
    """``(a.astype(str) == b.astype(str)).all()`` for columns of equal length: Arrow text
    columns without missing values are compared as buffers (one memcmp, not 1,000,000
    string comparisons and a boolean column)."""
    if isinstance(a.dtype, pd.StringDtype) and isinstance(b.dtype, pd.StringDtype):
        x, y = arrow_text(a), arrow_text(b)
        if x.type == y.type and not x.null_count and not y.null_count:
            return x.equals(y)
    return bool((a.astype(str) == b.astype(str)).all())


def _people_alone(patients: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """``_people`` without the household: the rules' patient columns and whether a child
    (all a condition needs of the people; no household is needed to know who meets one)."""
    people = patients[RULE_PATIENT_COLUMNS].reset_index(drop=True)
    people["is_child"] = people["date_of_birth"] > pd.Timestamp(as_of) - pd.DateOffset(years=18)
    return people


def _people(patients: pd.DataFrame, households: pd.DataFrame | None, as_of: date,
            alone: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per patient: id, names, date of birth, sex, household and whether a child.
    Each patient's household is looked up by position (patients and households are both
    one row per patient, usually in the same order), not by a merge on the string ids.
    ``households=None``: no household looked up (each patient is their own, ``H-`` id).
    ``alone``: ``_people_alone(patients, as_of)``, when already made."""
    if alone is None:
        alone = _people_alone(patients, as_of)
    people = alone[RULE_PATIENT_COLUMNS].copy(deep=False)
    ids = people["patient_id"]
    if households is None:
        people["household_id"] = "H-" + ids
        people["is_child"] = alone["is_child"]
        return people
    hh_ids = households["patient_id"].reset_index(drop=True)
    if len(hh_ids) == len(ids) and _same_text(hh_ids, ids):
        at = None  # the same patients in the same order
    elif len(hh_ids) == 0:
        at = np.full(len(ids), -1, dtype=np.int64)
    else:  # e.g. a few patients against every household row (rule_triggers)
        at = _positions(ids, hh_ids)
    if at is None:
        household = households["household_id"].reset_index(drop=True)
    else:
        household = pd.Series(households["household_id"].array.take(at, allow_fill=True), index=people.index)
    people["household_id"] = household
    missing = people["household_id"].isna() | (people["household_id"] == "")
    if missing.any():
        people.loc[missing, "household_id"] = "H-" + people.loc[missing, "patient_id"]
    people["is_child"] = alone["is_child"]
    return people


def _who_mask(people: pd.DataFrame, who: Audience, at: np.ndarray) -> np.ndarray:
    """Whether the people at positions ``at`` are in the audience."""
    if who is Audience.child:
        return people["is_child"].to_numpy(dtype=bool)[at]
    if who is Audience.adult:
        return ~people["is_child"].to_numpy(dtype=bool)[at]
    if who is Audience.female:
        return (people["sex"].iloc[at] == "F").to_numpy(dtype=bool)
    return np.ones(len(at), dtype=bool)


def _codelist_events(ruleset: RuleSet, events: pd.DataFrame, codes: EventCodes | None = None) -> pd.DataFrame:
    """The events whose code is in a codelist some rule uses (a few in a thousand).
    ``codes``: the reader's integers for the code column (``Export.event_codes``): the
    few thousand distinct codes are then tested, not five million rows (~0.07 s at 1M)."""
    used: set[str] = set()
    for rule in ruleset.rules:
        for name in rule.codelist_names():
            used |= ruleset.codelists[name].codes
    if codes is not None and codes.describes(events):
        hit = pd.Series(codes.distinct, dtype=object, copy=False).isin(used).to_numpy(dtype=bool)
        return events[hit[codes.of]]
    code = events["code"]
    # Object columns (as the export reader gives codes) are matched by pandas' own hash
    # table; Arrow strings by Arrow's (pandas' isin walks them in Python).
    keep = code.isin(used).to_numpy(dtype=bool) if code.dtype == object else isin(code, used).to_numpy()
    return events[keep]


class _Coded:
    """What the rules need that does not depend on the households: the people without
    their household, the coded events (sorted, addressed by person) and who meets each
    condition. ``_Context`` adds the households; ``PreparedRules`` holds one made ahead."""

    def __init__(self, ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame, as_of: date,
                 codes: EventCodes | None = None):
        self.ruleset = ruleset
        self.as_of = pd.Timestamp(as_of)
        self.people = _people_alone(patients, as_of)
        coded = _codelist_events(ruleset, events, codes)
        self.coded = coded
        day = coded["date"].dt.normalize()  # a time of day never moves an event past A
        keep = day <= self.as_of
        ev = coded.loc[keep, ["patient_id", "code", "term"]].assign(date=day[keep])
        blank = ev["term"].fillna("") == ""
        if blank.any():
            ev.loc[blank, "term"] = ev.loc[blank, "code"].map(ruleset.term)
        # Sorted once: the latest code per person is then the last row of each group,
        # with code and term as deterministic tie-breaks for same-day codes.
        ev = ev.sort_values(["patient_id", "date", "code", "term"], kind="mergesort").reset_index(drop=True)
        ev["pos"] = _positions(ev["patient_id"], self.people["patient_id"])
        self.events = ev
        # The person (patient id) of each event, NaN ids grouped together as drop_duplicates does.
        self._ev_person = pd.factorize(ev["patient_id"], use_na_sentinel=False)[0]
        self._ev_person_na = ev["patient_id"].isna().to_numpy()
        self._ev_date = ev["date"].to_numpy()
        self._ev_code = ev["code"]
        self._cache: dict[tuple, pd.DataFrame] = {}
        self._in_cache: dict[str, np.ndarray] = {}

    def _in(self, codelist: str) -> np.ndarray:
        """Which coded events carry a code from the codelist."""
        if codelist not in self._in_cache:
            codes = self.ruleset.codelists[codelist].codes
            code = self._ev_code
            hit = code.isin(codes).to_numpy(dtype=bool) if code.dtype == object else isin(code, codes).to_numpy()
            self._in_cache[codelist] = hit
        return self._in_cache[codelist]

    def status(self, codelist: str, ended_by: str | None, active: bool,
               within_days: int | None, who: Audience) -> pd.DataFrame:
        """People meeting a condition: patient_id, date, code, term of their latest code
        (and ``pos``, their position in ``people``, -1 for a patient not there)."""
        key = (codelist, ended_by, active, within_days, who)
        if key in self._cache:
            return self._cache[key]
        mask = self._in(codelist).copy()
        pos = self.events["pos"].to_numpy()
        if who is not Audience.any:
            allowed = pos >= 0
            allowed[allowed] = _who_mask(self.people, who, pos[allowed])
            mask &= allowed
        rows = _last_per(np.flatnonzero(mask), self._ev_person)
        if active and ended_by:
            ends = _last_per(np.flatnonzero(self._in(ended_by)), self._ev_person)
            ends = ends[~self._ev_person_na[ends]]  # as a groupby, which drops a missing id
            last_end = np.full(len(self._ev_person_na), np.datetime64("NaT"), dtype=self._ev_date.dtype)
            last_end[self._ev_person[ends]] = self._ev_date[ends]  # sorted by date: the last is the latest
            end = last_end[self._ev_person[rows]]
            rows = rows[np.isnat(end) | (end < self._ev_date[rows])]
        if within_days is not None:
            rows = rows[self._ev_date[rows] >= np.datetime64(self.as_of - pd.Timedelta(days=within_days))]
        out = self.events.iloc[rows].reset_index(drop=True)
        self._cache[key] = out
        return out

    def condition(self, c: CodeCondition) -> pd.DataFrame:
        return self.status(c.codelist, c.ended_by, c.active, c.within_days, c.who)

    def satisfier(self, s: Satisfier) -> pd.DataFrame:
        return self.status(s.codelist, s.ended_by, s.active, None, Audience.any)

    def people_meeting(self, c: CodeCondition) -> np.ndarray:
        """Positions in ``people`` of everyone meeting a condition."""
        pos = self.condition(c)["pos"].to_numpy()
        return pos[pos >= 0]

    def meet_every_condition(self) -> None:
        """Find who meets each of the rules' conditions now (cached), as the rules ask."""
        for rule in self.ruleset.rules:
            for c in (rule.trigger, *rule.household_has_any, *rule.household_has_none, *rule.target.unless):
                self.condition(c)
            for sat in rule.satisfied_by:
                self.satisfier(sat)


class _Context(_Coded):
    """Everything a rule needs, computed once per run and cached per condition.

    People are addressed by position in ``people`` (integers), and the coded events by
    position in ``events``: the rules then select and join small integer arrays, and only
    the rows that end up in a flag or in scope are taken out of the frames as text.
    ``coded``: the households' independent part (``_Coded``) made ahead, for these inputs."""

    def __init__(self, ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                 households: pd.DataFrame | None, as_of: date, relationships: pd.DataFrame | None,
                 coded: _Coded | None = None):
        if coded is None:
            coded = _Coded(ruleset, patients, events, as_of)
        self.__dict__.update(coded.__dict__)
        self._cache = dict(coded._cache)  # (its own caches: the one made ahead is not changed)
        self._in_cache = dict(coded._in_cache)
        self.people = _people(patients, households, as_of, alone=coded.people)
        self.relationships = relationships
        self._household_code: np.ndarray | None = None
        self._recorded_relations: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._households_of_interest = 0

    @property
    def household_code(self) -> np.ndarray:
        """An integer per person standing for their household. Only households holding
        some rule's trigger person can be flagged or looked into, so only those are told
        apart (one scan for a few thousand ids, not a factorisation of every household id);
        everyone else shares the last code, which stands for no household of interest."""
        if self._household_code is None:
            ids = self.people["household_id"]
            triggers = [self.people_meeting(rule.trigger) for rule in self.ruleset.rules]
            at = np.unique(np.concatenate(triggers)) if triggers else np.zeros(0, dtype=np.int64)
            relevant = ids.iloc[at].drop_duplicates()
            code = index_in(ids, relevant) if len(relevant) else np.full(len(ids), -1, dtype=np.int64)
            code[code < 0] = len(relevant)
            self._household_code = code
            self._households_of_interest = len(relevant)
        return self._household_code

    @property
    def recorded_relations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The recorded relationships between people of the households of interest (the
        only ones a pair of trigger and target can have), as sorted integer keys
        ``patient position * len(people) + related patient position`` (the first row of
        each pair of people, as drop_duplicates keeps), each with its words read forwards
        ("Mother (recorded),") and backwards ("Child (recorded),")."""
        if self._recorded_relations is None:
            rel = self.relationships
            none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), np.zeros(0, dtype=object))
            if rel is None or not len(rel):
                self._recorded_relations = none
                return none
            at_home = np.flatnonzero(self.household_code < self._households_of_interest)
            members = self.people["patient_id"].iloc[at_home]
            # The related person is looked up only where the patient is one of them.
            at = np.flatnonzero(isin(rel["patient_id"], members).to_numpy(dtype=bool))
            at = at[isin(rel["related_patient_id"].iloc[at], members).to_numpy(dtype=bool)]
            r = rel[["patient_id", "related_patient_id", "relationship"]].iloc[at].reset_index(drop=True)
            a, b = _positions(r["patient_id"], members), _positions(r["related_patient_id"], members)
            known = (a >= 0) & (b >= 0)
            r, a, b = r[known], a[known], b[known]
            key = at_home[a] * len(self.people) + at_home[b]
            key, first = np.unique(key, return_index=True)
            r = r.iloc[first]
            forwards, backwards = _recorded_words(r["relationship"])
            self._recorded_relations = (key, forwards, backwards)
        return self._recorded_relations

    def names(self, pos: np.ndarray) -> pd.Series:
        """``full_names`` of the people at ``pos``: one Arrow concatenation and trim of the
        few names taken out (the frame's own way where a name column is not text)."""
        forenames, surname = self.people["forenames"], self.people["surname"]
        if isinstance(forenames.dtype, pd.StringDtype) and isinstance(surname.dtype, pd.StringDtype):
            try:
                first, last = _text(_pick(forenames, pos)), _text(_pick(surname, pos))
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                pass
            else:
                blank = pa.scalar("", pa.string())
                joined = pc.binary_join_element_wise(pc.fill_null(first, blank), pc.fill_null(last, blank), " ")
                return pd.Series(pc.utf8_trim_whitespace(joined), dtype="str")
        return full_names(self.people[["forenames", "surname"]].iloc[pos]).reset_index(drop=True)

    def households_meeting(self, c: CodeCondition) -> np.ndarray:
        """Per household code: whether someone in it meets the condition."""
        code = self.household_code
        hit = np.zeros(int(code.max(initial=-1)) + 1, dtype=bool)
        hit[code[self.people_meeting(c)]] = True
        return hit


def _recorded_words(relationship: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each recorded relationship's words read forwards ("Mother (recorded),") and
    backwards ("Child (recorded),"), as object arrays: made once per distinct word (a
    handful) and spread by the factorised codes, not per row (~30,000 rows at 1M patients)."""
    codes, distinct = pd.factorize(relationship, use_na_sentinel=True)
    # The distinct words, and a missing value last for the rows without one (code -1).
    words = pd.concat([pd.Series(distinct), pd.Series([None])], ignore_index=True).astype(relationship.dtype)
    forwards, backwards = _recorded_words_plain(words)
    return forwards[codes], backwards[codes]


def _recorded_words_plain(relationship: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    forwards = (relationship.str.capitalize() + " (recorded),").to_numpy()
    backwards = (relationship.map(_INVERSE).fillna("relative").str.capitalize() + " (recorded),").to_numpy()
    return forwards, backwards


def _last_per(rows: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Of ``rows`` (ascending), the last row of each group, in row order:
    ``drop_duplicates(keep="last")`` on integer arrays."""
    if len(rows) == 0:
        return rows
    g = group[rows][::-1]
    _, first_from_end = np.unique(g, return_index=True)
    return rows[np.sort(len(rows) - 1 - first_from_end)]


def _pairs_within_households(trig_household: np.ndarray, household: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (trigger row, household member position) with the member in the trigger's household:
    the join ``trig.merge(people, on="household_id")`` on integers."""
    wanted = np.zeros(int(max(household.max(initial=-1), trig_household.max(initial=-1))) + 1, dtype=bool)
    wanted[trig_household] = True
    members = np.flatnonzero(wanted[household])
    member_household = household[members]
    order = np.argsort(member_household, kind="stable")
    members, member_household = members[order], member_household[order]
    start = np.searchsorted(member_household, trig_household, side="left")
    count = np.searchsorted(member_household, trig_household, side="right") - start
    trig_row = np.repeat(np.arange(len(trig_household)), count)
    offset = np.arange(len(trig_row)) - np.repeat(np.cumsum(count) - count, count)
    return trig_row, members[np.repeat(start, count) + offset]


def _relation_labels(pairs: pd.DataFrame, ctx: _Context) -> pd.Series:
    """How the trigger person stands to the target, in words a lead can check."""
    label = _relation_words(
        ctx, (pairs["patient_id"] == pairs["trigger_patient_id"]).to_numpy(dtype=bool),
        pairs["trigger_is_child"].to_numpy(dtype=bool), pairs["is_child"].to_numpy(dtype=bool),
        pairs["trigger_dob"], pairs["date_of_birth"], pairs["pos"].to_numpy(), pairs["trigger_pos"].to_numpy())
    return pd.Series(label, index=pairs.index, dtype=object)


def _relation_words(ctx: _Context, same: np.ndarray, t_child: np.ndarray, g_child: np.ndarray,
                    trigger_dob: pd.Series, dob: pd.Series, target: np.ndarray, trigger: np.ndarray) -> np.ndarray:
    """``_relation_labels`` of pairs given as arrays (an object array of words)."""
    label = np.full(len(same), "", dtype=object)
    label[same] = "This patient"
    label[~same & t_child & g_child] = "Another child in the household,"
    label[~same & t_child & ~g_child] = "A child in the household,"
    label[~same & ~t_child & ~g_child] = "An adult in the household,"
    adult_to_child = ~same & ~t_child & g_child
    gap = _older_by(trigger_dob, dob, 14).to_numpy(dtype=bool)
    label[adult_to_child & gap] = "An adult in the household (probable parent or carer),"
    label[adult_to_child & ~gap] = "An adult in the household,"
    # A recorded relationship ("related_patient_id is the <word> of patient_id") names it
    # instead: one recorded on the trigger's record reads inverted ("Child (recorded),"),
    # and one recorded on the target's record reads as it is and wins.
    key, forwards, backwards = ctx.recorded_relations
    if len(key):
        for pair_key, words in ((trigger * len(ctx.people) + target, backwards),
                                (target * len(ctx.people) + trigger, forwards)):
            at = np.minimum(np.searchsorted(key, pair_key), len(key) - 1)
            found = key[at] == pair_key
            label[found] = words[at[found]]
    return label


def _evidence(rows: pd.DataFrame, relation: pd.Series, active_note: str) -> pd.Series:
    """Each pair's evidence sentence: ``_evidence_plain`` in one Arrow concatenation over
    the columns (pandas' ``+`` per part cost ~6 ms per rule at 1M patients)."""
    try:
        rel, name, trigger_id, term, code, day = (
            _text(column) for column in (relation, rows["trigger_name"], rows["trigger_patient_id"],
                                         rows["trigger_term"], rows["trigger_code"], _uk_date(rows["trigger_date"])))
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a value that is not text: the plain way
        return _evidence_plain(rows, relation, active_note)
    return pd.Series(_evidence_text(rel, name, trigger_id, term, code, day, active_note), index=rows.index, dtype="str")


def _evidence_text(rel: pa.Array, name: pa.Array, trigger_id: pa.Array, term: pa.Array, code: pa.Array,
                   day: pa.Array, active_note: str) -> pa.Array:
    """``_evidence`` over Arrow string arrays."""
    blank = pa.scalar("", pa.string())
    other = pc.not_equal(rel, pa.scalar("This patient", pa.string()))
    who = pc.if_else(pc.fill_null(other, True),
                     pc.binary_join_element_wise(rel, " ", name, " (patient ", trigger_id, ")", blank),
                     pa.scalar("This patient", pa.string()))
    return pc.binary_join_element_wise(who, " has '", term, "' (", code, ") dated ", day, active_note + ".", blank)


def _text(values: pd.Series) -> pa.Array:
    """A column's values as one Arrow string array (missing values as nulls)."""
    arr = pa.array(values, type=pa.string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _evidence_plain(rows: pd.DataFrame, relation: pd.Series, active_note: str) -> pd.Series:
    who = pd.Series("This patient", index=rows.index, dtype=object)
    other = relation != "This patient"
    who[other] = (relation[other] + " " + rows.loc[other, "trigger_name"] + " (patient "
                  + rows.loc[other, "trigger_patient_id"] + ")")
    return (who + " has '" + rows["trigger_term"] + "' (" + rows["trigger_code"] + ") dated "
            + _uk_date(rows["trigger_date"]) + active_note + ".")


def _household_evidence(rule: Rule, ctx: _Context, households: np.ndarray) -> pd.Series:
    """For household_has_any: the members whose codes met the condition, in words.
    ``households`` are the household codes (``ctx.household_code``) to describe."""
    wanted = np.zeros(int(ctx.household_code.max(initial=-1)) + 1, dtype=bool)
    wanted[households] = True
    fast = _household_evidence_fast(rule, ctx, wanted)
    if fast is not None:
        return fast
    parts = []
    for c in rule.household_has_any:
        hits = ctx.condition(c)
        pos = hits["pos"].to_numpy()
        keep = pos >= 0
        keep[keep] = wanted[ctx.household_code[pos[keep]]]
        hits = hits[keep].reset_index(drop=True)
        at = pos[keep]
        hits = hits.assign(household_id=ctx.people["household_id"].iloc[at].reset_index(drop=True),
                           name=ctx.names(at))
        note = " and not ended" if c.active else ""
        hits = hits.assign(text=_joined(hits["name"], " (patient ", hits["patient_id"], ") has '", hits["term"],
                                        "' (", hits["code"], ") dated ", _uk_date(hits["date"]), note))
        parts.append(hits[["household_id", "patient_id", "text"]])
    if not parts:
        return pd.Series(dtype=object)
    allhits = pd.concat(parts).drop_duplicates().sort_values(["household_id", "patient_id", "text"])
    starts = _run_starts(allhits["household_id"])
    joined = _join_runs(allhits["text"], starts, "; ")
    joined.index = pd.Index(allhits["household_id"].iloc[starts], name="household_id")
    return "Household risk: " + joined + "."


def _household_evidence_fast(rule: Rule, ctx: _Context, wanted: np.ndarray) -> pd.Series | None:
    """``_household_evidence`` over Arrow arrays (``wanted``: per household code, whether to
    describe it): the texts made per condition, de-duplicated and ordered by one sort of the
    three columns (rows equal in all three are alike, so which of them is kept does not
    matter). None where a column is not text or holds a missing value."""
    homes = ctx.people["household_id"]
    if not isinstance(homes.dtype, pd.StringDtype):
        return None
    blank = pa.scalar("", pa.string())
    columns: list[list[pa.Array]] = [[], [], []]
    try:
        home_text = arrow_text(homes)
        for c in rule.household_has_any:
            hits = ctx.condition(c)
            pos = hits["pos"].to_numpy()
            keep = pos >= 0
            keep[keep] = wanted[ctx.household_code[pos[keep]]]
            rows, at = np.flatnonzero(keep), pos[keep]
            patient, term, code = (_text(_pick(hits[k], rows)) for k in ("patient_id", "term", "code"))
            day = _text(_uk_date(_pick(hits["date"], rows)))
            note = " and not ended" if c.active else ""
            columns[0].append(_string_array(home_text.take(pa.array(at))))
            columns[1].append(patient)
            columns[2].append(pc.binary_join_element_wise(_text(ctx.names(at)), " (patient ", patient, ") has '", term,
                                                          "' (", code, ") dated ", day, note, blank))
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    home, patient, text = (pa.concat_arrays(parts) if parts else pa.array([], pa.string()) for parts in columns)
    if home.null_count or patient.null_count or text.null_count:
        return None
    table = pa.table({"h": home, "p": patient, "t": text})
    order = pc.sort_indices(table, sort_keys=[("h", "ascending", "at_end"), ("p", "ascending", "at_end"),
                                              ("t", "ascending", "at_end")])
    home, patient, text = (_string_array(table.column(k).take(order)) for k in ("h", "p", "t"))
    n = len(home)
    new_home = np.ones(n, dtype=bool)
    keep = np.ones(n, dtype=bool)
    if n > 1:
        def differs(a: pa.Array) -> np.ndarray:
            return pc.not_equal(a.slice(1), a.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        new_home[1:] = differs(home)
        keep[1:] = new_home[1:] | differs(patient) | differs(text)
    home, text, new_home = home.filter(pa.array(keep)), text.filter(pa.array(keep)), new_home[keep]
    starts = np.flatnonzero(new_home)
    joined = pc.binary_join_element_wise("Household risk: ", _join_runs_text(text, starts, "; "), ".", blank)
    index = pd.Index(pd.Series(home.take(pa.array(starts)), dtype="str"), name="household_id")
    return pd.Series(joined, index=index, dtype="str")


def _run_starts(keys: pd.Series) -> np.ndarray:
    """Where each run of equal keys starts, in a column sorted by key."""
    code = pd.factorize(keys, use_na_sentinel=False)[0]
    return np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.zeros(0, dtype=np.int64)


def _join_runs(values: pd.Series, starts: np.ndarray, sep: str) -> pd.Series:
    """``sep.join`` over each run of rows (runs start at ``starts``), in one Arrow call
    rather than a Python call per group."""
    text = pa.array(values, type=pa.string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):  # an Arrow-backed column made by concatenation
        text = text.combine_chunks()
    return pd.Series(_join_runs_text(text, starts, sep), dtype="str")


def _join_runs_text(text: pa.Array, starts: np.ndarray, sep: str) -> pa.Array:
    """``_join_runs`` over an Arrow string array."""
    offsets = pa.array(np.append(starts, len(text)).astype(np.int32))
    return pc.binary_join(pa.ListArray.from_arrays(offsets, text), sep)


def _take(column: pd.Series, at: np.ndarray) -> pd.Series:
    return column.iloc[at].reset_index(drop=True)


def _pick(column: pd.Series, at: np.ndarray) -> pd.Series:
    """``column.iloc[at].reset_index(drop=True)`` (``at`` holds valid positions), without
    the index machinery: a take of the column's array."""
    return pd.Series(column.array.take(at), dtype=column.dtype)


def _open_order(patient_id: pd.Series, trigger_date: np.ndarray, trigger_patient_id: pd.Series) -> np.ndarray:
    """The order of ``sort_values(["patient_id", "trigger_date", "trigger_patient_id"],
    ascending=[True, False, True])`` over the pairs (a stable sort, missing values last),
    as one Arrow sort of a small table rather than pandas' lexsort of three categoricals."""
    try:
        table = pa.table({"p": _text(patient_id), "d": pa.array(trigger_date), "t": _text(trigger_patient_id)})
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        frame = pd.DataFrame({"p": patient_id, "d": trigger_date, "t": trigger_patient_id})
        return frame.sort_values(["p", "d", "t"], ascending=[True, False, True]).index.to_numpy()
    keys = [("p", "ascending", "at_end"), ("d", "descending", "at_end"), ("t", "ascending", "at_end")]
    return pc.sort_indices(table, sort_keys=keys).to_numpy()


def _targets_satisfied_at(people: pd.DataFrame, target: np.ndarray, satisfied: np.ndarray) -> pd.DataFrame | None:
    """``pairs.groupby(["patient_id", "household_id"], sort=True)["satisfied"].all()
    .reset_index()`` (``_targets_satisfied_plain``) of the pairs whose targets are the people
    at ``target`` (one per pair), with ``satisfied`` per pair: integers and one sort of the
    distinct targets, not a pandas group-by on two text columns, taking the ids of the distinct targets only;
    None where that cannot answer as the group-by would (no pairs, ids or households not
    text, missing, or one id at two positions)."""
    ids, homes = people["patient_id"], people["household_id"]
    if len(target) == 0 or not (isinstance(ids.dtype, pd.StringDtype) and isinstance(homes.dtype, pd.StringDtype)):
        return None
    distinct, inverse = np.unique(target, return_inverse=True)
    unsatisfied = np.bincount(inverse, weights=~satisfied, minlength=len(distinct))
    patient, household = _pick(ids, distinct), _pick(homes, distinct)
    try:
        id_text, home_text = _text(patient), _text(household)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    if id_text.null_count or home_text.null_count:
        return None
    order = pc.sort_indices(id_text).to_numpy()
    in_order = id_text.take(pa.array(order))
    if len(in_order) > 1 and pc.any(pc.equal(in_order.slice(1), in_order.slice(0, len(in_order) - 1))).as_py():
        return None
    return pd.DataFrame({"patient_id": _pick(patient, order), "household_id": _pick(household, order),
                         "satisfied": unsatisfied[order] == 0})


def _targets_satisfied_plain(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.groupby(["patient_id", "household_id"], sort=True)["satisfied"].all().reset_index()


def _joined(*parts: pd.Series | str) -> pd.Series:
    """``a + b + ...`` of text columns and constants (missing where any part is), in one
    Arrow call; the pandas operators where a column holds something other than text."""
    index = next(p.index for p in parts if isinstance(p, pd.Series))
    try:
        arrays = [_text(p) if isinstance(p, pd.Series) else p for p in parts]
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return _joined_plain(*parts)
    return pd.Series(pc.binary_join_element_wise(*arrays, pa.scalar("", pa.string())), index=index, dtype="str")


def _joined_plain(*parts: pd.Series | str) -> pd.Series:
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def _evaluate_rule(rule: Rule, ctx: _Context) -> tuple[pd.DataFrame | dict, pd.DataFrame]:
    people = ctx.people
    household = ctx.household_code
    trig = ctx.condition(rule.trigger)
    trig = trig[trig["pos"].to_numpy() >= 0]  # the trigger person must be a patient
    t_pos = trig["pos"].to_numpy()
    keep = np.ones(len(trig), dtype=bool)
    if rule.household_has_any:
        ok = np.zeros(int(household.max(initial=-1)) + 1, dtype=bool)
        for c in rule.household_has_any:
            ok |= ctx.households_meeting(c)
        keep &= ok[household[t_pos]]
    for c in rule.household_has_none:
        keep &= ~ctx.households_meeting(c)[household[t_pos]]
    trig, t_pos = trig[keep].reset_index(drop=True), t_pos[keep]

    # Pair each trigger with the members of its household, as positions, and narrow the
    # pairs down before any text is taken out of the frames.
    t_row, g_pos = _pairs_within_households(household[t_pos], household)
    is_child = people["is_child"].to_numpy(dtype=bool)
    group = rule.target.group
    if group is TargetGroup.children:
        sel = is_child[g_pos]
    elif group is TargetGroup.adults:
        sel = ~is_child[g_pos]
    elif group is TargetGroup.other_children:
        sel = is_child[g_pos] & (g_pos != t_pos[t_row])
    else:
        sel = g_pos == t_pos[t_row]
    t_row, g_pos = t_row[sel], g_pos[sel]
    dob = people["date_of_birth"]
    if rule.target.trigger_person_older_by_years is not None:
        sel = _older_by(_take(dob, t_pos[t_row]), _take(dob, g_pos),
                        rule.target.trigger_person_older_by_years).to_numpy(dtype=bool)
        t_row, g_pos = t_row[sel], g_pos[sel]
    for c in rule.target.unless:
        out = np.zeros(len(people), dtype=bool)
        out[ctx.people_meeting(c)] = True
        sel = ~out[g_pos]
        t_row, g_pos = t_row[sel], g_pos[sel]
    p_pos = t_pos[t_row]
    trigger_date = trig["date"].to_numpy()[t_row]

    satisfied = np.zeros(len(t_row), dtype=bool)
    for s in rule.satisfied_by:
        have = ctx.satisfier(s)
        h_pos = have["pos"].to_numpy()
        date_of = np.full(len(people), np.datetime64("NaT"), dtype=have["date"].to_numpy().dtype)
        date_of[h_pos[h_pos >= 0]] = have["date"].to_numpy()[h_pos >= 0]
        got = date_of[g_pos]
        if s.dated == "any_time":
            satisfied |= ~np.isnat(got)
        else:
            satisfied |= ~np.isnat(got) & (got >= trigger_date)

    def pairs_at(at: np.ndarray) -> pd.DataFrame:
        """The pairs at ``at`` (positions in t_row/g_pos) as a frame, the text taken out only now."""
        tr, g, p = t_row[at], g_pos[at], p_pos[at]
        return pd.DataFrame({
            "trigger_patient_id": _pick(trig["patient_id"], tr),
            "trigger_code": _pick(trig["code"], tr),
            "trigger_term": _pick(trig["term"], tr),
            "trigger_date": _pick(trig["date"], tr),
            "household_id": _pick(people["household_id"], g),
            "trigger_dob": _pick(dob, p),
            "trigger_is_child": is_child[p],
            "patient_id": _pick(people["patient_id"], g),
            "date_of_birth": _pick(dob, g),
            "is_child": is_child[g],
            "satisfied": satisfied[at],
            "pos": g,
            "trigger_pos": p,
            "household": household[g],
        })

    scope = _targets_satisfied_at(people, g_pos, satisfied)
    if scope is None or not len(scope):  # the plain way, from the pairs themselves
        scope = _targets_satisfied_plain(pairs_at(np.arange(len(t_row))))
        scope = scope.assign(rule_id=rule.id, flagged=~scope["satisfied"])[SCOPE_COLUMNS]
    else:
        scope = pd.DataFrame({"rule_id": pd.Series(rule.id, index=scope.index, dtype="str"),
                              "patient_id": scope["patient_id"], "household_id": scope["household_id"],
                              "flagged": ~scope["satisfied"].to_numpy()})

    unmet = np.flatnonzero(~satisfied)
    if not len(unmet):
        return pd.DataFrame(columns=FLAG_COLUMNS), scope
    fast = _flags_fast(rule, ctx, trig, t_row[unmet], g_pos[unmet], p_pos[unmet], trigger_date[unmet])
    if fast is not None:
        return fast, scope
    # Sorted by target, latest trigger first, then trigger id (as sort_values did).
    open_pairs = pairs_at(unmet[_open_order(_pick(people["patient_id"], g_pos[unmet]), trigger_date[unmet],
                                            _pick(trig["patient_id"], t_row[unmet]))])
    active_note = ", and it has not been ended" if rule.trigger.active else ""
    open_pairs["trigger_name"] = pd.Series(ctx.names(open_pairs["trigger_pos"].to_numpy()).array,
                                           index=open_pairs.index)
    open_pairs = open_pairs.assign(
        evidence=_evidence(open_pairs, _relation_labels(open_pairs, ctx), active_note),
        trigger_iso=_strftime(open_pairs["trigger_date"], "%Y-%m-%d"))
    # One flag per target: the pairs are sorted by target, so each target is a run of rows.
    starts = _run_starts(open_pairs["patient_id"])
    first = open_pairs.iloc[starts].reset_index(drop=True)
    flags = pd.DataFrame({
        "patient_id": first["patient_id"],
        "household_id": first["household_id"],
        "household": first["household"],
        "evidence": _join_runs(open_pairs["evidence"], starts, " "),
        "latest_trigger": first["trigger_date"],  # the runs are sorted latest first
        "trigger_patient_ids": _join_runs(open_pairs["trigger_patient_id"], starts, ";"),
        "trigger_codes": _join_runs(open_pairs["trigger_code"], starts, ";"),
        "trigger_dates": _join_runs(open_pairs["trigger_iso"], starts, ";"),
    })
    missing = " ".join(rule.missing.split())
    flags["reason"] = _joined(flags["evidence"], " ", _per_date(flags["latest_trigger"], missing))
    if rule.household_has_any:
        hh = _household_evidence(rule, ctx, flags["household"].to_numpy())
        flags["reason"] = flags["reason"] + " " + flags["household_id"].map(hh).fillna("")
        flags["reason"] = flags["reason"].str.rstrip()
    flags["rule_id"] = rule.id
    flags["severity"] = rule.severity
    flags["title"] = rule.title
    flags["recommendations"] = "; ".join(str(r) for r in rule.recommendations)
    flags["suggested_codes"] = "; ".join(f"{c} {ctx.ruleset.term(c)}" for c in rule.suggest)
    return flags[FLAG_COLUMNS], scope


def _string_array(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One Arrow ``string`` array of text values (as ``_text`` gives)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values if values.type == pa.string() else values.cast(pa.string())


def _flags_fast(rule: Rule, ctx: _Context, trig: pd.DataFrame, t_row: np.ndarray, g_pos: np.ndarray,
                p_pos: np.ndarray, trigger_date: np.ndarray) -> dict | None:
    """The flags of a rule's unsatisfied pairs (trigger rows ``t_row`` of ``trig``, targets
    ``g_pos`` and trigger persons ``p_pos`` in ``people``, trigger dates), made as the frame
    code at the end of ``_evaluate_rule`` makes them, over Arrow arrays with one frame at the
    end (that code cost ~1 ms of pandas overhead per step and rule). None where a column is
    not text or a target id is missing: the frame code then answers."""
    people = ctx.people
    columns = (people["patient_id"], people["household_id"], people["forenames"], people["surname"])
    if not all(isinstance(c.dtype, pd.StringDtype) for c in columns):
        return None
    try:
        ids, homes = arrow_text(people["patient_id"]), arrow_text(people["household_id"])
        target_id = _string_array(ids.take(pa.array(g_pos)))
        trigger_id, code, term = (_text(_pick(trig[c], t_row)) for c in ("patient_id", "code", "term"))
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    if target_id.null_count:
        return None
    # Sorted by target, latest trigger first, then trigger id (as sort_values did).
    order = _open_order(pd.Series(target_id, dtype="str"), trigger_date, pd.Series(trigger_id, dtype="str"))
    t_row, g_pos, p_pos, trigger_date = t_row[order], g_pos[order], p_pos[order], trigger_date[order]
    taken = pa.array(order)
    target_id, trigger_id, code, term = (a.take(taken) for a in (target_id, trigger_id, code, term))
    is_child = people["is_child"].to_numpy(dtype=bool)
    dob = people["date_of_birth"]
    same = pc.fill_null(pc.equal(target_id, trigger_id), False).to_numpy(zero_copy_only=False)
    relation = _relation_words(ctx, same, is_child[p_pos], is_child[g_pos], _pick(dob, p_pos), _pick(dob, g_pos),
                               g_pos, p_pos)
    dates = pd.Series(trigger_date)
    active_note = ", and it has not been ended" if rule.trigger.active else ""
    evidence = _evidence_text(_text(pd.Series(relation, dtype=object)), _text(ctx.names(p_pos)), trigger_id, term,
                              code, _text(_uk_date(dates)), active_note)
    # One flag per target: the pairs are sorted by target, so each target is a run of rows.
    head = np.ones(len(target_id), dtype=bool)
    if len(target_id) > 1:
        head[1:] = pc.not_equal(target_id.slice(1), target_id.slice(0, len(target_id) - 1)).to_numpy(
            zero_copy_only=False)
    starts = np.flatnonzero(head)
    first = pa.array(starts)
    joined = _join_runs_text(evidence, starts, " ")
    missing = " ".join(rule.missing.split())
    reason = pc.binary_join_element_wise(joined, " ", _text(_per_date(pd.Series(trigger_date[starts]), missing)),
                                         pa.scalar("", pa.string()))
    reason = pd.Series(reason, dtype="str")
    household_id = pd.Series(_string_array(homes.take(pa.array(g_pos[starts]))), dtype="str")
    if rule.household_has_any:
        hh = _household_evidence(rule, ctx, ctx.household_code[g_pos[starts]])
        reason = (reason + " " + household_id.map(hh).fillna("")).str.rstrip()
    return {
        "patient_id": target_id.take(first),
        "household_id": _text(household_id),
        "rule_id": rule.id,
        "severity": rule.severity,
        "title": rule.title,
        "recommendations": "; ".join(str(r) for r in rule.recommendations),
        "reason": _text(reason),
        "suggested_codes": "; ".join(f"{c} {ctx.ruleset.term(c)}" for c in rule.suggest),
        "trigger_patient_ids": _join_runs_text(trigger_id, starts, ";"),
        "trigger_codes": _join_runs_text(code, starts, ";"),
        "trigger_dates": _join_runs_text(_text(_strftime(dates, "%Y-%m-%d")), starts, ";"),
    }


def _flag_frame(parts: list[pd.DataFrame | dict]) -> pd.DataFrame:
    """``pd.concat(parts, ignore_index=True).astype(object)`` of the rules' flags, where a
    rule's flags are a frame or ``_flags_fast``'s columns (Arrow arrays and constants):
    each column's Python objects made once (missing values as NaN, as astype gives)."""
    if not all(isinstance(p, dict) or p.empty for p in parts) or not any(isinstance(p, dict) for p in parts):
        frames = [_columns_frame(p) if isinstance(p, dict) else p for p in parts]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLAG_COLUMNS)
        return out.astype(object).reset_index(drop=True)
    columns: dict[str, np.ndarray] = {}
    dicts = [p for p in parts if isinstance(p, dict)]
    for name in FLAG_COLUMNS:
        pieces = []
        for d in dicts:
            n = len(d["patient_id"])
            value = d[name]
            if isinstance(value, str):
                pieces.append(np.full(n, value, dtype=object))
            else:
                values = value.to_numpy(zero_copy_only=False).astype(object)
                if value.null_count:
                    values[pd.isna(values)] = np.nan
                pieces.append(values)
        columns[name] = np.concatenate(pieces)
    return pd.DataFrame(columns, columns=FLAG_COLUMNS, dtype=object)


def _columns_frame(columns: dict) -> pd.DataFrame:
    """``_flags_fast``'s columns as the frame the frame code makes."""
    n = len(columns["patient_id"])
    return pd.DataFrame({k: (pd.Series(v, dtype="str") if not isinstance(v, str) else pd.Series([v] * n, dtype="str"))
                         for k, v in columns.items()})[FLAG_COLUMNS]


class PreparedRules:
    """The part of ``evaluate_rules`` that needs no households (``prepare_rules``): made
    while the households are linked, it is handed to ``evaluate_rules`` for the same
    ruleset, patients, events and as-of date."""

    def __init__(self, ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame, as_of: date,
                 event_codes: EventCodes | None = None):
        self.ruleset, self.events, self.as_of = ruleset, events, as_of
        self.coded = _Coded(ruleset, patients, events, as_of, event_codes)
        self.coded.meet_every_condition()

    def check(self, ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame, as_of: date) -> None:
        """Raise ValueError unless made for these inputs (the same ruleset and events
        objects, as-of date and patient ids)."""
        ids = self.coded.people["patient_id"]
        if (ruleset is not self.ruleset or events is not self.events or as_of != self.as_of
                or len(patients) != len(ids) or not _same_text(patients["patient_id"].reset_index(drop=True), ids)):
            raise ValueError("prepared rules were made for other inputs than those given to evaluate_rules")


def prepare_rules(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame, as_of: date,
                  event_codes: EventCodes | None = None) -> PreparedRules:
    """What ``evaluate_rules`` can do before the households are known: the events with a
    codelist code (tested per distinct code with ``event_codes``, ``Export.event_codes``),
    sorted and addressed by person, and who meets each rule's conditions. ``patients``
    needs only the rule columns (``RULE_PATIENT_COLUMNS``). Thread-safe to run beside the
    linkage (it reads its inputs and changes none)."""
    return PreparedRules(ruleset, patients, events, as_of, event_codes)


def evaluate_rules(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                   households: pd.DataFrame, as_of: date,
                   relationships: pd.DataFrame | None = None, *,
                   event_codes: EventCodes | None = None, prepared: PreparedRules | None = None) -> Evaluation:
    """Evaluate every rule; return the flags and every target in scope (for coverage).

    ``event_codes``: the reader's integers for the events' codes (``Export.event_codes``),
    which spare a test of every event's code. ``prepared``: ``prepare_rules`` of the same
    ruleset, patients, events and as-of date, made ahead (e.g. while the households were
    linked); the result is the same with or without it."""
    if prepared is not None:
        prepared.check(ruleset, patients, events, as_of)
        coded = prepared.coded
    else:
        coded = _Coded(ruleset, patients, events, as_of, event_codes)
    ctx = _Context(ruleset, patients, events, households, as_of, relationships, coded)
    flags, scopes = [], []
    for rule in ruleset.rules:
        f, s = _evaluate_rule(rule, ctx)
        flags.append(f)
        scopes.append(s)
    all_scope = pd.concat(scopes, ignore_index=True) if scopes else pd.DataFrame(columns=SCOPE_COLUMNS)
    return Evaluation(_flag_frame(flags), all_scope.reset_index(drop=True), ctx.coded)


def rule_triggers(ruleset: RuleSet, patients: pd.DataFrame, events: pd.DataFrame,
                  households: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Every person whose own codes meet a rule's trigger (whoever they live with):
    ``patient_id, rule_id, code, term, date``. Used to point the lead at records whose
    household could not be settled but whose codes would trigger a rule.

    Only the events of ``patients`` count: ``events`` may be everyone's, or just the coded
    ones (``Evaluation.coded_events``), which spares a scan of every event's patient id."""
    coded = _codelist_events(ruleset, events)
    coded = coded[isin(coded["patient_id"], patients["patient_id"]).to_numpy()]
    # Only the people's own codes, age and sex matter here, not their households: none is
    # looked up (a scan of every household row's id, about 0.01 s of CPU at 1M, for a few
    # thousand patients).
    ctx = _Context(ruleset, patients, coded, None, as_of, None)
    parts = [ctx.condition(rule.trigger)[["patient_id", "code", "term", "date"]].assign(rule_id=rule.id)
             for rule in ruleset.rules]
    if not parts:
        return pd.DataFrame(columns=["patient_id", "rule_id", "code", "term", "date"])
    out = pd.concat(parts, ignore_index=True)
    return out[["patient_id", "rule_id", "code", "term", "date"]]
