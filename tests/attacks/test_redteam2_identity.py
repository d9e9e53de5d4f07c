"""Red team, second pass: the name Exchange signs in and the name Monosign is asked about.

The gateway learns who signed in only from the typed `username`, and asks Monosign about that
string. Exchange does not sign in that string: FbaModule converts it to the server's ANSI code page
with Windows' best fit (exchange-owa-protocol §1.4), so `alıce` (dotless i), `ａｌｉｃｅ` (fullwidth)
or `ālice` is `alice` to Exchange. An attacker who knows alice's password and owns a Monosign
account spelled that way (their own second factor) would pass *their* second factor and get
*alice's* mailbox. The OWA simulator reads names the way Exchange does (gateway.sim.owa.ansi).
"""

from __future__ import annotations

import pytest

from gateway.sim.monosign_users import DEMO_DOMAIN, DEMO_SOURCE, SimUser
from tests.e2e.owa_client import shows_mailbox
from tests.flow.conftest import PASSWORDS, FlowEnv, flow_environment
from tests.logs import CapturedLogs, events

# Public, for this test only.
ATTACKER_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def add_monosign_user(env: FlowEnv, user_name: str) -> None:
    user = SimUser(id=f"attacker-{len(env.monosign.state.users)}", user_name=user_name,
                   email=f"{user_name}@corp.example", display_name="Mallory", domain=DEMO_DOMAIN,
                   source=DEMO_SOURCE, mfa_methods=("Totp",), assigned=True, totp_secret=ATTACKER_TOTP)
    env.monosign.state.users[user.id] = user


@pytest.mark.parametrize("typed", ["alıce", "ａｌｉｃｅ", "ālice", "CORP\\alıce", "alıce@corp.example"])
async def test_a_name_exchange_reads_as_another_account_is_refused(typed: str,
                                                                   captured_logs: CapturedLogs) -> None:
    async with flow_environment() as env:
        add_monosign_user(env, typed.split("\\")[-1].split("@")[0])
        attacker = env.browser()
        answer = await attacker.password(typed, PASSWORDS["alice"])
        assert not attacker.has_exchange_session(), answer.set_cookies
        if answer.location == "/_gateway/mfa":  # what happened before: the attacker's own code...
            await attacker.mfa_page()
            await attacker.verify(await env.code(typed.split("\\")[-1].split("@")[0]))
        mailbox = await attacker.get("/owa/")
        assert not shows_mailbox(mailbox.text)
        assert "Alice Archer" not in mailbox.text
        assert answer.status == 403, (answer.status, answer.location)
        assert await env.monosign_calls("lookup_user") == []  # never asked about the wrong person
        refused = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "refused"]
        assert [event["reason"] for event in refused] == ["ambiguous_username"]


async def test_plain_names_still_sign_in(captured_logs: CapturedLogs) -> None:
    async with flow_environment() as env:
        for typed in ("alice", "CORP\\Alice", "alice@corp.example", "ALICE"):
            browser = env.browser()
            assert (await browser.password(typed)).location == "/_gateway/mfa"
