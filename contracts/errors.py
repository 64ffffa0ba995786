"""One exception base for everything the pipeline raises on purpose, split by what helps.

``TransientError``: the cause may pass (a server down, a timeout, another publisher holding the
lock); the flows retry such a failure later. ``TerminalError``: the same input fails the same way
(a 404, a file that is not a release, a malformed id); retrying wastes time. The flows' retry
policy reads ``HcpcsError.transient`` and nothing else.
"""

from __future__ import annotations


class HcpcsError(Exception):
    """Base of the pipeline's own errors; ``transient`` says whether trying again can help."""

    transient: bool = False


class TerminalError(HcpcsError):
    """Retrying cannot help: the input or the request itself is wrong."""


class TransientError(HcpcsError):
    """Retrying later may help: the cause is outside the input."""

    transient = True
