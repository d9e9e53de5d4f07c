"""What reached the simulator: a bounded request log and counters, served as JSON by /_sim/*.

Tests assert on these to prove what the gateway forwarded (and what it must never forward, such
as tampered cookies). Secrets stay out: Cookie and Authorization values are never recorded, only
cookie names and whether (and with which scheme) an Authorization header came.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.sim.owa.wire import parse_cookie_header

_REDACTED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})


@dataclass(slots=True)
class RequestRecord:
    id: int
    time: str
    connection: int
    peer: str
    tls: bool
    sni: str | None
    method: str
    target: str
    http_version: str
    headers: list[tuple[str, str]]
    cookie_names: list[str]
    authorization: str | None        # the scheme ("Basic", "NTLM", ...) or None when absent
    body_length: int | None = None
    status: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "time": self.time, "connection": self.connection, "peer": self.peer,
            "tls": self.tls, "sni": self.sni, "method": self.method, "target": self.target,
            "http_version": self.http_version, "headers": [list(pair) for pair in self.headers],
            "cookie_names": self.cookie_names, "authorization": self.authorization,
            "body_length": self.body_length, "status": self.status,
        }


def redacted_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, "[redacted]" if name.lower() in _REDACTED_HEADERS else value) for name, value in headers]


def authorization_scheme(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "authorization":
            return value.strip().split(" ", 1)[0] or "(empty)"
    return None


@dataclass(slots=True)
class Counters:
    tampered_cookies: int = 0
    ended_session_replays: int = 0
    expired_sessions: int = 0
    canary_failures: int = 0
    logoffs: int = 0
    requests_per_path: Counter[str] = field(default_factory=Counter)
    logins_ok: Counter[str] = field(default_factory=Counter)
    logins_failed: Counter[str] = field(default_factory=Counter)
    password_changes: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        users = sorted(set(self.logins_ok) | set(self.logins_failed))
        return {
            "tampered_cookies": self.tampered_cookies,
            "ended_session_replays": self.ended_session_replays,
            "expired_sessions": self.expired_sessions,
            "canary_failures": self.canary_failures,
            "logoffs": self.logoffs,
            "requests_per_path": dict(sorted(self.requests_per_path.items())),
            "logins": {user: {"ok": self.logins_ok[user], "failed": self.logins_failed[user]} for user in users},
            "password_changes": dict(sorted(self.password_changes.items())),
        }


class Recorder:
    def __init__(self, limit: int, *, lenient_cookies: bool = False) -> None:
        self._log: deque[RequestRecord] = deque(maxlen=limit)
        self._lenient_cookies = lenient_cookies  # cookie_names as the simulator reads them (`cookie_reader`)
        self._ids = itertools.count(1)
        self.counters = Counters()

    def record(self, *, connection: int, peer: str, tls: bool, sni: str | None, method: str, target: str,
               http_version: str, headers: list[tuple[str, str]], path_key: str) -> RequestRecord:
        cookies = parse_cookie_header([value for name, value in headers if name.lower() == "cookie"],
                                      lenient=self._lenient_cookies)
        entry = RequestRecord(
            id=next(self._ids), time=datetime.now(UTC).isoformat(), connection=connection, peer=peer,
            tls=tls, sni=sni, method=method, target=target, http_version=http_version,
            headers=redacted_headers(headers), cookie_names=list(cookies),
            authorization=authorization_scheme(headers),
        )
        self._log.append(entry)
        self.counters.requests_per_path[path_key] += 1
        return entry

    def requests(self) -> list[RequestRecord]:
        return list(self._log)

    def reset(self) -> None:
        self._log.clear()
        self.counters = Counters()
