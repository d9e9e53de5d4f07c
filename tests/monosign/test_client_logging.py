"""One structured event per call, with what an operator needs, and never a secret or a one-time code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway.monosign import InvalidApplicationKey, InvalidCode, MonosignUnreachable, UserNotAssigned
from gateway.monosign.client import MonosignClient
from gateway.observability.logging import request_id_var
from gateway.policy.user_agent import ClientDevice
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import FaultMode
from tests.monosign.conftest import API_SECRET, ClientFactory

ReadLogs = Callable[[], list[dict[str, Any]]]


def calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event.get("event") == "monosign_call"]


async def test_one_event_per_call_with_the_operator_fields(client: MonosignClient, sim: MonosignSimulator,
                                                           json_logs: ReadLogs) -> None:
    token = request_id_var.set("req-42")
    try:
        user = await client.lookup_user("CORP\\alice")
        with pytest.raises(UserNotAssigned):
            await client.lookup_user("carol")
    finally:
        request_id_var.reset(token)
    ok, denied = calls(json_logs())
    assert ok["operation"] == "lookup_user"
    assert ok["user"] == "CORP\\alice"
    assert (ok["http_status"], ok["monosign_code"], ok["outcome"], ok["request_id"]) == (200, 1, "ok", "req-42")
    assert isinstance(ok["latency_ms"], float)
    assert ok["level"] == "info"
    assert (denied["http_status"], denied["monosign_code"], denied["outcome"]) == (403, 22, "user_not_assigned")
    assert denied["level"] == "warning"
    assert "assign the user" in denied["hint"]
    assert denied["monosign_internal_message"] == "This user not assigned to this application."
    assert user.user_name == "alice"


async def test_unreachable_logs_status_0_and_what_to_do(make_client: ClientFactory, sim: MonosignSimulator,
                                                        json_logs: ReadLogs) -> None:
    client = make_client()
    await sim.set_faults(FaultMode.REFUSE)
    with pytest.raises(MonosignUnreachable):
        await client.lookup_user("alice")
    [event] = calls(json_logs())
    assert (event["http_status"], event["monosign_code"], event["outcome"]) == (0, None, "unreachable")
    assert event["level"] == "error"
    assert event["monosign_url"] == sim.url
    assert "cannot reach the Monosign API" in event["hint"]


async def test_code_12_names_the_settings(make_client: ClientFactory, json_logs: ReadLogs) -> None:
    with pytest.raises(InvalidApplicationKey):
        await make_client(api_secret="wrong-secret-value-0000").lookup_user("alice")
    [event] = calls(json_logs())
    assert event["level"] == "error"
    assert "MONOSIGN_API_KEY / MONOSIGN_API_SECRET" in event["hint"]


async def test_secrets_and_codes_never_logged(make_client: ClientFactory, sim: MonosignSimulator,
                                              json_logs: ReadLogs) -> None:
    client = make_client()
    user = await client.lookup_user("bob")
    right, _ = sim.state.current_code("bob")
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    with pytest.raises(InvalidCode):
        await client.verify_code(user.id, wrong)
    await client.verify_code(user.id, right)
    push_user = await client.lookup_user("alice")
    await client.start_push(push_user.id, "203.0.113.9", ClientDevice("Chrome", "Windows"))
    wrong_secret = "another-secret-never-logged-7"
    with pytest.raises(InvalidApplicationKey):
        await make_client(api_secret=wrong_secret).verify_code(user.id, right)
    events = json_logs()
    assert len(calls(events)) == 6
    # httpx and httpcore stay at warning even in debug mode (their lines name URLs, user names included).
    assert not any(event.get("logger", "").startswith("http") for event in events)
    for event in events:
        for key, value in event.items():
            if key == "timestamp":
                continue
            text = json.dumps(value)
            for secret in (API_SECRET, wrong_secret, right, wrong):
                assert secret not in text, f"{secret!r} leaked in {key}: {event}"


@pytest.mark.parametrize("user", ["CORP\\alice", "alice@corp.example", "ALICE"])
async def test_the_http_library_does_not_log_the_url_and_its_user_name(
    client: MonosignClient, json_logs: ReadLogs, user: str,
) -> None:
    # httpx writes `GET .../by-username?userName=<typed name>` at info; only our own event may name the
    # user (the access log records query parameter names only, for the same reason).
    await client.lookup_user(user)
    events = json_logs()  # at debug level: the most the product ever writes
    assert [event["user"] for event in calls(events)] == [user]
    others = [event for event in events if event.get("event") != "monosign_call"]
    assert not [event for event in others if event.get("logger", "").startswith(("httpx", "httpcore"))]
    assert not [event for event in others if user.lower() in json.dumps(event).lower()]
    assert not [event for event in events if "username=" in json.dumps(event).lower()]
