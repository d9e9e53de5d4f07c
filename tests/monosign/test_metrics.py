"""The client's breaker state and call counters, as Prometheus sees them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.monosign import MonosignUnreachable, UserNotFound
from gateway.monosign.metrics import register_monosign_metrics
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import FaultMode
from tests.monosign.conftest import ClientFactory


async def test_breaker_state_and_calls_exported(make_client: ClientFactory, sim: MonosignSimulator) -> None:
    client = make_client()
    registry = CollectorRegistry()
    register_monosign_metrics(client, registry)
    assert registry.get_sample_value("gateway_monosign_breaker_state") == 0
    await client.lookup_user("alice")
    with pytest.raises(UserNotFound):
        await client.lookup_user("nobody")
    await sim.set_faults(FaultMode.REFUSE)
    for _ in range(3):
        with pytest.raises(MonosignUnreachable):
            await client.lookup_user("alice")
    assert registry.get_sample_value("gateway_monosign_breaker_state") == 2
    def calls(outcome: str) -> float | None:
        return registry.get_sample_value("gateway_monosign_calls_total",
                                         {"operation": "lookup_user", "outcome": outcome})
    assert (calls("ok"), calls("user_not_found"), calls("unreachable")) == (1, 1, 3)
    assert registry.get_sample_value("gateway_monosign_call_seconds_total", {"operation": "lookup_user"}) > 0
    assert b"gateway_monosign_breaker_state 2.0" in generate_latest(registry)
