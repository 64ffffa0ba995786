"""The Parquet contract (issue 15): ``hcpcs export DIR`` of the demo and of the real releases, the
published files themselves, data directories published before the contract, and the JSON Schema
of ``manifest.json``. Every schema is compared with the one the docs show (the database built from
no release), every row count and row with DuckDB's own."""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator

from contracts import files
from contracts.paths import DataDir
from contracts.release import Manifest
from flows.cli import app
from tests.conftest import ROOT
from tests.test_flows import hcpcs, runner
from tests.warehouse_synth import codes_frame, publish
from warehouse import contract, export, history
from warehouse import publish as pub
from warehouse.doctor import check
from warehouse.tables import table as table_spec
from warehouse.waivers import add_waiver

MANIFEST_SCHEMA = ROOT / "contracts" / "manifest.schema.json"
DESCRIPTION = contract.DESCRIPTION.encode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory of the nine demo releases, published by ``hcpcs run``."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    code, doc = hcpcs("run", "--data-dir", str(data_dir))
    assert code == 0, doc
    return data_dir


@pytest.fixture(scope="module")
def documented() -> dict[str, pa.Schema]:
    """Table -> contract schema, as the docs' generated block shows it."""
    con = history.empty_database()
    try:
        return {t: contract.table_schema(con, t) for t in contract.base_tables(con)}
    finally:
        con.close()


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(DataDir(data_dir).database), read_only=True)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def _plain(t: pa.DataType) -> bool:
    """Only the contract's types, nested ones included: no large_*, view, decimal or int8/16."""
    if pa.types.is_list(t):
        return t.value_field.name == contract.ELEMENT and _plain(t.value_type)
    if pa.types.is_struct(t):
        return all(_plain(t.field(i).type) for i in range(t.num_fields))
    return t in {pa.string(), pa.bool_(), pa.int32(), pa.int64(), pa.date32(),
                 pa.timestamp("us", tz="UTC")}


def check_contract(schema: pa.Schema, documented: pa.Schema, per_release: bool) -> None:
    """``schema`` is exactly the documented contract: names, types, every description."""
    assert schema.equals(documented, check_metadata=True), (schema, documented)
    assert all(_plain(f.type) for f in schema), schema
    assert all(f.metadata and f.metadata[DESCRIPTION] for f in schema), schema
    assert schema.metadata[DESCRIPTION]
    if per_release:
        assert schema.names[0] == "release_id", schema


def check_export(data_dir: Path, out: Path, documented: dict[str, pa.Schema],
                 sample: int) -> dict:
    """Every file of the export of ``data_dir`` in ``out``: contract schema, export.json entry,
    row count per table and release, and every ``sample``-th row, all against DuckDB."""
    doc = json.loads((out / "export.json").read_text())
    assert doc["schema_version"] == pub.SCHEMA_VERSION == 3
    listed = {f["path"]: f for f in doc["files"]}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.parquet")}
    assert set(listed) == on_disk
    with _connect(data_dir) as con:
        tables = contract.base_tables(con)
        assert tables == sorted(documented) and {f["table"] for f in listed.values()} == set(
            tables)
        releases = [r for (r,) in con.execute(
            "SELECT release_id FROM releases ORDER BY release_order").fetchall()]
        for table in tables:
            spec = table_spec(table)
            ids = releases if spec.per_release else [None]
            for rid in ids:
                rel = f"{table}/{rid}.parquet" if rid else f"{table}.parquet"
                entry, data = listed[rel], (out / rel).read_bytes()
                assert (entry["table"], entry["release_id"]) == (table, rid)
                assert (entry["sha256"], entry["bytes"]) == (
                    hashlib.sha256(data).hexdigest(), len(data))
                check_contract(pq.read_schema(out / rel), documented[table], spec.per_release)
                where = f"WHERE release_id = '{rid}'" if rid else ""
                key = ", ".join(spec.key)
                rows = con.execute(f"SELECT * FROM {table} {where} ORDER BY {key}").fetchall()
                got = pq.read_table(out / rel).to_pylist()
                assert entry["rows"] == len(got) == len(rows), rel
                names = pq.read_schema(out / rel).names
                for i in range(0, len(rows), sample):  # in key order, every value equal
                    assert got[i] == dict(zip(names, rows[i], strict=True)), (rel, i)
    return doc


def test_contract_types_are_a_table_and_an_unknown_one_is_named() -> None:
    assert contract.arrow_type("STRUCT(seq INTEGER, \"day\" DATE)[]") == pa.list_(
        pa.field("element", pa.struct([("seq", pa.int32()), ("day", pa.date32())])))
    assert contract.arrow_type("SMALLINT") == pa.int32()
    assert contract.arrow_type("JSON") == pa.string()
    with pytest.raises(contract.ContractError, match=r"^DuckDB type HUGEINT has no Arrow type in "
                       r"the Parquet contract: add it to warehouse.contract.ARROW_TYPES"):
        contract.arrow_type("HUGEINT")
    with pytest.raises(contract.ContractError, match=r"^t.n: no description"):
        contract.schema("t", {"n": ("INTEGER", None)}, None)
    assert contract.sql_type(pl.List(pl.Struct({"field": pl.String, "value": pl.String}))) == (
        'STRUCT("field" VARCHAR, "value" VARCHAR)[]')


def test_documented_schema_is_the_demo_databases(demo: Path, documented) -> None:
    """The docs render the database built from no release; a built one has the same tables,
    types and comments; history counts are INTEGER and the times TIMESTAMPTZ, in DuckDB too."""
    with _connect(demo) as con:
        assert {t: contract.table_schema(con, t) for t in contract.base_tables(con)} == documented
        assert con.execute(
            """SELECT table_name, column_name, data_type FROM duckdb_columns()
               WHERE column_name IN ('episode', 'version', 'fetched_at', 'accepted_at')
                 AND table_name IN (SELECT table_name FROM duckdb_tables())
               ORDER BY ALL""").fetchall() == [
            ("code_history", "episode", "INTEGER"), ("code_history", "version", "INTEGER"),
            ("releases", "fetched_at", "TIMESTAMP WITH TIME ZONE"),
            ("version_knowledge", "version", "INTEGER"),
            ("waivers", "accepted_at", "TIMESTAMP WITH TIME ZONE")]
        # the macros still answer over the INTEGER versions
        assert con.execute("SELECT count(*) FROM hcpcs_versions()").fetchone() == (209,)


def test_export_of_the_demo(demo: Path, tmp_path: Path, documented) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(out), "--data-dir", str(demo)])
    assert result.exit_code == 0, result.output
    doc = check_export(demo, out, documented, sample=1)
    assert len(doc["files"]) == 9 * 6 + 17  # 9 releases x 6 per-release tables, 17 whole ones
    lines = result.output.splitlines()
    assert lines[0].split() == ["table", "files", "rows"]
    assert ["codes", "9", "1694"] in [line.split() for line in lines]
    assert lines[-1] == f"23 tables, 71 files, {sum(f['rows'] for f in doc['files']):,} rows -> " \
                        f"{out}"
    code, listed = hcpcs("export", str(tmp_path / "again"), "--data-dir", str(demo))
    assert (code, listed) == (0, {"out": str(tmp_path / "again"), **doc})
    # the history Parquet the rebuild publishes is the exported file, byte for byte
    assert (out / "code_history.parquet").read_bytes() == \
        DataDir(demo).history_parquet.read_bytes()
    assert (out / "code_changes.parquet").read_bytes() == \
        DataDir(demo).changes_parquet.read_bytes()


def test_reexport_is_byte_identical_and_replaces_the_folder_whole(demo: Path,
                                                                  tmp_path: Path) -> None:
    first = export.export(demo, tmp_path / "a")
    before = _tree(tmp_path / "a")
    export.export(demo, tmp_path / "b")
    assert _tree(tmp_path / "b") == before  # the same database, the same bytes
    (tmp_path / "a" / "codes" / "stray.parquet").write_bytes(b"x")
    again = export.export(demo, tmp_path / "a")
    assert _tree(tmp_path / "a") == before and again.files == first.files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # nothing aside left


def test_a_new_release_leaves_the_others_files_as_they_were(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    publish(data, "2020-Q1", codes_frame([{"code": "A0001"}, {"code": "A0002"}]))
    publish(data, "2020-Q2", codes_frame([{"code": "A0001"}]))
    history.rebuild(data)
    export.export(data, out)
    before = _tree(out)
    publish(data, "2020-Q3", codes_frame([{"code": "A0001"}, {"code": "A0003"}]))
    history.rebuild(data)
    export.export(data, out)
    after = _tree(out)
    per_release = {p for p in before if p.count("/") == 1}
    assert {p: after[p] for p in per_release} == {p: before[p] for p in per_release}
    assert sorted(p for p in set(after) - set(before)) == [
        f"{t}/2020-Q3.parquet" for t in ("codes", "findings", "reconciliation", "repairs",
                                         "transactions", "validation_results")]
    assert after["code_history.parquet"] != before["code_history.parquet"]


def test_no_database_and_an_unwritable_or_foreign_dir_are_clear_errors(demo: Path,
                                                                      tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "out"), "--data-dir",
                                 str(tmp_path / "none")])
    assert (result.exit_code, result.output) == (
        2, f"error: {tmp_path / 'none' / 'hcpcs.duckdb'}: no database yet; run `hcpcs run` (or "
        "`hcpcs backfill`) first\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    result = runner.invoke(app, ["export", str(blocker / "out"), "--data-dir", str(demo)])
    assert (result.exit_code, result.output) == (
        2, f"error: {blocker / 'out'}: cannot write the export ({blocker}: File exists); choose "
        "a folder you can write to, on a disk with room\n")
    result = runner.invoke(app, ["export", str(blocker), "--data-dir", str(demo)])
    assert (result.exit_code, result.output) == (
        2, f"error: {blocker}: is a file; give a folder for the export\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["export", str(mine), "--data-dir", str(demo)])
    assert (result.exit_code, result.output) == (
        2, f"error: {mine}: not empty and not an earlier export (no export.json); the export "
        "replaces its folder whole: give a new or empty folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "mine"]
    assert blocker.read_text() == "a file where a folder should be"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_failed_export_leaves_the_previous_one_whole(demo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    export.export(demo, out)
    before = _tree(out)
    calls, real = [], export.write_parquet

    def full_disk(*args, **kwargs):
        calls.append(args)
        if len(calls) == 30:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(export, "write_parquet", full_disk)
    with pytest.raises(export.ExportError, match=rf"^{out}: cannot write the export \(No space "
                       r"left on device\); choose a folder you can write to"):
        export.export(demo, out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_killed_exports_aside_folder_is_swept(demo: Path, tmp_path: Path) -> None:
    """A killed export leaves its aside folder; the next export into the same folder removes it
    (its process is gone), never the one of an export still running (this process)."""
    dead = tmp_path / ".out.tmp-999999999-abc123"  # no such pid
    running = tmp_path / f".out.tmp-{os.getpid()}-xyz789"
    for folder in (dead, running):
        (folder / "codes").mkdir(parents=True)
    export.export(demo, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "out"]


def test_a_replacement_failing_at_its_last_rename_keeps_the_previous_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``replacing_folder`` (the export's and the report's): the previous folder is moved aside,
    not deleted, until the new one is in place; a failed rename (a disk error, injected) puts it
    back, and nothing is left aside."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("the previous export")
    real_rename = os.rename

    def failing(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == out and ".out.tmp-" in str(src):
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(files.os, "rename", failing)
    with pytest.raises(OSError, match="Input/output error"), files.replacing_folder(out) as new:
        (new / "new.txt").write_text("the new export")
    assert [(p.name, p.read_text()) for p in out.iterdir()] == [
        ("old.txt", "the previous export")]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_published_files_of_the_demo_follow_the_contract(demo: Path, documented) -> None:
    paths = DataDir(demo)
    folders = sorted(paths.releases.glob("release=*"))
    assert len(folders) == 9
    for folder in folders:
        manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
        assert manifest.schema_version == 3
        for name, spec in pub.PUBLISHED.items():
            schema = pq.read_schema(folder / f"{name}.parquet")
            check_contract(schema, documented.get(name) or spec.arrow_schema(name), True)
            ids = pq.read_table(folder / f"{name}.parquet", columns=["release_id"])
            assert set(ids["release_id"].to_pylist()) <= {manifest.release_id}
            assert ids.num_rows == manifest.files[f"{name}.parquet"].rows
        assert pub.load_codes(demo, manifest.release_id).schema == pl.Schema(pub.CODES_SCHEMA)
    assert pub.PUBLISHED["rejects"].arrow_schema("rejects").names == [
        "release_id", "line", "code", "reason", "text"]
    check_contract(pq.read_schema(paths.history_parquet), documented["code_history"], False)
    check_contract(pq.read_schema(paths.changes_parquet), documented["code_changes"], False)


def _as_schema_2(folder: Path) -> None:
    """Rewrite a release published now as schema 2 wrote it: no release_id, Polars's own types
    (large_string, int16), no descriptions; the manifest says 2 and lists the new files."""
    doc = json.loads((folder / "manifest.json").read_text())
    for name in pub.PUBLISHED:
        path = folder / f"{name}.parquet"
        frame = pl.read_parquet(path).drop("release_id").cast(pub.PUBLISHED[name].schema)
        frame.write_parquet(path, compression="zstd", compression_level=3, statistics=True)
        data = path.read_bytes()
        doc["files"][path.name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                   "bytes": len(data), "rows": frame.height}
    assert pq.read_schema(folder / "codes.parquet").field("code").type == pa.large_string()
    (folder / "manifest.json").write_text(json.dumps({**doc, "schema_version": 2}))


@pytest.mark.parametrize("old", ["2020-Q1", "2020-Q2"])
def test_a_data_dir_published_with_schema_2_still_rebuilds(tmp_path: Path, old: str,
                                                           documented) -> None:
    rows = {"2020-Q1": [{"code": "A0001", "anesthesia_base_units": 4}, {"code": "A0002"}],
            "2020-Q2": [{"code": "A0001", "anesthesia_base_units": 5}, {"code": "A0003"}]}
    for rid, r in rows.items():
        publish(tmp_path, rid, codes_frame(r))
    _as_schema_2(DataDir(tmp_path).release(old))
    waiver = add_waiver(tmp_path, release_id="2020-Q2", rule="code_count_drift", sha256="ab" * 32,
                        reason="test", accepted_by="ops")
    assert check(tmp_path) == []
    history.rebuild(tmp_path)
    for rid, r in rows.items():
        assert pub.load_codes(tmp_path, rid).equals(codes_frame(r))
    with _connect(tmp_path) as con:
        assert contract.table_schema(con, "codes") == documented["codes"]
        assert con.execute("SELECT release_id, code, anesthesia_base_units FROM codes "
                           "ORDER BY ALL").fetchall() == [
            ("2020-Q1", "A0001", 4), ("2020-Q1", "A0002", 0),
            ("2020-Q2", "A0001", 5), ("2020-Q2", "A0003", 0)]
        assert con.execute("SELECT code, change_type, old_number, new_number FROM code_changes "
                           "ORDER BY ALL").fetchall() == [
            ("A0001", "anesthesia_base_units_changed", 4, 5), ("A0002", "dropped", None, None),
            ("A0003", "added", None, None)]
        fetched = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the manifests' ISO text, typed
        assert con.execute("SELECT schema_version, fetched_at FROM releases ORDER BY 1"
                           ).fetchall() == [(2, fetched), (3, fetched)]
        assert con.execute("SELECT accepted_at FROM waivers").fetchall() == [
            (dt.datetime.fromisoformat(waiver.accepted_at),)]
    out = tmp_path / "out"
    export.export(tmp_path, out)
    check_export(tmp_path, out, documented, sample=1)


def _validator() -> Draft202012Validator:
    schema = json.loads(MANIFEST_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(manifest: dict) -> list[str]:
    return [e.message for e in _validator().iter_errors(manifest)]


def test_the_manifest_schema_describes_every_field_of_manifest() -> None:
    schema = json.loads(MANIFEST_SCHEMA.read_text())
    fields = dataclasses.fields(Manifest)
    assert set(schema["properties"]) == {f.name for f in fields}
    assert set(schema["required"]) == {f.name for f in fields if f.default is dataclasses.MISSING
                                       and f.default_factory is dataclasses.MISSING}
    described = [schema["properties"], schema["properties"]["counts"]["properties"],
                 schema["properties"]["files"]["additionalProperties"]["properties"]]
    assert all(p.get("description") for props in described for p in props.values())
    assert schema["properties"]["fetched_at"]["format"] == "date-time"


def test_every_manifest_of_the_demo_run_validates(demo: Path) -> None:
    manifests = [json.loads(p.read_text())
                 for p in sorted(DataDir(demo).releases.glob("release=*/manifest.json"))]
    assert len(manifests) == 9
    assert [_errors(m) for m in manifests] == [[]] * 9
    bad = {**manifests[0], "fetched_at": "yesterday", "extra": 1}
    assert sorted(_errors(bad)) == [
        "'yesterday' is not a 'date-time'",
        "Additional properties are not allowed ('extra' was unexpected)"]


@pytest.mark.realdata
def test_export_of_the_real_releases(backfill, tmp_path: Path, documented) -> None:
    data_dir, _ = backfill
    manifests = [json.loads(p.read_text())
                 for p in sorted(DataDir(data_dir).releases.glob("release=*/manifest.json"))]
    assert [m["release_id"] for m in manifests] == [
        "2016-Q1", "2017-Q1", "2019-Q1", "2020-Q2", "2020-Q3", "2020-Q4"]
    assert [_errors(m) for m in manifests] == [[]] * 6
    out = tmp_path / "out"
    doc = export.export(data_dir, out)
    check_export(data_dir, out, documented, sample=97)
    rows = {t: r for t, (_, r) in doc.tables().items()}
    assert (rows["codes"], rows["code_history"], rows["transactions"]) == (41042, 8316, 41041)
    # BigQuery refuses a NULL element in an array: the real releases have none
    con = duckdb.connect()
    lists = [f.name for f in documented["codes"] if pa.types.is_list(f.type)
             and f.type.value_type == pa.string()]
    nulls = " + ".join(f"len(list_filter({c}, x -> x IS NULL))" for c in lists)
    assert con.execute(f"SELECT sum({nulls}) FROM read_parquet('{out}/codes/*.parquet')"
                       ).fetchone() == (0,)
    assert export.export(data_dir, tmp_path / "again").files == doc.files
