"""The rules' work that needs no households, done ahead (``prepare_rules``) and with the
reader's integers for the events' codes (``Export.event_codes``): the same evaluation as
``evaluate_rules`` given neither; ``ExportReading.after_events`` runs work once the events
are parsed, whether they were read in full or in the background."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from family_link import engine
from family_link._export import EventCodes, Export, ExportReading, start_export
from family_link.engine import RULE_PATIENT_COLUMNS, evaluate_rules, prepare_rules
from family_link.errors import ExportError
from family_link.households import link_households
from family_link.layouts import load_any_export

from test_engine_arrow_paths import CODES, RULESET, A, practices

SAMPLE = Path(__file__).parents[1] / "sample_data" / "practice"


def _codes_of(events: pd.DataFrame) -> EventCodes:
    """What the reader keeps of a frame's code column (a distinct code may repeat, as two
    raw spellings can normalise to one: the second half of ``distinct`` repeats the first)."""
    of, distinct = pd.factorize(events["code"])
    distinct = np.asarray(distinct, dtype=object)
    of = np.where(np.arange(len(of)) % 2 == 1, of + len(distinct), of)
    return EventCodes(of, np.concatenate([distinct, distinct]), events["code"].array._ndarray)


def _equal(a: engine.Evaluation, b: engine.Evaluation) -> None:
    pd.testing.assert_frame_equal(a.flags, b.flags, check_exact=True)
    pd.testing.assert_frame_equal(a.scope, b.scope, check_exact=True)
    pd.testing.assert_frame_equal(a.coded_events, b.coded_events, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(practice=practices())
def test_prepared_or_with_codes_the_evaluation_is_the_same(practice):
    patients, events, households, relationships = practice
    plain = evaluate_rules(RULESET, patients, events, households, A, relationships)
    codes = _codes_of(events)
    _equal(plain, evaluate_rules(RULESET, patients, events, households, A, relationships, event_codes=codes))
    for given_codes in (None, codes):
        prepared = prepare_rules(RULESET, patients[RULE_PATIENT_COLUMNS], events, A, given_codes)
        _equal(plain, evaluate_rules(RULESET, patients, events, households, A, relationships, prepared=prepared))
        # The prepared part is not changed by an evaluation: a second one gives the same.
        _equal(plain, evaluate_rules(RULESET, patients, events, households, A, relationships, prepared=prepared))


@settings(max_examples=100, deadline=None)
@given(codes=st.lists(st.sampled_from(CODES + ["XXXX1", "", "123456", "Y1234"]), max_size=40))
def test_codelist_events_by_distinct_code_are_the_row_test(codes):
    index = np.arange(len(codes)) * 3 + 7
    events = pd.DataFrame({"code": pd.Series(codes, dtype=object, index=index), "n": np.arange(len(codes))},
                          index=index)
    pd.testing.assert_frame_equal(engine._codelist_events(RULESET, events, _codes_of(events)),
                                  engine._codelist_events(RULESET, events), check_exact=True)


def test_codes_of_another_column_are_not_used():
    events = pd.DataFrame({"code": pd.Series(["XXXX1", CODES[0]], dtype=object)})
    codes = _codes_of(events)
    assert codes.describes(events)
    replaced = events.assign(code=pd.Series([CODES[0], "XXXX1"], dtype=object))
    assert not codes.describes(replaced)
    assert not codes.describes(events.iloc[:1])
    assert not codes.describes(events.drop(columns="code"))
    # Codes that no longer describe the frame are ignored (they would keep the wrong row).
    assert list(engine._codelist_events(RULESET, replaced, codes)["code"]) == [CODES[0]]


def test_the_reader_keeps_the_codes_of_the_events_it_returns():
    export = load_any_export(SAMPLE, A)
    codes = export.event_codes
    assert codes is not None and codes.describes(export.events)
    assert (codes.distinct[codes.of] == export.events["code"].to_numpy()).all()
    # Not part of the Export's comparison or repr (a private aid for the engine).
    assert "event_codes" not in repr(export)
    assert export == Export(export.patients, export.events, export.relationships, export.rejected,
                            export.warnings, export.files, export.export_date, export.layout)


def test_prepared_for_other_inputs_is_refused():
    export = load_any_export(SAMPLE, A)
    households = link_households(export.patients, export.relationships, A)
    prepared = prepare_rules(RULESET, export.patients, export.events, A, export.event_codes)
    args = (RULESET, export.patients, export.events, households, A, export.relationships)
    _equal(evaluate_rules(*args), evaluate_rules(*args, prepared=prepared))
    with pytest.raises(ValueError):
        evaluate_rules(RULESET, export.patients, export.events.copy(), households, A, prepared=prepared)
    with pytest.raises(ValueError):
        evaluate_rules(RULESET, export.patients, export.events, households, date(2026, 10, 1), prepared=prepared)
    with pytest.raises(ValueError):
        evaluate_rules(RULESET, export.patients.iloc[1:], export.events, households, A, prepared=prepared)


@pytest.mark.parametrize("defer", [False, True])
def test_after_events_gives_the_function_of_the_export(defer):
    reading = start_export(SAMPLE, A, defer_events=defer)
    seen: list[str] = []

    def prepare(export: Export):
        seen.append(threading.current_thread().name)
        return prepare_rules(RULESET, export.patients, export.events, A, export.event_codes)

    later = reading.after_events(prepare)
    export = reading.export()
    prepared = later.result()
    assert later.result() is prepared and len(seen) == 1
    assert prepared.events is export.events
    # Read in full: run when asked, on the asking thread; else beside, on a thread of its own.
    assert (seen[0] == threading.current_thread().name) is not defer
    households = link_households(export.patients, export.relationships, A)
    args = (RULESET, export.patients, export.events, households, A, export.relationships)
    _equal(evaluate_rules(*args), evaluate_rules(*args, prepared=prepared))


def test_after_events_raises_the_events_error(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("patients.csv", "relationships.csv"):
        (folder / name).write_bytes((SAMPLE / name).read_bytes())
    # A column of month-first dates is refused as a whole (an ExportError of the events' values).
    rows = "".join(f"P000001,X,t,04/{13 + i}/2020\n" for i in range(3))
    (folder / "events.csv").write_text("patient_id,code,term,date\n" + rows)
    reading = start_export(folder, A, defer_events=True)
    later = reading.after_events(lambda export: pytest.fail("called without events"))
    with pytest.raises(ExportError):
        later.result()
    with pytest.raises(ExportError):
        reading.export()


def test_after_events_of_a_read_export_runs_when_asked():
    export = load_any_export(SAMPLE, A)
    calls = []
    later = ExportReading.of(export).after_events(lambda e: calls.append(e) or len(calls))
    assert calls == []
    assert later.result() == 1 and later.result() == 1 and calls == [export]


def test_a_bug_in_the_rules_preparation_is_raised_and_leaves_no_report(tmp_path, monkeypatch):
    # prepare_rules runs on the events' background thread beside the linkage: its error
    # must reach the command (exit 1, a bug) before any report folder is made.
    from click.testing import CliRunner

    from family_link import check as check_module
    from family_link.cli import main

    def crash(*args, **kwargs):
        raise RuntimeError("a bug in the rules' preparation")
    monkeypatch.setattr(check_module, "prepare_rules", crash)
    with pytest.raises(RuntimeError, match="a bug in the rules' preparation"):
        CliRunner().invoke(main, ["check", "sample_data/practice", "--out", str(tmp_path / "r"),
                                  "--as-of", "2026-11-01"], catch_exceptions=False)
    assert list(tmp_path.iterdir()) == []  # neither the report nor a partial folder
