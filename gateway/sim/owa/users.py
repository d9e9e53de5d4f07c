"""Who typed what: resolve a logon-form username to a configured mailbox user.

Exchange accepts `user`, `DOMAIN\\user` and `user@upn-suffix` for the same account, with any
letter case; the simulator does the same so the gateway's username normalisation is exercised.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from gateway.sim.owa.ansi import ansi_reading
from gateway.sim.owa.config import SimUser


class UserDirectory:
    def __init__(self, users: Iterable[SimUser]) -> None:
        self._users = tuple(users)
        self._by_name: dict[str, SimUser] = {}
        self._by_principal: dict[str, SimUser] = {}
        self._by_smtp: dict[str, SimUser] = {}
        self._changed_passwords: dict[str, str] = {}  # username (casefolded) -> password set since start
        for user in self._users:
            self._by_name.setdefault(user.username.casefold(), user)
            self._by_principal.setdefault(user.principal_name.casefold(), user)
            self._by_principal.setdefault(user.smtp.casefold(), user)
            self._by_smtp.setdefault(user.smtp.casefold(), user)

    @property
    def users(self) -> tuple[SimUser, ...]:
        return self._users

    def resolve(self, typed: str) -> SimUser | None:
        """The user `typed` names, in any of the three accepted forms, or None."""
        name = typed.strip()
        if not name:
            return None
        if "\\" in name:
            domain, _, account = name.partition("\\")
            user = self._by_name.get(account.casefold())
            if user is None or user.domain.casefold() != domain.casefold():
                return None
            return user
        if "@" in name:
            return self._by_principal.get(name.casefold())
        return self._by_name.get(name.casefold())

    def authenticate(self, typed: str, password: str) -> SimUser | None:
        """The user Exchange would sign in: the name is read through the ANSI code page (best fit)."""
        user = self.resolve(ansi_reading(typed))
        if user is None or not hmac.compare_digest(self.password_of(user).encode(), password.encode()):
            return None
        return user

    def password_of(self, user: SimUser) -> str:
        """The user's password for forms sign-in: the configured one, or the one changed to since."""
        return self._changed_passwords.get(user.username.casefold(), user.password)

    def change_password(self, typed: str, old: str, new: str) -> SimUser | None:
        """Exchange's expired-password page: the account `typed` names gets `new` when `old` is its
        password (no session needed, none consulted); None otherwise."""
        user = self.authenticate(typed, old)
        if user is not None:
            self._changed_passwords[user.username.casefold()] = new
        return user

    def mailbox(self, smtp: str) -> SimUser | None:
        return self._by_smtp.get(smtp.casefold())
