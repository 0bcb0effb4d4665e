"""Spec tests: each default rule on tiny inline households.

Every case runs the engine (``evaluate_rules`` with the shipped rules) and the independent
reference in ``tests/reference_rules.py``, and checks that both give the same flags for
every rule before checking the one the test is about.

The definitions (A is the as-of date): a child is under 18 at A and the 18th birthday
makes an adult; "within N days" is dated between A minus N days and A inclusive; events
dated after A are ignored; a status is active when its latest start code has no end code
dated on or after it; a target is flagged when any of its triggers is not satisfied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import pandas as pd
import pytest

from family_link.engine import evaluate_rules
from family_link.rules import RuleSet, load_ruleset
from reference_rules import CODELIST_NAMES, Person, reference_flags

A = date(2025, 6, 30)  # the as-of date of every case unless a test says otherwise


# --- building tiny practices ------------------------------------------------------------------

@cache
def ruleset() -> RuleSet:
    return load_ruleset()


# The code each test uses for a codelist: the well-known code where the list has it, else
# the first code that is in no other default codelist (so a test exercises one list only).
PREFERRED = {
    "cp_plan_start": "342191000000101",  # Subject to child protection plan
    "cp_plan_end": "342891000000105",  # No longer subject to child protection plan
    "family_member_cp_alert": "375041000000100",  # Family member subject of CP plan
    "family_member_cp_alert_end": "375071000000106",
    "parent_of_child_on_cp_plan": "864491000000105",  # Has child subject of CP plan
    "domestic_abuse": "879911000000102",  # Victim of domestic abuse
    "domestic_abuse_household_alert": "881081000000100",
    "substance_misuse_household_alert": "713070003",  # Drug misuser in household
    "family_vulnerability_alert": "1064961000000107",  # Child in family is safeguarding concern
    "pregnancy": "77386006",  # Pregnant
    "unborn_child_alert": "878111000000109",  # Unborn child is cause for safeguarding concern
    "maltreatment": "158094009",  # Non-accidental injury to child
    "child_safeguarding": "836881000000105",  # Child is cause for safeguarding concern
}


@cache
def code_of(codelist: str) -> str:
    lists = ruleset().codelists
    preferred = PREFERRED.get(codelist)
    if preferred in lists[codelist].codes:
        return preferred
    elsewhere = set().union(*(lists[n].codes for n in CODELIST_NAMES if n != codelist))
    return next(c for c in lists[codelist].terms if c not in elsewhere)


def term_of(codelist: str) -> str:
    return ruleset().codelists[codelist].terms[code_of(codelist)]


def years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


@dataclass(frozen=True)
class P:
    """A patient: id, date of birth, sex and household."""

    id: str
    dob: date
    sex: str = "F"
    household: str = "H1"

    @property
    def forenames(self) -> str:
        return self.id.capitalize()

    @property
    def surname(self) -> str:
        return "Testfamily"

    @property
    def name(self) -> str:
        return f"{self.forenames} {self.surname}"


def child(pid: str, age: int = 8, **kw) -> P:
    return P(pid, years_before(A, age) - timedelta(days=100), **kw)


def adult(pid: str, age: int = 35, **kw) -> P:
    return P(pid, years_before(A, age) - timedelta(days=100), **kw)


@dataclass(frozen=True)
class E:
    """An event: patient id, codelist (its test code is used) and days before A
    (negative: after A), or an explicit date ``on``."""

    patient: str
    codelist: str
    days_before: int = 0
    on: date | None = None

    @property
    def date(self) -> date:
        return self.on or A - timedelta(days=self.days_before)


def frames(people: list[P], events: list[E]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    patients = pd.DataFrame({
        "patient_id": [p.id for p in people],
        "forenames": [p.forenames for p in people],
        "surname": [p.surname for p in people],
        "date_of_birth": pd.to_datetime([p.dob for p in people]),
        "sex": [p.sex for p in people],
    })
    ev = pd.DataFrame({
        "patient_id": [e.patient for e in events],
        "code": [code_of(e.codelist) for e in events],
        "term": [term_of(e.codelist) for e in events],
        "date": pd.to_datetime([e.date for e in events]),
    })
    households = pd.DataFrame({"patient_id": [p.id for p in people],
                               "household_id": [p.household for p in people]})
    return patients, ev, households


def run(people: list[P], events: list[E], as_of: date = A) -> pd.DataFrame:
    """The engine's flags; fails if the reference disagrees on any rule."""
    patients, ev, households = frames(people, events)
    evaluation = evaluate_rules(ruleset(), patients, ev, households, as_of)
    flags = evaluation.flags
    engine = set(zip(flags["patient_id"], flags["rule_id"]))
    scope = evaluation.scope
    # Coverage counts must agree with the flags: a target in scope is flagged iff it has a flag.
    assert set(zip(scope.loc[scope["flagged"], "patient_id"], scope.loc[scope["flagged"], "rule_id"])) == engine
    reference = reference_flags(
        [Person(p.id, p.dob, p.sex, p.household,
                [(e.date, code_of(e.codelist)) for e in events if e.patient == p.id])
         for p in people],
        as_of, {n: set(ruleset().codelists[n].codes) for n in CODELIST_NAMES})
    assert engine == reference, f"engine only: {engine - reference}; reference only: {reference - engine}"
    return flags


def flagged(rule_id: str, people: list[P], events: list[E], as_of: date = A) -> set[str]:
    flags = run(people, events, as_of)
    return set(flags.loc[flags["rule_id"] == rule_id, "patient_id"])


def reason(rule_id: str, patient_id: str, people: list[P], events: list[E]) -> str:
    flags = run(people, events)
    [text] = flags.loc[(flags["rule_id"] == rule_id) & (flags["patient_id"] == patient_id), "reason"]
    return text


def uk(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def assert_names_trigger(text: str, trigger: P, event: E) -> None:
    """A flag's reason must let a lead check it by hand: who, which code, which date."""
    assert trigger.id in text
    assert trigger.name in text
    assert code_of(event.codelist) in text
    assert term_of(event.codelist) in text
    assert uk(event.date) in text


# --- 1. cp-sibling ---------------------------------------------------------------------------

CP = "cp-sibling"


def plan_family(*events: E) -> tuple[list[P], list[E]]:
    """ann is on a plan started 100 days before A; ben is her brother; mum is an adult."""
    return [child("ann"), child("ben", 5, sex="M"), adult("mum")], [E("ann", "cp_plan_start", 100), *events]


def test_cp_sibling_flags_a_child_living_with_a_child_on_a_plan():
    assert flagged(CP, *plan_family()) == {"ben"}


def test_cp_sibling_satisfied_by_an_active_alert_dated_on_the_plan_start():
    assert flagged(CP, *plan_family(E("ben", "family_member_cp_alert", 100))) == set()


def test_cp_sibling_alert_dated_before_the_plan_start_does_not_satisfy():
    assert flagged(CP, *plan_family(E("ben", "family_member_cp_alert", 101))) == {"ben"}


def test_cp_sibling_alert_ended_while_the_plan_goes_on_does_not_satisfy():
    assert flagged(CP, *plan_family(E("ben", "family_member_cp_alert", 90),
                                    E("ben", "family_member_cp_alert_end", 30))) == {"ben"}


def test_cp_sibling_ended_plan_is_not_a_trigger():
    assert flagged(CP, *plan_family(E("ann", "cp_plan_end", 10))) == set()


def test_cp_sibling_plan_ended_the_day_it_started_is_ended():
    assert flagged(CP, *plan_family(E("ann", "cp_plan_end", 100))) == set()


def test_cp_sibling_a_new_plan_after_an_ended_one_is_active():
    people, events = plan_family(E("ann", "cp_plan_end", 50), E("ann", "cp_plan_start", 20),
                                 E("ben", "family_member_cp_alert", 60))
    # The alert predates the new plan: the latest start code is the trigger.
    assert flagged(CP, people, events) == {"ben"}


def test_cp_sibling_a_child_on_their_own_plan_is_not_flagged():
    people, events = plan_family(E("ben", "cp_plan_start", 50))
    assert flagged(CP, people, events) == set()


def test_cp_sibling_the_child_on_the_plan_is_not_their_own_sibling():
    people, events = [child("ann")], [E("ann", "cp_plan_start", 100)]
    assert flagged(CP, people, events) == set()


def test_cp_sibling_other_households_are_not_affected():
    people, events = plan_family()
    people.append(child("zoe", household="H2"))
    assert flagged(CP, people, events) == {"ben"}


def test_cp_sibling_18th_birthday_on_the_as_of_date_makes_an_adult():
    people = [child("ann"), P("sam", years_before(A, 18), "M")]
    events = [E("ann", "cp_plan_start", 100)]
    assert flagged(CP, people, events) == set()
    assert flagged("cp-parent", people, events) == {"sam"}


def test_cp_sibling_18th_birthday_the_day_after_the_as_of_date_is_still_a_child():
    people = [child("ann"), P("sam", years_before(A, 18) + timedelta(days=1), "M")]
    events = [E("ann", "cp_plan_start", 100)]
    assert flagged(CP, people, events) == {"sam"}
    assert flagged("cp-parent", people, events) == set()


def test_cp_sibling_a_plan_on_someone_who_turned_18_is_not_a_trigger():
    people = [P("sam", years_before(A, 18), "M"), child("ben")]
    assert flagged(CP, people, [E("sam", "cp_plan_start", 100)]) == set()


def test_cp_sibling_plan_started_after_the_as_of_date_is_ignored():
    people, events = [child("ann"), child("ben")], [E("ann", "cp_plan_start", -1)]
    assert flagged(CP, people, events) == set()


def test_cp_sibling_alert_dated_after_the_as_of_date_is_ignored():
    assert flagged(CP, *plan_family(E("ben", "family_member_cp_alert", -1))) == {"ben"}


def test_cp_sibling_plan_end_dated_after_the_as_of_date_is_ignored():
    assert flagged(CP, *plan_family(E("ann", "cp_plan_end", -1))) == {"ben"}


def test_cp_sibling_two_plans_one_alert_between_them_is_flagged():
    people = [child("ann"), child("ben"), child("cat")]
    plans = [E("ann", "cp_plan_start", 200), E("ben", "cp_plan_start", 50)]
    assert flagged(CP, people, [*plans, E("cat", "family_member_cp_alert", 100)]) == {"cat"}
    assert flagged(CP, people, [*plans, E("cat", "family_member_cp_alert", 50)]) == set()


def test_cp_sibling_reason_names_the_child_on_the_plan():
    people, events = plan_family()
    text = reason(CP, "ben", people, events)
    assert_names_trigger(text, people[0], events[0])
    assert "has not been ended" in text


# --- 2. cp-parent ----------------------------------------------------------------------------

PARENT = "cp-parent"


def test_cp_parent_flags_an_adult_living_with_a_child_on_a_plan():
    assert flagged(PARENT, *plan_family()) == {"mum"}


def test_cp_parent_satisfied_by_an_active_family_member_alert():
    assert flagged(PARENT, *plan_family(E("mum", "family_member_cp_alert", 100))) == set()


def test_cp_parent_satisfied_by_a_has_child_on_plan_code():
    assert flagged(PARENT, *plan_family(E("mum", "parent_of_child_on_cp_plan", 100))) == set()


def test_cp_parent_codes_dated_before_the_plan_do_not_satisfy():
    assert flagged(PARENT, *plan_family(E("mum", "parent_of_child_on_cp_plan", 101),
                                        E("mum", "family_member_cp_alert", 101))) == {"mum"}


def test_cp_parent_ended_family_member_alert_does_not_satisfy():
    assert flagged(PARENT, *plan_family(E("mum", "family_member_cp_alert", 90),
                                        E("mum", "family_member_cp_alert_end", 90))) == {"mum"}


def test_cp_parent_ended_plan_is_not_a_trigger():
    assert flagged(PARENT, *plan_family(E("ann", "cp_plan_end", 1))) == set()


def test_cp_parent_satisfying_code_after_the_as_of_date_is_ignored():
    assert flagged(PARENT, *plan_family(E("mum", "parent_of_child_on_cp_plan", -1))) == {"mum"}


def test_cp_parent_one_of_two_plans_satisfied_is_still_flagged():
    people = [child("ann"), child("ben"), adult("mum")]
    events = [E("ann", "cp_plan_start", 300), E("ben", "cp_plan_start", 30),
              E("mum", "parent_of_child_on_cp_plan", 200)]
    assert flagged(PARENT, people, events) == {"mum"}


def test_cp_parent_reason_names_the_child_on_the_plan():
    people, events = plan_family()
    assert_names_trigger(reason(PARENT, "mum", people, events), people[0], events[0])


# --- 3. domestic-abuse and 4. substance-misuse ------------------------------------------------

HOUSEHOLD_RISKS = [
    ("domestic-abuse", "domestic_abuse", "domestic_abuse_household_alert"),
    ("substance-misuse", "substance_misuse", "substance_misuse_household_alert"),
]


def home() -> list[P]:
    return [adult("dad", sex="M"), child("ann"), child("ben", 16, sex="M")]


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_flags_every_child(rule_id, risk, alert):
    assert flagged(rule_id, home(), [E("dad", risk, 30)]) == {"ann", "ben"}


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_satisfied_by_an_alert_on_or_after_the_code(rule_id, risk, alert):
    events = [E("dad", risk, 30), E("ann", alert, 30), E("ben", alert, 29)]
    assert flagged(rule_id, home(), events) == set()


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_alert_dated_before_the_code_does_not_satisfy(rule_id, risk, alert):
    events = [E("dad", risk, 30), E("ann", alert, 31), E("ben", alert, 29)]
    assert flagged(rule_id, home(), events) == {"ann"}


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_window_is_730_days_inclusive(rule_id, risk, alert):
    assert flagged(rule_id, home(), [E("dad", risk, 730)]) == {"ann", "ben"}
    assert flagged(rule_id, home(), [E("dad", risk, 731)]) == set()


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_code_after_the_as_of_date_is_ignored(rule_id, risk, alert):
    assert flagged(rule_id, home(), [E("dad", risk, -1)]) == set()
    events = [E("dad", risk, 10), E("ann", alert, -1), E("ben", alert, 0)]
    assert flagged(rule_id, home(), events) == {"ann"}


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_coded_on_a_child_is_not_a_trigger(rule_id, risk, alert):
    assert flagged(rule_id, home(), [E("ben", risk, 30)]) == set()


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_coded_on_an_18_year_old_is_a_trigger(rule_id, risk, alert):
    people = [P("sam", years_before(A, 18), "M"), child("ann")]
    assert flagged(rule_id, people, [E("sam", risk, 30)]) == {"ann"}


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_two_adults_one_alert_between_their_codes_is_flagged(rule_id, risk, alert):
    people = [adult("dad", sex="M"), adult("mum"), child("ann")]
    events = [E("dad", risk, 400), E("mum", risk, 100), E("ann", alert, 200)]
    assert flagged(rule_id, people, events) == {"ann"}
    assert flagged(rule_id, people, [*events, E("ann", alert, 100)]) == set()


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_a_newer_code_needs_a_newer_alert(rule_id, risk, alert):
    events = [E("dad", risk, 400), E("ann", alert, 300), E("dad", risk, 100)]
    assert flagged(rule_id, [adult("dad"), child("ann")], events) == {"ann"}


@pytest.mark.parametrize("rule_id, risk, alert", HOUSEHOLD_RISKS)
def test_household_risk_reason_names_the_adult(rule_id, risk, alert):
    people, events = home(), [E("dad", risk, 30)]
    assert_names_trigger(reason(rule_id, "ann", people, events), people[0], events[0])


# --- 5. parental-learning-disability -----------------------------------------------------------

LD = "parental-learning-disability"


def test_ld_flags_a_child_of_an_adult_with_a_learning_disability():
    people = [adult("mum", 30), child("ann", 8)]
    assert flagged(LD, people, [E("mum", "learning_disability", 5000)]) == {"ann"}


def test_ld_satisfied_by_a_vulnerability_alert_at_any_date():
    people = [adult("mum", 30), child("ann", 8)]
    events = [E("mum", "learning_disability", 100), E("ann", "family_vulnerability_alert", 2000)]
    assert flagged(LD, people, events) == set()


def test_ld_vulnerability_alert_after_the_as_of_date_is_ignored():
    people = [adult("mum", 30), child("ann", 8)]
    events = [E("mum", "learning_disability", 100), E("ann", "family_vulnerability_alert", -1)]
    assert flagged(LD, people, events) == {"ann"}


def test_ld_code_after_the_as_of_date_is_ignored():
    people = [adult("mum", 30), child("ann", 8)]
    assert flagged(LD, people, [E("mum", "learning_disability", -1)]) == set()


def test_ld_adult_13_years_older_is_not_a_probable_parent():
    people = [P("sis", date(2005, 3, 1)), P("ann", date(2018, 3, 1))]
    assert flagged(LD, people, [E("sis", "learning_disability", 100)]) == set()


def test_ld_adult_exactly_14_years_older_is_a_probable_parent():
    people = [P("mum", date(2004, 3, 1)), P("ann", date(2018, 3, 1))]
    assert flagged(LD, people, [E("mum", "learning_disability", 100)]) == {"ann"}
    people = [P("mum", date(2004, 3, 2)), P("ann", date(2018, 3, 1))]
    assert flagged(LD, people, [E("mum", "learning_disability", 100)]) == set()


def test_ld_14_year_gap_from_a_29_february_birthday():
    # Someone born on 29/02/2000 turns 14 on 01/03/2014 (as for the 18th birthday), so is
    # not yet 14 years older than a child born on 28/02/2014.
    people = [P("mum", date(2000, 2, 29)), P("ann", date(2014, 2, 28))]
    assert flagged(LD, people, [E("mum", "learning_disability", 100)]) == set()
    people = [P("mum", date(2000, 2, 29)), P("ann", date(2014, 3, 1))]
    assert flagged(LD, people, [E("mum", "learning_disability", 100)]) == {"ann"}


def test_ld_on_a_child_is_not_a_trigger():
    people = [child("big", 17), child("ann", 1)]
    assert flagged(LD, people, [E("big", "learning_disability", 100)]) == set()


def test_ld_reason_names_the_adult():
    people, events = [adult("mum", 30), child("ann", 8)], [E("mum", "learning_disability", 100)]
    text = reason(LD, "ann", people, events)
    assert_names_trigger(text, people[0], events[0])
    assert "probable parent" in text


# --- 6. pre-birth ------------------------------------------------------------------------------

PB = "pre-birth"


def pregnant(*events: E, risk: list[E] | None = None) -> tuple[list[P], list[E]]:
    """mum has a pregnancy code 100 days before A; dad lives with her and has a domestic
    abuse code (unless another risk is given); ann is her daughter."""
    people = [adult("mum", 28), adult("dad", 30, sex="M"), child("ann", 4)]
    risk = [E("dad", "domestic_abuse", 200)] if risk is None else risk
    return people, [E("mum", "pregnancy", 100), *risk, *events]


def test_pre_birth_flags_a_pregnant_woman_in_a_household_with_a_risk():
    assert flagged(PB, *pregnant()) == {"mum"}


def test_pre_birth_satisfied_by_an_unborn_child_code_on_or_after_the_pregnancy_code():
    assert flagged(PB, *pregnant(E("mum", "unborn_child_alert", 100))) == set()


def test_pre_birth_unborn_child_code_before_the_pregnancy_code_does_not_satisfy():
    assert flagged(PB, *pregnant(E("mum", "unborn_child_alert", 101))) == {"mum"}


def test_pre_birth_window_is_280_days_inclusive():
    people, events = pregnant()
    events[0] = E("mum", "pregnancy", 280)
    assert flagged(PB, people, events) == {"mum"}
    events[0] = E("mum", "pregnancy", 281)
    assert flagged(PB, people, events) == set()


def test_pre_birth_pregnancy_ended_by_an_outcome_code():
    assert flagged(PB, *pregnant(E("mum", "pregnancy_outcome", 10))) == set()
    assert flagged(PB, *pregnant(E("mum", "pregnancy_outcome", 100))) == set()  # same day


def test_pre_birth_outcome_before_the_pregnancy_code_is_an_earlier_pregnancy():
    assert flagged(PB, *pregnant(E("mum", "pregnancy_outcome", 400))) == {"mum"}


def test_pre_birth_events_after_the_as_of_date_are_ignored():
    assert flagged(PB, *pregnant(E("mum", "pregnancy_outcome", -1))) == {"mum"}
    assert flagged(PB, *pregnant(E("mum", "unborn_child_alert", -1))) == {"mum"}
    people, events = pregnant()
    events[0] = E("mum", "pregnancy", -1)
    assert flagged(PB, people, events) == set()


def test_pre_birth_no_household_risk_no_flag():
    assert flagged(PB, *pregnant(risk=[])) == set()


@pytest.mark.parametrize("risk, expected", [
    pytest.param([E("ann", "cp_plan_start", 50)], {"mum"}, id="child on an active plan"),
    pytest.param([E("ann", "cp_plan_start", 50), E("ann", "cp_plan_end", 20)], set(), id="plan ended"),
    pytest.param([E("dad", "domestic_abuse", 730)], {"mum"}, id="domestic abuse 730 days"),
    pytest.param([E("dad", "domestic_abuse", 731)], set(), id="domestic abuse 731 days"),
    pytest.param([E("dad", "substance_misuse", 730)], {"mum"}, id="substance misuse 730 days"),
    pytest.param([E("dad", "substance_misuse", 731)], set(), id="substance misuse 731 days"),
    pytest.param([E("dad", "learning_disability", 9000)], {"mum"}, id="learning disability any date"),
    pytest.param([E("ann", "maltreatment", 365)], {"mum"}, id="maltreatment 365 days"),
    pytest.param([E("ann", "maltreatment", 366)], set(), id="maltreatment 366 days"),
    pytest.param([E("mum", "domestic_abuse", 30)], {"mum"}, id="herself: domestic abuse"),
    pytest.param([E("mum", "learning_disability", 3000)], {"mum"}, id="herself: learning disability"),
    pytest.param([E("ann", "domestic_abuse", 30)], {"mum"}, id="a child's own domestic abuse code"),
    pytest.param([E("dad", "domestic_abuse", -1)], set(), id="risk dated after the as-of date"),
])
def test_pre_birth_each_household_risk(risk, expected):
    assert flagged(PB, *pregnant(risk=risk)) == expected


def test_pre_birth_risk_in_another_household_does_not_count():
    people, events = pregnant(risk=[E("zed", "domestic_abuse", 30)])
    people.append(adult("zed", household="H2"))
    assert flagged(PB, people, events) == set()


def test_pre_birth_a_pregnant_girl_is_flagged():
    people = [child("kim", 16), adult("mum", 40)]
    events = [E("kim", "pregnancy", 60), E("mum", "substance_misuse", 60)]
    assert flagged(PB, people, events) == {"kim"}


def test_pre_birth_a_pregnancy_code_on_a_male_record_is_not_a_trigger():
    people, events = pregnant()
    events[0] = E("dad", "pregnancy", 100)
    assert flagged(PB, people, events) == set()


def test_pre_birth_reason_names_the_pregnancy_and_the_household_risk():
    people, events = pregnant()
    text = reason(PB, "mum", people, events)
    assert code_of("pregnancy") in text and term_of("pregnancy") in text
    assert uk(events[0].date) in text
    assert "This patient" in text
    # The household risk is named too: who, which code, which date.
    dad, risk = people[1], events[1]
    assert_names_trigger(text, dad, risk)


# --- 7. maltreatment-siblings ------------------------------------------------------------------

MS = "maltreatment-siblings"


def siblings(*events: E) -> tuple[list[P], list[E]]:
    """ann was coded with a non-accidental injury 30 days before A; ben and cat are her
    siblings; mum is an adult."""
    people = [child("ann", 2), child("ben", 6, sex="M"), child("cat", 9), adult("mum")]
    return people, [E("ann", "maltreatment", 30), *events]


def test_maltreatment_flags_the_other_children():
    assert flagged(MS, *siblings()) == {"ben", "cat"}


def test_maltreatment_satisfied_by_a_safeguarding_code_on_or_after_it():
    events = [E("ben", "child_safeguarding", 30), E("cat", "child_safeguarding", 1)]
    assert flagged(MS, *siblings(*events)) == set()


def test_maltreatment_safeguarding_code_before_it_does_not_satisfy():
    events = [E("ben", "child_safeguarding", 31), E("cat", "child_safeguarding", 0)]
    assert flagged(MS, *siblings(*events)) == {"ben"}


def test_maltreatment_window_is_365_days_inclusive():
    people = [child("ann"), child("ben")]
    assert flagged(MS, people, [E("ann", "maltreatment", 365)]) == {"ben"}
    assert flagged(MS, people, [E("ann", "maltreatment", 366)]) == set()


def test_maltreatment_after_the_as_of_date_is_ignored():
    people = [child("ann"), child("ben")]
    assert flagged(MS, people, [E("ann", "maltreatment", -1)]) == set()
    events = [E("ann", "maltreatment", 5), E("ben", "child_safeguarding", -1)]
    assert flagged(MS, people, events) == {"ben"}


def test_maltreatment_coded_on_an_adult_is_not_a_trigger():
    assert flagged(MS, [adult("mum"), child("ann")], [E("mum", "maltreatment", 30)]) == set()


def test_maltreatment_two_children_coded_each_flags_the_other():
    people = [child("ann"), child("ben")]
    events = [E("ann", "maltreatment", 30), E("ben", "maltreatment", 20),
              E("ann", "child_safeguarding", 10)]
    assert flagged(MS, people, events) == {"ben"}


def test_maltreatment_one_of_two_triggers_satisfied_is_still_flagged():
    people = [child("ann"), child("ben"), child("cat")]
    events = [E("ann", "maltreatment", 300), E("ben", "maltreatment", 30),
              E("ann", "child_safeguarding", 0), E("ben", "child_safeguarding", 0)]
    # cat's code satisfies ann's trigger (300 days) but not ben's (30 days).
    assert flagged(MS, people, [*events, E("cat", "child_safeguarding", 100)]) == {"cat"}
    assert flagged(MS, people, [*events, E("cat", "child_safeguarding", 30)]) == set()


def test_maltreatment_reason_names_the_child_coded():
    people, events = siblings()
    assert_names_trigger(reason(MS, "ben", people, events), people[0], events[0])


# --- 8. stale-family-alert ---------------------------------------------------------------------

STALE = "stale-family-alert"


def alert_family(*events: E) -> tuple[list[P], list[E]]:
    """ben has a family-member-CP alert from 200 days before A; ann is his sister."""
    return [child("ann"), child("ben"), adult("mum")], [E("ben", "family_member_cp_alert", 200), *events]


def test_stale_flags_an_alert_with_no_plan_in_the_household():
    assert flagged(STALE, *alert_family()) == {"ben"}


def test_stale_not_flagged_while_a_child_is_on_an_active_plan():
    assert flagged(STALE, *alert_family(E("ann", "cp_plan_start", 300))) == set()


def test_stale_flagged_once_the_plan_has_ended():
    events = [E("ann", "cp_plan_start", 300), E("ann", "cp_plan_end", 10)]
    assert flagged(STALE, *alert_family(*events)) == {"ben"}


def test_stale_an_adult_on_an_active_plan_counts_as_a_member_on_a_plan():
    assert flagged(STALE, *alert_family(E("mum", "cp_plan_start", 300))) == set()


def test_stale_an_ended_alert_is_not_flagged():
    assert flagged(STALE, *alert_family(E("ben", "family_member_cp_alert_end", 5))) == set()


def test_stale_events_after_the_as_of_date_are_ignored():
    assert flagged(STALE, *alert_family(E("ann", "cp_plan_start", -1))) == {"ben"}
    assert flagged(STALE, *alert_family(E("ben", "family_member_cp_alert_end", -1))) == {"ben"}


def test_stale_a_plan_in_another_household_does_not_count():
    people, events = alert_family(E("zoe", "cp_plan_start", 50))
    people.append(child("zoe", household="H2"))
    assert flagged(STALE, people, events) == {"ben"}


def test_stale_alert_on_an_adult_is_not_flagged():
    assert flagged(STALE, [adult("mum")], [E("mum", "family_member_cp_alert", 50)]) == set()


def test_stale_reason_names_the_alert():
    people, events = alert_family()
    text = reason(STALE, "ben", people, events)
    assert "This patient" in text
    assert code_of("family_member_cp_alert") in text
    assert term_of("family_member_cp_alert") in text
    assert uk(events[0].date) in text


# --- across rules ------------------------------------------------------------------------------

def test_29_february_birthday_is_reached_on_1_march():
    people = [child("ann"), P("kim", date(2004, 2, 29))]
    events = [E("ann", "cp_plan_start", on=date(2022, 1, 1))]
    # On 28/02/2022 kim is 17 (a child); on 01/03/2022 she is 18 (an adult).
    assert flagged(CP, people, events, as_of=date(2022, 2, 28)) == {"kim"}
    assert flagged(PARENT, people, events, as_of=date(2022, 2, 28)) == set()
    assert flagged(CP, people, events, as_of=date(2022, 3, 1)) == set()
    assert flagged(PARENT, people, events, as_of=date(2022, 3, 1)) == {"kim"}


def test_a_patient_with_no_household_lives_alone():
    people = [child("ann", household=""), child("ben", household="")]
    assert flagged(CP, people, [E("ann", "cp_plan_start", 10)]) == set()


def test_every_flag_reason_names_its_trigger_on_a_busy_household():
    people = [adult("mum", 30), adult("dad", 33, sex="M"), child("ann", 10), child("ben", 3, sex="M")]
    events = [E("ann", "cp_plan_start", 100), E("dad", "domestic_abuse", 50),
              E("dad", "substance_misuse", 60), E("mum", "learning_disability", 4000),
              E("mum", "pregnancy", 30), E("ben", "maltreatment", 20)]
    flags = run(people, events)
    assert set(flags["rule_id"]) == {CP, PARENT, "domestic-abuse", "substance-misuse", LD, PB, MS}
    by_id = {p.id: p for p in people}
    for row in flags.itertuples():
        for pid, code, iso in zip(row.trigger_patient_ids.split(";"), row.trigger_codes.split(";"),
                                  row.trigger_dates.split(";")):
            assert code in row.reason and term_in(code, row.reason)
            assert uk(date.fromisoformat(iso)) in row.reason
            if pid == row.patient_id:
                assert "This patient" in row.reason
            else:
                assert pid in row.reason and by_id[pid].name in row.reason
        assert row.severity in {"action", "review"}
        assert row.suggested_codes


def term_in(code: str, text: str) -> bool:
    return any(cl.terms.get(code, "\0") in text for cl in ruleset().codelists.values())
