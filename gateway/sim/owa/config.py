"""What the OWA simulator is configured with: its users and every knob of its behaviour.

Exchange behaviour that the protocol notes mark as unverified is a knob here, so a test (or an
operator rehearsing against a real lab) can switch to the other plausible answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.sim.exchange_clients.config import ExchangeClientsConfig

DEFAULT_BUILD = "15.1.2507.6"
MIB = 1024 * 1024

# Windows domain and mail suffix of the demo users; the Monosign simulator uses the same people.
DEMO_DOMAIN = "CORP"
DEMO_MAIL_SUFFIX = "corp.example"

# Texts shown in #signInErrorDiv per logon reason. Exchange's exact wording is unverified.
DEFAULT_LOGON_TEXTS: Mapping[int, str] = {
    1: "You have signed out of Outlook.",
    2: "The user name or password you entered isn't correct. Try entering it again.",
    3: "Your session has timed out. To continue, please sign in again.",
    4: "Your password has been changed. Please sign in again with your new password.",
}


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message shown in a mailbox (start page, FindItem)."""

    sender: str
    subject: str
    preview: str
    received: str  # display text, e.g. "Mon 09:14"


@dataclass(frozen=True, slots=True)
class SimUser:
    """A mailbox user. Accepted at the logon form as `username`, `DOMAIN\\username` or `upn`."""

    username: str
    password: str
    display_name: str
    domain: str = DEMO_DOMAIN
    email: str = ""
    upn: str = ""
    sid: str = ""
    messages: tuple[SimMessage, ...] = ()
    # Other mailboxes this user may open by explicit logon (/owa/<smtp>/...).
    delegate_of: tuple[str, ...] = ()

    @property
    def smtp(self) -> str:
        return self.email or f"{self.username}@{DEMO_MAIL_SUFFIX}"

    @property
    def principal_name(self) -> str:
        return self.upn or self.smtp

    @property
    def windows_name(self) -> str:
        return f"{self.domain}\\{self.username}"


def _demo_messages(first_name: str) -> tuple[SimMessage, ...]:
    return (
        SimMessage("IT Service Desk", "Multi-factor sign-in is now required for Outlook on the web",
                   f"Hello {first_name}, from Monday you confirm each sign-in on your phone.", "Mon 09:14"),
        SimMessage("Finance", "Quarterly report (draft)",
                   "Please review the attached draft before Thursday's meeting.", "Mon 08:02"),
        SimMessage("Facilities", "Fire drill on Wednesday at 10:30",
                   "Please leave the building by the nearest exit when the alarm sounds.", "Fri 16:45"),
        SimMessage("Team Calendar", "Weekly sync moved to room 4.12",
                   "Same time, new room: the projector in 3.07 is being repaired.", "Fri 11:20"),
    )


def demo_users() -> tuple[SimUser, ...]:
    """alice, bob, carol and dave of domain CORP (`<name>@corp.example`), as in the Monosign simulator."""
    people = [
        ("alice", "Alice Archer", "AlicePass1!", 1104),
        ("bob", "Bob Baker", "BobPass1!", 1105),
        ("carol", "Carol Carter", "CarolPass1!", 1106),
        ("dave", "Dave Dawson", "DavePass1!", 1107),
    ]
    return tuple(
        SimUser(
            username=name,
            password=password,
            display_name=display,
            sid=f"S-1-5-21-1004336348-1177238915-682003330-{rid}",
            messages=_demo_messages(display.split()[0]),
            # Everyone may open carol's mailbox, to exercise explicit logon.
            delegate_of=(f"carol@{DEMO_MAIL_SUFFIX}",) if name != "carol" else (),
        )
        for name, display, password, rid in people
    )


class UsersFileError(ValueError):
    """The users file cannot be read or has the wrong shape; the message says where."""


def _user_from_json(index: int, entry: Any) -> SimUser:
    where = f"users[{index}]"
    if not isinstance(entry, dict):
        raise UsersFileError(f"{where}: expected an object")
    for required in ("username", "password"):
        if not isinstance(entry.get(required), str) or not entry[required]:
            raise UsersFileError(f"{where}.{required}: required (a non-empty string)")
    messages = []
    for m_index, raw in enumerate(entry.get("messages", [])):
        if not isinstance(raw, dict) or not isinstance(raw.get("subject"), str):
            raise UsersFileError(f"{where}.messages[{m_index}]: expected an object with a subject")
        messages.append(SimMessage(
            sender=str(raw.get("from", "")), subject=raw["subject"],
            preview=str(raw.get("preview", "")), received=str(raw.get("received", "")),
        ))
    username: str = entry["username"]
    delegates = entry.get("delegate_of", [])
    if not isinstance(delegates, list) or not all(isinstance(d, str) for d in delegates):
        raise UsersFileError(f"{where}.delegate_of: expected a list of e-mail addresses")
    return SimUser(
        username=username,
        password=entry["password"],
        display_name=str(entry.get("display_name") or username),
        domain=str(entry.get("domain") or DEMO_DOMAIN),
        email=str(entry.get("email") or ""),
        upn=str(entry.get("upn") or ""),
        sid=str(entry.get("sid") or f"S-1-5-21-1004336348-1177238915-682003330-{2000 + index}"),
        messages=tuple(messages),
        delegate_of=tuple(delegates),
    )


def load_users_file(path: Path) -> tuple[SimUser, ...]:
    """Read `{"users": [{"username", "password", "display_name", "domain", "email", ...}]}`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsersFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise UsersFileError(f"{path}: not valid JSON (line {exc.lineno})") from None
    entries = document.get("users") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UsersFileError(f'{path}: expected {{"users": [ ... ]}} with at least one user')
    return tuple(_user_from_json(index, entry) for index, entry in enumerate(entries))


@dataclass(frozen=True, slots=True)
class OwaSimConfig:
    """Everything the simulator does that a test or an operator may want to change."""

    users: tuple[SimUser, ...] = field(default_factory=demo_users)
    server_name: str = "SIMCAS01"
    server_fqdn: str = "SIMCAS01.sim.local"
    # Used only when a request carries no Host header.
    default_host: str = "mail.corp.example"
    build: str = DEFAULT_BUILD

    # Session lifetime (Exchange: PublicTimeout 15 min, PrivateTimeout 8 h), in seconds.
    public_timeout_s: float = 15 * 60.0
    private_timeout_s: float = 8 * 3600.0

    # Cookie and redirect shapes.
    samesite_none: bool = True            # append ";SameSite=None" to the cookie path for capable browsers
    secure_cookies: Literal["auto", "always", "never"] = "auto"   # auto: secure when the request came over TLS
    redirect_scheme: Literal["https", "request"] = "https"        # Exchange forces https in logon redirects
    require_host_match: bool = True       # auth.owa: destination host must equal Host (else 400)
    # How the Cookie header is read: as ASP.NET does ("aspnet": pairs end at ";"), or as a lenient
    # parser between a proxy and Exchange might ("lenient": also at commas and white space).
    cookie_reader: Literal["aspnet", "lenient"] = "aspnet"

    # Behaviour the notes mark as unverified.
    root_redirect: bool = False           # GET / -> 302 /owa/ (IIS does not do this by default)
    vdir_redirect_status: int = 301       # GET /owa -> 301 or 302 to /owa/
    canary_failure_status: int = 449      # service.svc with a missing or wrong X-OWA-CANARY
    language_selection: bool = False      # first start page of a user redirects to languageselection.aspx
    service_error: bool = False           # service.svc answers 302 to errorFE.aspx?httpCode=500
    logon_texts: Mapping[int, str] = field(default_factory=lambda: dict(DEFAULT_LOGON_TEXTS))

    # Application traffic.
    notification_interval_s: float = 5.0  # ev.owa2 sends one chunk this often ...
    notification_hold_s: float = 60.0     # ... for this long, then ends the response
    attachment_size: int = 50 * MIB       # GetFileAttachment default size (override with ?size=N)
    attachment_max_size: int = 8 * 1024 * MIB
    attachment_chunked: bool = True       # chunked transfer (True) or a Content-Length (False)

    # EWS, MAPI, RPC, OAB, Autodiscover, ActiveSync, PowerShell (gateway.sim.exchange_clients).
    exchange_clients: ExchangeClientsConfig = field(default_factory=ExchangeClientsConfig)

    # Simulator plumbing.
    control_enabled: bool = True          # /_sim/requests, /_sim/counters, /_sim/reset
    request_log_limit: int = 10_000
    max_form_bytes: int = 64 * 1024       # auth.owa bodies larger than this get 413

    @property
    def resource_build(self) -> str:
        """The build as it appears in resource paths: /owa/auth/15.1.2507/themes/resources/..."""
        return ".".join(self.build.split(".")[:3])
