"""The gateway's session cookie, and the cookies a request must lose before it goes upstream (sans-IO).

The cookie value is the store's opaque ticket; nothing else about the session ever reaches the
browser. With an https public URL the name carries the `__Host-` prefix, so the browser accepts it
only with `Secure`, `Path=/` and no `Domain`: a sibling subdomain can neither plant nor shadow it
(cookie tossing, python-proxy-engineering §2.5). Over plain http (demos, tests) the prefix is not
allowed, and the name is `msgw`.

A site of a session group (the configuration's `session_groups`) shares one sign-in with the group's
other hosts, so its cookie is set with `Domain=<cookie_domain>` and has a name of its own:
`__Secure-msgw-group-<group>` over https (`__Host-` forbids `Domain`), `msgw-group-<group>` over
http. A host may receive both a host-only cookie and a group's, so the names never collide (and
`-group-` keeps a group called `signin` or `device` off the gateway's other cookies). What it costs:
any host under the cookie domain can set or shadow a cookie for the whole domain, so every host
under it must be trusted (docs/security.md, "Session groups").

Cookie names are stripped case-insensitively: ASP.NET reads `Cookie` names that way, so a client
that sends `x-beresource` must lose it just like `X-BEResource`. Exchange's routing hints are
stripped by name prefix, so their variants (`X-AnonResource-Backend`, a future `X-BackEndCookie2`)
go with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from multidict import CIMultiDict

from gateway.mfa.device_cookie import PLAIN_DEVICE_COOKIE_NAME, SECURE_DEVICE_COOKIE_NAME
from gateway.policy.cookies import RequestCookies

SECURE_COOKIE_NAME = "__Host-msgw"
PLAIN_COOKIE_NAME = "msgw"
# A session group's cookie is named with one of these and the group's name.
SECURE_GROUP_COOKIE_PREFIX = "__Secure-msgw-group-"
PLAIN_GROUP_COOKIE_PREFIX = "msgw-group-"
# Both spellings are the gateway's, whichever one is in use: neither is Exchange's business. The
# familiar-device cookie (gateway.mfa.device_cookie) is the gateway's too.
GATEWAY_COOKIE_NAMES = frozenset({SECURE_COOKIE_NAME.lower(), PLAIN_COOKIE_NAME.lower(),
                                  SECURE_DEVICE_COOKIE_NAME.lower(), PLAIN_DEVICE_COOKIE_NAME.lower()})
# Any other cookie of the gateway's (a sign-in page's, say) is named with one of these lower-cased
# prefixes, so it is stripped wherever the gateway's cookies are, without a list to keep in step. A
# session group's cookie (`__Secure-msgw-...`, `msgw-...`) is one of them: its `Domain` sends it to
# every host under the group's cookie domain, Exchange's and a passthrough site's among them.
GATEWAY_COOKIE_PREFIXES = (PLAIN_COOKIE_NAME.lower() + "-", SECURE_COOKIE_NAME.lower() + "-",
                           "__secure-" + PLAIN_COOKIE_NAME.lower() + "-")
# Exchange's CAFE routing hints, as lower-cased name prefixes: ProxyLogon (CVE-2021-26855) chose the
# back end with X-BEResource, or with X-AnonResource=true and X-AnonResource-Backend (the two cookies
# Microsoft's mitigation filters); X-BackEndCookie (`<user SID>=<back end>`) picks the mailbox server
# the front end proxies to. Only a client with a complete session may send them to Exchange
# (exchange-owa-protocol §1.5): Exchange set them for that session.
ROUTING_HINT_PREFIXES = ("x-beresource", "x-anonresource", "x-backendcookie")
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """Name and attributes of the gateway's cookie for one public URL (and one session group).

    `group` and `domain`: the session group's name and cookie domain (both None: a host-only cookie)."""

    secure: bool
    group: str | None = None
    domain: str | None = None

    def __post_init__(self) -> None:
        if (self.group is None) != (self.domain is None):
            raise ValueError("a session group's cookie needs both its group and its domain")

    @property
    def name(self) -> str:
        if self.group is not None:
            return (SECURE_GROUP_COOKIE_PREFIX if self.secure else PLAIN_GROUP_COOKIE_PREFIX) + self.group
        return SECURE_COOKIE_NAME if self.secure else PLAIN_COOKIE_NAME

    def _attributes(self) -> str:
        # No Max-Age: a browser-session cookie. The store's idle and absolute timeouts decide how
        # long the session lives; the cookie never outlives the browser. A group's cookie names
        # its Domain, and is expired with the same one (a browser keeps one cookie per domain).
        domain = f"; Domain={self.domain}" if self.domain is not None else ""
        secure = "; Secure" if self.secure else ""
        return f"; Path=/{domain}{secure}; HttpOnly; SameSite=Lax"

    def set_header(self, value: str) -> str:
        """The `Set-Cookie` value that hands the browser a session (`value` is the store's ticket)."""
        return f"{self.name}={value}{self._attributes()}"

    def expire_header(self) -> str:
        """The `Set-Cookie` value that makes the browser forget the cookie."""
        return f"{self.name}=; Max-Age=0; Expires={_EXPIRED}{self._attributes()}"

    def read(self, cookie_headers: Sequence[str] | RequestCookies) -> str | None:
        """The cookie's value in the request's `Cookie` header(s), or None.

        None also when the name appears with two different values: which one is the real session
        cannot be told, and a planted duplicate must never be the one that wins. Only a pair whose
        name is a token is read (`gateway.policy.cookies`), as only those go anywhere.
        """
        cookies = cookie_headers if isinstance(cookie_headers, RequestCookies) else RequestCookies(cookie_headers)
        return cookies.agreed_value(self.name, exact=True) or None


def is_gateway_cookie(name: str) -> bool:
    """Whether a cookie called `name` (any case) is the gateway's: never sent upstream, never set by one."""
    lower = name.lower()
    return lower in GATEWAY_COOKIE_NAMES or lower.startswith(GATEWAY_COOKIE_PREFIXES)


def strip_request_cookies(headers: CIMultiDict[str], lower_names: frozenset[str],
                          cookies: RequestCookies | None = None, *, prefixes: tuple[str, ...] = ()) -> None:
    """Remove the cookies called `lower_names`, or whose name starts with one of `prefixes` (both
    compared lower-cased), from the `Cookie` headers, in place.

    What is left goes upstream as one `Cookie` header (none when nothing is left), rebuilt from the
    pairs in their order and bytes. A piece that is not an RFC 6265 cookie-pair
    (`gateway.policy.cookies`) is dropped too, so Exchange reads no cookie the binding check did not.
    One header, because the gateway reads several as one list of pairs, and how a server joins
    repeated headers (`,` is one way, and ASP.NET's cookie parser does not split on it) is nothing
    to rely on: Exchange must see the very cookies the binding check saw.

    `cookies`: the request's cookies already split (`request_cookies`), when `headers` is a copy of
    that request's headers; they are used only if `headers` still carries a `Cookie` header.
    """
    values = headers.popall("Cookie", [])
    if not values:
        return
    kept = (cookies or RequestCookies(values)).forwarded(lower_names, prefixes)
    if kept is not None:
        headers.add("Cookie", kept)


def hint_prefixes_to_strip(*, session_passed: bool) -> tuple[str, ...]:
    """The name prefixes the upstream must not see (besides `GATEWAY_COOKIE_NAMES`, always stripped):
    the gateway's prefixed cookies (a session group's reaches Exchange's host too), and Exchange's
    routing hints from a client without a passed session."""
    return GATEWAY_COOKIE_PREFIXES if session_passed else GATEWAY_COOKIE_PREFIXES + ROUTING_HINT_PREFIXES
