"""Post-login destinations: only same-origin relative paths may reach a ``Location`` header.

Why: after MFA the browser is sent to the destination it asked for. If that value can name another
origin (``//evil``, ``/\\evil``, ``/%09/evil`` that browsers turn into ``//evil``, ``javascript:``,
userinfo tricks, fullwidth slashes), the gateway becomes an open redirect on the organisation's mail
domain, the classic phishing aid (oauth2-proxy's advisories, python-proxy-engineering §2.4). The rule
is an allow-list of shape, checked on the value and once more on its percent-decoded form, and
anything doubtful falls back to a fixed default. Pure, no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

from gateway.policy.edge import DEFAULT_PORTS

__all__ = ["MAX_DESTINATION_LENGTH", "safe_destination"]

MAX_DESTINATION_LENGTH = 2048

# oauth2-proxy's invalidRedirectRegex: two slashes of either kind with only whitespace or one or two
# dots between them, anywhere in the value.
_SLASH_TRICK = re.compile(r"[/\\](?:[\s\v]*|\.{1,2})[/\\]")


def safe_destination(value: str | None, *, default: str = "/owa/", public_origin: str | None = None) -> str:
    """Return ``value`` if it is a safe same-origin relative destination, else ``default``.

    Accepted: ASCII only, at most ``MAX_DESTINATION_LENGTH`` characters, no whitespace or control
    characters, no backslash, a single leading ``/``, no match of the slash-trick pattern anywhere
    (so ``//``, ``/./`` and ``/../`` sequences fall back to the default even in the query), no scheme
    or authority, no ``@`` in the first path segment; and the same checks (controls and non-ASCII
    included, spaces allowed) pass again after one percent-decoding, which catches ``%2f%2f``,
    ``/%5cevil`` and ``/%09/evil``; ``%25`` (double encoding) is refused outright.

    An absolute ``http(s)`` URL is accepted only when ``public_origin`` is given and the URL's scheme,
    host and port equal it exactly (default ports normalised) and it carries no userinfo; its path,
    query and fragment are then returned, after the same relative checks.
    """
    if not value or len(value) > MAX_DESTINATION_LENGTH:
        return default
    candidate: str | None = value
    if public_origin is not None and not value.startswith("/"):
        candidate = _same_origin_remainder(value, public_origin)
    if candidate is None or not _is_safe_relative(candidate, decoded=False):
        return default
    # Double encoding has no business in a destination; one decode must show the final shape.
    if "%25" in candidate:
        return default
    if not _is_safe_relative(unquote(candidate), decoded=True):
        return default
    return candidate


def _is_safe_relative(value: str, *, decoded: bool) -> bool:
    if not value.isascii() or "\\" in value:
        return False
    # Raw values allow no whitespace at all; a decoded ``%20`` in a folder name is fine.
    lowest_allowed = 0x20 if decoded else 0x21
    if any(ord(char) < lowest_allowed or ord(char) == 0x7F for char in value):
        return False
    if not value.startswith("/") or value.startswith("//") or _SLASH_TRICK.search(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if parts.scheme or parts.netloc:
        return False
    first_segment = parts.path[1:].split("/", 1)[0]
    return "@" not in first_segment


def _same_origin_remainder(value: str, public_origin: str) -> str | None:
    """Path, query and fragment of an absolute URL on exactly the public origin, else None."""
    if not value.isascii() or "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return None
    try:
        parts = urlsplit(value)
        wanted = _origin(urlsplit(public_origin))
        actual = _origin(parts)
    except ValueError:
        return None
    if actual is None or actual != wanted or "@" in parts.netloc:
        return None
    remainder = parts.path or "/"
    if parts.query:
        remainder += "?" + parts.query
    if parts.fragment:
        remainder += "#" + parts.fragment
    return remainder


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
    return scheme, parts.hostname.lower(), port
