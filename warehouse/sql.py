"""Values written into DuckDB SQL text, with nothing but the standard library, so the query
commands (``hcpcs code``, ``diff``, ``status``) can build their SQL without the warehouse's
Polars-based modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def literal(value: str | int | dt.date | Sequence[str] | None) -> str:
    """``value`` as a DuckDB literal (a date: a DATE; a sequence: a VARCHAR[] of its strings).

    Queries inline their values instead of binding parameters: DuckDB's Python API imports
    pandas to bind any parameter or to read any Python object (2 s on these machines, paid by
    every ``hcpcs`` command that queries the database and by every rebuild).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return "[" + ", ".join(literal(str(v)) for v in value) + "]::VARCHAR[]"
