"""Rules as validated data.

Three tiers: YAML files in ``rules/`` -> the frozen pydantic models here -> the engine
(``engine.py``) over pandas frames. Nothing clinical is written in Python: the codes live in
``rules/codelists/*.csv`` and the logic in ``rules/*.yaml``.

``load_ruleset(rules_dir)`` reads and validates everything up front and raises one
``RulesError`` listing every problem it found (unknown keys, unknown codelists, bad
windows, suggested codes in no codelist, ...), before any patient data is read.
"""

from __future__ import annotations

__all__ = [
    "Audience",
    "CodeCondition",
    "Codelist",
    "Rule",
    "RuleSet",
    "Satisfier",
    "Target",
    "TargetGroup",
    "Trigger",
    "load_codelists",
    "load_ruleset",
    "parse_rule",
    "default_rules_dir",
]

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import Problem, RulesError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE][+\-]?\d+$")


def default_rules_dir() -> Path:
    """The rules shipped with the project: ``rules/`` at the repository root, or the copy
    installed next to the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "rules", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "rules"


class Audience(str, Enum):
    """Whose codes a condition looks at."""

    child = "child"  # under 18 at the as-of date
    adult = "adult"  # 18 or over at the as-of date
    female = "female"  # any age
    any = "any"


class TargetGroup(str, Enum):
    """Who a rule asks to carry the alert, relative to the trigger."""

    children = "children"  # every child of the household
    adults = "adults"  # every adult of the household
    trigger_person = "trigger_person"  # the person whose code triggered the rule
    other_children = "other_children"  # every child of the household except the trigger person


def _check_active(active: bool, ended_by: str | None) -> None:
    if active and not ended_by:
        raise ValueError("'active: true' needs 'ended_by' (the codelist that ends the status)")
    if ended_by and not active:
        raise ValueError("'ended_by' is only used with 'active: true'; add it or remove 'ended_by'")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeCondition(_Frozen):
    """Codes from ``codelist`` on a person.

    With ``active: true`` the status must be current: the person's latest code from
    ``codelist`` has no code from ``ended_by`` dated on or after it. ``within_days``
    limits the (latest) code to the N days up to the as-of date; absent means any date.
    """

    codelist: str
    ended_by: str | None = None
    active: bool = False
    within_days: int | None = Field(default=None, ge=0)
    who: Audience = Audience.any

    @model_validator(mode="after")
    def _active_needs_end(self) -> "CodeCondition":
        _check_active(self.active, self.ended_by)
        return self

    def describe(self, codelists: "dict[str, Codelist]") -> str:
        who = {
            Audience.child: "a child",
            Audience.adult: "an adult",
            Audience.female: "a woman or girl",
            Audience.any: "anyone",
        }[self.who]
        name = codelists[self.codelist].title if self.codelist in codelists else self.codelist
        text = f"{who} with a '{name}' code"
        if self.active:
            end = codelists[self.ended_by].title if self.ended_by in codelists else self.ended_by
            text += f" that is still active (no '{end}' code dated on or after it)"
        if self.within_days is not None:
            text += f" dated within the {self.within_days} days up to the as-of date"
        else:
            text += " at any date"
        return text


class Trigger(CodeCondition):
    """What starts a rule: codes on a household member."""


class Satisfier(_Frozen):
    """Codes on the target that mean the alert is already there."""

    codelist: str
    ended_by: str | None = None
    active: bool = False
    dated: Literal["on_or_after_trigger", "any_time"] = "on_or_after_trigger"

    @model_validator(mode="after")
    def _active_needs_end(self) -> "Satisfier":
        _check_active(self.active, self.ended_by)
        return self

    def describe(self, codelists: "dict[str, Codelist]") -> str:
        name = codelists[self.codelist].title if self.codelist in codelists else self.codelist
        text = f"{'an active ' if self.active else 'a '}'{name}' code"
        text += " dated on or after the trigger" if self.dated == "on_or_after_trigger" else " at any date"
        return text


class Target(_Frozen):
    group: TargetGroup
    # The trigger person must be at least this many years older than the target
    # (by date of birth), e.g. 14 for "a probable parent".
    trigger_person_older_by_years: int | None = Field(default=None, ge=0, le=100)
    # A target matching any of these is out of scope (e.g. a child on their own plan).
    unless: tuple[CodeCondition, ...] = ()


class Rule(_Frozen):
    id: str
    title: str
    recommendations: tuple[int, ...] = Field(min_length=1)
    severity: Literal["action", "review"]
    explanation: str
    trigger: Trigger
    target: Target
    household_has_any: tuple[CodeCondition, ...] = ()
    household_has_none: tuple[CodeCondition, ...] = ()
    satisfied_by: tuple[Satisfier, ...] = ()
    # Plain-English sentence for what the record lacks; {trigger_date} is filled in.
    missing: str
    suggest: tuple[str, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lower-case letters, digits and hyphens, e.g. 'cp-sibling'")
        return value

    @field_validator("recommendations")
    @classmethod
    def _scr_w6(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [v for v in value if not 1 <= v <= 11]
        if bad:
            raise ValueError(f"SCR W6 has recommendations 1 to 11; got {bad}")
        return value

    def codelist_names(self) -> list[str]:
        names: list[str] = []
        conditions: list[Any] = [self.trigger, *self.target.unless, *self.household_has_any,
                                 *self.household_has_none, *self.satisfied_by]
        for c in conditions:
            names.append(c.codelist)
            if c.ended_by:
                names.append(c.ended_by)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Codelist:
    name: str
    title: str
    codes: frozenset[str]
    terms: dict[str, str] = field(hash=False, compare=False)
    path: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    codelists: dict[str, Codelist] = field(hash=False)
    directory: str = ""
    sha256: str = ""  # over every rule and codelist file, in name order

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def term(self, code: str) -> str:
        for cl in self.codelists.values():
            if code in cl.terms:
                return cl.terms[code]
        return ""


def _title_from_name(name: str) -> str:
    words = name.replace("-", "_").split("_")
    fixes = {"cp": "CP", "ld": "LD"}
    return " ".join(fixes.get(w, w) for w in words)


def parse_codelist(name: str, text: str, *, path: str = "") -> tuple[Codelist, list[Problem]]:
    """A codelist CSV in the OpenCodelists layout: ``code`` and ``term`` columns at least."""
    problems: list[Problem] = []
    label = path or f"{name}.csv"
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("code", "term") if c not in header]
    if missing:
        problems.append(Problem(label, f"missing column(s) {', '.join(missing)}", row=1,
                                hint="a codelist needs at least 'code,term' columns"))
        return Codelist(name, _title_from_name(name), frozenset(), {}, label), problems
    terms: dict[str, str] = {}
    for i, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        code = row.get("code", "")
        if not code:
            problems.append(Problem(label, "empty code", row=i, column="code"))
            continue
        if _SCIENTIFIC.match(code) or " " in code:
            problems.append(Problem(label, f"code '{code}' is not a valid code", row=i, column="code",
                                    hint="a spreadsheet may have turned a SNOMED ID into 3.42E+14; re-export as text"))
            continue
        terms[code] = row.get("term", "")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Codelist(name, _title_from_name(name), frozenset(terms), terms, label, sha), problems


def load_codelists(directory: Path) -> tuple[dict[str, Codelist], list[Problem]]:
    problems: list[Problem] = []
    codelists: dict[str, Codelist] = {}
    if not directory.is_dir():
        return {}, [Problem(str(directory), "codelist folder not found",
                            hint="rules need a 'codelists' folder beside the rule files")]
    for path in sorted(directory.glob("*.csv")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot be read as UTF-8 text ({exc.__class__.__name__})"))
            continue
        cl, found = parse_codelist(path.stem, text, path=str(path))
        codelists[cl.name] = cl
        problems.extend(found)
    return codelists, problems


def _pydantic_problems(label: str, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against docs/rules.md)"
        out.append(Problem(label, msg, column=loc or None))
    return out


def parse_rule(data: Any, *, label: str = "<rule>") -> tuple[Rule | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [Problem(label, "a rule file must be a YAML mapping of keys to values")]
    try:
        return Rule.model_validate(data), []
    except ValidationError as exc:
        return None, _pydantic_problems(label, exc)


def _check_references(rule: Rule, label: str, codelists: dict[str, Codelist]) -> list[Problem]:
    problems = []
    for name in rule.codelist_names():
        if name not in codelists:
            problems.append(Problem(label, f"unknown codelist '{name}'",
                                    hint=f"add rules/codelists/{name}.csv or fix the name; known: "
                                         + ", ".join(sorted(codelists)) if codelists else None))
    known_codes = set().union(*(cl.codes for cl in codelists.values())) if codelists else set()
    for code in rule.suggest:
        if code not in known_codes:
            problems.append(Problem(label, f"suggested code '{code}' is in no codelist", column="suggest",
                                    hint="suggest only codes from a shipped codelist, so every code is sourced"))
    return problems


def load_ruleset(rules_dir: Path | str | None = None) -> RuleSet:
    """Read ``rules_dir/*.yaml`` and ``rules_dir/codelists/*.csv``; validate everything and
    raise one ``RulesError`` listing every problem."""
    directory = Path(rules_dir) if rules_dir is not None else default_rules_dir()
    problems: list[Problem] = []
    if not directory.is_dir():
        raise RulesError([Problem(str(directory), "rules folder not found",
                                  hint="give --rules the folder holding the *.yaml rule files")])
    codelists, found = load_codelists(directory / "codelists")
    problems.extend(found)
    digest = hashlib.sha256()
    rules: list[Rule] = []
    files = sorted(list(directory.glob("*.yaml")) + list(directory.glob("*.yml")))
    if not files:
        problems.append(Problem(str(directory), "no rule files (*.yaml) found"))
    for path in files:
        label = str(path)
        try:
            raw = path.read_bytes()
            data = yaml.safe_load(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(label, f"cannot be read ({exc.__class__.__name__})"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(Problem(label, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                    row=(mark.line + 1) if mark else None))
            continue
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        rule, found = parse_rule(data, label=label)
        problems.extend(found)
        if rule is not None:
            problems.extend(_check_references(rule, label, codelists))
            rules.append(rule)
    seen: dict[str, int] = {}
    for r in rules:
        seen[r.id] = seen.get(r.id, 0) + 1
    for rid, n in seen.items():
        if n > 1:
            problems.append(Problem(str(directory), f"rule id '{rid}' is used by {n} files; ids must be unique"))
    if problems:
        raise RulesError(problems)
    for name in sorted(codelists):
        digest.update(name.encode() + b"\0" + codelists[name].sha256.encode() + b"\0")
    return RuleSet(tuple(rules), codelists, str(directory), digest.hexdigest())
