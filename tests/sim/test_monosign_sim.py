"""The Monosign simulator on its own: the contract over HTTP, the push lifecycle, TOTP, lockout,
the control API and page, faults, the users file, and `sim monosign` as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest

from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState, PushState
from gateway.sim.monosign_users import UsersFileError, demo_users, load_users

KEY, SECRET = "sim-app-id", "sim-app-key-secret"
HEADERS = {"MonoSign-AppId": KEY, "MonoSign-AppKey": SECRET, "Content-Type": "application/json"}
LOOKUP = "/api/v1.4/users/by-username"
PUSH = "/api/v1.4/mfa/push"
VERIFY = "/api/v1.4/mfa/verify"
ALICE_SECRET = "PTJNG6OTZXOO4YM3PCW223DK6EIWGZVF"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sim(clock: Clock) -> AsyncIterator[MonosignSimulator]:
    state = MonosignSimState(demo_users(), api_key=KEY, api_secret=SECRET, push_ttl=30, lock_after=3,
                             lock_seconds=120, clock=clock)
    async with MonosignSimulator(state) as simulator:
        yield simulator


@pytest.fixture
async def http(sim: MonosignSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sim.url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, headers=HEADERS if headers is None else headers, **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def user_id(http: aiohttp.ClientSession, name: str) -> str:
    status, body = await call(http, "GET", LOOKUP, params={"userName": name})
    assert status == 200, body
    return str(body["Data"]["Id"])


# --- The contract -----------------------------------------------------------------------------------
async def test_lookup_answers_the_envelope(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", LOOKUP, params={"userName": "alice"})
    assert status == 200
    assert body["Success"] is True
    assert body["Code"] == 1
    assert set(body) == {"Success", "Code", "Message", "InternalMessage", "Data"}
    assert body["Data"]["UserName"] == "alice"
    assert body["Data"]["Email"] == "alice@corp.example"
    assert body["Data"]["MfaMethods"] == ["Push", "Totp"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"MonoSign-AppId": KEY}, 401),
        ({"MonoSign-AppId": KEY, "MonoSign-AppKey": "wrong"}, 401),
        ({"MonoSign-AppId": "wrong", "MonoSign-AppKey": SECRET}, 401),
        ({"monosign-appid": KEY, "MONOSIGN-APPKEY": SECRET}, 200),  # header names are case-insensitive
    ],
)
async def test_key_pair_is_checked(http: aiohttp.ClientSession, headers: dict[str, str], expected: int) -> None:
    status, body = await call(http, "GET", LOOKUP, headers=headers, params={"userName": "alice"})
    assert status == expected
    if expected == 401:
        assert (body["Success"], body["Code"], body["Message"]) == (False, 12, "Invalid Application Key")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"userName": "nobody"}, 404, 21),
        ({"userName": "carol"}, 403, 22),
        ({"userName": "bob", "source": "corp-ad"}, 200, 1),
        ({"userName": "bob", "source": "CORP"}, 200, 1),
        ({"userName": "bob", "source": "elsewhere"}, 404, 21),
        ({}, 400, 10),
    ],
)
async def test_lookup_statuses(http: aiohttp.ClientSession, params: dict[str, str], status: int, code: int) -> None:
    got_status, body = await call(http, "GET", LOOKUP, params=params)
    assert (got_status, body["Code"], body["Success"]) == (status, code, code == 1)
    if code == 22:
        assert body["Message"] == "Permission Denied"
        assert body["InternalMessage"] == "This user not assigned to this application."


async def test_push_lifecycle(http: aiohttp.ClientSession, sim: MonosignSimulator, clock: Clock) -> None:
    alice = await user_id(http, "alice")
    status, body = await call(http, "POST", PUSH, json={"UserId": alice, "ClientIp": "203.0.113.9",
                                                        "UserAgent": "ua", "Application": "Exchange OWA"})
    assert status == 200
    assert body["Data"]["ExpiresInSeconds"] == 30
    request_id = body["Data"]["RequestId"]
    poll = f"{PUSH}/{request_id}"
    assert (await call(http, "GET", poll))[1]["Data"] == {"Status": "Pending"}
    status, approved = await call(http, "POST", f"/_sim/pushes/{request_id}/approve", headers={})
    assert (status, approved["status"], approved["user"]) == (200, "Approved", "alice")
    assert (await call(http, "GET", poll))[1]["Data"] == {"Status": "Approved"}
    # A push is answered once.
    assert (await call(http, "POST", f"/_sim/pushes/{request_id}/reject", headers={}))[0] == 409

    status, body = await call(http, "POST", PUSH, json={"UserId": alice})
    second = body["Data"]["RequestId"]
    status, rejected = await call(http, "POST", "/_sim/users/CORP%5Calice/push/reject", headers={})
    assert (status, rejected["request_id"], rejected["status"]) == (200, second, "Rejected")

    status, body = await call(http, "POST", PUSH, json={"UserId": alice})
    third = body["Data"]["RequestId"]
    clock.now += 30
    assert (await call(http, "GET", f"{PUSH}/{third}"))[1]["Data"] == {"Status": "Expired"}
    assert (await call(http, "POST", "/_sim/users/alice/push/approve", headers={}))[0] == 404
    clock.now += 3600
    status, body = await call(http, "GET", f"{PUSH}/{third}")
    assert (status, body["Code"]) == (404, 33)


async def test_push_number_matching(http: aiohttp.ClientSession, sim: MonosignSimulator) -> None:
    alice = await user_id(http, "alice")
    for bad in ("7", "123", "4a", 42, "٤٢"):
        status, body = await call(http, "POST", PUSH, json={"UserId": alice, "NumberChallenge": bad})
        assert (status, body["Code"]) == (400, 10), bad
    status, body = await call(http, "POST", PUSH, json={"UserId": alice, "NumberChallenge": "42"})
    request_id = body["Data"]["RequestId"]
    assert sim.state.pushes[request_id].number_challenge == "42"
    # Approving needs the number: none changes nothing; it may be a form field or JSON.
    status, answer = await call(http, "POST", f"/_sim/pushes/{request_id}/approve", headers={})
    assert status == 422
    assert "number" in answer["error"]
    assert sim.state.pushes[request_id].status is PushState.PENDING
    status, answer = await call(http, "POST", f"/_sim/pushes/{request_id}/approve", headers={}, json={"number": "42"})
    assert (status, answer["status"], answer["number_matching"]) == (200, "Approved", True)
    # A wrong number rejects the push (the user picked a number they were not shown).
    status, body = await call(http, "POST", PUSH, json={"UserId": alice, "NumberChallenge": "07"})
    second = body["Data"]["RequestId"]
    async with http.post(f"/_sim/pushes/{second}/approve", data={"number": "70"}, allow_redirects=False) as response:
        assert response.status == 422
    assert (await call(http, "GET", f"{PUSH}/{second}"))[1]["Data"] == {"Status": "Rejected"}
    # Rejecting needs no number; a push without a challenge is approved without one.
    status, body = await call(http, "POST", PUSH, json={"UserId": alice, "NumberChallenge": "11"})
    assert (await call(http, "POST", "/_sim/users/alice/push/reject", headers={}))[0] == 200
    await call(http, "POST", PUSH, json={"UserId": alice})
    assert (await call(http, "POST", "/_sim/users/alice/push/approve", headers={}))[0] == 200


async def test_page_asks_for_the_number(http: aiohttp.ClientSession) -> None:
    alice = await user_id(http, "alice")
    await call(http, "POST", PUSH, json={"UserId": alice, "NumberChallenge": "42"})
    async with http.get("/_sim/") as response:
        page = await response.text()
    assert 'name=number required' in page
    assert re.search(r"(?<![0-9a-f])42(?![0-9a-f])", page) is None  # asked for, never shown
    assert "http-equiv=refresh" not in page  # a refresh would clear the field being typed in


async def test_push_refused_for_unassigned_unknown_or_without_push(http: aiohttp.ClientSession,
                                                                   sim: MonosignSimulator) -> None:
    carol = next(user.id for user in sim.state.users.values() if user.user_name == "carol")
    bob = await user_id(http, "bob")
    assert (await call(http, "POST", PUSH, json={"UserId": carol}))[1]["Code"] == 22
    assert (await call(http, "POST", PUSH, json={"UserId": "no-such-id"}))[1]["Code"] == 21
    status, body = await call(http, "POST", PUSH, json={"UserId": bob})
    assert (status, body["Code"]) == (400, 40)
    status, body = await call(http, "POST", PUSH, data=b"not json")
    assert (status, body["Code"]) == (400, 10)


async def test_auto_approve_after_delay(http: aiohttp.ClientSession, clock: Clock) -> None:
    _, setting = await call(http, "POST", "/_sim/auto-approve", headers={}, json={"enabled": True, "delay": 3})
    assert setting == {"enabled": True, "delay": 3.0}
    dave = await user_id(http, "dave")
    request_id = (await call(http, "POST", PUSH, json={"UserId": dave}))[1]["Data"]["RequestId"]
    assert (await call(http, "GET", f"{PUSH}/{request_id}"))[1]["Data"]["Status"] == "Pending"
    clock.now += 3
    assert (await call(http, "GET", f"{PUSH}/{request_id}"))[1]["Data"]["Status"] == "Approved"
    await call(http, "POST", "/_sim/auto-approve", headers={}, json={"enabled": False})
    request_id = (await call(http, "POST", PUSH, json={"UserId": dave}))[1]["Data"]["RequestId"]
    clock.now += 10
    assert (await call(http, "GET", f"{PUSH}/{request_id}"))[1]["Data"]["Status"] == "Pending"


async def test_totp_verify_replay_and_lockout(http: aiohttp.ClientSession, clock: Clock) -> None:
    bob = await user_id(http, "bob")
    status, current = await call(http, "GET", "/_sim/users/bob/code", headers={})
    totp = pyotp.TOTP("5DHWHK6AVNJ5BHXF7Q5QRFOG3QPDVYMN")
    assert current["code"] == totp.at(int(clock.now))
    assert 0 < current["valid_for"] <= 30
    status, body = await call(http, "POST", VERIFY, json={"UserId": bob, "Code": current["code"]})
    assert (status, body["Success"], body["Code"]) == (200, True, 1)
    status, body = await call(http, "POST", VERIFY, json={"UserId": bob, "Code": current["code"]})
    assert (status, body["Success"], body["Code"]) == (200, False, 31)  # replay
    clock.now += 30
    previous_step = totp.at(int(clock.now) - 30)
    assert (await call(http, "POST", VERIFY, json={"UserId": bob, "Code": previous_step}))[1]["Code"] == 31
    status, body = await call(http, "POST", VERIFY, json={"UserId": bob, "Code": "000000"})
    assert status == 429
    assert body["Code"] == 32
    assert body["Data"] == {"RetryAfterSeconds": 120}
    fresh = totp.at(int(clock.now))
    assert (await call(http, "POST", VERIFY, json={"UserId": bob, "Code": fresh}))[1]["Code"] == 32
    clock.now += 120
    assert (await call(http, "POST", VERIFY, json={"UserId": bob, "Code": totp.at(int(clock.now))}))[1]["Code"] == 1


async def test_a_code_of_the_neighbouring_step_is_accepted(http: aiohttp.ClientSession, clock: Clock) -> None:
    alice = await user_id(http, "alice")
    skewed = pyotp.TOTP(ALICE_SECRET).at(int(clock.now) + 30)  # the phone's clock is a little ahead
    assert (await call(http, "POST", VERIFY, json={"UserId": alice, "Code": skewed}))[1]["Code"] == 1


async def test_unlock(http: aiohttp.ClientSession) -> None:
    bob = await user_id(http, "bob")
    for _ in range(3):
        await call(http, "POST", VERIFY, json={"UserId": bob, "Code": "x"})
    code = (await call(http, "GET", "/_sim/users/bob/code", headers={}))[1]["code"]
    assert (await call(http, "POST", VERIFY, json={"UserId": bob, "Code": code}))[1]["Code"] == 32
    assert (await call(http, "POST", "/_sim/users/bob/unlock", headers={}))[0] == 200
    assert (await call(http, "POST", VERIFY, json={"UserId": bob, "Code": code}))[1]["Code"] == 1


# --- Faults ------------------------------------------------------------------------------------------
async def test_forced_codes_and_clear(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "code22"})
    status, body = await call(http, "GET", LOOKUP, params={"userName": "alice"})
    assert (status, body["Code"]) == (403, 22)
    await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "code12"})
    assert (await call(http, "GET", LOOKUP, params={"userName": "alice"}))[1]["Code"] == 12
    status, faults = await call(http, "DELETE", "/_sim/faults", headers={})
    assert faults == {"mode": "none", "delay": 0.0}
    assert (await call(http, "GET", LOOKUP, params={"userName": "alice"}))[0] == 200


async def test_bad_gateway_page(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "html502"})
    async with http.get(LOOKUP, headers=HEADERS, params={"userName": "alice"}) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert "Bad Gateway" in await response.text()


async def test_slow_answers(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "slow", "delay": 0.3})
    started = time.monotonic()
    assert (await call(http, "GET", LOOKUP, params={"userName": "alice"}))[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await call(http, "GET", "/_sim/faults", headers={})  # the control API is never slowed
    assert time.monotonic() - started < 0.3


async def test_reset_connections(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "reset"})
    with pytest.raises(aiohttp.ClientError):
        await call(http, "GET", LOOKUP, params={"userName": "alice"})


async def test_refuse_closes_the_listener_then_reopens(sim: MonosignSimulator) -> None:
    async with aiohttp.ClientSession(base_url=sim.url) as http:
        status, body = await call(http, "POST", "/_sim/faults", headers={}, json={"mode": "refuse", "duration": 0.5})
        assert (status, body["mode"], body["reopens_in"]) == (200, "refuse", 0.5)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", sim.port)
    await asyncio.sleep(0.8)
    assert sim.listening
    async with aiohttp.ClientSession(base_url=sim.url) as http:
        assert (await call(http, "GET", LOOKUP, params={"userName": "alice"}))[0] == 200
        assert (await call(http, "GET", "/_sim/faults", headers={}))[1]["mode"] == "none"


@pytest.mark.parametrize("body", [{"mode": "sideways"}, {"mode": "slow", "delay": -1}, {"mode": "slow"},
                                  {"mode": "refuse", "duration": 0}, {"mode": "refuse", "duration": 601}])
async def test_bad_fault_requests(http: aiohttp.ClientSession, body: dict[str, Any]) -> None:
    status, answer = await call(http, "POST", "/_sim/faults", headers={}, json=body)
    assert status == 400
    assert "error" in answer


# --- Control API and page ----------------------------------------------------------------------------
async def test_calls_are_listed_without_secrets_or_codes(http: aiohttp.ClientSession) -> None:
    bob = await user_id(http, "bob")
    code = (await call(http, "GET", "/_sim/users/bob/code", headers={}))[1]["code"]
    await call(http, "POST", VERIFY, json={"UserId": bob, "Code": code})
    await call(http, "GET", LOOKUP, headers={"MonoSign-AppId": KEY, "MonoSign-AppKey": "guess"},
               params={"userName": "bob"})
    _, calls = await call(http, "GET", "/_sim/calls", headers={})
    assert [(c["operation"], c["user"], c["http_status"], c["code"], c["authorized"]) for c in calls] == [
        ("lookup_user", "bob", 200, 1, True), ("verify_code", bob, 200, 1, True),
        ("lookup_user", "bob", 401, 12, False),
    ]
    text = json.dumps(calls)
    for secret in (SECRET, "guess", code):
        assert secret not in text
    assert (await call(http, "DELETE", "/_sim/calls", headers={}))[1] == []


async def test_state_and_stats(http: aiohttp.ClientSession) -> None:
    await user_id(http, "alice")
    _, state = await call(http, "GET", "/_sim/state", headers={})
    assert [user["user_name"] for user in state["users"]] == ["alice", "bob", "carol", "dave"]
    assert [user["assigned"] for user in state["users"]] == [True, True, False, True]
    assert all(len(user["code"]) == 6 for user in state["users"])
    assert state["auto_approve"] == {"enabled": False, "delay": 2.0}
    _, stats = await call(http, "GET", "/_sim/stats", headers={})
    assert stats["max_in_flight"] == 1
    assert stats["max_connections"] >= 1
    assert (await call(http, "GET", "/_sim/users/nobody/code", headers={}))[0] == 404


async def test_page_lists_users_codes_and_pushes_with_buttons(http: aiohttp.ClientSession,
                                                              sim: MonosignSimulator) -> None:
    alice = await user_id(http, "alice")
    request_id = (await call(http, "POST", PUSH, json={"UserId": alice, "ClientIp": "198.51.100.7"}))[1]["Data"][
        "RequestId"]
    async with http.get("/_sim/") as response:
        page = await response.text()
        assert response.status == 200
        assert response.content_type == "text/html"
    assert 'http-equiv=refresh' in page
    assert "CORP\\alice" in page
    assert "NOT assigned" in page
    assert sim.state.current_code("bob")[0] in page
    assert "198.51.100.7" in page
    assert f"/_sim/pushes/{request_id}/approve" in page
    async with http.post(f"/_sim/pushes/{request_id}/approve", data={}, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/_sim/"
    assert sim.state.pushes[request_id].status is PushState.APPROVED


async def test_page_escapes_what_it_shows(clock: Clock) -> None:
    from gateway.sim.monosign_users import SimUser

    user = SimUser(id="1", user_name="<script>x</script>", email="e@x", display_name="d", domain="D",
                   source="s", mfa_methods=("Push",), assigned=True, totp_secret=ALICE_SECRET)
    state = MonosignSimState([user], api_key=KEY, api_secret=SECRET, clock=clock)
    async with MonosignSimulator(state) as simulator, aiohttp.ClientSession(base_url=simulator.url) as http, \
            http.get("/_sim/") as response:
        page = await response.text()
    assert "<script>x" not in page
    assert "&lt;script&gt;" in page


# --- Users file --------------------------------------------------------------------------------------
def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": [
        {"user_name": "erin", "mfa_methods": ["Totp"], "assigned": False, "totp_secret": ALICE_SECRET},
        {"user_name": "frank", "email": "frank@other.example", "domain": "OTHER", "id": "u-2"},
    ]}))
    erin, frank = load_users(path)
    assert (erin.email, erin.domain, erin.mfa_methods, erin.assigned) == ("erin@corp.example", "CORP", ("Totp",), False)
    assert frank.answers_to("OTHER\\Frank")
    assert frank.answers_to("frank@other.example")
    assert frank.id == "u-2"
    assert frank.mfa_methods == ("Push", "Totp")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"users": []}', "at least one user"),
        ('{"users": [{"email": "x@y"}]}', "users[0].user_name"),
        ('{"users": [{"user_name": "a", "mfa_methods": ["Sms"]}]}', "users[0].mfa_methods"),
        ('{"users": [{"user_name": "a", "assigned": "yes"}]}', "users[0].assigned"),
        ('{"users": [{"user_name": "a", "totp_secret": "not base32 !"}]}', "users[0].totp_secret"),
        ('{"users": [{"user_name": "a"}, {"user_name": "A"}]}', "appears twice"),
    ],
)
def test_bad_users_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(UsersFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_users(path)


# --- The command line --------------------------------------------------------------------------------
def test_cli_serves_the_contract(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MONOSIGN_API_KEY", None)
    env.pop("MONOSIGN_API_SECRET", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", "monosign", "--listen", "127.0.0.1:0", "--api-key", KEY,
         "--api-secret", SECRET, "--auto-approve", "--auto-approve-delay", "0", "--push-ttl", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Monosign simulator listening on http://127.0.0.1:"), first
        url = first.split()[4]
        users = [process.stdout.readline() for _ in range(4)]
        assert "  CORP\\carol <carol@corp.example>: Push, Totp; NOT assigned\n" in users

        async def exercise() -> None:
            async with aiohttp.ClientSession(base_url=url) as http:
                alice = await user_id(http, "alice")
                _, body = await call(http, "POST", PUSH, json={"UserId": alice})
                assert body["Data"]["ExpiresInSeconds"] == 5
                poll = f"{PUSH}/{body['Data']['RequestId']}"
                assert (await call(http, "GET", poll))[1]["Data"]["Status"] == "Approved"

        asyncio.run(exercise())
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err


def test_cli_rejects_a_bad_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("[]")
    result = subprocess.run([sys.executable, "-m", "gateway", "sim", "monosign", "--users", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "at least one user" in result.stderr
