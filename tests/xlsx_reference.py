"""CMS's own xlsx copy of a release, aligned field by field with the parser's output.

Used by the real-data tests to prove the fixed-width parser agrees with CMS. The column mapping is
derived from the layout table (``Field.xlsx`` names the first occurrence: PRICE1 -> PRICE2...).
"""

from __future__ import annotations

import io
import warnings

import pandas as pd
import polars as pl

from contracts.layout import DATA_FIELDS


def read_cms_xlsx(data: bytes) -> pl.DataFrame:
    """The 48-column ANWEB sheet as text; the header is found by its HCPC cell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "Cannot parse header or footer"
        raw = pd.read_excel(
            io.BytesIO(data), dtype=str, header=None, engine="openpyxl", na_filter=False
        )
    header = int(raw.index[raw.iloc[:, 0].astype(str).str.strip() == "HCPC"][0])
    frame = raw.iloc[header + 1 :].set_axis(raw.iloc[header].str.strip().tolist(), axis=1)
    return pl.from_pandas(frame.reset_index(drop=True))


def xlsx_columns() -> dict[str, list[str]]:
    """Parser column -> the xlsx column of each occurrence."""
    return {
        f.name: [f.xlsx] if f.occurs == 1 else [f.xlsx[:-1] + str(i + 1) for i in range(f.occurs)]
        for f in DATA_FIELDS
    }


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return expr.dt.strftime("%Y%m%d")
    return expr.cast(pl.String)


def disagreements(codes: pl.DataFrame, xlsx: pl.DataFrame) -> pl.DataFrame:
    """Every (code, field, txt value, xlsx value) where the two copies differ (whitespace-trimmed).

    The xlsx rows with RECID 3/7 are the codes; its stray RECID 4 overflow rows are not codes.
    """
    sheet = xlsx.filter(pl.col("RECID").str.strip_chars().is_in(["3", "7"])).with_columns(
        code=pl.col("HCPC").str.strip_chars()
    )
    rows = []
    for name, cols in xlsx_columns().items():
        dtype = codes.schema[name]
        inner = dtype.inner if isinstance(dtype, pl.List) else dtype
        for i, col in enumerate(cols):
            ours = pl.col(name).list.get(i, null_on_oob=True) if len(cols) > 1 else pl.col(name)
            left = codes.select("code", txt=_as_text(ours, inner))
            right = sheet.select("code", xlsx=pl.col(col).str.strip_chars())
            field = name if len(cols) == 1 else f"{name}[{i + 1}]"
            both = left.join(right, on="code", how="full", coalesce=True).with_columns(
                pl.col("txt", "xlsx").str.strip_chars().replace("", None), field=pl.lit(field)
            )
            rows.append(both.filter(pl.col("txt").ne_missing(pl.col("xlsx"))))
    return pl.concat(rows).select("code", "field", "txt", "xlsx")
