"""Dispatch of the non-browser endpoints, by virtual directory, and their state's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway.sim.exchange_clients import activesync, directory, ews, mapi, rpc
from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from gateway.sim.exchange_clients.ntlm import CREDENTIALS
from gateway.sim.exchange_clients.state import CLIENTS_KEY, ClientsState
from gateway.sim.owa.state import STATE_KEY, OwaSimState, RequestContext

__all__ = ["handle", "install"]

Handler = Callable[[web.Request, OwaSimState, ClientsState, RequestContext], Awaitable[web.StreamResponse]]

_BY_VDIR: dict[str, Handler] = {
    "ews": ews.handle,
    "mapi": mapi.handle,
    "rpc": rpc.handle,
    "microsoft-server-activesync": activesync.handle,
    "oab": directory.oab,
    "autodiscover": directory.autodiscover,
    "powershell": directory.powershell,
}


def install(app: web.Application, config: ExchangeClientsConfig) -> None:
    """Add the endpoints' state to the simulator's application (before it starts)."""
    app[CLIENTS_KEY] = ClientsState(config)
    app.cleanup_ctx.append(_credentials)


async def _credentials(app: web.Application) -> AsyncIterator[None]:
    """While the simulator runs, its users are in the process's NTLM credential file."""
    state = app[CLIENTS_KEY]
    state.credential_token = CREDENTIALS.register(app[STATE_KEY].config.users)
    try:
        yield
    finally:
        CREDENTIALS.unregister(state.credential_token)
        state.credential_token = None


async def handle(request: web.Request, owa: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    clients = request.app[CLIENTS_KEY]
    return await _BY_VDIR[ctx.resolved.vdir](request, owa, clients, ctx)
