"""Edge checks on a parsed request, before anything else looks at it (pure, sans-IO).

aiohttp's C parser is strict about framing, but it still accepts a few things a gateway must not
(python-proxy-engineering.md §2.1, §2.7): an absolute-form target (whose authority then wins over
`Host` in `request.host`), `Transfer-Encoding` on HTTP/1.0, and a `Host` with spaces or other
characters no host name has. This module says which rule a request breaks, if any; the caller
answers 400 and closes the connection.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection
from enum import StrEnum
from functools import lru_cache

from multidict import CIMultiDictProxy


class EdgeRejection(StrEnum):
    """Why a request was refused at the edge; also the metric label and the access-log `reason`."""

    NOT_ORIGIN_FORM = "request target is not a path"
    TE_ON_HTTP10 = "transfer-encoding on HTTP/1.0"
    MISSING_HOST = "missing host"
    DUPLICATE_HOST = "duplicate host"
    INVALID_HOST = "invalid host"
    UNKNOWN_HOST = "unknown host"


# reg-name (RFC 3986 unreserved / sub-delims, no percent-encoding), IPv4, or a bracketed IPv6
# literal; then an optional port. Anything else (spaces, '@', '/', '\', controls) is not a host.
_HOST_RE = re.compile(r"(?:[a-z0-9._~!$&'()*+,;=-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.ASCII)
DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=512)  # every request's Host goes through here; bounded, so varied Hosts only evict
def normalise_host(value: str, *, scheme: str) -> str | None:
    """Lower-case `host[:port]` without the scheme's default port; None when it is no valid host."""
    host = value.strip()
    # Check before lower-casing: str.lower() folds some non-ASCII letters into ASCII (U+212A -> "k").
    if not host.isascii():
        return None
    host = host.lower()
    match = _HOST_RE.fullmatch(host)
    if match is None:
        return None
    port = match.group(1)
    if port is not None:
        number = int(port)
        if number > 65535:
            return None
        name = host[: -len(port) - 1]
        if number == DEFAULT_PORTS.get(scheme):
            return name
        return f"{name}:{number}"
    return host


def allowed_host_set(hosts: Collection[str], *, scheme: str) -> frozenset[str]:
    """Normalise the configured hosts once, so each request costs one set lookup."""
    normalised = {normalise_host(host, scheme=scheme) for host in hosts}
    return frozenset(host for host in normalised if host is not None)


def check_edge(
    raw_target: str,
    version: tuple[int, int],
    headers: CIMultiDictProxy[str],
    *,
    allowed_hosts: frozenset[str],
    scheme: str,
) -> EdgeRejection | None:
    """The first edge rule the request breaks, or None when it may go on to canonicalisation.

    `allowed_hosts` come from `allowed_host_set`; `scheme` is the public URL's (for default ports).
    """
    # Origin-form only: absolute-form ("http://evil/x"), authority-form ("host:443") and
    # asterisk-form ("*") have no business at a gateway that is not a forward proxy.
    if not raw_target.startswith("/"):
        return EdgeRejection.NOT_ORIGIN_FORM
    # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
    if version < (1, 1) and "Transfer-Encoding" in headers:
        return EdgeRejection.TE_ON_HTTP10
    hosts = headers.getall("Host", ())
    if not hosts:
        return EdgeRejection.MISSING_HOST
    if len(hosts) > 1:
        return EdgeRejection.DUPLICATE_HOST
    host = normalise_host(hosts[0], scheme=scheme)
    if host is None:
        return EdgeRejection.INVALID_HOST
    if host not in allowed_hosts:
        return EdgeRejection.UNKNOWN_HOST
    return None


# The names of this machine's loopback interface, as they stand in a normalised Host.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_LOOPBACK_HOST_RE = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?", re.ASCII)


def loopback_aliases(public_host: str, *, scheme: str) -> frozenset[str]:
    """When the public URL names a loopback host (a demo on one machine), the other loopback names
    with the same port, normalised: people type `localhost` where the demo printed `127.0.0.1`, and
    the other way round. Empty for any other public host."""
    host = normalise_host(public_host, scheme=scheme)
    match = _LOOPBACK_HOST_RE.fullmatch(host or "")
    if match is None:
        return frozenset()
    port = match.group(2) or ""
    return frozenset(f"{name}{port}" for name in LOOPBACK_NAMES) - {host}


# A request id a trusted proxy may hand us: short, and only characters that are safe in a log
# line and a header value.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)


def valid_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID_RE.fullmatch(value) is not None


def new_request_id() -> str:
    """32 hex digits. Not a secret (answered to the client, logged, shown on error pages): unique is
    what matters, and 128 bits of Python's generator (seeded from the OS, reseeded in a forked child)
    are, without the system call os.urandom makes on every request."""
    return f"{random.getrandbits(128):032x}"
