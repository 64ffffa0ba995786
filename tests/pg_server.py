"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` on 127.0.0.1, a free port,
password authentication (scram) over TCP, removed afterwards.

PostgreSQL refuses to run as root, so under root (CI) the cluster is made and run by an
unprivileged user (``postgres`` where the Debian package made it, else ``nobody``) through
``runuser``. The binaries are Debian's (``/usr/lib/postgresql/15/bin``) unless ``HCPCS_PG_BIN``
names another folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("HCPCS_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN, PASSWORD = "hcpcs_admin", "s3cret-Pw'd"


def missing() -> str | None:
    """Why no server can be started here, or None."""
    needed = [PG_BIN / name for name in ("initdb", "pg_ctl", "postgres")]
    absent = [str(p) for p in needed if not p.exists()]
    if absent:
        return (f"PostgreSQL binaries not found ({', '.join(absent)}): install Debian's "
                "postgresql-15 or set HCPCS_PG_BIN")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster; ``url(db)`` connects as its superuser with the password."""

    def __init__(self) -> None:
        self.user = None
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        self.root = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        self.data = self.root / "data"
        self.port = _free_port()
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", ADMIN, "-E", "UTF8", "--no-sync",
                  "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        self.start()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(PG_BIN / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")

    def restart(self) -> None:
        """A fast restart: every connection is cut, open transactions are rolled back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres", *, password: bool = True) -> str:
        secret = ":s3cret-Pw%27d" if password else ""
        return f"postgresql://{ADMIN}{secret}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = "postgres"):
        """A psycopg connection (autocommit) to database ``db`` (a name, or a URL of this
        server's): the tests' own view of the server."""
        import psycopg

        db = db.rsplit("/", 1)[1] if "://" in db else db

        return psycopg.connect(host="127.0.0.1", port=self.port, user=ADMIN, password=PASSWORD,
                               dbname=db, autocommit=True)

    def create_database(self, name: str) -> str:
        with self.connect() as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
