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
    # The same shape below the other endpoints that take a password alone.
    ("/EWS/autodiscover.json?@evil.example/powershell/?&Email=EWS/autodiscover.json%3F@evil.example", True),
    ("/EWS/Exchange.asmx?@evil.example/owa/", True),
    ("/mapi/emsmdb/?MailboxId=x@evil.example/powershell/", True),
    ("/Microsoft-Server-ActiveSync?Cmd=Sync&x=autodiscover.json", True),
    ("/OAB/x/oab.xml?@evil.example/ecp/", True),
    ("/rpc/rpcproxy.dll?@evil.example/powershell:6001", True),
    # What those clients send.
    ("/mapi/emsmdb/?MailboxId=0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e@corp.example", False),
    ("/rpc/rpcproxy.dll?0b3b4e6a-7f0e-4c43-9f3a-2b8f0f1d2c3e@corp.example:6001", False),
    ("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice@corp.example&DeviceId=ABC&DeviceType=iPhone", False),
    ("/EWS/Exchange.asmx", False),
    # OWA and ECP have a second factor: their routes decide on their own.
    ("/owa/?path=/mail&x=autodiscover.json", False),
])
def test_autodiscover_path_confusion(target: str, confused: bool) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is confused
