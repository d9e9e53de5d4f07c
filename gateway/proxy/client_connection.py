"""Hooks on the client's TCP connection: run something when it closes; close it once it is idle.

NTLM and Negotiate authenticate a connection, so state that belongs to one client connection (its
pinned upstream connection) must end exactly when that connection ends. aiohttp tells its server
protocol (`RequestHandler.connection_lost`), not the application; `CloseHooksMixin` passes it on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway._compat import RequestHandler, handler_busy, handler_loop
from gateway.observability.logging import get_logger

__all__ = ["CloseHooksMixin", "add_close_hook", "close_when_idle"]

log = get_logger("gateway.client_connection")


class CloseHooksMixin(RequestHandler):
    """Put before aiohttp's `RequestHandler` in a protocol class's bases (its own base, so the
    calls to it type-check)."""

    _close_hooks: list[Callable[[], None]] | None = None

    def add_close_hook(self, hook: Callable[[], None]) -> None:
        if self._close_hooks is None:
            self._close_hooks = []
        self._close_hooks.append(hook)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        hooks, self._close_hooks = self._close_hooks, None
        for hook in hooks or ():
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from running
                log.exception("close_hook_failed", message="connection close hook failed")


def add_close_hook(protocol: Any, hook: Callable[[], None]) -> bool:
    """Register `hook` for when the client connection closes; False when the protocol has no hooks."""
    if isinstance(protocol, CloseHooksMixin):
        protocol.add_close_hook(hook)
        return True
    return False


def close_when_idle(protocol: Any, grace: float) -> None:
    """Close the client connection once no request is running or queued on it, `grace` seconds from now.

    Not at once: a request the client sent before it could learn of the close may be on its way (it
    is usually sent the moment the previous answer arrives), and it must get an answer rather than a
    reset; every request a pinned connection can no longer serve is answered (502, `Connection: close`),
    which ends the connection by itself. Checked again every `grace` seconds while a request runs.
    """
    if not isinstance(protocol, RequestHandler) or protocol.transport is None:
        return
    loop = handler_loop(protocol)

    def close_if_idle() -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            return
        if handler_busy(protocol):
            loop.call_later(grace, close_if_idle)
            return
        protocol.force_close()  # what aiohttp's own keep-alive timeout does to an idle connection

    loop.call_later(grace, close_if_idle)
