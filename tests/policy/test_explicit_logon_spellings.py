"""The ProxyShell family in every spelling IIS, ASP.NET or Exchange would read as the same request."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.explicit_logon import MAX_DECODE_ROUNDS, autodiscover_path_confusion, iis_reading
from gateway.policy.paths import BadTarget, canonicalize

AD = "/autodiscover/autodiscover.json"

CONFUSED = [
    # ProxyShell (CVE-2021-34473) and ProxyNotShell (CVE-2022-41040) as published.
    f"{AD}?@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com",
    f"{AD}?@evil.com/mapi/nspi",
    # `@` and `/` encoded: once, twice, IIS's %u (either case), overlong UTF-8, fullwidth, best fit.
    f"{AD}?%40evil.com%2Fmapi%2Fnspi",
    f"{AD}?%2540evil.com%252Fmapi%252Fnspi",
    f"{AD}?%25252540evil.com%25252Fmapi",
    f"{AD}?%u0040evil.com%u002fmapi%u002fnspi",
    f"{AD}?%U0040evil.com%U002Fmapi",
    f"{AD}?%C1%80evil.com%C0%AFmapi%C0%AFnspi",
    f"{AD}?%EF%BC%A0evil.com%EF%BC%8Fmapi",
    f"{AD}?%EF%B9%ABevil.com/mapi",
    f"{AD}?@evil.com%E2%88%95mapi%E2%88%95nspi",
    f"{AD}?@evil.com%E2%81%84owa",
    # Backslashes for slashes, raw or encoded.
    f"{AD}?@evil.com\\mapi\\nspi",
    f"{AD}?@evil.com%5Cmapi%5Cnspi",
    f"{AD}?@evil.com%255Cpowershell",
    # Across `&`, `=`, `+`, spaces: a path after an address is never an address.
    f"{AD}?@evil.com&/mapi/nspi",
    f"{AD}?@evil.com%26/mapi/nspi",
    f"{AD}?x=@evil.com&y=/mapi/nspi",
    f"{AD}?@evil.com+/mapi/nspi",
    f"{AD}?@evil.com%20/owa/",
    # The Email parameter's self-reference, in case and encodings.
    f"{AD}?Email=AUTODISCOVER/AUTODISCOVER.JSON%3F@evil.com",
    f"{AD}?Email=autodiscover/autodiscover%2Ejson%3Fx",
    f"{AD}?Email=autodiscover/autodiscover%u002ejson",
    f"{AD}?Email=autodi%C5%BFcover/autodi%C5%BFcover.json",  # long s: `S` to .NET's case-insensitive compare
    f"{AD}?Email=autodiscover%EF%BC%8Eautodiscover%EF%BC%8Ejson",
    f"{AD}?%45mail=autodiscover/autodiscover.json",
    # PowerShell named in the query.
    f"{AD}?Protocol=PowerShell",
    f"{AD}?x=Power%53hell",
    f"{AD}?x=power%u0073hell",
    f"{AD}?x=POWER%25%35%33HELL",
    f"{AD}?x=%EF%BD%90owershell",
    # In the path: parameters, an encoded `?`, a path after an address.
    f"{AD};@evil.com/mapi/nspi",
    f"{AD}%3F@evil.com/mapi/nspi",
    f"{AD}/@evil.com/owa/",
    f"{AD}/x%40evil.com/powershell",
    "/autodiscover;x/autodiscover.json?@evil.com/mapi/nspi",
    # The request's own path in its query (what Exchange's cut removes), below other vdirs too.
    "/EWS/Exchange.asmx?x=ews/exchange.asmx",
    "/EWS/Exchange.asmx?x=EWS%5CExchange.asmx",
    "/mapi/emsmdb/?x=MAPI/emsmdb",
    "/OAB/abc/oab.xml?@evil.com/ecp/",
    "/rpc/rpcproxy.dll?@evil.com/powershell:6001",
    "/Microsoft-Server-ActiveSync?Cmd=Sync&x=autodiscover.json",
    # More decoding rounds than any client needs.
    f"{AD}?x=%25252525252541",
]

CLEAN = [
    f"{AD}?Email=alice@corp.example&Protocol=ActiveSync&RedirectCount=1",
    f"{AD}?Email=alice%40corp.example&Protocol=EWS",
    f"{AD}/v1.0/alice@corp.example?Protocol=EWS",
    f"{AD}/v1.0/alice%40corp.example?Protocol=AutodiscoverV1",
    "/Autodiscover/Autodiscover.xml",
    "/autodiscover/autodiscover.svc",
    "/mapi/emsmdb/?MailboxId=0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e@corp.example",
    "/mapi/nspi/?MailboxId=0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e@corp.example",
    "/rpc/rpcproxy.dll?0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e@corp.example:6001",
    "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice@corp.example&DeviceId=ABC&DeviceType=iPhone",
    "/Microsoft-Server-ActiveSync?Cmd=Sync&User=CORP%5Calice&DeviceId=ABC&DeviceType=iPhone",
    "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
    "/Microsoft-Server-ActiveSync?jAAJBAp2MTQw%2FRGV2aWNlAA%2BpTbW%3D%3D",
    "/EWS/Exchange.asmx",
    "/OAB/0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e/oab.xml",
    # OWA and ECP have a second factor: their routes decide on their own.
    "/owa/?path=/mail&x=autodiscover.json",
    "/ecp/?@evil.com/powershell",
]


@pytest.mark.parametrize("target", CONFUSED)
def test_confused(target: str) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is True


@pytest.mark.parametrize("target", CLEAN)
def test_clean(target: str) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is False


@pytest.mark.parametrize(("cookie", "confused"), [
    ("autodiscover/autodiscover.json?@evil.com", True),
    ("autodiscover/autodiscover.json%3F@evil.com", True),
    ("AutoDiscover%u002Fautodiscover.JSON", True),
    ("x@evil.com/mapi/nspi", True),
    ("powershell", True),
    ("alice@corp.example", False),
    ("alice%40corp.example", False),
    ("", False),
])
def test_email_cookie(cookie: str, confused: bool) -> None:
    assert autodiscover_path_confusion(canonicalize(AD), [cookie]) is confused
    assert autodiscover_path_confusion(canonicalize("/EWS/Exchange.asmx"), [cookie]) is confused
    assert autodiscover_path_confusion(canonicalize("/owa/"), [cookie]) is False


@pytest.mark.parametrize(("target", "content_type", "confused"), [
    (AD, "application/x-www-form-urlencoded", True),
    (AD, " Application/X-WWW-Form-URLencoded; charset=utf-8", True),
    (AD, "multipart/form-data; boundary=x", True),
    ("/EWS/Exchange.asmx", "application/x-www-form-urlencoded", True),
    ("/Microsoft-Server-ActiveSync?Cmd=Sync", "MULTIPART/FORM-DATA", True),
    ("/autodiscover/autodiscover.xml", "text/xml; charset=utf-8", False),
    (AD, "application/json", False),
    ("/EWS/Exchange.asmx", "text/xml", False),
    ("/mapi/emsmdb/", "application/mapi-http", False),
    ("/Microsoft-Server-ActiveSync?Cmd=Sync", "application/vnd.ms-sync.wbxml", False),
    ("/owa/service.svc", "application/x-www-form-urlencoded", False),
])
def test_a_form_body_could_carry_email(target: str, content_type: str, confused: bool) -> None:
    """ASP.NET's Request.Params reads form fields too; these endpoints' clients never post a form."""
    assert autodiscover_path_confusion(canonicalize(target), (), content_type) is confused


@pytest.mark.parametrize(("text", "read"), [
    ("%41", "a"),
    ("%2541", "a"),
    ("%u0041", "a"),
    ("%uFF21", "a"),         # fullwidth A, then NFKC
    ("%C1%81", "a"),         # overlong A
    ("%E9", "\xe9"),         # not UTF-8: Latin-1
    ("a\\b", "a/b"),
    ("A%5CB", "a/b"),
    ("\u017f", "s"),         # long s
    ("a+b", "a+b"),
    ("%", "%"),
    ("%zz", "%zz"),
    ("%u00", "%u00"),
])
def test_iis_reading(text: str, read: str) -> None:
    assert iis_reading(text) == read


def test_endless_encoding_has_no_reading() -> None:
    text = "A"
    for _ in range(MAX_DECODE_ROUNDS + 1):
        text = text.replace("%", "%25") if "%" in text else "%41"
    assert iis_reading(text) is None


@given(st.text(alphabet="%25uU0123456789abcdefABCDEF@/\\.?&=+ jsonwrhl\u017f\uff20\uff0f", max_size=40))
def test_reading_is_a_fixed_point(text: str) -> None:
    read = iis_reading(text)
    if read is not None:
        assert iis_reading(read) == read


@given(st.text(alphabet="@/%40%2F%5C\\.&=+abcdefuU0123456789", max_size=30))
def test_at_then_slash_is_caught_however_spelled(query: str) -> None:
    try:
        target = canonicalize(f"{AD}?{query}")
    except BadTarget:
        return
    read = iis_reading(query)
    if read is None or ("@" in read and "/" in read.split("@", 1)[1]):
        assert autodiscover_path_confusion(target) is True
