"""Writing one synthetic practice in each clinical system's layout, so a test can check that
``check`` reads the same practice the same way whatever the layout.

``write_practice_as(practice, out_dir, layout)`` writes the export into ``out_dir`` (a
folder: one CSV file for the one-file layouts, the SR*.csv files for a SystmOne extract)
and the truth into ``out_dir/truth`` as ``write_practice`` does. Patient ids are kept in
every layout (the EMIS Number, the Anonymised Identifier, SystmOne's RowIdentifier or
Patient ID), and address lines are written in order into the vendor's address fields, so
the same free text reaches the household linker. Each layout also carries the quirks real
exports have (metadata lines, continuation rows, a byte-order mark, CRLF, cp1252, address
history, ended relationships, repeated column names).

Two things a layout cannot hold are reported in the returned notes, never dropped silently:
recorded relationships (only the canonical export and the SystmOne extract hold them) and
clinical-system household ids (only the canonical export).
"""

from __future__ import annotations

__all__ = ["WRITE_LAYOUTS", "write_practice_as"]

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ._export import ADDRESS_LINES, parse_dates
from .generate import SyntheticPractice, _write_csv, write_practice

WRITE_LAYOUTS = ["canonical", "emis", "emis-pseudonymised", "systmone-sre", "systmone-cr"]

EMIS_PATIENT_HEADER = ["EMIS Number", "NHS Number", "Surname", "Forenames", "Date of Birth", "Gender",
                       "House Name/Flat", "Number and Street", "Village", "Town", "County", "Postcode"]
CR_PATIENT_HEADER = ["Patient ID", "NHS number", "Surname", "Given name", "Date of birth", "Gender",
                     "House name", "Number and road", "Locality", "Post town", "County", "Postcode"]
_NUMBER_ROAD = r"^(\d+[A-Za-z]?) (\S.*)$"  # split only where joining back gives the same text
_FIRST_MIDDLE = r"^(\S+) (\S.*)$"


def _uk(values: pd.Series) -> pd.Series:
    return parse_dates(values, allow_month=True).dt.strftime("%d/%m/%Y").fillna("")


def _sre_date(values: pd.Series | pd.DatetimeIndex, time: str = "00:00:00") -> pd.Series:
    return pd.to_datetime(pd.Series(values)).dt.strftime("%d %b %Y " + time).fillna("")


def _write_rows(path: Path, header: list[str] | None, rows: pd.DataFrame, *, encoding: str = "utf-8",
                crlf: bool = False, quote_all: bool = False, preamble: list[list[str]] = ()) -> None:
    terminator = "\r\n" if crlf else "\n"
    try:
        fh = open(path, "w", newline="", encoding=encoding)
        with fh:
            writer = csv.writer(fh, lineterminator=terminator,
                                quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
            writer.writerows(preamble)
            if header is not None:
                writer.writerow(header)
            writer.writerows(rows.itertuples(index=False, name=None))
    except UnicodeEncodeError:  # a value cp1252 cannot hold: write UTF-8 instead
        _write_rows(path, header, rows, encoding="utf-8-sig", crlf=crlf, quote_all=quote_all,
                    preamble=preamble)


def _nhs_spaced(values: pd.Series) -> pd.Series:
    ten = values.str.fullmatch(r"\d{10}")
    spaced = values.str[:3] + " " + values.str[3:6] + " " + values.str[6:]
    return spaced.where(ten, values)


def _emis(practice: SyntheticPractice, out: Path, pseudonymised: bool) -> None:
    p, e = practice.patients, practice.events
    header = list(EMIS_PATIENT_HEADER)
    if pseudonymised:
        header[0] = "Anonymised Identifier"
    patient_cols = pd.DataFrame({
        "id": p["patient_id"], "nhs": _nhs_spaced(p["nhs_number"]), "surname": p["surname"],
        "forenames": p["forenames"], "dob": _uk(p["date_of_birth"]),
        "sex": p["sex"].map({"F": "Female", "M": "Male"}).fillna("Unknown"),
        **{line: p[line] for line in ADDRESS_LINES}, "postcode": p["postcode"]})
    ev = pd.DataFrame({"id": e["patient_id"], "code": e["code"], "term": e["term"], "date": _uk(e["date"])})
    ev["n"] = ev.groupby("id", sort=False).cumcount()
    first = patient_cols.merge(ev[ev["n"] == 0], on="id", how="left")
    first["n"] = 0
    first["pos"] = np.arange(len(first))
    pos_of = pd.Series(first["pos"].to_numpy(), index=first["id"].to_numpy())
    more = ev[ev["n"] > 0].copy()
    more["pos"] = pos_of.reindex(more["id"]).to_numpy()
    for c in patient_cols.columns:
        more[c] = ""
    rows = pd.concat([first, more[first.columns]], ignore_index=True)
    rows = rows.sort_values(["pos", "n"], kind="mergesort")
    rows = rows[[*patient_cols.columns, "code", "term", "date"]].fillna("")
    stamp = practice.as_of.strftime("%d/%m/%Y")
    preamble = [["Family link safeguarding extract"], ["Last Run", f"{stamp} 09:30"],
                ["Population Count", str(len(p))], [],
                ["Patient Details", *[""] * (len(header) - 1), "Event Details", "", ""]]
    _write_rows(out / "emis_list_report.csv", [*header, "Code", "Term", "Date"], rows,
                encoding="utf-8-sig", crlf=True, quote_all=True, preamble=preamble)


def _address_history(p: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The current permanent address of every patient, plus history that must not win:
    an earlier permanent address (ended) for every 5th patient and a temporary address for
    every 7th. AddressType is written as a word or a number, as SystmOne does."""
    dob = parse_dates(p["date_of_birth"], allow_month=True)
    mid = dob + (as_of - dob) / 2
    i = np.arange(len(p))
    moved = i % 5 == 1
    number_road = p["address_line_2"].str.extract(_NUMBER_ROAD)
    split = number_road[0].notna()
    current = pd.DataFrame({
        "IDPatient": p["patient_id"], "AddressType": np.where(i % 2 == 0, "Permanent", "0"),
        "DateEvent": _sre_date(mid.where(moved, dob).dt.floor("D")), "DateTo": "",
        "NameOfBuilding": p["address_line_1"], "NumberOfBuilding": number_road[0].where(split, ""),
        "NameOfRoad": number_road[1].where(split, p["address_line_2"]),
        "NameOfLocality": p["address_line_3"], "NameOfTown": p["address_line_4"],
        "NameOfCounty": p["address_line_5"], "FullPostCode": p["postcode"], "_pos": i, "_k": 1})
    old = current[moved].copy()
    old["AddressType"] = "Permanent"
    old["DateEvent"] = _sre_date(dob[moved].dt.floor("D"))
    old["DateTo"] = _sre_date((mid[moved] - pd.Timedelta(days=1)).dt.floor("D"))
    old[["NameOfBuilding", "NumberOfBuilding", "NameOfRoad"]] = ["", "1", "Former Road"]
    old["FullPostCode"] = "WS9 9ZZ"
    old["_k"] = 0
    temp = current[i % 7 == 3].copy()
    temp["AddressType"] = np.where(np.arange(len(temp)) % 2 == 0, "Temporary", "1")
    temp[["NameOfBuilding", "NumberOfBuilding", "NameOfRoad", "FullPostCode"]] = [
        "Holiday Flat", "2", "Seaside Road", "LL30 1AA"]
    temp["_k"] = 2
    out = pd.concat([old, current, temp]).sort_values(["_pos", "_k"], kind="mergesort")
    return out.drop(columns=["_pos", "_k"])


def _systmone_sre(practice: SyntheticPractice, out: Path) -> None:
    p, e, r = practice.patients, practice.events, practice.relationships
    as_of = pd.Timestamp(practice.as_of)
    names = p["forenames"].str.extract(_FIRST_MIDDLE)
    split = names[0].notna()
    patients = pd.DataFrame({
        "RowIdentifier": p["patient_id"], "IDOrganisation": "99999",
        "NHSNumber": p["nhs_number"], "FirstName": names[0].where(split, p["forenames"]),
        "MiddleNames": names[1].where(split, ""), "Surname": p["surname"],
        "DateBirth": _sre_date(parse_dates(p["date_of_birth"], allow_month=True)), "Gender": p["sex"]})
    _write_rows(out / "SRPatient.csv", list(patients.columns), patients)
    history = _address_history(p, as_of)
    _write_rows(out / "SRPatientAddressHistory.csv", list(history.columns), history, crlf=True)
    snomed = e["code"].str.fullmatch(r"\d{6,18}")
    codes = pd.DataFrame({
        "RowIdentifier": np.arange(1, len(e) + 1).astype(str), "IDPatient": e["patient_id"],
        "DateEvent": _sre_date(parse_dates(e["date"]), "14:53:28"),
        "CTV3Code": e["code"].where(~snomed, ""), "CTV3Text": e["term"].where(~snomed, ""),
        "SNOMEDCode": e["code"].where(snomed, ""), "SNOMEDText": e["term"].where(snomed, "")})
    _write_rows(out / "SRCode.csv", list(codes.columns), codes)
    parental = r["relationship"].isin(["mother", "father", "parent", "guardian"])
    rel = pd.DataFrame({
        "IDPatient": r["patient_id"], "IDPatientRelationshipWith": r["related_patient_id"],
        "RelationshipType": r["relationship"].str.title(),
        "HasParentalResponsibility": np.where(parental, "TRUE", "FALSE"), "DateEnded": ""})
    ended = rel.iloc[::10].copy()  # ended relationships: history that must not count
    ended["RelationshipType"] = "Carer"
    ended["HasParentalResponsibility"] = "FALSE"
    ended["DateEnded"] = _sre_date(pd.Series([as_of - pd.Timedelta(days=400)] * len(ended))).to_numpy()
    rel = pd.concat([rel, ended], ignore_index=True)
    _write_rows(out / "SRPatientRelationship.csv", list(rel.columns), rel)


def _systmone_cr(practice: SyntheticPractice, out: Path) -> None:
    p, e = practice.patients, practice.events
    base = pd.DataFrame({
        "id": p["patient_id"], "nhs": p["nhs_number"], "surname": p["surname"],
        "forenames": p["forenames"], "dob": _uk(p["date_of_birth"]), "sex": p["sex"],
        **{line: p[line] for line in ADDRESS_LINES}, "postcode": p["postcode"]})
    ev = pd.DataFrame({"id": e["patient_id"], "code": e["code"], "term": e["term"], "date": _uk(e["date"])})
    ev["n"] = ev.groupby("id", sort=False).cumcount()
    k = int(ev["n"].max()) + 1 if len(ev) else 0
    wide = ev.pivot(index="id", columns="n", values=["code", "term", "date"]) if len(ev) else None
    header = list(CR_PATIENT_HEADER)
    columns = [base.reset_index(drop=True)]
    for n in range(k):
        group = wide.reindex(base["id"]).loc[:, [("code", n), ("term", n), ("date", n)]]
        columns.append(pd.DataFrame(group.to_numpy(), columns=[f"c{n}", f"t{n}", f"d{n}"]).fillna(""))
        header += ["Code", "Description", "Event date"]
    rows = pd.concat(columns, axis=1)
    _write_rows(out / "systmone_clinical_report.csv", header, rows, encoding="cp1252", crlf=True)


def write_practice_as(practice: SyntheticPractice, out_dir: Path | str, layout: str) -> list[str]:
    """Write ``practice`` into ``out_dir`` in ``layout`` (one of ``WRITE_LAYOUTS``), with
    its truth in ``out_dir/truth``. Returns notes on what the layout cannot hold."""
    if layout not in WRITE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(WRITE_LAYOUTS)}")
    out = Path(out_dir)
    if layout == "canonical":
        write_practice(practice, out)
        return []
    (out / "truth").mkdir(parents=True, exist_ok=True)
    _write_csv(out / "truth" / "households.csv", practice.truth_households)
    _write_csv(out / "truth" / "expected_flags.csv", practice.expected_flags)
    _write_csv(out / "truth" / "scenarios.csv", practice.scenarios)
    notes = []
    if layout in ("emis", "emis-pseudonymised"):
        _emis(practice, out, layout == "emis-pseudonymised")
    elif layout == "systmone-sre":
        _systmone_sre(practice, out)
    else:
        _systmone_cr(practice, out)
    if layout != "systmone-sre" and len(practice.relationships):
        notes.append(f"{len(practice.relationships)} recorded relationships not written: the {layout} "
                     "layout cannot hold them, so households come from addresses alone")
    if "household_id" in practice.patients.columns:
        notes.append(f"household ids not written: the {layout} layout cannot hold them")
    return notes
