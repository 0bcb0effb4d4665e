"""The lead's worklist: one self-contained HTML file (no network, no external assets),
sortable and filterable in the browser, printable. Everything is HTML-escaped."""

from __future__ import annotations

__all__ = ["render_worklist_html", "worklist_rows"]

from html import escape

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Arial,sans-serif;margin:1.5rem;color:#111}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #bbb;padding:.3rem .4rem;vertical-align:top;text-align:left}
th{background:#eef;cursor:pointer;position:sticky;top:0}
.sev-action{color:#a00;font-weight:600}.sev-review{color:#850}
.warn{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem;margin:.5rem 0}
.muted{color:#555}.controls{margin:.6rem 0}.controls label{margin-right:1rem}
ul.members{margin:0;padding-left:1rem}
@media print{.controls{display:none}th{position:static}a{color:#000}}
"""

_JS = """
(function(){
  var table=document.getElementById('flags'); if(!table) return;
  var body=table.tBodies[0];
  function apply(){
    var rule=document.getElementById('f-rule').value, sev=document.getElementById('f-sev').value,
        text=document.getElementById('f-text').value.toLowerCase(), shown=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var ok=(!rule||r.dataset.rule===rule)&&(!sev||r.dataset.severity===sev)&&
             (!text||r.textContent.toLowerCase().indexOf(text)>=0);
      r.style.display=ok?'':'none'; if(ok) shown++;
    });
    document.getElementById('shown').textContent=shown;
  }
  ['f-rule','f-sev','f-text'].forEach(function(id){
    document.getElementById(id).addEventListener('input',apply);});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){
      var asc=th.dataset.asc!=='1'; th.dataset.asc=asc?'1':'0';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=a.cells[i].dataset.key||a.cells[i].textContent,
        y=b.cells[i].dataset.key||b.cells[i].textContent; return asc?x.localeCompare(y):y.localeCompare(x);});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  apply();
})();
"""


def worklist_rows(flags: pd.DataFrame, patients: pd.DataFrame, households: pd.DataFrame) -> pd.DataFrame:
    """Flags joined with who the patient is and who they live with."""
    people = patients[["patient_id", "forenames", "surname", "date_of_birth", "nhs_number"]]
    members = households.merge(people, on="patient_id", how="left")
    members["member"] = (members["forenames"] + " " + members["surname"]).str.strip() + " (" + \
        members["patient_id"] + ", " + members["role"].astype(str) + ")"
    member_lists = (members.sort_values(["household_id", "patient_id"])
                    .groupby("household_id")["member"].agg(list))
    rows = flags.merge(people, on="patient_id", how="left")
    rows["name"] = (rows["forenames"] + " " + rows["surname"]).str.strip()
    rows["dob"] = rows["date_of_birth"].dt.strftime("%d/%m/%Y")
    rows["dob_key"] = rows["date_of_birth"].dt.strftime("%Y-%m-%d")
    rows["members"] = rows["household_id"].map(member_lists)
    return rows


def _summary_table(flags: pd.DataFrame, rule_titles: dict[str, str]) -> str:
    counts = flags.groupby(["rule_id", "severity"]).size() if len(flags) else pd.Series(dtype=int)
    out = ["<table><thead><tr><th>Rule</th><th>Severity</th><th>Flags</th></tr></thead><tbody>"]
    for rule_id, title in rule_titles.items():
        sub = counts[counts.index.get_level_values(0) == rule_id] if len(counts) else counts
        n = int(sub.sum()) if len(sub) else 0
        sev = sub.index[0][1] if len(sub) else ""
        out.append(f"<tr><td>{escape(title)} <span class='muted'>({escape(rule_id)})</span></td>"
                   f"<td>{escape(sev)}</td><td>{n}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_worklist_html(rows: pd.DataFrame, *, rule_titles: dict[str, str], as_of: str,
                         facts: list[tuple[str, str]], warnings: list[str]) -> bytes:
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
             "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
             f"<title>family_link worklist, as of {escape(as_of)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Safeguarding coding worklist, as of {escape(as_of)}</h1>",
             "<p class='muted'>Records whose household's codes call for a family-level safeguarding code "
             "they do not carry. This list supports, and never replaces, the safeguarding lead's judgement: "
             "check each entry against the record before coding.</p>"]
    for w in warnings:
        parts.append(f"<div class='warn'>{escape(w)}</div>")
    parts.append("<h2>Summary</h2><table><tbody>")
    for label, value in facts:
        parts.append(f"<tr><th scope='row'>{escape(label)}</th><td>{escape(value)}</td></tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Flags by rule</h2>" + _summary_table(rows, rule_titles))
    parts.append("<h2>Worklist</h2><div class='controls'><label>Rule <select id='f-rule'>"
                 "<option value=''>all</option>")
    for rule_id, title in rule_titles.items():
        parts.append(f"<option value='{escape(rule_id)}'>{escape(title)}</option>")
    parts.append("</select></label><label>Severity <select id='f-sev'><option value=''>all</option>"
                 "<option value='action'>action</option><option value='review'>review</option></select></label>"
                 "<label>Search <input id='f-text' type='search'></label>"
                 "<span class='muted'>Showing <span id='shown'></span> of " + str(len(rows)) + "</span></div>")
    parts.append("<table id='flags'><thead><tr><th>Patient</th><th>Date of birth</th><th>NHS number</th>"
                 "<th>Rule</th><th>Severity</th><th>Why</th><th>Codes to consider</th>"
                 "<th>Household</th></tr></thead><tbody>")
    for r in rows.itertuples(index=False):
        members = "".join(f"<li>{escape(m)}</li>" for m in (r.members if isinstance(r.members, list) else []))
        parts.append(
            f"<tr data-rule='{escape(r.rule_id)}' data-severity='{escape(r.severity)}'>"
            f"<td>{escape(r.name)}<br><span class='muted'>{escape(r.patient_id)}</span></td>"
            f"<td data-key='{escape(r.dob_key)}'>{escape(r.dob)}</td><td>{escape(r.nhs_number)}</td>"
            f"<td>{escape(r.title)}<br><span class='muted'>SCR W6 Rec {escape(r.recommendations)}</span></td>"
            f"<td class='sev-{escape(r.severity)}'>{escape(r.severity)}</td><td>{escape(r.reason)}</td>"
            f"<td>{escape(r.suggested_codes)}</td>"
            f"<td><span class='muted'>{escape(r.household_id)}</span><ul class='members'>{members}</ul></td></tr>")
    parts.append(f"</tbody></table><script>{_JS}</script></body></html>\n")
    return "".join(parts).encode("utf-8")
