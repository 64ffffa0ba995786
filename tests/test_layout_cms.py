"""Every field of ``contracts.layout`` against CMS's own record layout text (``../shared/cms``).

The round-trip tests write with the same ``LAYOUT`` the parser reads, so they cannot catch a wrong
position; here the positions come from an independent source: CMS's "HCPCS Contractor Record"
layout files, read by a small parser written from their text (never from ``LAYOUT``). A field
there is a numbered name line (``  13.  HCPCS Statute Number``) followed by a line with its
LENGTH, BEG and END (of the first occurrence); a repeating group says ``OCCURS MIN: m OCCURS MAX:
n`` further down its block. Items 2-4 redefine the code's columns 1-5 (a 3-column filler, then
the modifier in 4-5): a view of ``code``, not fields of their own.

The 2016, 2017 and 2019 layouts describe the same record, field for field. They differ in their
dates, years and aliases, in some wording and tab indentation of the descriptions, and in how
they write a repeating group: 2016 and 2017 put the count in MIN with MAX 0 (``OCCURS MIN: 4
OCCURS MAX: 0``), 2019 in MAX with MIN 0 or 1 (``OCCURS MIN: 1 OCCURS MAX: 4``).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from contracts.layout import LAYOUT, RECORD_LENGTH, Field

pytestmark = pytest.mark.realdata

#: CMS's record layouts: year -> (path under ../shared/cms, member inside the ZIP or None).
LAYOUT_FILES = {
    "2016": ("2016-annual/HCPCS2016_recordlayout.txt", None),
    "2017": ("2017-annual/2017-Record-Layout.zip", "HCPCS17_recordlayout.txt"),
    "2019": ("2019-annual/2019-HCPCS-Record-Layout.zip", "HCPCS2019_recordlayout.txt"),
}

_NAME = re.compile(r"^ {2}(\d+)\.\s+(\S.*?)(?:\s{2,}(CHAR|NUM|GRP))?\s*$")
_COLUMNS = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(CHAR|NUM|GRP|REC))?\s*$")
_OCCURS = re.compile(r"OCCURS MIN:\s*(\d+)\s+OCCURS MAX:\s*(\d+)")
_RECORD = re.compile(r"^\s+\*\*\*\s+HCPCS Contractor Record")
_APPENDIX = "TABLE OF CODES APPENDIX"
#: "2016 Healthcare Common Procedure Coding System (HCPCS)": the record's title and its abbreviation
_TITLE = re.compile(r"^\s+\d{4} (.+?) \((\w+)\)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CmsField:
    """One numbered item of CMS's layout, as its text says it."""

    number: int
    name: str
    length: int
    begin: int
    end: int  # of the first occurrence
    occurs: int
    type: str  # CHAR, NUM, or GRP (a group)
    redefines: bool  # a group that redefines another field's columns

    @property
    def last(self) -> int:
        """The last column of the last occurrence."""
        return self.begin + self.length * self.occurs - 1


@dataclass(frozen=True)
class CmsLayout:
    """A layout file read: the record's length, its fields, and the title's abbreviation."""

    record_length: int
    fields: tuple[CmsField, ...]
    spelled_out: str  # "Healthcare Common Procedure Coding System"
    abbreviation: str  # "HCPCS"

    def redefinitions(self) -> dict[CmsField, tuple[CmsField, ...]]:
        """Each redefining group -> its members (the items after it that lie in its columns)."""
        out = {}
        for i, group in enumerate(self.fields):
            if group.redefines:
                members = []
                for member in self.fields[i + 1 :]:
                    if member.end > group.end:
                        break
                    members.append(member)
                out[group] = tuple(members)
        return out

    def record_fields(self) -> tuple[CmsField, ...]:
        """The fields that lay out the record: all but the redefining groups and their members."""
        views = {f for group, members in self.redefinitions().items() for f in (group, *members)}
        return tuple(f for f in self.fields if f not in views)

    def label(self, field: CmsField) -> str:
        """CMS's name less its "HCPCS " prefix, with the title spelled out as CMS abbreviates it
        ("Healthcare Common Procedure Coding System Code" -> "HCPCS Code")."""
        return field.name.removeprefix(f"{self.abbreviation} ").replace(
            self.spelled_out, self.abbreviation
        )


def _field(number: int, name: str, block: list[str], type_on_name: str | None) -> CmsField:
    """One item from its block of lines (the name line excluded)."""
    columns = next(m for line in block if (m := _COLUMNS.match(line)))
    length, begin, end = (int(columns[i]) for i in (1, 2, 3))
    occurs = 1
    if found := next((m for line in block if (m := _OCCURS.search(line))), None):
        least, most = int(found[1]), int(found[2])
        occurs = most or least  # 2019 writes the count as MAX; 2016-2017 as MIN with MAX 0
    kind = type_on_name or columns[4]
    redefines = any(line.strip().startswith("REDEFINE") for line in block)
    return CmsField(number, name, length, begin, end, occurs, kind, redefines)


def parse_cms_layout(text: str) -> CmsLayout:
    """CMS's layout text -> its record length and numbered fields, in file order."""
    lines = text.splitlines()
    body = lines[: next((i for i, line in enumerate(lines) if _APPENDIX in line), len(lines))]
    record = next(i for i, line in enumerate(body) if _RECORD.match(line))
    record_length = int(_COLUMNS.match(body[record + 1])[1])
    heads = [(i, m) for i, line in enumerate(body) if (m := _NAME.match(line))]
    fields = tuple(
        _field(int(m[1]), m[2], body[i + 1 : nxt], m[3])
        for (i, m), nxt in zip(heads, [i for i, _ in heads[1:]] + [len(body)], strict=True)
    )
    title = _TITLE.search(text)
    return CmsLayout(record_length, fields, title[1], title[2])


def _read(cms_dir: Path, rel: str, member: str | None) -> str:
    path = cms_dir / rel
    if member is None:
        return path.read_text(encoding="ascii")
    with zipfile.ZipFile(path) as zf:
        return zf.read(member).decode("ascii")


@cache
def _cms_layout(cms_dir: Path, year: str) -> CmsLayout:
    return parse_cms_layout(_read(cms_dir, *LAYOUT_FILES[year]))


@pytest.fixture(params=list(LAYOUT_FILES))
def cms(request: pytest.FixtureRequest, cms_dir: Path) -> CmsLayout:
    """One of CMS's layout files, parsed."""
    return _cms_layout(cms_dir, request.param)


def _pairs(cms: CmsLayout) -> dict[str, CmsField]:
    """Layout field name -> its CMS field, by name: the k-th layout field of a label gets the k-th
    CMS field of that name (the two fillers). A field CMS has no name for is left out."""
    unpaired: dict[str, list[CmsField]] = {}
    for f in cms.record_fields():
        unpaired.setdefault(cms.label(f).casefold(), []).append(f)
    pairs = {}
    for field in LAYOUT:
        if named := unpaired.get(field.label.casefold()):
            pairs[field.name] = named.pop(0)
    return pairs


def _match(cms: CmsLayout, field: Field) -> CmsField:
    """The CMS field of ``field``; fails naming the field when CMS has none."""
    there = [f.name for f in cms.fields if f.begin <= field.end and f.last >= field.start]
    pairs = _pairs(cms)
    assert field.name in pairs, (
        f"layout field {field.name!r}: CMS's layout has no field named {field.label!r}; CMS's "
        f"fields at its columns {field.start}-{field.end}: {there}"
    )
    return pairs[field.name]


def _facts(label: str, start: int, length: int, occurs: int, end: int, numeric: bool) -> dict:
    return {"label": label.casefold(), "start": start, "length": length, "occurs": occurs,
            "end": end, "numeric": numeric}  # fmt: skip


def test_every_layout_file_in_the_folder_is_covered(cms_dir: Path):
    """A layout CMS adds to ../shared/cms (loose or inside a ZIP) joins ``LAYOUT_FILES``."""
    found = {(str(p.relative_to(cms_dir)), None) for p in cms_dir.rglob("*recordlayout*.txt")}
    for path in cms_dir.rglob("*.zip"):
        with zipfile.ZipFile(path) as zf:
            rel = str(path.relative_to(cms_dir))
            found |= {(rel, m) for m in zf.namelist() if "recordlayout" in m.lower()}
    assert found == set(LAYOUT_FILES.values())


def test_cms_fields_lay_the_record_end_to_end(cms: CmsLayout):
    """The parser of the layout text read every field and its occurrences: CMS's fields, each
    occurrence after the other, cover columns 1 to the record length exactly once."""
    assert cms.record_length == RECORD_LENGTH
    assert [f.number for f in cms.fields] == list(range(1, len(cms.fields) + 1))
    position = 1
    for f in cms.record_fields():
        assert (f.begin, f.end) == (position, position + f.length - 1), f
        position = f.last + 1
    assert position == cms.record_length + 1


def test_the_code_redefinition_is_a_view_of_code(cms: CmsLayout):
    """CMS's items 2-4 (a group over columns 1-5: a 3-column filler, then the modifier in 4-5) are
    the code's own columns seen two ways, not fields of the record: ``code`` accounts for them."""
    code = LAYOUT[0]
    (group, members), *others = cms.redefinitions().items()
    assert not others
    assert [(f.name, f.begin, f.last) for f in (group, *members)] == [
        (f"{cms.abbreviation} Code Redefinition Group", code.start, code.end),
        ("FILLER", 1, 3),
        (f"{cms.abbreviation} Modifier Code", 4, code.end),
    ]
    redefined = [f for f in cms.record_fields() if (f.begin, f.last) == (group.begin, group.end)]
    assert [_match(cms, code)] == redefined


@pytest.mark.parametrize("field", LAYOUT, ids=[f.name for f in LAYOUT])
def test_field_matches_cms_layout(cms: CmsLayout, field: Field):
    """Start, length, occurrences, end, CMS's name and numeric type of each layout field."""
    theirs = _match(cms, field)
    numeric = field.type in ("sequence", "date", "int")
    assert _facts(field.label, field.start, field.length, field.occurs, field.end, numeric) == (
        _facts(cms.label(theirs), theirs.begin, theirs.length, theirs.occurs, theirs.last,
               theirs.type == "NUM")
    ), f"layout field {field.name!r} against CMS's item {theirs.number}. {theirs.name}"  # fmt: skip


def test_every_cms_field_is_a_layout_field(cms: CmsLayout):
    """No CMS field without its layout field (the other way round is
    ``test_field_matches_cms_layout``); the failure names CMS's unmatched fields."""
    matched = {f.number for f in _pairs(cms).values()}
    unmatched = [f"{f.number}. {f.name}" for f in cms.record_fields() if f.number not in matched]
    assert unmatched == []


def test_the_2016_2017_2019_layouts_describe_the_same_record(cms_dir: Path):
    """The years differ in dates, aliases, wording and how they write OCCURS, not in a field."""
    described = {
        year: [(f.number, f.name, f.length, f.begin, f.end, f.occurs, f.type, f.redefines)
               for f in _cms_layout(cms_dir, year).fields]
        for year in LAYOUT_FILES
    }  # fmt: skip
    assert described["2017"] == described["2016"]
    assert described["2019"] == described["2016"]
    assert len(described["2016"]) == 31
