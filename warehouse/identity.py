"""Which release a stored file is, and whether it may be published: decided against what is
already published, so a release id, once published, always means the same bytes.

The raw store derives revision ids from every file it holds (``sources.rawstore``), so a file that
arrives late can shift them: publish CMS's v2 of a quarter, then fetch its v1, and the store now
calls v1 ``2024-Q3`` and v2 ``2024-Q3r2``. Trusting those ids would publish v2 a second time and
refuse v1 forever. Instead, for each stored file:

- ``unchanged``: these bytes are already published (under whatever id they were published as);
- ``superseded``: a newer revision of its quarter (CMS's ``_vN`` / ``_MMDDYYYY`` rank, then first
  fetch time) is already published, so this older one must not replace it;
- otherwise it is new, under an id no published release of its quarter uses.

After parsing, ``duplicate_of`` catches the same content under other bytes (the bare TXT of a
published ZIP, or the same data re-zipped): it is never published twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from contracts.release import Manifest, ReleaseFile, quarter_of, release_sort_key, revision_id
from sources.archive import member_rank

Verdict = Literal["new", "unchanged", "superseded"]

#: Columns that say where a row sat in its file, not what CMS said: left out of the content hash.
_POSITIONAL = ("source_line",)


@dataclass(frozen=True)
class Identity:
    """What a stored file is: the id it publishes (or was published) under, and the verdict."""

    file: ReleaseFile  # with ``release_id`` set to the id to use
    verdict: Verdict
    reason: str = ""  # for ``superseded``: which published release replaces it


def _age(member_name: str | None, fetched_at: str | None, sha256: str) -> tuple:
    """Revision order within a quarter, as the raw store ranks its files."""
    return (member_rank(member_name or ""), fetched_at or "", sha256)


def identify(file: ReleaseFile, published: list[Manifest]) -> Identity:
    """The identity of the stored ``file`` (its ``release_id`` as the raw store derived it)."""
    same_bytes = next((m for m in published if m.raw_sha256 == file.sha256), None)
    if same_bytes is not None:
        return Identity(replace(file, release_id=same_bytes.release_id), "unchanged")
    quarter = quarter_of(file.release_id or "")
    in_quarter = [m for m in published if m.quarter == quarter]
    age = _age(file.member_name, file.fetched_at, file.sha256)
    newer = [m for m in in_quarter if _age(m.member_name, m.fetched_at, m.raw_sha256) > age]
    if newer:
        latest = max(newer, key=lambda m: release_sort_key(m.release_id))
        return Identity(file, "superseded",
                        f"already superseded: {latest.release_id} ({latest.member_name}) is a "
                        f"newer revision of {quarter} and stays published; {file.member_name} "
                        f"is kept in the raw store, not published")
    stored_revision = release_sort_key(file.release_id or "")[2]
    taken = max((m.revision for m in in_quarter), default=0)
    release_id = revision_id(quarter, max(stored_revision, taken + 1))
    return Identity(replace(file, release_id=release_id), "new")


def content_sha256(codes: pl.DataFrame) -> str:
    """sha256 of what the codes say, in code order, whatever file, format or ZIP held them."""
    rows = codes.drop(_POSITIONAL, strict=False).sort("code", maintain_order=True)
    return hashlib.sha256(rows.write_ndjson().encode()).hexdigest()


def duplicate_of(content: str, release_id: str, published: list[Manifest]) -> Manifest | None:
    """The published release (other than ``release_id``) with the same content, if any."""
    return next((m for m in published
                 if m.content_sha256 == content and m.release_id != release_id), None)
