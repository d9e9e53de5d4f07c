"""The configuration file's model: sites, their rules, session groups (pydantic, strict, pure).

Why strict: a key misspelt in a security configuration (`network:` for `networks:`) must stop the
gateway, not widen a rule silently. So unknown keys are refused, strings must be strings (YAML reads
`no` as false), empty condition lists are refused (they would match nothing), and every value is
brought to the one canonical form the request side compares with: hosts lower-case without port,
path patterns through the proxy's own canonicalisation, methods upper-case, networks as CIDRs.

Relations between values (unique names and hosts, a default site that exists, route classes the
site's profile has) are checked after the shapes, and reported at the exact key, like shape errors.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.assertion import AssertionKeyError, AssertionKeys
from gateway.config.exchange import exchange_rules, rule_problems
from gateway.config.ldap import LdapConfig
from gateway.policy.identity_headers import ASSERTION_HEADER, IdentityHeaderNames, header_key
from gateway.policy.paths import BadTarget, canonicalize
from gateway.policy.routes import RouteClass
from gateway.policy.users import AmbiguousUserName, check_exchange_reading, parse_username
from gateway.settings import SETTINGS_KEY, DisplayText, FileSettings, HttpUrlStr, read_file_settings

__all__ = [
    "PROFILE_ROUTE_CLASSES",
    "Action",
    "AssertionConfig",
    "ConfigModel",
    "FirstFactorKind",
    "GatewayConfig",
    "IdentityHeadersConfig",
    "LocatedProblems",
    "Location",
    "Profile",
    "Rule",
    "SessionGroup",
    "Site",
    "TlsFiles",
    "canonical_host",
    "canonical_path_pattern",
]

Location = tuple[str | int, ...]


class LocatedProblems(ValueError):
    """Problems found by a model's relation checks, each at a key below that model."""

    def __init__(self, problems: list[tuple[Location, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class Profile(StrEnum):
    EXCHANGE = "exchange"
    PASSTHROUGH = "passthrough"
    PORTAL = "portal"  # the gateway's own sign-in
    FORMS = "forms"  # reserved: an application's own login form


AVAILABLE_PROFILES = frozenset({Profile.EXCHANGE, Profile.PASSTHROUGH, Profile.PORTAL})


class FirstFactorKind(StrEnum):
    """How a portal site checks who the user is before Monosign's second factor (docs/identity.md)."""

    LDAP = "ldap"
    FILE = "file"
    MONOSIGN = "monosign"


# The keys that describe a portal site's first factor: refused on the other profiles.
_FIRST_FACTOR_KEYS = ("first_factor", "ldap", "users_file")


class Action(StrEnum):
    DENY = "deny"
    BYPASS = "bypass"
    ONE_FACTOR = "one_factor"
    TWO_FACTOR = "two_factor"
    PINNED = "pinned"  # Exchange: over the client connection's own upstream connection


# The route classes a profile classifies requests into; rules may match on them. `gateway` is not
# among them: /_gateway/ belongs to the gateway on every site and no rule applies to it.
PROFILE_ROUTE_CLASSES: dict[Profile, frozenset[RouteClass]] = {
    Profile.EXCHANGE: frozenset(RouteClass) - {RouteClass.GATEWAY},
    Profile.PASSTHROUGH: frozenset(),
    Profile.PORTAL: frozenset(),
}
PROFILE_ACTIONS: dict[Profile, frozenset[Action]] = {
    Profile.EXCHANGE: frozenset(Action),
    Profile.PASSTHROUGH: frozenset(Action) - {Action.PINNED},
    Profile.PORTAL: frozenset(Action) - {Action.PINNED},
}

GATEWAY_SEGMENT = "_gateway"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
# RFC 9110 token: what a method may be made of.
_METHOD = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# RFC 3986 pchar without pct-encoded, and the slash: kept as they are when a pattern is quoted.
_PATTERN_SAFE = "/-._~!$&'()*+,;=:@"


# --- Canonical values --------------------------------------------------------------------------------
def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("expected a name of lower-case letters, digits, '-' and '_' (at most 63)")
    return value


def canonical_host(value: str) -> str:
    """A site's host as requests are matched: lower-case, no port, no trailing dot, no wildcard."""
    host = value.strip().lower()
    if not host.isascii():
        raise ValueError("not a host name (use the IDNA form, xn--...)")
    if host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError("not an IPv6 address") from None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    if re.fullmatch(r".+:[0-9]+", host):
        raise ValueError("a host without port (sites are chosen by host name; the port is the listener's)")
    if "*" in host:
        raise ValueError("no wildcards: list each host name")
    if host.endswith("."):
        raise ValueError("a host name without the trailing dot")
    if len(host) > 253 or not _DNS_NAME.fullmatch(host):
        raise ValueError("not a host name")
    return host


def canonical_path_pattern(value: str) -> str:
    """A rule's path, canonicalised exactly as request paths are, lower-case, without trailing slash.

    ``/admin`` matches ``/admin`` and everything below it by whole segments (not ``/administrator``).
    """
    if not value.startswith("/"):
        raise ValueError("expected a path starting with /")
    if "?" in value or "#" in value:
        raise ValueError("a path pattern has no query or fragment")
    if "*" in value:
        raise ValueError("no wildcards: a path matches itself and everything below it (write /admin, not /admin/*)")
    if ";" in value:
        raise ValueError("no path parameters (;...): requests are matched without them")
    # Written as a person reads it (`/café`, `/a b`) or already encoded: both become the request form.
    text = quote(value, safe=_PATTERN_SAFE + "%")
    text = text.rstrip("/") or "/"
    try:
        path = canonicalize(text).lower_path
    except BadTarget as exc:
        raise ValueError(f"not a canonical path ({exc.reason})") from None
    if path.split("/")[1] == GATEWAY_SEGMENT:
        raise ValueError("/_gateway/ is the gateway's own (its pages); rules do not apply to it")
    return path


def _method(value: str) -> str:
    if not _METHOD.fullmatch(value):
        raise ValueError("not an HTTP method")
    return value.upper()


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError("not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32) or IP address") from None


def _user(value: str) -> str:
    try:
        name = parse_username(value)
        check_exchange_reading(name.typed)
    except AmbiguousUserName:
        raise ValueError("a user name outside printable ASCII is never matched (Exchange may read it as "
                         "another account)") from None
    except ValueError as exc:
        raise ValueError(f"not a user name ({exc})") from None
    return name.typed.lower()


def _group(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise ValueError("an empty group name")
    return text


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


Name = Annotated[StrictStr, AfterValidator(_name)]
Host = Annotated[StrictStr, AfterValidator(canonical_host)]
PathPattern = Annotated[StrictStr, AfterValidator(canonical_path_pattern)]
Method = Annotated[StrictStr, AfterValidator(_method)]
Network = Annotated[StrictStr, AfterValidator(_network)]
UserEntry = Annotated[StrictStr, AfterValidator(_user)]
GroupEntry = Annotated[StrictStr, AfterValidator(_group)]


T = TypeVar("T")
# A condition: left out, any value matches; written, a non-empty list (de-duplicated).
Conditions = Annotated[list[T], Field(min_length=1), AfterValidator(_unique)]


# --- Models --------------------------------------------------------------------------------------------
class ConfigModel(BaseModel):
    """Strict, frozen; and `NAME_file: PATH` for each name in `file_secrets` reads NAME from that file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file_secrets: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _read_file_secrets(cls, data: Any, info: ValidationInfo) -> Any:
        if not cls.file_secrets or not isinstance(data, dict):
            return data
        data = dict(data)
        problems: list[tuple[Location, str]] = []
        for name in sorted(cls.file_secrets):
            key = f"{name}_file"
            if key not in data:
                continue
            path = data.pop(key)
            if name in data:
                problems.append(((key,), f"{name} and {key} are both set; keep one"))
                continue
            if not isinstance(path, str):
                problems.append(((key,), "expected a file path"))
                continue
            try:
                data[name] = resolve_path(path, info).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(((key,), f"cannot read {path!r} ({exc.strerror or exc})"))
        if problems:
            raise LocatedProblems(problems)
        return data


def resolve_path(value: str | Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the configuration file's directory (validation context)."""
    path = Path(value)
    base = (info.context or {}).get("base_dir") if info.context else None
    return path if path.is_absolute() or base is None else Path(base) / path


def readable_file(value: Any, info: ValidationInfo) -> Path:
    """A file path of the configuration (relative to its directory) that names a readable file."""
    if not isinstance(value, str):
        raise ValueError("expected a file path")
    path = resolve_path(value, info)
    if not path.is_file():
        raise ValueError(f"no readable file at {str(path)!r}")
    return path


class Rule(ConfigModel):
    """Every condition written must hold; a condition left out matches anything. See docs/sites.md."""

    paths: Conditions[PathPattern] | None = None
    methods: Conditions[Method] | None = None
    networks: Conditions[Network] | None = None
    users: Conditions[UserEntry] | None = None
    groups: Conditions[GroupEntry] | None = None
    route_classes: Conditions[RouteClass] | None = None
    action: Action

    @property
    def needs_identity(self) -> bool:
        """True when the rule can only be decided once the user is known."""
        return self.users is not None or self.groups is not None


class TlsFiles(ConfigModel):
    cert_file: Path
    key_file: Path

    @field_validator("cert_file", "key_file", mode="before")
    @classmethod
    def _readable(cls, value: Any, info: ValidationInfo) -> Path:
        return readable_file(value, info)


class SessionGroup(ConfigModel):
    """Sites that share one sign-in: the session cookie is set for `cookie_domain` and its subdomains."""

    name: Name
    cookie_domain: Host

    @field_validator("cookie_domain")
    @classmethod
    def _parent_domain(cls, value: str) -> str:
        if not _DNS_NAME.fullmatch(value) or "." not in value:
            raise ValueError("expected a parent domain with at least two labels, e.g. example.com")
        return value


# Headers the proxy itself writes, frames or reads: an identity header by one of these names (in any
# spelling, as identity headers are stripped) would remove or forge them.
_RESERVED_HEADER_KEYS = frozenset(header_key(name) for name in (
    "Host", "Cookie", "Authorization", "Proxy-Authorization", "Content-Length", "Content-Type", "Content-Encoding",
    "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", "Expect", "Via", "Forwarded",
    "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Method",
    "X-Forwarded-Uri", "X-Original-URL", "X-Original-Method", "X-Real-IP", "X-Request-Id", ASSERTION_HEADER,
))


def _header_name(value: str) -> str:
    if not _METHOD.fullmatch(value):  # RFC 9110 token: the grammar of a field name too
        raise ValueError("not a header name (letters, digits and -, no spaces or ':')")
    if not header_key(value):
        raise ValueError("a header name needs letters or digits")
    if header_key(value) in _RESERVED_HEADER_KEYS:
        raise ValueError(f"the gateway writes or reads {value} itself (in any spelling); choose another name")
    return value


HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]
_DEFAULT_NAMES = IdentityHeaderNames()


class IdentityHeadersConfig(ConfigModel):
    """The headers that carry a passed session's identity upstream (null: that claim is not sent).
    Defaults are Authelia's, which many applications already read."""

    user: HeaderName | None = _DEFAULT_NAMES.user
    email: HeaderName | None = _DEFAULT_NAMES.email
    name: HeaderName | None = _DEFAULT_NAMES.name
    groups: HeaderName | None = _DEFAULT_NAMES.groups

    @model_validator(mode="after")
    def _distinct(self) -> IdentityHeadersConfig:
        seen: dict[str, str] = {}
        problems: list[tuple[Location, str]] = []
        for claim in ("user", "email", "name", "groups"):
            value = getattr(self, claim)
            if value is None:
                continue
            other = seen.setdefault(header_key(value), claim)
            if other != claim:
                problems.append(((claim,), f"{value} is read as the same header as {other}'s "
                                           "(names are compared without case, '-' or '_')"))
        if problems:
            raise LocatedProblems(problems)
        return self

    def names(self) -> IdentityHeaderNames:
        return IdentityHeaderNames(user=self.user, email=self.email, name=self.name, groups=self.groups)


class AssertionConfig(ConfigModel):
    """The signed assertion (`X-Monosign-Assertion`): ES256 keys from PEM files, read and checked when
    the file is loaded. `key_file` signs; `previous_key_files` are only published in the JWKS (a
    rotation keeps the old key listed until the assertions and the upstreams' caches have expired)."""

    enabled: Annotated[bool, Strict()] = True
    key_file: Path | None = None
    previous_key_files: list[Path] = Field(default_factory=list)
    _keys: AssertionKeys | None = PrivateAttr(default=None)

    @field_validator("key_file", mode="before")
    @classmethod
    def _key_path(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("expected a file path")
        return resolve_path(value, info)

    @field_validator("previous_key_files", mode="before")
    @classmethod
    def _key_paths(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a list of file paths")
        if not all(isinstance(item, str) for item in value):
            raise ValueError("expected a list of file paths")
        return [resolve_path(item, info) for item in value]

    @model_validator(mode="after")
    def _load_keys(self) -> AssertionConfig:
        if not self.enabled:
            return self
        if self.key_file is None:
            raise LocatedProblems([(("key_file",), "the signing key's PEM file is needed when the assertion is "
                                                  "enabled (openssl ecparam -name prime256v1 -genkey -noout)")])
        problems: list[tuple[Location, str]] = []
        try:
            AssertionKeys.from_files([self.key_file])
        except AssertionKeyError as exc:
            problems.append((("key_file",), str(exc)))
        else:
            for index, path in enumerate(self.previous_key_files):
                try:
                    AssertionKeys.from_files([self.key_file, path])
                except AssertionKeyError as exc:
                    problems.append((("previous_key_files", index), str(exc)))
        if problems:
            raise LocatedProblems(problems)
        try:
            self._keys = AssertionKeys.from_files([self.key_file, *self.previous_key_files])
        except AssertionKeyError as exc:  # each file is fine alone: the same key is listed twice
            raise LocatedProblems([(("previous_key_files",), str(exc))]) from None
        return self

    @property
    def keys(self) -> AssertionKeys | None:
        """The keys read at load (None when the assertion is disabled)."""
        return self._keys

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(path for path in (self.key_file, *self.previous_key_files) if path is not None)


class Site(ConfigModel):
    name: Name
    hosts: Annotated[list[Host], Field(min_length=1)]
    upstream: Annotated[HttpUrlStr, Strict()]
    profile: Profile
    rules: Annotated[list[Rule], Field(min_length=1)]
    tls: TlsFiles | None = None
    session_group: Name | None = None
    # The brand name on the site's own pages (sign-in, MFA, errors); None: GATEWAY_BRAND_NAME's.
    title: DisplayText | None = None
    # The portal profile's: what reaches the upstream about a passed session's user.
    identity_headers: IdentityHeadersConfig | None = None
    assertion: AssertionConfig | None = None

    # The portal profile's first factor (docs/identity.md): ldap needs `ldap`, file needs `users_file`.
    first_factor: FirstFactorKind | None = None
    ldap: LdapConfig | None = None
    users_file: Path | None = None

    @field_validator("users_file", mode="before")
    @classmethod
    def _users_file(cls, value: Any, info: ValidationInfo) -> Path:
        return readable_file(value, info)

    @field_validator("ldap", mode="before")
    @classmethod
    def _ldap_files(cls, value: Any, info: ValidationInfo) -> Any:
        # Its file paths are relative to the configuration file, like every other path in it.
        if not isinstance(value, dict):
            return value
        value = dict(value)
        problems: list[tuple[Location, str]] = []
        for key in ("bind_password_file", "ca_file"):
            if not isinstance(value.get(key), str):
                continue
            path = resolve_path(value[key], info)
            if not path.is_file():
                problems.append(((key,), f"no readable file at {str(path)!r}"))
            value[key] = path
        if problems:
            raise LocatedProblems(problems)
        return value

    @model_validator(mode="before")
    @classmethod
    def _profile_default_rules(cls, data: Any) -> Any:
        # An Exchange site that writes no rules gets today's route-class table (gateway.config.exchange).
        if isinstance(data, dict) and data.get("profile") == Profile.EXCHANGE.value and "rules" not in data:
            return {**data, "rules": exchange_rules()}
        return data

    @field_validator("profile")
    @classmethod
    def _available(cls, value: Profile) -> Profile:
        if value not in AVAILABLE_PROFILES:
            raise ValueError(f"the {value.value!r} profile is reserved for a later version; "
                             "use exchange, passthrough or portal")
        return value

    @model_validator(mode="after")
    def _rules_fit_profile(self) -> Site:
        problems: list[tuple[Location, str]] = []
        classes = PROFILE_ROUTE_CLASSES[self.profile]
        for index, rule in enumerate(self.rules):
            for position, route_class in enumerate(rule.route_classes or ()):
                if route_class not in classes:
                    problems.append((("rules", index, "route_classes", position),
                                     _route_class_problem(self.profile, route_class, classes)))
            if rule.action not in PROFILE_ACTIONS[self.profile]:
                problems.append((("rules", index, "action"),
                                 f"{rule.action.value!r} is an action of the exchange profile only"))
            elif self.profile is Profile.EXCHANGE:
                for key, message in rule_problems(rule.paths, rule.route_classes, rule.action,
                                                  names_users=rule.needs_identity):
                    problems.append((("rules", index, "groups" if key == "users" and rule.users is None else key),
                                     message))
        if len(set(self.hosts)) != len(self.hosts):
            problems.append((("hosts",), "a host is listed twice"))
        if self.profile is Profile.EXCHANGE and self.title is not None:
            problems.append((("title",), "an exchange site's pages are named by GATEWAY_BRAND_NAME (for portal and "
                                         "passthrough sites only)"))
        if self.profile is not Profile.PORTAL:
            for key in ("identity_headers", "assertion"):
                if getattr(self, key) is not None:
                    problems.append(((key,), f"only for the portal profile (this site's is {self.profile.value})"))
        problems += self._first_factor_problems()
        if problems:
            raise LocatedProblems(problems)
        return self

    @property
    def identity_header_names(self) -> IdentityHeaderNames:
        """The headers that carry the identity upstream (the defaults when the file writes none)."""
        return self.identity_headers.names() if self.identity_headers is not None else _DEFAULT_NAMES

    def _first_factor_problems(self) -> list[tuple[Location, str]]:
        if self.profile is not Profile.PORTAL:
            return [((key,), f"only for the portal profile (this site's is {self.profile.value})")
                    for key in _FIRST_FACTOR_KEYS if getattr(self, key) is not None]
        if self.first_factor is None:
            return [(("first_factor",), "required for the portal profile: ldap, file or monosign")]
        problems: list[tuple[Location, str]] = []
        if self.first_factor is FirstFactorKind.LDAP and self.ldap is None:
            problems.append((("ldap",), "required with first_factor: ldap (url, base_dn, ...; see docs/identity.md)"))
        if self.first_factor is FirstFactorKind.FILE and self.users_file is None:
            problems.append((("users_file",), "required with first_factor: file (see docs/identity.md)"))
        if self.first_factor is not FirstFactorKind.LDAP and self.ldap is not None:
            problems.append((("ldap",), f"only with first_factor: ldap (this site's is {self.first_factor.value})"))
        if self.first_factor is not FirstFactorKind.FILE and self.users_file is not None:
            problems.append((("users_file",),
                             f"only with first_factor: file (this site's is {self.first_factor.value})"))
        if self.first_factor is FirstFactorKind.MONOSIGN:
            # Its first factor is a typed name: a session waiting for the push has proven nothing.
            problems += [(("rules", index, "action"), "one_factor on a monosign site would open to anyone who "
                                                      "types a name; use two_factor")
                         for index, rule in enumerate(self.rules) if rule.action is Action.ONE_FACTOR]
        return problems


def _route_class_problem(profile: Profile, route_class: RouteClass, classes: frozenset[RouteClass]) -> str:
    if not classes:
        return f"the {profile.value} profile has no route classes; match on paths instead"
    if route_class is RouteClass.GATEWAY:
        return "/_gateway/ is the gateway's own (its pages); rules do not apply to it"
    return f"not a route class of the {profile.value} profile"


class GatewayConfig(ConfigModel):
    """The whole file: sites, the site for an unknown Host (none: 421), session groups."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    sites: Annotated[list[Site], Field(min_length=1)]
    default_site: Name | None = None
    session_groups: list[SessionGroup] = Field(default_factory=list)
    # Settings by their environment names (gateway.settings.read_file_settings). They are read at
    # start only, so they are no part of the digest of what a reload swaps in.
    settings: FileSettings = Field(default_factory=FileSettings, exclude=True)

    @field_validator(SETTINGS_KEY, mode="before")
    @classmethod
    def _read_settings(cls, value: Any, info: ValidationInfo) -> FileSettings:
        if isinstance(value, FileSettings):
            return value
        base = (info.context or {}).get("base_dir") if info.context else None
        settings, problems = read_file_settings(value, Path(base) if base is not None else None)
        if problems:
            raise LocatedProblems(problems)
        return settings

    @model_validator(mode="after")
    def _relations(self) -> GatewayConfig:
        problems: list[tuple[Location, str]] = []
        problems += _duplicates("sites", "name", [site.name for site in self.sites], "site name")
        problems += _duplicates("session_groups", "name", [group.name for group in self.session_groups],
                                "session group name")
        owners: dict[str, str] = {}
        for index, site in enumerate(self.sites):
            for position, host in enumerate(site.hosts):
                owner = owners.setdefault(host, site.name)
                if owner != site.name:
                    problems.append((("sites", index, "hosts", position),
                                     f"{host} is already a host of site {owner!r}"))
        names = {site.name for site in self.sites}
        if self.default_site is not None and self.default_site not in names:
            problems.append((("default_site",), f"no site is named {self.default_site!r}"))
        groups = {group.name: group for group in self.session_groups}
        for index, site in enumerate(self.sites):
            if site.session_group is None:
                continue
            if site.profile is not Profile.PORTAL:
                problems.append((("sites", index, "session_group"), _NOT_IN_A_GROUP[site.profile]))
                continue
            group = groups.get(site.session_group)
            if group is None:
                problems.append((("sites", index, "session_group"),
                                 f"no session group is named {site.session_group!r} (see session_groups)"))
                continue
            for position, host in enumerate(site.hosts):
                if not _under(host, group.cookie_domain):
                    problems.append((("sites", index, "hosts", position),
                                     f"{host} is not under the session group's cookie_domain {group.cookie_domain}"))
        if problems:
            raise LocatedProblems(problems)
        return self

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    @property
    def digest(self) -> str:
        """A stable hash of the configuration's meaning (not of the file's spelling): sha256, hex."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# Why only portal sites share a sign-in (docs/sites.md, "Several portal sites under one sign-in").
_NOT_IN_A_GROUP = {
    Profile.EXCHANGE: "an exchange site cannot be in a session group: it signs in with Exchange's own forms "
                      "login and cookies, which the group's cookie does not carry (only portal sites share one)",
    Profile.PASSTHROUGH: "a passthrough site cannot be in a session group: it has no sign-in of its own, and "
                         "the gateway does not yet send its browsers to another site's (use a portal site)",
    Profile.FORMS: "a forms site cannot be in a session group (only portal sites share one sign-in)",
}


def _duplicates(collection: str, key: str, values: Iterable[str], what: str) -> list[tuple[Location, str]]:
    seen: set[str] = set()
    problems: list[tuple[Location, str]] = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(((collection, index, key), f"the {what} {value!r} is used twice"))
        seen.add(value)
    return problems


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)
