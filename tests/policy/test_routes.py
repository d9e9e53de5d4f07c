"""Table tests for route classification, background detection and navigation detection."""

from __future__ import annotations

import pytest

from gateway.policy.paths import canonicalize
from gateway.policy.routes import (
    RouteClass,
    classify,
    is_background,
    is_notification_channel,
    wants_navigation,
    wants_page,
)

G = RouteClass.GATEWAY
PUB = RouteClass.OWA_PUBLIC
LOGIN = RouteClass.OWA_LOGIN
LOGOFF = RouteClass.OWA_LOGOFF
APP = RouteClass.OWA_APP
EAS = RouteClass.ACTIVESYNC
WIN = RouteClass.WINDOWS_AUTH
PS = RouteClass.POWERSHELL
ROOT = RouteClass.ROOT
OTHER = RouteClass.OTHER

CASES: list[tuple[str, str, RouteClass]] = [
    # gateway
    ("GET", "/_gateway/mfa", G),
    ("POST", "/_gateway/mfa/verify", G),
    ("GET", "/_gateway/healthz", G),
    ("GET", "/_GATEWAY/mfa", G),
    ("GET", "/_gatewayx/mfa", OTHER),
    # owa-public: the anonymous auth folders, read methods only
    ("GET", "/owa/auth/logon.aspx?url=https%3a%2f%2fmail%2fowa%2f&reason=0", PUB),
    ("HEAD", "/owa/auth/logon.aspx", PUB),
    ("GET", "/OWA/Auth/LOGON.ASPX", PUB),
    ("GET", "/owa/auth/errorFE.aspx?httpCode=500", PUB),
    ("GET", "/owa/auth/15.2.1118/themes/resources/favicon.ico", PUB),
    ("GET", "/owa/auth/TimeoutLogout.aspx", PUB),
    ("GET", "/owa/auth/", PUB),
    ("GET", "/ecp/auth/logon.aspx", PUB),
    ("GET", "/owa/healthcheck.htm", PUB),
    ("GET", "/ecp/healthcheck.htm", PUB),
    ("GET", "/EWS/HealthCheck.htm", PUB),
    ("GET", "/mapi/healthcheck.htm", PUB),
    ("GET", "/oab/healthcheck.htm", PUB),
    ("GET", "/Autodiscover/healthcheck.htm", PUB),
    ("GET", "/Microsoft-Server-ActiveSync/healthcheck.htm", PUB),
    ("HEAD", "/rpc/healthcheck.htm", PUB),
    ("GET", "/favicon.ico", PUB),
    ("POST", "/owa/auth/logon.aspx", APP),
    ("PUT", "/owa/auth/x.js", APP),
    ("POST", "/owa/healthcheck.htm", APP),
    ("POST", "/ews/healthcheck.htm", WIN),
    ("POST", "/favicon.ico", OTHER),
    ("GET", "/powershell/healthcheck.htm", PS),
    ("GET", "/owa/x/healthcheck.htm", APP),
    ("GET", "/other/healthcheck.htm", OTHER),
    ("GET", "/owa/auth", APP),
    ("GET", "/owa/authx/logon.aspx", APP),
    ("GET", "/owa/auth;x/logon.aspx", APP),
    ("GET", "/owa/alice@corp.example/auth/x", APP),
    # owa-login
    ("POST", "/owa/auth.owa", LOGIN),
    ("POST", "/OWA/AUTH.OWA", LOGIN),
    ("POST", "/owa/auth/owaauth.dll", LOGIN),
    ("post", "/owa/auth/OWAAUTH.DLL", LOGIN),
    ("GET", "/owa/auth.owa", APP),
    ("PUT", "/owa/auth.owa", APP),
    ("GET", "/owa/auth/owaauth.dll", APP),
    # Exchange's FbaModule signs in a POST by its last segment alone, in /owa and /ecp.
    ("POST", "/ecp/auth.owa", LOGIN),
    ("POST", "/owa/x/auth.owa", LOGIN),
    ("POST", "/owa/alice@corp.example/AUTH.OWA", LOGIN),
    ("POST", "/ecp/auth/owaauth.dll", LOGIN),
    ("GET", "/ecp/auth.owa", APP),
    ("POST", "/owa/auth.owa/x", APP),
    ("POST", "/owa/auth.owa;x", APP),
    ("POST", "/ews/auth.owa", WIN),
    # owa-logoff, any method
    ("GET", "/owa/logoff.owa", LOGOFF),
    ("GET", "/owa/logoff.owa?ChgPwd=1", LOGOFF),
    ("POST", "/owa/logoff.owa", LOGOFF),
    ("GET", "/owa/auth/logoff.aspx?Cmd=logoff&src=exch", LOGOFF),
    ("GET", "/OWA/AUTH/LOGOFF.ASPX", LOGOFF),
    ("DELETE", "/ecp/logoff.aspx", LOGOFF),
    ("GET", "/ecp/auth/logoff.aspx", PUB),
    ("GET", "/owa/logoff.owa/x", APP),
    # owa-app: everything else under /owa and /ecp
    ("GET", "/owa", APP),
    ("GET", "/ecp", APP),
    ("GET", "/owa/", APP),
    ("GET", "/OWA/", APP),
    ("POST", "/owa/service.svc?action=GetFolder&EP=1&ID=-1&AC=1", APP),
    ("GET", "/owa/ev.owa2?ns=PendingRequest&UA=0", APP),
    ("POST", "/owa/keepalive.owa", APP),
    ("GET", "/owa/sessiondata.ashx", APP),
    ("GET", "/owa/languageselection.aspx", APP),
    ("GET", "/owa/alice@corp.example/", APP),
    ("GET", "/owa/alice@corp.example/auth/logon.aspx", APP),
    ("GET", "/ecp/?rfr=owa", APP),
    ("PROPFIND", "/owa/x", APP),
    ("GET", "/owa/prem/15.2.1118/scripts/boot.js", APP),
    ("GET", "/owa/?path=/auth/logon.aspx", APP),
    # near misses
    ("GET", "/owa.evil", OTHER),
    ("GET", "/owaX/", OTHER),
    ("GET", "/owa;x/", OTHER),
    ("GET", "/owa%20x/", OTHER),
    ("GET", "/xowa/", OTHER),
    ("GET", "/ecpx", OTHER),
    ("GET", "/ewsx", OTHER),
    ("GET", "/mapix/nspi", OTHER),
    ("GET", "/powershellx", OTHER),
    ("GET", "/Microsoft-Server-ActiveSyncX", OTHER),
    # activesync
    ("POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=x&DeviceId=y&DeviceType=z", EAS),
    ("OPTIONS", "/Microsoft-Server-ActiveSync", EAS),
    ("POST", "/microsoft-server-activesync/default.eas", EAS),
    # windows-auth
    ("POST", "/EWS/Exchange.asmx", WIN),
    ("POST", "/ews/exchange.asmx", WIN),
    ("GET", "/EWS", WIN),
    ("POST", "/mapi/emsmdb/?MailboxId=x", WIN),
    ("RPC_IN_DATA", "/rpc/rpcproxy.dll?mail:6001", WIN),
    ("RPC_OUT_DATA", "/rpc/rpcproxy.dll?mail:6001", WIN),
    ("GET", "/OAB/guid/oab.xml", WIN),
    ("POST", "/Autodiscover/Autodiscover.xml", WIN),
    ("GET", "/autodiscover/autodiscover.json?@evil.example/mapi/nspi", WIN),
    # powershell
    ("POST", "/powershell", PS),
    ("POST", "/PowerShell/?PSVersion=5.1", PS),
    # root
    ("GET", "/", ROOT),
    ("POST", "/", ROOT),
    ("GET", "/?x=1", ROOT),
    # other
    ("GET", "/index.html", OTHER),
    ("GET", "/aspnet_client/x", OTHER),
    ("GET", "/owa2/", OTHER),
]


@pytest.mark.parametrize(("method", "raw", "expected"), CASES)
def test_classify(method: str, raw: str, expected: RouteClass) -> None:
    assert classify(method, canonicalize(raw)) is expected


def test_every_class_is_covered() -> None:
    assert {expected for _, _, expected in CASES} == set(RouteClass)


def test_classification_ignores_the_query() -> None:
    assert classify("GET", canonicalize("/index.html?x=/owa/auth/logon.aspx")) is OTHER
    assert classify("GET", canonicalize("/owa/service.svc?/owa/auth/x")) is APP


def test_encoded_unreserved_letters_classify_like_literal_ones() -> None:
    assert classify("GET", canonicalize("/%6Fwa/%61uth/logon.aspx")) is PUB
    assert classify("POST", canonicalize("/owa/auth%2Eowa")) is LOGIN


def test_route_class_values() -> None:
    assert RouteClass.OWA_PUBLIC == "owa-public"
    assert str(RouteClass.WINDOWS_AUTH) == "windows-auth"


BACKGROUND: list[tuple[str, bool]] = [
    ("/owa/ev.owa2?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid=1", True),
    ("/owa/ev.owa2?ns=PendingRequest&ev=FinishNotificationRequest", True),
    ("/owa/ev.owa?ns=x", True),
    ("/OWA/KeepAlive.owa", True),
    ("/owa/ping.owa", True),
    ("/owa/alice@corp.example/ev.owa2", True),
    ("/owa/service.svc?action=GetFolder&UA=0", True),
    ("/owa/service.svc?ua=0&action=x", True),
    ("/ecp/x.svc?UA=0", True),
    ("/owa/service.svc?action=GetFolder", False),
    ("/owa/service.svc?action=GetFolder&UA=1", False),
    ("/owa/service.svc?action=GetFolder&XUA=0", False),
    ("/owa/service.svc?action=UA=0", False),
    ("/owa/service.svc?UA=00", False),
    ("/owa/service.svc?UA", False),
    ("/owa/", False),
    ("/owa/sessiondata.ashx", False),
    ("/owa/ev.owa2x", False),
    ("/ecp/ev.owa2", False),
]


@pytest.mark.parametrize(("raw", "expected"), BACKGROUND)
def test_is_background(raw: str, expected: bool) -> None:
    assert is_background(canonicalize(raw), {}) is expected


# Held open by Exchange for minutes: the shutdown drain ends these at once (gateway.proxy.drain).
NOTIFICATION_CHANNEL: list[tuple[str, bool]] = [
    ("/owa/ev.owa2?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid=1", True),
    ("/owa/ev.owa2?ns=PendingRequest&ev=FinishNotificationRequest", True),
    ("/OWA/EV.OWA2?ns=PendingRequest", True),
    ("/owa/ev.owa?ns=x", True),
    ("/owa/alice@corp.example/ev.owa2", True),
    ("/owa/%65v.owa2", True),
    ("/owa/x/y/ev.owa2", True),
    ("/owa/keepalive.owa", False),
    ("/owa/ping.owa", False),
    ("/owa/service.svc?action=GetFolder&UA=0", False),
    ("/owa/ev.owa2x", False),
    ("/owa/ev.owa2/x", False),
    ("/ecp/ev.owa2", False),
    ("/ev.owa2", False),
    ("/Microsoft-Server-ActiveSync?Cmd=Ping", False),
]


@pytest.mark.parametrize(("raw", "expected"), NOTIFICATION_CHANNEL)
def test_is_notification_channel(raw: str, expected: bool) -> None:
    target = canonicalize(raw)
    assert is_notification_channel(target) is expected
    assert not expected or is_background(target, {}), "a notification channel is background traffic too"


NAVIGATION: list[tuple[str, dict[str, str], bool]] = [
    ("GET", {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, True),
    ("HEAD", {"sec-fetch-mode": "navigate"}, True),
    ("get", {}, True),
    ("GET", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, True),
    ("GET", {"Accept": "*/*"}, True),
    ("GET", {"Sec-Fetch-Mode": "Navigate"}, True),
    ("GET", {"Sec-Fetch-Mode": "cors"}, False),
    ("GET", {"Sec-Fetch-Mode": "no-cors"}, False),
    ("GET", {"Sec-Fetch-Mode": "same-origin"}, False),
    ("GET", {"Sec-Fetch-Mode": "navigate", "X-Requested-With": "XMLHttpRequest"}, False),
    ("GET", {"X-Requested-With": "XMLHttpRequest"}, False),
    ("GET", {"x-owa-actionname": "GetFolder"}, False),
    ("GET", {"X-OWA-CANARY": "abc."}, False),
    ("GET", {"X-OWA-UrlPostData": "%7B%7D"}, False),
    ("GET", {"Accept": "application/json"}, False),
    ("GET", {"Accept": "application/json, text/html"}, True),
    ("POST", {"Sec-Fetch-Mode": "navigate"}, False),
    ("POST", {}, False),
    ("PUT", {}, False),
    ("OPTIONS", {}, False),
]


@pytest.mark.parametrize(("method", "headers", "expected"), NAVIGATION)
def test_wants_navigation(method: str, headers: dict[str, str], expected: bool) -> None:
    assert wants_navigation(method, headers) is expected


def test_wants_navigation_with_aiohttp_headers() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    headers = CIMultiDictProxy(CIMultiDict([("SEC-FETCH-MODE", "cors")]))
    assert wants_navigation("GET", headers) is False


CHROMIUM_PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                 "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("GET", CHROMIUM_PAGE, True),
    ("HEAD", CHROMIUM_PAGE, True),
    ("GET", {"Sec-Fetch-Mode": "navigate"}, True),
    ("GET", {"Accept": "text/html"}, True),  # no Fetch Metadata: an old browser asking for a page
    ("GET", {"Accept": "TEXT/HTML,*/*"}, True),
    # Chromium's favicon fetch carries no Fetch Metadata: it must not be sent to sign in.
    ("GET", {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}, False),
    ("GET", {"Accept": "*/*"}, False),  # curl, API clients
    ("GET", {}, False),
    ("GET", {"Accept": "application/json"}, False),
    ("GET", {**CHROMIUM_PAGE, "X-Requested-With": "XMLHttpRequest"}, False),
    ("GET", {"Accept": "text/html", "Sec-Fetch-Mode": "no-cors"}, False),
    ("GET", {"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, False),
    ("POST", CHROMIUM_PAGE, False),
    ("DELETE", {"Accept": "text/html"}, False),
])
def test_wants_page(method: str, headers: dict[str, str], expected: bool) -> None:
    assert wants_page(method, headers) is expected
