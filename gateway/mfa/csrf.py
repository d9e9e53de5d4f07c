"""CSRF defences for the MFA forms (sans-IO): a token bound to the session, plus Origin / Fetch Metadata.

A push or a code check is triggered only by a POST that carries the session's token
(synchronizer token pattern) and that the browser says comes from the gateway's own pages:
`Origin`, when present, must be the public origin; `Sec-Fetch-Site`, when present, must be
`same-origin` or `none` (python-proxy-engineering §2.6). A client that sends neither header (a
script) still needs the token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Set
from urllib.parse import urlsplit

from multidict import MultiMapping

from gateway.policy.edge import DEFAULT_PORTS

CSRF_TOKEN_BYTES = 32
_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(CSRF_TOKEN_BYTES)


def token_matches(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    if not expected or submitted is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), submitted.encode("utf-8", "surrogateescape"))


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-cased, without the scheme's default port; None if not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def cross_site_problem(headers: Mapping[str, str], public_origin: str | Set[str]) -> str | None:
    """Why this POST does not look like it came from the gateway's own page, or None.

    `public_origin` is `origin_of(GATEWAY_PUBLIC_URL)`, or the set of origins the page may be served
    from (`site_origins`). Returns a short reason for the audit log.
    """
    origin = headers.get("Origin")
    allowed = {public_origin} if isinstance(public_origin, str) else public_origin
    if origin is not None and origin_of(origin) not in allowed:
        return "foreign_origin"  # includes `Origin: null` (sandboxed frames, data: URLs)
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in _ALLOWED_FETCH_SITES:
        return "cross_site_fetch"
    return None


def started_elsewhere(headers: MultiMapping[str], origin: str) -> bool:
    """Whether a GET says another site started it (a link or a redirect from elsewhere), so that
    what it would change must be confirmed on the gateway's own page first (sign-out CSRF).

    Fetch Metadata decides when the browser sends it: one `Sec-Fetch-Site` of `same-origin` or
    `none` (typed, a bookmark) is the site's own; `cross-site`, `same-site` (a sibling subdomain is
    another site here, however trusted), an unknown value, an empty one or several headers are
    not. Without it (an older browser, a script), a `Referer` of another origin is elsewhere; no
    header at all is the caller's own doing, as with any plain GET."""
    fetch_sites = headers.getall("Sec-Fetch-Site", [])
    if fetch_sites:
        return len(fetch_sites) != 1 or fetch_sites[0].strip().lower() not in _ALLOWED_FETCH_SITES
    referers = headers.getall("Referer", [])
    if referers:
        return len(referers) != 1 or origin_of(referers[0]) != origin
    return False


def site_origins(scheme: str, hosts: Set[str]) -> frozenset[str]:
    """The origins of a site's pages: `scheme` with each of its hosts (`allowed_host_set`'s
    normalised `host[:port]`, the scheme's default port already dropped)."""
    return frozenset(f"{scheme}://{host}" for host in hosts)
