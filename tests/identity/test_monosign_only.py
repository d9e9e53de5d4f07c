"""The `monosign` first factor: the typed name only, and only with number matching and rate limits."""

from __future__ import annotations

import pytest

from gateway.identity import Failure, FailureKind, FirstFactor, Identity
from gateway.identity.monosign_only import MonosignOnlyFirstFactor, monosign_only_problems


async def test_the_typed_name_is_validated_and_returned() -> None:
    backend = MonosignOnlyFirstFactor()
    assert isinstance(backend, FirstFactor)
    assert await backend.authenticate("  CORP\\alice ", "") == Identity("CORP\\alice", None, None, (), None)
    for typed in ("", "a\x00", "ａｌｉｃｅ", "a" * 300):
        outcome = await backend.authenticate(typed, "")
        assert isinstance(outcome, Failure)
        assert outcome.kind is FailureKind.BAD_CREDENTIALS
    assert isinstance(await MonosignOnlyFirstFactor(allow_non_ascii=True).authenticate("Jürgen", ""), Identity)


@pytest.mark.parametrize(
    ("number_matching", "rate_limited", "problems"),
    [
        (True, True, []),
        (False, True, ["number matching"]),
        (True, False, ["rate limits"]),
        (False, False, ["number matching", "rate limits"]),
    ],
)
def test_allowed_only_with_number_matching_and_rate_limits(
    number_matching: bool, rate_limited: bool, problems: list[str]
) -> None:
    found = monosign_only_problems(push_number_matching=number_matching, push_rate_limited=rate_limited)
    assert len(found) == len(problems)
    for message, expected in zip(found, problems, strict=True):
        assert expected in message
