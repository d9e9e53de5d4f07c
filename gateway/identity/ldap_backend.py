"""The `ldap` first factor: Active Directory or OpenLDAP, with ldap3 in a bounded thread pool.

Library choice. bonsai has native asyncio operations, but it is a C extension built against libldap
and publishes no Linux wheels (`pip download bonsai --only-binary=:all:` finds nothing): the image
(python:3.11-slim) would need a compiler, libldap2-dev and libsasl2-dev in its build stage, and every
libldap/OpenSSL upgrade a rebuild. ldap3 is pure Python (one small dependency, pyasn1), installs from a
wheel everywhere, and is blocking; so each sign-in runs as one job in a dedicated ThreadPoolExecutor
of `pool_size` threads (the bound: a flood of sign-ins queues instead of opening a connection each),
with socket time-outs on connect and on every read. ldap3's last release is from 2021; the parts used
here (simple bind, StartTLS, search) are LDAPv3 basics, and its TLS is replaced by the standard
library's (`_VerifiedTls`): OpenSSL checks the certificate and the host name during the handshake.

A sign-in (user_bind "search"): the service account (pooled, bound connections reused) searches
`user_filter` with the typed name RFC 4515-escaped; exactly one entry must match; a fresh connection
binds as its DN with the password. With "upn"/"down_level" (Active Directory) the typed name itself
is bound (completed with `user_domain` when bare), then the entry is read as that user.

Timing: when the search finds nobody, the gateway still binds, with the password, as a DN that does
not exist under base_dn: the same round trips as a wrong password, so the answer time does not tell
whether the name exists (no padding floor, which would have to exceed the slowest directory answer).
The directory then logs a failed bind for that DN; no account is locked by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import queue
import secrets
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.identity._ldap3 import Tls, ldap3, ldap_errors
from gateway.identity.base import Failure, FailureKind, Identity, Outcome
from gateway.identity.ldap_config import LdapConfig
from gateway.identity.ldap_rules import (
    account_part,
    bind_name,
    classify_ad_bind_failure,
    fill_filter,
    first_rdn_value,
)
from gateway.identity.usernames import InvalidUserName, validate_username
from gateway.observability.logging import get_logger
from gateway.policy.users import UserName

__all__ = ["Check", "LdapFirstFactor", "Problem"]

_T = TypeVar("_T")
_log = get_logger("gateway.identity")

# Results that mean the directory is there but cannot serve now (busy, unavailable, shutting down).
_UNAVAILABLE_RESULTS = frozenset({51, 52, 80})


class Problem(enum.Enum):
    """What `diagnose()` (and a future `check`) can report, one per failure."""

    CANNOT_REACH = "cannot reach the directory"
    BAD_TLS = "TLS failed (certificate not trusted, wrong host name, or not a TLS port)"
    BAD_SERVICE_CREDENTIALS = "the service account's bind was refused"
    BASE_DN_NOT_FOUND = "base_dn does not exist or the service account may not read it"
    USER_NOT_FOUND = "user_filter finds no entry for this user"
    AMBIGUOUS_USER = "user_filter finds more than one entry for this user"
    DIRECTORY_ERROR = "the directory answered with an error"


@dataclass(frozen=True, slots=True)
class Check:
    """One step of `diagnose()`: `problem` is None when the step passed."""

    step: str
    problem: Problem | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Fault(Exception):
    """A directory fault, with what authenticate() and diagnose() each report for it."""

    def __init__(self, kind: FailureKind, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.problem = problem
        self.reason = reason


class _VerifiedTls(Tls):  # type: ignore[misc]
    """ldap3's Tls with the standard library's verification: check_hostname in the handshake.

    ldap3 checks the host name itself with the deprecated ssl.match_hostname, and not at all when
    verification is off; here OpenSSL does both. A TLS error is noted on the connection so it is
    reported as a TLS problem, not as an unreachable directory."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        super().__init__()
        self._context = context
        self._server_hostname = server_hostname

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        try:
            connection.socket = self._context.wrap_socket(
                connection.socket, server_side=False, do_handshake_on_connect=True,
                server_hostname=self._server_hostname,
            )
        except ssl.SSLError as exc:
            connection.gateway_tls_error = exc
            connection.socket.close()  # ldap3 does not close a socket whose wrapping failed
            raise


def _tls_context(config: LdapConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class LdapFirstFactor:
    """First factor against one LDAP directory. `await aclose()` when done."""

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        self._service_password = config.read_bind_password()
        self._tls = _VerifiedTls(_tls_context(config), config.host) if config.uses_tls else None
        self._executor = ThreadPoolExecutor(max_workers=config.pool_size, thread_name_prefix="ldap")
        self._idle: queue.LifoQueue[ldap3.Connection] = queue.LifoQueue()
        # Binding here with a password finds no entry; the random part keeps it from ever naming one.
        self._absent_dn = f"cn=monosign-gateway-absent-{secrets.token_hex(8)},{config.base_dn}"
        self._closed = False

    # -- public -------------------------------------------------------------------------------

    async def authenticate(self, username: str, password: str) -> Outcome:
        try:
            name = validate_username(username, allow_non_ascii=self.config.allow_non_ascii_usernames)
        except InvalidUserName as exc:
            return Failure(FailureKind.BAD_CREDENTIALS, f"username refused: {exc}")
        if not password:
            # An empty password is an unauthenticated bind, which LDAP servers accept (RFC 4513 §5.1.2).
            return Failure(FailureKind.BAD_CREDENTIALS, "empty password")
        if self._closed:
            return Failure(FailureKind.DIRECTORY_UNREACHABLE, "backend closed")
        try:
            return await self._in_thread(self._authenticate_or_fault, name, password)
        except _Fault as fault:
            return Failure(fault.kind, fault.reason)

    async def diagnose(self, username: str | None = None) -> list[Check]:
        """Reach the directory, bind the service account, read base_dn, find `username` (if given).

        Stops at the first failing step. Never binds as a user (no password is needed or logged)."""
        try:
            return await self._in_thread(self._diagnose, username)
        except _Fault as fault:
            return [Check("connect", fault.problem, fault.reason)]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        while True:
            try:
                _unbind(self._idle.get_nowait())
            except queue.Empty:
                break

    # -- thread side ---------------------------------------------------------------------------

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, function, *args)
        # Each socket operation has its own time-out; this bounds a job that makes several.
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self.config.timeout * 8)
        except TimeoutError:
            raise _Fault(FailureKind.DIRECTORY_UNREACHABLE, Problem.CANNOT_REACH,
                         "directory too slow (time-out)") from None

    def _authenticate_or_fault(self, name: UserName, password: str) -> Outcome:
        """`_authenticate`, with every exception a _Fault: authenticate() never raises, it fails closed."""
        try:
            return self._authenticate(name, password)
        except _Fault:
            raise
        except ldap_errors.LDAPException as exc:
            raise _fault(exc, None, binding_service=False) from None
        except Exception as exc:
            # ldap3 lets some low-level errors through unwrapped; fail closed and keep the trace.
            _log.exception("ldap_unexpected_error", error=type(exc).__name__)
            raise _Fault(FailureKind.DIRECTORY_UNREACHABLE, Problem.DIRECTORY_ERROR,
                         f"unexpected error ({type(exc).__name__})") from None

    def _authenticate(self, name: UserName, password: str) -> Outcome:
        config = self.config
        values = {"username": name.typed, "account": account_part(name)}
        if config.user_bind == "search":
            entries = self._with_service(lambda conn: _search_user(conn, config, values))
            if not entries:
                self._bind_as(self._absent_dn, password)  # same round trips as a wrong password
                return Failure(FailureKind.BAD_CREDENTIALS, "unknown user")
            if len(entries) > 1:
                raise _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.AMBIGUOUS_USER,
                             "user_filter matches more than one entry")
            entry = entries[0]
            # A refused bind returns at once: looking further (is the entry disabled?) would make a
            # wrong password slower for a name that exists than for one that does not.
            return self._bind_as(entry.dn, password) or self._identity(entry, None, name)
        principal = bind_name(name, config.user_bind, config.user_domain)
        if principal is None:
            return Failure(FailureKind.BAD_CREDENTIALS, "bare name and no user_domain configured")
        with self._user_connection(principal, password) as (user_conn, refused):
            if refused is not None:
                return refused
            entries = _search_user(user_conn, config, values)
            if len(entries) != 1:
                raise _Fault(FailureKind.DIRECTORY_MISCONFIGURED,
                             Problem.USER_NOT_FOUND if not entries else Problem.AMBIGUOUS_USER,
                             f"bind succeeded but user_filter finds {len(entries)} entries")
            return self._identity(entries[0], user_conn, name)

    def _identity(self, entry: _Entry, user_conn: ldap3.Connection | None, name: UserName) -> Outcome:
        config = self.config

        def lookup(conn: ldap3.Connection) -> tuple[bool, list[str]]:
            disabled = bool(config.disabled_filter) and _matches(conn, entry.dn, config.disabled_filter)
            return disabled, [] if disabled else self._groups(conn, entry)

        disabled, groups = lookup(user_conn) if user_conn is not None else self._with_service(lookup)
        if disabled:
            return Failure(FailureKind.ACCOUNT_DISABLED, "entry matches disabled_filter")
        return Identity(
            username=entry.first(config.username_attribute) or name.typed,
            display_name=entry.first(config.display_name_attribute),
            email=entry.first(config.email_attribute),
            groups=tuple(sorted(set(groups))),
            directory_id=entry.dn,
        )

    def _groups(self, conn: ldap3.Connection, entry: _Entry) -> list[str]:
        config = self.config
        group_filter = config.effective_group_filter
        if group_filter is None:
            return [first_rdn_value(dn) for dn in entry.values("memberOf")]
        search = fill_filter(group_filter, {"dn": entry.dn, "username": entry.first(config.username_attribute) or ""})
        found = _search(conn, config.group_base_dn or config.base_dn, search, [config.group_name_attribute])
        return [group.first(config.group_name_attribute) or first_rdn_value(group.dn) for group in found]

    def _bind_as(self, dn: str, password: str) -> Failure | None:
        with self._user_connection(dn, password) as (_, refused):
            return refused

    @contextlib.contextmanager
    def _user_connection(self, principal: str, password: str) -> Iterator[tuple[ldap3.Connection, Failure | None]]:
        """A fresh connection bound as the user, or the Failure the directory's refusal means."""
        conn = self._connection(principal, password)
        try:
            refused: Failure | None = None
            try:
                _open(conn, self.config)
                conn.bind()
            except ldap_errors.LDAPInvalidCredentialsResult as exc:
                refused = Failure(*classify_ad_bind_failure(str(exc.message or "")))
            except ldap_errors.LDAPException as exc:
                raise _fault(exc, conn, binding_service=False) from None
            yield conn, refused
        finally:
            _unbind(conn)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        # A Server per connection: ldap3's Server remembers a failed address as unavailable for 5 s
        # (every sign-in would then fail as "unreachable" without trying, and a TLS failure would be
        # misreported), and it is shared mutable state between threads.
        server = ldap3.Server(
            self.config.host, port=self.config.port, use_ssl=self.config.scheme == "ldaps", tls=self._tls,
            connect_timeout=self.config.timeout, get_info=ldap3.NONE,
        )
        return ldap3.Connection(
            server, user=user, password=password.encode("utf-8") if password is not None else None,
            authentication=ldap3.SIMPLE if user is not None else ldap3.ANONYMOUS,
            client_strategy=ldap3.SYNC, read_only=True, auto_referrals=False, raise_exceptions=True,
            # Whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer.
            receive_timeout=math.ceil(self.config.timeout), check_names=False,
        )

    def _with_service(self, operation: Callable[[ldap3.Connection], _T]) -> _T:
        """Run `operation` on a pooled service-account connection; a reused connection that the
        directory has dropped meanwhile (restart, idle time-out) is replaced once."""
        for attempt in (1, 2):
            reused = True
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn, reused = self._open_service(), False
            try:
                result = operation(conn)
            except _Fault:
                _unbind(conn)
                raise
            except ldap_errors.LDAPException as exc:
                _unbind(conn)
                fault = _fault(exc, conn, binding_service=False)
                if reused and attempt == 1 and fault.kind is FailureKind.DIRECTORY_UNREACHABLE:
                    continue
                raise fault from None
            if self._idle.qsize() < self.config.pool_size and not self._closed:
                self._idle.put(conn)
            else:
                _unbind(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_service(self) -> ldap3.Connection:
        conn = self._connection(self.config.bind_dn, self._service_password)
        try:
            _open(conn, self.config)
            if self.config.bind_dn is not None:
                conn.bind()
        except ldap_errors.LDAPException as exc:
            _unbind(conn)
            raise _fault(exc, conn, binding_service=True) from None
        return conn

    def _diagnose(self, username: str | None) -> list[Check]:
        config = self.config
        checks: list[Check] = []
        probe = self._connection(None, None)
        try:
            _open(probe, config)
        except ldap_errors.LDAPException as exc:
            fault = _fault(exc, probe, binding_service=False)
            return [Check("connect", fault.problem, fault.reason)]
        finally:
            _unbind(probe)
        tls = "ldaps" if config.scheme == "ldaps" else "StartTLS" if config.start_tls else "no TLS"
        checks.append(Check("connect", None, f"{config.host}:{config.port} answered ({tls})"))
        if config.bind_dn is None and config.user_bind != "search":
            checks.append(Check("service account", None, "none configured: entries are read as the user"))
            return checks
        try:
            self._with_service(lambda conn: _search(conn, config.base_dn, "(objectClass=*)", [], scope=ldap3.BASE))
        except _Fault as fault:
            step = "service account" if fault.problem is Problem.BAD_SERVICE_CREDENTIALS else "base_dn"
            return [*checks, Check(step, fault.problem, fault.reason)]
        who = config.bind_dn or "anonymous"
        checks.append(Check("service account", None, f"bound as {who}"))
        checks.append(Check("base_dn", None, f"{config.base_dn} readable"))
        if username is None:
            return checks
        try:
            name = validate_username(username, allow_non_ascii=config.allow_non_ascii_usernames)
        except InvalidUserName as exc:
            return [*checks, Check("user", Problem.USER_NOT_FOUND, f"not a valid user name: {exc}")]
        values = {"username": name.typed, "account": account_part(name)}
        try:
            entries = self._with_service(lambda conn: _search_user(conn, config, values))
        except _Fault as fault:
            return [*checks, Check("user", fault.problem, fault.reason)]
        if len(entries) != 1:
            problem = Problem.USER_NOT_FOUND if not entries else Problem.AMBIGUOUS_USER
            return [*checks, Check("user", problem, f"{len(entries)} entries match user_filter")]
        checks.append(Check("user", None, f"found {entries[0].dn}"))
        return checks


@dataclass(frozen=True, slots=True)
class _Entry:
    dn: str
    attributes: dict[str, list[str]]

    def values(self, attribute: str) -> list[str]:
        for name, values in self.attributes.items():
            if name.lower() == attribute.lower():
                return values
        return []

    def first(self, attribute: str) -> str | None:
        values = self.values(attribute)
        return values[0] if values else None


def _open(conn: ldap3.Connection, config: LdapConfig) -> None:
    conn.open()
    if config.start_tls:
        conn.start_tls()


def _search(conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str],
            *, scope: str = ldap3.SUBTREE, size_limit: int = 0) -> list[_Entry]:
    try:
        conn.search(base, search_filter, search_scope=scope, attributes=attributes or [ldap3.NO_ATTRIBUTES],
                    size_limit=size_limit, dereference_aliases=ldap3.DEREF_NEVER)
    except ldap_errors.LDAPSizeLimitExceededResult:
        pass  # the entries up to the limit are in conn.response: enough to say "more than one"
    except ldap_errors.LDAPNoSuchObjectResult:
        raise _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.BASE_DN_NOT_FOUND,
                     f"search base {base!r} not found") from None
    return [
        _Entry(item["dn"], {name: [_text(value) for value in _as_list(values)]
                            for name, values in item.get("attributes", {}).items()})
        for item in conn.response or [] if item.get("type") == "searchResEntry"
    ]


def _search_user(conn: ldap3.Connection, config: LdapConfig, values: dict[str, str]) -> list[_Entry]:
    attributes = [config.username_attribute, config.display_name_attribute, config.email_attribute]
    if config.effective_group_filter is None:
        attributes.append("memberOf")
    return _search(conn, config.base_dn, fill_filter(config.user_filter, values), attributes, size_limit=2)


def _matches(conn: ldap3.Connection, dn: str, search_filter: str | None) -> bool:
    if not search_filter:
        return False
    return bool(_search(conn, dn, search_filter, [], scope=ldap3.BASE))


def _as_list(values: Any) -> list[Any]:
    return list(values) if isinstance(values, list | tuple) else [values]


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _unbind(conn: ldap3.Connection) -> None:
    """Unbind and close; also the socket of a connection that failed half-way (ldap3 leaves it open)."""
    with contextlib.suppress(Exception):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _fault(exc: ldap_errors.LDAPException, conn: ldap3.Connection | None, *, binding_service: bool) -> _Fault:
    """One ldap3 exception as the failure kind, the diagnosis and a short reason."""
    tls_error = getattr(conn, "gateway_tls_error", None)
    if tls_error is not None:
        detail = getattr(tls_error, "verify_message", None) or getattr(tls_error, "reason", None) or "handshake failed"
        return _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.BAD_TLS, f"TLS: {detail}")
    if isinstance(exc, ldap_errors.LDAPInvalidFilterError | ldap_errors.LDAPInvalidDnError):
        return _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.DIRECTORY_ERROR, f"gateway settings: {exc}")
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.BAD_TLS, "StartTLS refused by the directory")
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult) and binding_service:
        return _Fault(FailureKind.DIRECTORY_MISCONFIGURED, Problem.BAD_SERVICE_CREDENTIALS,
                      "service account bind refused (bind_dn / bind_password_file)")
    if isinstance(exc, ldap_errors.LDAPOperationResult):
        result = getattr(exc, "result", None)
        description = getattr(exc, "description", None) or "error"
        if result in _UNAVAILABLE_RESULTS:
            return _Fault(FailureKind.DIRECTORY_UNREACHABLE, Problem.CANNOT_REACH, f"directory {description}")
        problem = Problem.BAD_SERVICE_CREDENTIALS if binding_service else Problem.DIRECTORY_ERROR
        return _Fault(FailureKind.DIRECTORY_MISCONFIGURED, problem, f"directory answered {description} ({result})")
    if isinstance(exc, ldap_errors.LDAPCommunicationError | ldap_errors.LDAPSocketOpenError
                  | ldap_errors.LDAPSessionTerminatedByServerError | ldap_errors.LDAPResponseTimeoutError):
        return _Fault(FailureKind.DIRECTORY_UNREACHABLE, Problem.CANNOT_REACH,
                      f"cannot reach the directory ({type(exc).__name__})")
    return _Fault(FailureKind.DIRECTORY_UNREACHABLE, Problem.CANNOT_REACH, f"directory error ({type(exc).__name__})")
