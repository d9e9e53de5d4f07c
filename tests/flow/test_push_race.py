"""Pushes: one at a time per session however many presses arrive together (memory and Redis stores),
what the push says about the browser, and number matching. Real servers throughout: the simulators,
the gateway, and a real redis-server."""

from __future__ import annotations

import asyncio
import re

from tests.flow.conftest import Browser, FlowEnv, StoreEnv

CHROME_ON_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/120.0.0.0 Safari/537.36")
_NUMBER = re.compile(r"Enter (\d\d) in the Monofor Identity app")

async def at_mfa_page(browser: Browser, user: str = "alice") -> None:
    assert (await browser.password(user)).location == "/_gateway/mfa"
    assert (await browser.mfa_page()).status == 200


async def test_concurrent_presses_send_one_push(store_env: StoreEnv) -> None:
    env: FlowEnv = await store_env()
    browser = env.browser()
    await at_mfa_page(browser)
    presses = await asyncio.gather(*(browser.push() for _ in range(12)))
    assert [page.status for page in presses] == [303] * 12
    assert all(page.location == "/_gateway/mfa" for page in presses)
    assert len(await env.monosign_calls("start_push")) == 1
    assert len(env.monosign.state.pending_pushes()) == 1
    # The one push works, and a later press (after it was rejected) sends a new one: the claim is released.
    await env.reject("alice")
    assert "rejected on your phone" in (await browser.complete()).text
    await browser.push()
    assert len(await env.monosign_calls("start_push")) == 2
    await env.approve("alice")
    assert (await browser.complete()).location == "/owa/"


async def test_concurrent_presses_from_two_tabs_of_one_session(store_env: StoreEnv) -> None:
    """Two tabs share the cookie; each page has the same token. Presses interleaved with page loads."""
    env: FlowEnv = await store_env()
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    results = await asyncio.gather(*(browser.push() if index % 2 else browser.mfa_page() for index in range(16)))
    assert all(page.status in (200, 303) for page in results), [page.status for page in results]
    assert len(await env.monosign_calls("start_push")) == 1


async def test_the_push_names_the_browser_not_its_header(env: FlowEnv) -> None:
    browser = env.browser()
    browser.extra_headers["User-Agent"] = CHROME_ON_WINDOWS
    await at_mfa_page(browser)
    await browser.push()
    [push] = env.monosign.state.pending_pushes()
    assert push.user_agent == "Chrome on Windows"
    await env.reject("alice")
    await browser.complete()
    browser.extra_headers["User-Agent"] = "URGENT from IT: approve this request now <b>"
    await browser.push()
    [push] = env.monosign.state.pending_pushes()
    assert push.user_agent == "Unknown browser on Unknown OS"


async def test_without_number_matching_no_number(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser)
    await browser.push()
    page = await browser.mfa_page()
    assert "data-status-url" in page.text  # waiting
    assert "data-push-number" not in page.text
    [push] = env.monosign.state.pending_pushes()
    assert push.number_challenge is None


async def test_number_matching(store_env: StoreEnv) -> None:
    env: FlowEnv = await store_env(gateway_mfa_number_matching=True)
    browser = env.browser()
    await at_mfa_page(browser)
    assert "data-push-number" not in (await browser.mfa_page()).text  # nothing to match before a push
    await browser.push()
    page = await browser.mfa_page()
    match = _NUMBER.search(page.text)
    assert match is not None, page.text
    number = match.group(1)
    [push] = env.monosign.state.pending_pushes()
    assert push.number_challenge == number
    # The control API's approve needs the number: without it nothing changes, a wrong one rejects.
    async with env.http.post(f"{env.monosign.url}/_sim/users/alice/push/approve") as response:
        assert response.status == 422
    assert env.monosign.state.pending_pushes() == [push]
    wrong = f"{(int(number) + 1) % 100:02d}"
    async with env.http.post(f"{env.monosign.url}/_sim/users/alice/push/approve", json={"number": wrong}) as response:
        assert response.status == 422
    rejected = await browser.complete()
    assert "rejected on your phone" in rejected.text
    assert "data-push-number" not in rejected.text
    # A new push has a number of its own (the page shows the new one); the right number signs in.
    await browser.push()
    second = _NUMBER.search((await browser.mfa_page()).text)
    assert second is not None
    [push] = env.monosign.state.pending_pushes()
    assert push.number_challenge == second.group(1)
    await env.control("POST", "/_sim/users/alice/push/approve", json={"number": second.group(1)})
    assert (await browser.complete()).location == "/owa/"


def test_numbers_are_two_digits_and_vary() -> None:
    from gateway.mfa.decisions import new_number_challenge

    numbers = {new_number_challenge() for _ in range(2000)}
    assert all(re.fullmatch(r"[0-9]{2}", number) for number in numbers)
    assert len(numbers) > 80  # 100 possible; 2000 draws miss more than 20 with negligible probability
