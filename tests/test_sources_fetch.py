"""fetch() against a real HTTP server on 127.0.0.1 that injects faults, and against real CMS ZIPs.

The server is a raw socket server so it can misbehave the way networks do: reset the connection
mid-body, close early, stall past the client timeout. Every failing case also checks that the raw
store is byte-for-byte what it was before (nothing half-written, no temp file left behind). The
waits between attempts are measured on a clock the test controls (``FakeClock``): each wait is
recorded exactly, and none is spent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import socketserver
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path

import pytest

from contracts.settings import FetchSettings
from contracts.urls import redact_text, redact_url
from sources.fetch import Clock, FetchError, fetch
from sources.rawstore import RawStore

RECORD = (
    b"A0021" + b"00100" + b"3" + b"Ambulance service, outside state per mile, transport"
).ljust(320) + b"\r\n"


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


GOOD = make_zip({"HCPC2024_JAN_ANWEB.txt": RECORD * 50, "proc_notes_JAN2024.txt": b"notes"})
GOOD_V2 = make_zip({"HCPC2024_JAN_ANWEB_v2.txt": RECORD * 51})


Action = Callable[[socket.socket, dict], None]


def respond(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Action:
    def act(conn: socket.socket, request: dict) -> None:
        head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in head.items()), "", ""]
        conn.sendall("\r\n".join(lines).encode() + body)

    return act


def partial(body: bytes, *, reset: bool) -> Action:
    """Announce the whole body, send half, then close (FIN) or reset (RST) the connection."""

    def act(conn: socket.socket, request: dict) -> None:
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return act


def stall(seconds: float) -> Action:
    def act(conn: socket.socket, request: dict) -> None:
        time.sleep(seconds)

    return act


class FaultServer(socketserver.ThreadingTCPServer):
    """Serves scripted actions per path; the last action of a path repeats. Records requests."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.routes: dict[str, list[Action]] = {}
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def hits(self, path: str) -> int:
        return sum(r["path"] == path for r in self.requests)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        request = {"path": path, "headers": headers}
        server: FaultServer = self.server  # type: ignore[assignment]
        server.requests.append(request)
        script = server.routes.get(path) or [respond("404 Not Found", b"no such file")]
        action = script.pop(0) if len(script) > 1 else script[0]
        action(self.request, request)


@contextmanager
def running_server() -> Iterator[FaultServer]:
    """A ``FaultServer`` serving on a thread for the duration of the block."""
    srv = FaultServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()



def tree(root: Path) -> dict[str, str]:
    """Every file under root (temp files included) -> sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FAST = FetchSettings(timeout=2.0, max_attempts=3, backoff_base=0.01, max_total_seconds=20)
ZIP_PATH = "/files/zip/january-2024-alpha-numeric-hcpcs-file.zip"


@pytest.fixture
def seeded(server: FaultServer, store: RawStore) -> dict[str, str]:
    """A store that already holds one release; returns its tree for unchanged-store checks."""
    server.routes["/seed/july-2023-alpha-numeric-hcpcs-file.zip"] = [
        respond("200 OK", make_zip({"HCPC2023_JUL_ANWEB.txt": RECORD}))
    ]
    result = fetch(server.url("/seed/july-2023-alpha-numeric-hcpcs-file.zip"), store, settings=FAST)
    assert (result.release_id, result.status) == ("2023-Q3", "new")
    return tree(store.root)


def test_clean_download_is_stored_by_sha_with_provenance(server, store) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD)]
    seen: list[tuple[int, int | None]] = []
    result = fetch(
        server.url(ZIP_PATH), store, progress=lambda d, t: seen.append((d, t)), settings=FAST
    )
    sha = hashlib.sha256(GOOD).hexdigest()
    assert (result.release_id, result.quarter, result.status, result.attempts) == (
        "2024-Q1", "2024-Q1", "new", 1
    )  # fmt: skip
    assert result.sha256 == sha
    assert result.path == store.root / "2024-Q1" / f"{sha}.zip"
    assert result.path.read_bytes() == GOOD
    assert result.member_name == "HCPC2024_JAN_ANWEB.txt"
    assert seen[-1] == (len(GOOD), len(GOOD))
    sidecar = json.loads((store.root / "2024-Q1" / f"{sha}.json").read_text())
    assert sidecar["source_url"] == server.url(ZIP_PATH)
    assert sidecar["member_name"] == "HCPC2024_JAN_ANWEB.txt"
    assert sidecar["size"] == len(GOOD)
    assert list((store.root / ".tmp").iterdir()) == []


def test_refetch_of_same_bytes_is_a_noop(server, store) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD)]
    fetch(server.url(ZIP_PATH), store, settings=FAST)
    before = tree(store.root)
    again = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert again.status == "unchanged"
    assert again.release_id == "2024-Q1"
    assert tree(store.root) == before


def test_new_bytes_for_a_known_quarter_are_a_reissue_kept_beside_the_first(server, store) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD_V2), respond("200 OK", GOOD)]
    first = fetch(server.url(ZIP_PATH), store, settings=FAST)  # the _v2 member arrives first...
    second = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert (first.status, second.status) == ("new", "reissue")
    # ...but revisions are ordered by the member's _vN rank, so the v1 file is 2024-Q1.
    assert second.release_id == "2024-Q1"
    ids = {z.sha256: z.release_id for z in store.list()}
    assert ids == {
        hashlib.sha256(GOOD).hexdigest(): "2024-Q1",
        hashlib.sha256(GOOD_V2).hexdigest(): "2024-Q1r2",
    }
    assert len(list((store.root / "2024-Q1").glob("*.zip"))) == 2


def test_500_then_success_is_retried(server, store) -> None:
    server.routes[ZIP_PATH] = [
        respond("500 Internal Server Error", b"oops"),
        respond("200 OK", GOOD),
    ]
    result = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert (result.status, result.attempts) == ("new", 2)
    assert server.hits(ZIP_PATH) == 2


@pytest.mark.parametrize("reset", [True, False], ids=["connection-reset", "truncated-body"])
def test_broken_body_then_success_is_retried(server, store, reset: bool) -> None:
    server.routes[ZIP_PATH] = [partial(GOOD, reset=reset), respond("200 OK", GOOD)]
    result = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert (result.status, result.attempts) == ("new", 2)
    assert result.path.read_bytes() == GOOD


@pytest.mark.parametrize("reset", [True, False], ids=["connection-reset", "truncated-body"])
def test_body_broken_every_time_fails_cleanly(server, store, seeded, reset: bool) -> None:
    server.routes[ZIP_PATH] = [partial(GOOD, reset=reset)]
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=FAST)
    message = str(err.value)
    assert message.startswith(server.url(ZIP_PATH))
    assert "after 3 attempt(s)" in message
    cut = f"without sending complete message body (received {len(GOOD) // 2} bytes, expected"
    assert cut in message or (reset and "Connection reset by peer" in message)
    assert server.hits(ZIP_PATH) == 3
    assert tree(store.root) == seeded


def test_slow_server_past_the_timeout(server, store, seeded) -> None:
    server.routes[ZIP_PATH] = [stall(1.5)]
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=replace(FAST, timeout=0.2, max_attempts=2))
    assert "after 2 attempt(s)" in str(err.value)
    assert "timed out (ReadTimeout" in str(err.value)
    assert err.value.transient  # worth another try later (the refresh flow's task retry)
    assert tree(store.root) == seeded


def test_404_is_not_retried(server, store, seeded) -> None:
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert str(err.value) == (
        f"{server.url(ZIP_PATH)}: HTTP 404 Not Found (attempt 1 of 3, not retried)"
    )
    assert not err.value.transient
    assert server.hits(ZIP_PATH) == 1
    assert tree(store.root) == seeded


def test_redirect_is_followed_and_the_requested_url_recorded(server, store) -> None:
    server.routes["/latest"] = [respond("302 Found", headers={"Location": ZIP_PATH})]
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD)]
    result = fetch(server.url("/latest"), store, settings=FAST)
    assert result.release_id == "2024-Q1"  # from the redirect target's name
    assert result.source_url == server.url("/latest")


def test_html_page_served_as_200_is_refused(server, store, seeded) -> None:
    page = b"<!DOCTYPE html><html><body>Access denied</body></html>"
    server.routes[ZIP_PATH] = [respond("200 OK", page, {"Content-Type": "text/html"})]
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert str(err.value) == (
        f"{server.url(ZIP_PATH)}: an HTML page, not a ZIP (the server answered with an error or "
        "landing page) (read in 1 attempt(s); refused, not retried)"
    )
    assert tree(store.root) == seeded


def encrypted(data: bytes) -> bytes:
    """Flag the only member of a ZIP as encrypted (zipfile cannot encrypt): in its local header,
    the first, and its central directory entry, the last (a member that is itself a ZIP, like a
    workbook, has headers of its own in between)."""
    raw = bytearray(data)
    raw[raw.find(b"PK\x03\x04") + 6] |= 0x1
    raw[raw.rfind(b"PK\x01\x02") + 8] |= 0x1
    return bytes(raw)


def _corrupt(data: bytes) -> bytes:
    raw = bytearray(data)
    at = raw.find(b"HCPC2024_JAN_ANWEB.txt") + len("HCPC2024_JAN_ANWEB.txt") + 10
    raw[at] ^= 0xFF  # inside the compressed data of the first member
    return bytes(raw)


def _lying_size(data: bytes) -> bytes:
    """Declare 1,000 uncompressed bytes for a 1.3 MB member (a bomb that lies about its size)."""
    raw = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        raw[at + offset : at + offset + 4] = (1000).to_bytes(4, "little")
    return bytes(raw)


BAD_ZIPS = {
    "no-data-member": (
        make_zip({"README.txt": b"hello", "NOC_Codes_2024.txt": b"x"}),
        "no HCPCS data file (HCPCnnnn_...ANWEB....txt, or its .xlsx/.xls workbook)",
    ),
    "path-traversal": (
        make_zip({"../../../tmp/HCPC2024_JAN_ANWEB.txt": RECORD}),
        "unsafe member name '../../../tmp/HCPC2024_JAN_ANWEB.txt'",
    ),
    "encrypted": (
        encrypted(make_zip({"HCPC2024_JAN_ANWEB.txt": RECORD})),
        "member HCPC2024_JAN_ANWEB.txt is encrypted",
    ),
    "corrupt": (_corrupt(make_zip({"HCPC2024_JAN_ANWEB.txt": RECORD * 50})), "is corrupt"),
    "lying-size-member": (
        _lying_size(make_zip({"HCPC2024_JAN_ANWEB.txt": RECORD * 4000})),
        "member HCPC2024_JAN_ANWEB.txt is corrupt (Bad CRC-32",
    ),
    "oversized-member": (
        make_zip({"HCPC2024_JAN_ANWEB.txt": RECORD * 4000}),  # 1.3 MB, deflates to ~3 KB
        "declares 1,288,000 bytes, over the 1,000,000-byte cap",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ZIPS))
def test_unsafe_or_unusable_zip_is_refused(server, store, seeded, tmp_path, case: str) -> None:
    body, expected = BAD_ZIPS[case]
    server.routes[ZIP_PATH] = [respond("200 OK", body)]
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=replace(FAST, max_member_bytes=1_000_000))
    assert str(err.value).startswith(server.url(ZIP_PATH))
    assert expected in str(err.value)
    assert str(err.value).endswith("(read in 1 attempt(s); refused, not retried)")
    assert server.hits(ZIP_PATH) == 1
    assert tree(store.root) == seeded
    assert not Path("/tmp/HCPC2024_JAN_ANWEB.txt").exists()


def test_body_over_the_size_cap_is_refused(server, store, seeded) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD)]
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=replace(FAST, max_bytes=100))
    assert f"server announces {len(GOOD):,} bytes, over the 100-byte cap" in str(err.value)
    assert tree(store.root) == seeded


# --- the waits between attempts, measured on a clock the test controls ----------------------

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC: the fake clock's start, wall and monotonic alike
DEFAULTS = FetchSettings()  # what production runs with: base 1 s, 5 attempts, 60 s limit


@dataclass
class FakeClock:
    """Time that passes only when the fetch waits: every wait recorded, none spent. ``jitter``
    says where the backoff's random factor falls in the range it is drawn from (0: the low end,
    1: the high end)."""

    jitter: float = 1.0
    at: float = NOW
    waits: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.at += seconds

    def clock(self) -> Clock:
        return Clock(sleep=self.sleep, monotonic=lambda: self.at, now=lambda: self.at,
                     uniform=lambda low, high: low + self.jitter * (high - low))


def test_429_honours_retry_after(server, store) -> None:
    server.routes[ZIP_PATH] = [
        respond("429 Too Many Requests", headers={"Retry-After": "7"}),
        respond("200 OK", GOOD),
    ]
    clock = FakeClock()
    result = fetch(server.url(ZIP_PATH), store, settings=DEFAULTS, clock=clock.clock())
    assert clock.waits == [7.0]  # the server's 7 s, not the backoff's 1 s
    assert (result.status, result.attempts, server.hits(ZIP_PATH)) == ("new", 2, 2)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        (formatdate(NOW + 42, usegmt=True), 42.0),  # an HTTP date: the seconds until then
        (formatdate(NOW - 3600, usegmt=True), 0.0),  # a date already past: at once
        ("soon", 1.0),  # unreadable: the backoff's first wait
    ],
    ids=["http-date", "date-past", "unreadable"],
)
def test_retry_after_as_an_http_date_or_unreadable(server, store, retry_after: str,
                                                    wait: float) -> None:
    server.routes[ZIP_PATH] = [
        respond("503 Service Unavailable", headers={"Retry-After": retry_after}),
        respond("200 OK", GOOD),
    ]
    clock = FakeClock()
    result = fetch(server.url(ZIP_PATH), store, settings=DEFAULTS, clock=clock.clock())
    assert clock.waits == [wait]
    assert (result.attempts, server.hits(ZIP_PATH)) == (2, 2)


@pytest.mark.parametrize(
    ("base", "jitter", "waits"),
    [
        (1.0, 1.0, [1.0, 2.0, 4.0, 8.0]),  # the defaults, jitter at its high end: base * 2**n
        (1.0, 0.0, [0.5, 1.0, 2.0, 4.0]),  # jitter at its low end: half that
        (0.25, 1.0, [0.25, 0.5, 1.0, 2.0]),  # HCPCS_FETCH_BACKOFF_BASE=0.25
    ],
)
def test_503_without_retry_after_backs_off_exponentially(
    server, store, seeded, base: float, jitter: float, waits: list[float]
) -> None:
    server.routes[ZIP_PATH] = [respond("503 Service Unavailable")]
    clock = FakeClock(jitter=jitter)
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=replace(DEFAULTS, backoff_base=base),
              clock=clock.clock())
    assert clock.waits == waits  # one wait between each two of the 5 attempts
    assert str(err.value) == (f"{server.url(ZIP_PATH)}: failed after 5 attempt(s): last error: "
                              "HTTP 503 Service Unavailable")
    assert err.value.transient
    assert server.hits(ZIP_PATH) == 5
    assert tree(store.root) == seeded


@pytest.mark.parametrize(
    ("answer", "waits", "cause"),
    [  # a 10 s limit, 10 attempts: the first wait that would reach the limit is not started
        (respond("503 Service Unavailable"), [1.0, 2.0, 4.0],
         "503 Service Unavailable; waiting 8.0"),  # 7 s waited, 3 s left
        (respond("429 Too Many Requests", headers={"Retry-After": "7"}), [7.0],
         "429 Too Many Requests; waiting 7.0"),
        (respond("503 Service Unavailable", headers={"Retry-After": "120"}), [],
         "503 Service Unavailable; waiting 120.0"),
    ],
    ids=["backoff", "retry-after-twice", "retry-after-over-the-limit"],
)
def test_a_wait_past_the_time_limit_is_not_started(
    server, store, seeded, answer: Action, waits: list[float], cause: str
) -> None:
    server.routes[ZIP_PATH] = [answer]
    clock = FakeClock()
    limited = replace(DEFAULTS, max_total_seconds=10, max_attempts=10)
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=limited, clock=clock.clock())
    assert clock.waits == waits
    attempts = len(waits) + 1
    assert str(err.value) == (f"{server.url(ZIP_PATH)}: gave up after {attempts} attempt(s): "
                              f"HTTP {cause} s more would pass the 10 s limit")
    assert err.value.transient
    assert server.hits(ZIP_PATH) == attempts
    assert tree(store.root) == seeded


#: Final answers, each with a Retry-After that must not be honoured: no wait, one request.
FINAL = {
    "404": (respond("404 Not Found", b"no such file", {"Retry-After": "7"}),
            "HTTP 404 Not Found (attempt 1 of 5, not retried)"),
    "403": (respond("403 Forbidden", b"go away", {"Retry-After": "7"}),
            "HTTP 403 Forbidden (attempt 1 of 5, not retried)"),
    "html-body": (respond("200 OK", b"<!DOCTYPE html><html>Access denied</html>",
                          {"Retry-After": "7"}),
                  "an HTML page, not a ZIP (the server answered with an error or landing page) "
                  "(read in 1 attempt(s); refused, not retried)"),
    "corrupt-zip": (respond("200 OK", BAD_ZIPS["corrupt"][0], {"Retry-After": "7"}),
                    "member HCPC2024_JAN_ANWEB.txt is corrupt"),
    "over-the-size-cap": (respond("200 OK", GOOD + GOOD, {"Retry-After": "7"}),
                          f"server announces {2 * len(GOOD):,} bytes, over the "
                          f"{len(GOOD):,}-byte cap (attempt 1 of 5, not retried)"),
}


@pytest.mark.parametrize("case", list(FINAL))
def test_a_final_answer_is_neither_waited_on_nor_retried(server, store, seeded,
                                                         case: str) -> None:
    action, expected = FINAL[case]
    server.routes[ZIP_PATH] = [action, respond("200 OK", GOOD)]  # a retry would succeed
    clock = FakeClock()
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=replace(DEFAULTS, max_bytes=len(GOOD)),
              clock=clock.clock())
    assert str(err.value).startswith(f"{server.url(ZIP_PATH)}: ")
    assert expected in str(err.value)
    assert not err.value.transient
    assert clock.waits == []
    assert server.hits(ZIP_PATH) == 1
    assert tree(store.root) == seeded


def test_bare_txt_over_the_member_cap_is_refused(store, tmp_path) -> None:
    path = tmp_path / "HCPC2024_JAN_ANWEB.txt"
    path.write_bytes(RECORD * 50)
    with pytest.raises(FetchError, match=r"ANWEB\.txt: 16,100 bytes, over the 1,000-byte cap \("):
        fetch(str(path), store, settings=replace(FAST, max_member_bytes=1_000))
    assert store.list() == []


def test_conditional_request_and_304(server, store) -> None:
    etag, modified = '"v1-abc"', "Mon, 01 Jan 2024 00:00:00 GMT"
    server.routes[ZIP_PATH] = [
        respond("200 OK", GOOD, {"ETag": etag, "Last-Modified": modified}),
        respond("304 Not Modified"),
    ]
    first = fetch(server.url(ZIP_PATH), store, settings=FAST)
    before = tree(store.root)
    second = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert "if-none-match" not in server.requests[0]["headers"]
    assert server.requests[1]["headers"]["if-none-match"] == etag
    assert server.requests[1]["headers"]["if-modified-since"] == modified
    assert (second.status, second.sha256, second.release_id) == (
        "unchanged",
        first.sha256,
        "2024-Q1",
    )
    assert tree(store.root) == before


def test_name_without_a_quarter_needs_an_explicit_release(server, store, seeded) -> None:
    server.routes["/download"] = [respond("200 OK", make_zip({"HCPC2024_FINAL_ANWEB.txt": RECORD}))]
    with pytest.raises(FetchError, match="cannot tell which quarter"):
        fetch(server.url("/download"), store, settings=FAST)
    assert tree(store.root) == seeded
    result = fetch(server.url("/download"), store, release="2024-Q2", settings=FAST)
    assert result.release_id == "2024-Q2"


def test_quarter_from_the_data_member_when_the_url_has_none(server, store) -> None:
    server.routes["/download"] = [respond("200 OK", GOOD)]
    assert fetch(server.url("/download"), store, settings=FAST).release_id == "2024-Q1"


USER, PASSWORD = "reader", "s3cr3t-pw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def require_auth(action: Action) -> Action:
    """``action`` for a request with USER:PASSWORD as basic auth, else 401."""
    refuse = respond("401 Unauthorized", b"who are you?", {"WWW-Authenticate": 'Basic realm="r"'})

    def act(conn: socket.socket, request: dict) -> None:
        (action if request["headers"].get("authorization") == BASIC else refuse)(conn, request)

    return act


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


def files_holding(root: Path, *secrets: str) -> list[Path]:
    return [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)
    ]


def test_credentials_in_the_url_are_sent_but_never_stored(server, store, tmp_path) -> None:
    server.routes[ZIP_PATH] = [require_auth(respond("200 OK", GOOD, {"ETag": '"v1"'}))]
    result = fetch(with_credentials(server.url(ZIP_PATH)), store, settings=FAST)
    assert (result.status, result.source_url) == ("new", server.url(ZIP_PATH))
    assert server.requests[0]["headers"]["authorization"] == BASIC
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar["source_url"] == server.url(ZIP_PATH)
    assert list(json.loads((store.root / "http.json").read_text())) == [server.url(ZIP_PATH)]
    # the redacted URL (as a catalog or a report holds it) still downloads in this process
    again = fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert (again.status, server.requests[1]["headers"]["authorization"]) == ("unchanged", BASIC)
    assert files_holding(tmp_path, PASSWORD) == []


def test_errors_never_show_the_credentials(server, store) -> None:
    with pytest.raises(FetchError) as err:
        fetch(with_credentials(server.url("/missing.zip")), store, settings=FAST)
    assert str(err.value) == (
        f"{server.url('/missing.zip')}: HTTP 404 Not Found (attempt 1 of 3, not retried)"
    )
    assert server.requests[0]["headers"]["authorization"] == BASIC


def test_credentials_follow_a_redirect_on_their_origin_only(server, store) -> None:
    elsewhere = server.url(ZIP_PATH).replace("127.0.0.1", "localhost")  # another origin
    server.routes["/latest"] = [respond("302 Found", headers={"Location": ZIP_PATH})]
    server.routes["/mirror"] = [respond("302 Found", headers={"Location": elsewhere})]
    server.routes[ZIP_PATH] = [require_auth(respond("200 OK", GOOD))]
    assert fetch(with_credentials(server.url("/latest")), store, settings=FAST).status == "new"
    with pytest.raises(FetchError, match=r"/mirror: HTTP 401 Unauthorized \(attempt 1 of 3"):
        fetch(with_credentials(server.url("/mirror")), store, settings=FAST)
    sent = [(r["path"], r["headers"].get("authorization")) for r in server.requests]
    assert sent == [("/latest", BASIC), (ZIP_PATH, BASIC), ("/mirror", BASIC), (ZIP_PATH, None)]


def test_signed_query_parameters_are_sent_but_never_stored(server, store, tmp_path) -> None:
    signed = f"{ZIP_PATH}?download=1&X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=5ig4a7ure"
    server.routes[signed] = [respond("200 OK", GOOD)]
    result = fetch(server.url(signed), store, settings=FAST)
    assert result.source_url == server.url(f"{ZIP_PATH}?download=1")
    assert server.requests[0]["path"] == signed
    assert files_holding(tmp_path, "AKIDEXAMPLE", "5ig4a7ure") == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p%40ss@www.cms.gov:8443/a.zip", "https://www.cms.gov:8443/a.zip"),
        ("https://www.cms.gov/a.ZIP?download=1&v=2", "https://www.cms.gov/a.ZIP?download=1&v=2"),
        (
            "https://b.s3.amazonaws.com/a.zip?X-Amz-Algorithm=AWS4&X-Amz-Signature=ff&versionId=3",
            "https://b.s3.amazonaws.com/a.zip?versionId=3",
        ),
        (
            "https://h/a.zip?access_token=t&api_key=k&accessToken=k&sig=s&Password=p&page=2#t=x",
            "https://h/a.zip?page=2",
        ),
        ("/data/releases/a.zip", "/data/releases/a.zip"),
        ("file:///data/releases/a.zip", "file:///data/releases/a.zip"),
    ],
)
def test_redact_url_keeps_scheme_host_port_path_and_plain_parameters(url, shown) -> None:
    assert redact_url(url) == shown


def test_redact_text_redacts_every_url_in_a_message() -> None:
    text = "GET 'https://u:pw@h/x.zip?token=abc' failed (see https://h/doc?page=2)"
    assert redact_text(text) == "GET 'https://h/x.zip' failed (see https://h/doc?page=2)"
    error = FetchError(f"https://u:pw@h/x.zip: {text}")
    assert str(error) == f"https://h/x.zip: {redact_text(text)}"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("rel", "quarter", "member"),
    [
        ("2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", "2017-Q1", "HCPC17_CONTR_ANWEB.txt"),
        ("2019-annual/2019-Alpha-Numeric-HCPCS-File.zip", "2019-Q1", "HCPC2019_CONTR_ANWEB.txt"),
    ],
)
def test_real_cms_zips_by_path_file_url_and_http(
    cms_dir: Path, server, store, rel: str, quarter: str, member: str
) -> None:
    zip_path = cms_dir / rel
    by_path = fetch(str(zip_path), store)
    assert (by_path.release_id, by_path.member_name, by_path.status) == (quarter, member, "new")
    assert by_path.sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    by_url = fetch(zip_path.as_uri(), store)
    assert (by_url.release_id, by_url.status, by_url.path) == (quarter, "unchanged", by_path.path)
    server.routes[f"/Downloads/{zip_path.name}"] = [respond("200 OK", zip_path.read_bytes())]
    by_http = fetch(server.url(f"/Downloads/{zip_path.name}"), store, settings=FAST)
    assert (by_http.release_id, by_http.status, by_http.sha256) == (
        quarter,
        "unchanged",
        by_path.sha256,
    )
    assert [z.release_id for z in store.list()] == [quarter]


@pytest.mark.realdata
def test_real_2016_bare_txt_is_kept_as_txt(cms_dir: Path, store) -> None:
    result = fetch(str(cms_dir / "2016-annual/HCPC2016_CONTR_ANWEB.txt"), store)
    assert (result.release_id, result.member_name) == ("2016-Q1", "HCPC2016_CONTR_ANWEB.txt")
    assert result.path.suffix == ".txt"
    with pytest.raises(FetchError, match="not a ZIP archive"):
        fetch(str(cms_dir / "2016-annual/HCPC2016_README.txt"), store)
