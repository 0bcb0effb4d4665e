"""A deliberately simple reference evaluation of the 8 default rules.

Written straight from the definitions (docs/rules.md, "Words with a fixed meaning" and
"The 8 default rules"), not from the
engine: plain Python loops over households and people, ``datetime.date`` and sets, so that
a disagreement with ``family_link.engine`` means one of the two misreads the definitions.
It knows nothing of the YAML rule language; it hard-codes the 8 rules and only reads the
codelists, by name, from ``rules/codelists/*.csv``.

Definitions used (A is the as-of date):

- a child is under 18 at A; the 18th birthday makes an adult (a 29 February birthday is
  reached on 1 March in a non-leap year);
- "within N days" means dated between A minus N days and A, both included;
- events dated after A are ignored;
- a status is active when its latest start code (dated on or before A) has no end code
  dated on or after it;
- a target is flagged when any of its triggers is not satisfied.

Pandas appears only in ``from_frames``, which turns the frames the engine takes into plain
Python values; the rules themselves never touch it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable

CODELISTS_DIR = Path(__file__).resolve().parents[1] / "rules" / "codelists"

CODELIST_NAMES = (
    "cp_plan_start", "cp_plan_end", "family_member_cp_alert", "family_member_cp_alert_end",
    "parent_of_child_on_cp_plan", "domestic_abuse", "domestic_abuse_household_alert",
    "substance_misuse", "substance_misuse_household_alert", "learning_disability",
    "family_vulnerability_alert", "pregnancy", "pregnancy_outcome", "unborn_child_alert",
    "maltreatment", "child_safeguarding",
)

RULE_IDS = (
    "cp-sibling", "cp-parent", "domestic-abuse", "substance-misuse",
    "parental-learning-disability", "pre-birth", "maltreatment-siblings", "stale-family-alert",
)


def read_codelists(directory: Path = CODELISTS_DIR) -> dict[str, set[str]]:
    """Each codelist as a set of codes (the ``code`` column of ``NAME.csv``)."""
    lists: dict[str, set[str]] = {}
    for name in CODELIST_NAMES:
        with open(directory / f"{name}.csv", newline="", encoding="utf-8-sig") as f:
            lists[name] = {row["code"].strip() for row in csv.DictReader(f) if row["code"].strip()}
    return lists


@dataclass
class Person:
    patient_id: str
    date_of_birth: date
    sex: str
    household_id: str
    codes: list[tuple[date, str]] = field(default_factory=list)  # (date, code), dated <= A


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years from date_of_birth to day (the birthday itself counts)."""
    before_birthday = (day.month, day.day) < (date_of_birth.month, date_of_birth.day)
    return day.year - date_of_birth.year - (1 if before_birthday else 0)


class Reference:
    def __init__(self, people: Iterable[Person], as_of: date, codelists: dict[str, set[str]]):
        self.as_of = as_of
        self.lists = codelists
        self.people = {p.patient_id: p for p in people}
        self.households: dict[str, list[Person]] = defaultdict(list)
        for p in self.people.values():
            # A patient with no household lives alone.
            self.households[p.household_id or "alone:" + p.patient_id].append(p)

    # --- small helpers, each one line of the definitions ---------------------------------
    def is_child(self, p: Person) -> bool:
        return age_on(p.date_of_birth, self.as_of) < 18

    def dates(self, p: Person, codelist: str) -> list[date]:
        codes = self.lists[codelist]
        return [d for d, c in p.codes if c in codes and d <= self.as_of]

    def within(self, d: date, days: int) -> bool:
        return self.as_of - timedelta(days=days) <= d <= self.as_of

    def active_since(self, p: Person, start: str, end: str) -> date | None:
        """The latest start code's date when the status is active, else None."""
        starts = self.dates(p, start)
        if not starts:
            return None
        latest = max(starts)
        if any(e >= latest for e in self.dates(p, end)):
            return None
        return latest

    def has_on_or_after(self, p: Person, codelist: str, day: date) -> bool:
        return any(d >= day for d in self.dates(p, codelist))

    def active_on_or_after(self, p: Person, start: str, end: str, day: date) -> bool:
        since = self.active_since(p, start, end)
        return since is not None and since >= day

    def recent(self, p: Person, codelist: str, days: int) -> list[date]:
        return [d for d in self.dates(p, codelist) if self.within(d, days)]

    def on_plan(self, p: Person) -> date | None:
        return self.active_since(p, "cp_plan_start", "cp_plan_end")

    # --- the 8 rules -----------------------------------------------------------------------
    def flags(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for members in self.households.values():
            children = [m for m in members if self.is_child(m)]
            adults = [m for m in members if not self.is_child(m)]
            # Each trigger: (trigger person, trigger date).
            plans = [(c, self.on_plan(c)) for c in children if self.on_plan(c) is not None]

            # 1. cp-sibling
            for c in children:
                if self.on_plan(c) is not None:
                    continue
                for other, start in plans:
                    if other is c:
                        continue
                    if not self.active_on_or_after(c, "family_member_cp_alert",
                                                   "family_member_cp_alert_end", start):
                        out.add((c.patient_id, "cp-sibling"))

            # 2. cp-parent
            for a in adults:
                for _, start in plans:
                    alert = self.active_on_or_after(a, "family_member_cp_alert",
                                                    "family_member_cp_alert_end", start)
                    parent_code = self.has_on_or_after(a, "parent_of_child_on_cp_plan", start)
                    if not (alert or parent_code):
                        out.add((a.patient_id, "cp-parent"))

            # 3. domestic-abuse and 4. substance-misuse: every qualifying code is a trigger.
            for rule_id, risk, alert in (
                ("domestic-abuse", "domestic_abuse", "domestic_abuse_household_alert"),
                ("substance-misuse", "substance_misuse", "substance_misuse_household_alert"),
            ):
                risk_dates = [d for a in adults for d in self.recent(a, risk, 730)]
                for c in children:
                    if any(not self.has_on_or_after(c, alert, d) for d in risk_dates):
                        out.add((c.patient_id, rule_id))

            # 5. parental-learning-disability
            for c in children:
                for a in adults:
                    older = age_on(a.date_of_birth, c.date_of_birth) >= 14
                    if older and self.dates(a, "learning_disability") \
                            and not self.dates(c, "family_vulnerability_alert"):
                        out.add((c.patient_id, "parental-learning-disability"))

            # 6. pre-birth
            household_risk = any(
                self.on_plan(m) is not None
                or self.recent(m, "domestic_abuse", 730)
                or self.recent(m, "substance_misuse", 730)
                or self.dates(m, "learning_disability")
                or self.recent(m, "maltreatment", 365)
                for m in members)
            if household_risk:
                for w in members:
                    if w.sex != "F":
                        continue
                    for p in self.recent(w, "pregnancy", 280):
                        if self.has_on_or_after(w, "pregnancy_outcome", p):
                            continue
                        if not self.has_on_or_after(w, "unborn_child_alert", p):
                            out.add((w.patient_id, "pre-birth"))

            # 7. maltreatment-siblings
            for c in children:
                for other in children:
                    if other is c:
                        continue
                    for d in self.recent(other, "maltreatment", 365):
                        if not self.has_on_or_after(c, "child_safeguarding", d):
                            out.add((c.patient_id, "maltreatment-siblings"))

            # 8. stale-family-alert
            anyone_on_plan = any(self.on_plan(m) is not None for m in members)
            for c in children:
                alert = self.active_since(c, "family_member_cp_alert", "family_member_cp_alert_end")
                if alert is not None and not anyone_on_plan:
                    out.add((c.patient_id, "stale-family-alert"))
        return out


def reference_flags(people: Iterable[Person], as_of: date,
                    codelists: dict[str, set[str]] | None = None) -> set[tuple[str, str]]:
    """Every (patient_id, rule_id) the 8 default rules flag."""
    return Reference(people, as_of, codelists if codelists is not None else read_codelists()).flags()


def from_frames(patients, events, households) -> list[Person]:  # type: ignore[no-untyped-def]
    """Plain ``Person`` objects from the frames ``evaluate_rules`` takes.

    A patient with no household (absent from ``households`` or with a blank id) lives alone.
    Events of patients not in ``patients`` are dropped, as are undated events.
    """
    household_of = {
        str(pid): hid
        for pid, hid in zip(households["patient_id"], households["household_id"])
        if isinstance(hid, str)
    }
    people: dict[str, Person] = {}
    for pid, dob, sex in zip(patients["patient_id"], patients["date_of_birth"], patients["sex"]):
        pid = str(pid)
        people[pid] = Person(pid, dob.date(), str(sex), household_of.get(pid, ""))
    for pid, code, when in zip(events["patient_id"], events["code"], events["date"]):
        person = people.get(str(pid))
        if person is not None and when == when and when is not None:  # NaT != NaT
            person.codes.append((when.date(), str(code)))
    return list(people.values())


def reference_flags_from_frames(patients, events, households, as_of: date,  # type: ignore[no-untyped-def]
                                codelists: dict[str, set[str]] | None = None) -> set[tuple[str, str]]:
    return reference_flags(from_frames(patients, events, households), as_of, codelists)
