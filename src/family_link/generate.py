"""Synthetic GP practices for testing, demonstrating and benchmarking family_link.

Never real patients: every name, address, NHS number and record is made up. Names come from
lists of common UK forenames and surnames, addresses from common street names and a few West
Midlands towns with postcodes in the right *format* (they need not exist). NHS numbers all
start with 9, a range not issued to patients in England, and carry a valid modulus-11 check
digit. Clinical codes are never invented: every code is copied, with its term, from the
project's codelists (``rules/codelists/*.csv``) or from the codelist research they were built
from.

``generate_practice(n, seed, as_of)`` returns a :class:`SyntheticPractice`: the export
(patients, events, relationships) as strings exactly as a CSV export would hold them, and the
truth: each patient's true household and dwelling, and the flags the 8 default rules must
raise on the true households. The same seed gives the same practice (one
``numpy.random.Generator(PCG64(seed))`` drives everything; nothing depends on hash order).

Households (ordinary ones are drawn vectorised; shares of households):
    single adults 33%, couples 24%, elderly couples (65+) 11.5%, families 30% (1-2 adults,
    1-5 children born 1-4 years apart (3% twins), parents 18-45 years older than every child,
    35% of partners with a different surname, some children with the partner's surname or
    (step-children) a third one, 6% with a grandparent), shared houses 1.5% (3-6
    unrelated adults aged 19-40, one household); plus care homes (about 0.7% of patients in
    practices of 150+, 12-40 residents each, 90% aged 65+; each resident is a household of
    their own, all at one dwelling).
    Dwellings: house 58%, flat 25%, lettered house (12A, 12B) 9%, named house 8% (scenario
    households: 40/35/15/10, so the linker meets them in flats). Flats sit in buildings
    holding 1-16 of the practice's households; a building is "12 Mill Road" (55%), "Oak
    Court, 12 Mill Road" (20%) or "Oak Court, Mill Road" (25%). Each postcode covers 11-31
    consecutive dwellings of one street, like a real unit postcode.

Scenarios: about 13% of family households (at least ``min(n_patients // 25, catalogue)``, the
core scenarios first, so that every rule flags in any practice of 200+ patients) get one
scenario from :data:`SCENARIOS`. A scenario builds its own household and codes, with dates
drawn from ranges that keep its outcome certain, and declares its expected flags. Nothing else
in the practice touches a codelist, so ``expected_flags`` is exactly the union of the
scenarios' declarations.

Noise per patient record (rates are per record unless said):
    street type abbreviated (Road/Rd, Street/St, ...; "Rd." in 20% of those)   15%
    street name typo (swap, drop, double or change one letter)                  2%
    whole address upper case / lower case                                      7% / 2%
    trailing comma on line 1 / commas removed                                  4% / 3%
    doubled space in line 1 / trailing space on line 2                         4% / 2%
    house number on its own line ("12" / "Mill Road")                          12%
    first part merged onto the street line ("Flat 3, 12 Mill Road")            25%
    lettered house written "12 A" / "12a" (else "12A")                         25% / 15%
    flat written Flat 3 / Apartment 3 / Apt 3 / "3/12 Mill Road" (numbered)    55/15/15/15%
    flat number missing (flat residents only; truth.missing_flat)              1%
    town line present / county line present                                    88% / 35%
    postcode without its space / in lower case                                 10% / 5%
    postcode missing / one character wrong                                     2% / 0.5%
    date of birth as DD/MM/YYYY (else YYYY-MM-DD)                              8%
    NHS number blank                                                           3%
Events: about 5 per patient (Poisson, more for older people), mostly background codes that
are in no codelist (severe mental illness, resolved mental illness, and the care processes
"Routine enquiry about domestic abuse" and "Domestic violence education", which must never
trigger a rule); 0.2% are dated up to 60 days after the as-of date. Event dates are
DD/MM/YYYY in 12% of rows; ``code_system`` is blank on 5% of SNOMED rows (to exercise
inference); 30% of Read v2 rows carry the 7-character form ("13Iv.00").
Relationships: recorded for 30% of households of 2+ people, one direction or both
(child -> mother/father/parent/guardian, sibling/brother/sister, partner, son/daughter/child,
grandmother/grandfather).
"""

from __future__ import annotations

__all__ = [
    "NOISE_RATES",
    "RULE_IDS",
    "SCENARIOS",
    "Scenario",
    "SyntheticPractice",
    "generate_practice",
    "nhs_check_digit",
    "write_practice",
]

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

RULE_IDS = (
    "cp-sibling", "cp-parent", "domestic-abuse", "substance-misuse",
    "parental-learning-disability", "pre-birth", "maltreatment-siblings", "stale-family-alert",
)

NOISE_RATES: dict[str, float] = {
    "street_type_abbreviated": 0.15,
    "abbreviation_full_stop": 0.20,  # of abbreviated records
    "street_typo": 0.02,
    "upper_case": 0.07,
    "lower_case": 0.02,
    "trailing_comma": 0.04,
    "commas_removed": 0.03,
    "double_space": 0.04,
    "trailing_space": 0.02,
    "number_on_own_line": 0.12,
    "merged_first_line": 0.25,
    "letter_spaced": 0.25,  # of lettered-house records
    "letter_lower": 0.15,  # of lettered-house records
    "missing_flat": 0.01,  # of flat residents
    "town_present": 0.88,
    "county_present": 0.35,
    "postcode_no_space": 0.10,
    "postcode_lower": 0.05,
    "postcode_missing": 0.02,
    "postcode_wrong_char": 0.005,
    "dob_uk_format": 0.08,
    "nhs_number_blank": 0.03,
    "event_uk_date": 0.12,
    "event_system_blank": 0.05,  # of SNOMED rows
    "event_read_7_char": 0.30,  # of Read v2 rows
    "event_after_as_of": 0.002,
    "relationships_recorded": 0.30,  # of households of 2+ people
}

# ----------------------------------------------------------------------------------------
# Codes. The preferred codes for each codelist, with their terms, copied from the codelist
# research (/work/shared/codelists-research). At generation time only those that are in the
# project's codelist of that name are used, with the codelist's own term.
# ----------------------------------------------------------------------------------------
_PREFERRED: dict[str, tuple[tuple[str, str, str], ...]] = {
    'cp_plan_start': (
        ('342191000000101', 'snomedct', 'Subject to child protection plan'),
        ('1064311000000109', 'snomedct', 'Child protection plan'),
        ('160887007', 'snomedct', 'Child on protection register'),
        ('13Iv.', 'readv2', 'Subject to child protection plan'),
    ),
    'cp_plan_end': (
        ('342891000000105', 'snomedct', 'No longer subject to child protection plan'),
        ('160889005', 'snomedct', 'Child removed from protection register'),
        ('13Iw.', 'readv2', 'No longer subject to child protection plan'),
    ),
    'family_member_cp_alert': (
        ('375041000000100', 'snomedct', 'Family member subject of child protection plan'),
        ('293371000000108', 'snomedct', 'Family member on child protection register'),
        ('160888002', 'snomedct', 'Family member on protection register'),
    ),
    'family_member_cp_alert_end': (
        ('375071000000106', 'snomedct', 'Family member no longer subject of child protection plan'),
        ('1025471000000102', 'snomedct', 'Family member no longer on child protection register'),
    ),
    'parent_of_child_on_cp_plan': (
        ('864491000000105', 'snomedct', 'Has child subject of child protection plan'),
    ),
    'domestic_abuse': (
        ('879911000000102', 'snomedct', 'Victim of domestic abuse'),
        ('205171000000107', 'snomedct', 'Victim of domestic violence'),
        ('371772001', 'snomedct', 'Domestic abuse'),
        ('720684005', 'snomedct', 'Domestic physical abuse'),
        ('206411000000103', 'snomedct', 'Alleged perpetrator of domestic violence'),
        ('758941000000108', 'snomedct', 'Subject of multi-agency risk assessment conference'),
        ('697950003', 'snomedct', 'Suspected domestic abuse'),
    ),
    'domestic_abuse_household_alert': (
        ('881081000000100', 'snomedct', 'Domestic abuse victim in household'),
        ('161051006', 'snomedct', 'At risk violence in the home'),
        ('160829008', 'snomedct', 'Violence between parents'),
        ('983731000000107', 'snomedct', 'Notification received of alleged domestic violence in household'),
    ),
    'substance_misuse': (
        ('15167005', 'snomedct', 'Alcohol abuse'),
        ('66590003', 'snomedct', 'Alcohol dependence'),
        ('191816009', 'snomedct', 'Drug dependence'),
        ('191819002', 'snomedct', 'Continuous opioid dependence'),
        ('268645007', 'snomedct', 'Nondependent alcohol abuse'),
        ('191891003', 'snomedct', 'Nondependent cannabis abuse'),
    ),
    'substance_misuse_household_alert': (
        ('713070003', 'snomedct', 'Drug misuser in household'),
        ('713071004', 'snomedct', 'Alcohol misuser in household'),
        ('1104261000000109', 'snomedct', 'Substance misuser in household'),
    ),
    'learning_disability': (
        ('416075005', 'snomedct', 'On learning disability register'),
        ('508171000000105', 'snomedct', 'Severe learning disability'),
        ('984661000000105', 'snomedct', 'Mild learning disability'),
        ('984671000000103', 'snomedct', 'Moderate learning disability'),
        ('931001000000105', 'snomedct', 'Significant learning disability'),
    ),
    'family_vulnerability_alert': (
        ('1064961000000107', 'snomedct', 'Child in family is safeguarding concern'),
        ('300731000000106', 'snomedct', 'Family is cause for concern'),
        ('305311000000106', 'snomedct', 'Vulnerable family'),
    ),
    'pregnancy': (
        ('77386006', 'snomedct', 'Pregnant'),
        ('169560008', 'snomedct', 'Pregnant - urine test confirms'),
        ('169563005', 'snomedct', 'Pregnant - on history'),
        ('72892002', 'snomedct', 'Normal pregnancy'),
    ),
    'pregnancy_outcome': (
        ('177184002', 'snomedct', 'Normal delivery procedure'),
        ('17369002', 'snomedct', 'Miscarriage'),
        ('156073000', 'snomedct', 'Complete miscarriage'),
        ('177157003', 'snomedct', 'Spontaneous breech delivery'),
    ),
    'unborn_child_alert': (
        ('878111000000109', 'snomedct', 'Unborn child is cause for safeguarding concern'),
        ('818901000000100', 'snomedct', 'Unborn child subject to child protection plan'),
    ),
    'maltreatment': (
        ('158094009', 'snomedct', 'Non-accidental injury to child'),
        ('700255001', 'snomedct', 'Suspected non-accidental injury to child'),
        ('371779005', 'snomedct', 'Physical abuse of child'),
        ('162596006', 'snomedct', 'Suspected victim of child abuse'),
        ('700254002', 'snomedct', 'Suspected victim of child sexual abuse'),
    ),
    'child_safeguarding': (
        ('836881000000105', 'snomedct', 'Child is cause for safeguarding concern'),
        ('287441000000101', 'snomedct', 'Child is cause for concern'),
        ('1064961000000107', 'snomedct', 'Child in family is safeguarding concern'),
        ('135891007', 'snomedct', 'Child in need'),
        ('161062006', 'snomedct', 'Child abuse in family'),
    ),
}

# Background codes: real codes chosen from the research rows that are in no rule codelist
# (severe mental illness, resolved mental illness, registers, and two care processes that
# must not trigger anything). Any that a codelist holds is dropped at generation time.
_NOISE_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ('413457006', 'snomedct', 'Domestic violence education'),
    ('700410005', 'snomedct', 'Routine enquiry about domestic abuse'),
    ('391193001', 'snomedct', 'On severe mental illness register'),
    ('135880000', 'snomedct', 'On national service framework mental health register'),
    ('9H8..', 'readv2', 'On severe mental illness register'),
    ('9H6..', 'readv2', 'On national service framework mental health register'),
    ('111483008', 'snomedct', 'Catatonic schizophrenia in remission'),
    ('111485001', 'snomedct', 'Mixed bipolar I disorder in full remission'),
    ('12969000', 'snomedct', 'Severe bipolar II disorder, most recent episode major depressive, in full remission'),
    ('191565008', 'snomedct', 'Latent schizophrenia in remission'),
    ('191574005', 'snomedct', 'Schizoaffective schizophrenia in remission'),
    ('191588009', 'snomedct', 'Single manic episode in full remission'),
    ('191597008', 'snomedct', 'Recurrent manic episodes, in full remission'),
    ('191625000', 'snomedct', 'Bipolar affective disorder, currently manic, in full remission'),
    ('191634005', 'snomedct', 'Bipolar affective disorder, currently depressed, in full remission'),
    ('191643001', 'snomedct', 'Mixed bipolar affective disorder, in full remission'),
    ('22121000', 'snomedct', 'Depressed bipolar I disorder in full remission'),
    ('30935000', 'snomedct', 'Manic bipolar I disorder in full remission'),
    ('31373002', 'snomedct', 'Disorganized schizophrenia in remission'),
    ('3530005', 'snomedct', 'Bipolar I disorder, single manic episode, in full remission'),
    ('35481005', 'snomedct', 'Mixed bipolar I disorder in remission'),
    ('35722002', 'snomedct', 'Severe bipolar II disorder, most recent episode major depressive, in remission'),
    ('39610001', 'snomedct', 'Undifferentiated schizophrenia in remission'),
    ('41836007', 'snomedct', 'Bipolar disorder in full remission'),
    ('45479006', 'snomedct', 'Manic bipolar I disorder in remission'),
    ('4926007', 'snomedct', 'Schizophrenia in remission'),
    ('51133006', 'snomedct', 'Residual schizophrenia in remission'),
    ('53607008', 'snomedct', 'Depressed bipolar I disorder in remission'),
    ('63181006', 'snomedct', 'Paranoid schizophrenia in remission'),
    ('698951002', 'snomedct', 'Delusional disorder in remission'),
    ('723901004', 'snomedct', 'Delusional disorder currently in full remission'),
    ('723903001', 'snomedct', 'Bipolar type I disorder currently in full remission'),
    ('723905008', 'snomedct', 'Bipolar type II disorder currently in full remission'),
    ('75360000', 'snomedct', 'Bipolar I disorder, single manic episode, in remission'),
    ('755301000000102', 'snomedct', 'Paranoid state in remission'),
    ('755311000000100', 'snomedct', 'Non-organic psychosis in remission'),
    ('755321000000106', 'snomedct', 'Single major depressive episode, severe, with psychosis, psychosis in remission'),
    ('755331000000108', 'snomedct', 'Recurrent major depressive episodes, severe, with psychosis, psychosis in remission'),
    ('764681000000107', 'snomedct', 'Recurrent manic episodes, in remission'),
    ('764741000000107', 'snomedct', 'Single manic episode in remission'),
    ('85248005', 'snomedct', 'Bipolar disorder in remission'),
    ('1086471000000103', 'snomedct', 'Recurrent reactive depressive episodes, severe, with psychosis'),
    ('1089661000000104', 'snomedct', 'Mania with mood-congruent psychotic features'),
    ('10981006', 'snomedct', 'Severe mixed bipolar I disorder with psychotic features'),
    ('129602009', 'snomedct', 'Symbiotic infantile psychosis'),
    ('13581000', 'snomedct', 'Severe bipolar I disorder, single manic episode with psychotic features, mood-congruent'),
    ('15193003', 'snomedct', 'Severe recurrent major depression with psychotic features, mood-incongruent'),
    ('16506000', 'snomedct', 'Mixed bipolar I disorder'),
    ('191447007', 'snomedct', 'Organic psychotic condition'),
    ('191527001', 'snomedct', 'Simple schizophrenia'),
    ('191548004', 'snomedct', 'Acute exacerbation of chronic catatonic schizophrenia'),
    ('191561004', 'snomedct', 'Subchronic latent schizophrenia'),
    ('191571002', 'snomedct', 'Acute exacerbation of subchronic schizoaffective schizophrenia'),
    ('191583000', 'snomedct', 'Single manic episode, mild'),
    ('191590005', 'snomedct', 'Recurrent manic episodes'),
    ('191620005', 'snomedct', 'Bipolar affective disorder, currently manic, mild'),
    ('191627008', 'snomedct', 'Bipolar affective disorder, current episode depression'),
    ('191636007', 'snomedct', 'Mixed bipolar affective disorder'),
    ('191670008', 'snomedct', 'Shared paranoid disorder'),
    ('191678001', 'snomedct', 'Reactive confusion'),
    ('19300006', 'snomedct', 'Severe bipolar II disorder, most recent episode major depressive with psychotic features, mood-congruent'),
    ('231444002', 'snomedct', 'Organic bipolar disorder'),
    ('231487004', 'snomedct', 'Persistent delusional disorder'),
    ('231496004', 'snomedct', 'Hypomania'),
    ('238972008', 'snomedct', 'Cutaneous monosymptomatic delusional psychosis'),
    ('238977002', 'snomedct', 'Delusional hyperhidrosis'),
    ('26025008', 'snomedct', 'Residual schizophrenia'),
    ('26530004', 'snomedct', 'Severe bipolar disorder with psychotic features, mood-incongruent'),
    ('268622001', 'snomedct', 'Chronic paranoid psychosis'),
    ('271428004', 'snomedct', 'Schizoaffective disorder, manic type'),
    ('278506006', 'snomedct', 'Involutional paranoid state'),
    ('28663008', 'snomedct', 'Severe manic bipolar I disorder with psychotic features'),
    ('29929003', 'snomedct', 'Bipolar I disorder, most recent episode depressed with atypical features'),
    ('307504004', 'snomedct', 'Oneirophrenia'),
    ('31446002', 'snomedct', 'Bipolar I disorder, most recent episode hypomanic'),
    ('33380008', 'snomedct', 'Severe manic bipolar I disorder with psychotic features, mood-incongruent'),
    ('35252006', 'snomedct', 'Disorganized schizophrenia'),
    ('357705009', 'snomedct', "Cotard's syndrome"),
    ('371026009', 'snomedct', 'Senile dementia with psychosis'),
    ('371604007', 'snomedct', 'Severe bipolar II disorder'),
    ('403595006', 'snomedct', 'Pinocchio syndrome'),
    ('416340002', 'snomedct', 'Late onset schizophrenia'),
    ('41932008', 'snomedct', 'Amok'),
    ('43769008', 'snomedct', 'Mild mixed bipolar I disorder'),
    ('48500005', 'snomedct', 'Delusional disorder'),
    ('49512000', 'snomedct', 'Depressed bipolar I disorder in partial remission'),
    ('5703000', 'snomedct', 'Bipolar disorder in partial remission'),
    ('60099002', 'snomedct', 'Severe major depression with psychotic features, mood-incongruent'),
    ('64905009', 'snomedct', 'Paranoid schizophrenia'),
    ('68890003', 'snomedct', 'Schizoaffective disorder'),
    ('7025000', 'snomedct', 'Subchronic undifferentiated schizophrenia with acute exacerbations'),
    ('712824002', 'snomedct', 'Acute polymorphic psychotic disorder without symptoms of schizophrenia'),
    ('71984005', 'snomedct', 'Mild manic bipolar I disorder'),
    ('724758000', 'snomedct', 'Manic symptoms co-occurrent and due to primary psychotic disorder'),
    ('73471000', 'snomedct', 'Bipolar I disorder, most recent episode mixed with catatonic features'),
    ('764621000000106', 'snomedct', 'Recurrent manic episodes, severe'),
    ('764731000000103', 'snomedct', 'Single manic episode in partial remission'),
    ('767631007', 'snomedct', 'Bipolar disorder, most recent episode depression'),
    ('767636002', 'snomedct', 'Bipolar I disorder, most recent episode depression'),
    ('789061003', 'snomedct', 'Rapid cycling bipolar II disorder'),
    ('81319007', 'snomedct', 'Severe bipolar II disorder, most recent episode major depressive without psychotic features'),
    ('84760002', 'snomedct', 'Schizoaffective disorder, depressive type'),
    ('87950005', 'snomedct', 'Bipolar I disorder, single manic episode with catatonic features'),
    ('E1...', 'ctv3', 'Non-organic psychoses'),
    ('E1003', 'ctv3', 'Acute exacerbation of subchronic schizophrenia'),
    ('E1011', 'ctv3', 'Subchronic hebephrenic schizophrenia'),
    ('E102.', 'ctv3', 'Catatonic schizophrenia'),
    ('E1025', 'ctv3', 'Catatonic schizophrenia in remission'),
    ('E1033', 'ctv3', 'Acute exacerbation of subchronic paranoid schizophrenia'),
    ('E1051', 'ctv3', 'Subchronic latent schizophrenia'),
    ('E106.', 'ctv3', 'Residual schizophrenia'),
    ('E1074', 'ctv3', 'Acute exacerbation of chronic schizoaffective schizophrenia'),
    ('E10yz', 'ctv3', 'Other schizophrenia NOS'),
    ('E1104', 'ctv3', 'Single manic episode, severe, with psychosis'),
    ('E1111', 'ctv3', 'Recurrent manic episodes, mild'),
    ('E111z', 'ctv3', 'Recurrent manic episode NOS'),
    ('E1142', 'ctv3', 'Bipolar affective disorder, currently manic, moderate'),
    ('E115.', 'ctv3', 'Bipolar affective disorder, current episode depression'),
    ('E1156', 'ctv3', 'Bipolar affective disorder, now depressed, in full remission'),
    ('E1163', 'ctv3', 'Mixed bipolar affective disorder, severe, without psychosis'),
    ('E1170', 'ctv3', 'Unspecified bipolar affective disorder, unspecified'),
    ('E117z', 'ctv3', 'Unspecified bipolar affective disorder, NOS'),
    ('E11z.', 'ctv3', 'Other and unspecified affective psychoses'),
    ('E123.', 'ctv3', 'Shared paranoid disorder'),
    ('E13y.', 'ctv3', 'Other reactive psychoses'),
    ('E2122', 'ctv3', 'Schizotypal personality disorder'),
    ('Eu20z', 'ctv3', '[X]Schizophrenia, unspecified'),
    ('Eu233', 'ctv3', '[X](Oth ac delusn psychot dis) or (psychogen paran psychos)'),
    ('Eu25y', 'ctv3', '[X]Other schizoaffective disorders'),
    ('Eu30y', 'ctv3', '[X]Other manic episodes'),
    ('Eu314', 'ctv3', '[X]Bipol aff disord, curr epis sev depress, no psychot symp'),
    ('Eu333', 'ctv3', '[X]Depress with psych sympt: [recurr: (named vars)][endogen]'),
    ('X00SA', 'ctv3', 'Persistent delusional disorder'),
    ('X00SM', 'ctv3', 'Bipolar disorder'),
    ('X50GJ', 'ctv3', 'Delusional hyperhidrosis'),
    ('XE1Y3', 'ctv3', 'Other non-organic psychoses'),
    ('XE1ZP', 'ctv3', '[X]Other persistent delusional disorders'),
    ('XE1ZV', 'ctv3', '[X]Mania with psychotic symptoms'),
    ('XE1aU', 'ctv3', '(Paranoid states) or (delusion: [paranoid] or [persecution])'),
    ('XSGon', 'ctv3', 'Severe major depression with psychotic features'),
    ('Xa1aF', 'ctv3', 'Erotomania'),
    ('XaK4Y', 'ctv3', '[X]Erotomania'),
)

# Care processes among the background codes get a larger share of background events.
_CARE_PROCESS_CODES = ("700410005", "413457006")
_CARE_PROCESS_SHARE = 0.15

# Tolerated overlaps: a scenario code may also sit in these lists, because no scenario
# household combines them with the rule they feed (maltreatment with child_safeguarding,
# learning disability with family_vulnerability_alert). Any other overlap drops the code.
_TOLERATED_OVERLAP = frozenset({"child_safeguarding", "family_vulnerability_alert"})

# ----------------------------------------------------------------------------------------
# Word lists (common UK names and street names; fictional combinations)
# ----------------------------------------------------------------------------------------
_SURNAMES = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell "
    "Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan "
    "Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb "
    "Rogers Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes "
    "Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham "
    "Pearson Ahmed Fletcher Walsh Kaur Gibson Howard Andrews Stewart Elliott Reynolds "
    "Saunders Payne Fox Ford Pearce Day Brooks West Lawrence Cole Atkinson Bradley Spencer "
    "Gill Dawson Ball Burton O'Brien Watts Rose Booth Perry Ryan Grant Wells Armstrong "
    "Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page "
    "Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter "
    "Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah Dean Lane Cooke Bates "
    "Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman "
    "Warren Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins "
    "O'Connor Harper Coleman Watkins Moss McCarthy Chambers O'Neill Griffin Sharp Hardy "
    "Wheeler Potter Osborne Johnston Gordon Doyle Wallace George Jordan Hutchinson Reeves "
    "Kowalski Nowak Mahmood Iqbal Akhtar Chowdhury Okafor Mensah Nguyen Chen"
).split()
_FEMALE = (
    "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Evie Poppy Ella "
    "Florence Willow Emily Sophie Ruby Charlotte Daisy Alice Jessica Phoebe Chloe Lucy Ellie "
    "Sienna Hannah Holly Aisha Zara Maryam Amira Layla Fatima Emma Sarah Laura Rebecca Gemma "
    "Claire Nicola Michelle Kelly Joanne Lisa Karen Julie Tracey Donna Helen Rachel Amy "
    "Katie Samantha Stacey Leanne Kirsty Jade Chelsea Shannon Megan Bethany Paige Margaret "
    "Patricia Susan Linda Christine Janet Carol Jean Sandra Pauline Barbara Elizabeth Mary "
    "Joan Dorothy Irene Doreen Brenda Valerie Sheila Maureen Jennifer Ann Zoë Chloë Siân "
    "Renée Priya Simran Agnieszka"
).split()
_MALE = (
    "Oliver George Noah Arthur Muhammad Leo Oscar Harry Archie Jack Henry Charlie Freddie "
    "Theodore Thomas Jacob Alfie Finley Isaac Joshua Alexander James William Samuel Max "
    "Lucas Mason Ethan Dylan Logan Harrison Riley Tyler Kai Reuben Ibrahim Yusuf Adam Ali "
    "David Paul Mark Andrew Richard Stephen Michael Christopher Daniel Matthew Lee Craig "
    "Darren Wayne Jason Gary Neil Simon Scott Dean Carl Ryan Jamie Liam Jordan Kieran "
    "Callum Connor Bradley Nathan John Robert Peter Alan Brian Keith Kevin Anthony Colin "
    "Derek Roy Kenneth Raymond Terence Dennis Ronald Frederick Albert Harold Eric Stanley "
    "Gareth Dafydd Rhys Seán Piotr Tomasz Kwame Chidi"
).split()
_STREET_BASES = (
    "Mill Church Station Park Victoria Green Manor Queens Kings Grange Highfield Albert "
    "Windsor Chapel School North South West East New High Oak Elm Ash Beech Birch Cedar "
    "Willow Chestnut Holly Hawthorn Maple Sycamore Poplar Rowan Laurel Cherry Orchard Meadow "
    "Brook River Canal Bridge Forge Farm Hill Valley Spring Wood Field Lichfield Stafford "
    "Birmingham Wolverhampton Cannock Aldridge Bloxwich Darlaston Pelsall Rushall Leamore "
    "Blakenall Beechdale Chuckery Caldmore Palfrey Pleck Moxley Bentley Shelfield Streetly "
    "Pheasey Birchills Goscote Coalpool Harden Ryecroft Paddock Delves Lime Larch Hazel "
    "Heather Primrose Daisy Bluebell Foxglove Lavender Tulip Clover Fern Thistle Ivy Jasmine "
    "Lilac Magnolia Marlborough Stanley Gladstone Nelson Wellington Cromwell Balmoral "
    "Sandringham Kenilworth Warwick Oxford Cambridge York Lancaster Clarence Alexandra "
    "Edward George Princess Regent Coronation Jubilee Milton Shakespeare Tennyson Wordsworth "
    "Chaucer Byron Keats Shelley Dickens Hardy Elgar Darwin Newton Faraday Telford Brindley "
    "Wesley Haddon Eastfield Westfield Northfield Southfield Broadway Greenfield Fairfield "
    "Ashley Bradford Bloomfield Cavendish Devonshire Egerton Fernleigh Glebe Hatherton "
    "Ironbridge Jerome Kingsley Longwood Mayfield Norton Oakley Parkside Quarry Redhouse "
    "Sandbank Thornhill Upland Vicarage Woodland Yew Tree"
).split()
_STREET_TYPES = ("Road", "Street", "Avenue", "Lane", "Close", "Drive", "Crescent", "Gardens",
                 "Terrace", "Place", "Court", "Grove", "Way")
_STREET_TYPE_WEIGHTS = (30, 16, 10, 9, 9, 7, 4, 4, 3, 2, 2, 3, 1)
_STREET_ABBREV = ("Rd", "St", "Ave", "Ln", "Cl", "Dr", "Cres", "Gdns", "Terr", "Pl", "Ct", "Gr",
                  "Way")
_HOUSE_NAMES = (
    "Rose Cottage", "Ivy Cottage", "The Willows", "The Cedars", "The Limes", "The Laurels",
    "Orchard House", "The Old Rectory", "The Old School House", "Meadow View", "Hillside",
    "Fairview", "Woodlands", "The Hollies", "Brookside", "The Firs", "Greenacres",
    "The Poplars", "Stable Cottage", "Mill House", "Holly Lodge", "Beech House",
    "The Coach House", "Elm Cottage", "Lavender Cottage", "Springfield", "Ash Lodge",
    "Hawthorn Cottage", "Keeper's Cottage", "The Barn", "The Granary", "Yew Tree Cottage",
    "Oak Lodge", "Pear Tree Cottage", "Apple Tree Cottage", "The Old Forge",
    "The Old Post Office", "Church Cottage", "Corner Cottage", "Well Cottage",
)
_BUILDING_FIRST = ("Oak", "Elm", "Mill", "Victoria", "Albion", "Regent", "Kingfisher", "Heron",
                   "Swan", "Priory", "Abbey", "Canal", "Wharf", "Park", "Beacon", "Centenary",
                   "Jubilee", "Crown", "Phoenix", "Carlton", "Clarendon", "Hanover", "Belvedere",
                   "Sovereign", "Trinity", "Foundry", "Brewery", "Tannery")
_BUILDING_SECOND = ("Court", "House", "Lodge", "Heights", "Mansions", "Point", "Place")
_CARE_HOME_FIRST = ("Sunnyside", "Oakwood", "The Limes", "Meadowbank", "Rosewood",
                    "Willow Lodge", "Brookfield", "Ashgrove", "Cedar Court", "Hollybank",
                    "Fernlea", "Larchwood", "Highfield", "The Beeches", "Greenways", "Lark Rise")
_CARE_HOME_SECOND = ("Care Home", "Nursing Home", "Residential Home")
# (district, town, county). Postcodes use these districts; sectors and units are made up.
_DISTRICTS = (
    ("WS1", "Walsall", "West Midlands"), ("WS2", "Walsall", "West Midlands"),
    ("WS3", "Bloxwich", "West Midlands"), ("WS4", "Rushall", "West Midlands"),
    ("WS5", "Walsall", "West Midlands"), ("WS9", "Aldridge", "West Midlands"),
    ("WS8", "Brownhills", "West Midlands"), ("WS10", "Darlaston", "West Midlands"),
    ("WV12", "Willenhall", "West Midlands"), ("WV13", "Willenhall", "West Midlands"),
    ("WS6", "Great Wyrley", "Staffordshire"), ("WS7", "Burntwood", "Staffordshire"),
    ("WS11", "Cannock", "Staffordshire"), ("WS12", "Hednesford", "Staffordshire"),
    ("WS13", "Lichfield", "Staffordshire"), ("WS14", "Lichfield", "Staffordshire"),
    ("WS15", "Rugeley", "Staffordshire"), ("WV14", "Bilston", "West Midlands"),
    ("WV1", "Wolverhampton", "West Midlands"), ("WV2", "Wolverhampton", "West Midlands"),
    ("WV3", "Wolverhampton", "West Midlands"), ("WV4", "Wolverhampton", "West Midlands"),
    ("WV10", "Wolverhampton", "West Midlands"), ("WV11", "Wolverhampton", "West Midlands"),
    ("DY1", "Dudley", "West Midlands"), ("DY2", "Dudley", "West Midlands"),
    ("DY4", "Tipton", "West Midlands"), ("B69", "Oldbury", "West Midlands"),
    ("B70", "West Bromwich", "West Midlands"), ("B71", "West Bromwich", "West Midlands"),
)
_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in the inward code of real postcodes

# Person roles within a household (drive relationships, not the rules).
_ADULT, _CHILD, _GRANDPARENT, _OTHER = 0, 1, 2, 3
_YEAR = 365.25
_EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _years_before(d: date, years: int) -> date:
    """The date ``years`` calendar years before ``d`` (29 February becomes 28 February),
    as pandas' ``DateOffset(years=...)`` computes it."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


# ----------------------------------------------------------------------------------------
# Codes
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Code:
    code: str
    system: str
    term: str


class _Unavailable(LookupError):
    """A scenario asked for a code its codelist does not (exclusively) hold."""


def _read_codelists(rules_dir: Path | None) -> dict[str, dict[str, str]] | None:
    """``{name: {code: term}}`` from ``rules_dir/codelists/*.csv`` (None when there are none)."""
    if rules_dir is None:
        from .rules import default_rules_dir

        rules_dir = default_rules_dir()
    folder = Path(rules_dir) / "codelists"
    paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not paths:
        return None
    lists: dict[str, dict[str, str]] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows: dict[str, str] = {}
            for row in reader:
                code = (row.get("code") or "").strip()
                if code:
                    rows[code] = (row.get("term") or "").strip()
        lists[path.stem] = rows
    return lists


class _CodeBook:
    """The codes the generator may use, checked against the project's codelists.

    A preferred code is used for codelist L only if L holds it and no other codelist does
    (apart from the tolerated overlaps), so that a scenario's codes fire exactly the rules
    it declares. Background codes are the candidates that no codelist holds.
    """

    def __init__(self, lists: dict[str, dict[str, str]] | None, source: str):
        self.source = source
        self.pools: dict[str, tuple[_Code, ...]] = {}
        for name, rows in _PREFERRED.items():
            keep = []
            for code, system, term in rows:
                if lists is not None:
                    if code not in lists.get(name, {}):
                        continue
                    others = {n for n, codes in lists.items() if n != name and code in codes}
                    if others - _TOLERATED_OVERLAP:
                        continue
                    term = lists[name][code] or term
                keep.append(_Code(code, system, term))
            self.pools[name] = tuple(keep)
        if lists is not None:
            listed = set().union(*(set(codes) for codes in lists.values()))
        else:
            listed = {code for rows in _PREFERRED.values() for code, _, _ in rows}
        self.noise = tuple(_Code(*row) for row in _NOISE_CANDIDATES if row[0] not in listed)
        if not self.noise:
            raise ValueError("every background code candidate is in a codelist; "
                             "add candidates to _NOISE_CANDIDATES in generate.py")
        self.noise_by_code = {c.code: c for c in self.noise}

    @classmethod
    def load(cls, rules_dir: Path | None) -> _CodeBook:
        lists = _read_codelists(rules_dir)
        return cls(lists, "rules/codelists" if lists is not None else "built-in research codes")

    def pick(self, rng: np.random.Generator, name: str, system: str | None = None,
             code: str | None = None) -> _Code:
        pool = self.pools.get(name, ())
        if code is not None:
            pool = tuple(c for c in pool if c.code == code)
        elif system is not None:
            pool = tuple(c for c in pool if c.system == system)
        else:
            snomed = tuple(c for c in pool if c.system == "snomedct")
            others = tuple(c for c in pool if c.system != "snomedct")
            # About one plan in ten is a Read v2 code carried over from older records.
            pool = others if (others and (not snomed or rng.random() < 0.1)) else snomed
        if not pool:
            raise _Unavailable(f"{name} ({system or code or 'any'})")
        return pool[int(rng.integers(len(pool)))]

    def noise_code(self, code: str) -> _Code:
        try:
            return self.noise_by_code[code]
        except KeyError:
            raise _Unavailable(code) from None


# ----------------------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------------------
@dataclass
class _Family:
    adults: list[int]
    children: list[int]
    mother: int
    partner: int | None


class _Build:
    """One scenario household under construction: members, their codes, expected flags.

    Dates are whole days; ``ago`` counts back from the as-of date A (negative = after A).
    """

    def __init__(self, rng: np.random.Generator, as_of: date, book: _CodeBook):
        self.rng = rng
        self.as_of = as_of
        self.a = _day(as_of)
        self.book = book
        self.members: list[tuple[int, bool, int, int]] = []  # role, female, dob, surname slot
        self.events: list[tuple[int, _Code, int]] = []  # member, code, day
        self.flags: list[tuple[int, str]] = []

    # -- randomness ------------------------------------------------------------------------
    def ago(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def on_or_after(self, trigger_ago: int) -> int:
        """A day on or after the trigger and not after A; the trigger day itself 1 in 4."""
        return trigger_ago if self.rng.random() < 0.25 else self.ago(0, trigger_ago)

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def dob_aged(self, lo: float, hi: float) -> int:
        return self.a - self.ago(round(lo * _YEAR), round(hi * _YEAR))

    def dob_18_today(self) -> int:
        """Born 18 years before A: an adult on A."""
        return _day(_years_before(self.as_of, 18))

    def dob_18_tomorrow(self) -> int:
        """Born the day after: still a child on A, 18 tomorrow."""
        return _day(_years_before(self.as_of, 18)) + 1

    def sibling_ages(self, n: int, lo: float, hi: float) -> list[float]:
        """``n`` ages in [lo, hi] years, 1-4 years apart (3% twins), squeezed if need be."""
        gaps = [0.0] + [0.0 if self.chance(0.03) else float(self.rng.uniform(1.0, 4.0))
                        for _ in range(n - 1)]
        cum = np.cumsum(gaps) if n else np.zeros(0)
        spread = float(cum[-1]) if n else 0.0
        scale = min(1.0, (hi - lo) / spread) if spread > 0 else 1.0
        youngest = lo + float(self.rng.random()) * (hi - lo - spread * scale)
        return [youngest + float(c) * scale for c in cum]

    # -- people ----------------------------------------------------------------------------
    def add(self, role: int, female: bool, dob: int, slot: int = 0) -> int:
        self.members.append((role, female, dob, slot))
        return len(self.members) - 1

    def family(self, adults: tuple[int, int] = (1, 2), children: tuple[int, int] = (1, 3),
               child_age: tuple[float, float] = (4.0, 16.0),
               extra_children: Sequence[tuple[int, bool]] = (),
               mother_gap: tuple[float, float] = (20.0, 33.0),
               grandparent: float = 0.05) -> _Family:
        """A mother, maybe a partner (and rarely a grandparent), and children whose parents
        are 18-45 years older than each of them. ``extra_children`` are (dob, female)."""
        kids = [(self.a - round(age * _YEAR), self.chance(0.5))
                for age in self.sibling_ages(self.ago(*children), *child_age)]
        kids += list(extra_children)
        if kids:
            oldest, youngest = min(d for d, _ in kids), max(d for d, _ in kids)
            latest = oldest - round(mother_gap[0] * _YEAR)
            earliest = min(max(oldest - round(mother_gap[1] * _YEAR), youngest - round(44 * _YEAR)),
                           latest)
            mother_dob = int(self.rng.integers(earliest, latest + 1))
        else:
            mother_dob = self.dob_aged(20, 40)
        mother = self.add(_ADULT, True, mother_dob, 0)
        family = _Family([mother], [], mother, None)
        partner_slot = 0
        if self.ago(*adults) == 2:
            partner_slot = 1 if self.chance(0.35) else 0
            dob = mother_dob + self.ago(round(-6 * _YEAR), round(3 * _YEAR))
            if kids:
                dob = min(dob, oldest - round(18.2 * _YEAR))
                dob = max(dob, youngest - round(44.8 * _YEAR))
            family.partner = self.add(_ADULT, not self.chance(0.95), dob, partner_slot)
            family.adults.append(family.partner)
        if self.chance(grandparent):
            dob = mother_dob - self.ago(round(20 * _YEAR), round(30 * _YEAR))
            dob = max(dob, self.a - round(96 * _YEAR))
            family.adults.append(self.add(_GRANDPARENT, self.chance(0.65), dob, 0 if self.chance(0.5) else 3))
        for dob, female in kids:
            slot = partner_slot if (partner_slot and self.chance(0.45)) else 0
            if family.partner is not None and self.chance(0.08):
                slot = 2  # a step-child, with a surname from a previous partner
            family.children.append(self.add(_CHILD, female, dob, slot))
        return family

    def couple(self, age: tuple[float, float] = (19.0, 40.0), partner: float = 1.0) -> _Family:
        woman = self.add(_ADULT, True, self.dob_aged(*age), 0)
        family = _Family([woman], [], woman, None)
        if self.chance(partner):
            dob = self.members[woman][2] + self.ago(round(-6 * _YEAR), round(2 * _YEAR))
            dob = min(dob, self.a - round(18.5 * _YEAR))
            family.partner = self.add(_ADULT, False, dob, 1 if self.chance(0.4) else 0)
            family.adults.append(family.partner)
        return family

    # -- codes and expectations --------------------------------------------------------------
    def code(self, who: int | Sequence[int], name: str, ago: int, system: str | None = None,
             code: str | None = None) -> None:
        for m in ([who] if isinstance(who, int) else who):
            self.events.append((m, self.book.pick(self.rng, name, system, code), self.a - ago))

    def noise(self, who: int, code: str, ago: int) -> None:
        self.events.append((who, self.book.noise_code(code), self.a - ago))

    def expect(self, who: int | Sequence[int], rule_id: str) -> None:
        assert rule_id in RULE_IDS, rule_id
        for m in ([who] if isinstance(who, int) else who):
            self.flags.append((m, rule_id))

    def age_days(self, m: int) -> int:
        return self.a - self.members[m][2]


@dataclass(frozen=True)
class Scenario:
    """One kind of household in the truth catalogue.

    ``flags`` are the rules it must raise (``expected`` says on whom); ``rules`` the rules
    it exercises (a scenario that must raise nothing still tests them).
    """

    id: str
    description: str
    expected: str
    flags: tuple[str, ...]
    rules: tuple[str, ...]
    core: bool = False
    build: Callable[[_Build], None] = field(default=lambda b: None, repr=False, compare=False)

    def line(self) -> str:
        return f"{self.id}: {self.description} -> {self.expected}"


# -- child protection plans --------------------------------------------------------------
def _plan(b: _Build, children: tuple[int, int] = (2, 4), start: tuple[int, int] = (30, 700),
          system: str | None = None, extra_children: Sequence[tuple[int, bool]] = ()
          ) -> tuple[_Family, int, list[int], int]:
    f = b.family(children=children, extra_children=extra_children)
    holder, others = f.children[0], f.children[1:]
    s = b.ago(*start)
    b.code(holder, "cp_plan_start", s, system=system)
    return f, holder, others, s


def _cp_unalerted(b: _Build) -> None:
    f, _, others, _ = _plan(b)
    b.expect(others, "cp-sibling")
    b.expect(f.adults, "cp-parent")


def _cp_alerted(b: _Build) -> None:
    f, _, others, s = _plan(b, start=(60, 700))
    for c in others:
        b.code(c, "family_member_cp_alert", b.on_or_after(s))
    for a in f.adults:
        b.code(a, "family_member_cp_alert" if b.chance(0.4) else "parent_of_child_on_cp_plan",
               b.on_or_after(s))


def _cp_alert_before_plan(b: _Build) -> None:
    f, _, others, s = _plan(b, start=(60, 500))
    for c in others:
        b.code(c, "family_member_cp_alert", b.ago(s + 1, s + 300))
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.ago(s + 1, s + 300))
    b.expect(others, "cp-sibling")
    b.expect(f.adults, "cp-parent")


def _cp_alert_ended(b: _Build) -> None:
    f, _, others, s = _plan(b, start=(100, 700))
    for c in others:
        start = b.ago(1, s)
        b.code(c, "family_member_cp_alert", start)
        b.code(c, "family_member_cp_alert_end", b.ago(0, start))  # same day ends it too
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.on_or_after(s))
    b.expect(others, "cp-sibling")


def _cp_plan_ended(b: _Build) -> None:
    _, holder, _, s = _plan(b, start=(100, 700))
    b.code(holder, "cp_plan_end", b.ago(0, s - 1))


def _cp_plan_ended_same_day(b: _Build) -> None:
    _, holder, _, s = _plan(b)
    b.code(holder, "cp_plan_end", s)


def _cp_read_v2(b: _Build) -> None:
    f, _, others, _ = _plan(b, system="readv2")
    b.expect(others, "cp-sibling")
    b.expect(f.adults, "cp-parent")


def _cp_plan_starts_tomorrow(b: _Build) -> None:
    _plan(b, start=(-30, -1))


def _cp_alert_tomorrow(b: _Build) -> None:
    f, _, others, _ = _plan(b)
    for c in others:
        b.code(c, "family_member_cp_alert", -1)
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", -b.ago(1, 30))
    b.expect(others, "cp-sibling")
    b.expect(f.adults, "cp-parent")


def _cp_sibling_18_today(b: _Build) -> None:
    f, _, others, _ = _plan(b, children=(1, 1), extra_children=[(b.dob_18_today(), b.chance(0.5))])
    b.expect(f.adults + others, "cp-parent")  # the 18-year-old is an adult on A


def _cp_sibling_18_tomorrow(b: _Build) -> None:
    f, _, others, _ = _plan(b, children=(1, 1),
                            extra_children=[(b.dob_18_tomorrow(), b.chance(0.5))])
    b.expect(others, "cp-sibling")  # still a child on A
    b.expect(f.adults, "cp-parent")


def _cp_two_plans(b: _Build) -> None:
    f = b.family(children=(3, 4))
    first, second, third, *rest = f.children
    s1, s2 = b.ago(300, 700), b.ago(30, 250)
    b.code(first, "cp_plan_start", s1)
    b.code(second, "cp_plan_start", s2)
    b.code(third, "family_member_cp_alert", b.ago(s2 + 1, s1))  # after one plan, not the other
    for c in rest:
        b.code(c, "family_member_cp_alert", b.on_or_after(s2))
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.on_or_after(s2))
    b.expect(third, "cp-sibling")


def _cp_plan_restarted(b: _Build) -> None:
    f = b.family(children=(2, 3))
    holder, others = f.children[0], f.children[1:]
    p1 = b.ago(500, 700)
    ended = b.ago(200, p1 - 1)
    p2 = b.ago(30, ended - 1)
    b.code(holder, "cp_plan_start", p1)
    b.code(holder, "cp_plan_end", ended)
    b.code(holder, "cp_plan_start", p2)
    for c in others:
        b.code(c, "family_member_cp_alert", b.ago(p2 + 1, p1))  # before the latest start
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.on_or_after(p2))
    b.expect(others, "cp-sibling")


# -- stale family alerts -------------------------------------------------------------------
def _stale_plan_ended(b: _Build, alert_ended: bool = False) -> None:
    f = b.family(children=(2, 3))
    holder, others = f.children[0], f.children[1:]
    s = b.ago(200, 700)
    ended = b.ago(1, s - 100)
    b.code(holder, "cp_plan_start", s)
    b.code(holder, "cp_plan_end", ended)
    for c in others:
        start = b.ago(ended + 1, s)
        b.code(c, "family_member_cp_alert", start)
        if alert_ended:
            b.code(c, "family_member_cp_alert_end", b.ago(0, ended))
    if not alert_ended:
        b.expect(others, "stale-family-alert")


def _stale_alert_ended(b: _Build) -> None:
    _stale_plan_ended(b, alert_ended=True)


def _stale_no_plan(b: _Build) -> None:
    f = b.family(children=(1, 3))
    b.code(f.children[0], "family_member_cp_alert", b.ago(30, 700))
    b.expect(f.children[0], "stale-family-alert")


def _stale_plan_starts_tomorrow(b: _Build) -> None:
    f = b.family(children=(2, 3))
    holder, others = f.children[0], f.children[1:]
    b.code(holder, "cp_plan_start", -1)
    for c in others:
        b.code(c, "family_member_cp_alert", b.ago(0, 30))
    b.expect(others, "stale-family-alert")


# -- domestic abuse and substance misuse -------------------------------------------------------
def _risk(b: _Build, risk: str, when: tuple[int, int] = (0, 700), adults: tuple[int, int] = (1, 2),
          children: tuple[int, int] = (1, 4), extra_children: Sequence[tuple[int, bool]] = ()
          ) -> tuple[_Family, int]:
    f = b.family(adults=adults, children=children, extra_children=extra_children)
    d = b.ago(*when)
    b.code(f.adults[int(b.rng.integers(len(f.adults)))], risk, d)
    return f, d


_ALERT_FOR = {"domestic_abuse": "domestic_abuse_household_alert",
              "substance_misuse": "substance_misuse_household_alert"}
_RULE_FOR = {"domestic_abuse": "domestic-abuse", "substance_misuse": "substance-misuse"}


def _risk_unalerted(risk: str) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        f, _ = _risk(b, risk)
        b.expect(f.children, _RULE_FOR[risk])
    return build


def _risk_alerted(risk: str) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        f, d = _risk(b, risk, when=(30, 700))
        for c in f.children:
            b.code(c, _ALERT_FOR[risk], b.on_or_after(d))
    return build


def _risk_alert_before(risk: str) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        f, d = _risk(b, risk, when=(30, 400))
        for c in f.children:
            b.code(c, _ALERT_FOR[risk], b.ago(d + 1, d + 300))
        b.expect(f.children, _RULE_FOR[risk])
    return build


def _risk_at(risk: str, days: int) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        f, _ = _risk(b, risk, when=(days, days))
        if days <= 730:
            b.expect(f.children, _RULE_FOR[risk])
    return build


def _da_two_adults(b: _Build) -> None:
    f = b.family(adults=(2, 2), children=(1, 3))
    d1, d2 = b.ago(400, 700), b.ago(30, 200)
    b.code(f.adults[0], "domestic_abuse", d1)
    b.code(f.adults[1], "domestic_abuse", d2)
    for c in f.children:
        b.code(c, "domestic_abuse_household_alert", b.ago(d2 + 1, d1))  # covers one code only
    b.expect(f.children, "domestic-abuse")


def _da_alert_tomorrow(b: _Build) -> None:
    f, _ = _risk(b, "domestic_abuse", when=(30, 700))
    for c in f.children:
        b.code(c, "domestic_abuse_household_alert", -1)
    b.expect(f.children, "domestic-abuse")


def _da_code_tomorrow(b: _Build) -> None:
    _risk(b, "domestic_abuse", when=(-30, -1))


def _da_child_18_today(b: _Build) -> None:
    f, _ = _risk(b, "domestic_abuse", children=(1, 2),
                 extra_children=[(b.dob_18_today(), b.chance(0.5))])
    b.expect(f.children[:-1], "domestic-abuse")  # the last child is 18 today: an adult


def _da_child_18_tomorrow(b: _Build) -> None:
    f, _ = _risk(b, "domestic_abuse", children=(1, 2),
                 extra_children=[(b.dob_18_tomorrow(), b.chance(0.5))])
    b.expect(f.children, "domestic-abuse")


def _da_care_process_only(b: _Build) -> None:
    f = b.family(children=(1, 3))
    for a in f.adults:
        b.noise(a, "700410005", b.ago(0, 700))  # Routine enquiry about domestic abuse
    b.noise(f.mother, "413457006", b.ago(0, 700))  # Domestic violence education


def _da_child_victim(b: _Build) -> None:
    f = b.family(children=(1, 2), child_age=(4, 11),
                 extra_children=[(b.dob_aged(14, 17), b.chance(0.5))])
    b.code(f.children[-1], "domestic_abuse", b.ago(0, 700))  # a child's code triggers nothing


def _cp_and_da(b: _Build) -> None:
    f, holder, others, s = _plan(b, children=(2, 3))
    for c in others:
        b.code(c, "family_member_cp_alert", b.on_or_after(s))
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.on_or_after(s))
    b.code(f.adults[int(b.rng.integers(len(f.adults)))], "domestic_abuse", b.ago(0, 700))
    b.expect(f.children, "domestic-abuse")  # the child on the plan too


def _da_and_sm(b: _Build) -> None:
    f = b.family(adults=(2, 2), children=(1, 3))
    d = b.ago(30, 700)
    b.code(f.adults[0], "domestic_abuse", d)
    b.code(f.adults[1], "substance_misuse", b.ago(0, 700))
    for c in f.children:
        b.code(c, "domestic_abuse_household_alert", b.on_or_after(d))
    b.expect(f.children, "substance-misuse")


# -- parental learning disability -----------------------------------------------------------
def _ld(b: _Build, children: tuple[int, int] = (1, 4)) -> _Family:
    f = b.family(children=children, grandparent=0.0)
    parent = f.adults[int(b.rng.integers(len(f.adults)))]
    b.code(parent, "learning_disability", b.ago(0, 4000))
    return f


def _ld_unalerted(b: _Build) -> None:
    f = _ld(b)
    b.expect(f.children, "parental-learning-disability")


def _ld_alerted(b: _Build) -> None:
    f = _ld(b)
    for c in f.children:  # any date counts, even before the parent's code
        b.code(c, "family_vulnerability_alert", b.ago(0, min(1000, b.age_days(c) - 1)))


def _ld_one_child_alerted(b: _Build) -> None:
    f = _ld(b, children=(2, 3))
    b.code(f.children[0], "family_vulnerability_alert", b.ago(0, 1000))
    b.expect(f.children[1:], "parental-learning-disability")


def _ld_alert_tomorrow(b: _Build) -> None:
    f = _ld(b)
    for c in f.children:
        b.code(c, "family_vulnerability_alert", -1)
    b.expect(f.children, "parental-learning-disability")


def _ld_sibling(b: _Build, exactly_14: bool) -> None:
    """A mother with no codes, an adult child with a learning disability and a young child
    13 years and some months (or exactly 14 years) younger than the adult child."""
    if exactly_14:
        older = _years_before(b.as_of, b.ago(20, 26)) - timedelta(days=b.ago(1, 300))
        if older.month == 2 and older.day == 29:
            older -= timedelta(days=1)
        ld_dob, child_dob = _day(older), _day(older.replace(year=older.year + 14))
    else:
        ld_dob = b.dob_aged(19, 22)
        child_dob = ld_dob + round(13 * _YEAR) + b.ago(30, 300)
    b.add(_ADULT, True, ld_dob - b.ago(round(20 * _YEAR), round(28 * _YEAR)))  # the mother
    adult_child = b.add(_CHILD, b.chance(0.5), ld_dob)
    child = b.add(_CHILD, b.chance(0.5), child_dob)
    b.code(adult_child, "learning_disability", b.ago(0, 700))
    if exactly_14:
        b.expect(child, "parental-learning-disability")


def _ld_13_years(b: _Build) -> None:
    _ld_sibling(b, exactly_14=False)


def _ld_14_years(b: _Build) -> None:
    _ld_sibling(b, exactly_14=True)


def _ld_child_coded(b: _Build) -> None:
    f = b.family(children=(2, 3), grandparent=0.0)
    b.code(f.children[0], "learning_disability", b.ago(0, 700))


# -- pre-birth -----------------------------------------------------------------------------
def _pregnant(b: _Build, woman: int, ago: tuple[int, int] = (0, 250)) -> int:
    p = b.ago(*ago)
    b.code(woman, "pregnancy", p)
    return p


def _pb_da(b: _Build, da_ago: tuple[int, int] = (0, 700), preg: tuple[int, int] = (0, 250)
           ) -> tuple[_Family, int]:
    f = b.couple()
    b.code(f.partner, "domestic_abuse", b.ago(*da_ago))  # type: ignore[arg-type]
    return f, _pregnant(b, f.mother, preg)


def _pb_flag(b: _Build) -> None:
    f, _ = _pb_da(b)
    b.expect(f.mother, "pre-birth")


def _pb_sm(b: _Build) -> None:
    f = b.couple(partner=0.7)
    b.code(f.mother, "substance_misuse", b.ago(0, 700))
    _pregnant(b, f.mother)
    b.expect(f.mother, "pre-birth")


def _pb_ld(b: _Build) -> None:
    f = b.couple(partner=0.7)
    b.code(f.mother, "learning_disability", b.ago(0, 3000))
    _pregnant(b, f.mother)
    b.expect(f.mother, "pre-birth")


def _pb_cp(b: _Build) -> None:
    f = b.family(adults=(2, 2), children=(1, 1), child_age=(4, 10), mother_gap=(20, 30),
                 grandparent=0.0)
    s = b.ago(30, 700)
    b.code(f.children[0], "cp_plan_start", s)
    for a in f.adults:
        b.code(a, "parent_of_child_on_cp_plan", b.on_or_after(s))
    _pregnant(b, f.mother)
    b.expect(f.mother, "pre-birth")


def _pb_maltreatment(b: _Build, days: tuple[int, int] = (0, 360)) -> None:
    f = b.family(adults=(2, 2), children=(1, 1), child_age=(4, 10), mother_gap=(20, 30),
                 grandparent=0.0)
    b.code(f.children[0], "maltreatment", b.ago(*days))  # an only child: no sibling to flag
    _pregnant(b, f.mother)
    if days[1] <= 365:
        b.expect(f.mother, "pre-birth")


def _pb_maltreatment_366(b: _Build) -> None:
    _pb_maltreatment(b, days=(366, 366))


def _pb_alerted(b: _Build) -> None:
    f, p = _pb_da(b)
    b.code(f.mother, "unborn_child_alert", b.on_or_after(p))


def _pb_alert_before_pregnancy(b: _Build) -> None:
    f = b.couple()
    b.code(f.partner, "domestic_abuse", b.ago(0, 700))  # type: ignore[arg-type]
    p1 = _pregnant(b, f.mother, (200, 270))
    p2 = _pregnant(b, f.mother, (20, 150))
    b.code(f.mother, "unborn_child_alert", b.ago(p2 + 1, p1))
    b.expect(f.mother, "pre-birth")


def _pb_ended(b: _Build) -> None:
    f, p = _pb_da(b, preg=(100, 270))
    b.code(f.mother, "pregnancy_outcome", b.on_or_after(p))


def _pb_at(days: int) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        f, _ = _pb_da(b, preg=(days, days))
        if days <= 280:
            b.expect(f.mother, "pre-birth")
    return build


def _pb_no_risk(b: _Build) -> None:
    f = b.couple(partner=0.8)
    _pregnant(b, f.mother)


def _pb_risk_731(b: _Build) -> None:
    _pb_da(b, da_ago=(731, 731))


def _pb_teenager(b: _Build) -> None:
    girl_dob = b.dob_aged(16.0, 17.5)
    f = b.family(adults=(2, 2), children=(0, 2), child_age=(4, 14),
                 extra_children=[(girl_dob, True)], grandparent=0.0)
    girl = f.children[-1]
    b.code(f.partner, "domestic_abuse", b.ago(0, 700))  # type: ignore[arg-type]
    _pregnant(b, girl)
    b.expect(f.children, "domestic-abuse")
    b.expect(girl, "pre-birth")


def _pb_after_delivery(b: _Build) -> None:
    delivered = b.ago(420, 700)
    f = b.family(adults=(2, 2), children=(0, 0), extra_children=[(b.a - delivered, b.chance(0.5))],
                 mother_gap=(20, 38), grandparent=0.0)
    baby = f.children[0]
    b.code(f.mother, "pregnancy", delivered + b.ago(60, 250))
    try:  # a delivery code (there is a baby), else any outcome code the codelist holds
        b.code(f.mother, "pregnancy_outcome", delivered,
               code="177184002" if b.chance(0.8) else "177157003")
    except _Unavailable:
        b.code(f.mother, "pregnancy_outcome", delivered)
    b.code(f.partner, "domestic_abuse", b.ago(0, 700))  # type: ignore[arg-type]
    _pregnant(b, f.mother)
    b.expect(f.mother, "pre-birth")
    b.expect(baby, "domestic-abuse")


def _pb_pregnancy_tomorrow(b: _Build) -> None:
    _pb_da(b, preg=(-14, -1))


def _pb_alert_tomorrow(b: _Build) -> None:
    f, _ = _pb_da(b)
    b.code(f.mother, "unborn_child_alert", -1)
    b.expect(f.mother, "pre-birth")


# -- maltreatment ----------------------------------------------------------------------------
def _maltreated(b: _Build, days: tuple[int, int] = (0, 360), children: tuple[int, int] = (2, 4),
                extra_children: Sequence[tuple[int, bool]] = ()) -> tuple[_Family, int, list[int], int]:
    f = b.family(children=children, extra_children=extra_children)
    victim, others = f.children[0], f.children[1:]
    m = b.ago(*days)
    b.code(victim, "maltreatment", m)
    return f, victim, others, m


def _mt_unalerted(b: _Build) -> None:
    _, _, others, _ = _maltreated(b)
    b.expect(others, "maltreatment-siblings")


def _mt_alerted(b: _Build) -> None:
    _, _, others, m = _maltreated(b)
    for c in others:
        b.code(c, "child_safeguarding", b.on_or_after(m))


def _mt_at(days: int) -> Callable[[_Build], None]:
    def build(b: _Build) -> None:
        _, _, others, _ = _maltreated(b, days=(days, days))
        if days <= 365:
            b.expect(others, "maltreatment-siblings")
    return build


def _mt_alert_before(b: _Build) -> None:
    _, _, others, m = _maltreated(b, days=(30, 300))
    for c in others:
        b.code(c, "child_safeguarding", b.ago(m + 1, m + 300))
    b.expect(others, "maltreatment-siblings")


def _mt_sibling_18_today(b: _Build) -> None:
    _maltreated(b, children=(1, 1), extra_children=[(b.dob_18_today(), b.chance(0.5))])


def _mt_sibling_18_tomorrow(b: _Build) -> None:
    _, _, others, _ = _maltreated(b, children=(1, 1),
                                  extra_children=[(b.dob_18_tomorrow(), b.chance(0.5))])
    b.expect(others, "maltreatment-siblings")


def _sc(id: str, description: str, expected: str, flags: str, rules: str,
        build: Callable[[_Build], None], core: bool = False) -> Scenario:
    return Scenario(id, description, expected, tuple(flags.split()), tuple(rules.split()), core, build)


_CP = "cp-sibling cp-parent"
_DA, _SM, _LD, _PB = "domestic-abuse", "substance-misuse", "parental-learning-disability", "pre-birth"
_MT, _ST = "maltreatment-siblings", "stale-family-alert"

SCENARIOS: tuple[Scenario, ...] = (
    # core scenarios come first: small practices get these before any other
    _sc("cp-plan-unalerted", "a child on an active CP plan (started 30-700 days ago); no family codes",
        "cp-sibling on the other children, cp-parent on every adult", _CP, _CP + " " + _ST,
        _cp_unalerted, core=True),
    _sc("da-unalerted", "an adult coded with domestic abuse 0-700 days ago; children have no alert",
        "domestic-abuse on every child", _DA, _DA, _risk_unalerted("domestic_abuse"), core=True),
    _sc("sm-unalerted", "an adult coded with substance misuse 0-700 days ago; children have no alert",
        "substance-misuse on every child", _SM, _SM, _risk_unalerted("substance_misuse"), core=True),
    _sc("ld-parent-unalerted", "a parent (18+ years older than the children) coded with a learning "
        "disability; no family vulnerability code", "parental-learning-disability on every child",
        _LD, _LD, _ld_unalerted, core=True),
    _sc("pre-birth-da", "a woman pregnant (0-250 days ago) whose partner has domestic abuse coded "
        "0-700 days ago; no unborn-child code", "pre-birth on the woman", _PB, _PB + " " + _DA,
        _pb_flag, core=True),
    _sc("maltreatment-unalerted", "a child coded with maltreatment 0-360 days ago; siblings have no "
        "safeguarding code", "maltreatment-siblings on the other children", _MT, _MT, _mt_unalerted,
        core=True),
    _sc("stale-plan-ended", "a child's CP plan ended; siblings' family-member alerts (dated during "
        "the plan) never ended", "stale-family-alert on the siblings", _ST, _ST + " " + _CP,
        _stale_plan_ended, core=True),
    # child protection plans
    _sc("cp-plan-alerted", "a child on an active CP plan; siblings have an active family-member alert "
        "and adults an alert or 'Has child subject of CP plan', dated on/after the plan start "
        "(the same day 1 in 4)", "none", "", _CP + " " + _ST, _cp_alerted),
    _sc("cp-alert-before-plan", "a child on an active CP plan; the family codes are dated 1-300 days "
        "before the plan started", "cp-sibling on the other children, cp-parent on every adult",
        _CP, _CP, _cp_alert_before_plan),
    _sc("cp-alert-ended", "a child on an active CP plan; siblings' alerts were ended (end code on or "
        "after the alert, maybe the same day); adults have 'Has child subject of CP plan'",
        "cp-sibling on the other children", "cp-sibling", _CP + " " + _ST, _cp_alert_ended),
    _sc("cp-plan-ended", "a child's CP plan ended (end code 1+ days after the start); no family codes",
        "none", "", _CP, _cp_plan_ended),
    _sc("cp-plan-ended-same-day", "a CP plan start and end code on the same day", "none", "", _CP,
        _cp_plan_ended_same_day),
    _sc("cp-plan-read-v2", "a child on an active CP plan coded in Read v2 (13Iv.); no family codes",
        "cp-sibling on the other children, cp-parent on every adult", _CP, _CP, _cp_read_v2),
    _sc("cp-plan-starts-after-as-of", "a CP plan start dated 1-30 days after the as-of date; no family "
        "codes", "none", "", _CP, _cp_plan_starts_tomorrow),
    _sc("cp-alert-after-as-of", "a child on an active CP plan; the family codes are dated after the "
        "as-of date (siblings A+1)", "cp-sibling on the other children, cp-parent on every adult",
        _CP, _CP, _cp_alert_tomorrow),
    _sc("cp-sibling-18-on-as-of", "a child on an active CP plan and a sibling whose 18th birthday is "
        "the as-of date; no family codes", "cp-parent on every adult and on the 18-year-old",
        "cp-parent", _CP, _cp_sibling_18_today),
    _sc("cp-sibling-18-day-after", "a child on an active CP plan and a sibling who turns 18 the day "
        "after the as-of date; no family codes", "cp-sibling on that sibling, cp-parent on every "
        "adult", _CP, _CP, _cp_sibling_18_tomorrow),
    _sc("cp-two-plans", "two children on CP plans started at different dates; a third child's alert "
        "is dated between the two starts; adults coded after both",
        "cp-sibling on the third child only", "cp-sibling", _CP, _cp_two_plans),
    _sc("cp-plan-restarted", "a CP plan started, ended and started again; siblings' alerts are dated "
        "before the restart", "cp-sibling on the siblings", "cp-sibling", _CP + " " + _ST,
        _cp_plan_restarted),
    # stale alerts
    _sc("stale-alert-ended", "a CP plan ended and the siblings' alerts were ended too", "none", "",
        _ST + " " + _CP, _stale_alert_ended),
    _sc("stale-no-plan", "a child with an active family-member alert and no plan anywhere in the "
        "household", "stale-family-alert on that child", _ST, _ST, _stale_no_plan),
    _sc("stale-plan-starts-after-as-of", "siblings with active family-member alerts; the only plan "
        "start is dated the day after the as-of date", "stale-family-alert on the siblings", _ST,
        _ST + " " + _CP, _stale_plan_starts_tomorrow),
    # domestic abuse
    _sc("da-alerted", "domestic abuse coded 30-700 days ago; every child has a household alert "
        "dated on/after it", "none", "", _DA, _risk_alerted("domestic_abuse")),
    _sc("da-alert-before-code", "the children's household alerts predate the adult's domestic abuse "
        "code", "domestic-abuse on every child", _DA, _DA, _risk_alert_before("domestic_abuse")),
    _sc("da-730-days", "domestic abuse coded exactly 730 days before the as-of date",
        "domestic-abuse on every child", _DA, _DA, _risk_at("domestic_abuse", 730)),
    _sc("da-731-days", "domestic abuse coded exactly 731 days before the as-of date", "none", "",
        _DA, _risk_at("domestic_abuse", 731)),
    _sc("da-two-adults", "two adults with domestic abuse codes (400-700 and 30-200 days ago); the "
        "children's alerts fall between them", "domestic-abuse on every child", _DA, _DA,
        _da_two_adults),
    _sc("da-alert-after-as-of", "domestic abuse coded; the children's alerts are dated the day after "
        "the as-of date", "domestic-abuse on every child", _DA, _DA, _da_alert_tomorrow),
    _sc("da-code-after-as-of", "the only domestic abuse code is dated 1-30 days after the as-of date",
        "none", "", _DA, _da_code_tomorrow),
    _sc("da-child-18-on-as-of", "domestic abuse coded; one child turns 18 on the as-of date",
        "domestic-abuse on the other children only", _DA, _DA, _da_child_18_today),
    _sc("da-child-18-day-after", "domestic abuse coded; one child turns 18 the day after the as-of "
        "date", "domestic-abuse on every child, that one included", _DA, _DA, _da_child_18_tomorrow),
    _sc("da-care-process-only", "adults coded only 'Routine enquiry about domestic abuse' and "
        "'Domestic violence education' (care processes, not abuse)", "none", "", _DA,
        _da_care_process_only),
    _sc("da-child-victim", "a 14-17 year old coded with domestic abuse (the rule looks at adults)",
        "none", "", _DA, _da_child_victim),
    _sc("cp-and-da", "a child on an active CP plan with every family code in place, and an adult "
        "coded with domestic abuse", "domestic-abuse on every child, the child on the plan too",
        _DA, _DA + " " + _CP, _cp_and_da),
    _sc("da-and-sm", "one adult with domestic abuse, the other with substance misuse; the children "
        "carry the domestic abuse alert only", "substance-misuse on every child", _SM, _SM + " " + _DA,
        _da_and_sm),
    # substance misuse
    _sc("sm-alerted", "substance misuse coded 30-700 days ago; every child has a household alert "
        "dated on/after it", "none", "", _SM, _risk_alerted("substance_misuse")),
    _sc("sm-alert-before-code", "the children's household alerts predate the adult's substance "
        "misuse code", "substance-misuse on every child", _SM, _SM,
        _risk_alert_before("substance_misuse")),
    _sc("sm-730-days", "substance misuse coded exactly 730 days before the as-of date",
        "substance-misuse on every child", _SM, _SM, _risk_at("substance_misuse", 730)),
    _sc("sm-731-days", "substance misuse coded exactly 731 days before the as-of date", "none", "",
        _SM, _risk_at("substance_misuse", 731)),
    # learning disability
    _sc("ld-parent-alerted", "a parent with a learning disability; every child has a family "
        "vulnerability code (any date, even before the parent's code)", "none", "", _LD, _ld_alerted),
    _sc("ld-one-child-alerted", "a parent with a learning disability; only the first child has a "
        "family vulnerability code", "parental-learning-disability on the other children", _LD, _LD,
        _ld_one_child_alerted),
    _sc("ld-alert-after-as-of", "a parent with a learning disability; the children's codes are dated "
        "the day after the as-of date", "parental-learning-disability on every child", _LD, _LD,
        _ld_alert_tomorrow),
    _sc("ld-adult-13-years-older", "an adult sibling with a learning disability 13 years and 1-10 "
        "months older than the child; the mother has no codes", "none", "", _LD, _ld_13_years),
    _sc("ld-adult-14-years-older", "an adult sibling with a learning disability born exactly 14 years "
        "(to the day) before the child", "parental-learning-disability on the child", _LD, _LD,
        _ld_14_years),
    _sc("ld-child-coded", "a child (not an adult) coded with a learning disability", "none", "",
        _LD, _ld_child_coded),
    # pre-birth
    _sc("pre-birth-sm", "a pregnant woman coded with substance misuse herself", "pre-birth on the "
        "woman", _PB, _PB, _pb_sm),
    _sc("pre-birth-ld", "a pregnant woman coded with a learning disability herself", "pre-birth on "
        "the woman", _PB, _PB, _pb_ld),
    _sc("pre-birth-cp", "a pregnant woman whose only child is on an active CP plan; the adults have "
        "'Has child subject of CP plan'", "pre-birth on the woman", _PB, _PB + " " + _CP, _pb_cp),
    _sc("pre-birth-maltreatment", "a pregnant woman whose only child was coded with maltreatment "
        "0-360 days ago", "pre-birth on the woman", _PB, _PB + " " + _MT, _pb_maltreatment),
    _sc("pre-birth-maltreatment-366-days", "a pregnant woman whose only child was coded with "
        "maltreatment exactly 366 days ago", "none", "", _PB, _pb_maltreatment_366),
    _sc("pre-birth-alerted", "pregnancy with a partner's domestic abuse; an unborn-child code dated "
        "on/after the pregnancy code", "none", "", _PB, _pb_alerted),
    _sc("pre-birth-alert-before-pregnancy", "two pregnancy codes; the unborn-child code falls between "
        "them", "pre-birth on the woman", _PB, _PB, _pb_alert_before_pregnancy),
    _sc("pre-birth-pregnancy-ended", "pregnancy 100-270 days ago ended by a delivery or miscarriage "
        "code on/after it (the same day 1 in 4)", "none", "", _PB, _pb_ended),
    _sc("pre-birth-280-days", "pregnancy coded exactly 280 days ago; partner's domestic abuse",
        "pre-birth on the woman", _PB, _PB, _pb_at(280)),
    _sc("pre-birth-281-days", "pregnancy coded exactly 281 days ago; partner's domestic abuse",
        "none", "", _PB, _pb_at(281)),
    _sc("pre-birth-no-risk", "a pregnant woman in a household with no risk codes", "none", "", _PB,
        _pb_no_risk),
    _sc("pre-birth-risk-731-days", "pregnancy; the partner's domestic abuse code is 731 days old",
        "none", "", _PB, _pb_risk_731),
    _sc("pre-birth-teenager", "a pregnant 16-17 year old; her mother's partner has domestic abuse "
        "coded", "pre-birth on the girl, domestic-abuse on every child (her included)",
        _PB + " " + _DA, _PB + " " + _DA, _pb_teenager),
    _sc("pre-birth-after-delivery", "an earlier pregnancy ended by a delivery 420-700 days ago (the "
        "baby lives there); a new pregnancy since; partner's domestic abuse",
        "pre-birth on the woman, domestic-abuse on the baby", _PB + " " + _DA, _PB + " " + _DA,
        _pb_after_delivery),
    _sc("pre-birth-pregnancy-after-as-of", "the only pregnancy code is dated after the as-of date",
        "none", "", _PB, _pb_pregnancy_tomorrow),
    _sc("pre-birth-alert-after-as-of", "pregnancy with a partner's domestic abuse; the unborn-child "
        "code is dated the day after the as-of date", "pre-birth on the woman", _PB, _PB,
        _pb_alert_tomorrow),
    # maltreatment
    _sc("maltreatment-alerted", "a child coded with maltreatment; siblings have a child safeguarding "
        "code dated on/after it", "none", "", _MT, _mt_alerted),
    _sc("maltreatment-365-days", "maltreatment coded exactly 365 days ago",
        "maltreatment-siblings on the other children", _MT, _MT, _mt_at(365)),
    _sc("maltreatment-366-days", "maltreatment coded exactly 366 days ago", "none", "", _MT,
        _mt_at(366)),
    _sc("maltreatment-alert-before", "siblings' safeguarding codes predate the maltreatment code",
        "maltreatment-siblings on the other children", _MT, _MT, _mt_alert_before),
    _sc("maltreatment-sibling-18-on-as-of", "a maltreated child and a sibling who turns 18 on the "
        "as-of date", "none", "", _MT, _mt_sibling_18_today),
    _sc("maltreatment-sibling-18-day-after", "a maltreated child and a sibling who turns 18 the day "
        "after the as-of date", "maltreatment-siblings on that sibling", _MT, _MT,
        _mt_sibling_18_tomorrow),
)


# ----------------------------------------------------------------------------------------
# The practice
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SyntheticPractice:
    """A synthetic export and its truth. Every export column is a string as a CSV holds it."""

    patients: pd.DataFrame  # canonical export layout (+ household_id when asked for)
    events: pd.DataFrame  # patient_id, code, term, date, code_system
    relationships: pd.DataFrame  # patient_id, related_patient_id, relationship
    # patient_id, true_household_id, true_dwelling_id, dwelling_kind, missing_flat (bool)
    truth_households: pd.DataFrame
    expected_flags: pd.DataFrame  # patient_id, rule_id: what the rules raise on true households
    scenarios: pd.DataFrame  # true_household_id, scenario_id
    seed: int
    as_of: date
    codes_from: str  # "rules/codelists" or "built-in research codes"

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"patients": self.patients, "events": self.events,
                "relationships": self.relationships, "truth_households": self.truth_households,
                "expected_flags": self.expected_flags, "scenarios": self.scenarios}

    def equals(self, other: SyntheticPractice) -> bool:
        return (self.seed, self.as_of) == (other.seed, other.as_of) and all(
            a.equals(b) for a, b in zip(self.frames().values(), other.frames().values()))


# Household kinds (generation only)
_SINGLE, _COUPLE, _ELDERLY, _FAMILY, _SHARED, _SCENARIO, _RESIDENT = range(7)
_HOUSEHOLD_SHARES = (0.33, 0.24, 0.115, 0.30, 0.015)  # single, couple, elderly, family, shared
_PEOPLE_PER_HOUSEHOLD = 2.3
# Dwelling kinds, in the order of their names
_DWELLING_KINDS = np.array(["house", "flat", "lettered_house", "named_house", "communal",
                            "shared_house"], dtype=object)
_D_HOUSE, _D_FLAT, _D_LETTERED, _D_NAMED, _D_COMMUNAL, _D_SHARED = range(6)
_ORDINARY_DWELLINGS = (0.58, 0.25, 0.09, 0.08)  # house, flat, lettered, named
_SCENARIO_DWELLINGS = (0.40, 0.35, 0.15, 0.10)


@dataclass
class _People:
    """Per-person arrays, and per-household ones, under construction."""

    hh: np.ndarray  # household index
    role: np.ndarray
    female: np.ndarray
    dob: np.ndarray  # day number
    slot: np.ndarray  # surname slot within the household
    hh_kind: np.ndarray  # per household


def _concat(parts: Sequence[_People]) -> _People:
    offset, hh = 0, []
    for p in parts:
        hh.append(p.hh + offset)
        offset += len(p.hh_kind)
    return _People(np.concatenate(hh).astype(np.int64),
                   *(np.concatenate([getattr(p, k) for p in parts]) for k in
                     ("role", "female", "dob", "slot", "hh_kind")))


def _care_homes(rng: np.random.Generator, n: int, a: int) -> tuple[_People, np.ndarray]:
    """Care home residents, each a household of their own; returns them and each one's home."""
    if n < 150:
        return _People(*(np.zeros(0, dtype=np.int64) for _ in range(6))), np.zeros(0, dtype=np.int64)
    n_homes = max(1, round(n * 0.007 / 26))
    sizes = rng.integers(12, 41, n_homes)
    sizes = np.minimum(sizes, max(12, n // 25))
    total = int(sizes.sum())
    home = np.repeat(np.arange(n_homes), sizes)
    old = rng.random(total) < 0.9
    age = np.where(old, rng.uniform(65, 101, total), rng.uniform(25, 64, total))
    people = _People(np.arange(total), np.full(total, _OTHER), rng.random(total) < 0.65,
                     a - np.round(age * _YEAR).astype(np.int64), np.zeros(total, dtype=np.int64),
                     np.full(total, _RESIDENT))
    return people, home


def _ordinary(rng: np.random.Generator, n: int, a: int) -> _People:
    """Exactly ``n`` people in ordinary households, vectorised."""
    h = int(n / 1.6) + 16  # more than enough households; the surplus is cut off
    kind = rng.choice(5, size=h, p=_HOUSEHOLD_SHARES)
    one_parent = rng.random(h) < 0.25
    n_adults = np.select([kind == _SINGLE, kind == _FAMILY, kind == _SHARED],
                         [1, np.where(one_parent, 1, 2), rng.integers(3, 7, h)], 2)
    n_children = np.where(kind == _FAMILY, rng.choice(5, size=h, p=[0.38, 0.38, 0.16, 0.06, 0.02]) + 1, 0)
    n_grand = ((kind == _FAMILY) & (rng.random(h) < 0.06)).astype(np.int64)
    size = n_adults + n_children + n_grand
    cs = np.cumsum(size)
    k = int(np.searchsorted(cs, n, side="right"))
    rest = n - (int(cs[k - 1]) if k else 0)
    kind = np.concatenate([kind[:k], np.full(rest, _SINGLE)])
    n_adults = np.concatenate([n_adults[:k], np.ones(rest, dtype=np.int64)])
    n_children = np.concatenate([n_children[:k], np.zeros(rest, dtype=np.int64)])
    size = np.concatenate([size[:k], np.ones(rest, dtype=np.int64)])
    h = len(kind)
    hh = np.repeat(np.arange(h), size)
    pos = np.arange(len(hh)) - np.repeat(np.cumsum(size) - size, size)
    na, nc = n_adults[hh], n_children[hh]
    kh = kind[hh]
    role = np.where(pos < na, np.where(kh == _SHARED, _OTHER, _ADULT),
                    np.where(pos < na + nc, _CHILD, _GRANDPARENT))
    m = len(hh)

    # Ages in years. Families: the mother's age first, children within 18-45 years of it.
    base = np.select([kind == _SINGLE, kind == _COUPLE, kind == _ELDERLY, kind == _FAMILY],
                     [rng.uniform(18.5, 92, h), rng.uniform(20, 70, h), rng.uniform(65, 92, h),
                      np.clip(rng.normal(37, 7, h), 20, 58)], 0.0)
    lo, hi = np.maximum(0.02, base - 45), np.minimum(17.9, base - 18.1)
    # Siblings are born 1-4 years apart (3% twins), squeezed when the window is short.
    child = role == _CHILD
    first_child = (np.cumsum(size) - size + n_adults)[hh]
    gap = np.where(child & (pos > na),
                   np.where(rng.random(m) < 0.03, 0.0, rng.uniform(1.0, 4.0, m)), 0.0)
    cg = np.cumsum(gap)
    cum = cg - cg[np.minimum(first_child, m - 1)]
    spread = np.zeros(h)
    np.maximum.at(spread, hh[child], cum[child])
    scale = np.where(spread > 0, np.minimum(1.0, (hi - lo) / np.maximum(spread, 1e-9)), 1.0)
    youngest = lo + rng.random(h) * np.maximum(hi - lo - spread * scale, 0.0)
    u = rng.random(m)
    age = np.select([child, role == _GRANDPARENT, kh == _SHARED],
                    [youngest[hh] + cum * scale[hh], np.minimum(base[hh] + 20 + 12 * u, 99.0),
                     19 + 21 * u], base[hh])
    # The second adult: near the first, but 18-45 years older than each child.
    second = (role == _ADULT) & (pos == 1)
    oldest = np.full(h, -np.inf)
    youngest = np.full(h, np.inf)
    np.maximum.at(oldest, hh[child], age[child])
    np.minimum.at(youngest, hh[child], age[child])
    partner_age = age + rng.normal(1.5, 3.5, m)
    floor = np.where(kh == _ELDERLY, 60.0, 18.5)
    has_kids = np.isfinite(oldest[hh])
    partner_age = np.where(has_kids, np.clip(partner_age, oldest[hh] + 18.2, youngest[hh] + 44.8),
                           partner_age)
    age = np.where(second, np.maximum(partner_age, floor), age)
    dob = a - np.round(age * _YEAR).astype(np.int64)

    # Sex: a family's first adult is the mother 92% of the time; 96% of partners are of the
    # other sex; grandparents are grandmothers 65% of the time; anyone else half and half.
    r = rng.random(m)
    first_female = rng.random(h) < np.where(kind == _FAMILY, 0.92, 0.5)
    partner_female = np.where(r < 0.04, first_female[hh], ~first_female[hh])
    female = np.where(pos == 0, first_female[hh],
                      np.where(second & (kh != _SHARED), partner_female,
                               np.where(role == _GRANDPARENT, r < 0.65, r < 0.5)))
    # Surname slots: 0 the first adult's; 1 a partner's own; 2 a step-child's; 3 a
    # grandparent's own; 4+ each sharer's own.
    own_name = rng.random(h) < np.where(kind == _FAMILY, 0.35, 0.3)
    r2 = rng.random(m)
    slot = np.select(
        [kh == _SHARED, second, child & own_name[hh] & (n_adults[hh] == 2) & (r2 < 0.08),
         child & own_name[hh] & (r2 < 0.5), role == _GRANDPARENT],
        [4 + pos, np.where(own_name[hh], 1, 0), 2, 1, np.where(r2 < 0.5, 0, 3)], 0)
    return _People(hh, role, female.astype(bool), dob, slot, kind)


def _scenario_people(rng: np.random.Generator, as_of: date, book: _CodeBook, n_patients: int,
                     budget: int
                     ) -> tuple[_People, list[tuple[int, _Code, int]], list[tuple[int, str]], list[str]]:
    """Build the scenario households. Returns them, their events and flags (by person index)
    and each household's scenario id."""
    available, missing_core = [], []
    for s in SCENARIOS:
        try:  # a dry run: does the codebook hold every code this scenario asks for?
            for trial in range(4):
                s.build(_Build(np.random.Generator(np.random.PCG64(trial)), as_of, book))
        except _Unavailable as exc:
            if s.core:
                missing_core.append(f"{s.id} needs {exc}")
            continue
        available.append(s)
    if missing_core:
        raise ValueError("the codelists lack codes a core scenario needs (the generated truth "
                         "would not exercise every rule): " + "; ".join(missing_core))
    families = _HOUSEHOLD_SHARES[_FAMILY] * n_patients / _PEOPLE_PER_HOUSEHOLD
    target = max(round(0.13 * families), min(len(available), n_patients // 25))
    core = [s for s in available if s.core]
    rest = [s for s in available if not s.core]
    plan = core + [rest[i] for i in rng.permutation(len(rest))]
    if target > len(plan):
        weights = np.array([4.0 if s.core else 1.0 for s in available])
        extra = rng.choice(len(available), size=target - len(plan), p=weights / weights.sum())
        plan += [available[i] for i in extra]
    plan = plan[:target]
    if n_patients < 200:
        budget = min(budget, n_patients // 2)

    members: list[tuple[int, bool, int, int]] = []
    hh: list[int] = []
    events: list[tuple[int, _Code, int]] = []
    flags: list[tuple[int, str]] = []
    ids: list[str] = []
    for s in plan:
        b = _Build(rng, as_of, book)
        s.build(b)
        if len(members) + len(b.members) > budget:
            continue
        base = len(members)
        members += b.members
        hh += [len(ids)] * len(b.members)
        events += [(base + m, c, d) for m, c, d in b.events]
        flags += [(base + m, r) for m, r in b.flags]
        ids.append(s.id)
    cols = list(zip(*members)) if members else [(), (), (), ()]
    people = _People(np.array(hh, dtype=np.int64), np.array(cols[0], dtype=np.int64),
                     np.array(cols[1], dtype=bool), np.array(cols[2], dtype=np.int64),
                     np.array(cols[3], dtype=np.int64), np.full(len(ids), _SCENARIO))
    return people, events, flags, ids


# ----------------------------------------------------------------------------------------
# Dwellings, streets, postcodes, addresses
# ----------------------------------------------------------------------------------------
def _pick(u: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.cumsum(probs) / sum(probs), u, side="right").clip(0, len(probs) - 1)


def _group_sizes(n: int, sizes: np.ndarray) -> np.ndarray:
    """Cut ``n`` items into consecutive groups of the given sizes (the last one trimmed)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cs = np.cumsum(sizes)
    k = int(np.searchsorted(cs, n, side="left")) + 1
    out = sizes[:k].copy()
    out[-1] -= int(cs[k - 1]) - n
    return out


def _rank_within(group: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For items sorted by group: how many earlier items of the same group have ``mask``."""
    c = np.cumsum(mask) - mask
    first = np.r_[True, group[1:] != group[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(group)), 0))
    return c - c[start]


def _top_k(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to weights (Gumbel top-k)."""
    keys = np.log(weights) - np.log(-np.log(rng.random(len(weights))))
    return np.argsort(-keys, kind="stable")[:k]


def _districts(count: int) -> list[tuple[str, str, str]]:
    """``count`` postcode districts, each with its town and county. Beyond the real
    districts (more than about 2 million patients) come made-up ones, WS16 onwards, whose
    towns take the real districts' towns in turn rather than all being Walsall."""
    out = list(_DISTRICTS)
    towns = list(dict.fromkeys((town, county) for _, town, county in _DISTRICTS))
    n = 16
    while len(out) < count:
        town, county = towns[(n - 16) % len(towns)]
        out.append((f"WS{n}", town, county))
        n += 1
    return out[:count]


@dataclass
class _Map:
    """Where every dwelling is: per dwelling, per plot and per street arrays."""

    d_kind: np.ndarray
    d_plot: np.ndarray
    d_flat: np.ndarray  # flat number (flats)
    d_letter: np.ndarray  # 0=A, 1=B, ... (lettered houses)
    d_postcode: np.ndarray  # object
    p_street: np.ndarray
    p_number: np.ndarray
    p_style: np.ndarray  # flats: 0 "12 Mill Road", 1 "Oak Court, 12 Mill Road", 2 "Oak Court, Mill Road"
    p_show_number: np.ndarray  # named houses
    p_name: np.ndarray  # object: building, house or care home name
    s_base: np.ndarray
    s_type: np.ndarray
    s_town: np.ndarray  # object
    s_county: np.ndarray  # object


def _lay_out(rng: np.random.Generator, d_kind: np.ndarray, home_of_dwelling: np.ndarray) -> _Map:
    d = len(d_kind)
    order = rng.permutation(d)
    d_plot = np.zeros(d, dtype=np.int64)
    d_flat = np.zeros(d, dtype=np.int64)
    d_letter = np.zeros(d, dtype=np.int64)
    plot_kind: list[np.ndarray] = []
    n_plots = 0
    # Flats: buildings holding 1-16 of the practice's households, flat numbers rising by 1-3.
    flats = order[d_kind[order] == _D_FLAT]
    sizes = _group_sizes(len(flats), np.minimum(1 + rng.geometric(0.28, len(flats) + 1), 16))
    bld = np.repeat(np.arange(len(sizes)), sizes)
    d_plot[flats] = n_plots + bld
    gaps = rng.integers(1, 4, len(flats))
    cs = np.cumsum(gaps)
    d_flat[flats] = cs - np.repeat(cs[np.cumsum(sizes) - sizes] - gaps[np.cumsum(sizes) - sizes], sizes)
    n_plots += len(sizes)
    plot_kind.append(np.full(len(sizes), _D_FLAT))
    # Lettered houses: 12A and 12B (and 12C) on one plot; a plot alone is A or B.
    lettered = order[d_kind[order] == _D_LETTERED]
    sizes = _group_sizes(len(lettered), rng.choice([1, 2, 3], size=len(lettered) + 1, p=[0.3, 0.5, 0.2]))
    grp = np.repeat(np.arange(len(sizes)), sizes)
    pos = np.arange(len(lettered)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    d_plot[lettered] = n_plots + grp
    d_letter[lettered] = pos + ((sizes[grp] == 1) & (rng.random(len(lettered)) < 0.4))
    n_plots += len(sizes)
    plot_kind.append(np.full(len(sizes), _D_LETTERED))
    # Everything else: one dwelling per plot.
    single = order[~np.isin(d_kind[order], (_D_FLAT, _D_LETTERED))]
    d_plot[single] = n_plots + np.arange(len(single))
    n_plots += len(single)
    plot_kind.append(d_kind[single])
    p_kind = np.concatenate(plot_kind) if plot_kind else np.zeros(0, dtype=np.int64)
    p = n_plots

    # Streets of 8-80 plots; plots numbered upwards in steps of 1-3 from 1-5.
    street_sizes = _group_sizes(p, rng.integers(8, 81, p // 8 + 2))
    s = len(street_sizes)
    plot_order = rng.permutation(p)
    p_street = np.zeros(p, dtype=np.int64)
    p_street[plot_order] = np.repeat(np.arange(s), street_sizes)
    # work in street order from here: plot_order lists plots street by street
    steps = rng.choice([1, 2, 2, 2, 3], size=p)
    first = np.r_[0, np.cumsum(street_sizes)[:-1]]
    steps[first] = rng.integers(1, 6, s)
    cs = np.cumsum(steps)
    p_number = np.zeros(p, dtype=np.int64)
    p_number[plot_order] = cs - np.repeat(cs[first] - steps[first], street_sizes)

    p_style = np.where(p_kind == _D_FLAT, _pick(rng.random(p), (0.55, 0.20, 0.25)), 0)
    p_show_number = rng.random(p) < 0.4
    # Names unique within a street: rank among the street's named plots plus a street offset.
    sorted_street = p_street[plot_order]
    kind_sorted = p_kind[plot_order]
    offset = rng.integers(0, 1000, s)
    p_name = np.full(p, "", dtype=object)
    building = (kind_sorted == _D_FLAT) & (p_style[plot_order] > 0)
    rank = _rank_within(sorted_street, building) + offset[sorted_street]
    names = np.array([f"{a} {b}" for a in _BUILDING_FIRST for b in _BUILDING_SECOND], dtype=object)
    names = names[rng.permutation(len(names))]
    p_name[plot_order[building]] = names[rank[building] % len(names)]
    named = kind_sorted == _D_NAMED
    rank = _rank_within(sorted_street, named) + offset[sorted_street]
    p_name[plot_order[named]] = np.array(_HOUSE_NAMES, dtype=object)[rank[named] % len(_HOUSE_NAMES)]
    communal_dw = np.flatnonzero(d_kind == _D_COMMUNAL)
    if len(communal_dw):
        homes = np.array([f"{_CARE_HOME_FIRST[i % len(_CARE_HOME_FIRST)]} "
                          f"{_CARE_HOME_SECOND[(i // len(_CARE_HOME_FIRST)) % len(_CARE_HOME_SECOND)]}"
                          for i in range(int(home_of_dwelling.max()) + 1)], dtype=object)
        p_name[d_plot[communal_dw]] = homes[home_of_dwelling[communal_dw]]

    # Postcode units: 11-31 consecutive dwellings of a street share one postcode.
    per_plot = np.bincount(d_plot, minlength=p)[plot_order]
    cs = np.cumsum(per_plot)
    before = cs - per_plot - np.repeat(cs[first] - per_plot[first], street_sizes)
    unit_size = rng.integers(11, 32, s)
    unit_in_street = before // unit_size[sorted_street]
    key = sorted_street * (int(unit_in_street.max(initial=0)) + 1) + unit_in_street
    _, unit_sorted = np.unique(key, return_inverse=True)
    p_unit = np.zeros(p, dtype=np.int64)
    p_unit[plot_order] = unit_sorted
    n_units = int(unit_sorted.max(initial=-1)) + 1
    unit_street = np.zeros(n_units, dtype=np.int64)
    unit_street[unit_sorted] = sorted_street

    # Each street gets a (district, sector); each unit two letters, unique within the sector.
    n_sectors = max(27, math.ceil(n_units / 200))
    districts = _districts(max(3, math.ceil(n_sectors / 9)))
    sectors = [(dd, sec) for dd in range(len(districts)) for sec in range(1, 10)]
    sectors = [sectors[i] for i in rng.permutation(len(sectors))]
    street_sector = rng.permutation(s) % len(sectors)
    unit_sector = street_sector[unit_street]
    order_u = np.argsort(unit_sector, kind="stable")
    rank_u = np.zeros(n_units, dtype=np.int64)
    rank_u[order_u] = _rank_within(unit_sector[order_u], np.ones(n_units, dtype=np.int64))
    if n_units and rank_u.max() >= 400:
        raise RuntimeError("too many postcode units in one sector")  # cannot happen at 200/sector on average
    letters = np.array([x + y for x in _UNIT_LETTERS for y in _UNIT_LETTERS], dtype=object)
    start = rng.integers(0, 400, len(sectors))
    unit_letters = letters[(rank_u * 7 + start[unit_sector]) % 400]
    outward = np.array([districts[dd][0] for dd, _ in sectors], dtype=object)
    sector_digit = np.array([str(sec) for _, sec in sectors], dtype=object)
    unit_pc = outward[unit_sector] + " " + sector_digit[unit_sector] + unit_letters
    d_postcode = unit_pc[p_unit[d_plot]]

    # Street names: unique within a town.
    town_of_district = np.array([t for _, t, _ in districts], dtype=object)
    county_of_district = np.array([c for _, _, c in districts], dtype=object)
    s_district = np.array([sectors[i][0] for i in street_sector], dtype=np.int64)
    s_town = town_of_district[s_district]
    s_county = county_of_district[s_district]
    s_base = np.zeros(s, dtype=np.int64)
    s_type = np.zeros(s, dtype=np.int64)
    n_types = len(_STREET_TYPES)
    weights = np.tile(np.array(_STREET_TYPE_WEIGHTS, dtype=float), len(_STREET_BASES))
    for town in sorted(set(s_town.tolist())):
        idx = np.flatnonzero(s_town == town)
        # A town has names for about 2,500 streets. A bigger one (several districts each,
        # at 3 million patients and more) repeats names across its districts, as large
        # towns do, while no two streets of one district share a name.
        groups = [idx] if len(idx) <= len(weights) else \
            [idx[s_district[idx] == dd] for dd in sorted(set(s_district[idx].tolist()))]
        for group in groups:
            if len(group) > len(weights):
                raise RuntimeError("too many streets for one postcode district")
            combo = _top_k(rng, weights, len(group))
            s_base[group], s_type[group] = combo // n_types, combo % n_types
    return _Map(d_kind, d_plot, d_flat, d_letter, d_postcode, p_street, p_number, p_style,
                p_show_number, p_name, s_base, s_type, s_town, s_county)


def _typo(word: str, op: int, u: float) -> str:
    """A small typing slip inside a word (its first letter kept)."""
    if len(word) < 4:
        return word
    i = 1 + int(u * (len(word) - 2))
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    vowels = "aeiou"
    if word[i] in vowels:
        return word[:i] + vowels[(vowels.index(word[i]) + 1) % 5] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _apply(values: np.ndarray, mask: np.ndarray, fn: Callable[[str], str]) -> None:
    idx = np.flatnonzero(mask)
    if len(idx):
        values[idx] = [fn(v) for v in values[idx]]


def _number_strings(values: np.ndarray) -> np.ndarray:
    table = np.array([str(i) for i in range(int(values.max(initial=0)) + 1)], dtype=object)
    return table[values]


def _addresses(rng: np.random.Generator, where: _Map, dwelling: np.ndarray
               ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Five address lines and a postcode per record, with the documented noise; and which
    records lost their flat number."""
    n = len(dwelling)
    kind = where.d_kind[dwelling]
    plot = where.d_plot[dwelling]
    street = where.p_street[plot]
    style = where.p_style[plot]
    r = NOISE_RATES

    base = np.array(_STREET_BASES, dtype=object)[where.s_base[street]]
    typo = rng.random(n) < r["street_typo"]
    ops, us = rng.integers(0, 4, n), rng.random(n)
    idx = np.flatnonzero(typo)
    base[idx] = [_typo(base[i], int(ops[i]), float(us[i])) for i in idx]
    t = where.s_type[street]
    abbrev = rng.random(n) < r["street_type_abbreviated"]
    stop = abbrev & (rng.random(n) < r["abbreviation_full_stop"]) & (t != len(_STREET_TYPES) - 1)
    type_word = np.where(abbrev, np.array(_STREET_ABBREV, dtype=object)[t],
                         np.array(_STREET_TYPES, dtype=object)[t])
    type_word = np.where(stop, type_word + ".", type_word)
    street_name = base + " " + type_word

    number = _number_strings(where.p_number[plot])
    letter = np.array(list("ABCDEFGH"), dtype=object)[np.minimum(where.d_letter[dwelling], 7)]
    lu = rng.random(n)
    letter = np.where(lu < r["letter_spaced"], " " + letter,
                      np.where(lu < r["letter_spaced"] + r["letter_lower"],
                               np.char.lower(letter.astype(str)).astype(object), letter))
    house_no = np.where(kind == _D_LETTERED, number + letter, number)
    has_number = (np.isin(kind, (_D_HOUSE, _D_LETTERED, _D_SHARED, _D_COMMUNAL))
                  | ((kind == _D_FLAT) & (style < 2))
                  | ((kind == _D_NAMED) & where.p_show_number[plot]))
    street_line = np.where(has_number, house_no + " " + street_name, street_name)

    flat = kind == _D_FLAT
    missing_flat = flat & (rng.random(n) < r["missing_flat"])
    flat_no = _number_strings(where.d_flat[dwelling])
    fstyle = _pick(rng.random(n), (0.55, 0.15, 0.15, 0.15))  # Flat, Apartment, Apt, 3/12
    prefix = np.array(["Flat ", "Apartment ", "Apt ", ""], dtype=object)[fstyle]
    name = where.p_name[plot]
    seg_a = np.full(n, "", dtype=object)
    seg_b = np.full(n, "", dtype=object)
    numbered = flat & ~missing_flat & (style == 0)
    slash = numbered & (fstyle == 3)
    street_line = np.where(slash, flat_no + "/" + street_line, street_line)
    seg_a = np.where(numbered & ~slash, prefix + flat_no, seg_a)
    named_bld = flat & ~missing_flat & (style > 0)
    apart = named_bld & (rng.random(n) < 0.25)
    seg_a = np.where(named_bld & apart, np.where(fstyle == 3, "Flat ", prefix) + flat_no, seg_a)
    seg_b = np.where(named_bld & apart, name, seg_b)
    seg_a = np.where(named_bld & ~apart, prefix + flat_no + " " + name, seg_a)
    seg_a = np.where(flat & missing_flat & (style > 0), name, seg_a)
    seg_a = np.where(np.isin(kind, (_D_NAMED, _D_COMMUNAL)), name, seg_a)

    merge = (seg_a != "") & (seg_b == "") & (rng.random(n) < r["merged_first_line"])
    street_line = np.where(merge, seg_a + ", " + street_line, street_line)
    seg_a = np.where(merge, "", seg_a)
    split = has_number & ~merge & ~slash & (rng.random(n) < r["number_on_own_line"])
    num_line = np.where(split, house_no, "")
    street_line = np.where(split, street_name, street_line)
    town = np.where(rng.random(n) < r["town_present"], where.s_town[street], "")
    county = np.where(rng.random(n) < r["county_present"], where.s_county[street], "")

    grid = np.stack([seg_a, seg_b, num_line, street_line, town, county], axis=1).astype(object)
    order = np.argsort(grid == "", axis=1, kind="stable")
    grid = np.take_along_axis(grid, order, axis=1)[:, :5]
    lines = [grid[:, j].copy() for j in range(5)]

    u = rng.random(n)
    upper, lower = u < r["upper_case"], (u >= r["upper_case"]) & (u < r["upper_case"] + r["lower_case"])
    no_commas = rng.random(n) < r["commas_removed"]
    for col in lines:
        _apply(col, upper, str.upper)
        _apply(col, lower, str.lower)
        _apply(col, no_commas, lambda v: v.replace(",", ""))
    _apply(lines[0], (rng.random(n) < r["trailing_comma"]) & ~no_commas, lambda v: v + ",")
    _apply(lines[0], rng.random(n) < r["double_space"], lambda v: v.replace(" ", "  ", 1))
    _apply(lines[1], (rng.random(n) < r["trailing_space"]) & (lines[1] != ""), lambda v: v + " ")

    postcode = where.d_postcode[dwelling].copy()
    wrong = np.flatnonzero(rng.random(n) < r["postcode_wrong_char"])
    picks, subs = rng.integers(0, 3, len(wrong)), rng.integers(1, 20, len(wrong))
    for i, which, sub in zip(wrong, picks, subs):
        pc = postcode[i]
        pos = len(pc) - 3 + int(which)
        if which == 0:  # the sector digit
            new = str((int(pc[pos]) + int(sub) % 9 + 1) % 10)
        else:
            new = _UNIT_LETTERS[(_UNIT_LETTERS.index(pc[pos]) + int(sub)) % 20]
        postcode[i] = pc[:pos] + new + pc[pos + 1:]
    _apply(postcode, rng.random(n) < r["postcode_no_space"], lambda v: v.replace(" ", ""))
    _apply(postcode, rng.random(n) < r["postcode_lower"], str.lower)
    postcode[rng.random(n) < r["postcode_missing"]] = ""
    return lines, postcode, missing_flat


# ----------------------------------------------------------------------------------------
# Names, NHS numbers, dates
# ----------------------------------------------------------------------------------------
def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit for the first nine digits of an NHS number (None when
    the remainder makes 10, so no valid number starts with these digits)."""
    total = sum(int(c) * w for c, w in zip(first_nine, range(10, 1, -1)))
    check = 11 - total % 11
    return None if check == 10 else 0 if check == 11 else check


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers, all starting with 9 (not issued to patients)."""
    weights = np.arange(10, 1, -1)
    got = np.zeros(0, dtype=np.int64)
    while len(got) < n:
        base = 900_000_000 + rng.integers(0, 100_000_000, size=int((n - len(got)) * 1.15) + 16)
        digits = (base[:, None] // 10 ** np.arange(8, -1, -1)) % 10
        check = 11 - (digits @ weights) % 11
        check = np.where(check == 11, 0, check)
        ok = check != 10
        candidates = np.concatenate([got, base[ok] * 10 + check[ok]])
        _, first = np.unique(candidates, return_index=True)
        got = candidates[np.sort(first)]
    return got[:n].astype(str).astype(object)


def _format_days(days: np.ndarray, uk: np.ndarray) -> pa.Array:
    """Day numbers as "YYYY-MM-DD", or "DD/MM/YYYY" where ``uk`` (each distinct day is
    formatted once)."""
    uniq, inverse = np.unique(days, return_inverse=True)
    iso = np.datetime_as_string(uniq.astype("datetime64[D]")).tolist()
    british = [f"{s[8:10]}/{s[5:7]}/{s[:4]}" for s in iso]
    return _take(iso + british, inverse.ravel() + len(uniq) * uk)


def _surnames(rng: np.random.Generator, groups: int) -> np.ndarray:
    table = np.array(_SURNAMES, dtype=object)
    p = 1.0 / (np.arange(len(table)) + 8.0)
    p /= p.sum()
    first = table[rng.choice(len(table), size=groups, p=p)]
    second = table[rng.choice(len(table), size=groups, p=p)]
    double = (rng.random(groups) < 0.02) & (first != second)
    return np.where(double, first + "-" + second, first)


def _forenames(rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
    n = len(female)
    f, m = np.array(_FEMALE, dtype=object), np.array(_MALE, dtype=object)
    first = np.where(female, f[rng.integers(0, len(f), n)], m[rng.integers(0, len(m), n)])
    middle = np.where(female, f[rng.integers(0, len(f), n)], m[rng.integers(0, len(m), n)])
    has_middle = (rng.random(n) < 0.15) & (middle != first)
    return np.where(has_middle, first + " " + middle, first)


def _ids(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{v:0{width}d}" for v in values.tolist()], dtype=object)


def _take(table: Sequence[str] | np.ndarray | pa.Array, index: np.ndarray) -> pa.Array:
    """``table[index]`` as an Arrow string array, without a Python object per row."""
    if not isinstance(table, pa.Array):
        table = pa.array(table, type=pa.large_string())
    return table.take(pa.array(np.asarray(index, dtype=np.int64)))


def _str_column(values: pa.Array | np.ndarray) -> pd.Series:
    """A column of pandas' default string dtype (Arrow-backed in pandas 3)."""
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.large_string())
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pd.Series(values, dtype=dtype)
    return pd.Series(values.to_pylist(), dtype=object)


def _frame(columns: dict[str, pa.Array | np.ndarray | pd.Series]) -> pd.DataFrame:
    return pd.DataFrame({k: v if isinstance(v, pd.Series) else _str_column(v) for k, v in columns.items()})


# ----------------------------------------------------------------------------------------
# Events and relationships
# ----------------------------------------------------------------------------------------
def _events(rng: np.random.Generator, dob: np.ndarray, a: int, book: _CodeBook,
            scenario_events: list[tuple[int, _Code, int]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_Code]]:
    """Background events for everyone (about 5 a patient with the scenario codes), plus the
    scenario codes. Returns person, code index, day, and the code table."""
    n = len(dob)
    table = list(book.noise)
    index = {(c.code, c.system): i for i, c in enumerate(table)}
    s_person, s_code, s_day = [], [], []
    for m, c, d in scenario_events:
        key = (c.code, c.system)
        if key not in index:
            index[key] = len(table)
            table.append(c)
        s_person.append(m)
        s_code.append(index[key])
        s_day.append(d)
    target = max(0.0, 5.0 * n - len(s_person))
    weight = 1.0 + np.maximum(a - dob, 0) / _YEAR / 25.0  # older people are seen more often
    counts = rng.poisson(weight * (target / weight.sum())) if n else np.zeros(0, dtype=np.int64)
    person = np.repeat(np.arange(n), counts)
    e = len(person)
    start = np.maximum(dob, a - round(20 * _YEAR))[person]
    day = start + (rng.random(e) * (a - start + 1)).astype(np.int64)
    future = rng.random(e) < NOISE_RATES["event_after_as_of"]
    day[future] = a + rng.integers(1, 61, int(future.sum()))
    care = np.array([c.code in _CARE_PROCESS_CODES for c in book.noise])
    p = np.full(len(book.noise), 1.0)
    if care.any() and (~care).any():
        p[care] = _CARE_PROCESS_SHARE / care.sum()
        p[~care] = (1 - _CARE_PROCESS_SHARE) / (~care).sum()
    code = rng.choice(len(book.noise), size=e, p=p / p.sum())
    return (np.concatenate([person, np.array(s_person, dtype=np.int64)]),
            np.concatenate([code, np.array(s_code, dtype=np.int64)]),
            np.concatenate([day, np.array(s_day, dtype=np.int64)]), table)


def _relationships(rng: np.random.Generator, people: _People) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recorded relationships for some households: (person, related person, word)."""
    h = len(people.hh_kind)
    size = np.bincount(people.hh, minlength=h)
    eligible = (size >= 2) & np.isin(people.hh_kind, (_COUPLE, _ELDERLY, _FAMILY, _SCENARIO))
    chosen = eligible & (rng.random(h) < NOISE_RATES["relationships_recorded"])
    # Every ordered pair of members of a chosen household (people are sorted by household).
    first = np.cumsum(size) - size
    left = np.flatnonzero(chosen[people.hh])
    n_pairs = size[people.hh[left]]
    p = np.repeat(left, n_pairs)
    q = np.repeat(first[people.hh[left]], n_pairs) + (
        np.arange(len(p)) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs))
    p, q = p[p != q], q[p != q]
    role, role_r, f_r = people.role[p], people.role[q], people.female[q]
    u, v = rng.random(len(p)), rng.random(len(p))
    cases = [(role == _CHILD) & (role_r == _ADULT), (role == _CHILD) & (role_r == _CHILD),
             (role == _ADULT) & (role_r == _ADULT), (role == _ADULT) & (role_r == _CHILD),
             (role == _CHILD) & (role_r == _GRANDPARENT)]
    words = np.select(cases, [
        np.where(v < 0.8, np.where(f_r, "mother", "father"), np.where(v < 0.92, "parent", "guardian")),
        np.where(v < 0.5, "sibling", np.where(f_r, "sister", "brother")),
        np.full(len(v), "partner"),
        np.where(v < 0.5, np.where(f_r, "daughter", "son"), "child"),
        np.where(f_r, "grandmother", "grandfather"),
    ], "")
    keep = (words != "") & (u < np.select(cases, [0.9, 0.6, 0.7, 0.3, 0.5], 0.0))
    return p[keep], q[keep], words[keep].astype(object)


# ----------------------------------------------------------------------------------------
# The public API
# ----------------------------------------------------------------------------------------
def generate_practice(n_patients: int, seed: int, as_of: date, *, include_household_ids: bool = False,
                      rules_dir: Path | None = None) -> SyntheticPractice:
    """A synthetic practice of exactly ``n_patients`` patients, the same for the same seed.

    ``rules_dir`` is the rules folder whose ``codelists/`` the codes are checked against
    (default: the shipped rules). ``include_household_ids`` adds the true household as
    ``household_id`` to the patients, as some clinical systems export one.
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    rng = np.random.Generator(np.random.PCG64(seed))
    book = _CodeBook.load(rules_dir)
    a = _day(as_of)

    residents, home = _care_homes(rng, n_patients, a)
    scen, scen_events, scen_flags, scen_ids = _scenario_people(
        rng, as_of, book, n_patients, n_patients - len(residents.hh))
    ordinary = _ordinary(rng, n_patients - len(residents.hh) - len(scen.hh), a)
    people = _concat([scen, ordinary, residents])  # scenario people first: their indices hold
    n, h = len(people.hh), len(people.hh_kind)
    assert n == n_patients

    # Dwellings: one per household, except that a care home's residents share one.
    kind = people.hh_kind
    own = np.flatnonzero(kind != _RESIDENT)
    u = rng.random(len(own))
    d_own = np.where(kind[own] == _SHARED, _D_SHARED,
                     np.where(kind[own] == _SCENARIO, _pick(u, _SCENARIO_DWELLINGS),
                              _pick(u, _ORDINARY_DWELLINGS)))
    n_homes = int(home.max()) + 1 if len(home) else 0
    d_kind = np.concatenate([d_own, np.full(n_homes, _D_COMMUNAL)]).astype(np.int64)
    hh_dwelling = np.zeros(h, dtype=np.int64)
    hh_dwelling[own] = np.arange(len(own))
    hh_dwelling[h - len(home):] = len(own) + home
    home_of_dwelling = np.r_[np.full(len(own), -1), np.arange(n_homes)].astype(np.int64)
    where = _lay_out(rng, d_kind, home_of_dwelling)
    dwelling = hh_dwelling[people.hh]
    lines, postcode, missing_flat = _addresses(rng, where, dwelling)

    # Names, identifiers, dates of birth.
    _, group = np.unique(people.hh * 16 + people.slot, return_inverse=True)
    surname = _surnames(rng, int(group.max()) + 1)[group]
    forenames = _forenames(rng, people.female)
    rank = rng.permutation(n)
    pid = _ids("P", rank + 1, max(6, len(str(n))))
    hid = _ids("H", rng.permutation(h) + 1, max(6, len(str(h))))
    did = _ids("D", rng.permutation(len(d_kind)) + 1, max(6, len(str(len(d_kind)))))
    nhs = _nhs_numbers(rng, n)
    nhs[rng.random(n) < NOISE_RATES["nhs_number_blank"]] = ""
    dob = _format_days(people.dob, rng.random(n) < NOISE_RATES["dob_uk_format"])
    sex = np.where(people.female, "F", "M").astype(object)

    by_id = np.argsort(rank)
    pid_table = pa.array(pid, type=pa.large_string())
    columns: dict[str, pa.Array] = {
        "patient_id": _take(pid_table, by_id), "nhs_number": _take(nhs, by_id),
        "surname": _take(surname, by_id), "forenames": _take(forenames, by_id),
        "date_of_birth": dob.take(pa.array(by_id)), "sex": _take(sex, by_id)}
    columns.update({f"address_line_{i + 1}": _take(line, by_id) for i, line in enumerate(lines)})
    columns["postcode"] = _take(postcode, by_id)
    if include_household_ids:
        columns["household_id"] = _take(hid, people.hh[by_id])
    patients = _frame(columns)

    # Events, in patient, date, code order. Codes, terms and systems are small tables;
    # each row only picks an entry (a Read v2 code's 7-character form is a second entry).
    person, code, day, table = _events(rng, people.dob, a, book, scen_events)
    span = int(day.max(initial=0) - day.min(initial=0)) + 1
    key = (rank[person] * span + (day - day.min(initial=0))) * len(table) + code
    order = np.argsort(key, kind="stable")
    person, code, day = person[order], code[order], day[order]
    e, k = len(person), len(table)
    system_names = ["snomedct", "readv2", "ctv3", ""]
    system_of = np.array([system_names.index(c.system) for c in table], dtype=np.int64)[code]
    read7 = (system_of == 1) & (rng.random(e) < NOISE_RATES["event_read_7_char"])
    blank = (system_of == 0) & (rng.random(e) < NOISE_RATES["event_system_blank"])
    dates = _format_days(day, rng.random(e) < NOISE_RATES["event_uk_date"])
    events = _frame({
        "patient_id": _take(pid_table, person),
        "code": _take([c.code for c in table] + [c.code + "00" for c in table], code + k * read7),
        "term": _take([c.term for c in table], code),
        "date": dates,
        "code_system": _take(system_names, np.where(blank, 3, system_of)),
    })

    p, q, words = _relationships(rng, people)
    rel_order = np.lexsort((rank[q], rank[p]))
    relationships = _frame({"patient_id": _take(pid_table, p[rel_order]),
                            "related_patient_id": _take(pid_table, q[rel_order]),
                            "relationship": words[rel_order]})

    truth = _frame({
        "patient_id": _take(pid_table, by_id),
        "true_household_id": _take(hid, people.hh[by_id]),
        "true_dwelling_id": _take(did, dwelling[by_id]),
        "dwelling_kind": _take(_DWELLING_KINDS, d_kind[dwelling[by_id]]),
        "missing_flat": pd.Series(missing_flat[by_id], dtype=bool),
    })
    flags = pd.DataFrame({"patient_id": pid[np.array([m for m, _ in scen_flags], dtype=np.int64)],
                          "rule_id": np.array([r for _, r in scen_flags], dtype=object)})
    flags = flags.drop_duplicates().sort_values(["patient_id", "rule_id"])
    flags = _frame({"patient_id": flags["patient_id"].to_numpy(dtype=object),
                    "rule_id": flags["rule_id"].to_numpy(dtype=object)})
    scen_order = np.argsort(hid[: len(scen_ids)].astype(str), kind="stable")
    scenarios = _frame({"true_household_id": hid[: len(scen_ids)][scen_order],
                        "scenario_id": np.array(scen_ids, dtype=object)[scen_order]})
    return SyntheticPractice(patients, events, relationships, truth, flags, scenarios, seed, as_of,
                             book.source)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    columns = []
    for name in frame.columns:
        values = frame[name]
        if values.dtype == bool:
            columns.append(["true" if v else "false" for v in values.tolist()])
        else:
            columns.append(values.tolist())
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(list(frame.columns))
        writer.writerows(zip(*columns))


def write_practice(practice: SyntheticPractice, out_dir: Path) -> None:
    """Write the export (patients.csv, events.csv, relationships.csv) into ``out_dir`` and
    the truth (households.csv, expected_flags.csv, scenarios.csv) into ``out_dir/truth``.
    UTF-8 without BOM, comma-separated, quoted only where needed, rows in id order."""
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    _write_csv(out / "patients.csv", practice.patients)
    _write_csv(out / "events.csv", practice.events)
    _write_csv(out / "relationships.csv", practice.relationships)
    _write_csv(out / "truth" / "households.csv", practice.truth_households)
    _write_csv(out / "truth" / "expected_flags.csv", practice.expected_flags)
    _write_csv(out / "truth" / "scenarios.csv", practice.scenarios)
