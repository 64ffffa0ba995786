"""Every setting of a run in one typed object, built once by the command line (or a flow's caller).

Nothing reads the environment at import time: ``Settings.from_env()`` is called where a run starts,
so a test or a deployment can hand over its own ``Settings``. Each field says what it is for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from contracts.urls import without_password

MB = 1024 * 1024


@dataclass(frozen=True)
class FetchSettings:
    """Limits of fetching one URL (``sources.fetch``, ``sources.discover``).

    The flows do not retry a fetch on top: a failing source costs ``max_total_seconds`` at most.
    """

    timeout: float = 30
    """Seconds allowed for connecting and for each read (each capped by what is left of
    ``max_total_seconds``): a server that stops sending is given up on after this long."""
    max_bytes: int = 200 * MB
    """Largest download accepted (announced or actual); real releases are 1-3 MB."""
    max_member_bytes: int = 64 * MB
    """Largest decompressed data member accepted (ZIP bombs); real files are 2.4-5.4 MB."""
    max_attempts: int = 5
    """Requests per download before giving up on transient failures (5xx, 429, resets)."""
    max_total_seconds: float = 60
    """Wall-clock deadline of fetching one URL: every attempt, connection, read and wait between
    attempts included; a download still running then is cut off (a page discovery shares one
    deadline for all its pages). Real releases take a few seconds."""
    backoff_base: float = 1.0
    """First wait between attempts in seconds; doubles each time, with jitter."""


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the release-level checks (shares are fractions: 0.15 = 15%), and the
    repairs applied after the gate.

    Defaults sit well above what real releases show (2016->2017: +3.3% codes, 1.6% vanished,
    2.7% descriptions changed; 2017->2019: +4.6%, 1.7%, 2.9%) and well below a truncated file.
    """

    max_code_count_drift: float = 0.15
    """Largest change in code count against the previous release."""
    max_vanished_share: float = 0.10
    """Largest share of the previous release's codes allowed to be missing."""
    max_revision_removed_codes: int = 5
    """Most codes a revision of the same quarter (2019-Q1r2 after 2019-Q1) may drop that its
    predecessor had not terminated; CMS's revisions drop a handful at most, a cut file hundreds."""
    max_description_changed_share: float = 0.25
    """Largest share of continuing codes whose description changes (a warning)."""
    max_reject_share: float = 0.01
    """Largest number of lines the parser could not read, as a share of the codes read (real
    releases: none); beyond it the file is not trusted as a release."""
    sample_size: int = 10
    """Failing codes named per finding."""
    quick_first: bool = True
    """Run every check in GX's cheap pass/fail format first and count only what failed (half the
    time; same outcomes). False runs every check in full."""
    repairs_table: str = ""
    """CSV of known CMS defects to repair (release, code, field, raw_value, repaired_value,
    evidence); empty means the table shipped in ``transforms/repairs.csv``."""


@dataclass(frozen=True)
class LoadSettings:
    """Where every run loads the database after the history rebuild (``hcpcs load``, a flow step).

    The settings travel with a tracked flow run as its parameters, which Prefect stores: they
    never hold a password. ``from_env`` moves one given in ``HCPCS_LOAD_TARGET`` to this
    process's ``PGPASSWORD``, where libpq (and only it) reads it.
    """

    target: str = ""
    """PostgreSQL URL (``postgresql://user@host:5432/db``); empty: no load. What it leaves out,
    libpq takes from ``PGHOST``, ``PGUSER``, ``PGPASSWORD``, ``PGPASSFILE`` and the like."""
    schema: str = "hcpcs"
    """Schema of the target that holds the tables (created by the first load)."""

    def __post_init__(self) -> None:
        if urlsplit(self.target).password is not None:
            raise ValueError("the load target's URL holds a password: give it in PGPASSWORD "
                             "or ~/.pgpass instead, so it is never stored with the settings")


@dataclass(frozen=True)
class ReportSettings:
    """The release report (``hcpcs report``) that a run rewrites after its rebuild."""

    write: bool = True
    """False: runs leave the report as it is (a deployment nobody browses; 3.5-4 s and about
    130 MiB less for the 7,401 code pages of the real releases). ``hcpcs report`` still writes
    one on demand."""


def _password_to_libpq(url: str, env: MutableMapping[str, str]) -> str:
    """``url`` without its password, which goes to ``PGPASSWORD`` in ``env``."""
    password = urlsplit(url).password
    if password is not None:
        env["PGPASSWORD"] = unquote(password)
    return without_password(url)


#: Environment that keeps Prefect and Great Expectations offline and their state in the project.
OFFLINE_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    # its private server migrates a new database first: 20 s (the default) is not enough on a
    # busy 2-core machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


#: Allocators that give freed memory back at once instead of keeping it for reuse: pyarrow's
#: mimalloc pool and Polars' jemalloc. A run works in bursts (a release, then the next), so kept
#: memory is never reused and only adds up: the 3-release run peaks at 470 MiB instead of 508, no
#: slower. Read when each library loads, so set at the command line's entry, before any import.
ALLOCATOR_ENV: dict[str, str] = {
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
}


def apply_offline_env(project_dir: Path, environ: MutableMapping[str, str] | None = None,
                      *, force: bool = False) -> None:
    """Set ``OFFLINE_ENV`` and a project-local ``PREFECT_HOME`` (only where unset, unless
    ``force``). Call before Prefect or GX is imported."""
    env = os.environ if environ is None else environ
    wanted = {"PREFECT_HOME": str(Path(project_dir) / ".prefect"), **OFFLINE_ENV}
    for key, value in wanted.items():
        if force and key != "PREFECT_HOME":
            env[key] = value
        else:
            env.setdefault(key, value)


@dataclass(frozen=True)
class Settings:
    """Settings of a run: how to fetch, and how strict the gate is."""

    fetch: FetchSettings = field(default_factory=FetchSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    load: LoadSettings = field(default_factory=LoadSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by ``HCPCS_FETCH_<FIELD>`` / ``HCPCS_GATE_<FIELD>`` /
        ``HCPCS_LOAD_<FIELD>`` / ``HCPCS_REPORT_<FIELD>`` variables (e.g.
        ``HCPCS_FETCH_MAX_TOTAL_SECONDS=30``); a malformed value is a ``ValueError``. A password
        in ``HCPCS_LOAD_TARGET`` moves to ``PGPASSWORD`` (of ``os.environ``: the process's libpq
        reads it there)."""
        env = dict(os.environ if environ is None else environ)
        if "HCPCS_LOAD_TARGET" in env:
            env["HCPCS_LOAD_TARGET"] = _password_to_libpq(env["HCPCS_LOAD_TARGET"], os.environ)
        parts = {}
        for name, part in (("fetch", FetchSettings()), ("gate", GateSettings()),
                           ("load", LoadSettings()), ("report", ReportSettings())):
            changes = {}
            for f in fields(part):
                key = f"HCPCS_{name.upper()}_{f.name.upper()}"
                if key in env:
                    changes[f.name] = _typed(key, env[key], _TYPES[str(f.type)])
            parts[name] = replace(part, **changes)
        return cls(**parts)


_TYPES: dict[str, type] = {"float": float, "int": int, "bool": bool, "str": str}  # annotations


def _typed(key: str, text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{key}={text!r}: expected true or false")
        return text.lower() in ("1", "true", "yes")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{key}={text!r}: expected a {kind.__name__}") from None
