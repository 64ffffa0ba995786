"""CMS transaction reports (2016 .txt, 2017 and 2019 .prn) -> (code, action); the workbooks and
the pipeline are in ``test_transaction_reports``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from transforms.transaction_report import (
    TransactionReportError,
    parse_transaction_report,
    parse_transaction_report_file,
)


def _counts(frame) -> dict[str, int]:
    return dict(frame.group_by("action").len().sort("action").iter_rows())


@pytest.mark.realdata
def test_three_real_report_formats(cms_dir: Path) -> None:
    r2016 = parse_transaction_report(
        (cms_dir / "2016-annual/HCPC2016_TransReport_Changes_by_Action_Code.txt").read_bytes())
    assert _counts(r2016) == {"A": 236, "C": 44, "D": 88, "F": 2, "N": 5893, "P": 28, "T": 1}
    with zipfile.ZipFile(cms_dir / "2017-annual/2017-Alpha-Numeric-HCPCS-File.zip") as zf:
        r2017 = parse_transaction_report(zf.read("HCPCS2017_Trans Report_ChangesbyAction.prn"))
    assert _counts(r2017) == {"A": 278, "B": 1, "C": 124, "D": 147, "F": 1, "N": 5902, "P": 38,
                              "R": 1, "S": 2, "T": 4}
    assert r2017.row(0) == ("FX", "A", "ADD", 2)  # modifiers are right-justified in the file
    with zipfile.ZipFile(cms_dir / "2019-annual/2019-Alpha-Numeric-HCPCS-File.zip") as zf:
        r2019 = parse_transaction_report(zf.read("Changes_by_ActionCode.prn"))
    assert _counts(r2019) == {"A": 228, "B": 1, "C": 94, "D": 49, "F": 1, "N": 6372, "P": 47,
                              "S": 8}
    # 2019 cuts the change text at the SHORT DESCRIPTION column.
    assert r2019.filter(code="A5513").select("action", "change_text").row(0) == (
        "B", "Coverage and Long Desc")
    assert r2019["code"].n_unique() == r2019.height == 6800


def test_unknown_change_text_names_the_file_and_line() -> None:
    data = b"HCPCS/Modifier Code\tType of Change\r\nA0001\tAdd\r\nA0002\tRenamed by magic\r\n"
    with pytest.raises(TransactionReportError) as err:
        parse_transaction_report_file("HCPC2016_TransReport_Changes_by_Action_Code.txt", data)
    assert str(err.value) == (
        "HCPC2016_TransReport_Changes_by_Action_Code.txt, line 3: unknown type of change "
        "'Renamed by magic' (add CMS's wording to contracts.domains.ACTION_CODE.phrases)")


def test_too_short_a_cut_is_refused() -> None:
    with pytest.raises(TransactionReportError, match=r"^r\.prn, line 2: unknown type of change "
                                                     r"'Co' "):
        parse_transaction_report_file(
            "r.prn", b"HCPCS/Modifier Code Type of Change\r\nA0001   Co\r\n")
