"""Release identity from every name CMS has used, ordering, and validation."""

from __future__ import annotations

import pytest

from contracts.release import (
    ReleaseIdError,
    quarter_of,
    release_from_folder,
    release_from_name,
    release_sort_key,
    revision_id,
    validate_release_id,
)

DL = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets/Downloads"


@pytest.mark.parametrize(
    ("name", "release"),
    [
        ("january-2026-alpha-numeric-hcpcs-file.zip", "2026-Q1"),
        ("https://www.cms.gov/files/zip/april-2024-alpha-numeric-hcpcs-files.zip", "2024-Q2"),
        ("https://www.cms.gov/files/zip/july-2026-alpha-numeric-hcpcs-file.zip", "2026-Q3"),
        ("https://www.cms.gov/files/zip/october-2023-alpha-numeric-hcpcs-files.zip", "2023-Q4"),
        ("https://www.cms.gov/files/zip/October-2025-Alpha-Numeric-HCPCS-File.ZIP?x=1", "2025-Q4"),
        ("july-2024-alpha-numeric-hcpcs-file-v2.zip", "2024-Q3"),
        ("2019-Alpha-Numeric-HCPCS-File.zip", "2019-Q1"),
        (f"{DL}/2016-Alpha-Numeric-HCPCS-File.zip", "2016-Q1"),
        (f"{DL}/2015-Annual-Alpha-Numeric-HCPCS-File.zip", "2015-Q1"),
        ("https://www.cms.gov/files/zip/2024-alpha-numeric-hcpcs-file.zip", "2024-Q1"),
        ("14anweb.zip", "2014-Q1"),
        (f"{DL}/12anweb.zip", "2012-Q1"),
        ("/work/shared/cms/2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", "2017-Q1"),
        ("file:///data/in/april-2025-alpha-numeric-hcpcs-file.zip", "2025-Q2"),
        # data members (the provenance names inside the ZIPs)
        ("HCPC17_CONTR_ANWEB.txt", "2017-Q1"),
        ("HCPC2018_CONTR_ANWEB_disc.txt", "2018-Q1"),
        ("HCPC2025_JAN_ANWEB_12172024.txt", "2025-Q1"),
        ("HCPC2026_OCT_ANWEB_v2.txt", "2026-Q4"),
        ("HCPC2020_APRIL_ANWEB_w_disclaimer_v5.xlsx", "2020-Q2"),
        ("HCPC2020_ANWEB_w_disclaimer.xls", "2020-Q1"),
        ("HCPC2020_OCT_ANWEB.xlsx", "2020-Q4"),
        ("HCPC2021_JULY_ANWEB_v2.xlsx", "2021-Q3"),
        ("HCPC2021_APR_CONTR_ANWEB.xlsx", "2021-Q2"),  # month and CONTR both
        ("HCPC2026_JAN_ANWEB_01122026.txt", "2026-Q1"),
        ("HCPC2024_JULY_ANWEB.txt", "2024-Q3"),
        ("HCPC2013_A-N.txt", "2013-Q1"),
    ],
)
def test_release_from_name(name: str, release: str) -> None:
    assert release_from_name(name) == release


@pytest.mark.parametrize(
    "name",
    [
        "https://www.cms.gov/files/zip/2020-corrections-alpha-numeric-hcpcs-file.zip",
        "2019-HCPCS-Alpha-Numeric-Corrections.zip",
        "2019-HCPCS-Record-Layout.zip",
        "2017-NOC-Codes.zip",
        "2019-Alpha-Numeric-Index.pdf",
        "HCPC2026_recordlayout.txt",
        "HCPC2026_APR_ANWEB_Transaction Report.xlsx",
        "HCPC2020_TRANS_ALPHA_w_disclaimer.xlsx",
        "HCPC2016_TransReport_Changes_by_Action_Code.txt",
        "HCPC2026_OCT_Corrections_09102026.xlsx",
        "anweb.xlsx",  # a mirror's renamed workbook: its folder tells (release_from_folder)
        "https://www.cms.gov/medicare/coding-billing/healthcare-common-procedure-system/quarterly-update",
        "march-2024-alpha-numeric-hcpcs-file.zip",
        "anweb.zip",
        "",
    ],
)
def test_not_a_release(name: str) -> None:
    assert release_from_name(name) is None


@pytest.mark.parametrize(
    ("folder", "release"),
    [
        ("2020-Q2-april", "2020-Q2"),
        ("2020-Q3-july", "2020-Q3"),
        ("2020-q4-october", "2020-Q4"),
        ("2016-annual", "2016-Q1"),
        ("2019-Annual", "2019-Q1"),
        ("/work/shared/cms/2020-Q2-april/", "2020-Q2"),
        ("april-2024-alpha-numeric-hcpcs-file", "2024-Q2"),  # an extracted ZIP's folder
        ("2024-Q3", "2024-Q3"),
        ("cms", None),
        ("derived", None),
        ("2020-Q5-may", None),
        ("2019-annual-noc-codes", None),
        ("2020-Q2april", None),
    ],
)
def test_release_from_folder(folder: str, release: str | None) -> None:
    assert release_from_folder(folder) == release


def test_sort_key_and_revisions() -> None:
    ids = ["2026-Q1r2", "2025-Q4", "2026-Q1", "2019-Q1", "2026-Q1r10", "2026-Q1r3"]
    assert sorted(ids, key=release_sort_key) == [
        "2019-Q1", "2025-Q4", "2026-Q1", "2026-Q1r2", "2026-Q1r3", "2026-Q1r10"
    ]  # fmt: skip
    assert release_sort_key("2026-Q1") == (2026, 1, 1)
    assert release_sort_key("2026-Q1r2") == (2026, 1, 2)
    assert quarter_of("2026-Q1r2") == "2026-Q1"
    assert [revision_id("2026-Q1", n) for n in (1, 2, 3)] == ["2026-Q1", "2026-Q1r2", "2026-Q1r3"]


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-Q0", "2026Q1", "26-Q1", "2026-q1", "2026-Q1r1",
                                 "2026-Q1r", "2026-Q1r02", " 2026-Q1", "2026-Q1\n"])  # fmt: skip
def test_malformed_ids_are_rejected_with_the_rule(bad: str) -> None:
    with pytest.raises(ReleaseIdError) as err:
        validate_release_id(bad)
    assert str(err.value).startswith(f"invalid release id {bad!r}: expected YYYY-Qn")
    with pytest.raises(ReleaseIdError):
        release_sort_key(bad)


def test_valid_ids_pass_unchanged() -> None:
    assert validate_release_id("2026-Q1r2") == "2026-Q1r2"
    assert validate_release_id("1999-Q4") == "1999-Q4"
