"""The layout's own checks and derived tables, to the character: each message names the field and
the column, the schema and the column descriptions are exactly what the parser and DuckDB get.

The tables are derived when the module is imported, before ``make mutants`` turns a mutant on,
so the derivations are called again here: a wrong one fails a test of its own (docs/mutants.md).
"""

from __future__ import annotations

import polars as pl
import pytest

from contracts import layout
from contracts.layout import LAYOUT, ChangeClass, LayoutError, check_layout
from tests.test_contracts import _with


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # the first field is where column 1 must be: sequence number starts at 6
        (LAYOUT[1:], "layout field 'sequence_number': starts at 6, expected 1 (gap/overlap)"),
        (
            _with("statute", start=172),
            "layout field 'statute': starts at 172, expected 171 (gap/overlap)",
        ),
        (
            _with("statute", label=""),
            "layout field 'statute': has no label (its name in CMS's record layout)",
        ),
        (LAYOUT[:-1], "layout ends at column 293, not 320"),
        (_with("filler_294", length=28), "layout ends at column 321, not 320"),
    ],
)
def test_a_broken_layout_is_named_to_the_column(fields: tuple, message: str) -> None:
    with pytest.raises(LayoutError) as raised:
        check_layout(fields)
    assert str(raised.value) == message


def test_a_change_class_announced_by_an_unknown_action_code_is_refused(monkeypatch) -> None:
    monkeypatch.setitem(layout.CHANGE_CLASSES, "colour", ChangeClass("Colour", "QCZ"))
    with pytest.raises(LayoutError) as raised:
        check_layout(LAYOUT)
    assert str(raised.value) == "change class 'colour': unknown action codes ['Q', 'Z']"


def test_the_codes_schema_is_derived_exactly() -> None:
    lists, text = pl.List(pl.String()), pl.String()
    expected = {
        "code": text,
        "kind": text,
        "long_description": text,
        "short_description": text,
        "pricing_indicators": lists,
        "multiple_pricing_indicator": text,
        "cim_references": lists,
        "mcm_references": lists,
        "statute": text,
        "lab_certifications": lists,
        "cross_references": lists,
        "coverage_code": text,
        "asc_group": text,
        "asc_effective_date": pl.Date(),
        "mog_group": text,
        "mog_indicator": text,
        "mog_effective_date": pl.Date(),
        "processing_note": text,
        "betos": text,
        "types_of_service": lists,
        "anesthesia_base_units": pl.Int16(),
        "added_date": pl.Date(),
        "action_effective_date": pl.Date(),
        "termination_date": pl.Date(),
        "action_code": text,
        "source_line": pl.Int64(),
        "line_count": pl.Int32(),
        "unparsed_values": pl.List(pl.Struct({"field": text, "value": text})),
    }
    schema = layout._codes_schema()
    assert list(schema) == list(expected)
    assert schema == expected
    assert schema == layout.CODES_SCHEMA


def test_column_descriptions_name_the_record_columns_and_the_xlsx_column() -> None:
    described = layout.column_descriptions()
    assert list(described) == list(layout.CODES_SCHEMA)
    assert described["statute"] == (
        "Statute number (free text, e.g. 1833(t)). [record columns 171-180; CMS xlsx STATUTE]"
    )
    # a one-column field is one column, not a range
    single = described["multiple_pricing_indicator"]
    assert single.endswith("[record columns 128; CMS xlsx MULT_PI]")
    # a repeating group spans all its occurrences
    assert described["lab_certifications"].endswith("[record columns 181-204; CMS xlsx LABCERT1]")
    assert described["kind"] == "procedure or modifier (from the record id)."
    assert described["line_count"] == (
        "Number of physical lines (first + continuations) of the code."
    )


def test_a_repeating_field_of_any_count_is_a_list() -> None:
    from dataclasses import replace

    statute = layout.FIELDS["statute"]
    assert layout._dtype(statute) == pl.String()
    assert layout._dtype(replace(statute, occurs=2)) == pl.List(pl.String())
    assert layout._dtype(replace(layout.FIELDS["added_date"], occurs=2)) == pl.List(pl.Date())
