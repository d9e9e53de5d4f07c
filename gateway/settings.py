"""The gateway's settings: environment, `.env`, the configuration file's `settings:`, and `NAME_FILE`
for secrets in each (in that order: gateway.commands.arguments.SETTINGS_PRECEDENCE).

The IIS module's setting names (`MONOSIGN_*`) keep their meaning; the gateway's own start with
`GATEWAY_`. Every field here is documented in `.env.example` and `docs/configuration.md` (a test
checks both). Field names are the environment names in lower case, so an error can name the exact
variable the operator has to fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import typing
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from gateway.located import ConfigError, ConfigProblem, Location, compose, line_of, read_text

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
MIN_SESSION_SECRET_LENGTH = 32


class SettingsError(Exception):
    """Raised when the settings cannot be used; `problems` holds one operator-facing line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(value: object) -> HostPort:
    if isinstance(value, HostPort):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    text = value.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError("the port must be between 0 and 65535")
    return HostPort(host, number)


def _split_list(value: object) -> object:
    """Comma- or semicolon-separated lists, as the IIS module's web.config wrote them."""
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host name")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not accepted; use the dedicated settings")
    if parts.query or parts.fragment:
        raise ValueError("expected a URL without query or fragment")
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        raise ValueError("expected a port from 1 to 65535")
    return value.rstrip("/")


def _public_origin(value: str) -> str:
    """The public URL is an origin: every absolute URL the gateway builds is this plus a path, so a
    path here would be doubled (`/owa/owa/`), and a query, fragment or user name would end up in them.
    A lone trailing `/` is accepted (and dropped)."""
    text = value.strip()
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    # urlsplit drops tabs and line breaks and splits at `\\` loosely: look at the text itself too.
    if (parts.scheme not in ("http", "https") or parts.path not in ("", "/") or not port_ok
            or any(char in text for char in "?#@\\") or not text.isprintable() or " " in text
            or _ORIGIN_HOST.fullmatch(parts.netloc) is None):
        raise PydanticCustomError(SHOWN_VALUE_ERROR, "must be scheme://host[:port] with no path; got {shown}",
                                  {"shown": _shown_url(text)})
    return f"{parts.scheme}://{parts.netloc}"


# host[:port] of the public origin: a DNS name, an IPv4 address or a bracketed IPv6 literal.
_ORIGIN_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?", re.ASCII)
# Errors of this type name the value in their message already (without any password in it).
SHOWN_VALUE_ERROR = "setting_value"


def _shown_url(text: str) -> str:
    """The URL as an error message may show it: quoted, shortened, a user name and password hidden."""
    scheme, sep, rest = text.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        rest = "…@" + authority.rpartition("@")[2] + slash + tail
    shown = f"{scheme}{sep}{rest}" if sep else text
    return repr(shown if len(shown) <= 80 else shown[:79] + "…")


def _one_of(choices: type[StrEnum]) -> Callable[[object], object]:
    """A parser for an enumeration setting: any case, surrounding spaces ignored; one wording of the error."""
    by_value = {member.value: member for member in choices}

    def parse(value: object) -> object:
        if isinstance(value, choices):
            return value
        if isinstance(value, str) and value.strip().lower() in by_value:
            return by_value[value.strip().lower()]
        shown = repr(value if not isinstance(value, str) or len(value) <= 60 else value[:59] + "…")
        raise PydanticCustomError(SHOWN_VALUE_ERROR, "{shown} is not one of: {choices}",
                                  {"shown": shown, "choices": ", ".join(by_value)})

    return parse


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return value


def _api_path(value: str) -> str:
    if not value.startswith("/") or "?" in value or "#" in value or any(c.isspace() for c in value):
        raise ValueError("expected a path starting with /, without query, fragment or spaces")
    return value


def _push_status_path(value: str) -> str:
    if value.count("{request_id}") != 1 or value.replace("{request_id}", "").count("{"):
        raise ValueError("expected a path with exactly one {request_id} placeholder")
    return value


# Logo formats the gateway serves (as /_gateway/static/brand-logo), by file name suffix.
BRAND_LOGO_TYPES: Mapping[str, str] = {
    ".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".gif": "image/gif", ".webp": "image/webp",
}
MAX_BRAND_LOGO_BYTES = 256 * 1024


def _brand_color(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError("expected a colour as #rrggbb, e.g. #0f6cbd")
    return value.lower()


def _display_text(value: str) -> str:
    """Text shown on the pages: one line, no control or format characters (they could fake layout)."""
    text = value.strip()
    if not text or any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text):
        raise ValueError("expected one line of printable text")
    return text


def _brand_logo_file(value: Path) -> Path:
    if value.suffix.lower() not in BRAND_LOGO_TYPES:
        raise ValueError(f"expected one of {', '.join(sorted(BRAND_LOGO_TYPES))}")
    if not value.is_file():
        raise ValueError("no readable file there")
    if value.stat().st_size > MAX_BRAND_LOGO_BYTES:
        raise ValueError(f"larger than {MAX_BRAND_LOGO_BYTES // 1024} KiB")
    return value


def _directory(value: Path) -> Path:
    if not value.is_dir():
        raise ValueError("no directory there")
    return value


HttpUrlStr = Annotated[str, AfterValidator(_http_url)]
PublicOrigin = Annotated[str, AfterValidator(_public_origin)]
ApiPath = Annotated[str, AfterValidator(_api_path)]
ListenAddress = Annotated[HostPort, NoDecode, BeforeValidator(parse_host_port)]
StrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
CidrList = Annotated[list[Annotated[str, AfterValidator(_cidr)]], NoDecode, BeforeValidator(_split_list)]
BrandColor = Annotated[str, AfterValidator(_brand_color)]
DisplayText = Annotated[str, Field(max_length=200), AfterValidator(_display_text)]
BrandLogoFile = Annotated[Path, AfterValidator(_brand_logo_file)]
Directory = Annotated[Path, AfterValidator(_directory)]


class FailMode(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class StoreKind(StrEnum):
    MEMORY = "memory"
    REDIS = "redis"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class RoutePolicy(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class PageLanguage(StrEnum):
    AUTO = "auto"
    EN = "en"
    TR = "tr"


# Enumeration settings: `Open`, `OPEN` and ` open ` all mean `open`.
FailModeSetting = Annotated[FailMode, BeforeValidator(_one_of(FailMode))]
StoreKindSetting = Annotated[StoreKind, BeforeValidator(_one_of(StoreKind))]
LogFormatSetting = Annotated[LogFormat, BeforeValidator(_one_of(LogFormat))]
LogLevelSetting = Annotated[LogLevel, BeforeValidator(_one_of(LogLevel))]
RoutePolicySetting = Annotated[RoutePolicy, BeforeValidator(_one_of(RoutePolicy))]
PageLanguageSetting = Annotated[PageLanguage, BeforeValidator(_one_of(PageLanguage))]


SECRET_FIELDS = frozenset({"monosign_api_key", "monosign_api_secret", "gateway_session_secret",
                           "gateway_session_secret_previous", "gateway_redis_url"})


class FileSecretsSource(PydanticBaseSettingsSource):
    """`NAME_FILE=/run/secrets/x` reads NAME from that file (Docker and Kubernetes secrets)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = {key.upper(): value for key, value in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = self._environ.get(f"{field_name.upper()}_FILE")
        if path is None:
            return None, field_name, False
        if field_name.upper() in self._environ:
            raise SettingsError([f"{field_name.upper()} and {field_name.upper()}_FILE are both set; keep one"])
        try:
            content = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                [f"{field_name.upper()}_FILE: cannot read {path!r} ({exc.strerror or exc})"]
            ) from None
        return content, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                found[key] = value
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        # `NAME=` (as in .env.example) means "not set", not an empty path or secret.
        env_ignore_empty=True,
    )

    # --- The IIS module's settings, same names, same meaning -----------------------------------
    monosign_api_url: HttpUrlStr = Field(description="Base URL of the Monosign API.")
    monosign_api_key: SecretStr = Field(description="Access key (application id) of type Rest API.")
    monosign_api_secret: SecretStr = Field(description="Secret of that access key.")
    monosign_debug_mode: bool = False
    monosign_log_path: Path | None = None
    monosign_user_exceptions: StrList = Field(default_factory=list)
    monosign_user_source: str | None = None

    # --- Monosign client ------------------------------------------------------------------------
    monosign_connect_timeout: float = Field(3.0, gt=0)
    monosign_timeout: float = Field(10.0, gt=0)
    monosign_ca_file: Path | None = None
    monosign_tls_verify: bool = True
    monosign_breaker_threshold: int = Field(5, ge=1)
    monosign_breaker_cooldown: float = Field(30.0, gt=0)
    monosign_max_connections: int = Field(20, ge=1, le=1000)
    # The API paths and codes below are our reading of the contract (docs/monosign-api.md), not the
    # vendor's published text; they are settings so an operator can match their Monosign without a change.
    monosign_path_user_lookup: ApiPath = "/api/v1.4/users/by-username"
    monosign_path_push_start: ApiPath = "/api/v1.4/mfa/push"
    monosign_path_push_status: Annotated[ApiPath, AfterValidator(_push_status_path)] = (
        "/api/v1.4/mfa/push/{request_id}"
    )
    monosign_path_verify: ApiPath = "/api/v1.4/mfa/verify"
    monosign_code_user_not_found: int = 21
    monosign_code_invalid_code: int = 31
    monosign_code_locked: int = 32
    monosign_code_push_unknown: int = 33

    # --- Listeners and TLS ------------------------------------------------------------------------
    gateway_listen: ListenAddress = Field(default=HostPort("0.0.0.0", 8080))
    gateway_admin_listen: ListenAddress = Field(default=HostPort("127.0.0.1", 9090))
    gateway_tls_cert_file: Path | None = None
    gateway_tls_key_file: Path | None = None
    gateway_public_url: PublicOrigin = Field(description="The URL users type, e.g. https://mail.example.com")
    gateway_allowed_hosts: StrList = Field(default_factory=list)
    gateway_trusted_proxies: CidrList = Field(default_factory=list)

    # --- Upstream (Exchange) ----------------------------------------------------------------------
    gateway_upstream_url: HttpUrlStr
    gateway_upstream_ca_file: Path | None = None
    gateway_upstream_tls_verify: bool = True
    gateway_upstream_pool_size: int = Field(256, ge=1, le=65536)
    gateway_upstream_connect_timeout: float = Field(5.0, gt=0)
    gateway_upstream_read_timeout: float = Field(120.0, gt=0)
    # Long-lived Exchange traffic may be silent much longer than ordinary requests (seconds).
    gateway_timeout_activesync: float = Field(3660.0, gt=0)  # Ping/Sync heartbeat: up to 3540 s
    gateway_timeout_windows_auth: float = Field(10800.0, gt=0)  # MAPI NotificationWait, RPC channels, EWS streams
    gateway_timeout_owa_notifications: float = Field(3660.0, gt=0)  # OWA's ev.owa2 notification channel

    # --- Client-side limits -----------------------------------------------------------------------
    gateway_header_timeout: float = Field(15.0, gt=0)
    gateway_max_header_size: int = Field(16384, ge=1024)
    gateway_max_headers: int = Field(100, ge=8)
    gateway_shutdown_grace: float = Field(30.0, ge=0)
    gateway_shutdown_delay: float = Field(0.0, ge=0)

    # --- Route policy -------------------------------------------------------------------------------
    gateway_policy_activesync: RoutePolicySetting = RoutePolicy.ALLOW
    gateway_policy_activesync_networks: CidrList = Field(default_factory=list)
    gateway_policy_activesync_users: StrList = Field(default_factory=list)
    gateway_policy_windows_auth: RoutePolicySetting = RoutePolicy.ALLOW
    gateway_policy_windows_auth_networks: CidrList = Field(default_factory=list)
    gateway_policy_windows_auth_users: StrList = Field(default_factory=list)
    gateway_policy_powershell: RoutePolicySetting = RoutePolicy.DENY
    gateway_policy_powershell_networks: CidrList = Field(default_factory=list)
    gateway_policy_powershell_users: StrList = Field(default_factory=list)
    gateway_policy_ecp: RoutePolicySetting = RoutePolicy.ALLOW

    # --- Sessions and store -------------------------------------------------------------------------
    gateway_session_store: StoreKindSetting = StoreKind.MEMORY
    gateway_redis_url: SecretStr | None = None
    gateway_session_secret: SecretStr | None = None
    gateway_session_secret_previous: SecretStr | None = None
    gateway_session_idle_timeout: float = Field(1800.0, gt=0)
    gateway_session_absolute_timeout: float = Field(43200.0, gt=0)
    gateway_session_cache_seconds: float = Field(2.0, ge=0, le=60)
    gateway_memory_store_max_entries: int = Field(200_000, ge=1_000, le=10_000_000)
    gateway_redis_ca_file: Path | None = None
    gateway_redis_prefix: str = Field("msgw:", min_length=1, max_length=64)
    gateway_redis_timeout: float = Field(2.0, gt=0, le=30)
    gateway_fail_mode: FailModeSetting = FailMode.CLOSED
    gateway_workers: int = Field(1, ge=1, le=64)

    # --- Second factor: brute-force limits and the login form -------------------------------------
    gateway_mfa_max_failures: int = Field(5, ge=1, le=100)
    gateway_mfa_lockout_seconds: float = Field(300.0, ge=1, le=86400)
    gateway_mfa_max_pushes: int = Field(10, ge=1, le=10000)
    # Smart lockout (gateway.mfa.lockout): GATEWAY_MFA_MAX_FAILURES counts per user and client
    # network (and per user and familiar device); these count per user overall and per address.
    gateway_mfa_max_failures_user: int = Field(50, ge=1, le=10000)
    gateway_mfa_max_failures_ip: int = Field(30, ge=1, le=10000)
    gateway_mfa_network_prefix_v4: int = Field(24, ge=8, le=32)
    gateway_mfa_network_prefix_v6: int = Field(64, ge=16, le=128)
    gateway_mfa_device_days: float = Field(30.0, ge=0, le=400)  # 0: no familiar-device cookie
    gateway_mfa_number_matching: bool = False
    gateway_mfa_code_length: int = Field(6, ge=6, le=8)
    gateway_login_max_body: int = Field(16384, ge=1024, le=16384)

    # --- Gateway pages: language and brand -----------------------------------------------------------
    gateway_language: PageLanguageSetting = PageLanguage.AUTO
    gateway_brand_name: DisplayText = "Outlook on the web"
    gateway_brand_color: BrandColor = "#0f6cbd"
    gateway_brand_logo_file: BrandLogoFile | None = None
    gateway_brand_support_text: DisplayText | None = None
    gateway_templates_dir: Directory | None = None

    # --- Logs -----------------------------------------------------------------------------------------
    gateway_log_format: LogFormatSetting = LogFormat.JSON
    gateway_log_level: LogLevelSetting = LogLevel.INFO
    gateway_access_log: bool = True  # one line per request (`on`/`off`), whatever the level

    # --- Sites and rules ------------------------------------------------------------------------------
    # A YAML file of sites and rules (gateway.config); without it, the settings above describe one site.
    gateway_config_file: Path | None = None

    @field_validator("gateway_redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in (
            "redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel",
        ):
            raise ValueError("expected a redis://, rediss://, unix:// or redis+sentinel:// URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems: list[str] = []
        if (self.gateway_tls_cert_file is None) != (self.gateway_tls_key_file is None):
            problems.append("GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE: set both (TLS) or neither (plain HTTP)")
        for name in ("gateway_tls_cert_file", "gateway_tls_key_file", "gateway_upstream_ca_file",
                     "monosign_ca_file", "gateway_redis_ca_file", "gateway_config_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                problems.append(f"{name.upper()}: no readable file at {str(path)!r}")
        if self.gateway_session_store is StoreKind.REDIS and self.gateway_redis_url is None:
            problems.append("GATEWAY_REDIS_URL: required when GATEWAY_SESSION_STORE=redis")
        if self.gateway_session_store is StoreKind.REDIS and self.gateway_session_secret is None:
            problems.append(
                "GATEWAY_SESSION_SECRET: required when GATEWAY_SESSION_STORE=redis "
                "(every replica needs the same key)"
            )
        for name in ("gateway_session_secret", "gateway_session_secret_previous"):
            secret = getattr(self, name)
            if secret is not None and len(secret.get_secret_value()) < MIN_SESSION_SECRET_LENGTH:
                problems.append(
                    f"{name.upper()}: at least {MIN_SESSION_SECRET_LENGTH} characters "
                    "(e.g. the output of `openssl rand -base64 48`)"
                )
        if self.gateway_workers > 1 and self.gateway_session_store is StoreKind.MEMORY:
            problems.append(
                "GATEWAY_WORKERS: more than one worker needs a shared store; "
                "set GATEWAY_SESSION_STORE=redis and GATEWAY_REDIS_URL"
            )
        if self.gateway_session_absolute_timeout < self.gateway_session_idle_timeout:
            problems.append("GATEWAY_SESSION_ABSOLUTE_TIMEOUT: must not be shorter than GATEWAY_SESSION_IDLE_TIMEOUT")
        if problems:
            raise SettingsError(problems)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The precedence stated in gateway.commands.arguments.SETTINGS_PRECEDENCE: the environment,
        # .env, the configuration file; each place's NAME_FILE stands beside its NAME (both: an error).
        dotenv_values = {key: value for key, value in getattr(dotenv_settings, "env_vars", {}).items() if value}
        environ = {key: value for key, value in os.environ.items() if value}
        init_kwargs: Mapping[str, Any] = getattr(init_settings, "init_kwargs", {})
        config_file = _config_file_path(init_kwargs, environ, dotenv_values)
        return (init_settings, env_settings, FileSecretsSource(settings_cls, environ),
                dotenv_settings, FileSecretsSource(settings_cls, dotenv_values),
                ConfigFileSource(settings_cls, config_file))

    # --- Derived values (one place for each) -----------------------------------------------------
    @property
    def public_is_https(self) -> bool:
        return self.gateway_public_url.startswith("https://")

    @property
    def public_host(self) -> str:
        return urlsplit(self.gateway_public_url).netloc.lower()

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host header values the gateway answers to (the public URL's host, plus any extra)."""
        return frozenset({self.public_host, *(h.lower() for h in self.gateway_allowed_hosts)})

    @property
    def log_level(self) -> LogLevel:
        """GATEWAY_LOG_LEVEL, or debug when MONOSIGN_DEBUG_MODE=true (the IIS module's switch)."""
        return LogLevel.DEBUG if self.monosign_debug_mode else self.gateway_log_level

    def plain_http_warnings(self) -> list[str]:
        """http:// is accepted for demos and tests; anywhere else it deserves a warning."""
        warnings = []
        for name in ("monosign_api_url", "gateway_upstream_url", "gateway_public_url"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
                warnings.append(f"{name.upper()} uses plain http:// to a host that is not loopback")
        if not self.gateway_upstream_tls_verify:
            warnings.append("GATEWAY_UPSTREAM_TLS_VERIFY=false: the upstream's certificate is not checked")
        if not self.monosign_tls_verify:
            warnings.append("MONOSIGN_TLS_VERIFY=false: Monosign's certificate is not checked")
        return warnings


def _describe(error: Mapping[str, Any]) -> str:
    location = [str(part) for part in error.get("loc", ()) if not str(part).isdigit()]
    name = location[0].upper() if location else "settings"
    if error.get("type") == "missing":
        return f"{name}: required but not set"
    if error.get("type") == SHOWN_VALUE_ERROR:
        return f"{name}: {error.get('msg')}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if location and location[0] in SECRET_FIELDS:
        return f"{name}: {message}"
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {str(value)[:60]!r})"
    if isinstance(value, str) and "://" in value:  # a URL: never its user name and password
        shown = f" (got {_shown_url(value)})"
    return f"{name}: {message}{shown}"


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build the settings or raise SettingsError with one line per problem (never a secret)."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except SettingsError:
        raise
    except PydanticSettingsError as exc:
        # A value a source could not even decode; its message names the field, never the value.
        match = re.search(r'field "(\w+)"', str(exc))
        name = match.group(1).upper() if match else "settings"
        raise SettingsError([f"{name}: cannot be parsed"]) from None
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, SettingsError):
                problems.extend(ctx_error.problems)
            else:
                problems.append(_describe(error))
        raise SettingsError(problems) from None


# --- Settings in the configuration file ---------------------------------------------------------
# The key of the configuration file that holds settings, by their environment names.
SETTINGS_KEY = "settings"
# The file cannot name itself.
NOT_IN_CONFIG_FILE = frozenset({"gateway_config_file"})
FILE_SUFFIX = "_FILE"


@dataclass(frozen=True, slots=True, repr=False)
class FileSettings:
    """The configuration file's `settings:`, read: field name -> value (each NAME_FILE's file read).
    Its repr names the settings only: values may be secrets."""

    values: Mapping[str, Any] = dataclass_field(default_factory=dict)
    clear_secrets: tuple[str, ...] = ()  # secret settings written in the file itself, not as NAME_FILE

    def __repr__(self) -> str:
        return f"FileSettings({', '.join(sorted(name.upper() for name in self.values))})"

    def changed_since(self, earlier: FileSettings) -> tuple[str, ...]:
        """The environment names of the settings whose value differs from `earlier`'s (set, changed or removed)."""
        names = set(self.values) | set(earlier.values)
        return tuple(sorted(name.upper() for name in names
                            if self.values.get(name, _UNSET) != earlier.values.get(name, _UNSET)))


_UNSET = object()


def read_file_settings(data: object, base_dir: Path | None) -> tuple[FileSettings, list[tuple[Location, str]]]:
    """Read the `settings:` mapping of the configuration file; problems are located below it.

    Names are the environment's, in capitals; `NAME_FILE` reads NAME from a file, as in the
    environment. Relative paths (a NAME_FILE, a file or directory setting) are taken from `base_dir`,
    the file's directory, like every path in the file. Each value is validated as its setting's type
    here, so its problem can name its line, whatever a higher place sets; relations between settings
    are checked once they are all known (`Settings`). A key with no value, or "", is not set (like `NAME=`).
    """
    if data is None:
        return FileSettings(), []
    if not isinstance(data, dict):
        return FileSettings(), [((), "expected a mapping of settings by their environment names, "
                                     "e.g. GATEWAY_PUBLIC_URL: https://mail.example.com")]
    names = _environment_names()
    values: dict[str, Any] = {}
    clear: list[str] = []
    problems: list[tuple[Location, str]] = []
    for key, value in data.items():
        key_text = str(key)
        name, from_file = _setting_of(key_text, names)
        if name is None:
            problems.append(((key_text,), _unknown_setting(key_text, names)))
            continue
        if name in NOT_IN_CONFIG_FILE:
            problems.append(((key_text,), "the file cannot name itself: set GATEWAY_CONFIG_FILE in the environment "
                                          "or the .env file"))
            continue
        if value is None or value == "":  # as `NAME=` in .env: not set
            continue
        if from_file:
            if data.get(name.upper()) not in (None, ""):
                problems.append(((key_text,), f"{name.upper()} and {key_text} are both set; keep one"))
                continue
            if not isinstance(value, str) or not value.strip():
                problems.append(((key_text,), "expected the path of a file that holds the value"))
                continue
            path = _resolved(value, base_dir)
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(((key_text,), f"cannot read {str(path)!r} ({exc.strerror or exc})"))
                continue
        else:
            if isinstance(value, str) and _is_path_setting(name):
                value = str(_resolved(value, base_dir))
        try:
            _adapter(name).validate_python(value)
        except ValidationError as exc:
            problems += [((key_text,), _value_problem(name, error)) for error in exc.errors()]
            continue
        values[name] = value
        if name in SECRET_FIELDS and not from_file:
            clear.append(key_text)
    return FileSettings(values, tuple(clear)), problems


def file_settings(path: Path) -> FileSettings:
    """The `settings:` of GATEWAY_CONFIG_FILE at start, or SettingsError naming each problem's line.
    A file that is not there is said by the settings' own check (GATEWAY_CONFIG_FILE), and a file
    that is not a mapping by the configuration's (gateway.config.loader)."""
    if not path.is_file():
        return FileSettings()
    source = str(path)
    try:
        node, data = compose(read_text(path), source)
    except ConfigError as exc:
        raise SettingsError([str(problem) for problem in exc.problems]) from None
    if not isinstance(data, dict):
        return FileSettings()
    settings, problems = read_file_settings(data.get(SETTINGS_KEY), path.parent)
    if problems:
        located = [ConfigProblem(source, line_of(node, (SETTINGS_KEY, *where)), (SETTINGS_KEY, *where), message)
                   for where, message in problems]
        raise SettingsError([str(problem) for problem in ConfigError(located).problems])
    return settings


class ConfigFileSource(PydanticBaseSettingsSource):
    """The `settings:` of GATEWAY_CONFIG_FILE, below the environment and .env."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values = dict(file_settings(path).values) if path is not None else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _config_file_path(init_kwargs: Mapping[str, Any], environ: Mapping[str, str],
                      dotenv: Mapping[str, str | None]) -> Path | None:
    """GATEWAY_CONFIG_FILE from the places above the file, the first that sets it."""
    for place in (init_kwargs, environ, dotenv):
        for key, value in place.items():
            if key.lower() == "gateway_config_file" and value:
                return Path(value)
    return None


def _environment_names() -> dict[str, str]:
    return {name.upper(): name for name in Settings.model_fields}


def _setting_of(key: str, names: Mapping[str, str]) -> tuple[str | None, bool]:
    """(field name, whether the key is NAME_FILE) for a key of `settings:`; (None, False) if none."""
    if key in names:
        return names[key], False
    if key.endswith(FILE_SUFFIX) and key[: -len(FILE_SUFFIX)] in names:
        return names[key[: -len(FILE_SUFFIX)]], True
    return None, False


def _unknown_setting(key: str, names: Mapping[str, str]) -> str:
    upper = key.upper()
    if _setting_of(upper, names)[0] is not None:
        return f"settings are written by their environment names, in capitals: {upper!r}"
    close = difflib.get_close_matches(upper, list(names), n=1)
    return f"unknown setting; did you mean {close[0]!r}?" if close else \
        "unknown setting (docs/configuration.md lists them)"


def _resolved(value: str, base_dir: Path | None) -> Path:
    path = Path(value)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _is_path_setting(name: str) -> bool:
    return _names_path(Settings.model_fields[name].annotation)


def _names_path(annotation: Any) -> bool:
    """`Path`, `Path | None`, `Annotated[Path, ...] | None`."""
    if annotation is Path:
        return True
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return _names_path(arguments[0])
    return any(_names_path(argument) for argument in arguments if argument is not type(None))


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(name: str) -> TypeAdapter[Any]:
    """One setting's type, with its constraints and parsers, as the settings validate it."""
    adapter = _ADAPTERS.get(name)
    if adapter is None:
        info = Settings.model_fields[name]
        kind: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        adapter = _ADAPTERS[name] = TypeAdapter(kind)
    return adapter


def _value_problem(name: str, error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if error.get("type") == "string_type" and isinstance(value, bool):
        return "expected text, got a boolean (YAML reads yes/no/on/off/true/false unquoted as booleans: quote it)"
    if error.get("type") == "string_type" and isinstance(value, int | float):
        return "expected text, got a number: quote it"
    return _describe({**error, "loc": (name, *error.get("loc", ()))}).removeprefix(f"{name.upper()}: ")
