# ruff: noqa: E501  (the demo is data: real-looking CMS descriptions are long strings)
"""Synthetic quarterly releases in exactly CMS's format and packaging, so the pipeline runs offline.

Nine ZIPs: eight quarters (2024-Q1 .. 2025-Q4) plus a second issue of 2024-Q3. Each holds the
fixed-width data file (records written by the parser's own layout, ``transforms.format_code``), a
tab-separated transaction report in CMS's 2016 shape and a README, under CMS's drifting names:
annual and quarterly slugs, ``-file``/``-files``, ``JUL``/``JULY``, ``_w_disclaimer``, ``_vN``,
``_MMDDYYYY``. The files reproduce the real quirks: continuation lines trimmed to 91 characters,
a disclaimer block with TABs and byte 0xA0, fully right-trimmed lines, blank lines at the end.

What changes from quarter to quarter is data, not code: ``DEMO_CHANGES`` lists every change with
the action code CMS writes (empty when CMS does not flag it), so tests and the README can name the
exact expected events. Same code, same bytes: nothing depends on the clock or on randomness, and
ZIP entries carry fixed timestamps.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from contracts.domains import ACTION_CODE
from contracts.files import atomic_write_bytes
from transforms.fixed_width import format_code

Padding = Literal["trim-continuations", "full", "trimmed"]
Row = dict[str, object]


@dataclass(frozen=True)
class DemoQuarter:
    """One demo ZIP: its release id, CMS-style names and the file quirks it reproduces."""

    release: str  # 2024-Q3r2 for the second issue of a quarter
    effective: date
    zip_name: str
    member_name: str
    padding: Padding  # trim-continuations: 2016/2017 style; trimmed: every line right-trimmed
    disclaimer: bool = False
    trailing_blank_lines: int = 0


DEMO_QUARTERS: tuple[DemoQuarter, ...] = (
    DemoQuarter("2024-Q1", date(2024, 1, 1), "2024-alpha-numeric-hcpcs-file.zip",
                "HCPC2024_JAN_ANWEB.txt", "trim-continuations"),
    DemoQuarter("2024-Q2", date(2024, 4, 1), "april-2024-alpha-numeric-hcpcs-files.zip",
                "HCPC2024_APR_ANWEB.txt", "full", disclaimer=True),
    DemoQuarter("2024-Q3", date(2024, 7, 1), "july-2024-alpha-numeric-hcpcs-file.zip",
                "HCPC2024_JULY_ANWEB.txt", "full"),
    DemoQuarter("2024-Q3r2", date(2024, 7, 1), "july-2024-alpha-numeric-hcpcs-file-v2.zip",
                "HCPC2024_JULY_ANWEB_v2.txt", "full"),
    DemoQuarter("2024-Q4", date(2024, 10, 1), "october-2024-alpha-numeric-hcpcs-file.zip",
                "HCPC2024_OCT_ANWEB_w_disclaimer.txt", "full", disclaimer=True),
    DemoQuarter("2025-Q1", date(2025, 1, 1), "january-2025-alpha-numeric-hcpcs-file.zip",
                "HCPC2025_JAN_ANWEB_12172024.txt", "full", trailing_blank_lines=2),
    DemoQuarter("2025-Q2", date(2025, 4, 1), "april-2025-alpha-numeric-hcpcs-file.zip",
                "HCPC2025_APRIL_ANWEB.txt", "trim-continuations"),
    DemoQuarter("2025-Q3", date(2025, 7, 1), "july-2025-alpha-numeric-hcpcs-file.zip",
                "HCPC2025_JUL_ANWEB.txt", "trimmed"),
    DemoQuarter("2025-Q4", date(2025, 10, 1), "october-2025-alpha-numeric-hcpcs-file.zip",
                "HCPC2025_OCT_ANWEB_v2.txt", "trimmed", disclaimer=True),
)  # fmt: skip

ChangeKind = Literal[
    "add", "discontinue", "reactivate", "drop", "reuse", "describe", "short", "price", "coverage",
    "misc", "describe+coverage",
]  # fmt: skip


@dataclass(frozen=True)
class DemoChange:
    """One change in one demo release. ``action`` is what CMS writes ('' = not flagged, stays N)."""

    release: str
    code: str
    kind: ChangeKind
    action: str
    note: str
    values: dict[str, object] = field(default_factory=dict)


def _drug(code: str, long: str, short: str, **extra: object) -> dict[str, object]:
    return {"kind": "procedure", "long_description": long, "short_description": short,
            "pricing_indicators": ["51"], "multiple_pricing_indicator": "A",
            "coverage_code": "C", "betos": "O1E", "types_of_service": ["1"], **extra}  # fmt: skip


_LONG_G = (
    "Remote therapeutic monitoring treatment management services, physician or other qualified "
    "health care professional time in a calendar month requiring at least one interactive "
    "communication with the patient or caregiver during the calendar month; first 20 minutes, "
    "including review of device data, adjustment of the care plan, coordination with the "
    "treating team and documentation of all services furnished in the month"
)

# fmt: off
DEMO_CHANGES: tuple[DemoChange, ...] = (
    DemoChange("2024-Q1", "G0136", "add", "A", "new annual code (social determinants risk assessment)",
               {"kind": "procedure", "long_description": "Administration of a standardized, evidence-based social determinants of health risk assessment tool, 5-15 minutes",
                "short_description": "Sdoh risk assessment 5-15m", "pricing_indicators": ["11"],
                "multiple_pricing_indicator": "A", "coverage_code": "C", "betos": "M5D",
                "types_of_service": ["1"]}),
    DemoChange("2024-Q2", "J0217", "add", "A", "new drug code",
               _drug("J0217", "Injection, velmanase alfa-tycv, 1 mg", "Inj velmanase alfa-tycv 1mg")),
    DemoChange("2024-Q2", "E0200", "discontinue", "D", "discontinued; reactivated in 2025-Q1"),
    DemoChange("2024-Q2", "G0002", "discontinue", "D", "discontinued; dropped in 2025-Q2, reused in 2025-Q3"),
    DemoChange("2024-Q2", "E0130", "price", "P", "pricing indicator 32 -> 36",
               {"pricing_indicators": ["36"]}),
    DemoChange("2024-Q3", "J0135", "describe", "C", "long description reworded",
               {"long_description": "Injection, adalimumab, 20 mg, for subcutaneous use"}),
    DemoChange("2024-Q3", "A4216", "describe", "", "long description changed, silently (action stays N)",
               {"long_description": "Sterile water, saline and/or dextrose, diluent/flush, 10 ml per unit"}),
    DemoChange("2024-Q3", "S9083", "coverage", "F", "coverage I -> M",
               {"coverage_code": "M"}),
    DemoChange("2024-Q3", "L1812", "add", "A", "new orthotic code",
               {"kind": "procedure", "long_description": "Knee orthosis, elastic with joints, prefabricated, off-the-shelf",
                "short_description": "Ko elastic w joints ots", "pricing_indicators": ["38"],
                "multiple_pricing_indicator": "A", "coverage_code": "C", "betos": "D1F",
                "types_of_service": ["P"]}),
    DemoChange("2024-Q3r2", "Q4321", "add", "A", "re-issue: code omitted in error from the first issue",
               {"kind": "procedure", "long_description": "Skin substitute, demoderm, per square centimeter",
                "short_description": "Demoderm per sq cm", "pricing_indicators": ["51"],
                "multiple_pricing_indicator": "A", "coverage_code": "D", "betos": "O1E",
                "types_of_service": ["1"]}),
    DemoChange("2024-Q3r2", "J0135", "describe", "C", "re-issue: corrected wording of the 2024-Q3 change",
               {"long_description": "Injection, adalimumab, 20 mg, for subcutaneous injection"}),
    DemoChange("2024-Q4", "J0133", "discontinue", "D", "drug code discontinued"),
    DemoChange("2024-Q4", "L1830", "price", "", "pricing indicator 38 -> 46, silently (action stays N)",
               {"pricing_indicators": ["46"]}),
    DemoChange("2024-Q4", "E0156", "misc", "T", "BETOS D1C -> D1A and a second type of service",
               {"betos": "D1A", "types_of_service": ["P", "R"]}),
    DemoChange("2025-Q1", "E0200", "reactivate", "R", "re-activated after its 2024-Q2 discontinuation"),
    DemoChange("2025-Q1", "JZ", "add", "A", "new modifier",
               {"kind": "modifier", "long_description": "Zero drug amount discarded/not administered to any patient",
                "short_description": "Zero drug wasted", "coverage_code": "C"}),
    DemoChange("2025-Q1", "G0560", "add", "A", "new code with a long (multi-line) description",
               {"kind": "procedure", "long_description": _LONG_G,
                "short_description": "Rtm tx mgmt 1st 20 min", "pricing_indicators": ["11"],
                "multiple_pricing_indicator": "A", "coverage_code": "C", "betos": "M5D",
                "types_of_service": ["1"]}),
    DemoChange("2025-Q1", "G0010", "describe+coverage", "B", "description and coverage D -> C",
               {"long_description": "Administration of hepatitis b vaccine, any route", "coverage_code": "C"}),
    DemoChange("2025-Q2", "G0002", "drop", "", "removed from the file (discontinued in 2024-Q2)"),
    DemoChange("2025-Q2", "A0425", "short", "S", "short description changed",
               {"short_description": "Ground mileage per mile"}),
    DemoChange("2025-Q2", "E0143", "coverage", "", "coverage D -> C, silently (action stays N)",
               {"coverage_code": "C"}),
    DemoChange("2025-Q3", "G0002", "reuse", "A", "code reused with a new meaning after being dropped",
               {"kind": "procedure", "long_description": "Caregiver training in strategies and techniques to facilitate the patient's functional performance, group, initial 30 minutes",
                "short_description": "Caregiver train grp 1st 30m", "pricing_indicators": ["11"],
                "multiple_pricing_indicator": "A", "coverage_code": "C", "betos": "M5D",
                "types_of_service": ["1"]}),
    DemoChange("2025-Q3", "A4253", "discontinue", "D", "supply code discontinued"),
    DemoChange("2025-Q3", "J0129", "describe", "C", "long description changed",
               {"long_description": "Injection, abatacept, 10 mg (code may be used for Medicare when drug administered under the direct supervision of a physician, not for use when drug is self administered)"}),
    DemoChange("2025-Q4", "J0139", "add", "A", "new drug code",
               _drug("J0139", "Injection, adalimumab-demo biosimilar, 1 mg", "Inj adalimumab-demo 1 mg")),
    DemoChange("2025-Q4", "J0690", "price", "P", "pricing 51 -> 57 + 21 with multiple pricing A",
               {"pricing_indicators": ["57", "21"]}),
    DemoChange("2025-Q4", "E0143", "misc", "T", "type of service P -> R",
               {"types_of_service": ["R"]}),
)
# fmt: on

_PHRASE = {  # action letter -> the report wording (the first the action-code domain lists)
    letter: phrases[0] for letter, phrases in ACTION_CODE.phrases.items()
}

# Baseline families: (prefix, first number, step, count, long template, short template, fields).
# fmt: off
_MODIFIERS = (
    ("AA", "Anesthesia services performed personally by anesthesiologist", "Anes perf by anesthesiologist"[:28]),
    ("AD", "Medical supervision by a physician: more than four concurrent anesthesia procedures", "MD supervision >4 anes proc"),
    ("AM", "Physician, team member service", "Physician team member svc"),
    ("AQ", "Physician providing a service in an unlisted health professional shortage area (hpsa)", "Phys svc in unlisted hpsa"),
    ("AT", "Acute treatment (this modifier should be used when reporting service 98940, 98941, 98942)", "Acute treatment"),
    ("CR", "Catastrophe/disaster related", "Catastrophe/disaster related"),
    ("GA", "Waiver of liability statement issued as required by payer policy, individual case", "Waiver of liability, ind case"[:28]),
    ("GT", "Via interactive audio and video telecommunication systems", "Interactive telecommunication"[:28]),
    ("GY", "Item or service statutorily excluded, does not meet the definition of any medicare benefit or, for non-medicare insurers, is not a contract benefit", "Statutorily excluded"),
    ("JW", "Drug amount discarded/not administered to any patient", "Discarded drug not administe"),
    ("KX", "Requirements specified in the medical policy have been met", "Documentation on file"),
    ("LT", "Left side (used to identify procedures performed on the left side of the body)", "Left side"),
    ("QM", "Ambulance service provided under arrangement by a provider of services", "Ambulance arr by provider"),
    ("RT", "Right side (used to identify procedures performed on the right side of the body)", "Right side"),
    ("TC", "Technical component; under certain circumstances, a charge may be made for the technical component alone", "Technical component"),
)
_DRUGS = (  # code, drug, dose
    ("J0129", "abatacept", "10 mg"), ("J0133", "acyclovir", "5 mg"),
    ("J0135", "adalimumab", "20 mg"), ("J0153", "adenosine", "1 mg"),
    ("J0202", "alemtuzumab", "1 mg"), ("J0278", "amikacin sulfate", "100 mg"),
    ("J0282", "amiodarone hydrochloride", "30 mg"), ("J0290", "ampicillin sodium", "500 mg"),
    ("J0461", "atropine sulfate", "0.01 mg"), ("J0490", "belimumab", "10 mg"),
    ("J0636", "calcitriol", "0.1 mcg"), ("J0690", "cefazolin sodium", "500 mg"),
    ("J0696", "ceftriaxone sodium", "250 mg"), ("J0744", "ciprofloxacin for intravenous infusion", "200 mg"),
    ("J0878", "daptomycin", "1 mg"), ("J0884", "argatroban", "1 mg"),
    ("J0897", "denosumab", "1 mg"), ("J1100", "dexamethasone sodium phosphate", "1 mg"),
    ("J1160", "digoxin", "up to 0.5 mg"), ("J2997", "alteplase recombinant", "1 mg"),
    ("J9025", "azacitidine", "1 mg"), ("J9033", "bendamustine hcl", "1 mg"),
    ("J9035", "bevacizumab", "10 mg"), ("J9041", "bortezomib", "0.1 mg"),
    ("J9045", "carboplatin", "50 mg"), ("J9055", "cetuximab", "10 mg"),
    ("J9060", "cisplatin, powder or solution", "10 mg"), ("J9070", "cyclophosphamide", "100 mg"),
)
_SUPPLIES = (
    ("A4216", "Sterile water, saline and/or dextrose, diluent/flush, 10 ml"),
    ("A4233", "Replacement battery for external blood glucose monitor owned by patient, alkaline, each"),
    ("A4244", "Alcohol or peroxide, per pint"),
    ("A4245", "Alcohol wipes, per box"),
    ("A4253", "Blood glucose test or reagent strips for home blood glucose monitor, per 50 strips"),
    ("A4259", "Lancets, per box of 100"),
    ("A4305", "Disposable drug delivery system, flow rate of 50 ml or greater per hour"),
    ("A4358", "Urinary drainage bag, leg or abdomen, vinyl, with or without tube, with straps, each"),
    ("A4367", "Ostomy belt, each"),
    ("A4490", "Surgical stockings above knee length, each"),
    ("A4623", "Tracheostomy, inner cannula"),
    ("A6402", "Gauze, non-impregnated, sterile, pad size 16 sq in or less, without adhesive border, each dressing"),
)
_DME = (
    ("E0100", "Cane, includes canes of all materials, adjustable or fixed, with tip"),
    ("E0110", "Crutches, forearm, includes crutches of various materials, adjustable or fixed, pair, complete with tips and handgrips"),
    ("E0130", "Walker, rigid (pickup), adjustable or fixed height"),
    ("E0143", "Walker, folding, wheeled, adjustable or fixed height"),
    ("E0156", "Seat attachment, walker"),
    ("E0163", "Commode chair, mobile or stationary, with fixed arms"),
    ("E0181", "Powered pressure reducing mattress overlay/pad, alternating, with pump, includes heavy duty"),
    ("E0200", "Heat lamp, without stand (table model), includes bulb, or infrared element"),
    ("E0250", "Hospital bed, fixed height, with any type side rails, with mattress"),
    ("E0550", "Humidifier, durable for extensive supplemental humidification during ippb treatments or oxygen delivery"),
    ("E0570", "Nebulizer, with compressor"),
    ("E0627", "Seat lift mechanism, electric, any type"),
    ("E0849", "Traction equipment, cervical, free-standing stand/frame, pneumatic, applying traction force to other than mandible"),
    ("E1390", "Oxygen concentrator, single delivery port, capable of delivering 85 percent or greater oxygen concentration at the prescribed flow rate"),
)
_ORTHOTICS = (
    ("L0120", "Cervical, flexible, non-adjustable, prefabricated, off-the-shelf (foam collar)"),
    ("L0625", "Lumbar orthosis, flexible, provides lumbar support, posterior extends from l-1 to below l-5 vertebra, prefabricated, off-the-shelf"),
    ("L1810", "Knee orthosis, elastic with joints, prefabricated item that has been trimmed, bent, molded, assembled, or otherwise customized to fit a specific patient by an individual with expertise"),
    ("L1820", "Knee orthosis, elastic with condylar pads and joints, with or without patellar control, prefabricated, includes fitting and adjustment"),
    ("L1830", "Knee orthosis, immobilizer, canvas longitudinal, prefabricated, off-the-shelf"),
    ("L1902", "Ankle orthosis, ankle gauntlet or similar, with or without joints, prefabricated, off-the-shelf"),
    ("L3908", "Wrist hand orthosis, wrist extension control cock-up, non molded, prefabricated, off-the-shelf"),
)
_SERVICES = (
    ("G0002", "Office procedure, insertion of temporary indwelling catheter, foley type (separate procedure)"),
    ("G0008", "Administration of influenza virus vaccine"),
    ("G0009", "Administration of pneumococcal vaccine"),
    ("G0010", "Administration of hepatitis b vaccine"),
    ("G0101", "Cervical or vaginal cancer screening; pelvic and clinical breast examination"),
    ("G0102", "Prostate cancer screening; digital rectal examination"),
    ("G0123", "Screening cytopathology, cervical or vaginal (any reporting system), collected in preservative fluid, automated thin layer preparation, screening by cytotechnologist under physician supervision"),
    ("G0328", "Colorectal cancer screening; fecal occult blood test, immunoassay, 1-3 simultaneous"),
    ("G0438", "Annual wellness visit; includes a personalized prevention plan of service (pps), initial visit"),
    ("G0447", "Face-to-face behavioral counseling for obesity, 15 minutes"),
    ("G0463", "Hospital outpatient clinic visit for assessment and management of a patient"),
)
# More drugs and skin substitutes, numbered in steps so the demo has a couple of hundred codes.
_DOSES = ("1 mg", "10 mg", "5 mg", "100 mg", "50 mg", "0.1 mg", "2 mg", "250 mg", "500 mg", "20 mg")
_MORE_DRUGS = (
    "diphenhydramine hcl", "dobutamine hydrochloride", "dopamine hcl", "doxorubicin hydrochloride",
    "enoxaparin sodium", "epinephrine", "eptifibatide", "ertapenem sodium", "esomeprazole sodium",
    "etoposide", "famotidine", "fentanyl citrate", "filgrastim", "fluconazole", "fluorouracil",
    "fosaprepitant", "fulvestrant", "furosemide", "gemcitabine hydrochloride", "gentamicin",
    "glucagon hydrochloride", "granisetron hydrochloride", "haloperidol", "heparin sodium",
    "hydralazine hcl", "hydrocortisone sodium succinate", "hydromorphone", "ibandronate sodium",
    "immune globulin", "infliximab", "insulin", "irinotecan", "iron sucrose", "ketorolac tromethamine",
    "labetalol hcl", "leucovorin calcium", "leuprolide acetate", "levetiracetam", "levofloxacin",
    "lidocaine hcl", "lorazepam", "magnesium sulfate", "meropenem", "methotrexate sodium",
    "methylprednisolone acetate", "metoclopramide hcl", "micafungin sodium", "midazolam hydrochloride",
    "morphine sulfate", "nalbuphine hydrochloride", "naloxone hydrochloride", "nivolumab",
    "octreotide", "ondansetron hydrochloride", "oxaliplatin", "oxytocin", "paclitaxel",
    "pamidronate disodium", "pantoprazole sodium", "pegfilgrastim", "pembrolizumab", "pemetrexed",
)
_SKIN_SUBSTITUTES = (
    "Alloskin", "Apligraf", "Dermagraft", "Integra bilayer matrix wound dressing", "Oasis wound matrix",
    "Grafix core and grafixpl core", "Epifix", "Primatrix", "Matriderm", "Architect",
    "Theraskin", "Puraply", "Kerecis omega3", "Affinity", "Nushield", "Biovance", "Amnioband",
    "Dermacell", "Cytal", "Helicoll", "Microderm", "Revita", "Amnion bio", "Woundfix",
)
_NOT_PAYABLE = (
    ("S9083", "Global fee urgent care centers"),
    ("S9110", "Telemonitoring of patient in their home, including all necessary equipment; computer system, connections, and software; maintenance; patient education and support; per month"),
    ("S9123", "Nursing care, in the home; by registered nurse, per hour (use for general nursing care only, not to be used when cpt codes 99500-99602 can be used)"),
    ("S9373", "Home infusion therapy, hydration therapy; one liter per day, administrative services, professional pharmacy services, care coordination, and all necessary supplies and equipment (drugs and nursing visits coded separately), per diem"),
    ("S9435", "Medical foods for inborn errors of metabolism"),
)
# fmt: on


def _short(text: str) -> str:
    return text.replace(",", "").replace(";", "")[:28].rstrip()


def _row(code: str, kind: str, long: str, short: str, added: date, **fields: object) -> Row:
    row: Row = {
        "code": code, "kind": kind, "long_description": long, "short_description": _short(short),
        "added_date": added, "action_effective_date": added, "action_code": "N",
        "anesthesia_base_units": 0 if kind == "procedure" else None,
    }  # fmt: skip
    row.update(fields)
    price = row.get("pricing_indicators")
    if kind == "procedure":
        row["multiple_pricing_indicator"] = "9" if price and price[0] in ("00", "99") else "A"
    return row


def _baseline() -> dict[str, Row]:
    """The 2023-end state every demo quarter evolves from (185 codes)."""
    old, rows = date(1984, 1, 1), {}
    for i, (code, long, short) in enumerate(_MODIFIERS):
        extra = {"cross_references": ["QM"], "processing_note": "0069"} if code == "AM" else {}
        rows[code] = _row(code, "modifier", long, short, date(1995 + i, 1, 1),
                          coverage_code="C", **extra)  # fmt: skip
    ambulance = ("Ground mileage, per statute mile", "Ambulance service, advanced life support, emergency transport, level 1 (als 1 - emergency)",
                 "Ambulance service, basic life support, non-emergency transport (bls)",
                 "Specialty care transport (sct)")  # fmt: skip
    for i, long in enumerate(ambulance):
        code = ("A0425", "A0427", "A0428", "A0434")[i]
        rows[code] = _row(code, "procedure", long, long, date(2001, 4, 1),
                          pricing_indicators=["13"], coverage_code="C", betos="O1A",
                          types_of_service=["D"])  # fmt: skip
    for code, long in _SUPPLIES:
        rows[code] = _row(code, "procedure", long, long, old, pricing_indicators=["34"],
                          coverage_code="C", betos="D1A", types_of_service=["P"])  # fmt: skip
    for i, (code, long) in enumerate(_DME):
        rows[code] = _row(code, "procedure", long, long, old,
                          pricing_indicators=["32" if i % 3 else "36"],
                          coverage_code="D" if i % 4 == 3 else "C",
                          betos="D1E" if i % 2 else "D1C",
                          types_of_service=["P"] if i % 5 else ["P", "R"])  # fmt: skip
    for i, (code, long) in enumerate(_SERVICES):
        rows[code] = _row(code, "procedure", long, long, date(1998 + i, 1, 1),
                          pricing_indicators=["11"], coverage_code="D" if i == 3 else "C",
                          betos="M5D" if i % 2 else "T1H", types_of_service=["1"],
                          lab_certifications=["630", "610"] if code == "G0123" else None,
                          asc_group="YY" if code == "G0002" else None,
                          asc_effective_date=date(2008, 1, 1) if code == "G0002" else None)  # fmt: skip
    for i, (code, drug, dose) in enumerate(_DRUGS):
        rows[code] = _row(code, "procedure", f"Injection, {drug}, {dose}", f"Inj {drug} {dose}",
                          date(2000 + i % 20, 1, 1), pricing_indicators=["51"],
                          coverage_code="D" if i % 7 == 0 else "C", betos="O1E",
                          types_of_service=["1"], statute="1833(t)" if i % 9 == 0 else None,
                          mcm_references=["2049"] if i % 5 == 0 else None)  # fmt: skip
    for code, long in _ORTHOTICS:
        rows[code] = _row(code, "procedure", long, long, date(2006, 1, 1),
                          pricing_indicators=["38"], coverage_code="C", betos="D1F",
                          types_of_service=["P"])  # fmt: skip
    for i, drug in enumerate(_MORE_DRUGS):
        code, dose = f"J{1200 + i * 13:04d}", _DOSES[i % len(_DOSES)]
        rows[code] = _row(code, "procedure", f"Injection, {drug}, {dose}", f"Inj {drug} {dose}",
                          date(1995 + i % 28, 1 + 3 * (i % 4), 1), pricing_indicators=["51"],
                          coverage_code="C", betos="O1E", types_of_service=["1"])  # fmt: skip
    for i, name in enumerate(_SKIN_SUBSTITUTES):
        code = f"Q{4100 + i * 3:04d}"
        rows[code] = _row(code, "procedure", f"{name}, per square centimeter", f"{name} per sq cm",
                          date(2012 + i % 10, 1, 1), pricing_indicators=["51"],
                          coverage_code="D" if i % 3 else "C", betos="D1A",
                          types_of_service=["1"])  # fmt: skip
    for code, long in _NOT_PAYABLE:
        rows[code] = _row(code, "procedure", long, long, date(2002, 1, 1),
                          pricing_indicators=["00"], coverage_code="I", betos="Z2",
                          types_of_service=["1"])  # fmt: skip
    # Codes discontinued years ago stay in the file with action N and a termination date.
    for code, long, ended in (("C9248", "Injection, clevidipine butyrate, 1 mg", date(2022, 12, 31)),
                              ("Q0091", "Screening papanicolaou smear; obtaining and conveyance", date(2023, 6, 30))):
        rows[code] = _row(code, "procedure", long, long, date(2009, 1, 1),
                          pricing_indicators=["51"], coverage_code="C", betos="O1E",
                          types_of_service=["1"], termination_date=ended,
                          action_effective_date=ended + timedelta(days=1))  # fmt: skip
    return rows


def _apply(rows: dict[str, Row], change: DemoChange, effective: date) -> None:
    if change.kind in ("add", "reuse"):
        if change.code in rows:
            raise ValueError(f"demo: {change.release} adds {change.code}, already in the file")
        values = dict(change.values)
        rows[change.code] = _row(change.code, str(values.pop("kind")),
                                 str(values.pop("long_description")),
                                 str(values.pop("short_description")), effective, **values)
        rows[change.code]["action_code"] = change.action
        return
    row = rows[change.code]
    if change.kind == "drop":
        del rows[change.code]
        return
    row.update(change.values)
    if change.kind == "discontinue":
        row["termination_date"] = effective - timedelta(days=1)
    elif change.kind == "reactivate":
        row["termination_date"] = None
    if change.action:
        row["action_code"], row["action_effective_date"] = change.action, effective


def demo_states() -> list[tuple[DemoQuarter, list[Row]]]:
    """Every demo quarter with its codes in file order (modifiers first, each part sorted)."""
    rows, out = _baseline(), []
    for quarter in DEMO_QUARTERS:
        reissue = quarter.release[7:]  # "" or "r2"
        if not reissue:
            for row in rows.values():
                row["action_code"] = "N"
        for change in DEMO_CHANGES:
            if change.release == quarter.release:
                _apply(rows, change, quarter.effective)
        ordered = sorted(rows.values(), key=lambda r: (r["kind"] != "modifier", r["code"]))
        out.append((quarter, [dict(r) for r in ordered]))
    return out


_DISCLAIMER = (
    "SYNTHETIC DEMO DATA - not a CMS publication. Every code and value below was generated.",
    "\tNote regarding coverage and payment indicators for codes in this demo HCPCS update:",
    "\tThe coverage and payment indicators\xa0are shown for illustration only.",
    "",
    "Demonstration file for the hcpcs-pipeline project.",
)


def _lines(quarter: DemoQuarter, rows: list[Row]) -> list[str]:
    lines = [*_DISCLAIMER, ""] if quarter.disclaimer else []
    for row in rows:
        physical = format_code(row)
        if quarter.padding == "trimmed":
            physical = [ln.rstrip() for ln in physical]
        elif quarter.padding == "trim-continuations":
            physical = physical[:1] + [ln[:91] for ln in physical[1:]]
        lines += physical
    return lines + [""] * quarter.trailing_blank_lines


def _report(rows: list[Row]) -> str:
    body = [f"{r['code']}\t{_PHRASE[str(r['action_code'])].upper()}"
            for r in rows if r["action_code"] != "N"]  # fmt: skip
    return "\r\n".join(["HCPCS/Modifier Code\tType of Change", *body]) + "\r\n"


def _zip(quarter: DemoQuarter, rows: list[Row]) -> bytes:
    stamp = (quarter.effective - timedelta(days=14)).timetuple()[:6]
    stem = quarter.member_name.removesuffix(".txt")
    prefix = stem.split("_ANWEB")[0]
    members = {
        quarter.member_name: ("\r\n".join(_lines(quarter, rows)) + "\r\n").encode("cp1252"),
        f"{prefix}_TransReport_Changes_by_Action_Code.txt": _report(rows).encode("cp1252"),
        f"{prefix}_README.txt": (
            f"Synthetic demo release {quarter.release} for hcpcs-pipeline (not CMS data).\r\n"
        ).encode(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
            info.compress_type, info.create_system = zipfile.ZIP_DEFLATED, 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def write_demo_releases(folder: Path) -> list[Path]:
    """Write the demo ZIPs into ``folder`` (same bytes every time); their paths in release order."""
    paths = []
    for quarter, rows in demo_states():
        path = Path(folder) / quarter.zip_name
        data = _zip(quarter, rows)
        if not path.exists() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
        paths.append(path)
    return paths


def demo_markdown() -> str:
    """The demo quarters and their changes as Markdown (the README's copy is generated from this)."""
    rows = [
        "| release | ZIP | data member | file quirks | changes (code: what, CMS action) |",
        "|---|---|---|---|---|",
    ]
    for quarter in DEMO_QUARTERS:
        quirks = [quarter.padding]
        quirks += ["disclaimer block"] if quarter.disclaimer else []
        quirks += [f"{quarter.trailing_blank_lines} blank lines at end"] * bool(
            quarter.trailing_blank_lines
        )
        changes = "; ".join(
            f"`{c.code}`: {c.note} ({c.action or 'none'})"
            for c in DEMO_CHANGES
            if c.release == quarter.release
        )
        rows.append(
            f"| {quarter.release} | `{quarter.zip_name}` | `{quarter.member_name}` | "
            f"{', '.join(quirks)} | {changes or 'baseline'} |"
        )
    return "\n".join(rows)
