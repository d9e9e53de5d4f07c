"""A push the session no longer waits for stops being polled at Monosign: after "Send again", "Cancel" /
"Use a code instead", a code that passes, and a session that ends. Read from the Monosign
simulator's call log, on the memory store and on a real redis-server; an approval of the abandoned
push still counts for nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.flow.conftest import Browser, FlowEnv, StoreEnv
from tests.flow.test_push_waiting import at_mfa_page, post, pushes_of, resend


async def status_calls(env: FlowEnv, request_id: str) -> int:
    return sum(1 for call in await env.monosign_calls("push_status") if request_id in call["path"])


async def until_polled(env: FlowEnv, request_id: str, times: int) -> None:
    for _ in range(400):
        if await status_calls(env, request_id) >= times:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"push {request_id[:8]} was never polled {times} times")


async def send_again(env: FlowEnv, browser: Browser) -> None:
    assert (await resend(browser)).location == "/_gateway/mfa"


async def cancel(env: FlowEnv, browser: Browser) -> None:
    assert (await post(browser, "/_gateway/mfa/cancel", {"then": "code"})).location == "/_gateway/mfa#code"


async def use_a_code(env: FlowEnv, browser: Browser) -> None:
    assert (await browser.verify(await env.code("alice"))).location == "/owa/"


async def sign_in_again(env: FlowEnv, browser: Browser) -> None:
    """A new login in the same browser ends the pending session (`session_ended`, `new_login`)."""
    assert (await browser.password("alice")).location == "/_gateway/mfa"


async def log_off(env: FlowEnv, browser: Browser) -> None:
    await browser.get("/owa/logoff.owa")


Abandon = Callable[[FlowEnv, Browser], Awaitable[None]]


@pytest.mark.parametrize("abandon", [send_again, cancel, use_a_code, sign_in_again, log_off],
                         ids=lambda abandon: abandon.__name__)
async def test_an_abandoned_push_is_no_longer_polled(store_env: StoreEnv, abandon: Abandon) -> None:
    env = await store_env()
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    await browser.push()
    # A witness: dave's push, sent at the same time, polled on the same schedule and never abandoned.
    witness = env.browser()
    await at_mfa_page(witness, "dave")
    await witness.push()
    abandoned, watched = pushes_of(env)
    await until_polled(env, abandoned, 2)
    await abandon(env, browser)
    polled_until_then = await status_calls(env, abandoned)
    await until_polled(env, watched, await status_calls(env, watched) + 3)  # several poller turns later
    assert await status_calls(env, abandoned) <= polled_until_then + 1  # at most the call in flight
    # Approving the abandoned push on the phone signs nobody in.
    if abandon is not use_a_code:
        env.monosign.state.answer_push(abandoned, approve=True)
        assert (await browser.complete()).location != "/owa/"
