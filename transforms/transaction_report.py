"""CMS transaction report ("Changes by Action Code" / "by HCPCS Code") -> one row per code.

Three real shapes (cp1252, CRLF): the 2016 tab-separated ``.txt`` (``code<TAB>Type of Change``),
the 2017 ``.prn`` (code in columns 1-5, then the change text), and the 2019 ``.prn`` whose change
column is cut at the ``SHORT DESCRIPTION`` heading (``Long Description Chang``). The change text is
worded differently every year, so it is mapped to the action code letter through the wordings the
action-code domain lists (``contracts.domains.ACTION_CODE.phrases``), accepting a truncated phrase.
"""

from __future__ import annotations

import polars as pl

from contracts.domains import ACTION_CODE

#: Wordings seen in real reports (lower case) -> the record's action code.
PHRASES: dict[str, str] = {p: a for a, ps in ACTION_CODE.phrases.items() for p in ps}
MIN_PREFIX = 8  # a cut phrase must keep at least this much to be recognised

SCHEMA = {
    "code": pl.String(), "action": pl.String(), "change_text": pl.String(), "line": pl.Int64()
}


def action_for(text: str, line: int) -> str:
    """The action letter for a (possibly truncated) change text; ValueError names the line."""
    t = " ".join(text.lower().split())
    hits = {a for p, a in PHRASES.items() if p == t or (len(t) >= MIN_PREFIX and p.startswith(t))}
    if len(hits) != 1:
        problem = "unknown" if not hits else f"ambiguous ({', '.join(sorted(hits))})"
        raise ValueError(f"transaction report line {line}: {problem} type of change {text!r}")
    return hits.pop()


def parse_transaction_report(data: bytes) -> pl.DataFrame:
    """(code, action, change_text, line) for every code line; modifiers are stripped (``FX``)."""
    lines = data.decode("cp1252").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = next((ln for ln in lines if ln.strip()), "")
    cut = header.upper().find("SHORT DESCRIPTION")
    rows = []
    for number, ln in enumerate(lines, 1):
        if ln is header or not ln.strip():
            continue
        if "\t" in ln:
            code, _, rest = ln.partition("\t")
            text = rest.split("\t")[0]
        else:
            body = ln[:cut] if cut > 0 else ln
            code, _, text = body.strip().partition(" ")
        code, text = code.strip(), text.strip()
        if not code or not text:
            raise ValueError(f"transaction report line {number}: no code and change in {ln!r}")
        rows.append((code, action_for(text, number), text, number))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
