"""Open redirects end to end: hostile destinations through the whole sign-in, second factor included.

Each line of tests/data/open_redirects.txt is fed as the logon form's `destination`, and as the
`url=` of a logon page link (which Exchange copies into the form). Exchange here is permissive
(it redirects to any destination host it is given), so whatever survives the first factor reaches
the gateway's own destination check after the push is approved. Every `Location` the gateway sends on
the way must stay on the gateway's origin.
"""

from __future__ import annotations

import asyncio
import html
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gateway.demo import DemoPorts, RunningDemo, demo_owa_config, running_demo
from tests.e2e.owa_client import MFA_PAGE, csrf_token, mfa_page, post_mfa, post_password

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

CORPUS = [line for line in (Path(__file__).parent.parent / "data" / "open_redirects.txt").read_text("utf-8")
          .splitlines() if line.strip()]
DESTINATION_FIELD = re.compile(r'<input type="hidden" name="destination" value="([^"]*)">')
CONCURRENCY = 8


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo() -> AsyncIterator[RunningDemo]:
    from dataclasses import replace

    permissive_exchange = replace(demo_owa_config(), require_host_match=False)
    # Hundreds of alice's sign-ins in a minute: lift the push-fatigue limit, which is not under test here.
    async with running_demo(DemoPorts(0, 0, 0, 0), owa_config=permissive_exchange, auto_approve=True,
                            auto_approve_delay=0.0, settings_overrides={"gateway_mfa_max_pushes": 10_000}) as running:
        yield running


def stays_on_origin(location: str, origin: str) -> bool:
    """Would a browser that follows `location` from a gateway page stay on the gateway's origin?"""
    if any(ord(character) < 0x21 or ord(character) == 0x7F for character in location) or "\\" in location:
        return False  # browsers strip or fold these (`/\evil`, `/<TAB>/evil` become `//evil`)
    if location.startswith("//"):
        return False
    parts = urllib.parse.urlsplit(urllib.parse.urljoin(origin + "/", location))
    return f"{parts.scheme}://{parts.netloc}".lower() == origin.lower()


@dataclass
class Outcome:
    destination: str
    locations: list[str] = field(default_factory=list)
    passed_mfa: bool = False


async def sign_in_towards(demo: RunningDemo, destination: str, *, via_url: bool) -> Outcome:
    outcome = Outcome(destination)
    async with httpx.AsyncClient(base_url=demo.gateway_url, timeout=20) as client:
        if via_url:
            link = "/owa/auth/logon.aspx?replaceCurrent=1&url=" + urllib.parse.quote(destination, safe="")
            page = await client.get(link)
            found = DESTINATION_FIELD.search(page.text)
            if page.status_code != 200 or found is None:
                return outcome  # the link itself was refused
            destination = html.unescape(found.group(1))
        step = await post_password(client, "alice", destination=destination)
        outcome.locations.append(step.location)
        if not step.location.endswith(MFA_PAGE):
            return outcome  # Exchange refused the destination (400), or the gateway did
        page = await mfa_page(client)
        sent = await post_mfa(client, "push", csrf_token(page.text))
        outcome.locations.append(sent.headers.get("Location", ""))
        done = await client.get(f"{MFA_PAGE}/complete")  # approved at once; the gateway asks Monosign
        outcome.locations.append(done.headers.get("Location", ""))
        outcome.passed_mfa = done.status_code in (302, 303) and bool(done.cookies.get("cadata"))
    return outcome


async def run_corpus(demo: RunningDemo, *, via_url: bool) -> list[Outcome]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(destination: str) -> Outcome:
        async with limit:
            return await sign_in_towards(demo, destination, via_url=via_url)

    return list(await asyncio.gather(*(one(destination) for destination in CORPUS)))


def escapes(outcomes: list[Outcome], origin: str) -> list[str]:
    return [f"{outcome.destination!r} -> {location!r}" for outcome in outcomes for location in outcome.locations
            if location and not stays_on_origin(location, origin)]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 100


@IN_MODULE_LOOP
@pytest.mark.slow
@pytest.mark.parametrize("via_url", [False, True], ids=["destination field", "url= of the logon page"])
async def test_hostile_destinations_never_leave_the_gateway(demo: RunningDemo, via_url: bool) -> None:
    outcomes = await run_corpus(demo, via_url=via_url)
    assert not escapes(outcomes, demo.gateway_url), "\n".join(escapes(outcomes, demo.gateway_url))
    # The gateway's own check after the second factor was really exercised. Exchange (like the real
    # one) refuses relative and malformed destinations with 400 before any session exists; every
    # absolute http(s) URL of the corpus passes it and reaches the end of the sign-in.
    completed = [outcome for outcome in outcomes if outcome.passed_mfa]
    absolute = [line for line in CORPUS if re.match(r"(?i)https?://[^/\\\s]", line)]
    assert len(completed) >= min(len(absolute), 15), f"only {len(completed)} sign-ins reached the end"
    assert all(outcome.locations[-1] == "/owa/" for outcome in completed), [o.locations for o in completed]


@pytest.mark.parametrize("location", ["/owa/", "/owa/?path=/mail", "http://127.0.0.1:1/owa/#path=/calendar"])
def test_same_origin_locations_are_recognised(location: str) -> None:
    assert stays_on_origin(location, "http://127.0.0.1:1")


@pytest.mark.parametrize("location", ["//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example/",
                                      "http://127.0.0.1:2/owa/", "javascript:alert(1)", " //evil.example"])
def test_other_origins_are_recognised(location: str) -> None:
    assert not stays_on_origin(location, "http://127.0.0.1:1")
