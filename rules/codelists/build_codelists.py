#!/usr/bin/env python3
"""Build the family_link default codelists from the shared codelist research.

Every code written by this script is copied, with its term and source, from the
research CSVs (columns ``code,system,term,category,source``). Nothing is typed
in here except *which* research rows to take: explicit codes, whole research
categories, explicit exclusions (each with a reason) and a few term-pattern
exclusion rules (each with a reason). The script fails if

* a required code is missing from a list,
* an explicit code or exclusion does not exist in the research (typo or
  stale research),
* an exclusion rule or explicit exclusion removes nothing (stale rule),
* a list would contain the same code twice.

Usage (stdlib only)::

    python rules/codelists/build_codelists.py [RESEARCH_DIR] [--check]

RESEARCH_DIR defaults to ``../shared/codelists-research``; a relative path is
resolved against the repository root (two folders above this file), not the
working directory. The CSVs are written next to this file, and the generated
section of README.md (between the BEGIN/END GENERATED markers) is refreshed.
``--check`` writes nothing and exits 1 if any output would change (for CI).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter, OrderedDict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_RESEARCH = "../shared/codelists-research"
README = HERE / "README.md"
# README.md holds hand-written text plus blocks this script regenerates:
#   <!-- BEGIN GENERATED: lists --> ... <!-- END GENERATED: lists -->
#   <!-- BEGIN GENERATED: exclusions --> ... <!-- END GENERATED: exclusions -->

HEADER = ["code", "system", "term", "source"]
SYSTEMS = ("snomedct", "readv2", "ctv3", "emis_local")
# When one code string occurs in two systems (Read v2 and CTV3 share the
# 5-character space, e.g. 13W3.), a list keeps one row: the first system here.
SYSTEM_PREFERENCE = ("readv2", "ctv3", "snomedct", "emis_local")
RESEARCH_FILES = (
    "1_child_safeguarding_status.csv",
    "2_family_level_alerts.csv",
    "3_adult_household_risk_factors.csv",
    "4_pregnancy_prebirth.csv",
    "5_maltreatment_nai_csa.csv",
    "6_pregnancy_outcomes.csv",
)

# --- research categories (exact strings from the research CSVs) -------------
CAT_CP_ACTIVE = "1 child status: child protection plan / register (active)"
CAT_CP_ENDED = "1 child status: child protection plan / register ENDED"
CAT_CFC_ACTIVE = "1 child status: child is cause for (safeguarding) concern / at risk (active)"
CAT_CIN_ACTIVE = "1 child status: child in need (active)"
CAT_FM_CP_ACTIVE = "2 family alert: family member / own child subject of CP plan or register (active)"
CAT_FM_CP_ENDED = "2 family alert: family member CP plan / register ENDED"
CAT_HH_DA = "2 family alert: child lives with / exposed to domestic abuse"
CAT_HH_SUBST = "2 family alert: child lives with / exposed to parental substance misuse"
CAT_FAMILY_CFC = "2 family alert: child/family cause for concern, vulnerable child in family"
CAT_DA_VICTIM = "3 adult risk: domestic abuse - victim / history"
CAT_DA_PERP = "3 adult risk: domestic abuse / violence - perpetrator"
CAT_MARAC = "3 adult risk: MARAC / MAPPA / sex offender / offending"
CAT_ALCOHOL = "3 adult risk: alcohol misuse (whole list)"
CAT_DRUG = "3 adult risk: drug misuse (whole list)"
CAT_LD_COD = "3 adult risk: learning disability (NHS Digital PCD refset LD_COD, whole list)"
CAT_LD_CTV3 = (
    "3 adult risk: learning/intellectual disability (CTV3, OpenSAFELY list - BROAD: "
    "also autism & specific developmental disorders, review before use)"
)
CAT_PREG = "4 pregnancy: pregnancy codes (PRIMIS PREG, whole list)"
CAT_UNBORN_ACTIVE = "4 pre-birth: unborn child safeguarding (active)"
CAT_PREG_OUTCOME = (
    "6 pregnancy outcome: delivery / miscarriage / termination (PRIMIS PREGDEL minus PREG, whole list)"
)
CAT_NAI = "5 maltreatment: non-accidental injury / physical abuse of child"
CAT_ABUSE_NOS = "5 maltreatment: suspected / confirmed child abuse NOS"
CAT_CSA = "5 maltreatment: child sexual abuse / exploitation"
CAT_NEGLECT = "5 maltreatment: neglect / emotional abuse"

# --- shared exclusion reasons --------------------------------------------------
R_CARE_PROCESS = "care process (enquiry, assessment, counselling, referral), not a record that abuse happened"
R_SCREENING = "screening or risk-assessment tool (DASH), not a record that abuse happened"
R_EDUCATION = "education or advice, not a record that abuse happened"
R_CHILD_ALERT = "child-level household alert code: kept in domestic_abuse_household_alert so trigger and alert stay distinct"
R_NOT_DA = "not domestic abuse (MAPPA, sex offender register, criminal record, violent patient scheme): out of scope for this list"
R_MARAC_CLOSED = "MARAC case closed: an ending code, not a trigger"

# Term-pattern rules for the substance misuse list. (rule id, regex, reason)
SUBSTANCE_RULES = [
    ("S1-history-remission", r"\bhistory of\b|in remission|\breduced drugs misuse\b",
     "'History of', 'in remission' or reduced use: not current misuse"),
    ("S2-non-psychoactive",
     r"laxative|antacid|steroid|nonpsychotropic analgesic|harmful use of analgesic|antidepressant|anti-depressant",
     "laxative, antacid, steroid, non-opioid analgesic or antidepressant misuse: not psychoactive drug misuse relevant to child safeguarding"),
    ("S3-monitoring-treatment",
     r"monitoring|aversion therapy|rehabilitation|detox|frequency of substance misuse|"
     r"substance misuse (?:de|in)creased|priority of drug-related|preoccupied with",
     "monitoring, treatment procedure or setting, or an assessment item: not itself a statement of current misuse"),
    ("S4-consumption", r"heavy drinker|binge|hazardous alcohol use",
     "alcohol consumption level (heavy, binge, hazardous drinking), not misuse or dependence"),
    ("S5-negative-unknown", r"\bnever\b|\bnot using\b|\bunknown\b$|use unknown",
     "a 'no' or 'unknown' answer"),
    ("S6-single-episode", r"^alcohol intoxication|lysergic acid diethylamide reaction",
     "a single episode of intoxication or drug reaction, not misuse"),
    ("S7-complication",
     r"psychosis|psychoses|psychotic|delusional|hallucinosis|paranoia|korsako|brain|dementia|cerebral|cerebellar|amnestic|"
     r"thrombocytopenia|hyperemesis|alcohol induced disorder|disorder due to alcohol abuse",
     "complication or sequela (psychosis, hallucinosis, brain damage, organ damage): can persist after use stops; the misuse itself should be coded"),
    ("S8-drug-withdrawal",
     r"^(?!.*alcohol).*withdrawal",
     "withdrawal from a drug other than alcohol: can be iatrogenic (prescribed opioids, benzodiazepines, ICU sedation) or neonatal, so does not by itself mean misuse"),
    ("S9-ambiguous-use",
     r"^drug/substance use$|non recreational|^current drug user$|^narcotic drug user$|^habitual drug user$|"
     r"^(continuous|episodic) use of drugs$|^drug habituation$|intensive care psychosis|"
     r"^finding (relating to drug misuse behavior|of drug injection behavior)$|"
     r"^inhales drugs$|^sniffs drugs$|^injects drugs (intramuscularly|subcutaneously)$|opioid analgesic dependence",
     "term does not clearly say misuse (could describe prescribed medicine use, e.g. inhalers, injections, analgesics) or is a grouping concept"),
]

# Term-pattern rules for pregnancy_outcome. (rule id, regex, reason)
# Applied in order; the first matching rule excludes a code. ENDED_TERMS
# protects a code from rule O3 (labour) when its term also says the
# pregnancy has ended.
OUTCOME_ENDED_TERMS = re.compile(
    r"deliver|birth|born\b|stillb|postpartum|puerper|postnatal|after labor|following|third stage|placenta|"
    r"miscarr|abortion|abortifacient|termination|feticide|fetal death|products of conception|"
    r"retained|secundines",
    re.I,
)
OUTCOME_RULES = [
    ("O1-still-pregnant",
     r"with antenatal (problem|complication)|failed attempted abortion|one twin|selective|"
     r"fetal intracardiac injection|bluish discoloration of cervix|^angular pregnancy$|^maternal hypotension syndrome$",
     "the pregnancy continues (antenatal problem, failed abortion, loss or selective reduction of one fetus of several, a sign or condition of pregnancy, angular pregnancy which is intrauterine and can reach term)"),
    ("O2-late-or-history",
     r"in remission|\bold obstetric|old obstetrical|hypopituitarism|breastfeeding support|lactation|polygalactia",
     "may be recorded months or years after the pregnancy ended (in remission, repair of old laceration, Sheehan syndrome, lactation), so could wrongly end a later pregnancy"),
    ("O3-labour-not-ended",
     r"\blabou?r\b|induction|augmentation|stimulat|tocolysis|cervix (fully )?dilated|rim of cervix|lip of cervix|"
     r"cervical dilation|cervical dystocia|push|contraction|"
     r"uterine (inertia|dysfunction|incoordination)|\binertia\b|dystocia|membranes|prodromal|intrapartum|"
     r"(?<!post)parturient|presentation|occipitoposterior|transverse arrest|interlocked twins|rupture of gravid uterus|"
     r"first stage|second stage|^obstruction by|modification of uterine activity",
     "labour or an intrapartum event: the pregnancy has not yet ended (labour can be false, suppressed or stopped); the delivery code marks the end"),
    ("O4-fetal-condition",
     r"hydrops|in fetus|air embolization of fetus|cardiac puncture and fetal",
     "a condition of the fetus that can be found while the pregnancy continues"),
    ("O5-grouper",
     r"^delivery and/or maternal condition affecting management$|^maternal and/or fetal condition affecting labor|"
     r"^membranous pregnancy$",
     "grouping concept, or a term whose meaning is unclear, that does not say the pregnancy has ended"),
]

# Term-pattern rules for the PRIMIS PREG list. (rule id, regex, reason)
PREG_RULES = [
    ("P1-ended",
     r"- delivered|normal delivery but|retained|fetal death before 24 weeks",
     "says the pregnancy has ended (delivered, retained products, fetal death)"),
    ("P2-labour-childbirth",
     r"during labor|in labor|bearing down|expulsive|intrapartum|parturient|complicating childbirth|in childbirth|in liveborn",
     "recorded at labour or childbirth (or on the baby): marks the end of the pregnancy, not an ongoing one"),
    ("P3-not-viable",
     r"hydatidiform mole|gestational trophoblastic|trophoblastic tumor|choriocarcinoma|biochemical pregnancy|ectopic|"
     r"^(unruptured )?tubal pregnancy$|fallopian tube|"
     r"^abdominal pregnancy$|pregnancy of unknown location",
     "not a pregnancy that can lead to a birth (molar or trophoblastic disease, biochemical pregnancy, ectopic, pregnancy of unknown location)"),
    ("P4-contraceptive-failure",
     r"^(contraception|combined oral contraceptive pill|progestogen-only pill|depot contraceptive|contraceptive sponge|"
     r"symptothermal contraception|vasectomy|female sterilization|postcoital .*) failure$",
     "contraceptive failure without the word pregnant (vasectomy failure is recorded on a man; a missed pill is not a pregnancy)"),
]

# CTV3 codes (from the broad OpenSAFELY intellectual disability list) whose
# term itself means learning / intellectual disability (mental retardation,
# mental handicap) in the person.
LD_CTV3_CODES = [
    "XaKYb",  # On learning disability register
    "XaREt", "XaQZ3", "XaQZ4", "XaREu", "Xabk1", "YA841",  # mild/moderate/severe/profound/significant LD
    "E3...", "E3z..", "E30..", "E310.", "E311.", "E312.", "E31..", "E31z.", "XE2a3", "Y9981",
    "XacF6",  # Intellectual development disorder of unknown aetiology
    "Eu700", "Eu701", "Eu70y", "Eu70z", "Eu710", "Eu711", "Eu71y", "Eu71z", "Eu720", "Eu721", "Eu72y", "Eu72z",
    "Eu730", "Eu731", "Eu73y", "Eu73z", "Eu7y.", "Eu7y0", "Eu7y1", "Eu7yy", "Eu7yz", "Eu7z.", "Eu7z0", "Eu7z1",
    "Eu7zy", "Eu7zz", "XE1a2",  # [X] ICD-10 F70-F79 mental retardation
    "Eu844",  # [X]Overactive disorder assoc mental retard/stereotype movts
    "6664.",  # Mental handicap problem
    "Xa0Yy", "X50In", "XaDki", "X40Xn",  # syndromes named "... mental retardation ..."
]

# ------------------------------------------------------------------------------
# The lists. Keys:
#   purpose, rules        documentation for README
#   categories            research categories taken whole
#   codes                 explicit codes ("code" or "system:code")
#   union                 other lists included whole (after their exclusions)
#   exclude               {code: reason} explicit exclusions
#   exclude_rules         [(rule id, regex on term, reason)]
#   rule_exceptions       {code: reason} codes a rule would exclude but we keep
#   required              codes that must be present
# ------------------------------------------------------------------------------
LISTS: "OrderedDict[str, dict]" = OrderedDict()

LISTS["cp_plan_start"] = dict(
    used_by="cp-sibling (trigger, unless), cp-parent (trigger), pre-birth (household), stale-family-alert (household_has_none); also inside child_safeguarding",
    purpose="A child's own child protection plan / register status starts (active).",
    categories=[CAT_CP_ACTIVE],
    exclude={
        "229054004": "'Child protection register' names the register itself, not a child's status on it",
        "224353004": "'Child protection finding' is the generic parent concept (used as the CP-IS flag code); not specific to a plan, kept in child_safeguarding instead",
        "802251000000109": "generic 'Child protection category' header; the four specific categories are kept",
        "13WT.": "'Child protection observation' is a Read chapter header, not a status",
        "13WT0": "generic 'Child protection category' header; the four specific categories are kept",
    },
    required=["342191000000101", "1064311000000109", "160887007", "13Iv.", "XaOnx", "13IM.", "13Id."],
)

LISTS["cp_plan_end"] = dict(
    used_by="ended_by for cp_plan_start in cp-sibling, cp-parent, pre-birth, stale-family-alert",
    purpose="A child's own child protection plan / register status ends.",
    categories=[CAT_CP_ENDED],
    required=["342891000000105", "160889005", "13Iw.", "13IO.", "XaOtl"],
)

LISTS["family_member_cp_alert"] = dict(
    used_by="cp-sibling and cp-parent (satisfied_by), stale-family-alert (trigger); also inside child_safeguarding",
    purpose="Alert on a child's (or adult's) record that a family member is subject of a CP plan / on the CP register.",
    categories=[CAT_FM_CP_ACTIVE],
    exclude={
        "864491000000105": "'Has child subject of child protection plan' is a parent-record code: own list parent_of_child_on_cp_plan",
        "13Iy0": "'Has child subject of child protection plan' is a parent-record code: own list parent_of_child_on_cp_plan",
    },
    required=["375041000000100", "293371000000108", "160888002", "13Iy.", "XaPkF", "13Ig.", "13IN."],
)

LISTS["family_member_cp_alert_end"] = dict(
    used_by="ended_by for family_member_cp_alert in cp-sibling, cp-parent, stale-family-alert",
    purpose="Ends family_member_cp_alert (family member no longer subject of CP plan / removed from register).",
    categories=[CAT_FM_CP_ENDED],
    required=["375071000000106", "1025471000000102", "160890001", "13Iz.", "XaPkG", "13IP0", "13IP."],
)

LISTS["parent_of_child_on_cp_plan"] = dict(
    used_by="cp-parent (satisfied_by)",
    purpose="Parent-record code: the patient has a child who is subject of a CP plan.",
    codes=["864491000000105", "13Iy0"],
    required=["864491000000105", "13Iy0"],
)

LISTS["domestic_abuse"] = dict(
    used_by="domestic-abuse (trigger, adults, 730 days), pre-birth (household, 730 days)",
    purpose="Trigger: a household member is a victim or (alleged) perpetrator of domestic abuse, or subject of / referred to MARAC.",
    categories=[CAT_DA_VICTIM, CAT_DA_PERP, CAT_MARAC],
    exclude={
        # victim / history category
        "313070006": R_CARE_PROCESS,
        "700410005": R_CARE_PROCESS,
        "9r0..": R_CARE_PROCESS,
        "758599003": R_CARE_PROCESS,
        "784861000000102": R_CARE_PROCESS,
        "886201000000108": R_SCREENING,
        "886191000000106": R_SCREENING,
        "38Qm.": R_SCREENING,
        "413457006": R_EDUCATION,
        "67Ia.": R_EDUCATION,
        "161051006": R_CHILD_ALERT,
        # MARAC / MAPPA / offending category
        "1078361000000107": R_MARAC_CLOSED,
        "495021000000105": R_NOT_DA,
        "13Hl.": R_NOT_DA,
        "416081002": R_NOT_DA,
        "14X4.": R_NOT_DA,
        "266948004": R_NOT_DA,
        "13HN.": R_NOT_DA,
        "924361000000108": R_NOT_DA,
        "91D..": R_NOT_DA,
    },
    required=["879911000000102", "205171000000107", "371772001", "720684005", "206411000000103",
              "758941000000108", "697950003"],
)

LISTS["domestic_abuse_household_alert"] = dict(
    used_by="domestic-abuse (satisfied_by)",
    purpose="Alert on a child's record that the child lives with / is exposed to domestic abuse.",
    categories=[CAT_HH_DA],
    required=["881081000000100", "161051006", "160829008", "983731000000107", "13Wd.", "13VF.", "13HP6", "9GA.."],
)

LISTS["substance_misuse"] = dict(
    used_by="substance-misuse (trigger, adults, 730 days), pre-birth (household, 730 days)",
    purpose="Trigger: a household member has current drug or alcohol misuse / dependence.",
    categories=[CAT_ALCOHOL, CAT_DRUG],
    codes=["199254001"],  # Drug dependence during pregnancy - baby not yet delivered (PRIMIS PREG)
    exclude_rules=SUBSTANCE_RULES,
    rule_exceptions={
        "772133000": "'Recreational drug misuse withdrawal' says misuse, so the iatrogenic/neonatal reason of S8 does not apply",
    },
    required=["15167005", "66590003", "191816009", "191819002", "268645007", "191891003"],
)

LISTS["substance_misuse_household_alert"] = dict(
    used_by="substance-misuse (satisfied_by)",
    purpose="Alert on a child's record that a parent / household member misuses drugs or alcohol.",
    categories=[CAT_HH_SUBST],
    exclude={
        "287351000000105": "family history code: may describe a relative outside the household or long ago",
        "12X..": "family history code: may describe a relative outside the household or long ago",
        "293161000000103": "family history code: may describe a relative outside the household or long ago",
        "12X0.": "family history code: may describe a relative outside the household or long ago",
        "275115007": "family history code ('Alcoholic in the family'): may describe a relative outside the household",
        "160327004": "family history code: may describe a relative outside the household or long ago",
        "1282.": "family history code: may describe a relative outside the household or long ago",
        "1283.": "family history code: may describe a relative outside the household or long ago",
        "ZV1A0": "family history code: may describe a relative outside the household or long ago",
        "ZV1A3": "maternal *family* history (the mother's relatives), not the parent's own misuse",
    },
    required=["713070003", "713071004", "1104261000000109", "13We.", "13Wf."],
)

LISTS["learning_disability"] = dict(
    used_by="parental-learning-disability (trigger, adults), pre-birth (household)",
    purpose="Trigger (parent's own record): learning / intellectual disability.",
    categories=[CAT_LD_COD],
    codes=["918e.", "Eu814", "Eu815", "Eu816", "Eu817"] + ["ctv3:" + c for c in LD_CTV3_CODES],
    required=["416075005", "508171000000105", "984661000000105", "984671000000103", "931001000000105"],
)

LISTS["family_vulnerability_alert"] = dict(
    used_by="parental-learning-disability (satisfied_by, any date)",
    purpose="Family-level alert: child in family is a safeguarding concern, family is cause for concern, vulnerable family / child in family, child abuse in family.",
    categories=[CAT_FAMILY_CFC],
    exclude={
        "315637000": "'Vulnerable family support' is a care process, not an alert",
        "406160009": "'Impaired parenting' is a risk finding, not a family-level safeguarding alert",
        "381871000000107": "'Assessment of parenting capacity' is a care process",
        "38T..": "'Assessment of parenting capacity' is a care process",
        "713085009": "'Primary carer has poor support network' is a risk factor, not an alert",
        "13Vf.": "'Primary carer has poor support network' is a risk factor, not an alert",
        "1090401000000108": "'Carer unable to cope' is a risk finding, not an alert",
        "63CA.": "'H.V.: mother not managing well' is a risk finding, not an alert",
    },
    required=["1064961000000107", "300731000000106", "305311000000106", "XafeJ", "13Ip.", "13Iq."],
)

LISTS["pregnancy"] = dict(
    used_by="pre-birth (trigger, women, 280 days)",
    purpose="Current pregnancy (PRIMIS PREG_COD national list, minus codes that do not mean an ongoing pregnancy).",
    categories=[CAT_PREG],
    exclude_rules=PREG_RULES,
    required=["77386006", "169560008", "169563005", "72892002"],
)

LISTS["pregnancy_outcome"] = dict(
    used_by="ended_by for pregnancy in pre-birth",
    purpose="The pregnancy has ended: delivery, stillbirth, miscarriage, termination, ectopic or other non-viable pregnancy, postnatal care.",
    categories=[CAT_PREG_OUTCOME],
    exclude_rules=OUTCOME_RULES,
    rule_exceptions={
        "199608004": "'Intrauterine death with antenatal problem': the fetus has died, so no unborn child remains even though it is not yet delivered",
    },
    required=["177184002", "17369002", "156073000", "177157003"],
)

LISTS["unborn_child_alert"] = dict(
    used_by="pre-birth (satisfied_by)",
    purpose="Alert on the pregnant woman's record: unborn child is cause for safeguarding concern / subject of a CP plan.",
    categories=[CAT_UNBORN_ACTIVE],
    exclude={
        "811001000000108": "Common Assessment Framework (early help) process for the unborn child: a care process, not a safeguarding alert",
    },
    required=["878111000000109", "818901000000100", "13If0", "XaaNV", "13Iv0"],
)

LISTS["maltreatment"] = dict(
    used_by="maltreatment-siblings (trigger, children, 365 days), pre-birth (household, 365 days, any member)",
    purpose="Trigger: a child has non-accidental injury, physical / sexual / emotional abuse or neglect recorded (suspected or confirmed).",
    categories=[CAT_NAI, CAT_ABUSE_NOS, CAT_CSA, CAT_NEGLECT],
    exclude={
        # at-risk codes (a risk, not maltreatment; kept in child_safeguarding)
        "169946000": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "63CB.": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "416936003": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "13ZT.": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "XaKbR": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "704659007": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "417361000": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "13ZW.": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "XaKbT": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "716565009": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "1086791000000109": "cause for concern regarding exploitation: a concern, not maltreatment (kept in child_safeguarding)",
        "704658004": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "417716002": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "13ZV.": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "XaKbS": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "416142000": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "13ZR.": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        "XaKbP": "'at risk' code: a risk, not maltreatment (kept in child_safeguarding)",
        # history codes
        "288411000119107": "'History of' code: on an adult it records their own childhood abuse (survivor), not a current child in the household",
        "313216003": "'History of' code: on an adult it records their own past abuse, not a current child in the household",
        "14X1.": "'History of' code: on an adult it records their own past abuse, not a current child in the household",
        # not child-specific findings
        "1045811000000106": "'neglect and acts of omission' is the Care Act adult-safeguarding category",
        "424759000": "'Neglectful caretaking' is not child-specific (also used for dependent adults); single user-list source",
        "423217007": "not child-specific (also used for dependent adults); single user-list source",
        "423562005": "not child-specific finding; single user-list source",
        "422566002": "not child-specific finding; single user-list source",
        "422379007": "not child-specific finding; single user-list source",
    },
    required=["158094009", "700255001", "371779005", "162596006", "700254002",
              "SN552", "1J31.", "SN555", "1J3..", "1J30."],
)

LISTS["child_safeguarding"] = dict(
    used_by="maltreatment-siblings (satisfied_by)",
    purpose="The child's own record shows safeguarding is in hand: cause for concern / at risk, child in need, CP plan, family-member-CP alert, child in family is safeguarding concern, child abuse in family.",
    categories=[CAT_CFC_ACTIVE, CAT_CIN_ACTIVE],
    union=["cp_plan_start", "family_member_cp_alert"],
    codes=[
        "1064961000000107", "XafeJ",  # Child in family is safeguarding concern
        "161062006", "readv2:13W3.",  # Child abuse in family (CTV3 13W3. is the same code string)
        "224353004",  # Child protection finding (CP-IS flag code)
        # child-level 'at risk of ...' codes from the maltreatment research file
        "169946000", "63CB.", "416936003", "13ZT.", "XaKbR", "417361000", "13ZW.", "XaKbT",
        "417716002", "13ZV.", "XaKbS", "416142000", "13ZR.", "XaKbP",
    ],
    required=["836881000000105", "287441000000101", "1064961000000107", "135891007", "161062006"],
)


# ------------------------------------------------------------------------------
class BuildError(Exception):
    pass


def load_research(research_dir: Path):
    """Return {(code, system): {"code", "system", "term", "categories", "sources", "files"}}."""
    rows = OrderedDict()
    for name in RESEARCH_FILES:
        path = research_dir / name
        if not path.is_file():
            raise BuildError(f"research file missing: {path}")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != ["code", "system", "term", "category", "source"]:
                raise BuildError(f"{path}: unexpected header {reader.fieldnames}")
            for r in reader:
                code, system = r["code"].strip(), r["system"].strip()
                if system not in SYSTEMS:
                    raise BuildError(f"{path}: unknown system {system!r} for {code}")
                key = (code, system)
                entry = rows.setdefault(key, dict(code=code, system=system, term=r["term"].strip(),
                                                  categories=[], sources=[], files=[]))
                entry["categories"].append(r["category"])
                entry["files"].append(name)
                for s in r["source"].split(" | "):
                    s = s.strip()
                    if s and s not in entry["sources"]:
                        entry["sources"].append(s)
    return rows


def resolve(token: str, research, context: str):
    """Map "code" or "system:code" to exactly one research key."""
    if ":" in token and token.split(":", 1)[0] in SYSTEMS:
        system, code = token.split(":", 1)
        keys = [(code, system)] if (code, system) in research else []
    else:
        keys = [k for k in research if k[0] == token]
    if not keys:
        raise BuildError(f"{context}: code {token!r} is not in the research CSVs")
    if len(keys) > 1:
        raise BuildError(f"{context}: code {token!r} is in several systems {sorted(k[1] for k in keys)}; "
                         f"write it as system:code")
    return keys[0]


def build_list(name: str, spec: dict, research, built: dict):
    """Return (rows, excluded) for one list. rows: {key: entry}; excluded: [(key, rule, reason)]."""
    candidates = OrderedDict()
    for key, entry in research.items():
        if any(c in spec.get("categories", ()) for c in entry["categories"]):
            candidates[key] = entry
    for token in spec.get("codes", ()):
        key = resolve(token, research, name)
        candidates[key] = research[key]
    known = set(c for e in research.values() for c in e["categories"])
    for cat in spec.get("categories", ()):
        if cat not in known:
            raise BuildError(f"{name}: research category not found: {cat!r}")

    excluded = []
    # explicit exclusions
    for token, reason in spec.get("exclude", {}).items():
        key = resolve(token, research, f"{name} exclude")
        if key not in candidates:
            raise BuildError(f"{name}: exclusion {token!r} does not match a candidate (stale?)")
        del candidates[key]
        excluded.append((key, "explicit", reason))
    # term-pattern rules
    exceptions = {resolve(t, research, f"{name} exception"): why
                  for t, why in spec.get("rule_exceptions", {}).items()}
    used_exceptions = set()
    for rule_id, pattern, reason in spec.get("exclude_rules", ()):
        rx = re.compile(pattern, re.I)
        hits = []
        for key, entry in candidates.items():
            term = entry["term"]
            if not rx.search(term):
                continue
            if rule_id.startswith("O3") and OUTCOME_ENDED_TERMS.search(term):
                continue
            if key in exceptions:
                used_exceptions.add(key)
                continue
            hits.append(key)
        if not hits:
            raise BuildError(f"{name}: exclusion rule {rule_id} excludes nothing (stale rule?)")
        for key in hits:
            del candidates[key]
            excluded.append((key, rule_id, reason))
    unused = set(exceptions) - used_exceptions
    if unused:
        raise BuildError(f"{name}: rule exceptions not needed: {sorted(unused)}")

    # union of other lists
    for other in spec.get("union", ()):
        if other not in built:
            raise BuildError(f"{name}: union list {other!r} must be built first")
        for key in built[other][0]:
            candidates.setdefault(key, research[key])

    # one row per code string
    by_code = OrderedDict()
    for key, entry in candidates.items():
        by_code.setdefault(key[0], []).append(key)
    for code, keys in by_code.items():
        if len(keys) > 1:
            keys.sort(key=lambda k: SYSTEM_PREFERENCE.index(k[1]))
            for dropped in keys[1:]:
                del candidates[dropped]
                excluded.append((dropped, "duplicate-code",
                                 f"same code string as the {keys[0][1]} row kept in this list"))

    # required codes
    present_codes = {k[0] for k in candidates}
    for token in spec.get("required", ()):
        if ":" in token and token.split(":", 1)[0] in SYSTEMS:
            ok = tuple(reversed(token.split(":", 1))) in candidates
        else:
            ok = token in present_codes
        if not ok:
            raise BuildError(f"{name}: REQUIRED code {token!r} is missing from the list")
    return candidates, excluded


def render_csv(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(HEADER)
    for (code, system) in sorted(rows, key=lambda k: (k[1], k[0])):
        e = rows[(code, system)]
        w.writerow([code, system, e["term"], " | ".join(e["sources"])])
    return buf.getvalue()


def md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def describe_selection(spec: dict) -> str:
    parts = []
    for cat in spec.get("categories", ()):
        parts.append(f"category \u201c{cat}\u201d")
    if spec.get("codes"):
        parts.append(f"{len(spec['codes'])} explicit codes")
    for other in spec.get("union", ()):
        parts.append(f"all of `{other}`")
    out = "; ".join(parts)
    minus = []
    if spec.get("exclude"):
        minus.append(f"{len(spec['exclude'])} explicit exclusions")
    if spec.get("exclude_rules"):
        minus.append("rules " + ", ".join(r[0] for r in spec["exclude_rules"]))
    if minus:
        out += "; minus " + " and ".join(minus)
    return md_escape(out)


def render_lists(built) -> str:
    out = ["| list | purpose | used by (rule id) | snomedct | readv2 | ctv3 | emis_local | total | selection | excluded |",
           "|---|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, (rows, excluded) in built.items():
        spec = LISTS[name]
        c = Counter(k[1] for k in rows)
        out.append(f"| `{name}` | {md_escape(spec['purpose'])} | {md_escape(spec['used_by'])} | {c['snomedct']} | "
                   f"{c['readv2']} | {c['ctv3']} | {c['emis_local']} | {len(rows)} | {describe_selection(spec)} | "
                   f"{len(excluded)} |")
    return "\n".join(out)


def render_exclusions(built, research) -> str:
    out = ["Every research row that was a candidate for a list but was left out, with its rule and reason.", ""]
    for name, (rows, excluded) in built.items():
        if not excluded:
            continue
        groups = OrderedDict()
        for key, rule, reason in excluded:
            groups.setdefault((rule, reason), []).append(key)
        out += [f"#### `{name}`: {len(excluded)} excluded", "",
                "| rule | reason | count |", "|---|---|---:|"]
        n_explicit = 0
        for (rule, reason), keys in groups.items():
            if rule == "explicit":
                n_explicit += len(keys)
            else:
                out.append(f"| {rule} | {md_escape(reason)} | {len(keys)} |")
        if n_explicit:
            out.append(f"| explicit | one reason per code (see the full table) | {n_explicit} |")
        exceptions = LISTS[name].get("rule_exceptions", {})
        if exceptions:
            out.append("")
            for code, why in exceptions.items():
                out.append(f"Kept despite a rule: {code} ({md_escape(why)}).")
        out += ["", "<details><summary>every excluded code</summary>", "",
                "| code | system | term | rule | reason |", "|---|---|---|---|---|"]
        for key, rule, reason in excluded:
            out.append(f"| {key[0]} | {key[1]} | {md_escape(research[key]['term'])} | {rule} | {md_escape(reason)} |")
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip("\n")


def refresh_readme(text: str, blocks: dict) -> str:
    for name, body in blocks.items():
        begin = f"<!-- BEGIN GENERATED: {name} -->"
        end = f"<!-- END GENERATED: {name} -->"
        if begin not in text or end not in text:
            raise BuildError(f"README.md lacks the {begin} / {end} markers")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("research_dir", nargs="?", default=DEFAULT_RESEARCH,
                    help="research folder; relative paths are taken from the repository root "
                         f"(default {DEFAULT_RESEARCH})")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if any output would change")
    args = ap.parse_args(argv)

    research_dir = Path(args.research_dir)
    if not research_dir.is_absolute():
        research_dir = (REPO_ROOT / research_dir).resolve()
    try:
        research = load_research(research_dir)
        built = OrderedDict()
        for name, spec in LISTS.items():
            built[name] = build_list(name, spec, research, built)
    except BuildError as exc:
        print(f"build_codelists: ERROR: {exc}", file=sys.stderr)
        return 2

    outputs = {HERE / f"{name}.csv": render_csv(rows) for name, (rows, _) in built.items()}
    try:
        text = README.read_text(encoding="utf-8")
        outputs[README] = refresh_readme(text, {"lists": render_lists(built),
                                                "exclusions": render_exclusions(built, research)})
    except (OSError, BuildError) as exc:
        print(f"build_codelists: ERROR: {exc}", file=sys.stderr)
        return 2

    changed = []
    for path, content in outputs.items():
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != content:
            changed.append(path)
            if not args.check:
                with path.open("w", encoding="utf-8", newline="") as fh:
                    fh.write(content)
    for name, (rows, excluded) in built.items():
        c = Counter(k[1] for k in rows)
        detail = ", ".join(f"{s} {c[s]}" for s in SYSTEMS if c[s])
        print(f"{name:34s} {len(rows):4d} codes ({detail}); {len(excluded)} excluded")
    if args.check:
        for p in changed:
            print(f"out of date: {p.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 1 if changed else 0
    for p in changed:
        print(f"wrote {p.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
