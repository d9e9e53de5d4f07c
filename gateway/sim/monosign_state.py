"""The Monosign simulator's behaviour, without HTTP: users, pushes, codes, lockouts, faults, calls.

Each API operation returns a `SimAnswer` (HTTP status + envelope), following docs/monosign-api.md:
code 1 → 200, 12 → 401, 21 → 404, 22 → 403, 31 → 200 with Success false, 32 → 429, 33 → 404.
The clock is injectable so the push lifecycle and lockouts are tested without sleeping.
"""

from __future__ import annotations

import datetime
import hmac
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.monosign.contract import ResultCodes
from gateway.sim.monosign_users import SimUser

# Simulator-only codes for requests outside the contract (the client treats them as unexpected).
CODE_BAD_REQUEST = 10
CODE_METHOD_NOT_ENABLED = 40

# A known push stays answerable (as Expired, Approved, ...) this long after it expired, then is forgotten (33).
PUSH_MEMORY_SECONDS = 300.0
MAX_CALLS_KEPT = 1000


class FaultMode(StrEnum):
    NONE = "none"
    SLOW = "slow"  # answers come after `delay` seconds (a delay can also go with any other mode)
    REFUSE = "refuse"  # the listener is closed: new connections are refused, open ones are cut
    RESET = "reset"  # connections are accepted, then reset without an answer
    HTML_502 = "html502"  # a proxy's 502 page, not the envelope
    HTML_500 = "html500"  # Monosign failing on the request: an HTML 500 page, not the envelope
    GARBAGE = "garbage"  # 200, application/json, but not JSON: an answer the client cannot parse
    CODE_12 = "code12"  # every API call answers Invalid Application Key
    CODE_22 = "code22"  # every API call answers Permission Denied (user not assigned)


class PushState(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    EXPIRED = "Expired"


@dataclass(slots=True)
class Faults:
    mode: FaultMode = FaultMode.NONE
    delay: float = 0.0  # seconds before answering API calls ("slow"), combined with any mode

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "delay": self.delay}


@dataclass(slots=True)
class SimPush:
    request_id: str
    user_id: str
    created: float
    expires_at: float
    client_ip: str
    user_agent: str
    application: str
    status: PushState = PushState.PENDING
    auto_approve_at: float | None = None
    number_challenge: str | None = None  # number matching: what the approver must enter ([ours])


@dataclass(frozen=True, slots=True)
class SimAnswer:
    http_status: int
    success: bool
    code: int
    data: Any = None
    message: str | None = None
    internal_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def envelope(self) -> dict[str, Any]:
        return {"Success": self.success, "Code": self.code, "Message": self.message,
                "InternalMessage": self.internal_message, "Data": self.data}


class NumberMismatch(Exception):
    """An approval without the push's number, or with another one (the push is then rejected)."""


class ControlError(LookupError):
    """A control API request names something that does not exist or cannot change."""


class MonosignSimState:
    def __init__(
        self,
        users: Iterable[SimUser],
        *,
        api_key: str,
        api_secret: str,
        codes: ResultCodes | None = None,
        push_ttl: float = 60.0,
        auto_approve: bool = False,
        auto_approve_delay: float = 2.0,
        lock_after: int = 5,
        lock_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if push_ttl <= 0 or auto_approve_delay < 0 or lock_after < 1 or lock_seconds <= 0:
            raise ValueError("push_ttl and lock_seconds must be > 0, auto_approve_delay >= 0, lock_after >= 1")
        self.users = {user.id: user for user in users}
        self.api_key = api_key
        self.api_secret = api_secret
        self.codes = codes or ResultCodes()
        self.push_ttl = push_ttl
        self.auto_approve = auto_approve
        self.auto_approve_delay = auto_approve_delay
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds
        self.clock = clock
        self.faults = Faults()
        self.pushes: dict[str, SimPush] = {}
        self.failed_codes: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}
        self.last_timecode: dict[str, int] = {}
        self.calls: deque[dict[str, Any]] = deque(maxlen=MAX_CALLS_KEPT)
        self.max_connections_seen = 0
        self.max_in_flight_seen = 0

    # --- Answers ---------------------------------------------------------------------------------
    def ok(self, data: Any = None) -> SimAnswer:
        return SimAnswer(200, True, self.codes.success, data)

    def invalid_key(self) -> SimAnswer:
        return SimAnswer(401, False, self.codes.invalid_application_key, message="Invalid Application Key")

    def not_assigned(self) -> SimAnswer:
        return SimAnswer(403, False, self.codes.user_not_assigned, message="Permission Denied",
                         internal_message="This user not assigned to this application.")

    def not_found(self) -> SimAnswer:
        return SimAnswer(404, False, self.codes.user_not_found, message="User not found")

    def bad_request(self, why: str) -> SimAnswer:
        return SimAnswer(400, False, CODE_BAD_REQUEST, message="Invalid request", internal_message=why)

    # --- Authentication and faults ------------------------------------------------------------------
    def authorized(self, app_id: str | None, app_key: str | None) -> bool:
        # Both compared in constant time, and both always compared.
        id_ok = hmac.compare_digest((app_id or "").encode(), self.api_key.encode())
        key_ok = hmac.compare_digest((app_key or "").encode(), self.api_secret.encode())
        return id_ok and key_ok

    def forced_answer(self) -> SimAnswer | None:
        if self.faults.mode is FaultMode.CODE_12:
            return self.invalid_key()
        if self.faults.mode is FaultMode.CODE_22:
            return self.not_assigned()
        return None

    # --- Users ---------------------------------------------------------------------------------------
    def find_user(self, name: str) -> SimUser | None:
        for user in self.users.values():
            if user.answers_to(name) or user.id == name:
                return user
        return None

    def _usable_user(self, user_id: Any) -> SimUser | SimAnswer:
        if not isinstance(user_id, str) or not user_id:
            return self.bad_request("UserId is required")
        user = self.users.get(user_id)
        if user is None:
            return self.not_found()
        if not user.assigned:
            return self.not_assigned()
        return user

    # --- API operations ------------------------------------------------------------------------------
    def lookup(self, user_name: str | None, source: str | None) -> SimAnswer:
        if not user_name:
            return self.bad_request("userName is required")
        user = next((u for u in self.users.values() if u.answers_to(user_name)), None)
        if user is None or (source and not user.in_source(source)):
            return self.not_found()
        if not user.assigned:
            return self.not_assigned()
        return self.ok(user.as_api_data())

    def start_push(self, body: dict[str, Any]) -> SimAnswer:
        found = self._usable_user(body.get("UserId"))
        if isinstance(found, SimAnswer):
            return found
        if "Push" not in found.mfa_methods:
            return SimAnswer(400, False, CODE_METHOD_NOT_ENABLED, message="Push is not enabled for this user")
        number = body.get("NumberChallenge")
        if number is not None and not (isinstance(number, str) and len(number) == 2 and number.isascii()
                                       and number.isdigit()):
            return self.bad_request("NumberChallenge as two digits")
        now = self.clock()
        push = SimPush(
            request_id=uuid.uuid4().hex,
            user_id=found.id,
            created=now,
            expires_at=now + self.push_ttl,
            client_ip=str(body.get("ClientIp") or ""),
            user_agent=str(body.get("UserAgent") or "")[:300],
            application=str(body.get("Application") or ""),
            auto_approve_at=now + self.auto_approve_delay if self.auto_approve else None,
            number_challenge=number,
        )
        self._forget_old_pushes(now)
        self.pushes[push.request_id] = push
        return self.ok({"RequestId": push.request_id, "ExpiresInSeconds": math.ceil(self.push_ttl)})

    def push_status(self, request_id: str) -> SimAnswer:
        push = self.current_push(request_id)
        if push is None:
            return SimAnswer(404, False, self.codes.push_unknown, message="Push request not found or expired")
        return self.ok({"Status": push.status.value})

    def verify(self, body: dict[str, Any]) -> SimAnswer:
        found = self._usable_user(body.get("UserId"))
        if isinstance(found, SimAnswer):
            return found
        code = body.get("Code")
        if not isinstance(code, str) or not code:
            return self.bad_request("Code is required")
        if "Totp" not in found.mfa_methods:
            return SimAnswer(400, False, CODE_METHOD_NOT_ENABLED, message="Codes are not enabled for this user")
        now = self.clock()
        locked = self._locked_answer(found.id, now)
        if locked is not None:
            return locked
        timecode = self._matching_timecode(found, code, now)
        if timecode is None or timecode <= self.last_timecode.get(found.id, -1):
            # A wrong code, or a right one used before (replay): both count towards the lockout.
            failures = self.failed_codes.get(found.id, 0) + 1
            self.failed_codes[found.id] = failures
            if failures >= self.lock_after:
                self.failed_codes.pop(found.id, None)
                self.locked_until[found.id] = now + self.lock_seconds
                return self._lock_answer(now + self.lock_seconds, now)
            return SimAnswer(200, False, self.codes.invalid_code, message="Invalid code")
        self.last_timecode[found.id] = timecode
        self.failed_codes.pop(found.id, None)
        return self.ok()

    def _locked_answer(self, user_id: str, now: float) -> SimAnswer | None:
        until = self.locked_until.get(user_id)
        if until is None or until <= now:
            self.locked_until.pop(user_id, None)
            return None
        return self._lock_answer(until, now)

    def _lock_answer(self, until: float, now: float) -> SimAnswer:
        wait = max(1, math.ceil(until - now))
        return SimAnswer(429, False, self.codes.locked, {"RetryAfterSeconds": wait},
                         message="Too many attempts; the user is temporarily locked",
                         headers={"Retry-After": str(wait)})

    @staticmethod
    def _matching_timecode(user: SimUser, code: str, now: float) -> int | None:
        """The TOTP time step the code belongs to (this one or a neighbour, for clock skew), if any."""
        totp = user.totp()
        current = totp.timecode(_datetime(now))
        for step in (current - 1, current, current + 1):
            expected = totp.generate_otp(step)
            if hmac.compare_digest(expected.encode(), code.encode()):
                return step
        return None

    # --- Pushes ------------------------------------------------------------------------------------------
    def current_push(self, request_id: str) -> SimPush | None:
        """The push with its status brought up to date (auto-approval, expiry), or None when unknown."""
        push = self.pushes.get(request_id)
        if push is None:
            return None
        now = self.clock()
        if now >= push.expires_at + PUSH_MEMORY_SECONDS:
            del self.pushes[request_id]
            return None
        if push.status is PushState.PENDING:
            if push.auto_approve_at is not None and now >= push.auto_approve_at and now < push.expires_at:
                push.status = PushState.APPROVED
            elif now >= push.expires_at:
                push.status = PushState.EXPIRED
        return push

    def pending_pushes(self) -> list[SimPush]:
        pending = []
        for request_id in list(self.pushes):
            push = self.current_push(request_id)
            if push is not None and push.status is PushState.PENDING:
                pending.append(push)
        return sorted(pending, key=lambda push: push.created)

    def answer_push(self, request_id: str, approve: bool, number: str | None = None) -> SimPush:
        """Approve or reject a pending push. A push with a number challenge is approved only with
        that number (as the app asks for it); a wrong number rejects it, a missing one changes nothing.
        Raises ControlError, NumberMismatch."""
        push = self.current_push(request_id)
        if push is None:
            raise ControlError(f"no push request {request_id!r}")
        if push.status is not PushState.PENDING:
            raise ControlError(f"push request {request_id!r} is already {push.status.value}")
        if approve and push.number_challenge is not None:
            if not number:
                raise NumberMismatch("this push asks for the number shown on the sign-in page")
            if not hmac.compare_digest(number.encode(), push.number_challenge.encode()):
                push.status = PushState.REJECTED
                raise NumberMismatch("wrong number: the push is rejected")
        push.status = PushState.APPROVED if approve else PushState.REJECTED
        return push

    def answer_latest_push(self, user_name: str, approve: bool, number: str | None = None) -> SimPush:
        user = self.find_user(user_name)
        if user is None:
            raise ControlError(f"no user {user_name!r}")
        pending = [push for push in self.pending_pushes() if push.user_id == user.id]
        if not pending:
            raise ControlError(f"no pending push for {user.user_name!r}")
        return self.answer_push(pending[-1].request_id, approve, number)

    def set_auto_approve(self, enabled: bool, delay: float | None = None) -> None:
        self.auto_approve = enabled
        if delay is not None:
            self.auto_approve_delay = delay
        now = self.clock()
        for push in self.pending_pushes():
            push.auto_approve_at = now + self.auto_approve_delay if enabled else None

    def _forget_old_pushes(self, now: float) -> None:
        for request_id in [rid for rid, push in self.pushes.items() if now >= push.expires_at + PUSH_MEMORY_SECONDS]:
            del self.pushes[request_id]

    # --- Control helpers -----------------------------------------------------------------------------------
    def current_code(self, user_name: str) -> tuple[str, int]:
        """(code, seconds it stays current) for a user; for demos and tests."""
        user = self.find_user(user_name)
        if user is None:
            raise ControlError(f"no user {user_name!r}")
        totp = user.totp()
        now = self.clock()
        remaining = totp.interval - int(now) % totp.interval
        return totp.at(_datetime(now)), remaining

    def unlock(self, user_name: str) -> None:
        user = self.find_user(user_name)
        if user is None:
            raise ControlError(f"no user {user_name!r}")
        self.locked_until.pop(user.id, None)
        self.failed_codes.pop(user.id, None)

    def record_call(self, *, method: str, path: str, operation: str, user: str | None, answer: SimAnswer | None,
                    http_status: int, authorized: bool) -> None:
        # What was asked and answered; never the key pair or a one-time code.
        self.calls.append({
            "time": self.clock(), "method": method, "path": path, "operation": operation, "user": user,
            "http_status": http_status, "code": answer.code if answer else None, "authorized": authorized,
        })


def _datetime(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
