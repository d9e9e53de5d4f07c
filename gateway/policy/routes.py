"""Route classes: which policy applies to a canonical request.

Why: every security decision downstream (session needed? login to observe? logoff? pinned upstream?)
starts from one route class. Matching is by whole path segment and case-insensitive, because IIS
ignores case and because a prefix match would let ``/owa.evil`` or ``/owaX/`` borrow ``/owa``'s
policy. Classification sees only paths that :func:`gateway.policy.paths.canonicalize` accepted, and
never the query string. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache

from gateway.policy.paths import Target

__all__ = ["RouteClass", "classify", "is_background", "reachable_classes", "wants_navigation"]


class RouteClass(StrEnum):
    GATEWAY = "gateway"
    OWA_PUBLIC = "owa-public"
    OWA_LOGIN = "owa-login"
    OWA_LOGOFF = "owa-logoff"
    OWA_APP = "owa-app"
    ACTIVESYNC = "activesync"
    WINDOWS_AUTH = "windows-auth"
    POWERSHELL = "powershell"
    ROOT = "root"
    OTHER = "other"


_READ_METHODS = frozenset({"GET", "HEAD"})
_OWA_APPS = frozenset({"owa", "ecp"})
_WINDOWS_AUTH_APPS = frozenset({"ews", "mapi", "rpc", "oab", "autodiscover"})
_ACTIVESYNC_APP = "microsoft-server-activesync"
# Exchange's Managed Availability probes fetch /<vdir>/healthcheck.htm anonymously.
_HEALTHCHECK_APPS = _OWA_APPS | _WINDOWS_AUTH_APPS | {_ACTIVESYNC_APP}
_HEALTHCHECK_PAGE = "healthcheck.htm"
_LOGIN_PATHS = frozenset({"/owa/auth.owa", "/owa/auth/owaauth.dll"})
_CREDENTIAL_POST_PAGES = frozenset({"auth.owa", "owaauth.dll"})
_LOGOFF_PATHS = frozenset({"/owa/logoff.owa", "/owa/auth/logoff.aspx", "/ecp/logoff.aspx"})


def classify(method: str, target: Target) -> RouteClass:
    """Return the route class of a canonical request (see the design's route table).

    Only POST to a credential endpoint (``/owa/auth.owa``, ``/owa/auth/owaauth.dll``, and any other
    ``/owa`` or ``/ecp`` path whose last segment is ``auth.owa`` or ``owaauth.dll``, as Exchange
    decides) is ``owa-login``; any other method on them is ``owa-app`` (protected), so a GET can
    never log in past the gateway unobserved. ``owa-public`` is
    only GET/HEAD under ``/owa/auth/`` and ``/ecp/auth/``, ``/<vdir>/healthcheck.htm`` and
    ``/favicon.ico``; other methods there fall into the protected class of their app (or ``other``).
    """
    path = target.lower_path
    if len(path) <= _CACHED_PATH_LENGTH:
        return _cached_classify(method, path)
    return _classify(method, path)


# Recent answers, keyed by the method and the canonical lower-case path: the same pair always has the
# same class. Bounded in entries and in key length.
_CACHED_PATH_LENGTH = 256


@lru_cache(maxsize=4096)
def _cached_classify(method: str, path: str) -> RouteClass:
    return _classify(method, path)


def _classify(method: str, path: str) -> RouteClass:
    if path == "/":
        return RouteClass.ROOT
    segments = path[1:].split("/")
    app = segments[0]
    is_read = method.upper() in _READ_METHODS
    if app == "_gateway":
        return RouteClass.GATEWAY
    if is_read and (path == "/favicon.ico" or _is_healthcheck(segments)):
        return RouteClass.OWA_PUBLIC
    if app in _OWA_APPS:
        return _classify_owa(method.upper(), path, segments, is_read)
    if app == _ACTIVESYNC_APP:
        return RouteClass.ACTIVESYNC
    if app in _WINDOWS_AUTH_APPS:
        return RouteClass.WINDOWS_AUTH
    if app == "powershell":
        return RouteClass.POWERSHELL
    return RouteClass.OTHER


def _is_healthcheck(segments: list[str]) -> bool:
    return len(segments) == 2 and segments[0] in _HEALTHCHECK_APPS and segments[1] == _HEALTHCHECK_PAGE


def _classify_owa(method: str, path: str, segments: list[str], is_read: bool) -> RouteClass:
    if path in _LOGOFF_PATHS:
        return RouteClass.OWA_LOGOFF
    if path in _LOGIN_PATHS:
        return RouteClass.OWA_LOGIN if method == "POST" else RouteClass.OWA_APP
    # Exchange's FbaModule signs in any POST whose *last* segment is one of these, anywhere in /owa
    # or /ecp (`/ecp/auth.owa`, `/owa/x/owaauth.dll`): each is a login to observe, never owa-app,
    # whose passed sessions' answers are not searched for a new Exchange session.
    if method == "POST" and segments[-1] in _CREDENTIAL_POST_PAGES:
        return RouteClass.OWA_LOGIN
    # Exchange's anonymous "auth" folder: /owa/auth/<something> and /ecp/auth/<something>.
    if is_read and len(segments) >= 3 and segments[1] == "auth":
        return RouteClass.OWA_PUBLIC
    return RouteClass.OWA_APP


_OWA_CLASSES = frozenset({RouteClass.OWA_PUBLIC, RouteClass.OWA_LOGIN, RouteClass.OWA_LOGOFF, RouteClass.OWA_APP})


def reachable_classes(pattern: str) -> frozenset[RouteClass]:
    """Every class :func:`classify` can give a request, whatever its method, whose canonical path is
    `pattern` or below it by whole segments as a site's rules match them (each segment read
    without its ``;`` parameters): what a rule with this path can apply to. Never ``gateway``
    (rules do not apply to /_gateway/). A superset, never less (tests/policy: property test).

    A segment with parameters is matched by the rule but not recognised by the classification
    (``/ews;x/a`` is ``other``), so ``other`` is reachable below every pattern but ``/``'s own path.
    """
    if pattern == "/":
        return frozenset(RouteClass) - {RouteClass.GATEWAY}
    segments = pattern[1:].split("/")
    app = segments[0]
    classes = {RouteClass.OTHER}
    healthcheck = app in _HEALTHCHECK_APPS and (
        len(segments) == 1 or (len(segments) == 2 and segments[1] == _HEALTHCHECK_PAGE))
    if healthcheck or pattern == "/favicon.ico":
        classes.add(RouteClass.OWA_PUBLIC)
    if app in _OWA_APPS:
        classes |= _OWA_CLASSES
    elif app == _ACTIVESYNC_APP:
        classes.add(RouteClass.ACTIVESYNC)
    elif app in _WINDOWS_AUTH_APPS:
        classes.add(RouteClass.WINDOWS_AUTH)
    elif app == "powershell":
        classes.add(RouteClass.POWERSHELL)
    return frozenset(classes)


# OWA's background traffic: the notification channel (ev.owa2, ev.owa before 2013) and the pings.
_NOTIFICATION_PAGES = frozenset({"ev.owa2", "ev.owa"})
_BACKGROUND_PAGES = _NOTIFICATION_PAGES | {"keepalive.owa", "ping.owa"}


def is_notification_channel(target: Target) -> bool:
    """True for OWA's notification channel, a long poll Exchange holds open for minutes (under `/owa`,
    also below an explicit-logon segment): the shutdown drain ends it at once, OWA reopens it elsewhere."""
    path = target.lower_path
    return path.startswith("/owa/") and path[path.rfind("/") + 1:] in _NOTIFICATION_PAGES


def is_background(target: Target, headers: Mapping[str, str]) -> bool:
    """True for OWA requests that must not count as user activity (idle timeout).

    Exchange's own rule (``Utility.UserActionQueryString``): a request with ``UA=0`` in the query is
    not a user action; OWA puts it on notification polls. The notification channel and the keep-alive
    pings under ``/owa`` (also below an explicit-logon segment) are background whatever their query.
    ``headers`` is accepted for callers' convenience; no header is a reliable marker, so none is used.
    Marking too much as background only shortens sessions, so the rule errs on that side.
    """
    del headers
    path = target.lower_path
    if path.startswith("/owa/") and path[path.rfind("/") + 1:] in _BACKGROUND_PAGES:
        return True
    # On every request of a signed-in browser: skip the split when no parameter can be `UA=0`.
    if "=0" not in target.query:
        return False
    return any(_is_user_action_off(parameter) for parameter in target.query.split("&"))


def _is_user_action_off(parameter: str) -> bool:
    name, separator, value = parameter.partition("=")
    return bool(separator) and name.lower() == "ua" and value == "0"


# Headers that only OWA's scripts (or other XHR clients) send; a top-level navigation never does.
_XHR_MARKERS = ("x-requested-with", "x-owa-actionname", "x-owa-canary", "x-owa-urlpostdata")


def wants_navigation(method: str, headers: Mapping[str, str]) -> bool:
    """True when a failed MFA check should answer with a redirect rather than 440.

    A navigation is a GET/HEAD that carries no XHR marker and either says ``Sec-Fetch-Mode:
    navigate`` or, without Fetch Metadata (old browsers, scripts), does not ask for JSON only.
    Everything else (POST, other verbs, XHR, fetch ``cors``/``no-cors``) gets 440, which OWA's
    scripts turn into a reload.
    """
    if method.upper() not in _READ_METHODS:
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    if any(marker in lowered for marker in _XHR_MARKERS):
        return False
    fetch_mode = lowered.get("sec-fetch-mode")
    if fetch_mode is not None:
        return fetch_mode.strip().lower() == "navigate"
    accept = lowered.get("accept", "").lower()
    return not ("json" in accept and "html" not in accept)


def wants_page(method: str, headers: Mapping[str, str]) -> bool:
    """True when a request without a session should be sent to a sign-in page (a portal site), not
    answered 401: `wants_navigation`, and without Fetch Metadata only a request that asks for HTML.
    A browser's own background requests (its favicon fetch carries no Fetch Metadata) and API clients
    sending `Accept: */*` get the 401; following a redirect to the sign-in page would only hand them
    a form, and a favicon's redirect would mint a sign-in cookie the user never asked for."""
    if not wants_navigation(method, headers):
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    if "sec-fetch-mode" in lowered:
        return True
    return "text/html" in lowered.get("accept", "").lower()
