"""A gateway serving a portal site in front of the generic application simulator, from a real
configuration file, with sessions made in the very store the gateway reads (the sign-in pages are
not what these tests are about: they build the records a sign-in leaves behind)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.mfa.flow import FLOW, MfaFlow
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sim.app.server import RunningAppSim, running_app_sim
from tests.portal.kit import users_file_text
from tests.proxy.support import (
    PUBLIC_HOST,
    PUBLIC_URL,
    InProcessGateway,
    Upstream,
    raw_exchange,
    run_gateway,
    run_upstream,
)

WIKI_HOST = "wiki.example.test"
CRM_HOST = "crm.example.test"
ISSUER = PUBLIC_URL

# The application echoes what it received at /_app/echo: PUT there is a bypass, PATCH a one_factor,
# anything else two_factor (the last rule).
WIKI_RULES: list[dict[str, Any]] = [
    {"paths": ["/_app/echo"], "methods": ["PUT"], "action": "bypass"},
    {"paths": ["/_app/echo"], "methods": ["PATCH"], "action": "one_factor"},
    {"paths": ["/public"], "action": "bypass"},
    {"paths": ["/closed"], "action": "deny"},
    {"paths": ["/drafts"], "action": "one_factor"},
    {"paths": ["/admin"], "groups": ["Wiki-Admins"], "action": "two_factor"},
    {"paths": ["/admin"], "action": "deny"},
    {"action": "two_factor"},
]


def write_key(path: Path, *, public_only: bool = False) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    if public_only:
        path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


# The sites' first factor: the users file `portal_config` writes (tests/portal/kit.py's users).
FIRST_FACTOR = {"first_factor": "file", "users_file": "users.yaml"}


def portal_config(exchange_url: str, app_url: str, directory: Path, *, wiki: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> str:
    """Exchange's site, the `wiki` portal site (assertion on, a previous key listed) and a `crm` portal
    site in front of the same application (JSON is YAML)."""
    write_key(directory / "assertion.pem")
    write_key(directory / "previous.pub", public_only=True)
    (directory / "users.yaml").write_text(users_file_text(), encoding="utf-8")
    return json.dumps({
        "sites": [
            {"name": "mail", "hosts": [PUBLIC_HOST], "upstream": exchange_url, "profile": "exchange"},
            {"name": "wiki", "hosts": [WIKI_HOST], "upstream": app_url, "profile": "portal", "rules": WIKI_RULES,
             **FIRST_FACTOR,
             "assertion": {"key_file": "assertion.pem", "previous_key_files": ["previous.pub"]}, **(wiki or {})},
            {"name": "crm", "hosts": [CRM_HOST], "upstream": app_url, "profile": "portal", **FIRST_FACTOR,
             "rules": [{"action": "two_factor"}]},
        ],
        **(extra or {}),
    }, indent=2)


@dataclass
class Portal:
    gateway: InProcessGateway
    exchange: Upstream
    app: RunningAppSim
    flow: MfaFlow
    config_file: Path

    @property
    def port(self) -> int:
        return self.gateway.port

    async def session(self, *, site: str = "wiki", state: SessionState = SessionState.COMPLETE, user: str = "alice",
                      groups: Sequence[str] = (), first_factor: str = "file", second_factor: str = "totp",
                      cookie_name: str | None = None, **fields: Any) -> str:
        """A session as the sign-in leaves it; the cookie header's `name=value` (the host-only
        cookie's name, or `cookie_name`)."""
        now = time.time()
        passed = state is not SessionState.PENDING
        record = SessionRecord(state=state, typed_username=user, user_id=f"id-{user}", user_name=user,
                               email=f"{user}@example.test", display_name=user.title(), site=site,
                               groups=list(groups), first_factor=first_factor,
                               second_factor=second_factor if passed else "", mfa_at=now if passed else None,
                               created_at=now, last_activity=now)
        for name, value in fields.items():
            setattr(record, name, value)
        value = await self.flow.store.create(record, self.flow.ttl(record))
        return f"{cookie_name or self.flow.cookie.name}={value}"


@asynccontextmanager
async def running_portal(tmp_path: Path, *, wiki: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                         **settings: Any) -> AsyncIterator[Portal]:
    async with run_upstream() as exchange, running_app_sim() as app:
        config_file = tmp_path / "gateway.yaml"
        config_file.write_text(portal_config(exchange[0].url, app.base_url, tmp_path, wiki=wiki, extra=extra),
                               encoding="utf-8")
        async with run_gateway(exchange[0].url, gateway_config_file=config_file, **settings) as gateway:
            flow = gateway.gateway.state.feature(FLOW)
            yield Portal(gateway, exchange, app, flow, config_file)


def request(target: str, host: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close", *extra, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def split(answer: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of one raw answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, answer[:200]
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    return int(match[1]), headers, body


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


def echoed(body: bytes) -> list[tuple[str, str]]:
    """The headers the application's echo endpoint received."""
    return [(name, value) for name, value in json.loads(body)["headers"]]


async def get_raw(portal: Portal, target: str, *extra: str, host: str = WIKI_HOST, method: str = "GET"
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request over a raw socket to the gateway: (status, headers, body)."""
    return split(await raw_exchange(portal.port, request(target, host, *extra, method=method), timeout=10))
