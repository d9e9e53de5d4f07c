"""The simulator's state (one per app) and the per-request context the handlers share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.sim.owa.config import OwaSimConfig
from gateway.sim.owa.recorder import Recorder, RequestRecord
from gateway.sim.owa.routes import Resolved
from gateway.sim.owa.sessions import OwaSession, SessionTable
from gateway.sim.owa.users import UserDirectory


@dataclass(slots=True)
class OwaSimState:
    config: OwaSimConfig
    users: UserDirectory
    sessions: SessionTable
    recorder: Recorder
    clock: Callable[[], float] = time.monotonic
    # Users who have picked a language (the first-run language page is shown once per user).
    languages_set: set[str] = field(default_factory=set)
    notification_channels: set[str] = field(default_factory=set)

    @classmethod
    def from_config(cls, config: OwaSimConfig) -> OwaSimState:
        return cls(config=config, users=UserDirectory(config.users), sessions=SessionTable(),
                   recorder=Recorder(config.request_log_limit, lenient_cookies=config.cookie_reader == "lenient"))

    def reset(self, *, sessions: bool) -> None:
        self.recorder.reset()
        if sessions:
            self.sessions.clear()
            self.languages_set.clear()
            self.notification_channels.clear()


@dataclass(slots=True)
class RequestContext:
    resolved: Resolved
    cookies: dict[str, str]
    host: str                  # the Host header, as sent (redirects are built from it)
    redirect_scheme: str       # "https" (Exchange) or the request's own scheme
    secure_cookies: bool
    samesite_none: bool
    record: RequestRecord | None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session: OwaSession | None = None
    # Set-Cookie values added to whatever response the handler produces (e.g. a re-issued cadataTTL).
    extra_cookies: list[str] = field(default_factory=list)


STATE_KEY = web.AppKey("owa_sim_state", OwaSimState)
CONTEXT_KEY = web.RequestKey("owa_sim_context", RequestContext)
