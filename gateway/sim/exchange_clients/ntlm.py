"""NTLM (and Negotiate-wrapped NTLM) bound to the TCP connection, as IIS does it.

The acceptor is pyspnego's; it checks the client's response against the users' passwords, which
it reads from the file named by `NTLM_USER_FILE` (`DOMAIN:USER:PASSWORD` lines). That variable is
process-wide, so one `CredentialFile` per process holds the users of every simulator running in
it, and puts the previous value back when the last one stops.

Per connection: a Type 1 starts a handshake (the challenge belongs to this connection), a Type 3
on the same connection completes it and the connection is authenticated for all later requests;
a Type 3 on any other connection has no handshake to complete and fails, as on IIS.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import spnego

if TYPE_CHECKING:
    from gateway.sim.owa.config import SimUser


__all__ = ["CREDENTIALS", "ConnectionAuth", "CredentialFile", "HandshakeStep", "NtlmAcceptors"]


class CredentialFile:
    """The process-wide NTLM user store for pyspnego's acceptor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, tuple[SimUser, ...]] = {}
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._previous: str | None = None

    @staticmethod
    def lines_for(user: SimUser) -> list[str]:
        """Every name a client may authenticate with: DOMAIN\\user, the UPN, the address, bare."""
        if any(char in user.password for char in ":\r\n"):
            return []  # the store's format cannot carry these; such a user cannot use NTLM here
        names = {(user.domain, user.username), ("", user.principal_name), ("", user.smtp), ("", user.username)}
        return [f"{domain}:{name}:{user.password}" for domain, name in sorted(names)]

    def register(self, users: Iterable[SimUser]) -> int:
        with self._lock:
            token = max(self._users, default=0) + 1
            self._users[token] = tuple(users)
            if self._directory is None:
                self._directory = tempfile.TemporaryDirectory(prefix="sim-ntlm-")
                self._previous = os.environ.get("NTLM_USER_FILE")
            self._write()
            return token

    def unregister(self, token: int) -> None:
        with self._lock:
            self._users.pop(token, None)
            if self._users or self._directory is None:
                if self._directory is not None:
                    self._write()
                return
            if self._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._previous
            self._directory.cleanup()
            self._directory = None

    def _write(self) -> None:
        assert self._directory is not None
        path = Path(self._directory.name) / "users"
        lines = [line for users in self._users.values() for user in users for line in self.lines_for(user)]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.environ["NTLM_USER_FILE"] = str(path)


CREDENTIALS = CredentialFile()


@dataclass(slots=True)
class ConnectionAuth:
    """What one TCP connection has proven so far."""

    connection_id: int
    user: str | None = None            # the authenticated principal (DOMAIN\\user or UPN)
    scheme: str | None = None          # "NTLM" or "Negotiate" (the scheme that authenticated it)
    pending: Any = None                # a pyspnego acceptor between Type 1 and Type 3
    pending_scheme: str | None = None
    handshakes: int = 0


@dataclass(frozen=True, slots=True)
class HandshakeStep:
    """The outcome of one Authorization: NTLM|Negotiate header on a connection."""

    status: int                        # 401 (challenge, or failure) or 200 (authenticated)
    www_authenticate: str | None       # the header value to send back (challenge or final token)
    user: str | None = None


@dataclass
class NtlmAcceptors:
    """Connection → authentication state, for connections still open (weakly keyed by protocol)."""

    _by_connection: weakref.WeakKeyDictionary[Any, ConnectionAuth] = field(
        default_factory=weakref.WeakKeyDictionary)
    completed: int = 0
    failed: int = 0

    def of(self, connection: Any, connection_id: int) -> ConnectionAuth:
        state = self._by_connection.get(connection)
        if state is None:
            state = self._by_connection[connection] = ConnectionAuth(connection_id)
        return state

    def authenticated(self) -> list[tuple[Any, ConnectionAuth]]:
        """(server protocol, state) of each open connection NTLM/Negotiate has authenticated."""
        return [(connection, state) for connection, state in list(self._by_connection.items())
                if state.user is not None]

    def step(self, state: ConnectionAuth, scheme: str, token_text: str) -> HandshakeStep:
        try:
            token = base64.b64decode(token_text, validate=True)
        except (binascii.Error, ValueError):
            return self._fail(state)
        if state.pending is None or state.pending_scheme != scheme:
            # A new handshake: only a Type 1 (or a SPNEGO init) can start one on this connection.
            state.pending = spnego.server(protocol="negotiate" if scheme == "Negotiate" else "ntlm")
            state.pending_scheme = scheme
            state.handshakes += 1
            state.user = None
        try:
            answer = state.pending.step(token)
        except Exception:  # any malformed or unexpected token is a failed handshake, as on IIS
            return self._fail(state)
        if not state.pending.complete:
            if answer is None:
                return self._fail(state)
            return HandshakeStep(401, f"{scheme} {base64.b64encode(answer).decode()}")
        user = str(state.pending.client_principal or "")
        state.pending = state.pending_scheme = None
        if not user:
            return self._fail(state)
        state.user, state.scheme = user, scheme
        self.completed += 1
        final = f"{scheme} {base64.b64encode(answer).decode()}" if answer else None
        return HandshakeStep(200, final, user)

    def _fail(self, state: ConnectionAuth) -> HandshakeStep:
        state.pending = state.pending_scheme = None
        state.user = None
        self.failed += 1
        return HandshakeStep(401, None)
