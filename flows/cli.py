"""The ``hcpcs`` command line.

Heavy libraries (Polars, DuckDB, Prefect, Great Expectations) are imported inside each command, so
``hcpcs --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Keep a validated, fully historized copy of the CMS HCPCS Level II code set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Keep a validated, fully historized copy of the CMS HCPCS Level II code set.

    Data lives in ./data (or --data-dir / HCPCS_DATA_DIR): raw ZIPs, Parquet releases, hcpcs.duckdb.
    """


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def parse(
    path: Path = typer.Argument(..., help="A CMS release ZIP, or the extracted fixed-width .txt."),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write the codes to."),
    rejects: Path | None = typer.Option(
        None, help="Also write rejected lines (line, code, reason, text) to this Parquet file."
    ),
) -> None:
    """Parse one release into one row per code (every field, repeating groups as lists).

    Exit status: 0 parsed with no rejects, 1 some lines were rejected, 2 unreadable input.
    """
    from sources.archive import ArchiveError, read_release_file
    from transforms import parse_anweb
    from warehouse.files import write_parquet

    if not path.exists():
        raise fail(f"{path}: no such file")
    try:
        member = read_release_file(path)
    except ArchiveError as exc:
        raise fail(str(exc)) from None
    result = parse_anweb(member.data)
    write_parquet(result.codes, out)
    if rejects is not None:
        write_parquet(result.rejects, rejects)
    kinds = dict(result.codes.group_by("kind").len().iter_rows())
    typer.echo(
        f"{member.name}: {result.codes.height:,} codes ({kinds.get('procedure', 0):,} procedures, "
        f"{kinds.get('modifier', 0):,} modifiers) from {result.line_count:,} lines -> {out}"
    )
    for line, code, reason, _ in result.rejects.head(20).iter_rows():
        typer.echo(f"  rejected line {line} ({code or '-'}): {reason}", err=True)
    if result.rejects.height:
        typer.echo(f"{result.rejects.height:,} lines rejected", err=True)
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()
