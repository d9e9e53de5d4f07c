from __future__ import annotations

import pytest

from gateway.policy.explicit_logon import autodiscover_path_confusion
from gateway.policy.paths import canonicalize


@pytest.mark.parametrize(("target", "confused"), [
    # ProxyShell (CVE-2021-34473) and ProxyNotShell (CVE-2022-41040) shapes.
    ("/autodiscover/autodiscover.json?@evil.example/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.example",
     True),
    ("/autodiscover/autodiscover.json?@evil.example/owa/?&Email=autodiscover/autodiscover.json%3F@evil.example", True),
    ("/autodiscover/autodiscover.json?@evil.example/Powershell?X-Rps-CAT=x&Email=autodiscover/autodiscover.json%3F@e",
     True),
    ("/Autodiscover/Autodiscover.json?a=..&Email=autodiscover/autodiscover.json%253F@evil.example", True),
    ("/autodiscover/autodiscover.json?@evil.example/mapi/nspi", True),
    ("/autodiscover/autodiscover.json?x=%2540evil%252Fowa%252F", True),
    ("/autodiscover/autodiscover.json?Protocol=PowerShell", True),
    # What clients send.
    ("/autodiscover/autodiscover.json?Email=alice@corp.example&Protocol=ActiveSync&RedirectCount=1", False),
    ("/autodiscover/autodiscover.json/v1.0/alice@corp.example?Protocol=EWS", False),
    ("/Autodiscover/Autodiscover.xml", False),
    ("/autodiscover/autodiscover.svc", False),
    # Not Autodiscover: other routes decide on their own.
    ("/owa/?path=/mail&x=autodiscover.json", False),
])
def test_autodiscover_path_confusion(target: str, confused: bool) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is confused
