"""Every path inside a data directory, named once.

```
data/
  raw/<quarter>/<sha256>.zip|.txt (+ .json)   the raw store, exactly as fetched
  sources/demo/                               the generated demo releases
  parquet/releases/release=<id>/              one immutable folder per published release
  parquet/history/  parquet/changes/          rebuilt from all releases on every publish
  hcpcs.duckdb                                the analysts' database
  reports/                                    run reports, Data Docs
  quarantine/<UTC time>/                      damaged files moved aside by the doctor
  .tmp/                                       scratch files (earlier versions' rebuilds)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
DB_NAME = "hcpcs.duckdb"


@dataclass(frozen=True)
class DataDir:
    """The paths of one data directory (``DataDir(Path("data")).raw`` is ``data/raw``)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def demo(self) -> Path:
        return self.root / "sources" / "demo"

    @property
    def releases(self) -> Path:
        return self.root / "parquet" / "releases"

    def release(self, release_id: str) -> Path:
        return self.releases / f"release={release_id}"

    @property
    def history_parquet(self) -> Path:
        return self.root / "parquet" / "history" / "code_history.parquet"

    @property
    def changes_parquet(self) -> Path:
        return self.root / "parquet" / "changes" / "code_changes.parquet"

    @property
    def database(self) -> Path:
        return self.root / DB_NAME

    @property
    def lock(self) -> Path:
        return self.root / ".publish.lock"

    @property
    def waivers(self) -> Path:
        return self.root / "waivers.json"

    @property
    def quarantine(self) -> Path:
        """Where damaged published files are moved (never deleted) by ``hcpcs doctor --repair``
        and at the start of every run."""
        return self.root / "quarantine"

    @property
    def scratch(self) -> Path:
        """Scratch files inside the data directory (rebuilds before schema 2 wrote lookup tables
        here), so a killed process's leftovers are found and swept at the next start."""
        return self.root / ".tmp"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def runs(self) -> Path:
        return self.reports / "runs"

    @property
    def last_run(self) -> Path:
        return self.reports / "last_run.json"

    @property
    def site(self) -> Path:
        """The offline HTML report (``hcpcs report``; every publishing run rewrites it)."""
        return self.reports / "site"

    @property
    def data_docs(self) -> Path:
        return self.reports / "data_docs"
