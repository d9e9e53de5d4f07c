"""Red team, second pass: the Cookie header as the binding check reads it and as Exchange reads it.

A passed gateway session is bound to the hash of the `cadata` + `cadataKey` it carries; only then
does a request reach Exchange. That holds only if Exchange reads the very pairs the check read.
ASP.NET trims each cookie pair with .NET's notion of white space, which (with the header decoded
in a single-byte code page) includes NBSP (0xA0) and NEL (0x85): a pair named `\\xa0cadata` is not
`cadata` to a strict reader and is `cadata` to Exchange, which takes the first one it finds. With
their own passed session and Exchange cookies for alice (FBA cookies are the encrypted password:
anyone with a password and the certificate's public key can mint them; here they come from a
sign-in at the simulator itself), an attacker would read alice's mailbox.
"""

from __future__ import annotations

import httpx
import pytest

from tests.attacks.kit import set_cookies
from tests.attacks.raw_http import exchange
from tests.e2e.owa_client import logon_form
from tests.flow.conftest import CADATA_NAMES, HOST, PASSWORDS, flow_environment


async def minted_alice_cookies(owa_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=owa_url, timeout=15) as direct:
        answer = await direct.post("/owa/auth.owa", data=logon_form(owa_url, "alice", PASSWORDS["alice"]))
    cookies = {name: value for name, value in set_cookies(answer).items() if name.lower() in CADATA_NAMES}
    assert len(cookies) == len(CADATA_NAMES)
    return cookies


# Bytes before a cookie name that .NET's String.Trim removes (or that decode to such a character)
# and that a reader trimming only spaces and tabs keeps.
PREFIXES = [b"\xa0", b"\x85", b"\xc2\xa0", b"\xc2\x85", b"\x0b", b"\x0c", b"\x1c"]


@pytest.mark.parametrize("prefix", PREFIXES, ids=[prefix.hex() for prefix in PREFIXES])
async def test_cookie_names_padded_with_exotic_white_space_never_reach_exchange(prefix: bytes) -> None:
    async with flow_environment() as env:
        attacker = env.browser()
        await attacker.sign_in("bob")  # the attacker's own account, second factor passed
        alice = await minted_alice_cookies(env.owa.base_url)
        smuggled = b"; ".join(prefix + name.encode() + b"=" + value.encode() for name, value in alice.items())
        own = "; ".join(f"{name}={value}" for name, value in attacker.cookies.items()).encode()
        recorder = env.owa.state.recorder
        mark = recorder.requests()[-1].id
        payload = (f"GET /owa/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n".encode()
                   + b"Cookie: " + smuggled + b"; " + own + b"\r\n\r\n")
        answers = await exchange(env.port, payload, ["GET"])
        assert answers, "no answer"
        assert "Alice Archer" not in answers[0].text
        forwarded = [record for record in recorder.requests() if record.id > mark]
        for record in forwarded:
            # Only plain token names go upstream: what Exchange trims is what the gateway read.
            assert all(name.isascii() and name.isprintable() and name == name.strip(" \t")
                       for name in record.cookie_names), record.cookie_names
            assert sorted(name.lower() for name in record.cookie_names if name.lower() in CADATA_NAMES) == sorted(
                CADATA_NAMES), record.cookie_names


async def test_own_session_still_works_with_ordinary_cookie_spelling() -> None:
    """The rule costs a browser nothing: spaces around pairs, other cookies, repeated headers."""
    async with flow_environment() as env:
        user = env.browser()
        await user.sign_in("bob")
        own = ";  ".join(f"{name}={value}" for name, value in user.cookies.items())
        payload = (f"GET /owa/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n".encode()
                   + b"Cookie: PBack=0;  " + own.encode() + b"\r\nCookie: X-OWA-JS-PSD=1\r\n\r\n")
        answers = await exchange(env.port, payload, ["GET"])
        assert answers[0].status == 200
        assert "Bob Baker" in answers[0].text
        record = env.owa.state.recorder.requests()[-1]
        assert {"PBack", "X-OWA-JS-PSD"} <= set(record.cookie_names)
