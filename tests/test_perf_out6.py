"""perf-out6: build_worklist hands each file to a writer as soon as it is rendered."""

from __future__ import annotations

from datetime import date

import pandas as pd

from family_link.worklist import WorklistFacts, build_worklist


def _inputs():
    patients = pd.DataFrame({"patient_id": ["A", "B", "C"], "forenames": ["Amy", "Sam", "Jo"],
                             "surname": ["Price", "Price", "Bell"],
                             "date_of_birth": pd.to_datetime(["2014-05-06", "2016-07-08", "1980-01-02"]),
                             "nhs_number": ["", "", ""], "address_line_1": ["1 Mill Road", "1 Mill Road", "Flat, Tower"],
                             "postcode": ["WS2 8QT", "WS2 8QT", "WS1 1AA"]})
    households = pd.DataFrame({"patient_id": ["A", "B", "C"], "household_id": ["H1", "H1", "H2"],
                               "role": ["child", "child", "adult"], "ambiguous": [False, False, True],
                               "link_evidence": ["", "", "flat number missing"], "relationship_notes": ["", "", ""]})
    flags = pd.DataFrame({"patient_id": ["B", "A"], "household_id": ["H1", "H1"], "rule_id": ["r", "r"],
                          "severity": ["action", "action"], "title": ["Rule", "Rule"], "recommendations": ["11", "11"],
                          "reason": ["why", "why"], "suggested_codes": ["1 x", "=2 y"]})
    facts = WorklistFacts(as_of=date(2026, 11, 1), rule_titles={"r": "Rule"}, rule_severities={"r": "action"})
    return flags, pd.DataFrame(), patients, households, facts


def test_write_gets_each_file_once_with_the_bytes_otherwise_returned():
    returned = build_worklist(*_inputs())
    assert list(returned) == ["worklist.html", "worklist.csv", "worklist.xlsx"]
    written = []
    assert build_worklist(*_inputs(), write=lambda name, content: written.append((name, content))) == {}
    assert written == list(returned.items())
    assert all(content for _, content in written)


def test_the_html_and_csv_are_written_before_the_xlsx_is_awaited(monkeypatch):
    import family_link.worklist as W

    order = []
    real = W.render_worklist_xlsx

    def slow_xlsx(*args, **kwargs):
        import time
        time.sleep(0.3)
        order.append("xlsx rendered")
        return real(*args, **kwargs)

    monkeypatch.setattr(W, "render_worklist_xlsx", slow_xlsx)
    W.build_worklist(*_inputs(), write=lambda name, content: order.append(name))
    assert order == ["worklist.html", "worklist.csv", "xlsx rendered", "worklist.xlsx"]
