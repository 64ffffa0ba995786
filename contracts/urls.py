"""URLs as the pipeline shows and stores them: without passwords, tokens or signatures.

A source URL ends up in ``manifest.json``, the ``releases`` table, run reports, the console and
Prefect's database, so everything past the command line carries the *redacted* URL.
``redact_url`` keeps the scheme, host, port and path, and the query parameters that are not
secrets; it drops the userinfo (``user:password@``), the fragment, and every query parameter whose
name looks like a secret (``SECRET_WORDS`` as a word of the name, e.g. ``access_token``,
``api_key``, ``sig``; or an ``X-Amz-`` / ``X-Goog-`` signed-URL parameter).

The download still needs what was dropped: ``strip_credentials(url)`` returns the redacted URL
and remembers, for this process, the userinfo under the URL's origin (scheme, host, port) and the
full query under the redacted URL. ``credentials_for`` and ``request_url`` give them back to the
fetch, which sends the userinfo as HTTP basic auth to that origin only.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote, urlsplit, urlunsplit

#: A query parameter is a secret when one of these is a word of its name (split on ``-_.`` and
#: camelCase), whatever its case.
SECRET_WORDS = frozenset(
    {
        "apikey", "auth", "credential", "credentials", "key", "passwd", "password", "pwd",
        "secret", "session", "sig", "signature", "token",
    }
)  # fmt: skip
_SIGNED_PREFIXES = ("x-amz-", "x-goog-")
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>()\[\]{}]+""")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_lock = threading.Lock()
_userinfo: dict[tuple[str, str, int | None], tuple[str, str]] = {}  # origin -> (user, password)
_full_query: dict[str, str] = {}  # redacted URL -> the query it was redacted from


def _is_secret(name: str) -> bool:
    name = unquote(name)
    words = re.split(r"[-_.]|(?<=[a-z])(?=[A-Z])", name)  # access_token, X-Api-Key, accessToken
    return name.lower().startswith(_SIGNED_PREFIXES) or any(
        word.lower() in SECRET_WORDS for word in words
    )


def redact_url(url: str) -> str:
    """``url`` without userinfo, fragment or secret query parameters; unchanged (the same
    string) when it has none, and for anything that is not a ``scheme://`` URL."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    params = [p for p in parts.query.split("&") if p]
    kept = [p for p in params if not _is_secret(p.partition("=")[0])]
    if "@" not in parts.netloc and not parts.fragment and kept == params:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "&".join(kept), ""))


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it redacted."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def strip_credentials(url: str) -> str:
    """The redacted URL; what was dropped is remembered so the download can still use it."""
    redacted = redact_url(url)
    if redacted == url:
        return url
    parts = urlsplit(url)
    with _lock:
        if parts.username is not None:
            _userinfo[_origin(url)] = (unquote(parts.username), unquote(parts.password or ""))
        if parts.query != urlsplit(redacted).query:
            _full_query[redacted] = parts.query
    return redacted


def credentials_for(url: str) -> tuple[str, str] | None:
    """(user, password) remembered for the origin of ``url``, or None."""
    with _lock:
        return _userinfo.get(_origin(url))


def request_url(url: str) -> str:
    """The URL to request for a redacted ``url``: its secret query parameters back (never the
    userinfo, which goes as HTTP basic auth)."""
    with _lock:
        query = _full_query.get(url)
    if query is None:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def without_password(url: str, mask: str = "") -> str:
    """``url`` with its password replaced by ``mask`` (dropped when empty), the user and the
    rest kept: how a database URL is shown (``user:***@host``) or stored (``user@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    secret = f":{mask}" if mask else ""
    return parts._replace(netloc=f"{parts.username}{secret}@{parts.netloc.rpartition('@')[2]}"
                          ).geturl()
