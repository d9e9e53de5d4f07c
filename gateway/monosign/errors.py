"""One exception tree for every way a Monosign call can fail.

Each error carries `operator_hint`: a sentence an operator can act on, in the spirit of the vendor
guide's troubleshooting section. Users never see it; the MFA pages show their own wording.

    MonosignError
    ├── MonosignUnreachable        no HTTP answer at all: DNS, refused, reset, TLS, timeout
    │   └── CircuitOpen            the breaker is open: no call was made
    ├── InputRefused               an input does not fit the contract's grammar: never sent
    ├── InvalidApplicationKey      code 12: the key pair is wrong (a configuration error)
    ├── UserNotFound               code 21
    ├── UserNotAssigned            code 22: the user is not assigned to the application
    ├── InvalidCode                code 31: wrong one-time code
    ├── UserLocked                 code 32: too many attempts; `retry_after` seconds when known
    ├── PushUnknown                code 33: push request unknown or expired
    └── UnexpectedResponse         not the contract: no envelope, missing fields, an unknown code
        └── ErrorPage              a 5xx without the envelope (a proxy's or Monosign's error page)

Only MonosignUnreachable (a transport failure) may count as "Monosign is down" for the circuit
breaker and `GATEWAY_FAIL_MODE=open`: an attacker can shape inputs that reach Monosign, but not
whether its host answers. Any HTTP answer, even one the client cannot parse, fails closed.
"""

from __future__ import annotations


class MonosignError(Exception):
    """Base class. `code` is the envelope's `Code` when there was one."""

    code: int | None = None
    operator_hint: str = "see the Monosign call in the log"

    def __init__(self, detail: str, *, code: int | None = None, operator_hint: str | None = None,
                 message: str | None = None, internal_message: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if operator_hint is not None:
            self.operator_hint = operator_hint
        # Monosign's own Message / InternalMessage, for the log (never shown to users).
        self.message = message
        self.internal_message = internal_message


class MonosignUnreachable(MonosignError):
    """No HTTP answer: the connection failed or timed out (never an answer, however odd).

    `reason`: dns, refused, reset, timeout, tls (handshake), tls_certificate (not trusted), connect
    (anything else), circuit_open.
    """

    operator_hint = ("the gateway host cannot reach the Monosign API: check DNS, the firewall and any "
                     "outbound proxy between the gateway and MONOSIGN_API_URL")

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, operator_hint=UNREACHABLE_HINTS.get(reason))
        self.reason = reason
        self.http_status = 0  # nothing answered


# What to do, by the reason the connection failed (the IIS module logged all of these as
# "By-username result is 0").
UNREACHABLE_HINTS: dict[str, str] = {
    "dns": ("the gateway host cannot resolve Monosign's host name: check MONOSIGN_API_URL and the gateway "
            "host's DNS resolver"),
    "refused": ("the gateway host cannot reach the Monosign API (connection refused): check MONOSIGN_API_URL's "
                "port, that the Monosign API runs there, and the firewall"),
    "timeout": ("the gateway host cannot reach the Monosign API in time: a firewall may be dropping the "
                "packets, or an outbound proxy is needed (HTTPS_PROXY); MONOSIGN_CONNECT_TIMEOUT / "
                "MONOSIGN_TIMEOUT set the wait"),
    "tls_certificate": ("Monosign's TLS certificate is not trusted: set MONOSIGN_CA_FILE to the CA bundle that "
                        "signed it, and use a host name in MONOSIGN_API_URL that the certificate names"),
    "tls": ("the TLS handshake with Monosign failed: check that Monosign speaks TLS at this address "
            "(https:// vs http:// in MONOSIGN_API_URL)"),
    "reset": ("the connection to Monosign closed without an answer: check https:// vs http:// in "
              "MONOSIGN_API_URL, and any proxy in between"),
}


class InputRefused(MonosignError):
    """A value for Monosign (user name, user id, address, ...) outside the contract's grammar.

    Raised before any call: the value is never sent, and the breaker is not touched. `field` names
    the input; the value itself is never in the message (it may be an attacker's probe)."""

    operator_hint = ("a value for Monosign did not fit the expected grammar (docs/monosign-api.md, "
                     "'Inputs'): it was not sent; the user sees a refusal")

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


class CircuitOpen(MonosignUnreachable):
    operator_hint = ("Monosign failed repeatedly, so calls are paused (MONOSIGN_BREAKER_COOLDOWN); "
                     "check the earlier 'unreachable' log lines for the cause")

    def __init__(self, detail: str, *, retry_in: float) -> None:
        super().__init__(detail, reason="circuit_open")
        self.retry_in = retry_in


class InvalidApplicationKey(MonosignError):
    code = 12
    operator_hint = ("Monosign rejected the application key (code 12 Invalid Application Key): check "
                     "MONOSIGN_API_KEY / MONOSIGN_API_SECRET against the application's Rest API access key")


class UserNotFound(MonosignError):
    code = 21
    operator_hint = ("the user does not exist in Monosign: check the user name and, with several user "
                     "sources, MONOSIGN_USER_SOURCE")


class UserNotAssigned(MonosignError):
    code = 22
    operator_hint = ("the user is not assigned to the application (code 22 Permission Denied): assign "
                     "the user or their group to the application in Monosign")


class InvalidCode(MonosignError):
    code = 31
    operator_hint = "the user typed a wrong or stale one-time code"


class UserLocked(MonosignError):
    code = 32
    operator_hint = "Monosign locked the user after too many attempts; it unlocks by itself"

    def __init__(self, detail: str, *, retry_after: float | None = None, message: str | None = None,
                 internal_message: str | None = None) -> None:
        super().__init__(detail, message=message, internal_message=internal_message)
        self.retry_after = retry_after


class PushUnknown(MonosignError):
    code = 33
    operator_hint = "the push request is unknown to Monosign or has expired; start a new one"


class UnexpectedResponse(MonosignError):
    operator_hint = ("Monosign (or something in between) answered outside the contract; see "
                     "docs/monosign-api.md and the MONOSIGN_PATH_* / MONOSIGN_CODE_* settings")

    def __init__(self, detail: str, *, http_status: int, code: int | None = None, message: str | None = None,
                 internal_message: str | None = None) -> None:
        super().__init__(detail, code=code, message=message, internal_message=internal_message)
        self.http_status = http_status


class ErrorPage(UnexpectedResponse):
    """A 5xx without the envelope: a proxy or load balancer answered for Monosign, or Monosign
    failed on this request. An HTTP answer all the same: it fails closed, never fail-open."""

    operator_hint = ("a proxy or load balancer answered instead of Monosign, or Monosign failed on the request: "
                     "check it, and that MONOSIGN_API_URL is the API's base URL")
