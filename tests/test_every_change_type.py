"""Every change type the history knows, and how each is classified against what CMS announced,
exercised on real CMS records.

Real codes of the 2019 annual file (a few from 2016 and 2017) are placed, as they are or with a
field taken from another real record, into three small releases (2019-Q1, -Q2, -Q3; -Q3 with a
transaction report). Each case is one code and says what ``code_changes``,
``action_reconciliation``, ``code_history`` and ``code_episodes`` must hold for it; all cases
share one database, since no case reads another's code. Tests below enumerate the change types,
the tracked fields, the whitespace-compared fields and the reconciliation reasons, and fail when
one has no case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contracts.layout import TRACKED_FIELDS
from tests.warehouse_synth import D, codes_frame, publish
from warehouse import history
from warehouse.announcements import CLASSES
from warehouse.changes import CHANGE_TYPE_DESCRIPTIONS, EXPECTED_ACTIONS, VALUE_TYPES, value_type

pytestmark = pytest.mark.realdata

R1, R2, R3 = RELEASES = ("2019-Q1", "2019-Q2", "2019-Q3")


@dataclass(frozen=True)
class Real:
    """A value of a real record: ``field`` of ``code`` in the real release ``release``."""

    code: str
    field: str
    release: str = "2019-Q1"
    variant: str | None = None  # a WHITESPACE_VARIANTS key: the value re-spaced that way


#: A code in one release: overrides on its real 2019 record ({}: as CMS wrote it); None: absent.
Spec = dict[str, Any] | None
N = {"action_code": "N"}  # the same record again, nothing announced


@dataclass(frozen=True)
class Case:
    """One code through the three releases, and what the history must say of it.

    ``changes``: its rows of code_changes as (release, change_type, field, old_value, new_value,
    action_code, action_agrees, silent); ``reasons``: its rows of action_reconciliation as
    (release, reason); ``history``: code_history as (episode, version, valid_from_release,
    valid_to_release, end_reason, valid_from_basis, valid_from_date, valid_to_date);
    ``episodes``: code_episodes as (episode, started_by, ended_by, valid_from_date,
    valid_to_date). ``reported``: R3's transaction report lists the code.
    """

    code: str
    releases: tuple[Spec, Spec, Spec]
    changes: tuple[tuple, ...]
    reasons: tuple[tuple[str, str], ...]
    history: tuple[tuple, ...]
    episodes: tuple[tuple, ...]
    reported: bool = True


def _long(code: str, release: str = "2019-Q1") -> Real:
    return Real(code, "long_description", release)


#: The code-level events and the classifications, one real code each.
EVENT_CASES: dict[str, Case] = {
    # CO's first file: nothing to compare with, so nothing observed, CMS's A not lined up
    "in_first_release": Case(
        "CO", ({}, N, N), (),
        ((R1, "previous_not_loaded"),),
        ((1, 1, R1, R3, None, "added_date", D(2019, 1, 1), None),),
        ((1, "in_first_release", None, D(2019, 1, 1), None),)),
    "added": Case(
        "CQ", (None, {}, N),
        ((R2, "added", None, None, _long("CQ"), "A", True, False),),
        ((R2, "agrees"),),
        ((1, 1, R2, R3, None, "added_date", D(2019, 1, 1), None),),
        ((1, "added", None, D(2019, 1, 1), None),)),
    # first seen under N: added after the previous file was made, or left out of it (G0477, 2017)
    "added_silently": Case(
        "A4221", (None, {}, {}),
        ((R2, "added", None, None, _long("A4221"), "N", False, True),),
        ((R2, "absent_from_previous_file"),),
        ((1, 1, R2, R3, None, "added_date", D(1997, 1, 1), None),),
        ((1, "added", None, D(1997, 1, 1), None),)),
    # added in 2018 and terminated 2018-12-31: the first file to carry it has it ended already
    "born_terminated": Case(
        "C9014", (None, {}, N),
        ((R2, "added", None, None, _long("C9014"), "D", False, False),
         (R2, "discontinued", "termination_date", None, "2018-12-31", "D", True, False)),
        ((R2, "added_already_terminated"),),
        ((1, 1, R2, R3, None, "added_date", D(2018, 1, 1), D(2018, 12, 31)),),
        ((1, "added", None, D(2018, 1, 1), D(2018, 12, 31)),)),
    "discontinued": Case(
        "C8904", ({"termination_date": None, "action_code": "N"}, {}, N),
        ((R2, "discontinued", "termination_date", None, "2018-12-31", "D", True, False),),
        ((R2, "agrees"),),
        ((1, 1, R1, R1, "discontinued", "added_date", D(2001, 10, 1), D(2018, 12, 31)),
         (1, 2, R2, R3, None, "termination_date", D(2019, 1, 1), D(2018, 12, 31))),
        ((1, "in_first_release", None, D(2001, 10, 1), D(2018, 12, 31)),)),
    # terminated retroactively without a word (G0464 and 28 more in 2017)
    "discontinued_silently": Case(
        "J0200", ({}, {"termination_date": Real("G9206", "termination_date")}, {
            "termination_date": Real("G9206", "termination_date")}),
        ((R2, "discontinued", "termination_date", None, "2016-12-31", "N", False, True),),
        ((R2, "changed_under_action_n"),),
        ((1, 1, R1, R1, "discontinued", "added_date", D(2000, 1, 1), D(2016, 12, 31)),
         (1, 2, R2, R3, None, "termination_date", D(2017, 1, 1), D(2016, 12, 31))),
        ((1, "in_first_release", None, D(2000, 1, 1), D(2016, 12, 31)),)),
    # CMS names the replacement when it ends the code: a cross reference appears under D
    "discontinued_with_a_cross_reference": Case(
        "C8907", ({"termination_date": None, "cross_references": [], "action_code": "N"}, {}, N),
        ((R2, "cross_references_changed", "cross_references", "[]", "[77047]", "D", False,
          False),
         (R2, "discontinued", "termination_date", None, "2018-12-31", "D", True, False)),
        ((R2, "cleared_on_discontinuation"),),
        ((1, 1, R1, R1, "discontinued", "added_date", D(2001, 10, 1), D(2018, 12, 31)),
         (1, 2, R2, R3, None, "termination_date", D(2019, 1, 1), D(2018, 12, 31))),
        ((1, "in_first_release", None, D(2001, 10, 1), D(2018, 12, 31)),)),
    # terminated in 2014, then left the file: a removal CMS had announced
    "dropped": Case(
        "G0173", ({}, None, None),
        ((R2, "dropped", None, _long("G0173"), None, None, True, False),),
        ((R2, "left_the_file"),),
        ((1, 1, R1, R1, "dropped", "added_date", D(2000, 8, 1), D(2014, 12, 31)),),
        ((1, "in_first_release", "dropped", D(2000, 8, 1), D(2014, 12, 31)),)),
    # in force, then gone without a termination date (DA in 2019, G0298 in 2017)
    "silent_removal": Case(
        "A4216", ({}, None, None),
        ((R2, "dropped", None, _long("A4216"), None, None, False, True),),
        ((R2, "left_the_file"),),
        ((1, 1, R1, R1, "dropped", "added_date", D(2004, 1, 1), D(2019, 3, 31)),),
        ((1, "in_first_release", "dropped", D(2004, 1, 1), D(2019, 3, 31)),)),
    "reactivated": Case(
        "C9016", (N, {"termination_date": None, "action_code": "R",
                      "action_effective_date": D(2019, 4, 1)},
                  {"termination_date": None, "action_code": "N",
                   "action_effective_date": D(2019, 4, 1)}),
        ((R2, "reactivated", "termination_date", "2018-12-31", None, "R", True, False),),
        ((R2, "agrees"),),
        ((1, 1, R1, R1, "changed", "added_date", D(2018, 1, 1), D(2018, 12, 31)),
         (1, 2, R2, R3, None, "action_effective_date", D(2019, 4, 1), None)),
        ((1, "in_first_release", None, D(2018, 1, 1), None),)),
    # back in the file as it was, without a word (DA, April 2020): the same episode goes on
    "reactivated_back_in_the_file": Case(
        "A4217", ({}, None, {}),
        ((R2, "dropped", None, _long("A4217"), None, None, False, True),
         (R3, "reactivated", None, _long("A4217"), _long("A4217"), "N", False, True)),
        ((R2, "left_the_file"), (R3, "changed_under_action_n")),
        ((1, 1, R1, R1, "dropped", "added_date", D(2004, 1, 1), D(2019, 3, 31)),
         (1, 2, R3, R3, None, "release_start", D(2019, 7, 1), None)),
        ((1, "in_first_release", None, D(2004, 1, 1), None),)),
    # back in the file with its text re-spaced: white space is no new meaning, so no new episode
    "reactivated_with_its_text_respaced": Case(
        "A4220", ({}, None, {"long_description": Real("A4220", "long_description",
                                                      variant="run_of_spaces")}),
        ((R2, "dropped", None, _long("A4220"), None, None, False, True),
         (R3, "reactivated", None, _long("A4220"),
          Real("A4220", "long_description", variant="run_of_spaces"), "N", False, True)),
        ((R2, "left_the_file"), (R3, "changed_under_action_n")),
        ((1, 1, R1, R1, "dropped", "added_date", D(1994, 1, 1), D(2019, 3, 31)),
         (1, 2, R3, R3, None, "release_start", D(2019, 7, 1), None)),
        ((1, "in_first_release", None, D(1994, 1, 1), None),)),
    # back after an absence with a new add date (its text unchanged): a new episode
    "reused_with_a_new_add_date": Case(
        "J0205", ({}, None, {"added_date": D(2019, 7, 1), "action_code": "A",
                             "action_effective_date": D(2019, 7, 1)}),
        ((R2, "dropped", None, _long("J0205"), None, None, False, True),
         (R3, "reused", None, _long("J0205"), _long("J0205"), "A", True, False)),
        ((R2, "left_the_file"), (R3, "agrees")),
        ((1, 1, R1, R1, "dropped", "added_date", D(1993, 1, 1), D(2019, 3, 31)),
         (2, 2, R3, R3, None, "added_date", D(2019, 7, 1), None)),
        ((1, "in_first_release", "dropped", D(1993, 1, 1), D(2019, 3, 31)),
         (2, "reused", None, D(2019, 7, 1), None))),
    # ended for 2019, then back with its old add date but another meaning: reused, not reactivated
    "reused_with_a_new_meaning": Case(
        "C9024", ({"termination_date": None, "action_code": "N"}, {},
                  {"termination_date": None, "long_description": _long("C9028"),
                   "action_code": "A"}),
        ((R2, "discontinued", "termination_date", None, "2018-12-31", "D", True, False),
         (R3, "reused", None, _long("C9024"), _long("C9028"), "A", True, False)),
        ((R2, "agrees"), (R3, "agrees")),
        ((1, 1, R1, R1, "discontinued", "added_date", D(2018, 1, 1), D(2018, 12, 31)),
         (1, 2, R2, R2, "reused", "termination_date", D(2019, 1, 1), D(2018, 12, 31)),
         # CMS's add date is the old one: in force from the day after the old meaning ended
         (2, 3, R3, R3, None, "added_date", D(2019, 1, 1), None)),
        ((1, "in_first_release", "reused", D(2018, 1, 1), D(2018, 12, 31)),
         (2, "reused", None, D(2019, 1, 1), None))),
    # G9890 as CMS redefined it for 2019 (action A, add date 2018-04-01), after an older meaning
    "redefined": Case(
        "G9890", ({"added_date": D(2017, 1, 1), "long_description": _long("G9800"),
                   "action_code": "N"}, {}, N),
        ((R2, "redefined", None, _long("G9800"), _long("G9890"), "A", True, False),),
        ((R2, "agrees"),),
        ((1, 1, R1, R1, "redefined", "added_date", D(2017, 1, 1), D(2018, 3, 31)),
         (2, 2, R2, R3, None, "added_date", D(2018, 4, 1), None)),
        ((1, "in_first_release", "redefined", D(2017, 1, 1), D(2018, 3, 31)),
         (2, "redefined", None, D(2018, 4, 1), None))),
    # G0300 as 2016 and 2019 have it: an earlier add date and a fixed text are a correction
    "earlier_add_date_and_new_text": Case(
        "G0300", ({"added_date": Real("G0300", "added_date", "2016-Q1"),
                   "long_description": _long("G0300", "2016-Q1")}, {}, {}),
        ((R2, "added_date_changed", "added_date", "2016-01-01", "2015-11-02", "N", False, True),
         (R2, "long_description_changed", "long_description", _long("G0300", "2016-Q1"),
          _long("G0300"), "N", False, True)),
        ((R2, "changed_under_action_n"),),
        ((1, 1, R1, R1, "changed", "added_date", D(2016, 1, 1), D(2019, 3, 31)),
         (1, 2, R2, R3, None, "release_start", D(2019, 4, 1), None)),
        ((1, "in_first_release", None, D(2016, 1, 1), None),)),
    # action C announces the text; the coverage change that came with it is beyond it
    "changed_beyond_the_action": Case(
        "J0210", ({}, {"coverage_code": Real("A0888", "coverage_code"),
                       "long_description": _long("J0215"), "action_code": "C"},
                  {"coverage_code": Real("A0888", "coverage_code"),
                   "long_description": _long("J0215")}),
        ((R2, "coverage_code_changed", "coverage_code", "D", "M", "C", False, False),
         (R2, "long_description_changed", "long_description", _long("J0210"), _long("J0215"),
          "C", True, False)),
        ((R2, "changed_beyond_action"),),
        ((1, 1, R1, R1, "changed", "added_date", D(1984, 1, 1), D(2019, 3, 31)),
         (1, 2, R2, R3, None, "release_start", D(2019, 4, 1), None)),
        ((1, "in_first_release", None, D(1984, 1, 1), None),)),
    "changed_silently": Case(
        "J0215", ({}, {"betos": Real("A4263", "betos")}, {"betos": Real("A4263", "betos")}),
        ((R2, "betos_changed", "betos", "O1E", "Y1", "N", False, True),),
        ((R2, "changed_under_action_n"),),
        ((1, 1, R1, R1, "changed", "added_date", D(2004, 1, 1), D(2019, 3, 31)),
         (1, 2, R2, R3, None, "release_start", D(2019, 4, 1), None)),
        ((1, "in_first_release", None, D(2004, 1, 1), None),)),
    # R3's transaction report leaves out a code whose record announces T
    "left_out_of_the_report": Case(
        "J0270", ({}, {}, {"types_of_service": Real("G0027", "types_of_service"),
                           "action_code": "T"}),
        ((R3, "types_of_service_changed", "types_of_service", "[1]", "[5]", "T", True, False),),
        ((R3, "report_omits_code"),),
        ((1, 1, R1, R2, "changed", "added_date", D(1997, 1, 1), D(2019, 6, 30)),
         (1, 2, R3, R3, None, "release_start", D(2019, 7, 1), None)),
        ((1, "in_first_release", None, D(1997, 1, 1), None),),
        reported=False),
    # CMS fixed a double space and announced S: a change only in white space is no change
    "short_description_respaced_under_s": Case(
        "C8903", ({}, {"short_description": "Mri w/cont, breast, uni", "action_code": "S"}, {
            "short_description": "Mri w/cont, breast, uni"}),
        (),
        ((R2, "announced_not_observed"),),
        ((1, 1, R1, R3, None, "added_date", D(2001, 10, 1), None),),
        ((1, "in_first_release", None, D(2001, 10, 1), None),)),
    # G9226's long description, 2017 (a double space) and 2019 (one): no change
    "long_description_respaced_by_cms": Case(
        "G9226", ({"long_description": _long("G9226", "2017-Q1")}, {}, {}),
        (), (),
        ((1, 1, R1, R3, None, "added_date", D(2014, 1, 1), None),),
        ((1, "in_first_release", None, D(2014, 1, 1), None),)),
}


@dataclass(frozen=True)
class FieldCase:
    """A real code whose field takes, in R2, the value of the real record ``donor`` (None: no
    release in ../shared/cms carries another value for the field, so it takes ``value``);
    ``old``/``new``: code_changes.old_value/new_value."""

    code: str
    donor: str | None
    old: str | Real | None
    new: str | Real | None
    value: Any = None


#: One case per tracked field: the field changes under the action that announces it.
FIELD_CASES: dict[str, FieldCase] = {
    "long_description": FieldCase("A4262", "A4263", _long("A4262"), _long("A4263")),
    "short_description": FieldCase("A4389", "A4390", "Drainable pch w st wear barr",
                                   "Drainable pch ex wear convex"),
    "pricing_indicators": FieldCase("A4595", "A4263", "[34]", "[11]"),
    "multiple_pricing_indicator": FieldCase("A4802", "A4595", "9", "A"),
    "cim_references": FieldCase("A4210", "B4189", "[60-9]", "[65-10]"),
    "mcm_references": FieldCase("A0888", "B4164", "[2125]", "[2130, 4450]"),
    "statute": FieldCase("A4252", "C8911", "1861(n)", "1833(t)(2)"),
    "lab_certifications": FieldCase("G0027", "G0328", "[400]", "[310, 400]"),
    "cross_references": FieldCase("A0021", "E0970", "[A0030]", "[K0037, K0042]"),
    "coverage_code": FieldCase("E0446", "A0888", "C", "M"),
    "asc_group": FieldCase("J0120", "J0256", None, "YY"),
    "asc_effective_date": FieldCase("J1595", "A9513", "2008-01-01", "2019-01-01"),
    # blank in every release since 2016: values from the record layout's own code tables
    "mog_group": FieldCase("J0130", None, None, "640", "640"),
    "mog_indicator": FieldCase("J0131", None, None, "1", "1"),
    "mog_effective_date": FieldCase("J0132", None, None, "2008-01-01", D(2008, 1, 1)),
    "processing_note": FieldCase("A4218", "C9602", "0127", "0107"),
    "betos": FieldCase("J0133", "A4263", "O1E", "Y1"),
    "types_of_service": FieldCase("J0153", "G0027", "[1, P]", "[5]"),
    "anesthesia_base_units": FieldCase("J0171", None, "0", "5", 5),  # 0 on every real procedure
    "added_date": FieldCase("J0190", "J0120", "1982-01-01", "1986-01-01"),  # later, same text
    "termination_date": FieldCase("G8461", "G0173", "2016-12-31", "2014-12-31"),
}

#: The descriptions (CMS re-wraps them: white space is no change), and any other field compared
#: that way; not read off ``compare`` alone, which is one of the things tested.
WHITESPACE_FIELDS = tuple(f.name for f in TRACKED_FIELDS
                          if f.name.endswith("_description") or f.compare == "whitespace")

#: Ways a text can differ in white space only, applied to a real description.
WHITESPACE_VARIANTS: dict[str, Callable[[str], str]] = {
    "run_of_spaces": lambda s: s.replace(" ", "   ", 1),
    "trailing_space": lambda s: s + " ",
    "leading_space": lambda s: " " + s,
    "tab_for_a_space": lambda s: s.replace(" ", "\t", 1),
    "line_break_for_a_space": lambda s: s.replace(" ", "\n", 1),
    "leading_tab": lambda s: "\t" + s,
}
#: A real code per (whitespace-compared field, variant), in that order.
_WHITESPACE_POOL = ("J0275", "J0278", "J0280", "J0282", "J0285", "J0288", "J0290", "J0330",
                    "J0348", "J0350", "J0360", "J0364")
WHITESPACE_CASES: dict[tuple[str, str], str] = dict(
    zip(product(WHITESPACE_FIELDS, WHITESPACE_VARIANTS), _WHITESPACE_POOL, strict=False))


def _announcing(field: str) -> str:
    """The first action code that announces a change to ``field``."""
    return EXPECTED_ACTIONS[f"{field}_changed"][0]


def _field_new_value(case: FieldCase, field: str) -> Any:
    return case.value if case.donor is None else Real(case.donor, field)


def _all_specs() -> dict[str, tuple[Spec, Spec, Spec]]:
    """Every case's code -> its three release specs."""
    specs = {c.code: c.releases for c in EVENT_CASES.values()}
    for name, fc in FIELD_CASES.items():
        new = {name: _field_new_value(fc, name)}
        specs[fc.code] = ({}, {**new, "action_code": _announcing(name)}, {**new, **N})
    for (name, variant), code in WHITESPACE_CASES.items():
        respaced = {name: Real(code, name, variant=variant)}
        specs[code] = ({}, respaced, respaced)
    return specs


def _resolve(value: Any, real: dict[str, dict[str, dict]]) -> Any:
    if not isinstance(value, Real):
        return value
    found = real[value.release][value.code][value.field]
    return WHITESPACE_VARIANTS[value.variant](found) if value.variant else found


def _record(code: str, spec: dict[str, Any], real: dict[str, dict[str, dict]]) -> dict:
    """The real 2019 record of ``code`` with the overrides of ``spec``."""
    return {**real["2019-Q1"][code], **{k: _resolve(v, real) for k, v in spec.items()}}


@pytest.fixture(scope="module")
def real(real_parsed) -> dict[str, dict[str, dict]]:
    """release -> code -> its real record (as a dict of CODES_SCHEMA)."""
    return {rid: {r["code"]: r for r in parsed.codes.iter_rows(named=True)}
            for rid, parsed in real_parsed.items()}


@pytest.fixture(scope="module")
def con(real, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """The three releases published and the history rebuilt, once for every case."""
    data_dir: Path = tmp_path_factory.mktemp("every-change")
    specs = _all_specs()
    omitted = {c.code for c in EVENT_CASES.values() if not c.reported}
    for i, rid in enumerate(RELEASES):
        rows = [_record(code, s[i], real) for code, s in specs.items() if s[i] is not None]
        report = ({r["code"]: r["action_code"] for r in rows if r["code"] not in omitted}
                  if rid == R3 else None)
        publish(data_dir, rid, codes_frame(rows), report=report)
    history.rebuild(data_dir)
    with duckdb.connect(str(data_dir / history.DB_NAME), read_only=True) as db:
        yield db


def _changes(con: duckdb.DuckDBPyConnection, code: str) -> list[tuple]:
    """The code's rows of code_changes, as Case.changes has them (sorted the same way)."""
    rows = con.execute(
        "SELECT release_id, change_type, field, old_value, new_value, action_code, "
        "action_agrees, silent FROM code_changes WHERE code = ?", [code]).fetchall()
    return sorted(rows, key=repr)


def _expected(rows: tuple[tuple, ...], real: dict) -> list[tuple]:
    """``rows`` with their Real values read from the records, in _changes' order."""
    return sorted((tuple(_resolve(v, real) for v in row) for row in rows), key=repr)


@pytest.mark.parametrize("name", EVENT_CASES)
def test_event_case(con, real, name: str) -> None:
    case = EVENT_CASES[name]
    assert _changes(con, case.code) == _expected(case.changes, real)
    assert con.execute("SELECT release_id, reason FROM action_reconciliation WHERE code = ? "
                       "ORDER BY ALL", [case.code]).fetchall() == list(case.reasons)
    assert con.execute(
        "SELECT episode, version, valid_from_release, valid_to_release, end_reason, "
        "valid_from_basis, valid_from_date, valid_to_date FROM code_history WHERE code = ? "
        "ORDER BY version", [case.code]).fetchall() == list(case.history)
    assert con.execute(
        "SELECT episode, started_by, ended_by, valid_from_date, valid_to_date "
        "FROM code_episodes WHERE code = ? ORDER BY episode", [case.code]).fetchall() == list(
        case.episodes)


@pytest.mark.parametrize("field", FIELD_CASES)
def test_field_change(con, real, field: str) -> None:
    """The field changes under the action that announces it: one row, agreeing, not silent; a
    second version holding the new value."""
    fc = FIELD_CASES[field]
    action = _announcing(field)
    assert _changes(con, fc.code) == _expected(
        ((R2, f"{field}_changed", field, fc.old, fc.new, action, True, False),), real)
    assert con.execute("SELECT release_id, reason FROM action_reconciliation WHERE code = ?",
                       [fc.code]).fetchall() == [(R2, "agrees")]
    new = _resolve(_field_new_value(fc, field), real)
    assert con.execute(
        f"SELECT episode, version, valid_from_release, valid_to_release, end_reason, {field} "
        "FROM code_history WHERE code = ? ORDER BY version", [fc.code]).fetchall() == [
        (1, 1, R1, R1, "changed", real[R1][fc.code][field]), (1, 2, R2, R3, None, new)]
    # the old and new value typed, in the column pair of the field's value type; the others null
    pairs = ", ".join(f"old_{family}, new_{family}" for family in VALUE_TYPES)
    typed = con.execute(f"SELECT {pairs} FROM code_changes WHERE code = ?", [fc.code]).fetchone()
    old_and_new, neither = (real[R1][fc.code][field], new), (None, None)
    assert list(typed) == [value for family in VALUE_TYPES
                           for value in (old_and_new if family == value_type(field) else neither)]


@pytest.mark.parametrize(("field", "variant"), list(WHITESPACE_CASES))
def test_whitespace_only_difference_is_no_change(con, real, field: str, variant: str) -> None:
    code = WHITESPACE_CASES[field, variant]
    original = real[R1][code][field]
    respaced = WHITESPACE_VARIANTS[variant](original)
    assert respaced != original  # the releases do differ, in white space only
    assert con.execute(f"SELECT {field} FROM codes WHERE code = ? ORDER BY release_id",
                       [code]).fetchall() == [(original,), (respaced,), (respaced,)]
    assert _changes(con, code) == []
    assert con.execute(
        "SELECT episode, version, valid_from_release, valid_to_release, end_reason "
        "FROM code_history WHERE code = ?", [code]).fetchall() == [(1, 1, R1, R3, None)]


def test_every_change_type_has_a_case(con) -> None:
    covered = ({row[1] for case in EVENT_CASES.values() for row in case.changes}
               | {f"{field}_changed" for field in FIELD_CASES})
    assert sorted(set(CHANGE_TYPE_DESCRIPTIONS) - covered) == []
    assert set(FIELD_CASES) == {f.name for f in TRACKED_FIELDS}
    assert {t for (t,) in con.sql("SELECT DISTINCT change_type FROM code_changes").fetchall()
            } == set(CHANGE_TYPE_DESCRIPTIONS)


def test_every_classification_has_a_case(con) -> None:
    """A removal with and without a termination date; a change announced by its action, under
    another action, and under N (silent)."""
    rows = [row for case in EVENT_CASES.values() for row in case.changes]
    assert {row[-1] for row in rows if row[1] == "dropped"} == {True, False}
    assert {row[-2:] for row in rows} == {(True, False), (False, False), (False, True)}
    assert con.sql("SELECT DISTINCT action_agrees, silent FROM code_changes ORDER BY ALL"
                   ).fetchall() == [(False, False), (False, True), (True, False)]


def test_every_reconciliation_reason_has_a_case(con) -> None:
    covered = {reason for case in EVENT_CASES.values() for _, reason in case.reasons}
    assert covered | {"agrees"} == set(CLASSES) - {"unclassified"}
    assert {r for (r,) in con.sql("SELECT DISTINCT reason FROM action_reconciliation"
                                  ).fetchall()} == set(CLASSES) - {"unclassified"}


def test_each_case_has_a_code_of_its_own() -> None:
    """What lets every case share one database: no code is in two cases."""
    codes = [*(case.code for case in EVENT_CASES.values()),
             *(fc.code for fc in FIELD_CASES.values()), *WHITESPACE_CASES.values()]
    assert len(codes) == len(set(codes))


def test_every_description_has_whitespace_cases() -> None:
    """Each description field, each way of re-spacing it, and the descriptions are exactly the
    fields the layout compares ignoring white space."""
    assert set(WHITESPACE_CASES) == set(product(WHITESPACE_FIELDS, WHITESPACE_VARIANTS))
    assert WHITESPACE_FIELDS == ("long_description", "short_description")
    assert {f.name for f in TRACKED_FIELDS if f.compare == "whitespace"} == set(
        WHITESPACE_FIELDS)


def test_no_change_or_reason_beyond_the_cases(con, real) -> None:
    """The cases account for every row: no code changes where none was made."""
    expected = [(case.code, *row) for case in EVENT_CASES.values() for row in case.changes]
    expected += [(fc.code, R2, f"{name}_changed", name, fc.old, fc.new, _announcing(name),
                  True, False) for name, fc in FIELD_CASES.items()]
    assert sorted(con.execute(
        "SELECT code, release_id, change_type, field, old_value, new_value, action_code, "
        "action_agrees, silent FROM code_changes").fetchall(), key=repr) == _expected(
        tuple(expected), real)
    reasons = [(rid, case.code, reason) for case in EVENT_CASES.values()
               for rid, reason in case.reasons]
    reasons += [(R2, fc.code, "agrees") for fc in FIELD_CASES.values()]
    assert con.execute("SELECT release_id, code, reason FROM action_reconciliation "
                       "ORDER BY ALL").fetchall() == sorted(reasons)
