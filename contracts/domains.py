"""Every coded field of the HCPCS record as data: its values, their meanings, where they come from.

One ``Domain`` per coded field; each field of ``contracts.layout`` names the domain its values
come from. The same tables feed the validation suite (every value of a coded column must be in its
domain), the docs, the DuckDB lookup tables and the ``<column>_meaning`` columns of ``code_pages``
(``warehouse.database``), and the transaction-report reader (``phrases``). Meanings are the CMS
record layout's wording (HCPCS2016-2019_recordlayout.txt; 2024 additions from the 2024 layout), so
analysts read what CMS wrote. Pure standard library: importing this module must stay instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LAYOUT_2016_2019 = "CMS record layout HCPCS2016-2019_recordlayout.txt"
LAYOUT_2024 = "CMS 2024 record layout (as transcribed in andrewallenbruce/northstar data-raw)"


@dataclass(frozen=True)
class Domain:
    """The allowed values of one coded field, in CMS's order, each with CMS's meaning.

    ``obsolete`` values are still valid codes but CMS retired them, so using one is a warning.
    ``phrases`` are the other wordings CMS uses for a value (lower case), e.g. in the transaction
    reports, whose wording changes every year.
    """

    description: str
    source: str
    values: dict[str, str]
    obsolete: frozenset[str] = field(default_factory=frozenset)
    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, keys in (("obsolete", set(self.obsolete)), ("phrases", set(self.phrases))):
            unknown = keys - set(self.values)
            if unknown:
                raise ValueError(f"{what} values {sorted(unknown)} are not in the domain")


RECORD_ID = Domain(
    description="Record identification code (RIC, record column 11): what kind of line it is. "
    "The parser groups lines by it; the codes frame keeps the result as kind.",
    source=LAYOUT_2016_2019,
    values={
        "3": "First line of procedure record; also contains detail information",
        "4": "Second, third, fourth, etc., description of procedure record; no detail information",
        "7": "First line of modifier record; also contains detail information",
        "8": "Second, third, fourth, etc., description of modifier record; no detail information",
    },
)

ACTION_CODE = Domain(
    description="Action code: the change made to a procedure or modifier code in this release.",
    source=LAYOUT_2016_2019
    + " (the transaction report's key words B and F as coverage changes; the letters agree)",
    values={
        "A": "Add procedure or modifier code",
        "B": "Change in both administrative data field and long description of procedure or "
        "modifier code",
        "C": "Change in long description of procedure or modifier code",
        "D": "Discontinue procedure or modifier code",
        "F": "Change in administrative data field of procedure or modifier code",
        "N": "No maintenance for this code",
        "P": "Payment change (MOG, pricing indicator codes, anesthesia base units, Ambulatory "
        "Surgical Centers)",
        "R": "Re-activate discontinued/deleted procedure or modifier code",
        "S": "Change in short description of procedure code",
        "T": "Miscellaneous change (BETOS, type of service)",
    },
    # Wordings of the transaction reports (2016 txt, 2017-2020 prn and xlsx), lower case. July
    # 2020's "Long/Short Description Change" (CS, both texts changed) is C: the record carries C.
    phrases={
        "A": ("add",),
        "B": ("coverage and long description change", "coverage & long desc change",
              "coverage and long desc change"),
        "C": ("long description change", "change in long description",
              "long/short description change"),
        "D": ("discontinued",),
        "F": ("coverage change", "change in coverage"),
        "N": ("no change",),
        "P": ("payment change", "change in payment"),
        "R": ("re-activated",),
        "S": ("short description change", "change in short description"),
        "T": ("misc change (tos, betos)", "miscellaneous change (betos or type of service)"),
    },
)

COVERAGE_CODE = Domain(
    description="Coverage code: the code's Medicare coverage status.",
    source=LAYOUT_2016_2019,
    values={
        "C": "Carrier judgment",
        "D": "Special coverage instructions apply",
        "I": "Not payable by Medicare",
        "M": "Non-covered by Medicare",
        "S": "Non-covered by Medicare statute",
    },
)

PRICING_INDICATOR = Domain(
    description="Pricing indicator: the methodology for developing unique pricing amounts under "
    "Part B (one to four per procedure, in positional occurrences).",
    source=LAYOUT_2016_2019 + "; 40 from " + LAYOUT_2024,
    values={
        "00": "Service not separately priced by part B (e.g., services not covered, bundled, "
        "used by part a only, etc.)",
        "11": "Price established using national rvu's",
        "12": "Price established using national anesthesia base units",
        "13": "Price established by carriers (e.g., not otherwise classified, individual "
        "determination, carrier discretion)",
        "21": "Price subject to national limitation amount",
        "22": "Price established by carriers (e.g., gap-fills, carrier established panels)",
        "31": "Frequently serviced DME (price subject to floors and ceilings)",
        "32": "Inexpensive & routinely purchased DME (price subject to floors and ceilings)",
        "33": "Oxygen and oxygen equipment (price subject to floors and ceilings)",
        "34": "DME supplies (price subject to floors and ceilings)",
        "35": "Surgical dressings (price subject to floors and ceilings)",
        "36": "Capped rental DME (price subject to floors and ceilings)",
        "37": "Ostomy, tracheostomy and urological supplies (price subject to floors and "
        "ceilings)",
        "38": "Orthotics, prosthetics, prosthetic devices & vision services (price subject to "
        "floors and ceilings)",
        "39": "Parenteral and Enteral Nutrition",
        "40": "Lymphedema Compression Treatment Items (eff 1/1/2024)",
        "45": "Customized DME items",
        "46": "Carrier priced (e.g., not otherwise classified, individual determination, carrier "
        "discretion, gap-filled amounts)",
        "51": "Drugs",
        "52": "Reasonable charge",
        "53": "Statute",
        "54": "Vaccinations",
        "55": "Splints and Casts (eff 10/1/2014)",
        "56": "IOL's inserted in a physician's office (eff 10/1/2014)",
        "57": "Other carrier priced",
        "99": "Value not established",
    },
)

_NOT_SINCE_1998 = " (not applicable as of January 1, 1998)"
MULTIPLE_PRICING_INDICATOR = Domain(
    description="Multiple pricing indicator: whether and how a procedure is priced under several "
    "methodologies.",
    source=LAYOUT_2016_2019,
    values={
        "9": "Not applicable as HCPCS not priced separately by part B (pricing indicator is 00) "
        "or value is not established (pricing indicator is '99')",
        "A": "Not applicable as HCPCS priced under one methodology",
        "B": "Professional component of HCPCS priced using RVU's, while technical component and "
        "global service priced by Medicare part B carriers",
        "C": "Physician interpretation of clinical lab service is priced under physician fee "
        "schedule using RVU's, while pricing of lab service is paid under clinical lab fee "
        "schedule",
        "D": "Service performed by physician is priced under physician fee schedule using RVU's, "
        "while service performed by clinical psychologist is priced under clinical psychologist "
        "fee schedule" + _NOT_SINCE_1998,
        "E": "Service performed by physician is priced under physician fee schedule using RVU's, "
        "service performed by clinical psychologist is priced under clinical psychologist's fee "
        "schedule and service performed by clinical social worker is priced under clinical social "
        "worker fee schedule" + _NOT_SINCE_1998,
        "F": "Service performed by physician is priced under physician fee schedule by carriers, "
        "service performed by clinical psychologist is priced under clinical psychologist's fee "
        "schedule and service performed by clinical social worker is priced under clinical social "
        "worker fee schedule" + _NOT_SINCE_1998,
        "G": "Clinical lab service priced under reasonable charge when service is submitted on "
        "claim with blood products, while service is priced under clinical lab fee schedule when "
        "there are no blood products on claim",
    },
    obsolete=frozenset({"D", "E", "F"}),
)

LAB_CERTIFICATION = Domain(
    description="Lab certification code: the CLIA specialty a laboratory needs for the test (up to "
    "eight per code). A lab certified for a group (e.g. 100) may perform its subgroups (110...).",
    source=LAYOUT_2016_2019,
    values={
        "010": "Histocompatibility testing",
        "100": "Microbiology",
        "110": "Bacteriology",
        "115": "Mycobacteriology",
        "120": "Mycology",
        "130": "Parasitology",
        "140": "Virology",
        "150": "Other microbiology",
        "200": "Diagnostic immunology",
        "210": "Syphilis serology",
        "220": "General immunology",
        "300": "Chemistry",
        "310": "Routine chemistry",
        "320": "Urinalysis",
        "330": "Endocrinology",
        "340": "Toxicology",
        "350": "Other chemistry",
        "400": "Hematology",
        "500": "Immunohematology",
        "510": "Abo group & RH type",
        "520": "Antibody detection (transfusion)",
        "530": "Antibody detection (nontransfusion)",
        "540": "Antibody identification",
        "550": "Compatibility testing",
        "560": "Other immunohematology",
        "600": "Pathology",
        "610": "Histopathology",
        "620": "Oral pathology",
        "630": "Cytology",
        "800": "Radiobioassay",
        "900": "Clinical cytogenetics",
    },
)

TYPE_OF_SERVICE = Domain(
    description="CMS type of service: the kind(s) of service the procedure represents, as carriers "
    "assign it (up to five per code).",
    source=LAYOUT_2016_2019 + " (appendix CMS_TYPE_SRVC_TB)",
    values={
        "1": "Medical care",
        "2": "Surgery",
        "3": "Consultation",
        "4": "Diagnostic radiology",
        "5": "Diagnostic laboratory",
        "6": "Therapeutic radiology",
        "7": "Anesthesia",
        "8": "Assistant at surgery",
        "9": "Other medical items or services",
        "0": "Whole blood only eff 01/96, whole blood or packed red cells before 01/96",
        "A": "Used durable medical equipment (DME)",
        "B": "High risk screening mammography (obsolete 1/1/98)",
        "C": "Low risk screening mammography (obsolete 1/1/98)",
        "D": "Ambulance (eff 04/95)",
        "E": "Enteral/parenteral nutrients/supplies (eff 04/95)",
        "F": "Ambulatory surgical center (facility usage for surgical services)",
        "G": "Immunosuppressive drugs",
        "H": "Hospice services (discontinued 01/95)",
        "I": "Purchase of DME (installment basis) (discontinued 04/95)",
        "J": "Diabetic shoes (eff 04/95)",
        "K": "Hearing items and services (eff 04/95)",
        "L": "ESRD supplies (eff 04/95) (renal supplier in the home before 04/95)",
        "M": "Monthly capitation payment for dialysis",
        "N": "Kidney donor",
        "P": "Lump sum purchase of DME, prosthetics, orthotics",
        "Q": "Vision items or services",
        "R": "Rental of DME",
        "S": "Surgical dressings or other medical supplies (eff 04/95)",
        "T": "Psychological therapy (term. 12/31/97) outpatient mental health limitation "
        "(eff. 1/1/98)",
        "U": "Occupational therapy",
        "V": "Pneumococcal/flu vaccine (eff 01/96), Pneumococcal/flu/hepatitis B vaccine "
        "(eff 04/95-12/95), Pneumococcal only before 04/95",
        "W": "Physical therapy",
        "Y": "Second opinion on elective surgery (obsoleted 1/97)",
        "Z": "Third opinion on elective surgery (obsoleted 1/97)",
    },
    obsolete=frozenset({"B", "C", "H", "I", "Y", "Z"}),
)

BETOS = Domain(
    description="Berenson-Eggers type of service (BETOS): clinically meaningful groupings of "
    "procedures and services (valid from 2003 data; two-character codes are space-padded in "
    "the file and trimmed here).",
    source=LAYOUT_2016_2019 + " (appendix BETOS_TB); O1L from " + LAYOUT_2024,
    values={
        "M1A": "Office visits - new",
        "M1B": "Office visits - established",
        "M2A": "Hospital visit - initial",
        "M2B": "Hospital visit - subsequent",
        "M2C": "Hospital visit - critical care",
        "M3": "Emergency room visit",
        "M4A": "Home visit",
        "M4B": "Nursing home visit",
        "M5A": "Specialist - pathology",
        "M5B": "Specialist - psychiatry",
        "M5C": "Specialist - opthamology",
        "M5D": "Specialist - other",
        "M6": "Consultations",
        "P0": "Anesthesia",
        "P1A": "Major procedure - breast",
        "P1B": "Major procedure - colectomy",
        "P1C": "Major procedure - cholecystectomy",
        "P1D": "Major procedure - turp",
        "P1E": "Major procedure - hysterectomy",
        "P1F": "Major procedure - explor/decompr/excisdisc",
        "P1G": "Major procedure - Other",
        "P2A": "Major procedure, cardiovascular-CABG",
        "P2B": "Major procedure, cardiovascular-Aneurysm repair",
        "P2C": "Major Procedure, cardiovascular-Thromboendarterectomy",
        "P2D": "Major procedure, cardiovascualr-Coronary angioplasty (PTCA)",
        "P2E": "Major procedure, cardiovascular-Pacemaker insertion",
        "P2F": "Major procedure, cardiovascular-Other",
        "P3A": "Major procedure, orthopedic - Hip fracture repair",
        "P3B": "Major procedure, orthopedic - Hip replacement",
        "P3C": "Major procedure, orthopedic - Knee replacement",
        "P3D": "Major procedure, orthopedic - other",
        "P4A": "Eye procedure - corneal transplant",
        "P4B": "Eye procedure - cataract removal/lens insertion",
        "P4C": "Eye procedure - retinal detachment",
        "P4D": "Eye procedure - treatment of retinal lesions",
        "P4E": "Eye procedure - other",
        "P5A": "Ambulatory procedures - skin",
        "P5B": "Ambulatory procedures - musculoskeletal",
        "P5C": "Ambulatory procedures - inguinal hernia repair",
        "P5D": "Ambulatory procedures - lithotripsy",
        "P5E": "Ambulatory procedures - other",
        "P6A": "Minor procedures - skin",
        "P6B": "Minor procedures - musculoskeletal",
        "P6C": "Minor procedures - other (Medicare fee schedule)",
        "P6D": "Minor procedures - other (non-Medicare fee schedule)",
        "P7A": "Oncology - radiation therapy",
        "P7B": "Oncology - other",
        "P8A": "Endoscopy - arthroscopy",
        "P8B": "Endoscopy - upper gastrointestinal",
        "P8C": "Endoscopy - sigmoidoscopy",
        "P8D": "Endoscopy - colonoscopy",
        "P8E": "Endoscopy - cystoscopy",
        "P8F": "Endoscopy - bronchoscopy",
        "P8G": "Endoscopy - laparoscopic cholecystectomy",
        "P8H": "Endoscopy - laryngoscopy",
        "P8I": "Endoscopy - other",
        "P9A": "Dialysis services (medicare fee schedule)",
        "P9B": "Dialysis services (non-medicare fee schedule)",
        "I1A": "Standard imaging - chest",
        "I1B": "Standard imaging - musculoskeletal",
        "I1C": "Standard imaging - breast",
        "I1D": "Standard imaging - contrast gastrointestinal",
        "I1E": "Standard imaging - nuclear medicine",
        "I1F": "Standard imaging - other",
        "I2A": "Advanced imaging - CAT/CT/CTA: brain/head/neck",
        "I2B": "Advanced imaging - CAT/CT/CTA: other",
        "I2C": "Advanced imaging - MRI/MRA: brain/head/neck",
        "I2D": "Advanced imaging - MRI/MRA: other",
        "I3A": "Echography/ultrasonography - eye",
        "I3B": "Echography/ultrasonography - abdomen/pelvis",
        "I3C": "Echography/ultrasonography - heart",
        "I3D": "Echography/ultrasonography - carotid arteries",
        "I3E": "Echography/ultrasonography - prostate, transrectal",
        "I3F": "Echography/ultrasonography - other",
        "I4A": "Imaging/procedure - heart including cardiac catheterization",
        "I4B": "Imaging/procedure - other",
        "T1A": "Lab tests - routine venipuncture (non Medicare fee schedule)",
        "T1B": "Lab tests - automated general profiles",
        "T1C": "Lab tests - urinalysis",
        "T1D": "Lab tests - blood counts",
        "T1E": "Lab tests - glucose",
        "T1F": "Lab tests - bacterial cultures",
        "T1G": "Lab tests - other (Medicare fee schedule)",
        "T1H": "Lab tests - other (non-Medicare fee schedule)",
        "T2A": "Other tests - electrocardiograms",
        "T2B": "Other tests - cardiovascular stress tests",
        "T2C": "Other tests - EKG monitoring",
        "T2D": "Other tests - other",
        "D1A": "Medical/surgical supplies",
        "D1B": "Hospital beds",
        "D1C": "Oxygen and supplies",
        "D1D": "Wheelchairs",
        "D1E": "Other DME",
        "D1F": "Prosthetic/Orthotic devices",
        "D1G": "Drugs Administered through DME",
        "O1A": "Ambulance",
        "O1B": "Chiropractic",
        "O1C": "Enteral and parenteral",
        "O1D": "Chemotherapy",
        "O1E": "Other drugs",
        "O1F": "Hearing and speech services",
        "O1G": "Immunizations/Vaccinations",
        "O1L": "Lymphedema compression treatment items (eff 1/1/2024)",
        "Y1": "Other - Medicare fee schedule",
        "Y2": "Other - non-Medicare fee schedule",
        "Z1": "Local codes",
        "Z2": "Undefined codes",
    },
)

ASC_GROUP = Domain(
    description="ASC payment group: whether the procedure may be performed in an ambulatory "
    "surgical center (blank = not approved, null in the codes frame).",
    source=LAYOUT_2016_2019 + " (edit rules: CODE: YY; BLANK = Not Approved For ASC)",
    values={"YY": "Approved to be performed in an ambulatory surgical center"},
)

#: BETOS family (a BETOS code's first character) -> its name, as the BETOS classification groups
#: its codes; the report charts codes by family. Every BETOS value belongs to one (checked below).
BETOS_FAMILIES: dict[str, str] = {
    "M": "Evaluation and management",
    "P": "Procedures",
    "I": "Imaging",
    "T": "Tests",
    "D": "Durable medical equipment",
    "O": "Other",
    "Y": "Exceptions",
    "Z": "Unclassified",
}
if unknown := {v[0] for v in BETOS.values} - set(BETOS_FAMILIES):
    raise ValueError(f"BETOS values of no family: {sorted(unknown)}")

#: Domain name -> domain; the name is the lookup table's suffix in DuckDB (``lookup_<name>``).
DOMAINS: dict[str, Domain] = {
    "record_id": RECORD_ID,
    "action_code": ACTION_CODE,
    "coverage_code": COVERAGE_CODE,
    "pricing_indicator": PRICING_INDICATOR,
    "multiple_pricing_indicator": MULTIPLE_PRICING_INDICATOR,
    "lab_certification": LAB_CERTIFICATION,
    "type_of_service": TYPE_OF_SERVICE,
    "betos": BETOS,
    "asc_group": ASC_GROUP,
}
