"""The Monosign API client: one pooled httpx client per process, typed results, one error tree.

Every call goes through `_call`: circuit breaker, total timeout, one retry on a connection error for
GETs, envelope parsing on every HTTP status, one structured log line. The API secret lives only in
the pooled client's default headers; one-time codes only in the request body. Neither is logged.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from gateway import __version__
from gateway.monosign import inputs
from gateway.monosign.breaker import BreakerState, CircuitBreaker
from gateway.monosign.contract import HEADER_APP_ID, HEADER_APP_KEY, PUSH_APPLICATION, ApiPaths, ResultCodes
from gateway.monosign.envelope import (
    Envelope,
    error_for,
    parse_envelope,
    push_request_from_data,
    push_status_from_data,
    user_from_data,
)
from gateway.monosign.errors import (
    CircuitOpen,
    ErrorPage,
    InputRefused,
    InvalidApplicationKey,
    InvalidCode,
    MonosignError,
    MonosignUnreachable,
    PushUnknown,
    UnexpectedResponse,
    UserLocked,
    UserNotAssigned,
    UserNotFound,
)
from gateway.monosign.models import MonosignUser, PushRequest, PushStatus
from gateway.observability.logging import get_logger, request_id_var
from gateway.observability.readiness import CheckOutcome
from gateway.policy.user_agent import ClientDevice

_log = get_logger("gateway.monosign")

T = TypeVar("T")


def _no_data(envelope: Envelope) -> None:
    """verify_code's success carries no Data worth reading."""

# A Monosign envelope is small; anything bigger is a page from something else, read no further.
MAX_BODY_BYTES = 256 * 1024

# The outcome names used in logs and metrics.
OUTCOMES: dict[type[MonosignError], str] = {
    CircuitOpen: "circuit_open",
    MonosignUnreachable: "unreachable",
    InvalidApplicationKey: "invalid_application_key",
    UserNotFound: "user_not_found",
    UserNotAssigned: "user_not_assigned",
    InvalidCode: "invalid_code",
    UserLocked: "locked",
    PushUnknown: "push_unknown",
    UnexpectedResponse: "unexpected_response",
}
# Failures an operator has to act on are errors; the users' own mistakes are not.
_OPERATOR_FAILURES = (MonosignUnreachable, InvalidApplicationKey, UnexpectedResponse)
_USER_FAILURES = (InvalidCode, PushUnknown)


def outcome_of(error: MonosignError | None) -> str:
    if error is None:
        return "ok"
    for kind in type(error).__mro__:
        if kind in OUTCOMES:
            return OUTCOMES[kind]
    return "error"


def describe_transport_error(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for a failed connection, from the innermost cause an operator can act on."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return "tls_certificate", f"TLS certificate not accepted: {error.verify_message or error.reason}"
        if isinstance(error, ssl.SSLError):
            return "tls", f"TLS handshake failed: {error.reason or error}"
        if isinstance(error, socket.gaierror):
            return "dns", f"the host name does not resolve ({error.strerror or error})"
        if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == errno.ECONNREFUSED:
            return "refused", "connection refused"
        if isinstance(error, ConnectionResetError):
            return "reset", "connection reset"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "reset", "the connection closed without an answer"
    text = str(exc).strip()
    return "connect", text[:200] if text else type(exc).__name__


@dataclass(slots=True)
class CallStats:
    """Counters read by the metrics collector (gateway.monosign.metrics)."""

    calls: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency_sum: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    latency_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class MonosignClient:
    """Async Monosign client. Create one per process (`gateway.assembly.monosign_client(settings)`),
    share it, `aclose()` it."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        paths: ApiPaths | None = None,
        codes: ResultCodes | None = None,
        user_source: str | None = None,
        connect_timeout: float = 3.0,
        timeout: float = 10.0,
        max_connections: int = 20,
        verify: ssl.SSLContext | bool = True,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.paths = paths or ApiPaths()
        self.codes = codes or ResultCodes()
        self.user_source = user_source or None
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker(threshold=5, cooldown=30.0)
        self.stats = CallStats()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                HEADER_APP_ID: api_key,
                HEADER_APP_KEY: api_secret,
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"monosign-gateway/{__version__}",
            },
            # Per phase; `timeout` also bounds the whole call (retry included) in `_send`.
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MonosignClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- Breaker state, for /readyz and metrics (never calls Monosign) -----------------------------
    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def readiness(self) -> tuple[bool, str]:
        """(ready, reason) from the breaker alone.

        Not ready only while the breaker is open and cooling down. Once the cooldown is over the
        replica reports ready again, so that traffic comes back and a real call can probe: a
        readiness that waited for a probe would keep the replica out of rotation for ever.
        """
        state = self.breaker.state
        if state is BreakerState.OPEN:
            retry_in = self.breaker.retry_in()
            if retry_in > 0:
                return False, (f"monosign circuit open after {self.breaker.consecutive_failures} consecutive "
                               f"failures; next probe in {retry_in:.0f}s")
            return True, "monosign circuit open, cooldown over: the next call probes"
        if state is BreakerState.HALF_OPEN:
            return True, "monosign circuit half-open: a probe call is in flight"
        return True, "monosign circuit closed"

    async def readiness_check(self) -> CheckOutcome:
        """`readiness()` as a gateway.observability.readiness check, with the breaker's state."""
        ready, reason = await self.readiness()
        return CheckOutcome(problem=None if ready else reason, state=self.breaker.state.value)

    # --- Operations --------------------------------------------------------------------------------
    # Every operation checks its inputs (gateway.monosign.inputs) before anything is sent: a value
    # outside its grammar raises InputRefused, with no call made and the breaker untouched.
    async def lookup_user(self, username: str) -> MonosignUser:
        """Monosign's user for a user name ("by-username"). Raises UserNotFound, UserNotAssigned, ..."""
        params = {"userName": inputs.user_name(username)}
        if self.user_source:
            params["source"] = self.user_source
        return await self._call("lookup_user", "GET", self.paths.user_lookup, user_from_data,
                                user=username, params=params)

    async def start_push(self, user_id: str, client_ip: str, device: ClientDevice, *,
                         number_challenge: str | None = None, application: str = PUSH_APPLICATION) -> PushRequest:
        """Ask Monosign to push a sign-in request to the user's app.

        `device` is the browser as gateway.policy.user_agent names it, never the raw User-Agent: the
        user decides on what the push shows. `number_challenge` (two digits, when number matching is
        on) is the number the gateway's page shows and the app asks for (an [ours] field)."""
        address = inputs.client_address(client_ip)
        context: dict[str, str] = {
            "App": inputs.context_text("application", application),
            "Browser": inputs.context_text("browser", device.browser),
            "Os": inputs.context_text("operating system", device.os),
            "ClientIp": address,
        }
        body: dict[str, Any] = {"UserId": inputs.identifier("user id", user_id), "ClientIp": address,
                                "UserAgent": device.describe(), "Application": application, "Context": context}
        if number_challenge is not None:
            body["NumberChallenge"] = inputs.number_challenge(number_challenge)
        return await self._call("start_push", "POST", self.paths.push_start, push_request_from_data,
                                user=user_id, json_body=body)

    async def push_status(self, request_id: str) -> PushStatus:
        path = self.paths.push_status.replace("{request_id}",
                                              quote(inputs.identifier("push request id", request_id), safe=""))
        return await self._call("push_status", "GET", path, push_status_from_data,
                                user=None, push_request_id=request_id)

    async def verify_code(self, user_id: str, code: str) -> None:
        """Returns when Monosign accepts the one-time code; raises InvalidCode, UserLocked, ..."""
        body = {"UserId": inputs.identifier("user id", user_id), "Code": inputs.one_time_code(code)}
        await self._call("verify_code", "POST", self.paths.verify, _no_data, user=user_id, json_body=body)

    # --- Internals ---------------------------------------------------------------------------------
    async def _call(self, operation: str, method: str, path: str, reader: Callable[[Envelope], T], *,
                    user: str | None, params: Mapping[str, str] | None = None,
                    json_body: Mapping[str, Any] | None = None, push_request_id: str | None = None) -> T:
        extra = {"push_request_id": push_request_id} if push_request_id else {}
        if not self.breaker.allow():
            error: MonosignError = CircuitOpen(
                f"calls to Monosign are paused for {self.breaker.retry_in():.0f}s more after repeated failures",
                retry_in=self.breaker.retry_in(),
            )
            self._log_call(operation, user, 0, None, 0.0, error, **extra)
            raise error
        started = time.perf_counter()
        try:
            envelope = await self._send(method, path, params=params, json_body=json_body)
        except MonosignUnreachable as exc:
            # No HTTP answer at all (connection failed, timed out): the only thing that counts
            # against Monosign's availability, because the only one a caller's input cannot cause.
            self.breaker.record_failure()
            self._log_call(operation, user, exc.http_status, None,
                           time.perf_counter() - started, exc, **extra)
            raise
        except UnexpectedResponse as exc:
            # An answer, however odd (an HTML 500, garbage JSON): whoever answered is reachable.
            # It fails closed, and must not open the breaker (GATEWAY_FAIL_MODE=open would then let
            # in whoever can make Monosign answer oddly).
            self.breaker.record_success()
            self._log_call(operation, user, exc.http_status, None,
                           time.perf_counter() - started, exc, **extra)
            raise
        except BaseException:
            self.breaker.release()
            raise
        # An envelope, even a "no", proves Monosign is up.
        self.breaker.record_success()
        latency = time.perf_counter() - started
        failure = error_for(envelope, self.codes)
        if failure is None:
            try:
                result = reader(envelope)
            except UnexpectedResponse as exc:
                failure = exc
        self._log_call(operation, user, envelope.http_status, envelope.code, latency, failure, **extra)
        if failure is not None:
            raise failure
        return result

    async def _send(self, method: str, path: str, *, params: Mapping[str, str] | None,
                    json_body: Mapping[str, Any] | None) -> Envelope:
        # A GET may be retried once after a connection error: nothing happened on Monosign's side.
        attempts = 2 if method == "GET" else 1
        # The status line of an answer once it has arrived: from then on Monosign has answered, and a
        # body that is cut off, stalls or breaks its framing is an odd answer (fail closed, breaker
        # closed), never "unreachable" (which GATEWAY_FAIL_MODE=open lets through).
        answered: list[int] = []
        try:
            async with asyncio.timeout(self.timeout):
                for attempt in range(1, attempts + 1):
                    try:
                        return await self._exchange(method, path, params=params, json_body=json_body,
                                                    answered=answered)
                    except httpx.TimeoutException as exc:
                        _raise_if_answered(answered, "stalled")
                        reason, detail = describe_transport_error(exc)
                        raise MonosignUnreachable(detail, reason=reason) from None
                    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                        _raise_if_answered(answered, "was cut off or broke its framing")
                        if attempt < attempts:
                            continue
                        reason, detail = describe_transport_error(exc)
                        raise MonosignUnreachable(detail, reason=reason) from None
                    except httpx.LocalProtocolError:
                        # Our own request could not be written as HTTP: something in it, not
                        # Monosign's availability (never "unreachable", never fail-open).
                        raise InputRefused("request", "cannot be sent as HTTP") from None
                    except httpx.TransportError as exc:
                        _raise_if_answered(answered, "was cut off")
                        reason, detail = describe_transport_error(exc)
                        raise MonosignUnreachable(detail, reason=reason) from None
        except TimeoutError:
            _raise_if_answered(answered, f"did not end within MONOSIGN_TIMEOUT ({self.timeout:g}s)")
            raise MonosignUnreachable(f"no answer within MONOSIGN_TIMEOUT ({self.timeout:g}s)",
                                      reason="timeout") from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    async def _exchange(self, method: str, path: str, *, params: Mapping[str, str] | None,
                        json_body: Mapping[str, Any] | None, answered: list[int]) -> Envelope:
        request = self._http.build_request(method, path, params=params, json=json_body)
        response = await self._http.send(request, stream=True)
        answered.append(response.status_code)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BODY_BYTES:
                    if response.status_code >= 500:
                        raise ErrorPage(f"HTTP {response.status_code} with a large non-Monosign body",
                                        http_status=response.status_code)
                    raise UnexpectedResponse(f"HTTP {response.status_code}: body larger than {MAX_BODY_BYTES} bytes",
                                             http_status=response.status_code)
        finally:
            await response.aclose()
        return parse_envelope(response.status_code, response.headers.get("content-type"), bytes(body),
                              response.headers.get("retry-after"))

    def _log_call(self, operation: str, user: str | None, http_status: int, code: int | None, latency: float,
                  error: MonosignError | None, **extra: Any) -> None:
        outcome = outcome_of(error)
        self.stats.calls[(operation, outcome)] += 1
        self.stats.latency_sum[operation] += latency
        self.stats.latency_count[operation] += 1
        # Never a secret, a one-time code or a password here: only who, what, and how it went.
        fields: dict[str, Any] = {
            "operation": operation,
            "user": user,
            "http_status": http_status,
            "monosign_code": code,
            "latency_ms": round(latency * 1000, 1),
            "outcome": outcome,
            "request_id": request_id_var.get(),
            **extra,
        }
        if error is None:
            _log.info("monosign_call", **fields)
            return
        fields["detail"] = error.detail
        if error.message:
            fields["monosign_message"] = error.message
        if error.internal_message:
            fields["monosign_internal_message"] = error.internal_message
        if isinstance(error, UserLocked) and error.retry_after is not None:
            fields["retry_after"] = error.retry_after
        if isinstance(error, _USER_FAILURES):
            _log.info("monosign_call", **fields)
        elif isinstance(error, _OPERATOR_FAILURES):
            fields["hint"] = error.operator_hint
            if isinstance(error, MonosignUnreachable):
                fields["monosign_url"] = self.base_url
            _log.error("monosign_call", **fields)
        else:
            fields["hint"] = error.operator_hint
            _log.warning("monosign_call", **fields)


def _raise_if_answered(answered: list[int], what: str) -> None:
    """An answer whose status line arrived is an answer, however its body ends (see `_send`)."""
    if answered:
        raise UnexpectedResponse(f"HTTP {answered[-1]}: the answer's body {what}",
                                 http_status=answered[-1]) from None
