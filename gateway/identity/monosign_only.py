"""The `monosign` first factor: no password; the typed name goes to Monosign, whose push is the proof.

Without a password, anyone can type anyone's name and make Monosign push to that person's phone
("MFA fatigue": push until the owner taps Approve). So this backend is allowed only when pushes use
number matching (the owner must type the number shown on the sign-in page, which only the person
at that page sees) and pushes are rate-limited per user and per client; `monosign_only_problems`
is the check the portal profile's configuration runs.
"""

from __future__ import annotations

from gateway.identity.base import Failure, FailureKind, Identity, Outcome
from gateway.identity.usernames import InvalidUserName, validate_username

__all__ = ["MonosignOnlyFirstFactor", "monosign_only_problems"]


class MonosignOnlyFirstFactor:
    """Validates the typed name and returns it (trimmed) for the Monosign lookup; ignores `password`.

    The Identity is provisional: its `username` is what was typed, and the profile takes the canonical
    name, e-mail and display name from Monosign's user record after the push was approved."""

    def __init__(self, *, allow_non_ascii: bool = False) -> None:
        self._allow_non_ascii = allow_non_ascii

    async def authenticate(self, username: str, password: str = "") -> Outcome:
        try:
            name = validate_username(username, allow_non_ascii=self._allow_non_ascii)
        except InvalidUserName as exc:
            return Failure(FailureKind.BAD_CREDENTIALS, f"username refused: {exc}")
        return Identity(username=name.typed, display_name=None, email=None, groups=(), directory_id=None)

    async def aclose(self) -> None:
        return None


def monosign_only_problems(*, push_number_matching: bool, push_rate_limited: bool) -> list[str]:
    """Why the `monosign` first factor may not be used with these push settings (empty: it may)."""
    problems = []
    if not push_number_matching:
        problems.append("the monosign first factor needs push number matching on (set "
                        "GATEWAY_MFA_NUMBER_MATCHING=true): without a password, anyone could send pushes "
                        "to any user until one is approved by mistake")
    if not push_rate_limited:
        problems.append("the monosign first factor needs push rate limits (per user and per client) on "
                        "(GATEWAY_MFA_MAX_PUSHES)")
    return problems
