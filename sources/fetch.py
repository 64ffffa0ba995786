"""Fetch one release (``https://``, ``http://``, ``file://`` or a local path) into the raw store.

The bytes are streamed to a temporary file inside the store, hashed on the way, capped in size,
then checked: a ZIP holding exactly one HCPCS data member (``sources.archive``), or a bare data
file a user handed over (the ``.txt``, or an ANWEB ``.xlsx`` / ``.xls`` workbook). Only then are
they moved in (``RawStore.add``). Anything else ends in ``FetchError`` naming the URL, the attempts
made and the cause, with the store unchanged. A bare data file from a folder brings the transaction
report beside it (``sources.catalog.sibling_report``), kept in the store with it
(``RawStore.keep_report``): a ZIP carries its own.

Time: fetching one URL has one wall-clock deadline, ``max_total_seconds`` from the start, for
every attempt and wait. It is enforced twice: every timeout httpx gets (connect, each read) is
capped by the time left, and when the deadline passes a timer shuts the connection's socket down,
so a read blocked on a stalled server returns at once; the body is read as bytes arrive, so a
server that drips bytes is cut off too. (Name resolution cannot be interrupted: the system
resolver's own timeouts bound it.)

Transient failures (connection refused, timeouts, a body cut short, HTTP 5xx and 429) are retried
within ``max_attempts`` and the deadline; other 4xx, and a body that is not a release, are final.
The wait before attempt n+1 is the server's ``Retry-After`` (seconds, or an HTTP date: the seconds
until then, 0 when past) when it sends a readable one, else ``backoff_base * 2**(n-1)`` times a
jitter drawn from [0.5, 1.0]. No wait is capped on its own: a wait that would end past the deadline
is not started, and the fetch gives up at once (a transient ``FetchError`` naming the wait). The
clocks and the jitter are a ``Clock``; tests pass their own to measure every wait. A host that
does not resolve, or a network with no route to it, is not retried (``UnreachableError``):
seconds of waiting do not bring a network back, and a run offline should say so at once.
ETag / Last-Modified from the last download of a URL are sent back (If-None-Match /
If-Modified-Since), and a 304 means "unchanged".

Credentials: a ``https://user:password@host/...`` URL is redacted (``contracts.urls``) before
anything is stored or raised; the userinfo goes as HTTP basic auth to that origin only (httpx drops
it on a redirect to another host).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

from contracts.errors import HcpcsError
from contracts.release import (
    FileStatus,
    ReleaseFile,
    quarter_of,
    release_from_name,
    validate_release_id,
)
from contracts.settings import FetchSettings
from contracts.urls import credentials_for, redact_text, request_url, strip_credentials
from sources.archive import (
    MAX_MEMBER_BYTES,
    ArchiveError,
    data_format,
    file_format,
    read_release_file,
)
from sources.catalog import CatalogError, local_path, release_of_file, sibling_report
from sources.rawstore import RawStore

USER_AGENT = "hcpcs-pipeline/0.1 (+https://github.com/; quarterly HCPCS Level II refresh)"
CHUNK = 64 * 1024
# A record line as CMS writes it (columns 1-11): lets a bare .txt in, keeps HTML and junk out.
_RECORD_LINE = re.compile(rb"(?m)^(?:[A-Z0-9]{5}|   [A-Z0-9]{2})\d{5}[3478]")
_FILENAME = re.compile(r"""(?i)filename\*?=(?:UTF-8'')?["']?([^"';]+)""")

Progress = Callable[[int, int | None], None]


class FetchError(HcpcsError, RuntimeError):
    """A release could not be fetched; the message names the source, the attempts and the cause.

    ``transient`` is true when the server or network kept failing in ways that may pass (timeouts,
    resets, 5xx, 429): worth trying again later, unlike a 404 or a file that is not a release.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(redact_text(message))
        self.transient = transient


class UnreachableError(FetchError):
    """The host does not resolve, or the network has no route to it: the machine is probably
    offline. Not retried; a run that meets it can stop trying the same host."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


# Connection failures that mean "no network here", not "the server is down".
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH}


class _Deadline:
    """The wall-clock limit of one ``http_get``: caps each timeout by the time left, and when it
    passes shuts down every socket the fetch opened (found through httpcore's ``trace``
    extension), which wakes a read blocked in another thread."""

    def __init__(self, seconds: float, clock: Clock) -> None:
        self.clock = clock
        self.at = clock.monotonic() + seconds
        self.passed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def left(self) -> float:
        return self.at - self.clock.monotonic()

    def expired(self) -> bool:
        return self.passed or self.left() <= 0

    def timeout(self, per_step: float) -> httpx.Timeout:
        """``per_step`` for connecting and each read, but never past the deadline."""
        return httpx.Timeout(max(0.01, min(per_step, self.left())))

    def trace(self, event: str, info: dict) -> None:
        """httpcore's trace hook: note each new connection's socket."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                self._sockets.append(sock)
                if self.passed:
                    _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: it must not touch the TLS state.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (httpx -> httpcore -> the socket's ``OSError``)."""
    out = [exc]
    while (cause := out[-1].__cause__ or out[-1].__context__) is not None and cause not in out:
        out.append(cause)
    return out


def _unreachable(exc: httpx.ConnectError) -> str | None:
    """The plain-words cause when a connection failed for want of a network, else None."""
    host = exc.request.url.host  # after a redirect, the host that failed
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host} ({cause.strerror}): no network, or no such host"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return f"network unreachable: no route to host {host} ({cause.strerror})"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _Retry(Exception):
    """A transient failure: try again (after ``retry_after`` seconds when the server said so)."""

    def __init__(self, cause: str, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.retry_after = retry_after


class _Final(Exception):
    """A failure that another attempt cannot fix."""


class _Unreachable(Exception):
    """No network to the host: not retried."""


class _OutOfTime(Exception):
    """The deadline passed during an attempt."""


@dataclass(frozen=True)
class Clock:
    """What ``http_get`` reads the time from and waits with: the system's by default (``SYSTEM``);
    a test passes its own to know every wait without spending it."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic  # the deadline
    now: Callable[[], float] = time.time  # the wall clock a ``Retry-After`` date is read against
    uniform: Callable[[float, float], float] = random.uniform  # the backoff's jitter


SYSTEM = Clock()


@dataclass(frozen=True)
class _Reply:
    status: int
    final_url: str
    etag: str | None
    last_modified: str | None
    filename: str | None  # from Content-Disposition
    sha256: str


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds, or an HTTP date read against
    ``now``, the wall clock); None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _stream(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    sink: BinaryIO,
    *,
    settings: FetchSettings,
    deadline: _Deadline,
    progress: Progress | None,
) -> _Reply:
    """One GET of ``url`` into ``sink`` (rewound first); raises ``_Retry``, ``_Final``,
    ``_Unreachable`` or ``_OutOfTime``."""
    sink.seek(0)
    sink.truncate()
    digest, done, max_bytes = hashlib.sha256(), 0, settings.max_bytes
    try:
        with client.stream(
            "GET",
            url,
            headers=headers,
            timeout=deadline.timeout(settings.timeout),
            extensions={"trace": deadline.trace},
        ) as r:
            if r.status_code == 429 or r.status_code >= 500:
                wait = _retry_after(r.headers.get("retry-after"), deadline.clock.now())
                raise _Retry(f"HTTP {r.status_code} {r.reason_phrase}", wait)
            if r.status_code not in (200, 304):
                raise _Final(f"HTTP {r.status_code} {r.reason_phrase}")
            declared = r.headers.get("content-length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise _Final(f"server announces {total:,} bytes, over the {max_bytes:,}-byte cap")
            for chunk in r.iter_raw():  # as the bytes arrive, however few
                done += len(chunk)
                if done > max_bytes:
                    raise _Final(f"body exceeds the {max_bytes:,}-byte cap")
                if deadline.expired():
                    raise _OutOfTime(f"received {done:,} bytes")
                sink.write(chunk)
                digest.update(chunk)
                if progress:
                    progress(done, total)
            if deadline.expired():  # the timer's shutdown looks like the end of an unsized body
                raise _OutOfTime(f"received {done:,} bytes")
            if r.status_code == 200 and total is not None and done != total:
                raise _Retry(f"truncated body: received {done:,} of {total:,} bytes")
            disposition = _FILENAME.search(r.headers.get("content-disposition", ""))
            return _Reply(
                status=r.status_code,
                final_url=str(r.url),
                etag=r.headers.get("etag"),
                last_modified=r.headers.get("last-modified"),
                filename=unquote(disposition.group(1)) if disposition else None,
                sha256=digest.hexdigest(),
            )
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise _transport_failure(exc, deadline, done) from exc
    except httpx.TooManyRedirects as exc:
        raise _Final(f"too many redirects ({exc})") from exc


def _transport_failure(exc: httpx.RequestError, deadline: _Deadline, done: int) -> Exception:
    """What a network error means: the deadline cut it, no network, or worth another try."""
    if deadline.expired():
        return _OutOfTime(f"received {done:,} bytes")
    if isinstance(exc, httpx.TimeoutException):
        return _Retry(f"timed out ({type(exc).__name__}: {_one_line(exc) or 'no detail'})")
    if isinstance(exc, httpx.ConnectError) and (cause := _unreachable(exc)):
        return _Unreachable(cause)
    return _Retry(f"{type(exc).__name__}: {_one_line(exc) or 'connection failed'}")


def http_get(
    url: str,
    sink: BinaryIO,
    *,
    settings: FetchSettings,
    headers: dict[str, str] | None = None,
    progress: Progress | None = None,
    deadline_at: float | None = None,
    clock: Clock = SYSTEM,
) -> tuple[_Reply, int]:
    """GET ``url`` into ``sink``, retrying within ``settings`` and one deadline,
    ``settings.max_total_seconds`` from now (or ``deadline_at``, a ``clock.monotonic()`` value,
    when several requests share one); (reply, attempts) or ``FetchError``.

    Credentials in ``url`` (or remembered by ``contracts.urls.strip_credentials``) go as HTTP
    basic auth to its origin; errors name the redacted URL.
    """
    url = strip_credentials(url)
    credentials = credentials_for(url)
    max_attempts, limit = settings.max_attempts, settings.max_total_seconds
    seconds = limit if deadline_at is None else deadline_at - clock.monotonic()
    request_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    with (
        _Deadline(seconds, clock) as deadline,
        httpx.Client(
            follow_redirects=True,
            max_redirects=10,
            auth=httpx.BasicAuth(*credentials) if credentials else None,
        ) as client,
    ):
        for attempt in range(1, max_attempts + 1):
            try:
                reply = _stream(
                    client,
                    request_url(url),
                    request_headers,
                    sink,
                    settings=settings,
                    deadline=deadline,
                    progress=progress,
                )
                return reply, attempt
            except _Final as exc:
                raise FetchError(
                    f"{url}: {exc} (attempt {attempt} of {max_attempts}, not retried)"
                ) from None
            except _Unreachable as exc:
                raise UnreachableError(
                    f"{url}: {exc}; check the network connection and the URL "
                    f"(attempt {attempt} of {max_attempts}, not retried)"
                ) from None
            except _OutOfTime as exc:
                raise FetchError(
                    f"{url}: gave up after {attempt} attempt(s): the {limit:g} s time limit "
                    f"passed ({exc})",
                    transient=True,
                ) from None
            except _Retry as exc:
                cause = str(exc)
                if attempt == max_attempts:
                    break
                delay = exc.retry_after
                if delay is None:
                    delay = settings.backoff_base * 2 ** (attempt - 1) * clock.uniform(0.5, 1.0)
                if delay >= deadline.left():
                    raise FetchError(
                        f"{url}: gave up after {attempt} attempt(s): {cause}; waiting "
                        f"{delay:.1f} s more would pass the {limit:g} s limit",
                        transient=True,
                    ) from None
                clock.sleep(delay)
    raise FetchError(
        f"{url}: failed after {max_attempts} attempt(s): last error: {cause}", transient=True
    )


def _copy_local(path: Path, sink: BinaryIO, max_bytes: int, progress: Progress | None) -> str:
    digest, done = hashlib.sha256(), 0
    try:
        total = path.stat().st_size
        if total > max_bytes:
            raise FetchError(
                f"{path}: {total:,} bytes, over the {max_bytes:,}-byte cap (1 attempt, not retried)"
            )
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                done += len(chunk)
                sink.write(chunk)
                digest.update(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise FetchError(
            f"{path}: cannot read ({exc.strerror or exc}) (1 attempt, not retried)"
        ) from exc
    return digest.hexdigest()


def _describe(head: bytes) -> str:
    text = head[:200].decode("latin-1").lower()
    if "<html" in text or "<!doctype" in text:
        return "an HTML page, not a ZIP (the server answered with an error or landing page)"
    return f"not a ZIP archive (starts with {head[:16]!r})"


def inspect_payload(
    path: Path, name: str, where: str, max_member_bytes: int = MAX_MEMBER_BYTES
) -> tuple[str, str]:
    """(data member name, store suffix) of a downloaded file, or ``FetchError`` saying why not.

    A release ZIP is kept as ``.zip``; a bare data file (the ``.txt``, or an ANWEB workbook) is
    kept with the suffix of its format, so the stored copy is parsed the same way.
    """
    kind = file_format(path)  # by content alone: the name a server gives proves nothing
    if kind == ".txt":
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
        if data_format(name) != ".txt":
            raise FetchError(f"{where}: {_describe(head)}")
        if not _RECORD_LINE.search(head):
            raise FetchError(f"{where}: {name} holds no HCPCS record line in its first 64 KiB")
    try:  # the same reading, and the same caps, as every later parse of the stored copy
        member = read_release_file(path, max_member_bytes, name=name, where=where)
    except ArchiveError as exc:
        raise FetchError(str(exc)) from exc
    if kind != ".zip" and data_format(member.name) is None:
        raise FetchError(
            f"{where}: {member.name} is a workbook, but not an ANWEB data file by its name "
            f"(HCPCnnnn_...ANWEB....xlsx or anweb.xlsx; not a transaction report, corrections "
            f"or NOC codes)"
        )
    return member.name, kind


def fetch(
    source: str,
    store: RawStore,
    *,
    release: str | None = None,
    settings: FetchSettings | None = None,
    progress: Progress | None = None,
    clock: Clock = SYSTEM,
) -> ReleaseFile:
    """Download ``source`` into ``store``; the stored file, with ``status`` saying whether it is
    a new, unchanged or re-issued release.

    ``release`` (``YYYY-Qn``) overrides the quarter read from the URL, the server's file name or
    the data member's name. ``settings`` holds the limits (sizes, time, attempts). Credentials
    in ``source`` are used for the download only: the result, the store and errors carry the
    redacted URL (``contracts.urls``). ``clock`` is what the waits between attempts use.
    """
    settings = settings or FetchSettings()
    source = strip_credentials(source)
    quarter = quarter_of(validate_release_id(release)) if release else None
    try:
        path = local_path(source)
    except CatalogError as exc:
        raise FetchError(str(exc)) from None
    with store.incoming() as tmp:
        if path is not None:
            with tmp.open("wb") as sink:
                sha = _copy_local(path, sink, settings.max_bytes, progress)
            names, attempts, reply = [source, path.name], 1, None
        else:
            remembered = store.validators(source)
            headers = {}
            if remembered.get("sha256") and store.find(remembered["sha256"]):
                if "etag" in remembered:
                    headers["If-None-Match"] = remembered["etag"]
                if "last_modified" in remembered:
                    headers["If-Modified-Since"] = remembered["last_modified"]
            with tmp.open("wb") as sink:
                reply, attempts = http_get(
                    source, sink, settings=settings, headers=headers, progress=progress,
                    clock=clock,
                )
            if reply.status == 304:
                stored = store.find(remembered.get("sha256", ""))
                if stored is None:
                    raise FetchError(f"{source}: 304 Not Modified, but the remembered file is gone")
                return _result(stored, store, source, "unchanged", attempts)
            sha = reply.sha256
            names = [source, reply.final_url, reply.filename or ""]
        name = Path(urlsplit(names[-1] or source).path).name
        try:
            member, suffix = inspect_payload(tmp, name, source, settings.max_member_bytes)
        except FetchError as exc:
            refused = f"{exc} (read in {attempts} attempt(s); refused, not retried)"
            raise FetchError(refused) from None
        quarter = (
            quarter
            or next((q for q in (release_from_name(n) for n in [*names, member] if n) if q), None)
            or (release_of_file(path) if path is not None else None)  # its folder: 2020-Q2-april
        )
        if quarter is None:
            raise FetchError(
                f"{source}: cannot tell which quarter this release is from its name or its data "
                f"member {member!r}; pass release='YYYY-Qn'"
            )
        existing = store.find(sha)
        if existing is None:
            reissue = any(z.quarter == quarter and z.sha256 != sha for z in store.list())
            stored = store.add(tmp, quarter, source_url=source, member_name=member, suffix=suffix)
            status: FileStatus = "reissue" if reissue else "new"
        else:
            stored, status = existing, "unchanged"
        if path is not None and suffix != ".zip" and (report := sibling_report(path, quarter)):
            store.keep_report(stored, report, settings.max_member_bytes)
        if reply is not None:
            store.remember(source, sha256=sha, etag=reply.etag, last_modified=reply.last_modified)
        return _result(stored, store, source, status, attempts)


def _result(
    stored: ReleaseFile, store: RawStore, source: str, status: FileStatus, attempts: int
) -> ReleaseFile:
    """The stored file as the store now lists it (its revision id may have been re-derived)."""
    current = next(z for z in store.list() if z.sha256 == stored.sha256)
    return replace(current, source_url=source, status=status, attempts=attempts)
