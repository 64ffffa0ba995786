"""Which Prefect API the command line talks to, and the temporary one ``hcpcs serve`` starts.

``configured_api`` says whether a run is tracked: ``PREFECT_API_URL`` from the environment or from
the active Prefect profile, read without importing Prefect (which costs a second). Without one,
``hcpcs run`` runs locally and starts nothing.

``hcpcs serve`` needs an API for its deployment. Without one configured, Prefect would start its
own temporary server (a uvicorn subprocess) and stop it from an ``atexit`` hook, which a SIGKILL
skips: every killed process left a server behind (a fault campaign found 10 of them, 1.6 GB). So
``ensure_api`` starts the same server itself, asking the kernel to kill it when its parent dies
(Linux ``PR_SET_PDEATHSIG``), in its own session so a Ctrl-C in the terminal reaches the command
first, and points Prefect at it.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from contextlib import closing
from pathlib import Path

from contracts.errors import TransientError

_PR_SET_PDEATHSIG = 1


class ServerError(TransientError, RuntimeError):
    """Prefect's temporary server did not start; the message says why."""


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the parent dies (and at once if it already did)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def start_server(home: Path, timeout: float, *,
                 services: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """Start Prefect's API as Prefect itself would (no UI), tied to this process, its database
    and its log (``server.log``) in ``home``; (process, URL). Without ``services`` it is
    Prefect's ephemeral server: an API only, and no scheduler to create a deployment's runs."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise ServerError("Prefect is not installed in this environment")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    parent = os.getpid()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent),
               "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "error", "--lifespan", "on"]
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "0",
           "PREFECT__SERVER_FINAL": "1"}
    if not services:
        env["PREFECT__SERVER_EPHEMERAL"] = "1"
    log = Path(home) / "server.log"
    env.pop("PREFECT_API_URL", None)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:  # the child keeps its own descriptor
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=lambda: _die_with_parent(parent))
    deadline = time.monotonic() + timeout
    while not _healthy(url):
        if process.poll() is not None:
            detail = log.read_text(errors="replace").strip()[-500:]
            raise ServerError(f"Prefect's server exited with status {process.returncode} "
                              f"(log {log}): {detail or 'no output'}")
        if time.monotonic() > deadline:
            stop_server(process)
            home = os.environ.get("PREFECT_HOME")
            raise ServerError(f"Prefect's server did not answer within {timeout:g} s (log {log}; "
                              f"is the disk full, or PREFECT_HOME={home} not writable?)")
        time.sleep(0.1)
    return process, url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server, then kill it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def configured_api(home: Path) -> str | None:
    """``PREFECT_API_URL`` as Prefect would read it: the environment, else the active profile of
    ``PREFECT_PROFILES_PATH`` (default ``<PREFECT_HOME>/profiles.toml``); None when unset."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or Path(home) / "profiles.toml")
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None  # no profile file (or one Prefect itself would reject): Prefect's defaults
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def ensure_api(home: Path, timeout: float = 180) -> str | None:
    """Point Prefect at a server that dies with this process, started here unless an API is
    configured (``configured_api``) or Prefect is already imported (it read its settings then, so a
    server started now would not be used); returns the URL started, or None. A whole server,
    scheduler included: Prefect's own temporary one has none, so a deployment served against it
    never gets a scheduled run.

    The server lives as long as the process, like Prefect's own: stopped at exit, killed by the
    kernel if the process is killed. Call before Prefect is imported.
    """
    if configured_api(home) or "prefect" in sys.modules:
        return None
    process, url = start_server(Path(home), timeout, services=True)
    os.environ["PREFECT_API_URL"] = url
    atexit.register(stop_server, process)
    return url
