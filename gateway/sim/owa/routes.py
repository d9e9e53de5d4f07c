"""Which simulator page a path is, with IIS's case-insensitive matching; pure, table-tested.

Explicit logon (`/owa/<smtp>/…`) is peeled off here so every OWA page also works for another
mailbox. The non-browser endpoints (EWS, MAPI, OAB, Autodiscover, ActiveSync, RPC, PowerShell)
resolve to EXCHANGE_CLIENT and are served by `gateway.sim.exchange_clients` (their own
authentication, not FBA); other paths outside /owa and /ecp resolve to NOT_FOUND.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Page(StrEnum):
    ROOT = "root"
    VDIR_NO_SLASH = "vdir-no-slash"
    HEALTHCHECK = "healthcheck"
    FAVICON = "favicon"
    CONTROL = "control"
    # Anonymous pages under /owa/auth/.
    LOGON_PAGE = "logon-page"
    AUTH_RESOURCE = "auth-resource"
    ERROR_FE = "error-fe"
    SIGNED_OUT_PAGE = "signed-out-page"
    EXPIRED_PASSWORD = "expired-password"  # noqa: S105 - a page name, not a password
    AUTH_NOT_FOUND = "auth-not-found"
    # The credential post.
    AUTH_POST = "auth-post"
    # Need a session.
    START_PAGE = "start-page"
    LOGOFF = "logoff"
    SERVICE = "service"
    DOWNLOAD = "download"
    EVENTS = "events"
    KEEPALIVE = "keepalive"
    PING = "ping"
    SESSION_DATA = "session-data"
    LANGUAGE_PAGE = "language-page"
    LANGUAGE_POST = "language-post"
    ECP_PAGE = "ecp-page"
    APP_NOT_FOUND = "app-not-found"
    # Non-browser endpoints: gateway.sim.exchange_clients (IIS authentication, not FBA).
    EXCHANGE_CLIENT = "exchange-client"
    # Not ours.
    NOT_FOUND = "not-found"


ANONYMOUS_PAGES = frozenset({
    Page.ROOT, Page.VDIR_NO_SLASH, Page.HEALTHCHECK, Page.FAVICON, Page.CONTROL, Page.LOGON_PAGE,
    Page.AUTH_RESOURCE, Page.ERROR_FE, Page.SIGNED_OUT_PAGE, Page.EXPIRED_PASSWORD, Page.AUTH_NOT_FOUND, Page.AUTH_POST,
    Page.LOGOFF, Page.NOT_FOUND, Page.EXCHANGE_CLIENT,
})

# Exchange serves healthcheck.htm on every vdir; load balancers probe it.
_HEALTHCHECK_VDIRS = frozenset({
    "owa", "ecp", "mapi", "ews", "oab", "autodiscover", "microsoft-server-activesync", "rpc",
})

EXCHANGE_CLIENT_VDIRS = frozenset({
    "ews", "mapi", "oab", "autodiscover", "microsoft-server-activesync", "rpc", "powershell",
})

_OWA_PAGES: dict[str, Page] = {
    "": Page.START_PAGE,
    "default.aspx": Page.START_PAGE,
    "logoff.owa": Page.LOGOFF,
    "service.svc": Page.SERVICE,
    "service.svc/s/getfileattachment": Page.DOWNLOAD,
    "attachment.ashx": Page.DOWNLOAD,
    "ev.owa2": Page.EVENTS,
    "keepalive.owa": Page.KEEPALIVE,
    "ping.owa": Page.PING,
    "sessiondata.ashx": Page.SESSION_DATA,
    "languageselection.aspx": Page.LANGUAGE_PAGE,
    "lang.owa": Page.LANGUAGE_POST,
}

_CREDENTIAL_POST_SEGMENTS = frozenset({"auth.owa", "owaauth.dll"})

_RESOURCE = re.compile(r"^\d+\.\d+\.\d+(?:\.\d+)?/themes/resources/([a-z0-9._-]+)$")


@dataclass(frozen=True, slots=True)
class Resolved:
    page: Page
    vdir: str = ""                 # "owa", "ecp" or "" (lower case)
    mailbox: str | None = None     # explicit logon: the <smtp> segment
    resource: str | None = None    # AUTH_RESOURCE: the file name

    @property
    def anonymous(self) -> bool:
        return self.page in ANONYMOUS_PAGES


def resolve(path: str) -> Resolved:
    """Classify a decoded request path (no query)."""
    lower = path.lower()
    if lower == "/":
        return Resolved(Page.ROOT)
    if lower == "/favicon.ico":
        return Resolved(Page.FAVICON)
    if lower.startswith("/_sim/"):
        return Resolved(Page.CONTROL)
    segments = lower.split("/")
    vdir = segments[1]
    if len(segments) == 2 and vdir in ("owa", "ecp"):
        return Resolved(Page.VDIR_NO_SLASH, vdir)
    rest = "/".join(segments[2:])
    if vdir in _HEALTHCHECK_VDIRS and rest == "healthcheck.htm":
        return Resolved(Page.HEALTHCHECK, vdir)
    if vdir in ("owa", "ecp") and segments[-1] in _CREDENTIAL_POST_SEGMENTS:
        # FbaModule.HandleFbaAuthFormPost compares only the *last* segment (Url.Segments[^1]), in
        # either vdir: /ecp/auth.owa and /owa/x/owaauth.dll sign in just like /owa/auth.owa.
        return Resolved(Page.AUTH_POST, vdir)
    if vdir == "owa":
        return _resolve_owa(rest, path)
    if vdir == "ecp":
        return _resolve_ecp(rest)
    if vdir in EXCHANGE_CLIENT_VDIRS:
        return Resolved(Page.EXCHANGE_CLIENT, vdir)
    return Resolved(Page.NOT_FOUND)


def _resolve_owa(rest: str, original_path: str) -> Resolved:
    if rest in ("auth.owa", "auth/owaauth.dll"):
        return Resolved(Page.AUTH_POST, "owa")
    if rest == "favicon.ico":
        return Resolved(Page.FAVICON, "owa")
    if rest.startswith("auth/"):
        return _resolve_auth_folder(rest[len("auth/"):])
    mailbox: str | None = None
    first, _, remainder = rest.partition("/")
    if "@" in first:
        # Keep the mailbox as typed (from the original path), the rest is matched in lower case.
        mailbox = original_path.split("/")[2]
        rest = remainder
    page = _OWA_PAGES.get(rest, Page.APP_NOT_FOUND)
    return Resolved(page, "owa", mailbox)


def _resolve_auth_folder(name: str) -> Resolved:
    if name == "logon.aspx":
        return Resolved(Page.LOGON_PAGE, "owa")
    if name == "errorfe.aspx":
        return Resolved(Page.ERROR_FE, "owa")
    if name == "logoff.aspx":
        return Resolved(Page.SIGNED_OUT_PAGE, "owa")
    if name == "expiredpassword.aspx":
        return Resolved(Page.EXPIRED_PASSWORD, "owa")
    match = _RESOURCE.match(name)
    if match:
        return Resolved(Page.AUTH_RESOURCE, "owa", resource=match.group(1))
    return Resolved(Page.AUTH_NOT_FOUND, "owa")


def _resolve_ecp(rest: str) -> Resolved:
    if rest == "logoff.aspx":
        return Resolved(Page.LOGOFF, "ecp")
    if rest.startswith("auth/"):
        return Resolved(Page.AUTH_NOT_FOUND, "ecp")
    if rest in ("", "default.aspx"):
        return Resolved(Page.ECP_PAGE, "ecp")
    return Resolved(Page.APP_NOT_FOUND, "ecp")
