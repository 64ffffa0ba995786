"""The time limits of fetching one URL hold whatever the server or the network does.

A real raw-socket server on 127.0.0.1 drips bytes, stalls before or inside the body, fails with
500, resets or 429 on every attempt; each fetch must give up within ``max_total_seconds`` (plus
a second of slack for thread scheduling), say why, and leave the raw store empty. Without a
network (a host under ``.invalid``, RFC 2606, never resolves; an address with no route) the fetch
fails at once with a plain message, well within 30 s.
"""

from __future__ import annotations

import errno
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from contracts.settings import FetchSettings
from sources.discover import discover
from sources.fetch import FetchError, UnreachableError, fetch
from tests.test_sources_fetch import (
    GOOD,
    ZIP_PATH,
    Action,
    respond,
    stall,
    tree,
)

#: Generous per-step timeout, short total: only the deadline can end these fetches in time.
LIMITED = FetchSettings(timeout=5, max_total_seconds=2, max_attempts=100, backoff_base=0.2)
SLACK = 1.0
OFFLINE_HOST = "hcpcs-pipeline-test.invalid"


def drip(*, sized: bool, seconds: float = 8) -> Action:
    """The head (with a Content-Length of 1 MB, or none), then one byte every 50 ms for
    ``seconds`` at most, then close."""

    def act(conn: socket.socket, request: dict) -> None:
        length = "Content-Length: 1000000\r\n" if sized else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n".encode())
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                conn.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            return  # the client hung up

    return act


def stall_in_body(seconds: float = 8) -> Action:
    """Announce the whole body, send half, then send nothing more for ``seconds``."""

    def act(conn: socket.socket, request: dict) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(GOOD)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + GOOD[: len(GOOD) // 2])
        time.sleep(seconds)

    return act


def drip_then_stall(conn: socket.socket, request: dict) -> None:
    """Drip bytes for 1.5 s (the reads go on), then stall inside a read."""
    drip(sized=True, seconds=1.5)(conn, request)
    time.sleep(8)


def reset(conn: socket.socket, request: dict) -> None:
    """Reset the connection before answering."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def delayed(seconds: float, action: Action) -> Action:
    def act(conn: socket.socket, request: dict) -> None:
        time.sleep(seconds)
        action(conn, request)

    return act


CUT_OFF = r"gave up after 1 attempt\(s\): the 2 s time limit passed \(received [\d,]+ bytes\)"
# A retried fault ends before the wait that would pass the limit, or, when an attempt itself is
# slow (a loaded machine), inside that attempt: either way within the one 2 s budget.
WAIT_PAST = (r"gave up after \d+ attempt\(s\): (?:.+; waiting [\d.]+ s more would pass the 2 s "
             r"limit|the 2 s time limit passed \(received 0 bytes\))")
FAULTS: dict[str, tuple[Action, str]] = {
    "drip": (drip(sized=True), CUT_OFF),
    "drip-without-length": (drip(sized=False), CUT_OFF),
    "stall-before-headers": (stall(8), CUT_OFF),
    "stall-in-body": (stall_in_body(), CUT_OFF),
    "drip-then-stall": (drip_then_stall, CUT_OFF),
    "500-always": (respond("500 Internal Server Error", b"oops"), WAIT_PAST),
    "reset-always": (reset, WAIT_PAST),
    "429-always": (respond("429 Too Many Requests", headers={"Retry-After": "1"}), WAIT_PAST),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_misbehaving_server_costs_the_time_limit_at_most(server, store, fault: str) -> None:
    action, expected = FAULTS[fault]
    server.routes[ZIP_PATH] = [action]
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url(ZIP_PATH), store, settings=LIMITED)
    elapsed = time.monotonic() - started
    assert elapsed < LIMITED.max_total_seconds + SLACK
    assert re.fullmatch(f"{re.escape(server.url(ZIP_PATH))}: {expected}", str(err.value))
    assert err.value.transient
    assert tree(store.root) == {}  # nothing stored, no download left in .tmp


def in_parts(parts: int) -> Action:
    """Send GOOD in ``parts`` pieces, 100 ms apart."""

    def act(conn: socket.socket, request: dict) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(GOOD)}\r\n\r\n".encode())
        step = -(-len(GOOD) // parts)
        for at in range(0, len(GOOD), step):
            time.sleep(0.1)
            conn.sendall(GOOD[at : at + step])

    return act


def test_the_body_is_read_as_it_arrives(server, store) -> None:
    server.routes[ZIP_PATH] = [in_parts(4)]
    seen: list[int] = []
    fetch(server.url(ZIP_PATH), store, settings=LIMITED, progress=lambda done, _: seen.append(done))
    assert seen == [4092, 8184, 12276, len(GOOD)]  # not once per 64 KiB: a drip is seen too


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose connections are never accepted: its queue is full, so a connect hangs."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = [socket.socket() for _ in range(4)]
    for sock in queued:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
    yield port
    for sock in [*queued, listener]:
        sock.close()


def test_a_connection_that_hangs_costs_the_time_limit_at_most(store, unanswered_port) -> None:
    url = f"http://127.0.0.1:{unanswered_port}{ZIP_PATH}"
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(url, store, settings=LIMITED)
    assert time.monotonic() - started < LIMITED.max_total_seconds + SLACK
    assert re.fullmatch(f"{re.escape(url)}: {CUT_OFF}", str(err.value))


def test_a_failing_source_costs_a_minute_at_most_by_default() -> None:
    defaults = FetchSettings()
    assert defaults.max_total_seconds == 60
    assert defaults.timeout <= defaults.max_total_seconds


def test_a_host_that_does_not_resolve_fails_at_once(store) -> None:
    url = f"http://{OFFLINE_HOST}{ZIP_PATH}"
    started = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        fetch(url, store)  # the default limits
    assert time.monotonic() - started < 30
    assert re.fullmatch(
        rf"{re.escape(url)}: cannot resolve host {re.escape(OFFLINE_HOST)} \([^()]+\): no network, "
        r"or no such host; check the network connection and the URL \(attempt 1 of 5, not "
        r"retried\)",
        str(err.value),
    )
    assert err.value.transient
    assert tree(store.root) == {}


def _no_route_to(address: str) -> str:
    """The system's words for "no route" to ``address``, or skip where it has a route."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 sockets on this machine")
    probe.settimeout(5)
    try:
        probe.connect((address, 9))
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return exc.strerror
    finally:
        probe.close()
    pytest.skip(f"this machine routes {address}: cannot show an unreachable network")


def test_an_address_without_a_route_fails_at_once(store) -> None:
    reason = _no_route_to("100::1")  # RFC 6666 discard-only prefix
    url = f"http://[100::1]:9{ZIP_PATH}"
    started = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        fetch(url, store)
    assert time.monotonic() - started < 30
    assert str(err.value) == (
        f"{url}: network unreachable: no route to host 100::1 ({reason}); check the network "
        "connection and the URL (attempt 1 of 5, not retried)"
    )


def test_discovery_without_a_network_fails_at_once() -> None:
    url = f"https://{OFFLINE_HOST}/medicare/coding-billing/quarterly-update"
    started = time.monotonic()
    with pytest.raises(UnreachableError, match=rf"^{re.escape(url)}: cannot resolve host "):
        discover(url)
    assert time.monotonic() - started < 30


def test_discovery_pages_share_one_deadline(server) -> None:
    items = [f"/alpha-numeric-hcpcs-items/{year}-alpha-numeric-hcpcs-file" for year in (1, 2, 3)]
    links = "".join(f'<a href="{item}">item</a>' for item in items)
    server.routes["/quarterly-update"] = [respond("200 OK", links.encode())]
    for item in items:  # each page alone is quick; the three together pass the 2 s limit
        server.routes[item] = [delayed(0.8, respond("200 OK", b"<html>no links</html>"))]
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        discover(server.url("/quarterly-update"), settings=replace(LIMITED, timeout=1.5))
    assert time.monotonic() - started < LIMITED.max_total_seconds + SLACK
    page = re.escape(server.url("/alpha-numeric-hcpcs-items/")) + r"\d-alpha-numeric-hcpcs-file"
    assert re.fullmatch(f"{page}: {CUT_OFF}", str(err.value))
