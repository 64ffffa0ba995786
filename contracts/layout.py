"""The CMS HCPCS contractor record (320 characters) as one table, every fact about a column on it.

Everything that needs a fact about a field (the parser, the output schema, the validation suite,
the change log, the docs, the DuckDB column comments and lookup tables) derives it from ``LAYOUT``;
no position, domain or change rule is written anywhere else. Positions are the CMS record layout's
1-based inclusive columns, identical in CMS's 2016, 2017 and 2019 layout files
(``tests/test_layout_cms.py`` checks every field against each). A missing or contradictory fact
fails at import (``LayoutError``), the way dlt checks its column hints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from contracts.domains import ACTION_CODE, DOMAINS
from contracts.errors import TerminalError

RECORD_LENGTH = 320
CHUNK_LENGTH = 80  # long-description characters carried by each physical line

FieldType = Literal["code", "sequence", "record_id", "chunk", "text", "date", "int", "filler"]
Compare = Literal["exact", "whitespace"]


class LayoutError(TerminalError):
    """The layout table contradicts itself or lacks a fact (raised at import)."""


@dataclass(frozen=True)
class ChangeClass:
    """A kind of change between releases (of a field, or of the code itself), and what CMS says
    about it.

    ``announced_by``: the action codes under which CMS announces such a change (a change under
    another code is not "agreed"; ``warehouse.announcements`` lines them up).
    """

    description: str
    announced_by: str


#: Change classes of the tracked fields (record layout action codes, cms-hcpcs-format.md §3.1).
CHANGE_CLASSES: dict[str, ChangeClass] = {
    "long_description": ChangeClass("Long description", "CB"),
    "short_description": ChangeClass("Short description", "SCB"),
    "payment": ChangeClass("Payment: pricing, ASC, MOG, anesthesia units", "PFB"),
    "misc": ChangeClass("Miscellaneous: BETOS, type of service", "TFB"),
    "coverage": ChangeClass("Coverage", "FB"),
    "administrative": ChangeClass("Other administrative data (references, statute, notes)",
                                  "FB"),
    "termination": ChangeClass("Termination date", "D"),
}
#: Fields that are not compared between releases: the key, and CMS's bookkeeping about a change.
NOT_COMPARED = ("key", "bookkeeping")


@dataclass(frozen=True)
class Field:
    """One field of the record; ``occurs`` > 1 is a repeating group stored as a positional list.

    ``domain`` names the ``contracts.domains`` table its values come from; ``procedure_only``
    fields are blank on modifier records; ``change`` is the ``CHANGE_CLASSES`` entry a change to
    it belongs to (or ``key`` / ``bookkeeping``: never compared), ``compare`` how two values are
    compared (``whitespace``: runs of white space do not count).
    """

    name: str
    start: int  # 1-based, as in the CMS layout
    length: int
    occurs: int
    type: FieldType
    xlsx: str  # the column name in CMS's own xlsx copy (first occurrence for groups)
    description: str
    domain: str | None = None
    procedure_only: bool = False
    change: str | None = None
    compare: Compare = "exact"
    label: str = ""  # the field's name in CMS's record layout, less its "HCPCS" prefix

    @property
    def end(self) -> int:
        return self.start + self.length * self.occurs - 1

    def offsets(self) -> list[int]:
        """0-based start of every occurrence."""
        return [self.start - 1 + i * self.length for i in range(self.occurs)]

    @property
    def is_data(self) -> bool:
        """A column of the codes frame (not structure, not filler)."""
        return self.type not in ("sequence", "record_id", "filler")

    @property
    def tracked(self) -> bool:
        """Compared between releases (a change is logged)."""
        return self.change is not None and self.change not in NOT_COMPARED


# fmt: off
LAYOUT: tuple[Field, ...] = (
    Field("code", 1, 5, 1, "code", "HCPC", "HCPCS code (procedure, e.g. J9035) or Level II modifier (two characters, right-justified in columns 4-5 of the record).", change="key", label="HCPCS Code"),  # noqa: E501
    Field("sequence_number", 6, 5, 1, "sequence", "SEQNUM", "Line number within the code: 00100 on the first line, +100 on each continuation line.", label="Sequence Number"),  # noqa: E501
    Field("record_id", 11, 1, 1, "record_id", "RECID", "3 = procedure first line, 4 = procedure continuation, 7 = modifier first line, 8 = modifier continuation.", domain="record_id", label="Record Identification Code"),  # noqa: E501
    Field("long_description", 12, 80, 1, "chunk", "LONG DESCRIPTION", "Full long description: every line's 80-character chunk, right-trimmed and joined with one space.", change="long_description", compare="whitespace", label="Long Description"),  # noqa: E501
    Field("short_description", 92, 28, 1, "text", "SHORT DESCRIPTION", "Short description (at most 28 characters).", change="short_description", compare="whitespace", label="Short Description"),  # noqa: E501
    Field("pricing_indicators", 120, 2, 4, "text", "PRICE1", "Pricing indicator codes, up to 4 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", domain="pricing_indicator", procedure_only=True, change="payment", label="Pricing Indicator Code"),  # noqa: E501
    Field("multiple_pricing_indicator", 128, 1, 1, "text", "MULT_PI", "Multiple pricing indicator: which pricing methodology applies when there are several.", domain="multiple_pricing_indicator", procedure_only=True, change="payment", label="Multiple Pricing Indicator Code"),  # noqa: E501
    Field("cim_references", 129, 6, 3, "text", "CIM1", "Coverage Issues Manual reference section numbers, up to 3 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", change="administrative", label="Coverage Issues Manual Reference Section Number"),  # noqa: E501
    Field("mcm_references", 147, 8, 3, "text", "MCM1", "Medicare Carriers Manual reference section numbers, up to 3 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", change="administrative", label="Medicare Carriers Manual Reference Section Number"),  # noqa: E501
    Field("statute", 171, 10, 1, "text", "STATUTE", "Statute number (free text, e.g. 1833(t)).", change="administrative", label="Statute Number"),  # noqa: E501
    Field("lab_certifications", 181, 3, 8, "text", "LABCERT1", "Lab certification codes (CLIA specialty), up to 8 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", domain="lab_certification", change="administrative", label="Lab Certification Code"),  # noqa: E501
    Field("cross_references", 205, 5, 5, "text", "XREF1", "Cross-reference codes (HCPCS, CPT or modifier), up to 5 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", change="administrative", label="Cross Reference Code"),  # noqa: E501
    Field("coverage_code", 230, 1, 1, "text", "COV", "Medicare coverage code (C, D, I, M, S).", domain="coverage_code", change="coverage", label="Coverage Code"),  # noqa: E501
    Field("asc_group", 231, 2, 1, "text", "ASC_GRP", "ASC payment group: YY = approved to be performed in an ambulatory surgical center.", domain="asc_group", change="payment", label="ASC Payment Group Code"),  # noqa: E501
    Field("asc_effective_date", 233, 8, 1, "date", "ASC_DT", "Effective date of the ASC payment group.", change="payment", label="ASC Payment Group Effective Date"),  # noqa: E501
    Field("mog_group", 241, 3, 1, "text", "OPPS", "Medicare outpatient group (MOG) payment group (legacy; blank in every release since 2016).", change="payment", label="MOG Payment Group Code"),  # noqa: E501
    Field("mog_indicator", 244, 1, 1, "text", "OPPS_PI", "MOG payment policy indicator (legacy; blank since 2016).", change="payment", label="MOG Payment Policy Indicator"),  # noqa: E501
    Field("mog_effective_date", 245, 8, 1, "date", "OPPS_DT", "MOG effective date (legacy; blank since 2016).", change="payment", label="MOG Effective Date"),  # noqa: E501
    Field("processing_note", 253, 4, 1, "text", "PROCNOTE", "Processing note number (joins the release's proc_notes file).", change="administrative", label="Processing Note Number"),  # noqa: E501
    Field("betos", 257, 3, 1, "text", "BETOS", "Berenson-Eggers type of service code.", domain="betos", procedure_only=True, change="misc", label="Berenson-Eggers Type Of Service Code"),  # noqa: E501
    Field("filler_260", 260, 1, 1, "filler", "", "Filler (always blank).", label="Filler"),
    Field("types_of_service", 261, 1, 5, "text", "TOS1", "Type of service codes, up to 5 occurrences as a positional list (element i is occurrence i+1): trailing blanks dropped, a blank between two values kept as null, [] when none.", domain="type_of_service", procedure_only=True, change="misc", label="Type Of Service Code"),  # noqa: E501
    Field("anesthesia_base_units", 266, 3, 1, "int", "ANEST_BU", "Anesthesia base unit quantity.", procedure_only=True, change="payment", label="Anesthesia Base Unit Quantity"),  # noqa: E501
    Field("added_date", 269, 8, 1, "date", "ADD DT", "Date the code was added to HCPCS.", change="administrative", label="Code Added Date"),  # noqa: E501
    Field("action_effective_date", 277, 8, 1, "date", "ACT EFF DT", "Effective date of the action code's change.", change="bookkeeping", label="Action Effective Date"),  # noqa: E501
    Field("termination_date", 285, 8, 1, "date", "TERM DT", "Date the code was terminated (null while active).", change="termination", label="Termination Date"),  # noqa: E501
    Field("action_code", 293, 1, 1, "text", "ACTION CD", "Action code: what changed for this code in this release.", domain="action_code", change="bookkeeping", label="Action Code"),  # noqa: E501
    Field("filler_294", 294, 27, 1, "filler", "", "Filler (always blank).", label="Filler"),
)
# fmt: on

FIELDS: dict[str, Field] = {f.name: f for f in LAYOUT}

#: Fields that become columns of the codes frame, in layout order (structure and fillers excluded).
DATA_FIELDS: tuple[Field, ...] = tuple(f for f in LAYOUT if f.is_data)
#: Fields compared between releases, in layout order.
TRACKED_FIELDS: tuple[Field, ...] = tuple(f for f in DATA_FIELDS if f.tracked)
#: Fields a modifier record leaves blank (pricing, BETOS, type of service, anesthesia units).
PROCEDURE_ONLY: tuple[str, ...] = tuple(f.name for f in DATA_FIELDS if f.procedure_only)


def domain_columns(domain: str) -> tuple[str, ...]:
    """The codes-frame columns whose values come from ``domain``."""
    return tuple(f.name for f in DATA_FIELDS if f.domain == domain)


def check_layout(layout: tuple[Field, ...]) -> None:
    """Every fact present and consistent, or ``LayoutError`` naming the field."""
    position = 1
    for f in layout:
        where = f"layout field {f.name!r}"
        if f.start != position:
            raise LayoutError(f"{where}: starts at {f.start}, expected {position} (gap/overlap)")
        position = f.end + 1
        if f.domain is not None and f.domain not in DOMAINS:
            raise LayoutError(f"{where}: unknown domain {f.domain!r}")
        if not f.label:
            raise LayoutError(f"{where}: has no label (its name in CMS's record layout)")
        if f.is_data and f.change is None:
            raise LayoutError(f"{where}: says nothing of how a change to it is classified")
        if f.change is not None and f.change not in (*CHANGE_CLASSES, *NOT_COMPARED):
            raise LayoutError(f"{where}: unknown change class {f.change!r}")
        if not f.is_data and (f.change or f.procedure_only):
            raise LayoutError(f"{where}: structure and fillers carry no column facts")
    if position != RECORD_LENGTH + 1:
        raise LayoutError(f"layout ends at column {position - 1}, not {RECORD_LENGTH}")
    for name, cls in CHANGE_CLASSES.items():
        unknown = set(cls.announced_by) - set(ACTION_CODE.values)
        if unknown:
            raise LayoutError(f"change class {name!r}: unknown action codes {sorted(unknown)}")


check_layout(LAYOUT)

#: Columns the parser adds beside the layout's own fields.
DERIVED_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "kind": (pl.String(), "procedure or modifier (from the record id)."),
    "source_line": (pl.Int64(), "1-based line number of the code's first record in the file."),
    "line_count": (pl.Int32(), "Number of physical lines (first + continuations) of the code."),
    "unparsed_values": (
        pl.List(pl.Struct({"field": pl.String(), "value": pl.String()})),
        "Raw text of any value that could not be typed (bad date, non-numeric number) or of a "
        "filler that is not blank: kept here so nothing is lost; the validation gate reports it.",
    ),
}


def _dtype(f: Field) -> pl.DataType:
    scalar = {"date": pl.Date(), "int": pl.Int16()}.get(f.type, pl.String())
    return pl.List(scalar) if f.occurs > 1 else scalar


def _codes_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {"code": pl.String(), "kind": DERIVED_COLUMNS["kind"][0]}
    schema.update({f.name: _dtype(f) for f in DATA_FIELDS if f.name != "code"})
    schema.update({name: dtype for name, (dtype, _) in DERIVED_COLUMNS.items() if name != "kind"})
    return schema


#: The exact output schema of ``parse_anweb`` (column order included).
CODES_SCHEMA: dict[str, pl.DataType] = _codes_schema()

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "code": pl.String(),
    "reason": pl.String(),
    "text": pl.String(),
}


def column_descriptions() -> dict[str, str]:
    """Column name -> description (with CMS columns), for docs and DuckDB ``COMMENT ON``."""
    out: dict[str, str] = {}
    for name in CODES_SCHEMA:
        if name in FIELDS:
            f = FIELDS[name]
            cols = f"{f.start}-{f.end}" if f.end != f.start else f"{f.start}"
            out[name] = f"{f.description} [record columns {cols}; CMS xlsx {f.xlsx}]"
        else:
            out[name] = DERIVED_COLUMNS[name][1]
    return out


def layout_markdown() -> str:
    """The layout as a Markdown table (the docs' copy is generated from this)."""
    rows = [
        "| field | columns | length x occurs | type | CMS xlsx | domain | change class | meaning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in LAYOUT:
        facts = [f"`{f.domain}`" if f.domain else "", f.change or ""]
        if f.procedure_only:
            facts[0] += " (procedures only)"
        rows.append(
            f"| `{f.name}` | {f.start}-{f.end} | {f.length} x {f.occurs} | {f.type} | {f.xlsx} "
            f"| {facts[0].strip()} | {facts[1]} | {f.description} |"
        )
    return "\n".join(rows)
