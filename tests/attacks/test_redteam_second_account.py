"""Red team: the attacker knows alice's password and owns a second account (bob) whose second
factor they pass themselves. A complete gateway session of their own must never become a way to
alice's mailbox: not by signing in at another credential path, not by Basic authentication riding
along with broken Exchange cookies, not by Exchange cookies sent where the gateway does not check
their binding.
"""

from __future__ import annotations

import pytest

from tests.flow.conftest import CADATA_NAMES, PASSWORDS, FlowEnv, flow_environment

ALICE_FORM_FIELDS = {"flags": "4", "forcedownlevel": "0", "username": "alice", "password": PASSWORDS["alice"],
                     "passwordText": "", "isUtf8": "1"}


def alice_form(env: FlowEnv) -> dict[str, str]:
    return {"destination": f"{env.settings.gateway_public_url}/owa/", **ALICE_FORM_FIELDS}


def live_cadata(set_cookies: list[str]) -> list[str]:
    """Names of the Exchange session cookies a response hands out with a value."""
    found = []
    for value in set_cookies:
        name, _, rest = value.partition("=")
        if name.strip().lower() in CADATA_NAMES and rest.split(";", 1)[0].strip():
            found.append(name.strip())
    return found


async def owa_requests_since(env: FlowEnv, mark: int) -> list[dict[str, object]]:
    return [record for record in await env.owa_requests() if int(str(record["id"])) > mark]


async def newest_owa_request(env: FlowEnv) -> int:
    records = await env.owa_requests()
    return int(str(records[-1]["id"])) if records else 0


# Exchange's FbaModule takes any POST whose *last* path segment is auth.owa or owaauth.dll, in
# /owa or /ecp, as the credential post (HandleFbaAuthFormPost compares Url.Segments[^1] only).
@pytest.mark.parametrize("path", ["/ecp/auth.owa", "/owa/x/auth.owa", "/OWA/Auth/X/OwaAuth.dll",
                                  "/owa/alice@corp.example/auth.owa", "/ecp/auth/owaauth.dll"])
async def test_credential_post_at_another_path_never_hands_out_alices_exchange_session(path: str) -> None:
    async with flow_environment() as env:
        attacker = env.browser()
        await attacker.sign_in("bob")  # the attacker's own account: they pass its second factor
        answer = await attacker.request("POST", path, data=alice_form(env))
        assert not live_cadata(answer.set_cookies), (answer.status, answer.set_cookies)
        # Observed as the login it is: alice's second factor comes next.
        assert answer.status == 302, answer.text[:300]
        assert answer.location == "/_gateway/mfa"
        mailbox = await attacker.get("/owa/")
        assert "Alice Archer" not in mailbox.text
