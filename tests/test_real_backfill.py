"""Every real CMS release in ../shared/cms publishes, in release order, with its real counts; the
TXT releases are reconciled with their xlsx, and ``hcpcs status`` lists what was found."""

from __future__ import annotations

import pytest

from tests.test_flows import hcpcs, query

pytestmark = pytest.mark.realdata

COUNTS = {  # release -> (codes, procedures, modifiers)
    "2016-Q1": (6293, 5956, 337), "2017-Q1": (6498, 6155, 343), "2019-Q1": (6800, 6440, 360),
    "2020-Q2": (7097, 6728, 369), "2020-Q3": (7158, 6789, 369), "2020-Q4": (7196, 6825, 371),
}


def test_every_real_release_publishes_in_release_order(backfill) -> None:
    data_dir, doc = backfill
    assert [(r["release_id"], r["status"], (r["codes"], r["procedures"], r["modifiers"]))
            for r in doc["releases"]] == [(k, "published", v) for k, v in COUNTS.items()]
    assert query(data_dir, """SELECT release_id, member_name LIKE '%.xlsx', code_count,
                              reject_count FROM releases ORDER BY release_order""") == [
        (k, k.startswith("2020"), v[0], 0) for k, v in COUNTS.items()]


def test_findings_and_differences_of_each_real_release(backfill) -> None:
    data_dir, _ = backfill
    # CMS's own inconsistencies, kept per code; the 2020 workbooks leave 116 action dates blank
    assert query(data_dir, """SELECT release_id, rule, count(*) FROM findings
                              GROUP BY ALL ORDER BY ALL""") == [
        ("2016-Q1", "added_not_after_action_effective", 5),
        ("2017-Q1", "added_not_after_action_effective", 6),
        ("2019-Q1", "action_effective_date_present", 1),
        ("2019-Q1", "added_not_after_action_effective", 5),
        *((q, rule, n) for q in ("2020-Q2", "2020-Q3", "2020-Q4")
          for rule, n in (("action_effective_date_present", 116),
                          ("added_not_after_action_effective", 5),
                          ("types_of_service_not_obsolete", 1))),
    ]
    # the ZIPs hold TXT and xlsx: their differences, classified (2016 is a loose TXT: none)
    assert query(data_dir, """SELECT release_id, field, difference, count(*)
                              FROM reconciliation GROUP BY ALL ORDER BY ALL""") == [
        ("2017-Q1", "action_effective_date", "value_differs", 3),
        ("2017-Q1", "long_description", "whitespace", 10),
        ("2019-Q1", "action_effective_date", "blank_in_xlsx", 115),
        ("2019-Q1", "long_description", "whitespace", 11),
        ("2019-Q1", "types_of_service[4]", "blank_in_txt", 2),
    ]
    assert query(data_dir, "SELECT count(*) FROM repairs") == [(0,)]


def test_status_lists_findings_repairs_and_differences(backfill) -> None:
    data_dir, _ = backfill
    code, status = hcpcs("status", "--data-dir", str(data_dir))
    assert code == 0
    assert [(r["release_id"], r["finding_count"], r["repair_count"], r["difference_count"])
            for r in status["releases"]] == [
        ("2016-Q1", 5, 0, 0), ("2017-Q1", 6, 0, 13), ("2019-Q1", 6, 0, 128),
        ("2020-Q2", 122, 0, 0), ("2020-Q3", 122, 0, 0), ("2020-Q4", 122, 0, 0)]
    findings = status["details"]["findings (record level: published, codes flagged in code_flags)"]
    g9949 = [f for f in findings if f["rule"] == "types_of_service_not_obsolete"]
    assert [(f["release"], f["codes"], f["sample"]) for f in g9949] == [
        (q, 1, "G9949 types_of_service[1]=B") for q in ("2020-Q2", "2020-Q3", "2020-Q4")]
    differences = status["details"]["TXT vs xlsx differences"]
    assert {(d["release"], d["field"], d["difference"], d["codes"], d["sample"])
            for d in differences} >= {
        ("2017-Q1", "action_effective_date", "value_differs", 3, "L5638 L5640 L5643"),
        ("2019-Q1", "types_of_service[4]", "blank_in_txt", 2, "E0210 E0776")}
