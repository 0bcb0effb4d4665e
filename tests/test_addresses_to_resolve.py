"""A record whose household cannot be settled is put in front of the lead, with the codes
that would have triggered a rule for the people it may live with (hazard: missed link)."""

from __future__ import annotations

import html

from click.testing import CliRunner

from family_link.cli import main

PATIENTS = """patient_id,surname,forenames,date_of_birth,sex,address_line_1,postcode
M1,Okoro,Ada,1990-02-03,F,"Flat 1, 12 Mill Road",WS2 8QT
C1,Okoro,Tobi,2015-04-05,M,"Flat 1, 12 Mill Road",WS2 8QT
N1,Hart,Lee,1970-06-07,M,"Flat 2, 12 Mill Road",WS2 8QT
D1,Okoro,Sam,1988-08-09,M,12 Mill Road,WS2 8QT
"""
EVENTS = """patient_id,code,term,date
D1,879911000000102,Victim of domestic abuse,2026-06-01
"""


def test_unplaced_record_with_a_trigger_is_listed_first_with_its_code(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "patients.csv").write_text(PATIENTS)
    (export / "events.csv").write_text(EVENTS)
    result = CliRunner().invoke(main, ["check", str(export), "--out", str(tmp_path / "r"), "--as-of", "2026-11-01"])
    assert result.exit_code == 0, result.output
    page = html.unescape((tmp_path / "r" / "worklist.html").read_text())
    section = page[page.index("Addresses to resolve (1)"):]
    assert "patient D1" in section
    assert "flat number missing" in section
    assert "domestic-abuse: 'Victim of domestic abuse' (879911000000102) dated 01/06/2026" in section
    # He was checked on his own: the child in flat 1 is not flagged on an unproven link.
    assert "C1,domestic-abuse" not in (tmp_path / "r" / "flags.csv").read_text()
