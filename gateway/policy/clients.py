"""Who a non-browser Exchange client is, and whether its route class lets it in (pure, sans-IO).

Why: ActiveSync phones and Outlook (EWS, MAPI, RPC, OAB, Autodiscover) never see the MFA page, so
the only controls the gateway has over them are per-class policies: allow, deny, allow only from
some networks, allow only some users. The user comes from the `Authorization` header: Basic carries
`user:password` (the password is dropped here and never leaves this module), an NTLM Type 3
message (raw, or wrapped in SPNEGO under `Negotiate`) carries domain, user and workstation in
clear. Kerberos tickets do not reveal the user to us, so a user allow-list cannot admit them.

The NTLM message is read strictly (`gateway.policy.windows_tokens`): a token the gateway cannot
read by its grammar names nobody, and under a user list it is refused, never forwarded (Exchange
would authenticate whoever its own decoder finds in it). Only two requests may name no user yet:
the anonymous first request and a well-formed NTLM NEGOTIATE (leg 1, bare or in SPNEGO). They are
*challenge only*: the caller forwards them without their body and passes nothing but the
upstream's 401 challenge back, so a client can learn how to authenticate and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

from gateway.config.model import Action
from gateway.policy.addresses import client_address
from gateway.policy.rules import Decision, Identity, RuleRequest, RuleSet, decide_naively
from gateway.policy.users import (
    AmbiguousUserName,
    UserName,
    check_exchange_reading,
    matches_exception,
    parse_username,
)
from gateway.policy.windows_tokens import NtlmMessageType, UnreadableToken, read_windows_token

__all__ = [
    "ActiveSyncDevice",
    "AuthScheme",
    "ClientCredential",
    "ClientPolicy",
    "PolicyDecision",
    "PolicyOutcome",
    "activesync_device",
    "decide",
    "decide_by_rules",
    "is_connection_auth",
    "is_first_leg",
    "offers_connection_auth",
    "parse_authorization",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Authorization values longer than this are not decoded (Kerberos tokens reach tens of KB; an
# NTLM Type 3 is a few hundred bytes, a Basic credential far less).
MAX_DECODED_TOKEN = 64 * 1024
# Device ids and types are client-chosen: keep what is printable, and only so much of it.
MAX_DEVICE_FIELD = 64


class AuthScheme(StrEnum):
    NONE = "none"
    BASIC = "basic"
    NTLM = "ntlm"
    NEGOTIATE = "negotiate"
    BEARER = "bearer"
    OTHER = "other"
    AMBIGUOUS = "ambiguous"  # more than one Authorization header: refuse, never guess


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """What an `Authorization` header says about the client (never the password or the token)."""

    scheme: AuthScheme
    user: UserName | None = None
    workstation: str | None = None  # NTLM Type 3 only
    ntlm_message: int | None = None  # 1, 2 or 3 when the token is (or wraps) an NTLM message


_SCHEMES = {"basic": AuthScheme.BASIC, "ntlm": AuthScheme.NTLM, "negotiate": AuthScheme.NEGOTIATE,
            "bearer": AuthScheme.BEARER}


def _scheme_of(value: str) -> tuple[AuthScheme, str]:
    name, _, rest = value.strip().partition(" ")
    return _SCHEMES.get(name.lower(), AuthScheme.OTHER), rest.strip()


_CONNECTION_SCHEMES = frozenset({"ntlm", "negotiate"})


def is_connection_auth(values: Iterable[str]) -> bool:
    """True when any `Authorization` value uses NTLM or Negotiate (the request must be pinned).

    The scheme is the first word, ended by any white space: `NTLM\t<token>` names nobody to the
    strict reader (`parse_authorization`), but a server that takes a tab for the space would
    authenticate the connection with it, so it is pinned all the same, never sent over a pooled
    connection that another client may get next."""
    return any(value.split(None, 1)[0].lower() in _CONNECTION_SCHEMES for value in values if value.strip())


def offers_connection_auth(values: Iterable[str]) -> bool:
    """True when any `WWW-Authenticate` value offers or continues NTLM or Negotiate."""
    for value in values:
        # A header may list several challenges: "Negotiate, NTLM" or "Basic realm=x, NTLM".
        for part in value.split(","):
            if _scheme_of(part)[0] in (AuthScheme.NTLM, AuthScheme.NEGOTIATE):
                return True
    return False


def _b64(text: str) -> bytes | None:
    if not text or len(text) > MAX_DECODED_TOKEN * 4 // 3 + 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _credential_bytes(text: str) -> bytes | None:
    """A credential's base64, strictly: only the alphabet, padding only at the end and only as needed.

    A lenient decoder skips what it does not like, and IIS's may skip other things than ours. Only
    the one canonical spelling of the bytes is read: `strict_mode` still takes superfluous padding
    (`AAAA==`) and stray low bits in the last character (`AB==` for `AA==`).
    """
    if not text or len(text) > MAX_DECODED_TOKEN * 4 // 3 + 4:
        return None
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return raw if binascii.b2a_base64(raw, newline=False) == text.encode("ascii") else None


def _user(typed: str) -> UserName | None:
    try:
        return parse_username(typed)
    except ValueError:
        return None


def _basic_user(token: str) -> UserName | None:
    raw = _credential_bytes(token)
    if raw is None or b":" not in raw:
        return None
    name, _, _password = raw.partition(b":")
    try:
        # IIS decodes with the server's code page; for ASCII that agrees with UTF-8, and a name that
        # is not valid UTF-8 is left unknown rather than read differently from Exchange.
        return _user(name.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _windows_credential(scheme: AuthScheme, token: str) -> ClientCredential:
    """The NTLM message of an `NTLM` token (bare) or a `Negotiate` one (bare or in SPNEGO)."""
    raw = _credential_bytes(token)
    if raw is None:
        return ClientCredential(scheme)
    try:
        reading = read_windows_token(raw, spnego=scheme is AuthScheme.NEGOTIATE)
    except UnreadableToken:
        return ClientCredential(scheme)
    if reading.message_type is not NtlmMessageType.AUTHENTICATE:
        return ClientCredential(scheme, ntlm_message=reading.message_type.value)
    # `DOMAIN\\user`, or a UPN with an empty domain.
    name = _user(f"{reading.domain}\\{reading.user}" if reading.domain else reading.user) if reading.user else None
    return ClientCredential(scheme, name, _printable(reading.workstation) or None, reading.message_type.value)


def parse_authorization(values: Sequence[str]) -> ClientCredential:
    """The credential of a request's `Authorization` header values (as `headers.getall` returns)."""
    if not values:
        return ClientCredential(AuthScheme.NONE)
    if len(values) > 1:
        return ClientCredential(AuthScheme.AMBIGUOUS)
    scheme, token = _scheme_of(values[0])
    if scheme is AuthScheme.BASIC:
        return ClientCredential(scheme, _basic_user(token))
    if scheme in (AuthScheme.NTLM, AuthScheme.NEGOTIATE):
        return _windows_credential(scheme, token)
    return ClientCredential(scheme)


# --- ActiveSync devices ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveSyncDevice:
    """What an ActiveSync request says about the phone (client-chosen: for logs, never for trust)."""

    device_id: str | None
    device_type: str | None
    command: str | None
    user_hint: str | None  # the `User` parameter; the Basic credential is what counts


# MS-ASHTTP 2.2.1.1.1.1.2: command codes of the base64-encoded query form.
_COMMANDS = {
    0: "Sync", 1: "SendMail", 2: "SmartForward", 3: "SmartReply", 4: "GetAttachment", 9: "FolderSync",
    10: "FolderCreate", 11: "FolderDelete", 12: "FolderUpdate", 13: "MoveItems", 14: "GetItemEstimate",
    15: "MeetingResponse", 16: "Search", 17: "Settings", 18: "Ping", 19: "ItemOperations", 20: "Provision",
    21: "ResolveRecipients", 22: "ValidateCert",
}
_USER_PARAMETER_TAG = 8

WBXML_CONTENT_TYPE = "application/vnd.ms-sync.wbxml"
# Exchange's answer to a Ping whose heartbeat ran out with nothing new (MS-ASCMD Ping Status 1): WBXML
# 1.3, UTF-8, code page 13 (Ping), <Ping><Status>1</Status></Ping>. The phone sends its next Ping at once.
PING_NO_CHANGES = bytes([0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03]) + b"1\x00" + bytes([0x01, 0x01])


def is_held_command(device: ActiveSyncDevice) -> bool:
    """A command Exchange holds open until something changes: Ping (up to its heartbeat, 59 minutes)."""
    return device.command is not None and device.command.lower() == "ping"


def _printable(text: str) -> str:
    return "".join(char for char in text if char.isprintable() and char.isascii())[:MAX_DEVICE_FIELD]


def activesync_device(query: str) -> ActiveSyncDevice:
    """Device id, type, command and user hint from a plain or a base64-encoded ActiveSync query."""
    if ("=" in query and "&" in query) or query.lower().startswith(("cmd=", "user=", "deviceid=", "devicetype=")):
        return _plain_device(query)
    decoded = _b64(query.replace("%3D", "=").replace("%3d", "=")) if query else None
    if decoded is not None:
        device = _encoded_device(decoded)
        if device is not None:
            return device
    return _plain_device(query)


def _plain_device(query: str) -> ActiveSyncDevice:
    found: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        found.setdefault(name.lower(), value)

    def pick(name: str) -> str | None:
        value = _printable(found.get(name, ""))
        return value or None

    return ActiveSyncDevice(pick("deviceid"), pick("devicetype"), pick("cmd"), pick("user"))


def _encoded_device(raw: bytes) -> ActiveSyncDevice | None:
    """MS-ASHTTP's binary query: version, command, locale, device id, policy key, device type, parameters."""
    try:
        command = _COMMANDS.get(raw[1])
        position = 4
        id_length = raw[position]
        device_id = raw[position + 1:position + 1 + id_length]
        position += 1 + id_length
        position += 1 + raw[position]  # policy key (0 or 4 bytes)
        type_length = raw[position]
        device_type = raw[position + 1:position + 1 + type_length]
        position += 1 + type_length
        if len(device_id) != id_length or len(device_type) != type_length:
            return None
        user = None
        while position + 2 <= len(raw):
            tag, length = raw[position], raw[position + 1]
            value = raw[position + 2:position + 2 + length]
            position += 2 + length
            if tag == _USER_PARAMETER_TAG:
                user = _printable(value.decode("utf-8", "replace")) or None
    except IndexError:
        return None
    return ActiveSyncDevice(device_id.hex().upper() or None, _printable(device_type.decode("ascii", "replace")) or None,
                            command, user)


# --- Policy decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """One route class's policy. Empty `networks` / `users` mean "no restriction of that kind"."""

    allow: bool
    networks: tuple[IPNetwork, ...] = ()
    users: frozenset[str] = frozenset()

    @classmethod
    def build(cls, *, allow: bool, networks: Iterable[str] = (), users: Iterable[str] = ()) -> ClientPolicy:
        return cls(allow, tuple(ipaddress.ip_network(cidr, strict=False) for cidr in networks),
                   frozenset(user.strip().lower() for user in users if user.strip()))


class PolicyOutcome(StrEnum):
    ALLOW = "allow"
    CHALLENGE_ONLY = "challenge-only"  # no user yet: pass only the upstream's 401 challenge
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    outcome: PolicyOutcome
    reason: str  # for the audit event and the access log; names the rule, never a credential
    # By the site's rules: the action of the rule that admits the client (for challenge-only, of
    # the rule that will decide once the user is named). None: denied, or a ClientPolicy's decision.
    action: Action | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is not PolicyOutcome.DENY


def _in_networks(client_ip: str, networks: tuple[IPNetwork, ...]) -> bool:
    address = client_address(client_ip)
    return address is not None and any(address in network for network in networks)


def is_first_leg(credential: ClientCredential) -> bool:
    """No credential at all, or a well-formed NTLM NEGOTIATE: nothing Exchange could authenticate.

    The only requests that may go upstream (without their body, for the challenge alone) while
    naming no user; any other credential whose user is unknown must not be forwarded at all.
    """
    return credential.scheme is AuthScheme.NONE or (
        credential.scheme in (AuthScheme.NTLM, AuthScheme.NEGOTIATE)
        and credential.ntlm_message == NtlmMessageType.NEGOTIATE.value)


def decide(policy: ClientPolicy, *, client_ip: str, credential: ClientCredential,
           connection_user: UserName | None = None, connection_authenticated: bool = False) -> PolicyDecision:
    """Allow, deny, or let through only the authentication challenge.

    `connection_user` is the user an earlier NTLM/Negotiate leg authenticated on this client
    connection (later requests on it carry no `Authorization`); `connection_authenticated` says
    whether Exchange accepted any NTLM/Negotiate credential there, even one that named nobody to
    the gateway (Kerberos, under a class without a user list). Rules, in order: the class is
    denied; several Authorization headers; the client address is outside `networks`; with a
    `users` list, a request naming a user not on it (or a connection authenticated as one) is
    denied, one naming nobody yet (no credential, or an NTLM NEGOTIATE) is challenge-only, except a
    request without a credential on a connection Exchange authenticated as someone unknown (IIS
    would serve it as that someone), and any
    other credential whose user cannot be read (Kerberos, Bearer, a malformed token) is denied.
    """
    if not policy.allow:
        return PolicyDecision(PolicyOutcome.DENY, "class denied")
    if credential.scheme is AuthScheme.AMBIGUOUS:
        return PolicyDecision(PolicyOutcome.DENY, "several authorization headers")
    if policy.networks and not _in_networks(client_ip, policy.networks):
        return PolicyDecision(PolicyOutcome.DENY, "network not allowed")
    if not policy.users:
        return PolicyDecision(PolicyOutcome.ALLOW, "allowed")
    user, unnamed = _named_user(credential, connection_user, connection_authenticated)
    if user is None:
        return unnamed
    if matches_exception(user.forms, policy.users):
        return PolicyDecision(PolicyOutcome.ALLOW, "user allowed")
    return PolicyDecision(PolicyOutcome.DENY, "user not allowed")


def _named_user(credential: ClientCredential, connection_user: UserName | None, connection_authenticated: bool,
                *, action: Action | None = None) -> tuple[UserName | None, PolicyDecision]:
    """The user a request that must name one names, or (None, the decision for one that does not)."""
    user = credential.user or (connection_user if credential.scheme is AuthScheme.NONE else None)
    if user is None:
        if credential.scheme is AuthScheme.NONE and connection_authenticated:
            # The upstream connection is signed in as whoever an unreadable credential named:
            # "challenge only" would run this request (without its body) as that user.
            return None, PolicyDecision(PolicyOutcome.DENY, "connection user unknown")
        if is_first_leg(credential):
            return None, PolicyDecision(PolicyOutcome.CHALLENGE_ONLY, "no user yet", action)
        # Exchange would authenticate whoever its decoder finds in this credential, and run the
        # request as that user: nothing of it may go upstream.
        return None, PolicyDecision(PolicyOutcome.DENY, "user unknown")
    try:
        # A name outside ASCII may be another account to Windows than the one it spells to us
        # (best fit to the code page, case folding): it never matches a list.
        check_exchange_reading(user.typed)
    except AmbiguousUserName:
        return None, PolicyDecision(PolicyOutcome.DENY, "user name outside ASCII")
    return user, PolicyDecision(PolicyOutcome.ALLOW, "user allowed")


def decide_by_rules(rules: RuleSet, request: RuleRequest, *, credential: ClientCredential,
                    connection_user: UserName | None = None, connection_authenticated: bool = False) -> PolicyDecision:
    """`decide`, by a site's rules rather than a class policy: the rules' action for the request
    (`request.route_class` set, no identity), and when a rule that lists users or groups stops the
    walk, the user read from the credential exactly as `decide` reads it (a request naming nobody
    yet is challenge-only, an unreadable credential is denied), then the rules again with that user.

    Several `Authorization` headers are refused whatever the rules. The reasons are
    `decide`'s: "allowed", "class denied" (a rule that names only route classes), "network not
    allowed" (a rule that would admit the client from another address), "user allowed", "user not
    allowed", ...; else "denied by rules[i]" or "no rule matched".
    """
    ambiguous = credential.scheme is AuthScheme.AMBIGUOUS
    decision = rules.decide(request)
    if decision.action is Action.DENY:
        reason = _denial_reason(rules, request, decision)
        # `decide`'s order of reasons: the class denied, several headers, then the rest.
        return PolicyDecision(PolicyOutcome.DENY, reason if reason == "class denied" or not ambiguous
                              else "several authorization headers")
    if ambiguous:
        return PolicyDecision(PolicyOutcome.DENY, "several authorization headers")
    if decision.action is not None:
        return PolicyDecision(PolicyOutcome.ALLOW, "allowed", decision.action)
    assert decision.rule is not None
    user, unnamed = _named_user(credential, connection_user, connection_authenticated,
                                action=rules.rules[decision.rule].action)
    if user is None:
        return unnamed
    decision = rules.decide(request._replace(identity=Identity(user)))
    if decision.action is None or decision.action is Action.DENY:
        return PolicyDecision(PolicyOutcome.DENY, "user not allowed")
    return PolicyDecision(PolicyOutcome.ALLOW, "user allowed", decision.action)


def _denial_reason(rules: RuleSet, request: RuleRequest, decision: Decision) -> str:
    """Why the rules deny (only ever computed for a denial, so the plain walk's cost is fine)."""
    blind = decide_naively([rule.model_copy(update={"networks": None}) for rule in rules.rules], request)
    if blind.action is not Action.DENY:
        return "network not allowed"
    if decision.rule is None:
        return "no rule matched"
    rule = rules.rules[decision.rule]
    if rule.route_classes is not None and not (rule.paths or rule.methods or rule.networks):
        return "class denied"
    return f"denied by rules[{decision.rule}]"
