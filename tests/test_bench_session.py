"""The session benchmark's pure helpers (bench/session.py); the benchmark itself is run by hand."""

from __future__ import annotations

import pytest

from bench.session import (
    Comparison,
    Measured,
    calls_per_login,
    median_result,
    percentile,
    users_files,
)
from bench.wrk import WrkResult


def result(rate: float, errors: int = 0) -> WrkResult:
    return WrkResult(requests=int(rate * 10), requests_per_second=rate, p50_ms=1.0, p99_ms=2.0, errors=errors)


def test_median_result_is_the_middle_round() -> None:
    rounds = [result(900), result(1100), result(1000)]
    assert median_result(rounds).requests_per_second == 1000


@pytest.mark.parametrize(("with_cookies", "session", "errors", "within"), [
    (1000, 1000, 0, True),
    (1000, 905, 0, True),
    (1000, 899, 0, False),
    (1000, 1200, 0, True),
    (1000, 1000, 3, False),
])
def test_comparison_goal(with_cookies: float, session: float, errors: int, within: bool) -> None:
    comparison = Comparison(10, Measured(result(2000), None), Measured(result(with_cookies), 200.0),
                            Measured(result(session, errors), 220.0))
    assert comparison.ratio == pytest.approx(session / with_cookies)
    assert comparison.ratio_bare == pytest.approx(session / 2000)
    assert comparison.within_goal is within


def test_calls_per_login_by_operation() -> None:
    calls = [{"operation": "lookup_user"}] * 4 + [{"operation": "start_push"}] * 4 + [{"operation": "push_status"}] * 10
    assert calls_per_login(calls, 4) == {"lookup_user": 1.0, "push_status": 2.5, "start_push": 1.0, "total": 4.5}
    assert calls_per_login(calls, 0) == {}


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 1.0), (0.5, 3.0), (0.95, 5.0), (1.0, 5.0)])
def test_percentile(fraction: float, expected: float) -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], fraction) == expected
    assert percentile([], fraction) == 0.0


def test_users_files_match_across_simulators() -> None:
    owa, monosign = users_files(3)
    assert [user["username"] for user in owa["users"]] == ["storm000", "storm001", "storm002"]
    assert [user["user_name"] for user in monosign["users"]] == ["storm000", "storm001", "storm002"]
    assert all(user["mfa_methods"] == ["Push"] for user in monosign["users"])
    assert all(user["password"] == f"{user['username']}-Pass1!" for user in owa["users"])
