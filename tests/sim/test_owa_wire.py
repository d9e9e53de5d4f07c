"""The OWA simulator's pure rules, table-tested: URL encoding, redirects, cookies, paths, users, sessions."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.sim.owa.config import UsersFileError, demo_users, load_users_file
from gateway.sim.owa.content import BLOCK_SIZE, attachment_chunks, attachment_sha256
from gateway.sim.owa.routes import Page, resolve
from gateway.sim.owa.sessions import (
    SessionTable,
    Verdict,
    session_timeout,
    ttl_due_for_reissue,
    ttl_lifetime,
)
from gateway.sim.owa.users import UserDirectory
from gateway.sim.owa.wire import (
    destination_problem,
    dotnet_url_encode,
    expired_cookie,
    is_oeh_request,
    is_user_activity,
    logon_redirect,
    object_moved_body,
    origin,
    original_url_for_logon,
    parse_cookie_header,
    parse_flags,
    rescheme,
    set_cookie,
    ua_supports_samesite_none,
)


@pytest.mark.parametrize(("text", "encoded"), [
    ("https://mail.contoso.com/owa/", "https%3a%2f%2fmail.contoso.com%2fowa%2f"),
    ("a b", "a+b"),
    ("-_.!*()", "-_.!*()"),
    ("~'", "%7e%27"),
    ("ü", "%c3%bc"),
    ("/owa/?ae=Item&t=IPM.Note", "%2fowa%2f%3fae%3dItem%26t%3dIPM.Note"),
])
def test_dotnet_url_encode(text: str, encoded: str) -> None:
    assert dotnet_url_encode(text) == encoded


@pytest.mark.parametrize(("scheme", "host", "expected"), [
    ("https", "mail.contoso.com", "https://mail.contoso.com"),
    ("https", "mail.contoso.com:443", "https://mail.contoso.com"),
    ("https", "mail.contoso.com:80", "https://mail.contoso.com"),   # Exchange maps 80 to 443
    ("https", "mail.contoso.com:8443", "https://mail.contoso.com:8443"),
    ("http", "127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http", "127.0.0.1:80", "http://127.0.0.1"),
    ("https", "[::1]:8443", "https://[::1]:8443"),
])
def test_origin(scheme: str, host: str, expected: str) -> None:
    assert origin(scheme, host) == expected


def test_logon_redirect_first_hop() -> None:
    original = original_url_for_logon(scheme="https", host="mail.contoso.com", target="/owa/")
    assert logon_redirect(scheme="https", host="mail.contoso.com", original_url=original, reason=0) == (
        "https://mail.contoso.com/owa/auth/logon.aspx?url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0"
    )


@pytest.mark.parametrize(("target", "explicit", "expected"), [
    ("/owa/", None, "https://h/owa/"),
    ("/ecp/", None, "https://h/ecp/"),
    ("/owa/auth.owa", None, "https://h/owa/"),
    ("/OWA/AUTH.OWA", None, "https://h/OWA/"),
    ("/owa/?path=/mail", None, "https://h/owa/?path=/mail"),
    ("/owa/service.svc", "bob@corp.example", "https://h/owa/bob@corp.example/service.svc"),
])
def test_original_url_for_logon(target: str, explicit: str | None, expected: str) -> None:
    assert original_url_for_logon(scheme="https", host="h", target=target, explicit_logon_user=explicit) == expected


@pytest.mark.parametrize(("destination", "host", "match", "problem"), [
    ("https://mail.corp.example/owa/", "mail.corp.example", True, None),
    ("https://MAIL.corp.example/owa/", "mail.corp.example:8443", True, None),   # case and port ignored
    ("http://mail.corp.example/owa/", "mail.corp.example", True, None),
    ("https://evil.example/owa/", "mail.corp.example", True, "destination host does not match the request host"),
    ("https://evil.example/owa/", "mail.corp.example", False, None),
    ("/owa/", "mail.corp.example", True, "destination value is not valid"),
    ("", "mail.corp.example", True, "destination value is not valid"),
    ("javascript:alert(1)", "mail.corp.example", True, "destination value is not valid"),
])
def test_destination_problem(destination: str, host: str, match: bool, problem: str | None) -> None:
    assert destination_problem(destination, host, require_host_match=match) == problem


@pytest.mark.parametrize(("value", "flags"), [("4", 4), ("0", 0), (" 5 ", 5), ("x", 0), ("", 0)])
def test_parse_flags(value: str, flags: int) -> None:
    assert parse_flags(value) == flags


def test_rescheme_keeps_path_and_query() -> None:
    assert rescheme("http://h/owa/?a=1", "https") == "https://h/owa/?a=1"
    assert rescheme("http://h:80/owa/", "https") == "https://h/owa/"


def test_parse_cookie_header_survives_owa_client_cookies() -> None:
    header = r"PBack=0; logondata=acc=1&lgn=CORP\alice; cadata=ab+/cd==; cadataTTL=x; cadata=second"
    assert parse_cookie_header([header]) == {
        "PBack": "0", "logondata": r"acc=1&lgn=CORP\alice", "cadata": "ab+/cd==", "cadataTTL": "x",
    }
    assert parse_cookie_header(["a=1", "b=2"]) == {"a": "1", "b": "2"}
    assert parse_cookie_header(["junk; =x; c=3"]) == {"c": "3"}


@pytest.mark.parametrize(("samesite", "secure", "httponly", "expected"), [
    (True, True, True, "cadata=V; path=/;SameSite=None; secure; HttpOnly"),
    (True, False, True, "cadata=V; path=/;SameSite=None; HttpOnly"),
    (False, True, True, "cadata=V; path=/; secure; HttpOnly"),
    (False, False, False, "cadata=V; path=/"),
])
def test_set_cookie_shapes(samesite: bool, secure: bool, httponly: bool, expected: str) -> None:
    assert set_cookie("cadata", "V", samesite_none=samesite, secure=secure, httponly=httponly) == expected


def test_expired_cookie_is_thirty_years_back() -> None:
    now = datetime(2026, 11, 29, 13, 51, 23, tzinfo=UTC)
    assert expired_cookie("cadataTTL", now) == "cadataTTL=; expires=Fri, 29-Nov-1996 13:51:23 GMT; path=/"


@pytest.mark.parametrize(("agent", "supported"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", True),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/63.0.3239.132 Safari/537.36", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Safari",
     False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0 Safari", True),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", True),
    ("", True),
])
def test_samesite_none_capable_browsers(agent: str, supported: bool) -> None:
    assert ua_supports_samesite_none(agent) is supported


@pytest.mark.parametrize(("query", "activity"), [
    ("", True), ("UA=0", False), ("ns=PendingRequest&ua=0", False), ("UA=1", True), ("action=GetItem", True),
])
def test_user_activity(query: str, activity: bool) -> None:
    assert is_user_activity(query) is activity


def test_oeh_request() -> None:
    assert is_oeh_request("oeh=1&ns=x")
    assert is_oeh_request("OEH=1&ns=x")
    assert not is_oeh_request("ns=x&oeh=1&")


def test_object_moved_body_escapes_location() -> None:
    assert '<a href="/x?a=1&amp;b=&quot;2&quot;">here</a>' in object_moved_body('/x?a=1&b="2"')


@pytest.mark.parametrize(("path", "page", "mailbox"), [
    ("/", Page.ROOT, None),
    ("/owa", Page.VDIR_NO_SLASH, None),
    ("/ECP", Page.VDIR_NO_SLASH, None),
    ("/owa/", Page.START_PAGE, None),
    ("/OWA/", Page.START_PAGE, None),
    ("/owa/auth/logon.aspx", Page.LOGON_PAGE, None),
    ("/OWA/Auth/Logon.ASPX", Page.LOGON_PAGE, None),
    ("/owa/auth.owa", Page.AUTH_POST, None),
    ("/owa/auth/owaauth.dll", Page.AUTH_POST, None),
    # FbaModule looks at the last segment only, in /owa and /ecp alike.
    ("/ecp/auth.owa", Page.AUTH_POST, None),
    ("/owa/x/auth.owa", Page.AUTH_POST, None),
    ("/OWA/auth/x/OWAAUTH.DLL", Page.AUTH_POST, None),
    ("/owa/auth.owa/x", Page.APP_NOT_FOUND, None),
    ("/owa/auth/15.1.2507/themes/resources/favicon.ico", Page.AUTH_RESOURCE, None),
    ("/owa/auth/errorFE.aspx", Page.ERROR_FE, None),
    ("/owa/auth/logoff.aspx", Page.SIGNED_OUT_PAGE, None),
    ("/owa/auth/ExpiredPassword.aspx", Page.EXPIRED_PASSWORD, None),
    ("/owa/auth/anything.aspx", Page.AUTH_NOT_FOUND, None),
    ("/owa/logoff.owa", Page.LOGOFF, None),
    ("/ecp/logoff.aspx", Page.LOGOFF, None),
    ("/owa/service.svc", Page.SERVICE, None),
    ("/owa/service.svc/s/GetFileAttachment", Page.DOWNLOAD, None),
    ("/owa/ev.owa2", Page.EVENTS, None),
    ("/owa/keepalive.owa", Page.KEEPALIVE, None),
    ("/owa/sessiondata.ashx", Page.SESSION_DATA, None),
    ("/owa/Carol@Corp.Example/", Page.START_PAGE, "Carol@Corp.Example"),
    ("/owa/carol@corp.example/service.svc", Page.SERVICE, "carol@corp.example"),
    ("/owa/healthcheck.htm", Page.HEALTHCHECK, None),
    ("/mapi/healthcheck.htm", Page.HEALTHCHECK, None),
    ("/ecp/", Page.ECP_PAGE, None),
    ("/ecp/auth/x", Page.AUTH_NOT_FOUND, None),
    ("/ecp/whatever.aspx", Page.APP_NOT_FOUND, None),
    ("/owa/nope", Page.APP_NOT_FOUND, None),
    ("/favicon.ico", Page.FAVICON, None),
    ("/EWS/Exchange.asmx", Page.EXCHANGE_CLIENT, None),
    ("/Microsoft-Server-ActiveSync", Page.EXCHANGE_CLIENT, None),
    ("/rpc/rpcproxy.dll", Page.EXCHANGE_CLIENT, None),
    ("/ewsx/Exchange.asmx", Page.NOT_FOUND, None),
    ("//owa/", Page.NOT_FOUND, None),
])
def test_resolve(path: str, page: Page, mailbox: str | None) -> None:
    resolved = resolve(path)
    assert (resolved.page, resolved.mailbox) == (page, mailbox)


def test_anonymous_pages_are_only_the_public_ones() -> None:
    assert resolve("/owa/auth/logon.aspx").anonymous
    assert resolve("/owa/logoff.owa").anonymous        # logoff always works
    for protected in ("/owa/", "/owa/service.svc", "/owa/ev.owa2", "/ecp/", "/owa/nope", "/owa/bob@x/"):
        assert not resolve(protected).anonymous, protected


@pytest.mark.parametrize(("typed", "expected"), [
    ("alice", "alice"), ("ALICE", "alice"), ("CORP\\alice", "alice"), ("corp\\Alice", "alice"),
    ("alice@corp.example", "alice"), ("Alice@CORP.EXAMPLE", "alice"), (" bob ", "bob"),
    ("OTHER\\alice", None), ("alice@other.example", None), ("mallory", None), ("", None), ("\\", None),
])
def test_user_forms(typed: str, expected: str | None) -> None:
    user = UserDirectory(demo_users()).resolve(typed)
    assert (user.username if user else None) == expected


def test_authenticate_checks_the_password() -> None:
    users = UserDirectory(demo_users())
    assert users.authenticate("CORP\\alice", "AlicePass1!") is not None
    assert users.authenticate("CORP\\alice", "alicepass1!") is None
    assert users.authenticate("alice", "") is None


def test_timing_follows_fbamodule() -> None:
    assert session_timeout(4, public_timeout_s=900, private_timeout_s=28800) == 28800
    assert session_timeout(0, public_timeout_s=900, private_timeout_s=28800) == 900
    assert session_timeout(1, public_timeout_s=900, private_timeout_s=28800) == 900
    assert ttl_lifetime(900) == 1350          # 22.5 min
    assert ttl_lifetime(28800) == 43200       # 12 h
    issued_at = 1000.0
    expiry = issued_at + ttl_lifetime(900)
    assert not ttl_due_for_reissue(expiry, 900, issued_at + 449)
    assert ttl_due_for_reissue(expiry, 900, issued_at + 451)


ALICE = demo_users()[0]


def _table_with_session() -> tuple[SessionTable, dict[str, str]]:
    table = SessionTable()
    session, ttl = table.create(ALICE, 4, 10.0, now=0.0)
    return table, session.cookie_values(ttl)


def test_session_verdicts() -> None:
    table, cookies = _table_with_session()
    assert table.check({}, now=1, user_activity=True).verdict is Verdict.ABSENT
    assert table.check({"PBack": "0"}, now=1, user_activity=True).verdict is Verdict.ABSENT
    valid = table.check(cookies, now=1, user_activity=True)
    assert (valid.verdict, valid.reissue_ttl) == (Verdict.VALID, False)
    assert table.check(cookies, now=6, user_activity=True).reissue_ttl         # past half the timeout
    assert not table.check(cookies, now=6, user_activity=False).reissue_ttl    # UA=0
    assert table.check(cookies, now=15, user_activity=True).verdict is Verdict.EXPIRED   # 1.5 x 10 s
    for name in ("cadata", "cadataKey", "cadataIV", "cadataSig", "cadataTTL"):
        forged = {**cookies, name: cookies[name][:-4] + "AAA="}
        assert table.check(forged, now=1, user_activity=True).verdict is Verdict.TAMPERED, name
        partial = {k: v for k, v in cookies.items() if k != name}
        assert table.check(partial, now=1, user_activity=True).verdict is Verdict.TAMPERED, name


def test_reissued_ttl_extends_and_ended_sessions_are_recognised() -> None:
    table, cookies = _table_with_session()
    check = table.check(cookies, now=6, user_activity=True)
    assert check.session is not None
    fresh = {**cookies, "cadataTTL": table.issue_ttl(check.session, now=6)}
    assert table.check(fresh, now=20, user_activity=True).verdict is Verdict.VALID
    assert table.check(cookies, now=20, user_activity=True).verdict is Verdict.EXPIRED
    table.end(check.session)
    assert table.check(fresh, now=7, user_activity=True).verdict is Verdict.ENDED


def test_cookie_sizes_match_real_traffic() -> None:
    _, cookies = _table_with_session()
    assert len(cookies["cadata"]) == 128
    assert len(cookies["cadataTTL"]) == 24
    assert {len(cookies[n]) for n in ("cadataKey", "cadataIV", "cadataSig")} == {344}


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 17])
def test_attachment_content_is_deterministic(size: int) -> None:
    data = b"".join(attachment_chunks(size))
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == attachment_sha256(size)


def test_attachment_blocks_differ() -> None:
    first, second = list(attachment_chunks(2 * BLOCK_SIZE))
    assert first != second


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": [
        {"username": "erin", "password": "pw", "display_name": "Erin Evans", "domain": "LAB",
         "email": "erin@lab.example", "upn": "erin@ad.lab.example", "delegate_of": ["x@lab.example"],
         "messages": [{"from": "IT", "subject": "Welcome", "preview": "Hi", "received": "Mon"}]},
        {"username": "frank", "password": "pw2"},
    ]}), encoding="utf-8")
    erin, frank = load_users_file(path)
    assert (erin.windows_name, erin.smtp, erin.principal_name) == (
        "LAB\\erin", "erin@lab.example", "erin@ad.lab.example")
    assert erin.messages[0].subject == "Welcome"
    assert erin.delegate_of == ("x@lab.example",)
    assert (frank.display_name, frank.smtp, frank.domain) == ("frank", "frank@corp.example", "CORP")
    directory = UserDirectory([erin, frank])
    assert directory.resolve("erin@ad.lab.example") is erin
    assert directory.resolve("erin@lab.example") is erin
    assert directory.resolve("LAB\\erin") is erin
    assert directory.resolve("CORP\\erin") is None


@pytest.mark.parametrize(("content", "problem"), [
    ("{", "not valid JSON"),
    ('{"users": []}', "at least one user"),
    ('[{"username": "a"}]', "at least one user"),
    ('{"users": [{"username": "a"}]}', "users[0].password: required"),
    ('{"users": [{"username": "a", "password": "b", "messages": [{}]}]}', "users[0].messages[0]"),
    ('{"users": [{"username": "a", "password": "b", "delegate_of": "x"}]}', "users[0].delegate_of"),
])
def test_users_file_errors_say_where(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsersFileError, match=re.escape(problem)):
        load_users_file(path)
    with pytest.raises(UsersFileError, match="cannot read"):
        load_users_file(tmp_path / "missing.json")
