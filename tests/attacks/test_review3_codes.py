"""Review 3: a one-time code alice used, spelled another way, is no new use of it.

The single-use claim is keyed by the code's text, so ` 123456 `, `123 456` or `0123456` would each
be a first use of `123456` if they reached Monosign and it read codes as numbers, or trimmed them.
The gateway normalises first: white space goes, and what is left must be exactly
GATEWAY_MFA_CODE_LENGTH digits; anything else is a wrong code that Monosign never sees.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.flow.conftest import flow_environment
from tests.logs import CapturedLogs, events

# The same code, spelled as it might be pasted: normalised to it, then refused as a replay.
SAME_CODE: dict[str, Callable[[str], str]] = {
    "padded": lambda code: f" {code} ",
    "tab and newline": lambda code: f"\t{code}\n",
    "split in two": lambda code: f"{code[:3]} {code[3:]}",
    "split in three": lambda code: f"{code[:2]} {code[2:4]} {code[4:]}",
    "no-break space": lambda code: f"{code[:3]}\xa0{code[3:]}",
    "thin space": lambda code: f"{code[:3]}\u2009{code[3:]}",
}
# Other strings a lenient verifier might read as the code: wrong codes, never sent to Monosign.
NOT_A_CODE: dict[str, Callable[[str], str]] = {
    "leading zero": lambda code: f"0{code}",
    "two leading zeros": lambda code: f"00{code}",
    "trailing digit": lambda code: f"{code}0",
    "plus sign": lambda code: f"+{code}",
    "hyphen": lambda code: f"{code[:3]}-{code[3:]}",
    "fullwidth digits": lambda code: code.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}),
    "arabic-indic digits": lambda code: code.translate({ord(d): 0x0660 + int(d) for d in "0123456789"}),
    "zero-width space": lambda code: f"{code[:3]}\u200b{code[3:]}",
    "trailing letter": lambda code: f"{code}x",
    "decimal point": lambda code: f"{code}.0",
}


async def test_a_used_code_in_another_spelling_passes_no_second_session(captured_logs: CapturedLogs) -> None:
    async with flow_environment(gateway_mfa_max_failures=100) as env:
        alice, attacker = env.browser(), env.browser()
        assert (await alice.password("alice")).location == "/_gateway/mfa"
        assert (await attacker.password("alice")).location == "/_gateway/mfa"
        await attacker.mfa_page()
        code = await env.code("alice")
        assert (await alice.verify(code)).location == "/owa/"
        calls_before = len(await env.monosign_calls("verify_code"))
        captured_logs()  # what came before is not this test's business
        for label, spell in {**SAME_CODE, **NOT_A_CODE}.items():
            env.monosign.state.last_timecode.clear()  # a Monosign that would accept the code again
            page = await attacker.verify(spell(code))
            assert page.status == 200, (label, page.status, page.location)
            message = "That code is not correct" if label in SAME_CODE else "Enter only the digits of the code"
            assert message in page.text, label
            assert not attacker.has_exchange_session(), label
        # Only the spellings of the very code reached Monosign, and each was then a replay.
        assert len(await env.monosign_calls("verify_code")) - calls_before == len(SAME_CODE)
        failed = [event["reason"] for event in events(captured_logs(), "gateway.audit")
                  if event["event"] == "code_failed"]
        assert failed.count("replayed") == len(SAME_CODE)
        assert failed.count("format") == len(NOT_A_CODE)
        assert code not in str(failed)


async def test_a_pasted_code_with_spaces_passes() -> None:
    async with flow_environment() as env:
        user = env.browser()
        assert (await user.password("alice")).location == "/_gateway/mfa"
        await user.mfa_page()
        code = await env.code("alice")
        assert (await user.verify(f" {code[:3]} {code[3:]} ")).location == "/owa/"
        assert user.has_exchange_session()
