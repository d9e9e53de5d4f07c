"""Who is calling a non-browser endpoint: IIS's Windows authentication, Basic, or nobody.

Each virtual directory offers Negotiate and NTLM (bound to the connection, see `ntlm`), plus Basic
where Exchange offers it, or Basic only (ActiveSync). A connection authenticated by NTLM stays
authenticated: later requests on it need no `Authorization`, as IIS does it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.sim.exchange_clients.ntlm import ConnectionAuth
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.config import SimUser
    from gateway.sim.owa.state import OwaSimState, RequestContext


@dataclass(frozen=True, slots=True)
class Caller:
    user: SimUser
    scheme: str            # "NTLM", "Negotiate", "Basic" or "Bearer"
    final_token: str | None = None  # Negotiate's last token, to send with the answer


def challenge(ctx: RequestContext, *, windows: bool, basic: bool, header: str | None = None,
              close: bool = False) -> web.Response:
    """401 with the challenges the vdir offers, or exactly `header` (a scheme's continuation)."""
    response = web.Response(status=401, text="401 - Unauthorized: Access is denied due to invalid credentials.",
                            content_type="text/html")
    if header is not None:
        response.headers.add("WWW-Authenticate", header)
    else:
        if windows:
            response.headers.add("WWW-Authenticate", "Negotiate")
            response.headers.add("WWW-Authenticate", "NTLM")
        if basic:
            response.headers.add("WWW-Authenticate", f'Basic realm="{ctx.host}"')
    if close:
        response.force_close()
    return response


def _basic_user(owa: OwaSimState, token: str) -> SimUser | None:
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    name, colon, password = raw.partition(":")
    if not colon:
        return None
    return owa.users.authenticate(name, password)


def connection_state(request: web.Request, clients: ClientsState, ctx: RequestContext) -> ConnectionAuth:
    connection_id = ctx.record.connection if ctx.record is not None else 0
    return clients.acceptors.of(request.protocol, connection_id)


async def authenticate(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext,
                       *, windows: bool = True, basic: bool = False) -> Caller | web.Response:
    """The caller, or the 401 to answer. Never reads the body."""
    headers = request.headers.getall("Authorization", [])
    state = connection_state(request, clients, ctx)
    if len(headers) > 1:
        return web.Response(status=400, text="Bad Request")
    if not headers:
        if windows and state.user is not None:
            user = owa.users.resolve(state.user)
            if user is not None:
                return Caller(user, state.scheme or "NTLM")
        return challenge(ctx, windows=windows, basic=basic)
    scheme, _, token = headers[0].strip().partition(" ")
    scheme_key = scheme.lower()
    if scheme_key == "basic" and basic:
        user = _basic_user(owa, token.strip())
        if user is None:
            clients.counters.basic_failures += 1
            return challenge(ctx, windows=windows, basic=basic)
        return Caller(user, "Basic")
    if scheme_key in ("ntlm", "negotiate") and windows:
        step = clients.acceptors.step(state, "Negotiate" if scheme_key == "negotiate" else "NTLM", token.strip())
        if step.status == 401:
            if step.www_authenticate is not None:
                return challenge(ctx, windows=windows, basic=basic, header=step.www_authenticate)
            return challenge(ctx, windows=windows, basic=basic)
        user = owa.users.resolve(step.user or "")
        if user is None:
            return challenge(ctx, windows=windows, basic=basic)
        return Caller(user, state.scheme or "NTLM", step.www_authenticate)
    if scheme_key == "bearer" and clients.config.bearer_accepted and owa.users.users:
        return Caller(owa.users.users[0], "Bearer")
    return challenge(ctx, windows=windows, basic=basic)


def answer(caller: Caller, response: web.StreamResponse) -> web.StreamResponse:
    """Add Negotiate's final token (mutual authentication) to a successful answer."""
    if caller.final_token is not None:
        response.headers["WWW-Authenticate"] = caller.final_token
    return response
